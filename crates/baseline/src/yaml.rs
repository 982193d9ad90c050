//! A located YAML tree: every node knows the line and column where it starts.
//!
//! The tree is built straight from the events of `saphyr`'s parser (`saphyr-parser`, the parser
//! under `saphyr`'s `MarkedYaml`), with scalars resolved by `saphyr`'s own core-schema rules.
//! Building `MarkedYaml` first and converting it was measured at about 80 bytes of memory per
//! input byte on a 56 MB `kubectl get -o json` list, with two whole trees alive at once; going
//! from events keeps one tree and no hash maps. JSON is YAML, so the same parser reads JSON.

use std::{
    borrow::Cow,
    collections::{HashMap, HashSet},
    fmt::Write as _,
};

use saphyr::Scalar;
use saphyr_parser::{Event, Marker, Parser, ScalarStyle, Span, SpannedEventReceiver, Tag};

/// One YAML node and where it starts in its file.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The 1-based line where the node starts.
    pub line: usize,
    /// The 1-based column where the node starts.
    pub column: usize,
    /// The node's content.
    pub value: Value,
}

/// The content of a [`Node`].
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`, `~`, or an empty value.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A floating point number.
    Float(f64),
    /// A string.
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in document order. Keys that are not strings are kept in their YAML spelling.
    Map(Vec<(String, Node)>),
}

/// Why a YAML stream could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub(crate) line: usize,
    pub(crate) column: usize,
    pub(crate) message: String,
}

/// How many nodes alias expansion may create in one stream, against "billion laughs" inputs.
const ALIAS_NODE_BUDGET: usize = 100_000;

/// Mappings with more keys than this track them in a hash set to find duplicates.
const LINEAR_KEY_SCAN: usize = 32;

/// Parses every document of a YAML (or JSON) stream.
pub(crate) fn parse_stream(text: &str) -> Result<Vec<Node>, SyntaxError> {
    // The parser is not ours; a panic inside it must become an error, never a crash.
    let parsed = std::panic::catch_unwind(|| {
        let mut builder = TreeBuilder::default();
        let result = Parser::new_from_str(text).load(&mut builder, true);
        (result, builder)
    });
    match parsed {
        Ok((Ok(()), builder)) => match builder.error {
            Some(error) => Err(error),
            None => Ok(builder.documents),
        },
        Ok((Err(scan_error), _)) => Err(syntax_error(*scan_error.marker(), scan_error.info())),
        Err(_) => Err(SyntaxError {
            line: 1,
            column: 1,
            message: "the YAML parser failed on this input".to_owned(),
        }),
    }
}

fn syntax_error(marker: Marker, message: &str) -> SyntaxError {
    SyntaxError {
        line: marker.line().max(1),
        column: marker.col() + 1,
        message: message.to_owned(),
    }
}

/// An open collection while its events arrive.
enum Frame {
    Seq {
        start: Marker,
        anchor_id: usize,
        items: Vec<Node>,
    },
    Map {
        start: Marker,
        anchor_id: usize,
        entries: Vec<(String, Node)>,
        pending_key: Option<(String, Marker)>,
        seen_keys: Option<HashSet<String>>,
    },
}

/// Builds [`Node`] trees from parser events.
#[derive(Default)]
struct TreeBuilder {
    documents: Vec<Node>,
    stack: Vec<Frame>,
    root: Option<Node>,
    anchors: HashMap<usize, Node>,
    alias_nodes: usize,
    error: Option<SyntaxError>,
}

fn node_at(marker: Marker, value: Value) -> Node {
    Node {
        line: marker.line().max(1),
        column: marker.col() + 1,
        value,
    }
}

fn scalar_value(text: Cow<'_, str>, style: ScalarStyle, tag: Option<&Cow<'_, Tag>>) -> Value {
    match Scalar::parse_from_cow_and_metadata(text, style, tag) {
        Some(Scalar::Null) | None => Value::Null,
        Some(Scalar::Boolean(flag)) => Value::Bool(flag),
        Some(Scalar::Integer(number)) => Value::Int(number),
        Some(Scalar::FloatingPoint(number)) => Value::Float(number.into_inner()),
        Some(Scalar::String(text)) => Value::Str(text.into_owned()),
    }
}

fn count_nodes(node: &Node) -> usize {
    1 + match &node.value {
        Value::Seq(items) => items.iter().map(count_nodes).sum(),
        Value::Map(entries) => entries.iter().map(|(_, value)| count_nodes(value)).sum(),
        _ => 0,
    }
}

impl TreeBuilder {
    fn remember(&mut self, anchor_id: usize, node: &Node) {
        if anchor_id > 0 {
            self.anchors.insert(anchor_id, node.clone());
        }
    }

    fn insert(&mut self, node: Node) -> Result<(), SyntaxError> {
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map {
                entries,
                pending_key,
                seen_keys,
                ..
            }) => match pending_key.take() {
                None => {
                    let key = match node.value {
                        Value::Str(text) => text,
                        other => node_at_display(other),
                    };
                    *pending_key = Some((key, Marker::new(0, node.line, node.column - 1)));
                }
                Some((key, key_marker)) => {
                    let duplicate = match seen_keys {
                        Some(seen) => !seen.insert(key.clone()),
                        None => entries.iter().any(|(known, _)| *known == key),
                    };
                    if duplicate {
                        return Err(syntax_error(key_marker, "duplicated key in mapping"));
                    }
                    if seen_keys.is_none() && entries.len() >= LINEAR_KEY_SCAN {
                        let mut seen: HashSet<String> =
                            entries.iter().map(|(known, _)| known.clone()).collect();
                        seen.insert(key.clone());
                        *seen_keys = Some(seen);
                    }
                    entries.push((key, node));
                }
            },
        }
        Ok(())
    }

    fn handle(&mut self, event: Event<'_>, span: Span) -> Result<(), SyntaxError> {
        match event {
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentStart(_) => {}
            Event::DocumentEnd => {
                let document = self
                    .root
                    .take()
                    .unwrap_or_else(|| node_at(span.start, Value::Null));
                self.documents.push(document);
                self.anchors.clear();
            }
            Event::Scalar(text, style, anchor_id, tag) => {
                let node = node_at(span.start, scalar_value(text, style, tag.as_ref()));
                self.remember(anchor_id, &node);
                self.insert(node)?;
            }
            Event::Alias(anchor_id) => {
                let Some(anchored) = self.anchors.get(&anchor_id) else {
                    return Err(syntax_error(span.start, "unknown anchor"));
                };
                self.alias_nodes += count_nodes(anchored);
                if self.alias_nodes > ALIAS_NODE_BUDGET {
                    return Err(syntax_error(
                        span.start,
                        "alias expansion exceeded the maximum node budget (possible billion-laughs attack)",
                    ));
                }
                let mut node = anchored.clone();
                node.line = span.start.line().max(1);
                node.column = span.start.col() + 1;
                self.insert(node)?;
            }
            Event::SequenceStart(anchor_id, _) => self.stack.push(Frame::Seq {
                start: span.start,
                anchor_id,
                items: Vec::new(),
            }),
            Event::MappingStart(anchor_id, _) => self.stack.push(Frame::Map {
                start: span.start,
                anchor_id,
                entries: Vec::new(),
                pending_key: None,
                seen_keys: None,
            }),
            Event::SequenceEnd | Event::MappingEnd => {
                let (start, anchor_id, value) = match self.stack.pop() {
                    Some(Frame::Seq {
                        start,
                        anchor_id,
                        items,
                    }) => (start, anchor_id, Value::Seq(items)),
                    Some(Frame::Map {
                        start,
                        anchor_id,
                        entries,
                        ..
                    }) => (start, anchor_id, Value::Map(entries)),
                    None => return Err(syntax_error(span.start, "unbalanced collection end")),
                };
                let node = node_at(start, value);
                self.remember(anchor_id, &node);
                self.insert(node)?;
            }
        }
        Ok(())
    }
}

/// The display form of a non-string key, e.g. `80` or `[a, b]`.
fn node_at_display(value: Value) -> String {
    Node {
        line: 0,
        column: 0,
        value,
    }
    .display()
}

impl<'input> SpannedEventReceiver<'input> for TreeBuilder {
    fn on_event(&mut self, event: Event<'input>, span: Span) {
        // After the first error the tree is not to be trusted; the rest of the stream is ignored.
        if self.error.is_some() {
            return;
        }
        if let Err(error) = self.handle(event, span) {
            self.error = Some(error);
        }
    }
}

impl Node {
    /// The value under `key` when this node is a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries
                .iter()
                .find(|(entry_key, _)| entry_key == key)
                .map(|(_, node)| node),
            _ => None,
        }
    }

    /// Follows a chain of mapping keys.
    pub fn at(&self, keys: &[&str]) -> Option<&Node> {
        keys.iter().try_fold(self, |node, key| node.get(key))
    }

    /// The string, when this node is one.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(text) => Some(text),
            _ => None,
        }
    }

    /// The boolean, when this node is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self.value {
            Value::Bool(flag) => Some(flag),
            _ => None,
        }
    }

    /// The integer, when this node is one.
    pub fn as_i64(&self) -> Option<i64> {
        match self.value {
            Value::Int(number) => Some(number),
            _ => None,
        }
    }

    /// The items, when this node is a sequence; an empty slice otherwise.
    pub fn items(&self) -> &[Node] {
        match &self.value {
            Value::Seq(items) => items,
            _ => &[],
        }
    }

    /// The entries, when this node is a mapping; an empty slice otherwise.
    pub fn entries(&self) -> &[(String, Node)] {
        match &self.value {
            Value::Map(entries) => entries,
            _ => &[],
        }
    }

    /// True for `null`, `~` and empty values.
    pub fn is_null(&self) -> bool {
        matches!(self.value, Value::Null)
    }

    /// A compact, JSON-like rendering of the node for evidence and messages.
    pub fn display(&self) -> String {
        let mut out = String::new();
        write_display(&mut out, self, 0);
        out
    }
}

/// Evidence values longer than this are cut, so a huge mapping cannot flood a report.
const DISPLAY_LIMIT: usize = 200;

fn write_display(out: &mut String, node: &Node, depth: usize) {
    if out.len() > DISPLAY_LIMIT || depth > 8 {
        out.push('…');
        return;
    }
    match &node.value {
        Value::Null => out.push_str("null"),
        Value::Bool(flag) => {
            let _ = write!(out, "{flag}");
        }
        Value::Int(number) => {
            let _ = write!(out, "{number}");
        }
        Value::Float(number) => {
            let _ = write!(out, "{number}");
        }
        Value::Str(text) => out.push_str(text),
        Value::Seq(items) => {
            out.push('[');
            for (item_idx, item) in items.iter().enumerate() {
                if item_idx > 0 {
                    out.push_str(", ");
                }
                if out.len() > DISPLAY_LIMIT {
                    out.push('…');
                    break;
                }
                write_display(out, item, depth + 1);
            }
            out.push(']');
        }
        Value::Map(entries) => {
            out.push('{');
            for (entry_idx, (key, value)) in entries.iter().enumerate() {
                if entry_idx > 0 {
                    out.push_str(", ");
                }
                if out.len() > DISPLAY_LIMIT {
                    out.push('…');
                    break;
                }
                out.push_str(key);
                out.push_str(": ");
                write_display(out, value, depth + 1);
            }
            out.push('}');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_carry_lines_and_columns() {
        let documents = parse_stream("a: 1\nb:\n  c: [x, true]\n").unwrap();
        let root = &documents[0];
        let c = root.at(&["b", "c"]).unwrap();
        assert_eq!((c.line, c.column), (3, 6));
        assert_eq!(c.items()[1].as_bool(), Some(true));
        assert_eq!(root.get("a").unwrap().as_i64(), Some(1));
        assert_eq!(root.get("a").unwrap().line, 1);
    }

    #[test]
    fn json_is_yaml() {
        let documents =
            parse_stream("{\"kind\": \"Pod\",\n \"spec\": {\"hostPID\": true}}").unwrap();
        let host_pid = documents[0].at(&["spec", "hostPID"]).unwrap();
        assert_eq!(host_pid.as_bool(), Some(true));
        assert_eq!(host_pid.line, 2);
    }

    #[test]
    fn syntax_errors_have_a_location() {
        let error = parse_stream("a: 1\nb: [1, 2\n").unwrap_err();
        assert!(error.line >= 2, "{error:?}");
        let error = parse_stream("a: 1\n  b: 2\n").unwrap_err();
        assert_eq!(error.line, 2, "{error:?}");
    }

    #[test]
    fn duplicate_keys_are_errors_in_small_and_large_mappings() {
        let error = parse_stream("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(
            (error.line, error.message.as_str()),
            (3, "duplicated key in mapping")
        );
        let mut large: String = (0..100)
            .map(|key_idx| format!("k{key_idx}: {key_idx}\n"))
            .collect();
        assert!(parse_stream(&large).is_ok());
        large.push_str("k7: again\n");
        assert_eq!(parse_stream(&large).unwrap_err().line, 101);
    }

    #[test]
    fn aliases_expand_at_their_own_position() {
        let documents = parse_stream("base: &b {cpu: 1}\nother: *b\n").unwrap();
        let other = documents[0].get("other").unwrap();
        assert_eq!(other.at(&["cpu"]).unwrap().as_i64(), Some(1));
        assert_eq!(other.line, 2);
        assert_eq!(parse_stream("a: *missing\n").unwrap_err().line, 1);
    }

    #[test]
    fn documents_keep_their_order_and_empty_ones_are_null() {
        let documents = parse_stream("a: 1\n---\n---\nb: 2\n").unwrap();
        assert_eq!(documents.len(), 3);
        assert!(documents[1].is_null());
        assert_eq!(documents[2].get("b").unwrap().line, 4);
        assert_eq!(parse_stream("80: http\n").unwrap()[0].entries()[0].0, "80");
    }

    #[test]
    fn quoted_scalars_stay_strings() {
        let documents = parse_stream("a: \"true\"\nb: '12'\n").unwrap();
        assert_eq!(documents[0].get("a").unwrap().as_str(), Some("true"));
        assert_eq!(documents[0].get("b").unwrap().as_str(), Some("12"));
    }

    #[test]
    fn display_is_compact_and_bounded() {
        let documents = parse_stream("a: {b: [1, x]}\n").unwrap();
        assert_eq!(documents[0].display(), "{a: {b: [1, x]}}");
        let long = format!("a: [{}]\n", vec!["xxxxxxxxxx"; 100].join(", "));
        assert!(parse_stream(&long).unwrap()[0].display().len() < DISPLAY_LIMIT + 20);
    }
}
