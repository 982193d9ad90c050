//! Falco-compatible detection rules: load rules files, compile them, evaluate events.
//!
//! # Overview
//!
//! [`RuleSet::load_files`] (or [`RuleSet::load`] for in-memory [`RuleSource`]s) reads Falco
//! rules files in order, later files overriding earlier ones, and compiles every rule. Loading
//! never fails as a whole: each broken item yields an [`Error`] (with its [`ErrorKind`], file,
//! line, column and item name) and the other items still load; questionable items yield
//! [`Warning`]s. An [`Engine`] then evaluates [`palisade_event::Event`]s against the rule set
//! and returns an [`Alert`] for **every** rule that matches, carrying the rendered output and
//! the value of every field the rule uses as evidence.
//!
//! # Supported Falco language
//!
//! - Items `list`, `macro`, `rule` (`desc`, `condition`, `output`, `priority`, `tags`,
//!   `enabled`, `source`, `exceptions`, `skip-if-unknown-filter`, `warn_evttypes`),
//!   `required_engine_version` and `required_plugin_versions`.
//! - `override` (`append` / `replace` per key, with Falco's allowed keys), the older
//!   `append: true`, and items that only set `enabled`.
//! - Exceptions with `fields` as a list (with `comps`, default `=`) or as one field (default
//!   comparison `in`), tuple values, nested value lists, and list names as values.
//! - Falco's loading rules: a macro sees only macros defined before it (rules see all), an
//!   undefined macro is an error, unused lists and macros are warnings, lists expand lists
//!   defined before them, a rule for another source (`k8s_audit`, ...) is skipped with a
//!   warning.
//! - The condition grammar of libsinsp: `and`, `or`, `not`, parentheses, the operators
//!   `= == != < <= > >= contains icontains bcontains startswith bstartswith endswith glob
//!   iglob regex pmatch in intersects exists`, quoted strings with escapes, lists, list and
//!   macro references, field arguments (`proc.aname[2]`, `evt.arg.flags`, `evt.arg[0]`),
//!   transformers `tolower toupper b64 basename len`, `val(field)` on the right, and the
//!   `anyof` / `oneof` / `allof (...)` list modifiers of string operators.
//! - Output templates with `%field`, `%field[arg]` and `%(field)`; the deprecated
//!   `%container.info` prints nothing, as in current Falco (with a warning).
//! - The `evt.*`, `proc.*`, `thread.*`, `user.*`, `group.*`, `fd.*`, `fs.path.*`,
//!   `container.*`, `k8s.*`, `syslog.*`, `fdlist.*` and `mesos.*` fields listed by
//!   [`supported_fields`]: every field of Falco's syscall-source reference, with libsinsp's
//!   value types and argument forms (`docs/falco-fields.md` lists each and whether the
//!   sensor supplies it).
//!
//! - Two sources: `syscall` (the sensor's [`palisade_event::Event`]s) and `k8s_audit`
//!   (Kubernetes API server audit events, carried as [`palisade_event::Payload::K8sAudit`]),
//!   with the `ka.*` fields of Falco's k8saudit plugin and the json plugin's `jevt.value`,
//!   `jevt.obj` and `jevt.rawtime` (also as `json.*`).
//!   A rule only ever sees events of its own source.
//!
//! The sensor reports each call once, on exit, with all its arguments: a check of `evt.dir`
//! for `<` or `>` selects that report, so rules written for libsinsp's enter records fire
//! once per call too.
//!
//! Not supported yet: other plugin sources (rules for them load with a warning and are
//! skipped), rule `capture` settings (accepted and ignored), and the libsinsp and container
//! plugin fields the sensor cannot provide (`evt.num`, `fd.name_changed`, `fd.sip.name`,
//! `thread.cpu`, `syslog.message`, `fdlist.nums`, ...: their descriptions say why), which
//! load as in Falco but are always absent. Process state the sensor reads only when a rule
//! needs it (`proc.env`; the descriptor limit at the event for `proc.fdlimit`, and the open
//! descriptors of `proc.fdopencount` and `proc.fdusage`: see [`Engine::reads_environment`],
//! [`Engine::reads_fd_state`], [`Engine::counts_open_fds`]) is absent in events from a
//! sensor that was not asked for it, and `proc.fdlimit` is then the limit of the process's
//! last exec or fork rather than the one at the event.
//!
//! # Palisade's default rules and alert metadata
//!
//! [`default_rule_sources`] returns Palisade's own rules (compiled into the binary), one or
//! more per alert [`Category`]. Each [`Alert`] carries the rule's category, MITRE ATT&CK
//! techniques and suggested response, read from the rule's tags ([`RuleMetadata`]), and the
//! [`ResponseAction`]s to carry out, which are empty unless the rule requests them with a
//! `response.*` tag **and** is on [`EngineConfig::response_allowlist`].
//!
//! # Design decision: compile once, index by event type
//!
//! Conditions are compiled after macro and list expansion: `in` lists become hash sets,
//! `or`-chains of `startswith` on one field become a prefix trie and of `contains` an
//! Aho-Corasick automaton, `pmatch` lists a path trie (plus per-component globs for entries
//! like `/opt/*/bin`, as libsinsp allows), regexes and globs are built once.
//! As in Falco, each rule's set of event types is derived from its condition, and the engine
//! only evaluates the rules indexed under an event's kind, so most rules never run for most
//! events.
//!
//! # Example
//!
//! ```
//! use palisade_event::{Event, EventKind};
//! use palisade_rules::{Engine, EngineConfig, RuleSet, RuleSource};
//!
//! let yaml = r#"
//! - list: shell_binaries
//!   items: [bash, sh, zsh]
//! - macro: spawned_process
//!   condition: evt.type in (execve, execveat)
//! - rule: Shell in container
//!   desc: A shell started in a container
//!   condition: spawned_process and container.id != host and proc.name in (shell_binaries)
//!   output: "Shell %proc.name in %container.id (parent %proc.pname)"
//!   priority: WARNING
//!   tags: [container, shell]
//! "#;
//! let rule_set = RuleSet::load(&[RuleSource { name: "local.yaml".into(), text: yaml.into() }]);
//! assert!(rule_set.errors().is_empty());
//! let mut engine = Engine::new(rule_set, &EngineConfig::default());
//!
//! let mut event = Event::new(EventKind::Execve);
//! event.process.name = "bash".into();
//! event.container = Some(palisade_event::Container { id: "0123456789abcdef".into(), ..Default::default() }.into());
//! let mut alerts = Vec::new();
//! engine.process(&event, &mut alerts);
//! assert_eq!(alerts.len(), 1);
//! assert_eq!(alerts[0].rule, "Shell in container");
//! assert_eq!(alerts[0].output, "Shell bash in 0123456789ab (parent <NA>)");
//! ```
#![deny(missing_docs)]

mod compile;
mod condition;
mod defaults;
mod engine;
mod error;
mod fields;
mod findings;
mod k8saudit;
mod metadata;
mod output;
mod ruleset;
mod scenario;
mod text;

pub use defaults::{DEFAULT_RULE_FILES, default_rule_sources};
pub use engine::{Alert, Engine, EngineConfig, Throttle};
pub use error::{Error, ErrorKind, Location, Warning, WarningKind};
pub use fields::supported_fields;
pub use metadata::{Category, ResponseAction, RuleMetadata};
pub use ruleset::{ENGINE_VERSION, MAX_RULES_FILE_BYTES, Priority, Rule, RuleSet, RuleSource};
pub use scenario::{
    ContainerSetup, Expect, Place, Scenario, ScenarioError, Setup, Step, parse_scenarios,
};

#[cfg(test)]
mod tests {
    /// Every module opens with a `//!` doc comment (rust-analyzer's `TidyDocs`).
    #[test]
    fn every_module_is_documented() {
        let checked = palisade_testdata::assert_every_module_documented(env!("CARGO_MANIFEST_DIR"));
        assert_eq!(checked, 18);
    }
}
