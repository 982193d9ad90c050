//! Loading Falco rules files into a [`RuleSet`]: reading the YAML items, merging appends and
//! overrides across files, expanding lists and macros, and compiling each rule.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};

use crate::compile::{self, CompileError, FieldRef, Node, Resolver};
use crate::condition::{self, Expr, Op};
use crate::error::{Error, ErrorKind, Location, Warning, WarningKind};
use crate::fields::KindSet;
use crate::output::OutputTemplate;
use crate::text::{CondText, Origin};

/// The rules-engine version this crate implements, for `required_engine_version`.
pub const ENGINE_VERSION: (u64, u64, u64) = (0, 59, 0);

/// Plugins whose fields this engine provides natively, with the version it stands in for
/// (`k8saudit`'s `ka.*` fields and the `json` plugin's `jevt.*`/`json.*` fields for the
/// `k8s_audit` source).
const BUILTIN_PLUGINS: [(&str, (u64, u64, u64)); 4] = [
    ("container", (0, 6, 0)),
    ("k8saudit", (0, 11, 0)),
    ("json", (0, 7, 0)),
    // Its k8smeta.* fields, from the agent's own Kubernetes API client.
    ("k8smeta", (0, 4, 0)),
];

/// How urgent an alert is, in Falco's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// System is unusable.
    Emergency,
    /// Action must be taken immediately.
    Alert,
    /// Critical conditions.
    Critical,
    /// Error conditions.
    Error,
    /// Warning conditions.
    Warning,
    /// Normal but significant.
    Notice,
    /// Informational.
    Informational,
    /// Debug-level messages.
    Debug,
}

impl Priority {
    /// Parses a priority name, case-insensitively (`INFO` is accepted for `Informational`).
    pub fn parse(name: &str) -> Option<Priority> {
        Some(match name.to_ascii_lowercase().as_str() {
            "emergency" => Priority::Emergency,
            "alert" => Priority::Alert,
            "critical" => Priority::Critical,
            "error" => Priority::Error,
            "warning" => Priority::Warning,
            "notice" => Priority::Notice,
            "informational" | "info" => Priority::Informational,
            "debug" => Priority::Debug,
            _ => return None,
        })
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Priority::Emergency => "Emergency",
            Priority::Alert => "Alert",
            Priority::Critical => "Critical",
            Priority::Error => "Error",
            Priority::Warning => "Warning",
            Priority::Notice => "Notice",
            Priority::Informational => "Informational",
            Priority::Debug => "Debug",
        })
    }
}

/// One rules file to load.
#[derive(Debug, Clone)]
pub struct RuleSource {
    /// The name errors report (usually the path).
    pub name: String,
    /// The YAML text.
    pub text: String,
}

/// A rule as defined by the files, after appends and overrides.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Rule name.
    pub name: String,
    /// Description.
    pub desc: String,
    /// Condition text, with exceptions not yet applied.
    pub condition: String,
    /// Output template.
    pub output: String,
    /// Priority.
    pub priority: Priority,
    /// Tags.
    pub tags: Vec<String>,
    /// Whether the rule runs.
    pub enabled: bool,
    /// Event source (`syscall` unless stated).
    pub source: String,
    /// Where the rule is defined.
    pub location: Location,
}

/// A compiled, enabled rule.
pub(crate) struct CompiledRule {
    pub rule_index: usize,
    pub node: Node,
    pub kinds: KindSet,
    pub output: OutputTemplate,
    pub evidence: Vec<FieldRef>,
}

/// The result of loading rules files: the rules, counts and every diagnostic.
///
/// Loading never fails as a whole: an item with an error is reported and left out, and the
/// remaining items load (the partial-success model of `ignore`'s `Error::Partial`).
pub struct RuleSet {
    pub(crate) rules: Vec<Rule>,
    pub(crate) compiled: Vec<CompiledRule>,
    n_macros: usize,
    n_lists: usize,
    errors: Vec<Error>,
    warnings: Vec<Warning>,
}

impl RuleSet {
    /// Loads rules from in-memory sources, later sources overriding earlier ones.
    pub fn load(sources: &[RuleSource]) -> RuleSet {
        let mut loader = Loader::default();
        for source in sources {
            loader.read_source(source);
        }
        loader.finish()
    }

    /// Loads rules files in order; an unreadable file is an [`ErrorKind::Io`] error.
    pub fn load_files<P: AsRef<Path>>(paths: &[P]) -> RuleSet {
        RuleSet::load_files_after(&[], paths)
    }

    /// Loads in-memory sources (such as [`crate::default_rule_sources`]), then rules files,
    /// in order; an unreadable file is an [`ErrorKind::Io`] error.
    pub fn load_files_after<P: AsRef<Path>>(sources: &[RuleSource], paths: &[P]) -> RuleSet {
        let mut loader = Loader::default();
        for source in sources {
            loader.read_source(source);
        }
        for path in paths {
            let name = path.as_ref().display().to_string();
            match read_rules_file(path.as_ref()) {
                Ok(text) => loader.read_source(&RuleSource { name, text }),
                Err(message) => {
                    loader.files.push(name.clone());
                    loader.errors.push(Error {
                        kind: ErrorKind::Io,
                        location: Location {
                            file: name.clone(),
                            line: 0,
                            column: 0,
                        },
                        item: name,
                        message,
                    });
                }
            }
        }
        loader.finish()
    }

    /// Every rule defined, enabled or not, in order of first definition.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Number of rules that compiled and are enabled for the `syscall` source.
    pub fn n_active_rules(&self) -> usize {
        self.compiled.len()
    }

    /// Number of macros defined.
    pub fn n_macros(&self) -> usize {
        self.n_macros
    }

    /// Number of lists defined.
    pub fn n_lists(&self) -> usize {
        self.n_lists
    }

    /// Load errors; the items concerned are not loaded.
    pub fn errors(&self) -> &[Error] {
        &self.errors
    }

    /// Load warnings.
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }
}

impl fmt::Debug for RuleSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuleSet")
            .field("rules", &self.rules.len())
            .field("active", &self.compiled.len())
            .field("macros", &self.n_macros)
            .field("lists", &self.n_lists)
            .field("errors", &self.errors.len())
            .field("warnings", &self.warnings.len())
            .finish()
    }
}

/// A scalar or a (nested) sequence of scalars from an exception.
#[derive(Debug, Clone)]
enum Entry {
    Scalar(String, Arc<Origin>),
    List(Vec<Entry>, Arc<Origin>),
}

impl Entry {
    fn origin(&self) -> &Arc<Origin> {
        match self {
            Entry::Scalar(_, origin) | Entry::List(_, origin) => origin,
        }
    }
}

#[derive(Debug, Clone)]
struct ExceptionInfo {
    name: String,
    fields: Option<Entry>,
    comps: Option<Entry>,
    values: Vec<Entry>,
    origin: Arc<Origin>,
}

#[derive(Debug, Clone)]
struct ListInfo {
    items: Vec<String>,
    location: Location,
    /// Global definition order of the first definition.
    index: u64,
    /// Items defined before this sequence number are visible from this list.
    visibility: u64,
}

#[derive(Debug, Clone)]
struct MacroInfo {
    condition: CondText,
    /// Memo slot: the macro's position in definition order.
    slot: usize,
    location: Location,
    index: u64,
    visibility: u64,
}

#[derive(Debug, Clone)]
struct RuleInfo {
    rule: Rule,
    condition: CondText,
    output: CondText,
    exceptions: Vec<ExceptionInfo>,
    skip_if_unknown_filter: bool,
    warn_evttypes: bool,
}

/// Accumulates items across files.
#[derive(Default)]
struct Loader {
    lists: HashMap<String, ListInfo>,
    list_order: Vec<String>,
    macros: HashMap<String, MacroInfo>,
    macro_order: Vec<String>,
    rules: HashMap<String, RuleInfo>,
    rule_order: Vec<String>,
    sequence: u64,
    /// Source names in load order, to sort diagnostics by file, line and column.
    files: Vec<String>,
    errors: Vec<Error>,
    warnings: Vec<Warning>,
}

/// One file being read: its name and a map from character index to byte offset.
struct FileCtx<'s> {
    name: Arc<str>,
    text: &'s str,
    char_offsets: Vec<usize>,
}

impl FileCtx<'_> {
    fn byte(&self, char_index: usize) -> usize {
        self.char_offsets
            .get(char_index)
            .copied()
            .unwrap_or(self.text.len())
    }

    fn origin(&self, node: &MarkedYaml<'_>) -> Arc<Origin> {
        let start = self.byte(node.span.start.index());
        let end = self.byte(node.span.end.index()).max(start);
        Arc::new(Origin {
            file: self.name.clone(),
            raw: self.text[start..end].to_owned(),
            line: node.span.start.line(),
            column: node.span.start.col() + 1,
        })
    }

    fn location(&self, node: &MarkedYaml<'_>) -> Location {
        Location {
            file: self.name.to_string(),
            line: node.span.start.line(),
            column: node.span.start.col() + 1,
        }
    }
}

/// An item-level failure: where and why.
struct ItemError {
    kind: ErrorKind,
    location: Location,
    message: String,
}

fn schema(location: Location, message: impl Into<String>) -> ItemError {
    ItemError {
        kind: ErrorKind::Schema,
        location,
        message: message.into(),
    }
}

fn get<'a, 'i>(node: &'a MarkedYaml<'i>, key: &str) -> Option<&'a MarkedYaml<'i>> {
    node.data.as_mapping_get(key)
}

fn scalar_text(file: &FileCtx<'_>, node: &MarkedYaml<'_>) -> Option<String> {
    match &node.data {
        YamlData::Value(Scalar::String(text)) => Some(text.to_string()),
        YamlData::Value(Scalar::Null) => Some(String::new()),
        YamlData::Value(_) => {
            let start = file.byte(node.span.start.index());
            let end = file.byte(node.span.end.index()).max(start);
            Some(file.text[start..end].trim().to_owned())
        }
        YamlData::Representation(text, _, _) => Some(text.to_string()),
        YamlData::Tagged(_, inner) => scalar_text(file, inner),
        _ => None,
    }
}

fn scalar_bool(node: &MarkedYaml<'_>) -> Option<bool> {
    match &node.data {
        YamlData::Value(Scalar::Boolean(flag)) => Some(*flag),
        YamlData::Value(Scalar::String(text)) | YamlData::Representation(text, _, _) => {
            match text.as_ref() {
                "true" | "True" | "TRUE" => Some(true),
                "false" | "False" | "FALSE" => Some(false),
                _ => None,
            }
        }
        _ => None,
    }
}

fn parse_version(text: &str) -> Option<(u64, u64, u64)> {
    let text = text.trim();
    if let Ok(minor) = text.parse::<u64>() {
        // An integer engine version N means 0.N.0.
        return Some((0, minor, 0));
    }
    let mut parts = text.splitn(3, '.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    let patch_text = parts.next().unwrap_or("0");
    let patch_digits: String = patch_text
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    Some((major, minor, patch_digits.parse().ok()?))
}

const RULE_KEYS: [&str; 15] = [
    "rule",
    "desc",
    "condition",
    "output",
    "priority",
    "tags",
    "enabled",
    "source",
    "exceptions",
    "skip-if-unknown-filter",
    "warn_evttypes",
    "append",
    "override",
    "capture",
    "capture_duration",
];

/// The largest rules file read: Falco's biggest official files are under 200 KB, so anything
/// near this is not a rules file, and reading it whole would only cost memory.
pub const MAX_RULES_FILE_BYTES: u64 = 8 * 1024 * 1024;

/// Reads a rules file of at most [`MAX_RULES_FILE_BYTES`]; the error is the message to report.
fn read_rules_file(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let file = std::fs::File::open(path)
        .map_err(|io_error| format!("cannot read the file: {io_error}"))?;
    let mut bytes = Vec::new();
    file.take(MAX_RULES_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|io_error| format!("cannot read the file: {io_error}"))?;
    if bytes.len() as u64 > MAX_RULES_FILE_BYTES {
        return Err(format!(
            "the file is larger than {} MiB, the limit for a rules file",
            MAX_RULES_FILE_BYTES / (1024 * 1024)
        ));
    }
    String::from_utf8(bytes)
        .map_err(|utf8_error| format!("cannot read the file: it is not UTF-8 ({utf8_error})"))
}

/// How many under-indented closing brackets [`load_yaml_leniently`] re-indents in one file.
const MAX_YAML_REINDENTS: usize = 256;

/// The most text [`load_yaml_leniently`] parses for one file, retries included.
const MAX_YAML_REPARSE_BYTES: usize = 64 * 1024 * 1024;

/// Parses rules YAML, accepting what yaml-cpp (Falco's parser) accepts and `saphyr` 0.3
/// rejects: a flow collection whose closing `]` or `}` (or a `,`) starts a line at the
/// indentation of the key that holds it, after a quoted scalar (Falco's sandbox rules file
/// has `items: [\n    "a",\n    "b"\n  ]`). Such a line is indented one more space and the
/// text parsed again; only that line's column changes, so every reported line number and
/// every other column stays that of the file as written. Returns the text that was parsed.
fn load_yaml_leniently(
    text: &str,
) -> (
    std::borrow::Cow<'_, str>,
    Result<Vec<MarkedYaml<'static>>, saphyr::ScanError>,
) {
    let mut text = std::borrow::Cow::Borrowed(text);
    // Each retry parses the whole text again: bound the bytes parsed, not only the retries.
    let mut parse_budget = MAX_YAML_REPARSE_BYTES;
    for _ in 0..MAX_YAML_REINDENTS {
        if parse_budget < text.len() {
            break;
        }
        parse_budget -= text.len();
        let scan_error = match MarkedYaml::load_from_str(&text) {
            Ok(documents) => return (text, Ok(documents)),
            Err(scan_error) => scan_error,
        };
        let Some(offset) = text
            .char_indices()
            .nth(scan_error.marker().index())
            .map(|(offset, _)| offset)
        else {
            return (text, Err(scan_error));
        };
        let line_start = text[..offset].rfind('\n').map_or(0, |newline| newline + 1);
        let closes_flow = matches!(text[offset..].chars().next(), Some(']' | '}' | ','));
        let starts_line = text[line_start..offset].chars().all(|c| c == ' ');
        if scan_error.info() != "invalid indentation" || !closes_flow || !starts_line {
            return (text, Err(scan_error));
        }
        text.to_mut().insert(offset, ' ');
    }
    let last = MarkedYaml::load_from_str(&text);
    (text, last)
}

impl Loader {
    fn read_source(&mut self, source: &RuleSource) {
        self.files.push(source.name.clone());
        let (text, parsed) = load_yaml_leniently(&source.text);
        let file = FileCtx {
            name: Arc::from(source.name.as_str()),
            text: &text,
            char_offsets: text.char_indices().map(|(offset, _)| offset).collect(),
        };
        let documents = match parsed {
            Ok(documents) => documents,
            Err(scan_error) => {
                let marker = scan_error.marker();
                self.errors.push(Error {
                    kind: ErrorKind::Yaml,
                    location: Location {
                        file: source.name.clone(),
                        line: marker.line(),
                        column: marker.col() + 1,
                    },
                    item: source.name.clone(),
                    message: format!("invalid YAML: {}", scan_error.info()),
                });
                return;
            }
        };
        for document in &documents {
            match &document.data {
                YamlData::Value(Scalar::Null) => continue,
                YamlData::Sequence(items) => {
                    for item in items {
                        if matches!(item.data, YamlData::Value(Scalar::Null)) {
                            continue;
                        }
                        let name = item_name(&file, item);
                        if let Err(item_error) = self.read_item(&file, item) {
                            self.errors.push(Error {
                                kind: item_error.kind,
                                location: item_error.location,
                                item: name,
                                message: item_error.message,
                            });
                        }
                    }
                }
                _ => self.errors.push(Error {
                    kind: ErrorKind::Schema,
                    location: file.location(document),
                    item: source.name.clone(),
                    message: "rules content is not a YAML sequence of items".to_owned(),
                }),
            }
        }
    }

    fn warn(
        &mut self,
        kind: WarningKind,
        location: Location,
        item: &str,
        message: impl Into<String>,
    ) {
        self.warnings.push(Warning {
            kind,
            location,
            item: item.to_owned(),
            message: message.into(),
        });
    }

    fn next_sequence(&mut self) -> u64 {
        self.sequence += 1;
        self.sequence
    }

    fn read_item(&mut self, file: &FileCtx<'_>, item: &MarkedYaml<'_>) -> Result<(), ItemError> {
        let location = file.location(item);
        if !item.data.is_mapping() {
            return Err(schema(location, "each item must be a mapping"));
        }
        if let Some(version) = get(item, "required_engine_version") {
            let text = scalar_text(file, version).unwrap_or_default();
            let Some(required) = parse_version(&text) else {
                return Err(schema(
                    file.location(version),
                    format!("cannot parse engine version '{text}'; expected x.y.z"),
                ));
            };
            if required > ENGINE_VERSION {
                let (major, minor, patch) = ENGINE_VERSION;
                return Err(ItemError {
                    kind: ErrorKind::EngineVersion,
                    location: file.location(version),
                    message: format!(
                        "rules require engine version {text}, but this engine is {major}.{minor}.{patch}"
                    ),
                });
            }
            return Ok(());
        }
        if let Some(plugins) = get(item, "required_plugin_versions") {
            let YamlData::Sequence(entries) = &plugins.data else {
                return Err(schema(
                    file.location(plugins),
                    "required_plugin_versions must be a sequence",
                ));
            };
            for entry in entries {
                let mut candidates = vec![entry];
                if let Some(YamlData::Sequence(alternatives)) =
                    get(entry, "alternatives").map(|a| &a.data)
                {
                    candidates.extend(alternatives.iter());
                }
                let mut satisfied = false;
                let mut names = Vec::new();
                for candidate in candidates {
                    let name = get(candidate, "name").and_then(|n| scalar_text(file, n));
                    let version = get(candidate, "version").and_then(|v| scalar_text(file, v));
                    let (Some(name), Some(version)) = (name, version) else {
                        return Err(schema(
                            file.location(candidate),
                            "a plugin requirement needs 'name' and 'version'",
                        ));
                    };
                    let required = parse_version(&version);
                    satisfied |= BUILTIN_PLUGINS.iter().any(|(builtin, provided)| {
                        *builtin == name && required.is_some_and(|r| r <= *provided)
                    });
                    names.push(name);
                }
                if !satisfied {
                    self.warn(
                        WarningKind::UnknownPlugin,
                        file.location(entry),
                        &format!("plugin '{}'", names.join("' or '")),
                        "required plugin is not provided; rules for its source are skipped",
                    );
                }
            }
            return Ok(());
        }
        if let Some(name_node) = get(item, "list") {
            return self.read_list(file, item, name_node);
        }
        if let Some(name_node) = get(item, "macro") {
            return self.read_macro(file, item, name_node);
        }
        if let Some(name_node) = get(item, "rule") {
            return self.read_rule(file, item, name_node);
        }
        self.warn(
            WarningKind::UnknownItem,
            location,
            &file.name,
            "unknown top-level item",
        );
        Ok(())
    }

    /// Reads `override:` into (appended keys, replaced keys), checking which are allowed.
    fn overrides(
        file: &FileCtx<'_>,
        item: &MarkedYaml<'_>,
        appendable: &[&str],
        replaceable: &[&str],
    ) -> Result<(Vec<String>, Vec<String>), ItemError> {
        let Some(node) = get(item, "override") else {
            return Ok((Vec::new(), Vec::new()));
        };
        let YamlData::Mapping(map) = &node.data else {
            return Err(schema(file.location(node), "'override' must be a mapping"));
        };
        let (mut append, mut replace) = (Vec::new(), Vec::new());
        for (key_node, operation_node) in map {
            let key = scalar_text(file, key_node).unwrap_or_default();
            let operation = scalar_text(file, operation_node).unwrap_or_default();
            match operation.as_str() {
                "append" if appendable.contains(&key.as_str()) => append.push(key),
                "replace" if replaceable.contains(&key.as_str()) => replace.push(key),
                "append" => {
                    return Err(schema(
                        file.location(key_node),
                        format!("key '{key}' cannot be appended to, use 'replace' instead"),
                    ));
                }
                "replace" => {
                    return Err(schema(
                        file.location(key_node),
                        format!("key '{key}' cannot be replaced"),
                    ));
                }
                _ => {
                    return Err(schema(
                        file.location(operation_node),
                        format!("invalid override operation for key '{key}': '{operation}'"),
                    ));
                }
            }
        }
        for key in append.iter().chain(&replace) {
            if get(item, key).is_none() {
                return Err(schema(
                    file.location(node),
                    format!("an override for '{key}' was specified but '{key}' is not defined"),
                ));
            }
        }
        Ok((append, replace))
    }

    fn append_flag(
        &mut self,
        file: &FileCtx<'_>,
        item: &MarkedYaml<'_>,
        name: &str,
    ) -> Result<bool, ItemError> {
        let Some(node) = get(item, "append") else {
            return Ok(false);
        };
        let Some(append) = scalar_bool(node) else {
            return Err(schema(
                file.location(node),
                "'append' must be true or false",
            ));
        };
        if append {
            self.warn(
                WarningKind::Deprecated,
                file.location(node),
                name,
                "'append' is deprecated; use 'override' instead",
            );
        }
        Ok(append)
    }

    fn read_list(
        &mut self,
        file: &FileCtx<'_>,
        item: &MarkedYaml<'_>,
        name_node: &MarkedYaml<'_>,
    ) -> Result<(), ItemError> {
        let name = scalar_text(file, name_node).unwrap_or_default();
        let location = file.location(item);
        if name.is_empty()
            || name
                .chars()
                .any(|c| c.is_whitespace() || "()\"'=,".contains(c))
        {
            return Err(schema(location, format!("invalid list name '{name}'")));
        }
        let label = format!("list '{name}'");
        self.unknown_keys(
            file,
            item,
            &["list", "items", "append", "override", "source"],
            &label,
        );
        let items_node = get(item, "items")
            .ok_or_else(|| schema(location.clone(), "item has no mapping for key 'items'"))?;
        let items = match &items_node.data {
            YamlData::Sequence(entries) => entries
                .iter()
                .map(|entry| {
                    scalar_text(file, entry)
                        .ok_or_else(|| schema(file.location(entry), "list items must be strings"))
                })
                .collect::<Result<Vec<_>, _>>()?,
            YamlData::Value(Scalar::Null) => Vec::new(),
            _ => {
                return Err(schema(
                    file.location(items_node),
                    "'items' must be a sequence",
                ));
            }
        };
        let append_flag = self.append_flag(file, item, &label)?;
        let (append_keys, replace_keys) = Self::overrides(file, item, &["items"], &["items"])?;
        if append_flag && !(append_keys.is_empty() && replace_keys.is_empty()) {
            return Err(schema(
                location,
                "'append' and 'override' cannot be used together",
            ));
        }
        let sequence = self.next_sequence();
        if append_flag || !append_keys.is_empty() {
            let Some(list) = self.lists.get_mut(&name) else {
                return Err(ItemError {
                    kind: ErrorKind::UnknownItem,
                    location,
                    message: "list has 'append' or an append override but no list by that name already exists".to_owned(),
                });
            };
            list.items.extend(items);
            list.visibility = sequence;
            return Ok(());
        }
        if !replace_keys.is_empty() && !self.lists.contains_key(&name) {
            return Err(ItemError {
                kind: ErrorKind::UnknownItem,
                location,
                message: "list has a replace override but no list by that name already exists"
                    .to_owned(),
            });
        }
        let index = match self.lists.get(&name) {
            Some(previous) => previous.index,
            None => {
                self.list_order.push(name.clone());
                sequence
            }
        };
        self.lists.insert(
            name,
            ListInfo {
                items,
                location,
                index,
                visibility: sequence,
            },
        );
        Ok(())
    }

    fn read_macro(
        &mut self,
        file: &FileCtx<'_>,
        item: &MarkedYaml<'_>,
        name_node: &MarkedYaml<'_>,
    ) -> Result<(), ItemError> {
        let name = scalar_text(file, name_node).unwrap_or_default();
        let location = file.location(item);
        let valid_name = name.starts_with(|c: char| c.is_ascii_alphabetic())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_name {
            return Err(schema(location, format!("invalid macro name '{name}'")));
        }
        let label = format!("macro '{name}'");
        self.unknown_keys(
            file,
            item,
            &["macro", "condition", "append", "override", "source"],
            &label,
        );
        let condition_node = get(item, "condition")
            .ok_or_else(|| schema(location.clone(), "item has no mapping for key 'condition'"))?;
        let text = scalar_text(file, condition_node).ok_or_else(|| {
            schema(
                file.location(condition_node),
                "'condition' must be a string",
            )
        })?;
        let condition = CondText::from_scalar(&text, Some(file.origin(condition_node)));
        let append_flag = self.append_flag(file, item, &label)?;
        let (append_keys, replace_keys) =
            Self::overrides(file, item, &["condition"], &["condition"])?;
        if append_flag && !(append_keys.is_empty() && replace_keys.is_empty()) {
            return Err(schema(
                location,
                "'append' and 'override' cannot be used together",
            ));
        }
        let sequence = self.next_sequence();
        if append_flag || !append_keys.is_empty() {
            let Some(existing) = self.macros.get_mut(&name) else {
                return Err(ItemError {
                    kind: ErrorKind::UnknownItem,
                    location,
                    message: "macro has 'append' or an append override but no macro by that name already exists".to_owned(),
                });
            };
            existing.condition.push(" ", None);
            existing.condition.push_text(&condition);
            existing.visibility = sequence;
            return Ok(());
        }
        if !replace_keys.is_empty() && !self.macros.contains_key(&name) {
            return Err(ItemError {
                kind: ErrorKind::UnknownItem,
                location,
                message: "macro has a replace override but no macro by that name already exists"
                    .to_owned(),
            });
        }
        let (index, slot) = match self.macros.get(&name) {
            Some(previous) => (previous.index, previous.slot),
            None => {
                self.macro_order.push(name.clone());
                (sequence, self.macro_order.len() - 1)
            }
        };
        self.macros.insert(
            name,
            MacroInfo {
                condition,
                slot,
                location,
                index,
                visibility: sequence,
            },
        );
        Ok(())
    }

    fn unknown_keys(
        &mut self,
        file: &FileCtx<'_>,
        item: &MarkedYaml<'_>,
        known: &[&str],
        label: &str,
    ) {
        if let YamlData::Mapping(map) = &item.data {
            for key_node in map.keys() {
                let key = scalar_text(file, key_node).unwrap_or_default();
                if !known.contains(&key.as_str()) {
                    self.warn(
                        WarningKind::UnknownKey,
                        file.location(key_node),
                        label,
                        format!("unknown key '{key}'"),
                    );
                }
            }
        }
    }

    fn read_exceptions(
        &mut self,
        file: &FileCtx<'_>,
        item: &MarkedYaml<'_>,
        appending: bool,
        label: &str,
    ) -> Result<Vec<ExceptionInfo>, ItemError> {
        let Some(node) = get(item, "exceptions") else {
            return Ok(Vec::new());
        };
        let entries = match &node.data {
            YamlData::Sequence(entries) => entries,
            YamlData::Value(Scalar::Null) => return Ok(Vec::new()),
            _ => {
                return Err(schema(
                    file.location(node),
                    "rule exceptions must be a sequence",
                ));
            }
        };
        let mut exceptions: Vec<ExceptionInfo> = Vec::new();
        for entry in entries {
            if !entry.data.is_mapping() {
                return Err(schema(
                    file.location(entry),
                    "rule exception must be a mapping",
                ));
            }
            let name = get(entry, "name")
                .and_then(|n| scalar_text(file, n))
                .filter(|n| !n.is_empty())
                .ok_or_else(|| {
                    schema(
                        file.location(entry),
                        "rule exception has no mapping for key 'name'",
                    )
                })?;
            if exceptions.iter().any(|existing| existing.name == name) {
                return Err(schema(
                    file.location(entry),
                    format!("exception names in the same rule must be unique: '{name}'"),
                ));
            }
            let fields = get(entry, "fields")
                .map(|f| read_entry(file, f))
                .transpose()?;
            if fields.is_none() && !appending {
                return Err(schema(
                    file.location(entry),
                    format!("exception '{name}' has no mapping for key 'fields'"),
                ));
            }
            let comps = get(entry, "comps")
                .map(|c| read_entry(file, c))
                .transpose()?;
            let values = match get(entry, "values") {
                Some(values_node) => match &values_node.data {
                    YamlData::Sequence(values) => values
                        .iter()
                        .map(|v| read_entry(file, v))
                        .collect::<Result<Vec<_>, _>>()?,
                    YamlData::Value(Scalar::Null) => Vec::new(),
                    _ => {
                        return Err(schema(
                            file.location(values_node),
                            "rule exception values must be a sequence",
                        ));
                    }
                },
                None => {
                    if appending {
                        self.warn(
                            WarningKind::EmptyAppend,
                            file.location(entry),
                            label,
                            "overriding/appending exception with no values",
                        );
                    }
                    Vec::new()
                }
            };
            exceptions.push(ExceptionInfo {
                name,
                fields,
                comps,
                values,
                origin: file.origin(entry),
            });
        }
        Ok(exceptions)
    }

    fn read_rule(
        &mut self,
        file: &FileCtx<'_>,
        item: &MarkedYaml<'_>,
        name_node: &MarkedYaml<'_>,
    ) -> Result<(), ItemError> {
        let name = scalar_text(file, name_node).unwrap_or_default();
        let location = file.location(item);
        if name.is_empty() {
            return Err(schema(location, "rule name must be a non-empty string"));
        }
        let label = format!("rule '{name}'");
        self.unknown_keys(file, item, &RULE_KEYS, &label);
        let text_of = |key: &str| -> Result<Option<(String, Arc<Origin>)>, ItemError> {
            match get(item, key) {
                Some(node) => match scalar_text(file, node) {
                    Some(text) => Ok(Some((text, file.origin(node)))),
                    None => Err(schema(
                        file.location(node),
                        format!("'{key}' must be a string"),
                    )),
                },
                None => Ok(None),
            }
        };
        let bool_of = |key: &str| -> Result<Option<bool>, ItemError> {
            match get(item, key) {
                Some(node) => scalar_bool(node).map(Some).ok_or_else(|| {
                    schema(
                        file.location(node),
                        format!("'{key}' must be true or false"),
                    )
                }),
                None => Ok(None),
            }
        };
        let tags_of = || -> Result<Option<Vec<String>>, ItemError> {
            match get(item, "tags") {
                Some(node) => match &node.data {
                    YamlData::Sequence(tags) => Ok(Some(
                        tags.iter()
                            .filter_map(|tag| scalar_text(file, tag))
                            .collect(),
                    )),
                    YamlData::Value(Scalar::Null) => Ok(Some(Vec::new())),
                    _ => Err(schema(file.location(node), "'tags' must be a sequence")),
                },
                None => Ok(None),
            }
        };
        let priority_of = || -> Result<Option<Priority>, ItemError> {
            match get(item, "priority") {
                Some(node) => {
                    let text = scalar_text(file, node).unwrap_or_default();
                    Priority::parse(&text).map(Some).ok_or_else(|| {
                        schema(file.location(node), format!("invalid priority '{text}'"))
                    })
                }
                None => Ok(None),
            }
        };
        let append_flag = self.append_flag(file, item, &label)?;
        let (append_keys, replace_keys) = Self::overrides(
            file,
            item,
            &["condition", "output", "desc", "tags", "exceptions"],
            &[
                "condition",
                "output",
                "desc",
                "priority",
                "tags",
                "exceptions",
                "enabled",
                "warn_evttypes",
                "skip-if-unknown-filter",
            ],
        )?;
        let has_overrides = !append_keys.is_empty() || !replace_keys.is_empty();
        if append_flag && has_overrides {
            return Err(schema(
                location,
                "'append' and 'override' cannot be used together",
            ));
        }
        if has_overrides {
            for key in [
                "condition",
                "output",
                "desc",
                "priority",
                "tags",
                "exceptions",
                "enabled",
                "warn_evttypes",
                "skip-if-unknown-filter",
            ] {
                if get(item, key).is_some()
                    && !append_keys.iter().chain(&replace_keys).any(|k| k == key)
                {
                    return Err(schema(
                        location,
                        format!(
                            "unexpected key '{key}': no corresponding entry under 'override' is defined"
                        ),
                    ));
                }
            }
            let appended_exceptions = if append_keys.iter().any(|k| k == "exceptions") {
                self.read_exceptions(file, item, true, &label)?
            } else {
                Vec::new()
            };
            let replaced_exceptions = if replace_keys.iter().any(|k| k == "exceptions") {
                Some(self.read_exceptions(file, item, false, &label)?)
            } else {
                None
            };
            let Some(existing) = self.rules.get_mut(&name) else {
                return Err(ItemError {
                    kind: ErrorKind::UnknownItem,
                    location,
                    message: "rule has an override but no rule by that name already exists"
                        .to_owned(),
                });
            };
            for key in &append_keys {
                match key.as_str() {
                    "condition" | "output" | "desc" => {
                        if let Some((text, origin)) = text_of(key)? {
                            let target = match key.as_str() {
                                "condition" => &mut existing.condition,
                                "output" => &mut existing.output,
                                _ => {
                                    existing.rule.desc = format!("{} {text}", existing.rule.desc);
                                    continue;
                                }
                            };
                            target.push(" ", None);
                            target.push(&text, Some(origin));
                        }
                    }
                    "tags" => existing.rule.tags.extend(tags_of()?.unwrap_or_default()),
                    _ => merge_exceptions(&mut existing.exceptions, appended_exceptions.clone())
                        .map_err(|message| schema(location.clone(), message))?,
                }
            }
            for key in &replace_keys {
                match key.as_str() {
                    "condition" => {
                        if let Some((text, origin)) = text_of("condition")? {
                            existing.condition = CondText::from_scalar(&text, Some(origin));
                        }
                    }
                    "output" => {
                        if let Some((text, origin)) = text_of("output")? {
                            existing.output = CondText::from_scalar(text.trim(), Some(origin));
                        }
                    }
                    "desc" => {
                        existing.rule.desc =
                            text_of("desc")?.map(|(text, _)| text).unwrap_or_default()
                    }
                    "priority" => {
                        existing.rule.priority = priority_of()?.unwrap_or(existing.rule.priority)
                    }
                    "tags" => existing.rule.tags = tags_of()?.unwrap_or_default(),
                    "enabled" => existing.rule.enabled = bool_of("enabled")?.unwrap_or(true),
                    "warn_evttypes" => {
                        existing.warn_evttypes = bool_of("warn_evttypes")?.unwrap_or(true)
                    }
                    "skip-if-unknown-filter" => {
                        existing.skip_if_unknown_filter =
                            bool_of("skip-if-unknown-filter")?.unwrap_or(false)
                    }
                    _ => existing.exceptions = replaced_exceptions.clone().unwrap_or_default(),
                }
            }
            existing.rebuild_condition_text();
            return Ok(());
        }
        if append_flag {
            let exceptions = self.read_exceptions(file, item, true, &label)?;
            let condition = text_of("condition")?;
            if condition.is_none() && get(item, "exceptions").is_none() {
                return Err(schema(
                    location,
                    "appended rule must have exceptions or condition property",
                ));
            }
            let Some(existing) = self.rules.get_mut(&name) else {
                return Err(ItemError {
                    kind: ErrorKind::UnknownItem,
                    location,
                    message: "rule has 'append' but no rule by that name already exists".to_owned(),
                });
            };
            if let Some((text, origin)) = condition.filter(|(text, _)| !text.is_empty()) {
                existing.condition.push(" ", None);
                existing.condition.push(&text, Some(origin));
            }
            merge_exceptions(&mut existing.exceptions, exceptions)
                .map_err(|message| schema(location.clone(), message))?;
            existing.rebuild_condition_text();
            return Ok(());
        }
        let defines = ["condition", "output", "desc", "priority"]
            .iter()
            .any(|key| get(item, key).is_some());
        if !defines {
            // An item with only `enabled` switches an earlier rule on or off.
            let enabled = bool_of("enabled")?.ok_or_else(|| {
                schema(location.clone(), "item has no mapping for key 'condition'")
            })?;
            self.warn(
                WarningKind::Deprecated,
                location.clone(),
                &label,
                "an item with only 'enabled' is deprecated; use 'override: {enabled: replace}'",
            );
            let Some(existing) = self.rules.get_mut(&name) else {
                return Err(ItemError {
                    kind: ErrorKind::UnknownItem,
                    location,
                    message: "rule has only 'enabled' but no rule by that name already exists"
                        .to_owned(),
                });
            };
            existing.rule.enabled = enabled;
            return Ok(());
        }
        let required = |key: &str| -> Result<(String, Arc<Origin>), ItemError> {
            text_of(key)?.ok_or_else(|| {
                schema(
                    location.clone(),
                    format!("item has no mapping for key '{key}'"),
                )
            })
        };
        let (condition_text, condition_origin) = required("condition")?;
        let (output_text, output_origin) = required("output")?;
        let (desc, _) = required("desc")?;
        let priority = priority_of()?
            .ok_or_else(|| schema(location.clone(), "item has no mapping for key 'priority'"))?;
        let exceptions = self.read_exceptions(file, item, false, &label)?;
        let rule = Rule {
            name: name.clone(),
            desc,
            condition: condition_text.clone(),
            output: output_text.trim().to_owned(),
            priority,
            tags: tags_of()?.unwrap_or_default(),
            enabled: bool_of("enabled")?.unwrap_or(true),
            source: text_of("source")?.map_or_else(|| "syscall".to_owned(), |(text, _)| text),
            location: location.clone(),
        };
        let info = RuleInfo {
            rule,
            condition: CondText::from_scalar(&condition_text, Some(condition_origin)),
            output: CondText::from_scalar(output_text.trim(), Some(output_origin)),
            exceptions,
            skip_if_unknown_filter: bool_of("skip-if-unknown-filter")?.unwrap_or(false),
            warn_evttypes: bool_of("warn_evttypes")?.unwrap_or(true),
        };
        match self.rules.get(&name) {
            Some(previous) if previous.rule.source != info.rule.source => {
                return Err(schema(
                    info.rule.location.clone(),
                    "rule has been re-defined with a different source",
                ));
            }
            Some(_) => {}
            None => self.rule_order.push(name.clone()),
        }
        self.rules.insert(name, info);
        Ok(())
    }

    fn finish(mut self) -> RuleSet {
        // Lists: expand references to lists defined earlier, in definition order.
        let mut list_used: HashSet<String> = HashSet::new();
        let mut order: Vec<String> = self.list_order.clone();
        order.sort_by_key(|name| self.lists[name].index);
        let mut expanded: HashMap<String, Vec<String>> = HashMap::new();
        for name in &order {
            let list = &self.lists[name];
            let mut items = Vec::new();
            for item in &list.items {
                match (self.lists.get(item), expanded.get(item)) {
                    (Some(other), Some(other_items)) if other.index < list.visibility => {
                        list_used.insert(item.clone());
                        items.extend(other_items.iter().cloned());
                    }
                    _ => items.push(unquote(item)),
                }
            }
            expanded.insert(name.clone(), items);
        }

        // Macros: parse, and check macro references against visibility.
        let mut parsed_macros: HashMap<String, Result<Expr, ()>> = HashMap::new();
        let mut macro_used: HashSet<String> = HashSet::new();
        for name in &self.macro_order {
            let info = &self.macros[name];
            let label = format!("macro '{name}'");
            match condition::parse_condition(&info.condition.text) {
                Ok(expr) => {
                    let (mut macro_refs, mut list_refs) = (Vec::new(), Vec::new());
                    compile::references(&expr, &mut macro_refs, &mut list_refs);
                    list_used.extend(
                        list_refs
                            .iter()
                            .filter(|l| self.lists.contains_key(**l))
                            .map(|l| (*l).to_owned()),
                    );
                    let mut ok = true;
                    for (referenced, at) in macro_refs {
                        match self.macros.get(referenced) {
                            Some(other) if other.index < info.visibility => {
                                macro_used.insert(referenced.to_owned());
                            }
                            _ => {
                                ok = false;
                                self.errors.push(Error {
                                    kind: ErrorKind::UnknownMacro,
                                    location: info
                                        .condition
                                        .locate(at)
                                        .unwrap_or_else(|| info.location.clone()),
                                    item: label.clone(),
                                    message: format!(
                                        "undefined macro '{referenced}' used in filter"
                                    ),
                                });
                            }
                        }
                    }
                    parsed_macros.insert(name.clone(), if ok { Ok(expr) } else { Err(()) });
                }
                Err(parse_error) => {
                    self.errors.push(Error {
                        kind: ErrorKind::Syntax,
                        location: info
                            .condition
                            .locate(parse_error.offset)
                            .unwrap_or_else(|| info.location.clone()),
                        item: label,
                        message: parse_error.message,
                    });
                    parsed_macros.insert(name.clone(), Err(()));
                }
            }
        }

        // Rules.
        let mut rules = Vec::new();
        let mut compiled = Vec::new();
        for name in &self.rule_order {
            let info = &self.rules[name];
            let label = format!("rule '{name}'");
            let rule_index = rules.len();
            rules.push(info.rule.clone());
            let Some(source_kinds) = source_kinds(&info.rule.source) else {
                self.warnings.push(Warning {
                    kind: WarningKind::UnknownSource,
                    location: info.rule.location.clone(),
                    item: label,
                    message: format!(
                        "source '{}' is not evaluated by this engine; rule skipped",
                        info.rule.source
                    ),
                });
                continue;
            };
            let text = match exception_text(info) {
                Ok(text) => text,
                Err((message, location)) => {
                    self.errors.push(Error {
                        kind: ErrorKind::Schema,
                        location,
                        item: label,
                        message,
                    });
                    continue;
                }
            };
            if info.output.text.contains("%container.info") {
                self.warnings.push(Warning {
                    kind: WarningKind::Deprecated,
                    location: info.rule.location.clone(),
                    item: label.clone(),
                    message: "%container.info is deprecated; it prints nothing (container fields belong in the output itself)".to_owned(),
                });
            }
            let output = match OutputTemplate::parse(&info.output.text) {
                Ok(output) => output,
                Err(compile_error) => {
                    let location = info
                        .output
                        .locate(compile_error.offset)
                        .unwrap_or_else(|| info.rule.location.clone());
                    if compile_error.kind == ErrorKind::UnknownField && info.skip_if_unknown_filter
                    {
                        self.warnings.push(Warning {
                            kind: WarningKind::SkippedUnknownFilter,
                            location,
                            item: label,
                            message: format!(
                                "{} in output; rule skipped (skip-if-unknown-filter)",
                                compile_error.message
                            ),
                        });
                    } else {
                        self.errors.push(Error {
                            kind: compile_error.kind,
                            location,
                            item: label,
                            message: format!("{} in output", compile_error.message),
                        });
                    }
                    continue;
                }
            };
            let expr = match condition::parse_condition(&text.text) {
                Ok(expr) => expr,
                Err(parse_error) => {
                    self.errors.push(Error {
                        kind: ErrorKind::Syntax,
                        location: text
                            .locate(parse_error.offset)
                            .unwrap_or_else(|| info.rule.location.clone()),
                        item: label,
                        message: parse_error.message,
                    });
                    continue;
                }
            };
            let (mut macro_refs, mut list_refs) = (Vec::new(), Vec::new());
            compile::references(&expr, &mut macro_refs, &mut list_refs);
            list_used.extend(
                list_refs
                    .iter()
                    .filter(|l| self.lists.contains_key(**l))
                    .map(|l| (*l).to_owned()),
            );
            macro_used.extend(
                macro_refs
                    .iter()
                    .filter(|(m, _)| self.macros.contains_key(*m))
                    .map(|(m, _)| (*m).to_owned()),
            );
            let context = Expander {
                macros: &self.macros,
                parsed: &parsed_macros,
                lists: &expanded,
            };
            let node = match context.expand(&expr, &text, &mut Vec::new(), 0) {
                Ok(node) => compile::optimize(node),
                Err((compile_error, location)) => {
                    let location = location.unwrap_or_else(|| info.rule.location.clone());
                    if compile_error.kind == ErrorKind::UnknownField && info.skip_if_unknown_filter
                    {
                        self.warnings.push(Warning {
                            kind: WarningKind::SkippedUnknownFilter,
                            location,
                            item: label,
                            message: format!(
                                "{}; rule skipped (skip-if-unknown-filter)",
                                compile_error.message
                            ),
                        });
                    } else {
                        self.errors.push(Error {
                            kind: compile_error.kind,
                            location,
                            item: label,
                            message: compile_error.message,
                        });
                    }
                    continue;
                }
            };
            // A rule only sees its own source's events, whatever its condition allows.
            let kinds = node.kinds().0.intersect(source_kinds);
            let node = compile::specialize(node, kinds);
            if kinds == KindSet::NONE && info.warn_evttypes {
                self.warnings.push(Warning {
                    kind: WarningKind::NoEventType,
                    location: info.rule.location.clone(),
                    item: label.clone(),
                    message: "rule's event types are not produced by this engine's sensor; it never fires"
                        .to_owned(),
                });
            }
            if kinds == source_kinds && info.rule.source == "syscall" && info.warn_evttypes {
                self.warnings.push(Warning {
                    kind: WarningKind::NoEventType,
                    location: info.rule.location.clone(),
                    item: label.clone(),
                    message: "rule matches too many evt.type values; this has a significant performance penalty"
                        .to_owned(),
                });
            }
            if !info.rule.enabled {
                continue;
            }
            let mut evidence_refs = Vec::new();
            node.fields(&mut evidence_refs);
            let mut evidence: Vec<FieldRef> = evidence_refs.into_iter().cloned().collect();
            for field in output.fields() {
                if !evidence.iter().any(|seen| seen.display == field.display) {
                    evidence.push(field.clone());
                }
            }
            compiled.push(CompiledRule {
                rule_index,
                node,
                kinds,
                output,
                evidence,
            });
        }

        for name in &self.macro_order {
            if !macro_used.contains(name) {
                self.warnings.push(Warning {
                    kind: WarningKind::UnusedMacro,
                    location: self.macros[name].location.clone(),
                    item: format!("macro '{name}'"),
                    message: "macro not referred to by any other rule/macro".to_owned(),
                });
            }
        }
        for name in &self.list_order {
            if !list_used.contains(name) {
                self.warnings.push(Warning {
                    kind: WarningKind::UnusedList,
                    location: self.lists[name].location.clone(),
                    item: format!("list '{name}'"),
                    message: "list not referred to by any other rule/macro".to_owned(),
                });
            }
        }
        let files = &self.files;
        let order = |location: &Location| {
            let file_index = files.iter().position(|name| *name == location.file);
            (
                file_index.unwrap_or(usize::MAX),
                location.line,
                location.column,
            )
        };
        self.errors.sort_by_key(|error| order(&error.location));
        self.warnings
            .sort_by_key(|warning| order(&warning.location));
        RuleSet {
            rules,
            compiled,
            n_macros: self.macros.len(),
            n_lists: self.lists.len(),
            errors: self.errors,
            warnings: self.warnings,
        }
    }
}

/// List items may carry their own quotes (`'"10.0.0.0/8"'`), as Falco pastes items into
/// condition text; strip one matching pair and its escapes.
fn unquote(item: &str) -> String {
    let bytes = item.as_bytes();
    let quoted = bytes.len() >= 2
        && (bytes[0] == b'"' || bytes[0] == b'\'')
        && bytes[bytes.len() - 1] == bytes[0];
    if !quoted {
        return item.to_owned();
    }
    let delimiter = bytes[0] as char;
    let inner = &item[1..item.len() - 1];
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(escaped) if escaped == delimiter || escaped == '\\' => out.push(escaped),
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn item_name(file: &FileCtx<'_>, item: &MarkedYaml<'_>) -> String {
    for kind in ["rule", "macro", "list"] {
        if let Some(name) = get(item, kind).and_then(|n| scalar_text(file, n)) {
            return format!("{kind} '{name}'");
        }
    }
    file.name.to_string()
}

fn read_entry(file: &FileCtx<'_>, node: &MarkedYaml<'_>) -> Result<Entry, ItemError> {
    let origin = file.origin(node);
    match &node.data {
        YamlData::Sequence(items) => Ok(Entry::List(
            items
                .iter()
                .map(|item| read_entry(file, item))
                .collect::<Result<_, _>>()?,
            origin,
        )),
        _ => match scalar_text(file, node) {
            Some(text) => Ok(Entry::Scalar(text, origin)),
            None => Err(schema(
                file.location(node),
                "exception entries must be strings or lists",
            )),
        },
    }
}

/// Appends exceptions: values of an existing exception with the same name are extended,
/// new names are added (and must then define their fields).
fn merge_exceptions(
    existing: &mut Vec<ExceptionInfo>,
    appended: Vec<ExceptionInfo>,
) -> Result<(), String> {
    for exception in appended {
        match existing.iter_mut().find(|e| e.name == exception.name) {
            Some(previous) => {
                if exception.fields.is_some() || exception.comps.is_some() {
                    return Err(format!(
                        "exception '{}': can not append fields or comps to an existing exception, only values",
                        exception.name
                    ));
                }
                previous.values.extend(exception.values)
            }
            None => {
                if exception.fields.is_none() {
                    return Err(format!(
                        "exception '{}' must have fields property with a list of fields",
                        exception.name
                    ));
                }
                if exception.values.is_empty() {
                    return Err(format!(
                        "exception '{}' must have values property with a list of values",
                        exception.name
                    ));
                }
                existing.push(exception);
            }
        }
    }
    Ok(())
}

impl RuleInfo {
    /// Keeps the public `Rule::condition` in step with appended condition text.
    fn rebuild_condition_text(&mut self) {
        self.rule.condition = self.condition.text.clone();
        self.rule.output = self.output.text.clone();
    }
}

/// Quotes a value for generated condition text.
fn quote(value: &str) -> String {
    let mut quoted = String::from("\"");
    for c in value.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\r' => quoted.push_str("\\r"),
            '\t' => quoted.push_str("\\t"),
            '\x08' => quoted.push_str("\\b"),
            '\x0c' => quoted.push_str("\\f"),
            other => quoted.push(other),
        }
    }
    quoted.push('"');
    quoted
}

/// Builds the rule's condition with its exceptions: `(cond) and not (e1) and not (e2)`,
/// each piece of generated text mapped to the YAML scalar it came from.
fn exception_text(info: &RuleInfo) -> Result<CondText, (String, Location)> {
    if info.exceptions.iter().all(|e| e.values.is_empty()) {
        return Ok(info.condition.clone());
    }
    let mut text = CondText::default();
    text.push("(", None);
    text.push_text(&info.condition);
    text.push(")", None);
    for exception in &info.exceptions {
        if exception.values.is_empty() {
            continue;
        }
        let fail = |message: String, origin: &Arc<Origin>| {
            Err((
                format!("exception '{}': {message}", exception.name),
                origin.location(),
            ))
        };
        let Some(fields) = &exception.fields else {
            return fail("has no 'fields'".to_owned(), &exception.origin);
        };
        let check_comp = |comp: &str, origin: &Arc<Origin>| -> Result<Op, (String, Location)> {
            Op::from_name(comp).ok_or_else(|| {
                (
                    format!(
                        "exception '{}': '{comp}' is not a supported comparison operator",
                        exception.name
                    ),
                    origin.location(),
                )
            })
        };
        text.push(" and not (", None);
        match fields {
            Entry::Scalar(field, field_origin) => {
                let (comp, comp_origin) = match &exception.comps {
                    Some(Entry::Scalar(comp, origin)) => (comp.clone(), Some(origin.clone())),
                    Some(Entry::List(_, origin)) => {
                        return fail(
                            "'comps' must be a single operator when 'fields' is a single field"
                                .to_owned(),
                            origin,
                        );
                    }
                    None => ("in".to_owned(), None),
                };
                let op = check_comp(&comp, comp_origin.as_ref().unwrap_or(&exception.origin))?;
                if !op.takes_list() {
                    return fail(
                        "when fields is a single value, comps must be one of (in, pmatch, intersects)"
                            .to_owned(),
                        comp_origin.as_ref().unwrap_or(&exception.origin),
                    );
                }
                text.push(field, Some(field_origin.clone()));
                text.push(&format!(" {} ", op.as_str()), comp_origin.clone());
                text.push("(", None);
                for (index, value) in exception.values.iter().enumerate() {
                    if index > 0 {
                        text.push(", ", None);
                    }
                    let Entry::Scalar(value, origin) = value else {
                        return fail(
                            "expected values array to contain a list of strings".to_owned(),
                            value.origin(),
                        );
                    };
                    text.push(&quote(value), Some(origin.clone()));
                }
                text.push(")", None);
            }
            Entry::List(field_entries, fields_origin) => {
                let mut field_names = Vec::new();
                for entry in field_entries {
                    let Entry::Scalar(name, origin) = entry else {
                        return fail(
                            "'fields' must be a list of field names".to_owned(),
                            entry.origin(),
                        );
                    };
                    field_names.push((name.clone(), origin.clone()));
                }
                let comps: Vec<(String, Option<Arc<Origin>>)> = match &exception.comps {
                    None => field_names.iter().map(|_| ("=".to_owned(), None)).collect(),
                    Some(Entry::List(comps, comps_origin)) => {
                        if comps.len() != field_names.len() {
                            return fail(
                                "fields and comps lists must have equal length".to_owned(),
                                comps_origin,
                            );
                        }
                        let mut out = Vec::new();
                        for comp in comps {
                            let Entry::Scalar(comp, origin) = comp else {
                                return fail(
                                    "'comps' must be a list of operators".to_owned(),
                                    comp.origin(),
                                );
                            };
                            out.push((comp.clone(), Some(origin.clone())));
                        }
                        out
                    }
                    Some(Entry::Scalar(_, origin)) => {
                        return fail(
                            "'comps' must be a list when 'fields' is a list".to_owned(),
                            origin,
                        );
                    }
                };
                let mut ops = Vec::new();
                for (comp, origin) in &comps {
                    ops.push(check_comp(comp, origin.as_ref().unwrap_or(fields_origin))?);
                }
                for (tuple_index, tuple) in exception.values.iter().enumerate() {
                    let Entry::List(values, tuple_origin) = tuple else {
                        return fail(
                            "each value must be a list with one entry per field".to_owned(),
                            tuple.origin(),
                        );
                    };
                    if values.len() != field_names.len() {
                        return fail(
                            "fields and values lists must have equal length".to_owned(),
                            tuple_origin,
                        );
                    }
                    if tuple_index > 0 {
                        text.push(" or ", None);
                    }
                    text.push("(", None);
                    for (index, ((field, field_origin), value)) in
                        field_names.iter().zip(values).enumerate()
                    {
                        if index > 0 {
                            text.push(" and ", None);
                        }
                        let op = ops[index];
                        text.push(field, Some(field_origin.clone()));
                        text.push(&format!(" {} ", op.as_str()), comps[index].1.clone());
                        match value {
                            Entry::List(items, _) => {
                                text.push("(", None);
                                for (item_index, item) in items.iter().enumerate() {
                                    if item_index > 0 {
                                        text.push(", ", None);
                                    }
                                    let Entry::Scalar(item, origin) = item else {
                                        return fail(
                                            "nested value lists may only hold strings".to_owned(),
                                            item.origin(),
                                        );
                                    };
                                    text.push(&quote(item), Some(origin.clone()));
                                }
                                text.push(")", None);
                            }
                            Entry::Scalar(value, origin) if op.takes_list() => {
                                // A scalar for a list operator names a list, or is one item.
                                text.push("(", None);
                                text.push(&quote(value), Some(origin.clone()));
                                text.push(")", None);
                            }
                            Entry::Scalar(value, origin) => {
                                text.push(&quote(value), Some(origin.clone()))
                            }
                        }
                    }
                    text.push(")", None);
                }
            }
        }
        text.push(")", None);
    }
    Ok(text)
}

/// Expands macros and compiles a rule's condition.
struct Expander<'a> {
    macros: &'a HashMap<String, MacroInfo>,
    parsed: &'a HashMap<String, Result<Expr, ()>>,
    lists: &'a HashMap<String, Vec<String>>,
}

impl Resolver for Expander<'_> {
    fn list(&self, name: &str) -> Option<&[String]> {
        self.lists.get(name).map(Vec::as_slice)
    }
}

type ExpandError = (CompileError, Option<Location>);

/// Maximum nesting of a condition after macro expansion.
const MAX_EXPANDED_DEPTH: usize = 200;

impl Expander<'_> {
    fn expand(
        &self,
        expr: &Expr,
        text: &CondText,
        stack: &mut Vec<String>,
        depth: usize,
    ) -> Result<Node, ExpandError> {
        let located = |compile_error: CompileError| {
            let location = text.locate(compile_error.offset);
            (compile_error, location)
        };
        // Macros nest conditions inside conditions; bound the total depth so that the
        // recursive passes that follow (folding, ordering, evaluation) cannot overflow the
        // stack on hostile input.
        if depth > MAX_EXPANDED_DEPTH {
            return Err(located(CompileError {
                kind: ErrorKind::Syntax,
                offset: 0,
                message: "condition is nested too deeply after macro expansion".to_owned(),
            }));
        }
        Ok(match expr {
            Expr::And(children) => Node::And(
                children
                    .iter()
                    .map(|child| self.expand(child, text, stack, depth + 1))
                    .collect::<Result<_, _>>()?,
            ),
            Expr::Or(children) => Node::Or(
                children
                    .iter()
                    .map(|child| self.expand(child, text, stack, depth + 1))
                    .collect::<Result<_, _>>()?,
            ),
            Expr::Not(child) => Node::Not(Box::new(self.expand(child, text, stack, depth + 1)?)),
            Expr::Macro { name, at } => {
                let fail = |kind, message: String| {
                    Err(located(CompileError {
                        kind,
                        offset: *at,
                        message,
                    }))
                };
                if stack.iter().any(|seen| seen == name) {
                    return fail(
                        ErrorKind::MacroCycle,
                        format!("macro '{name}' refers to itself"),
                    );
                }
                let (Some(info), Some(parsed)) = (self.macros.get(name), self.parsed.get(name))
                else {
                    return fail(
                        ErrorKind::UnknownMacro,
                        format!("undefined macro '{name}' used in filter"),
                    );
                };
                let Ok(body) = parsed else {
                    return fail(
                        ErrorKind::UnknownMacro,
                        format!("macro '{name}' has errors"),
                    );
                };
                stack.push(name.clone());
                let node = self.expand(body, &info.condition, stack, depth + 1);
                stack.pop();
                let node = node?;
                // A macro whose checks keep state (evt.deltatime) is each rule's own, as
                // libsinsp compiles it again into every rule: its result is not shared.
                if node.keeps_state() {
                    node
                } else {
                    Node::Memo(info.slot, Box::new(node))
                }
            }
            Expr::Exists { field } => {
                let field_ref = compile::resolve_field(field).map_err(located)?;
                Node::Check(Box::new(compile::Check {
                    field: field_ref,
                    test: compile::Test::Exists,
                    negate: false,
                }))
            }
            Expr::Compare { field, op, rhs } => {
                compile::compile_compare(field, *op, rhs, self).map_err(located)?
            }
            Expr::Modified {
                field,
                op,
                all,
                items,
            } => compile::compile_modified(field, *op, *all, items, self).map_err(located)?,
        })
    }
}

/// The event kinds a rule of `source` is evaluated on; `None` for sources this engine does
/// not evaluate.
fn source_kinds(source: &str) -> Option<KindSet> {
    match source {
        "syscall" => Some(crate::k8saudit::K8S_AUDIT.complement()),
        "k8s_audit" => Some(crate::k8saudit::K8S_AUDIT),
        _ => None,
    }
}
