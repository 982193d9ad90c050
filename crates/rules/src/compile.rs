//! Compiled conditions: macros expanded, lists inlined, literals parsed once into hash sets,
//! prefix tries, Aho-Corasick automata, regexes and globs, and evaluation against an event.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;

use aho_corasick::AhoCorasick;
use base64::Engine as _;
use palisade_event::{Event, EventKind};

use crate::condition::{Expr, FieldExpr, Op, Rhs, Transformer};
use crate::error::ErrorKind;
use crate::fields::{self, ArgSpec, FieldArg, FieldDef, FieldType, KindSet, PathGlob, Value};

/// A field reference, resolved against the field table.
#[derive(Clone)]
pub(crate) struct FieldRef {
    pub def: &'static FieldDef,
    pub arg: FieldArg,
    pub transformers: Vec<Transformer>,
    /// As written, e.g. `tolower(proc.aname[2])`, for evidence and outputs.
    pub display: String,
    /// For the `evt.deltatime` fields, the state libsinsp keeps in each check: every
    /// reference (a check of a rule's condition, a placeholder of its output, an evidence
    /// entry) counts from the last event it read itself.
    pub since: Option<SincePrevious>,
}

/// The time of the last event a reference read, and which part of the time since it the
/// field gives (`evt.deltatime`, `.s`, `.ns`).
#[derive(Clone)]
pub(crate) struct SincePrevious {
    last_ns: Cell<u64>,
    part: fn(u64) -> u64,
}

impl SincePrevious {
    /// Nanoseconds since the last event read (0 for the first one, as libsinsp), in the
    /// field's part; `now_ns` becomes the last event. An event older than the last one (events
    /// of different CPUs are not sorted) gives 0 rather than a wrapped difference.
    fn read(&self, now_ns: u64) -> u64 {
        let last_ns = self.last_ns.replace(now_ns);
        let elapsed = if last_ns == 0 {
            0
        } else {
            now_ns.saturating_sub(last_ns)
        };
        (self.part)(elapsed)
    }
}

impl PartialEq for FieldRef {
    fn eq(&self, other: &FieldRef) -> bool {
        std::ptr::eq(self.def, other.def)
            && self.arg == other.arg
            && self.transformers == other.transformers
    }
}

impl FieldRef {
    /// The type after transformers.
    fn ty(&self) -> FieldType {
        if self.transformers.contains(&Transformer::Len) {
            FieldType::Int
        } else {
            self.def.ty
        }
    }

    /// Extracts the value and applies the transformers; `None` when absent.
    pub fn extract<'e>(&self, event: &'e Event) -> Option<Value<'e>> {
        if !self.def.kinds.contains(event.kind) {
            return None;
        }
        let mut value = match &self.since {
            Some(since) => Value::Int(since.read(event.timestamp_ns) as i64),
            None => (self.def.extract)(event, &self.arg)?,
        };
        for transformer in &self.transformers {
            value = transform(*transformer, value)?;
        }
        Some(value)
    }
}

fn transform_str<'e>(transformer: Transformer, text: Cow<'e, str>) -> Option<Cow<'e, str>> {
    Some(match transformer {
        Transformer::Tolower => Cow::Owned(text.to_lowercase()),
        Transformer::Toupper => Cow::Owned(text.to_uppercase()),
        Transformer::Basename => match text {
            Cow::Borrowed(borrowed) => Cow::Borrowed(fields::basename(borrowed)),
            Cow::Owned(owned) => Cow::Owned(fields::basename(&owned).to_owned()),
        },
        Transformer::B64 => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text.as_bytes())
                .ok()?;
            Cow::Owned(String::from_utf8_lossy(&bytes).into_owned())
        }
        Transformer::Len => Cow::Owned(text.len().to_string()),
    })
}

fn transform(transformer: Transformer, value: Value<'_>) -> Option<Value<'_>> {
    if transformer == Transformer::Len {
        return Some(Value::Int(match &value {
            Value::Str(text) => text.len() as i64,
            Value::Strs(items) => items.len() as i64,
            Value::Ips(items) => items.len() as i64,
            Value::Int(_) | Value::Double(_) | Value::Bool(_) | Value::Ip(_) => 1,
        }));
    }
    Some(match value {
        Value::Str(text) => Value::Str(transform_str(transformer, text)?),
        Value::Strs(items) => Value::Strs(
            items
                .into_iter()
                .filter_map(|item| transform_str(transformer, item))
                .collect(),
        ),
        other => Value::Str(transform_str(transformer, Cow::Owned(other.render()))?),
    })
}

/// FNV-1a: literal sets are small keys looked up once per check, where SipHash's
/// flooding resistance buys nothing (the keys come from the rules, not from events).
#[derive(Default)]
pub(crate) struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut hash = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for byte in bytes {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = hash;
    }
}

/// A hash set with the [`Fnv`] hasher.
pub(crate) type FastSet<T> = HashSet<T, BuildHasherDefault<Fnv>>;

/// A byte trie for "starts with any of" and path-prefix matching.
#[derive(Debug, Default)]
pub(crate) struct PrefixTrie {
    nodes: Vec<TrieNode>,
}

#[derive(Debug, Default)]
struct TrieNode {
    children: Vec<(u8, u32)>,
    terminal: bool,
}

impl PrefixTrie {
    fn new(prefixes: impl IntoIterator<Item = String>) -> PrefixTrie {
        let mut trie = PrefixTrie {
            nodes: vec![TrieNode::default()],
        };
        for prefix in prefixes {
            let mut node = 0usize;
            for byte in prefix.bytes() {
                node = match trie.nodes[node].children.iter().find(|(b, _)| *b == byte) {
                    Some((_, child)) => *child as usize,
                    None => {
                        trie.nodes.push(TrieNode::default());
                        let child = trie.nodes.len() - 1;
                        trie.nodes[node].children.push((byte, child as u32));
                        child
                    }
                };
            }
            trie.nodes[node].terminal = true;
        }
        trie
    }

    /// Calls `accept(length)` for every stored prefix of `text`; true if one is accepted.
    fn any_prefix(&self, text: &str, accept: impl Fn(usize) -> bool) -> bool {
        let mut node = 0usize;
        if self.nodes[0].terminal && accept(0) {
            return true;
        }
        for (length, byte) in text.bytes().enumerate() {
            match self.nodes[node].children.iter().find(|(b, _)| *b == byte) {
                Some((_, child)) => node = *child as usize,
                None => return false,
            }
            if self.nodes[node].terminal && accept(length + 1) {
                return true;
            }
        }
        false
    }
}

/// What a check tests a value against.
pub(crate) enum Test {
    Exists,
    StrEq(String),
    StrSet(FastSet<String>),
    StrCmp(Op, String),
    IntSet(FastSet<i64>),
    IntCmp(Op, i64),
    /// Equal to one of the numbers (a `PT_DOUBLE` field).
    DoubleSet(Vec<f64>),
    DoubleCmp(Op, f64),
    Bool(bool),
    Nets(Vec<(IpAddr, u8)>),
    Contains(String),
    IContains(String),
    ContainsAny(AhoCorasick),
    BContains(Vec<u8>),
    StartsWith(String),
    BStartsWith(Vec<u8>),
    Prefixes(PrefixTrie),
    EndsWith(String),
    Glob(globset::GlobMatcher),
    Regex(regex::Regex),
    PMatch(PathPatterns),
    Field(Op, FieldRef),
}

/// The paths of a `pmatch` list: literal ones in a prefix trie, and those with glob
/// characters as one matcher per path component, as libsinsp's `path_prefix_map` does
/// (`/opt/*/subdir` matches `/opt/dir/subdir/file`; a `*` never spans a `/`).
pub(crate) struct PathPatterns {
    literal: PrefixTrie,
    globbed: Vec<Vec<globset::GlobMatcher>>,
}

impl PathPatterns {
    fn new(paths: Vec<String>) -> Result<PathPatterns, globset::Error> {
        let (globbed, literal): (Vec<String>, Vec<String>) = paths
            .into_iter()
            .partition(|path| path.contains(['*', '?', '[']));
        let globbed = globbed
            .iter()
            .map(|path| {
                path_components(path)
                    .map(|component| {
                        globset::GlobBuilder::new(component)
                            .literal_separator(true)
                            .build()
                            .map(|glob| glob.compile_matcher())
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .collect::<Result<Vec<_>, _>>()?;
        let literal = PrefixTrie::new(literal.into_iter().map(|path| {
            if path.len() > 1 {
                path.trim_end_matches('/').to_owned()
            } else {
                path
            }
        }));
        Ok(PathPatterns { literal, globbed })
    }

    fn matches(&self, path: &str) -> bool {
        if self
            .literal
            .any_prefix(path, |length| path_boundary(path, length))
        {
            return true;
        }
        self.globbed.iter().any(|pattern| {
            let mut components = path_components(path);
            pattern.iter().all(|glob| {
                components
                    .next()
                    .is_some_and(|component| glob.is_match(component))
            })
        })
    }
}

/// The non-empty `/`-separated components of a path.
fn path_components(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|component| !component.is_empty())
}

/// One field check.
pub(crate) struct Check {
    pub field: FieldRef,
    pub test: Test,
    /// `!=`: the test is negated per value, but an absent field still fails.
    pub negate: bool,
}

/// A compiled condition.
pub(crate) enum Node {
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    Const(bool),
    EventType(KindSet),
    Check(Box<Check>),
    /// A macro's expansion; its result is computed once per event and shared by every rule
    /// that uses the macro (slot = the macro's index).
    Memo(usize, Box<Node>),
}

/// Per-event memo of macro results: 0 unknown, 1 false, 2 true.
pub(crate) type Memo = [Cell<u8>];

impl Node {
    pub fn eval(&self, event: &Event, memo: &Memo) -> bool {
        match self {
            Node::And(children) => children.iter().all(|child| child.eval(event, memo)),
            Node::Or(children) => children.iter().any(|child| child.eval(event, memo)),
            Node::Not(child) => !child.eval(event, memo),
            Node::Const(value) => *value,
            Node::EventType(kinds) => kinds.contains(event.kind),
            Node::Check(check) => check.eval(event),
            Node::Memo(slot, child) => match memo.get(*slot).map(Cell::get) {
                Some(1) => false,
                Some(2) => true,
                _ => {
                    let value = child.eval(event, memo);
                    if let Some(cell) = memo.get(*slot) {
                        cell.set(if value { 2 } else { 1 });
                    }
                    value
                }
            },
        }
    }

    /// Event kinds for which the node may be true, and may be false (Falco derives a rule's
    /// `evt.type` set the same way, pushing negation down with De Morgan's laws).
    pub fn kinds(&self) -> (KindSet, KindSet) {
        let every = KindSet::every_kind();
        match self {
            Node::And(children) => children.iter().fold((every, KindSet::NONE), |acc, child| {
                let (may_true, may_false) = child.kinds();
                (acc.0.intersect(may_true), acc.1.union(may_false))
            }),
            Node::Or(children) => children.iter().fold((KindSet::NONE, every), |acc, child| {
                let (may_true, may_false) = child.kinds();
                (acc.0.union(may_true), acc.1.intersect(may_false))
            }),
            Node::Not(child) => {
                let (may_true, may_false) = child.kinds();
                (may_false, may_true)
            }
            Node::Const(true) => (every, KindSet::NONE),
            Node::Const(false) => (KindSet::NONE, every),
            Node::EventType(kinds) => (*kinds, kinds.complement()),
            Node::Check(_) => (every, every),
            Node::Memo(_, child) => child.kinds(),
        }
    }

    /// Whether the node keeps state from event to event (an `evt.deltatime` check): libsinsp
    /// evaluates a rule's checks in the order written, each rule its own, so which events
    /// such a check reads, and so its value, depends on that order; the node is then neither
    /// reordered nor shared between rules.
    pub fn keeps_state(&self) -> bool {
        let mut fields = Vec::new();
        self.fields(&mut fields);
        fields.iter().any(|field| field.since.is_some())
    }

    /// Every field the node reads, in order of first use.
    pub fn fields<'n>(&'n self, out: &mut Vec<&'n FieldRef>) {
        match self {
            Node::And(children) | Node::Or(children) => {
                children.iter().for_each(|child| child.fields(out))
            }
            Node::Not(child) | Node::Memo(_, child) => child.fields(out),
            Node::Const(_) | Node::EventType(_) => {}
            Node::Check(check) => {
                for field in [
                    Some(&check.field),
                    match &check.test {
                        Test::Field(_, other) => Some(other),
                        _ => None,
                    },
                ]
                .into_iter()
                .flatten()
                {
                    if !out.iter().any(|seen| seen.display == field.display) {
                        out.push(field);
                    }
                }
            }
        }
    }
}

fn compare<T: PartialOrd>(op: Op, left: T, right: T) -> bool {
    match op {
        Op::Eq => left == right,
        Op::Ne => left != right,
        Op::Lt => left < right,
        Op::Le => left <= right,
        Op::Gt => left > right,
        Op::Ge => left >= right,
        _ => false,
    }
}

fn in_net(address: IpAddr, (network, prefix): (IpAddr, u8)) -> bool {
    match (address, network) {
        (IpAddr::V4(address), IpAddr::V4(network)) => {
            let mask = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(prefix))
            };
            u32::from(address) & mask == u32::from(network) & mask
        }
        (IpAddr::V6(address), IpAddr::V6(network)) => {
            let mask = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(prefix))
            };
            u128::from(address) & mask == u128::from(network) & mask
        }
        _ => false,
    }
}

fn path_boundary(text: &str, length: usize) -> bool {
    length == text.len() || text.as_bytes()[length] == b'/' || text[..length].ends_with('/')
}

impl Check {
    fn eval(&self, event: &Event) -> bool {
        if let Test::Exists = self.test {
            return self.field.extract(event).is_some();
        }
        let Some(value) = self.field.extract(event) else {
            return false;
        };
        // Fast path for the most common shape: one string against literals.
        if let Value::Str(text) = &value {
            match &self.test {
                Test::StrSet(set) => return set.contains(text.as_ref()) != self.negate,
                Test::StrEq(right) => return (text.as_ref() == right) != self.negate,
                _ => {}
            }
        }
        let other = match &self.test {
            Test::Field(_, other) => match other.extract(event) {
                Some(other) => Some(other),
                None => return false,
            },
            _ => None,
        };
        let test_one = |value: &Value<'_>| self.test_value(value, other.as_ref()) != self.negate;
        match &value {
            Value::Strs(items) => items
                .iter()
                .any(|item| test_one(&Value::Str(Cow::Borrowed(item)))),
            Value::Ips(items) => items.iter().any(|item| test_one(&Value::Ip(*item))),
            single => test_one(single),
        }
    }

    fn test_value(&self, value: &Value<'_>, other: Option<&Value<'_>>) -> bool {
        match (value, &self.test) {
            (Value::Int(number), Test::IntSet(set)) => set.contains(number),
            (Value::Int(number), Test::IntCmp(op, right)) => compare(*op, *number, *right),
            (Value::Double(number), Test::DoubleSet(set)) => set.contains(number),
            (Value::Double(number), Test::DoubleCmp(op, right)) => compare(*op, *number, *right),
            (Value::Bool(flag), Test::Bool(right)) => flag == right,
            (Value::Ip(address), Test::Nets(nets)) => nets.iter().any(|net| in_net(*address, *net)),
            (Value::Str(text), test) => self.test_str(text, test, other),
            (other_value, test) => self.test_str(&other_value.render(), test, other),
        }
    }

    fn test_str(&self, text: &str, test: &Test, other: Option<&Value<'_>>) -> bool {
        match test {
            Test::Exists => true,
            Test::StrEq(right) => text == right,
            Test::StrSet(set) => set.contains(text),
            Test::StrCmp(op, right) => compare(*op, text, right.as_str()),
            Test::IntSet(set) => parse_int(text).is_some_and(|number| set.contains(&number)),
            Test::IntCmp(op, right) => {
                parse_int(text).is_some_and(|number| compare(*op, number, *right))
            }
            Test::DoubleSet(set) => parse_double(text).is_some_and(|number| set.contains(&number)),
            Test::DoubleCmp(op, right) => {
                parse_double(text).is_some_and(|number| compare(*op, number, *right))
            }
            Test::Bool(right) => text == if *right { "true" } else { "false" },
            Test::Nets(nets) => text
                .parse::<IpAddr>()
                .is_ok_and(|address| nets.iter().any(|net| in_net(address, *net))),
            Test::Contains(needle) => text.contains(needle.as_str()),
            Test::IContains(needle) => text.to_lowercase().contains(needle.as_str()),
            Test::ContainsAny(automaton) => automaton.is_match(text),
            Test::BContains(needle) => text
                .as_bytes()
                .windows(needle.len().max(1))
                .any(|window| window == needle.as_slice()),
            Test::StartsWith(prefix) => text.starts_with(prefix.as_str()),
            Test::BStartsWith(prefix) => text.as_bytes().starts_with(prefix),
            Test::Prefixes(trie) => trie.any_prefix(text, |_| true),
            Test::EndsWith(suffix) => text.ends_with(suffix.as_str()),
            Test::Glob(glob) => glob.is_match(text),
            Test::Regex(regex) => regex.is_match(text),
            Test::PMatch(patterns) => patterns.matches(text),
            Test::Field(op, _) => {
                let Some(other) = other else { return false };
                let values: Vec<String> = match other {
                    Value::Strs(items) => items.iter().map(|item| item.to_string()).collect(),
                    single => vec![single.render()],
                };
                values.iter().any(|right| match op {
                    Op::Contains => text.contains(right.as_str()),
                    Op::IContains => text.to_lowercase().contains(&right.to_lowercase()),
                    Op::StartsWith => text.starts_with(right.as_str()),
                    Op::EndsWith => text.ends_with(right.as_str()),
                    Op::In | Op::Intersects | Op::Eq => text == right,
                    Op::Ne => text != right,
                    _ => match (parse_int(text), parse_int(right)) {
                        (Some(left), Some(right)) => compare(*op, left, right),
                        _ => compare(*op, text, right.as_str()),
                    },
                })
            }
        }
    }
}

fn parse_int(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        return i64::from_str_radix(hex, 16).ok();
    }
    text.parse::<i64>().ok()
}

/// A finite decimal number (`0.8`, `75`, `1e2`); infinities and NaN are refused.
fn parse_double(text: &str) -> Option<f64> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|number| number.is_finite())
}

fn parse_net(text: &str) -> Option<(IpAddr, u8)> {
    match text.split_once('/') {
        Some((address, prefix)) => {
            let address: IpAddr = address.parse().ok()?;
            let prefix: u8 = prefix.parse().ok()?;
            let max = if address.is_ipv4() { 32 } else { 128 };
            (prefix <= max).then_some((address, prefix))
        }
        None => {
            let address: IpAddr = text.parse().ok()?;
            Some((address, if address.is_ipv4() { 32 } else { 128 }))
        }
    }
}

fn parse_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|index| u8::from_str_radix(&text[index..index + 2], 16).ok())
        .collect()
}

/// An error while compiling a condition, at a byte offset of its text.
#[derive(Debug)]
pub(crate) struct CompileError {
    pub kind: ErrorKind,
    pub offset: usize,
    pub message: String,
}

fn error(kind: ErrorKind, offset: usize, message: String) -> CompileError {
    CompileError {
        kind,
        offset,
        message,
    }
}

/// Resolves a parsed field against the field table.
pub(crate) fn resolve_field(field: &FieldExpr) -> Result<FieldRef, CompileError> {
    let Some((def, dotted_key)) = fields::lookup(&field.name) else {
        return Err(error(
            ErrorKind::UnknownField,
            field.at,
            format!("unknown field '{}'", field.name),
        ));
    };
    let written_arg = field.arg.clone().or(dotted_key);
    let arg = match (def.arg, written_arg) {
        (ArgSpec::None, None) => FieldArg::None,
        (ArgSpec::None, Some(_)) => {
            return Err(error(
                ErrorKind::UnknownField,
                field.at,
                format!("field '{}' does not take an argument", def.name),
            ));
        }
        (ArgSpec::OptionalIndex, None) => FieldArg::None,
        (ArgSpec::OptionalIndex, Some(text)) => match text.parse::<usize>() {
            Ok(index) => FieldArg::Index(index),
            Err(_) => {
                return Err(error(
                    ErrorKind::InvalidOperand,
                    field.at,
                    format!(
                        "field '{}' needs a numeric argument, not '{text}'",
                        def.name
                    ),
                ));
            }
        },
        (ArgSpec::Key | ArgSpec::OptionalKey, Some(key)) => FieldArg::Key(key),
        (ArgSpec::IndexOrGlob, Some(key)) => match key.parse::<usize>() {
            Ok(index) => FieldArg::Index(index),
            Err(_) => FieldArg::Glob(PathGlob::new(&key)),
        },
        (ArgSpec::OptionalKey, None) => FieldArg::None,
        (ArgSpec::Key | ArgSpec::IndexOrGlob, None) => {
            return Err(error(
                ErrorKind::InvalidOperand,
                field.at,
                format!("field '{}' needs an argument", def.name),
            ));
        }
    };
    let mut display = field.name.clone();
    if let Some(arg) = &field.arg {
        display = format!("{display}[{arg}]");
    }
    for transformer in &field.transformers {
        let name = format!("{transformer:?}").to_lowercase();
        display = format!("{name}({display})");
    }
    Ok(FieldRef {
        def,
        arg,
        transformers: field.transformers.clone(),
        display,
        since: fields::time_since_previous_part(def.name).map(|part| SincePrevious {
            last_ns: Cell::new(0),
            part,
        }),
    })
}

/// What the compiler needs from the rule set: lists (already expanded) by name.
pub(crate) trait Resolver {
    /// The items of a visible list, marking it used.
    fn list(&self, name: &str) -> Option<&[String]>;
}

/// Compiles `field op anyof (...)` / `allof (...)`: one check per value, or-ed (or and-ed).
pub(crate) fn compile_modified(
    field: &FieldExpr,
    op: Op,
    all: bool,
    items: &[(String, usize)],
    resolver: &dyn Resolver,
) -> Result<Node, CompileError> {
    let at = items.first().map_or(field.at, |(_, at)| *at);
    let mut checks = Vec::new();
    for text in expand_items(items, resolver) {
        checks.push(compile_compare(
            field,
            op,
            &Rhs::Value { text, at },
            resolver,
        )?);
    }
    Ok(if all {
        Node::And(checks)
    } else {
        Node::Or(checks)
    })
}

fn expand_items(items: &[(String, usize)], resolver: &dyn Resolver) -> Vec<String> {
    let mut values = Vec::new();
    for (item, _) in items {
        match resolver.list(item) {
            Some(list) => values.extend(list.iter().cloned()),
            None => values.push(item.clone()),
        }
    }
    values
}

/// Compiles a macro-free expression (macros are expanded by the caller, which knows where
/// each macro's text comes from).
pub(crate) fn compile_compare(
    field: &FieldExpr,
    op: Op,
    rhs: &Rhs,
    resolver: &dyn Resolver,
) -> Result<Node, CompileError> {
    let field_ref = resolve_field(field)?;
    if field_ref.def.name == "evt.around" {
        return compile_around(field, field_ref, op, rhs);
    }
    let ty = field_ref.ty();
    let (values, value_at): (Vec<String>, usize) = match rhs {
        Rhs::Field(other) => {
            let other = resolve_field(other)?;
            if matches!(
                op,
                Op::Regex | Op::Glob | Op::IGlob | Op::PMatch | Op::BContains | Op::BStartsWith
            ) {
                return Err(error(
                    ErrorKind::InvalidOperand,
                    field.at,
                    format!("operator '{}' cannot compare two fields", op.as_str()),
                ));
            }
            let negate = op == Op::Ne;
            return Ok(Node::Check(Box::new(Check {
                field: field_ref,
                test: Test::Field(if negate { Op::Eq } else { op }, other),
                negate,
            })));
        }
        Rhs::Value { text, at } => (vec![text.clone()], *at),
        Rhs::List { items } => (
            expand_items(items, resolver),
            items.first().map_or(field.at, |(_, at)| *at),
        ),
        Rhs::ListRef { name, at } => match resolver.list(name) {
            Some(list) => (list.to_vec(), *at),
            None => {
                return Err(error(
                    ErrorKind::UnknownList,
                    *at,
                    format!("undefined list '{name}'"),
                ));
            }
        },
    };
    if op.takes_list() && matches!(rhs, Rhs::Value { .. }) {
        return Err(error(
            ErrorKind::Syntax,
            value_at,
            format!("operator '{}' needs a list", op.as_str()),
        ));
    }
    if !op.takes_list() && values.len() != 1 {
        return Err(error(
            ErrorKind::Syntax,
            value_at,
            format!("operator '{}' needs a single value", op.as_str()),
        ));
    }
    // The sensor reports each call once, when it returns, with the arguments libsinsp splits
    // between an enter (`>`) and an exit (`<`) record: a check for either direction selects
    // that one report, so rules written for enter records (`evt.type = setuid and
    // evt.dir = >`) fire once per call, as in Falco.
    if field_ref.def.name == "evt.dir"
        && field_ref.transformers.is_empty()
        && matches!(op, Op::Eq | Op::Ne | Op::In)
        && !values.is_empty()
        && values.iter().all(|value| value == "<" || value == ">")
    {
        return Ok(Node::Const(true));
    }
    // Event types compile to a kind set, which also feeds the rule index.
    if field_ref.def.name == "evt.type" && field_ref.transformers.is_empty() {
        let kinds = values
            .iter()
            .filter_map(|name| EventKind::from_name(name))
            .fold(KindSet::NONE, |set, kind| set.union(KindSet::of(&[kind])));
        match op {
            Op::Eq | Op::In | Op::Intersects => return Ok(Node::EventType(kinds)),
            Op::Ne => return Ok(Node::Not(Box::new(Node::EventType(kinds)))),
            _ => {}
        }
    }
    let bad_value = |value: &str| {
        error(
            ErrorKind::InvalidOperand,
            value_at,
            format!(
                "value '{value}' is not valid for field '{}'",
                field_ref.display
            ),
        )
    };
    let unsupported = || {
        error(
            ErrorKind::InvalidOperand,
            field.at,
            format!(
                "operator '{}' is not supported for field '{}'",
                op.as_str(),
                field_ref.display
            ),
        )
    };
    let negate = op == Op::Ne;
    let test = match ty {
        FieldType::Int => {
            let mut numbers = FastSet::default();
            for value in &values {
                numbers.insert(parse_int(value).ok_or_else(|| bad_value(value))?);
            }
            match op {
                Op::Eq | Op::Ne | Op::In | Op::Intersects => Test::IntSet(numbers),
                Op::Lt | Op::Le | Op::Gt | Op::Ge => {
                    Test::IntCmp(op, numbers.into_iter().next().unwrap_or_default())
                }
                _ => return Err(unsupported()),
            }
        }
        FieldType::Double => {
            let mut numbers = Vec::with_capacity(values.len());
            for value in &values {
                numbers.push(parse_double(value).ok_or_else(|| bad_value(value))?);
            }
            match op {
                Op::Eq | Op::Ne | Op::In | Op::Intersects => Test::DoubleSet(numbers),
                Op::Lt | Op::Le | Op::Gt | Op::Ge => {
                    Test::DoubleCmp(op, numbers.first().copied().unwrap_or_default())
                }
                _ => return Err(unsupported()),
            }
        }
        FieldType::Bool => {
            let value = values[0].to_ascii_lowercase();
            let flag = match value.as_str() {
                "true" => true,
                "false" => false,
                _ => return Err(bad_value(&values[0])),
            };
            match op {
                Op::Eq | Op::Ne => Test::Bool(flag),
                _ => return Err(unsupported()),
            }
        }
        FieldType::Ip | FieldType::IpNet => {
            let mut nets = Vec::new();
            for value in &values {
                nets.push(parse_net(value).ok_or_else(|| bad_value(value))?);
            }
            match op {
                Op::Eq | Op::Ne | Op::In | Op::Intersects => Test::Nets(nets),
                _ => return Err(unsupported()),
            }
        }
        FieldType::Str => {
            let value = values.first().cloned().unwrap_or_default();
            match op {
                Op::Eq | Op::Ne => Test::StrEq(value),
                Op::In | Op::Intersects => Test::StrSet(values.into_iter().collect()),
                Op::Lt | Op::Le | Op::Gt | Op::Ge => Test::StrCmp(op, value),
                Op::Contains => Test::Contains(value),
                Op::IContains => Test::IContains(value.to_lowercase()),
                Op::StartsWith => Test::StartsWith(value),
                Op::EndsWith => Test::EndsWith(value),
                Op::BContains => {
                    Test::BContains(parse_hex(&value).ok_or_else(|| bad_value(&value))?)
                }
                Op::BStartsWith => {
                    Test::BStartsWith(parse_hex(&value).ok_or_else(|| bad_value(&value))?)
                }
                Op::Glob | Op::IGlob => {
                    let glob = globset::GlobBuilder::new(&value)
                        .case_insensitive(op == Op::IGlob)
                        .literal_separator(false)
                        .build()
                        .map_err(|glob_error| {
                            error(
                                ErrorKind::InvalidOperand,
                                value_at,
                                format!("invalid glob: {glob_error}"),
                            )
                        })?;
                    Test::Glob(glob.compile_matcher())
                }
                Op::Regex => {
                    // RE2 full-match semantics, as libsinsp uses.
                    let regex =
                        regex::Regex::new(&format!("^(?:{value})$")).map_err(|regex_error| {
                            error(
                                ErrorKind::InvalidOperand,
                                value_at,
                                // The regex crate's message spans lines; the last one is the cause.
                                format!(
                                    "invalid regex '{value}': {}",
                                    regex_error
                                        .to_string()
                                        .lines()
                                        .last()
                                        .unwrap_or_default()
                                        .trim_start_matches("error: ")
                                ),
                            )
                        })?;
                    Test::Regex(regex)
                }
                Op::PMatch => Test::PMatch(PathPatterns::new(values).map_err(|glob_error| {
                    error(
                        ErrorKind::InvalidOperand,
                        value_at,
                        format!("invalid pmatch pattern: {glob_error}"),
                    )
                })?),
            }
        }
    };
    if negate && EITHER_END_FIELDS.contains(&field_ref.def.name) {
        // libsinsp's `fd.ip != x` holds when neither end is x (its compare_ip/port/net), not
        // when one end differs; an absent field still fails.
        let present = Check {
            field: field_ref.clone(),
            test: Test::Exists,
            negate: false,
        };
        let equal = Check {
            field: field_ref,
            test,
            negate: false,
        };
        return Ok(Node::And(vec![
            Node::Check(Box::new(present)),
            Node::Not(Box::new(Node::Check(Box::new(equal)))),
        ]));
    }
    Ok(Node::Check(Box::new(Check {
        field: field_ref,
        test,
        negate,
    })))
}

/// `evt.around[T]=D`: the events within D milliseconds of the time T (nanoseconds since the
/// epoch, as `evt.rawtime` gives it), both ends included, as libsinsp compares them. Its only
/// operator is `=` and its value a number, not a field: it compiles to two comparisons of the
/// event's time, which the evidence shows under the name as written.
fn compile_around(
    field: &FieldExpr,
    around: FieldRef,
    op: Op,
    rhs: &Rhs,
) -> Result<Node, CompileError> {
    let invalid = |at: usize, message: String| Err(error(ErrorKind::InvalidOperand, at, message));
    if op != Op::Eq {
        return invalid(
            field.at,
            format!(
                "evt.around supports only the '=' operator (evt.around[T]=D), not '{}'",
                op.as_str()
            ),
        );
    }
    if !around.transformers.is_empty() {
        return invalid(field.at, "evt.around takes no transformer".to_owned());
    }
    let FieldArg::Key(center) = &around.arg else {
        return invalid(field.at, "evt.around needs a time argument".to_owned());
    };
    let Ok(center_ns) = center.trim().parse::<u64>() else {
        return invalid(
            field.at,
            format!("evt.around needs a time in nanoseconds since the epoch, not '{center}'"),
        );
    };
    let Rhs::Value { text, at } = rhs else {
        return invalid(
            field.at,
            "evt.around compares with a number of milliseconds (evt.around[T]=D)".to_owned(),
        );
    };
    let Ok(reach_ms) = text.trim().parse::<u64>() else {
        return invalid(
            *at,
            format!("evt.around needs a number of milliseconds, not '{text}'"),
        );
    };
    let Some((time, _)) = fields::lookup("evt.rawtime") else {
        return invalid(
            field.at,
            "evt.around needs the field evt.rawtime".to_owned(),
        );
    };
    let reach_ns = i128::from(reach_ms) * 1_000_000;
    // Event times are below i64::MAX; a bound past either end holds for every event.
    let bound = |ns: i128| ns.clamp(0, i128::from(i64::MAX)) as i64;
    let time = FieldRef {
        def: time,
        arg: FieldArg::None,
        transformers: Vec::new(),
        display: around.display,
        since: None,
    };
    let within = |op: Op, limit_ns: i128| {
        Node::Check(Box::new(Check {
            field: time.clone(),
            test: Test::IntCmp(op, bound(limit_ns)),
            negate: false,
        }))
    };
    Ok(Node::And(vec![
        within(Op::Ge, i128::from(center_ns) - reach_ns),
        within(Op::Le, i128::from(center_ns) + reach_ns),
    ]))
}

/// Fields that stand for both ends of a connection: `=` holds when either end matches
/// (libsinsp compares `fd.proto` with `fd.port`'s `compare_port`).
const EITHER_END_FIELDS: [&str; 4] = ["fd.ip", "fd.net", "fd.port", "fd.proto"];

/// Rewrites `or` nodes: checks of one field with `=`/`in`, `contains` or `startswith` merge
/// into one hash set, Aho-Corasick automaton or prefix trie, and constants fold away.
pub(crate) fn optimize(node: Node) -> Node {
    match node {
        Node::And(children) => {
            let mut kept = Vec::new();
            for child in children.into_iter().map(optimize) {
                match child {
                    Node::Const(true) => {}
                    Node::Const(false) => return Node::Const(false),
                    Node::And(inner) => kept.extend(inner),
                    other => kept.push(other),
                }
            }
            match kept.len() {
                0 => Node::Const(true),
                1 => kept.remove(0),
                _ => Node::And(kept),
            }
        }
        Node::Or(children) => {
            let mut kept: Vec<Node> = Vec::new();
            let mut kinds: Option<KindSet> = None;
            for child in children.into_iter().map(optimize) {
                match child {
                    Node::Const(false) => {}
                    Node::Const(true) => return Node::Const(true),
                    Node::Or(inner) => kept.extend(inner),
                    Node::EventType(set) => kinds = Some(kinds.unwrap_or(KindSet::NONE).union(set)),
                    other => kept.push(other),
                }
            }
            if let Some(kinds) = kinds {
                kept.insert(0, Node::EventType(kinds));
            }
            let kept = merge_checks(kept);
            match kept.len() {
                0 => Node::Const(false),
                1 => kept.into_iter().next().unwrap_or(Node::Const(false)),
                _ => Node::Or(kept),
            }
        }
        Node::Not(child) => match optimize(*child) {
            Node::Const(value) => Node::Const(!value),
            Node::Not(inner) => *inner,
            other => Node::Not(Box::new(other)),
        },
        // Memoizing pays only for a macro of more than one check.
        Node::Memo(slot, child) => match optimize(*child) {
            simple @ (Node::Const(_) | Node::EventType(_) | Node::Check(_)) => simple,
            Node::Not(inner) if matches!(*inner, Node::Check(_) | Node::EventType(_)) => {
                Node::Not(inner)
            }
            other => Node::Memo(slot, Box::new(other)),
        },
        other => other,
    }
}

/// Folds what a rule's event kinds decide: an `evt.type` test that holds (or fails) for every
/// kind the rule is indexed under, and a check on a field none of those kinds supplies (which
/// is always false, as an absent field fails every check). Then orders `and`/`or` children
/// cheapest first; evaluation has no side effects but for the checks that keep state, so
/// order changes only speed (and the children of a node with such a check keep their order).
pub(crate) fn specialize(node: Node, kinds: KindSet) -> Node {
    let specialized = match node {
        Node::And(children) => {
            Node::And(children.into_iter().map(|c| specialize(c, kinds)).collect())
        }
        Node::Or(children) => {
            Node::Or(children.into_iter().map(|c| specialize(c, kinds)).collect())
        }
        Node::Not(child) => Node::Not(Box::new(specialize(*child, kinds))),
        Node::Memo(slot, child) => Node::Memo(slot, Box::new(specialize(*child, kinds))),
        Node::EventType(set) if set.intersect(kinds) == kinds => Node::Const(true),
        Node::EventType(set) if set.intersect(kinds) == KindSet::NONE => Node::Const(false),
        Node::Check(check) => {
            let supplied = |field: &FieldRef| field.def.kinds.intersect(kinds) != KindSet::NONE;
            let other_supplied = match &check.test {
                Test::Field(_, other) => supplied(other),
                _ => true,
            };
            if supplied(&check.field) && other_supplied {
                Node::Check(check)
            } else {
                Node::Const(false)
            }
        }
        other => other,
    };
    let mut optimized = optimize(specialized);
    sort_by_cost(&mut optimized);
    optimized
}

/// A rough evaluation cost.
fn cost(node: &Node) -> f64 {
    match node {
        Node::Const(_) | Node::EventType(_) => 0.1,
        Node::Not(child) | Node::Memo(_, child) => cost(child),
        Node::And(children) | Node::Or(children) => children.iter().map(cost).sum::<f64>(),
        Node::Check(check) => {
            // Extraction is an indirect call whatever the type; set lookups and comparisons
            // are cheap next to it, regexes, globs, case folding and transformers are not.
            let field = if check.field.transformers.is_empty() {
                1.0
            } else {
                4.0
            };
            let test = match check.test {
                Test::Regex(_) | Test::IContains(_) | Test::Field(..) | Test::Glob(_) => 3.0,
                _ => 0.0,
            };
            // Fields built per call (command lines, ancestry lists, rendered arguments).
            let built = match check.field.def.name {
                "proc.cmdline"
                | "proc.args"
                | "proc.pcmdline"
                | "proc.acmdline"
                | "evt.arg"
                | "evt.args"
                | "evt.rawarg"
                | "thread.cap_effective"
                | "thread.cap_permitted"
                | "thread.cap_inheritable"
                | "proc.aname"
                | "proc.aexe"
                | "proc.aexepath" => 3.0,
                _ => 0.0,
            };
            field + test + built
        }
    }
}

/// A rough chance that a node holds: a test against literal values usually fails, a
/// negated one usually holds, flags are a coin toss.
fn chance(node: &Node) -> f64 {
    match node {
        Node::Const(value) => f64::from(u8::from(*value)),
        Node::EventType(_) => 0.5,
        Node::Not(child) => 1.0 - chance(child),
        Node::Memo(_, child) => chance(child),
        Node::And(children) => children.iter().map(chance).product(),
        Node::Or(children) => 1.0 - children.iter().map(|c| 1.0 - chance(c)).product::<f64>(),
        Node::Check(check) => {
            let base = match check.test {
                Test::Exists => 0.8,
                Test::Bool(_) | Test::IntCmp(..) | Test::DoubleCmp(..) | Test::StrCmp(..) => 0.5,
                _ => 0.1,
            };
            if check.negate { 1.0 - base } else { base }
        }
    }
}

/// Orders `and` children by cost over chance of failing and `or` children by cost over
/// chance of holding, the classic order that minimises the expected work of short-circuit
/// evaluation.
fn sort_by_cost(node: &mut Node) {
    match node {
        Node::And(children) if !children.iter().any(Node::keeps_state) => {
            children.iter_mut().for_each(sort_by_cost);
            children.sort_by(|a, b| {
                let key = |n: &Node| cost(n) / (1.0 - chance(n)).max(1e-6);
                key(a).total_cmp(&key(b))
            });
        }
        Node::Or(children) if !children.iter().any(Node::keeps_state) => {
            children.iter_mut().for_each(sort_by_cost);
            children.sort_by(|a, b| {
                let key = |n: &Node| cost(n) / chance(n).max(1e-6);
                key(a).total_cmp(&key(b))
            });
        }
        Node::And(children) | Node::Or(children) => children.iter_mut().for_each(sort_by_cost),
        Node::Not(child) | Node::Memo(_, child) => sort_by_cost(child),
        _ => {}
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Group {
    Equal,
    Contains,
    Prefix,
}

fn group_of(check: &Check) -> Option<Group> {
    if check.negate || check.field.ty() != FieldType::Str {
        return None;
    }
    match check.test {
        Test::StrEq(_) | Test::StrSet(_) => Some(Group::Equal),
        Test::Contains(_) => Some(Group::Contains),
        Test::StartsWith(_) => Some(Group::Prefix),
        _ => None,
    }
}

fn merge_checks(children: Vec<Node>) -> Vec<Node> {
    let mut groups: HashMap<(String, u8), (FieldRef, Vec<String>)> = HashMap::new();
    let mut order: Vec<(String, u8)> = Vec::new();
    let mut kept = Vec::new();
    for child in children {
        let Node::Check(check) = child else {
            kept.push(child);
            continue;
        };
        let Some(group) = group_of(&check) else {
            kept.push(Node::Check(check));
            continue;
        };
        let key = (check.field.display.clone(), group as u8);
        let entry = groups.entry(key.clone()).or_insert_with(|| {
            order.push(key);
            (check.field.clone(), Vec::new())
        });
        match check.test {
            Test::StrEq(value) | Test::Contains(value) | Test::StartsWith(value) => {
                entry.1.push(value)
            }
            Test::StrSet(values) => entry.1.extend(values),
            _ => {}
        }
    }
    for key in order {
        let Some((field, values)) = groups.remove(&key) else {
            continue;
        };
        let test = match key.1 {
            tag if tag == Group::Equal as u8 => {
                if values.len() == 1 {
                    Test::StrEq(values.into_iter().next().unwrap_or_default())
                } else {
                    Test::StrSet(values.into_iter().collect())
                }
            }
            tag if tag == Group::Contains as u8 => {
                if values.len() == 1 {
                    Test::Contains(values.into_iter().next().unwrap_or_default())
                } else {
                    match AhoCorasick::new(&values) {
                        Ok(automaton) => Test::ContainsAny(automaton),
                        // Building can only fail on size limits; keep the checks unmerged.
                        Err(_) => {
                            for value in values {
                                kept.push(Node::Check(Box::new(Check {
                                    field: field.clone(),
                                    test: Test::Contains(value),
                                    negate: false,
                                })));
                            }
                            continue;
                        }
                    }
                }
            }
            _ => {
                if values.len() == 1 {
                    Test::StartsWith(values.into_iter().next().unwrap_or_default())
                } else {
                    Test::Prefixes(PrefixTrie::new(values))
                }
            }
        };
        kept.push(Node::Check(Box::new(Check {
            field,
            test,
            negate: false,
        })));
    }
    kept
}

/// Expression walker used for macro and list reference discovery.
pub(crate) fn references<'e>(
    expr: &'e Expr,
    macros: &mut Vec<(&'e str, usize)>,
    lists: &mut Vec<&'e str>,
) {
    match expr {
        Expr::And(children) | Expr::Or(children) => {
            for child in children {
                references(child, macros, lists);
            }
        }
        Expr::Not(child) => references(child, macros, lists),
        Expr::Macro { name, at } => macros.push((name, *at)),
        Expr::Exists { .. } => {}
        Expr::Modified { items, .. } => lists.extend(items.iter().map(|(item, _)| item.as_str())),
        Expr::Compare { rhs, .. } => match rhs {
            Rhs::List { items } => lists.extend(items.iter().map(|(item, _)| item.as_str())),
            Rhs::ListRef { name, .. } => lists.push(name),
            Rhs::Value { .. } | Rhs::Field(_) => {}
        },
    }
}
