//! A located YAML tree: every node knows the line and column where it starts.
//!
//! Parsing goes through `saphyr`'s [`MarkedYaml`], then converts into this owned tree so that the
//! rest of the crate neither carries the parser's lifetimes nor depends on its API. JSON is YAML,
//! so the same parser reads `kubectl get -o json` output.

use std::fmt::Write as _;

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};

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

/// Parses every document of a YAML (or JSON) stream.
pub(crate) fn parse_stream(text: &str) -> Result<Vec<Node>, SyntaxError> {
    // The parser is not ours; a panic inside it must become an error, never a crash.
    let parsed = std::panic::catch_unwind(|| MarkedYaml::load_from_str(text));
    match parsed {
        Ok(Ok(documents)) => Ok(documents.iter().map(convert).collect()),
        Ok(Err(scan_error)) => {
            let marker = scan_error.marker();
            Err(SyntaxError {
                line: marker.line().max(1),
                column: marker.col() + 1,
                message: scan_error.info().to_owned(),
            })
        }
        Err(_) => Err(SyntaxError {
            line: 1,
            column: 1,
            message: "the YAML parser failed on this input".to_owned(),
        }),
    }
}

fn convert(marked: &MarkedYaml<'_>) -> Node {
    let start = marked.span.start;
    let value = match &marked.data {
        YamlData::Value(scalar) => convert_scalar(scalar),
        YamlData::Representation(text, _, _) => Value::Str(text.to_string()),
        YamlData::Sequence(items) => Value::Seq(items.iter().map(convert).collect()),
        YamlData::Mapping(mapping) => Value::Map(
            mapping
                .iter()
                .map(|(key, value)| (key_text(key), convert(value)))
                .collect(),
        ),
        YamlData::Tagged(_, inner) => return convert(inner),
        YamlData::Alias(_) | YamlData::BadValue => Value::Null,
    };
    Node {
        line: start.line().max(1),
        column: start.col() + 1,
        value,
    }
}

fn convert_scalar(scalar: &Scalar<'_>) -> Value {
    match scalar {
        Scalar::Null => Value::Null,
        Scalar::Boolean(flag) => Value::Bool(*flag),
        Scalar::Integer(number) => Value::Int(*number),
        Scalar::FloatingPoint(number) => Value::Float(number.into_inner()),
        Scalar::String(text) => Value::Str(text.to_string()),
    }
}

fn key_text(key: &MarkedYaml<'_>) -> String {
    match convert(key).value {
        Value::Str(text) => text,
        other => Node {
            line: 0,
            column: 0,
            value: other,
        }
        .display(),
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
