//! The engine: evaluates every rule indexed under an event's kind, then applies per-rule
//! deduplication and rate limits.

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};

use palisade_event::{Event, EventKind};

use crate::metadata::{Category, ResponseAction, RuleMetadata};
use crate::ruleset::{Priority, RuleSet};

/// Alert throttling for one rule; the default throttles nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Throttle {
    /// An alert whose rendered output equals one raised by the same rule less than this many
    /// nanoseconds earlier (by event time) is suppressed; 0 disables deduplication.
    pub dedupe_window_ns: u64,
    /// At most this many alerts per second of event time (token bucket, burst of the same
    /// size); `None` means unlimited.
    pub max_per_second: Option<u32>,
}

/// Engine settings.
#[derive(Debug, Clone, Default)]
pub struct EngineConfig {
    /// Throttling for rules without their own entry.
    pub default_throttle: Throttle,
    /// Throttling by rule name.
    pub rule_throttles: HashMap<String, Throttle>,
    /// Names of the rules whose requested response actions (`response.*` tags) are emitted
    /// on their alerts. Empty by default: no rule triggers a response unless listed here.
    pub response_allowlist: HashSet<String>,
}

/// A rule that matched an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// The rule's name.
    pub rule: String,
    /// The rule's priority.
    pub priority: Priority,
    /// The rule's tags.
    pub tags: Vec<String>,
    /// The rule's source (`syscall` or `k8s_audit`).
    pub source: String,
    /// The alert category, from the rule's tags; `None` for rules without one.
    pub category: Option<Category>,
    /// MITRE ATT&CK technique ids, from the rule's tags.
    pub mitre_techniques: Vec<String>,
    /// The suggested response, from the rule's `suggest:` tag.
    pub suggested_response: Option<String>,
    /// Response actions to carry out: those the rule requests, when the rule is on
    /// [`EngineConfig::response_allowlist`]; empty otherwise.
    pub response_actions: Vec<ResponseAction>,
    /// The rendered output.
    pub output: String,
    /// Every field the condition and output use, with its value (`<NA>` when absent), as the
    /// alert's evidence.
    pub fields: Vec<(String, String)>,
    /// Time of the event, nanoseconds since the epoch.
    pub timestamp_ns: u64,
}

#[derive(Debug, Default)]
struct RuleState {
    metadata: RuleMetadata,
    /// The requested actions that the allowlist enables.
    response_actions: Vec<ResponseAction>,
    throttle: Throttle,
    last_seen: HashMap<u64, u64>,
    tokens: f64,
    last_refill_ns: u64,
    suppressed: u64,
}

/// Evaluates a [`RuleSet`] against events.
pub struct Engine {
    rule_set: RuleSet,
    by_kind: Vec<Vec<usize>>,
    state: Vec<RuleState>,
    /// Macro results for the current event, shared by the rules that use each macro.
    memo: Vec<Cell<u8>>,
}

impl Engine {
    /// Builds the per-kind index of the rule set's active rules.
    pub fn new(rule_set: RuleSet, config: &EngineConfig) -> Engine {
        let mut by_kind = vec![Vec::new(); EventKind::ALL.len()];
        let mut state = Vec::new();
        for (compiled_index, compiled) in rule_set.compiled.iter().enumerate() {
            for kind in compiled.kinds.kinds() {
                by_kind[kind.index()].push(compiled_index);
            }
            let rule = &rule_set.rules[compiled.rule_index];
            let name = &rule.name;
            let metadata = RuleMetadata::from_tags(&rule.tags);
            let response_actions = if config.response_allowlist.contains(name) {
                metadata.requested_responses.clone()
            } else {
                Vec::new()
            };
            let throttle = config
                .rule_throttles
                .get(name)
                .copied()
                .unwrap_or(config.default_throttle);
            state.push(RuleState {
                metadata,
                response_actions,
                throttle,
                tokens: f64::from(throttle.max_per_second.unwrap_or(0)),
                ..RuleState::default()
            });
        }
        Engine {
            memo: vec![Cell::new(0); rule_set.n_macros()],
            rule_set,
            by_kind,
            state,
        }
    }

    /// The rules the engine runs.
    pub fn rule_set(&self) -> &RuleSet {
        &self.rule_set
    }

    /// The event kinds at least one active rule can match: a sensor needs to observe only
    /// these (and attaches only their probes).
    pub fn event_kinds(&self) -> impl Iterator<Item = EventKind> + '_ {
        EventKind::ALL
            .iter()
            .copied()
            .filter(|kind| !self.by_kind[kind.index()].is_empty())
    }

    /// Whether an active rule's condition or output reads `field` (a Falco field name such
    /// as `proc.env`): a sensor collects what is costly or sensitive, like the environment,
    /// only when a rule asks for it.
    pub fn reads_field(&self, field: &str) -> bool {
        self.rule_set.compiled.iter().any(|compiled| {
            compiled
                .evidence
                .iter()
                .any(|field_ref| field_ref.def.name == field)
        })
    }

    /// Whether an active rule reads a process's cgroups (`thread.cgroups`,
    /// `thread.cgroup.<controller>`): only then does a sensor read them at every exec and
    /// fork, which walks a cgroup tree for each of five controllers.
    pub fn reads_cgroups(&self) -> bool {
        self.reads_field("thread.cgroups") || self.reads_field("thread.cgroup")
    }

    /// Whether an active rule reads a process environment (`proc.env`, `proc.aenv`): only
    /// then does a sensor need to capture environments, which cost a copy per exec and hold
    /// secrets.
    pub fn reads_environment(&self) -> bool {
        self.reads_field("proc.env") || self.reads_field("proc.aenv")
    }

    /// Whether an active rule reads a process's descriptor state (`proc.fdopencount`,
    /// `proc.fdlimit`, `proc.fdusage`): only then does a sensor read the descriptor limit at
    /// every event.
    pub fn reads_fd_state(&self) -> bool {
        self.reads_field("proc.fdlimit") || self.counts_open_fds()
    }

    /// Whether an active rule reads the count of a process's open descriptors
    /// (`proc.fdopencount`, `proc.fdusage`): only then does a sensor count them at every
    /// event, which walks the descriptor table; `proc.fdlimit` alone needs the limit only.
    pub fn counts_open_fds(&self) -> bool {
        self.reads_field("proc.fdopencount") || self.reads_field("proc.fdusage")
    }

    /// Whether an active rule reads what a process has on descriptors 0, 1 and 2
    /// (`proc.stdin.type`, `proc.stdout.type`, `proc.stderr.type`, `fd.types`): only then does
    /// a sensor read those three descriptors at every event.
    pub fn reads_std_fds(&self) -> bool {
        [
            "proc.stdin.type",
            "proc.stdout.type",
            "proc.stderr.type",
            "fd.types",
        ]
        .iter()
        .any(|field| self.reads_field(field))
    }

    /// The response actions some active rule's alerts carry (requested by the rule and enabled
    /// by [`EngineConfig::response_allowlist`]): what a responder must be ready for before the
    /// first event.
    pub fn response_actions(&self) -> impl Iterator<Item = ResponseAction> + '_ {
        ResponseAction::ALL.into_iter().filter(|action| {
            self.state
                .iter()
                .any(|rule| rule.response_actions.contains(action))
        })
    }

    /// Evaluates every rule indexed for the event's kind and appends an alert for each rule
    /// that matches (all of them, not only the first) and is not throttled.
    pub fn process(&mut self, event: &Event, alerts: &mut Vec<Alert>) {
        for cell in self.memo.iter() {
            cell.set(0);
        }
        for &compiled_index in &self.by_kind[event.kind.index()] {
            let compiled = &self.rule_set.compiled[compiled_index];
            if !compiled.node.eval(event, &self.memo) {
                continue;
            }
            let output = compiled.output.render(event);
            let state = &mut self.state[compiled_index];
            if !admit(state, &output, event.timestamp_ns) {
                continue;
            }
            let rule = &self.rule_set.rules[compiled.rule_index];
            let fields = compiled
                .evidence
                .iter()
                .map(|field| {
                    let value = field
                        .extract(event)
                        .map_or_else(|| "<NA>".to_owned(), |value| value.render());
                    (field.display.clone(), value)
                })
                .collect();
            alerts.push(Alert {
                rule: rule.name.clone(),
                priority: rule.priority,
                tags: rule.tags.clone(),
                source: rule.source.clone(),
                category: state.metadata.category,
                mitre_techniques: state.metadata.mitre_techniques.clone(),
                suggested_response: state.metadata.suggested_response.clone(),
                response_actions: state.response_actions.clone(),
                output,
                fields,
                timestamp_ns: event.timestamp_ns,
            });
        }
    }

    /// Alerts suppressed so far by deduplication or rate limits, by rule name.
    pub fn suppressed(&self) -> Vec<(&str, u64)> {
        self.rule_set
            .compiled
            .iter()
            .zip(&self.state)
            .filter(|(_, state)| state.suppressed > 0)
            .map(|(compiled, state)| {
                (
                    self.rule_set.rules[compiled.rule_index].name.as_str(),
                    state.suppressed,
                )
            })
            .collect()
    }
}

/// Applies a rule's dedupe window and token bucket; true when the alert may be raised.
fn admit(state: &mut RuleState, output: &str, now_ns: u64) -> bool {
    let throttle = state.throttle;
    if throttle.dedupe_window_ns > 0 {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        output.hash(&mut hasher);
        let key = hasher.finish();
        if let Some(&seen_ns) = state.last_seen.get(&key)
            && now_ns.saturating_sub(seen_ns) < throttle.dedupe_window_ns
        {
            state.suppressed += 1;
            return false;
        }
        // Bound memory: drop entries whose window has passed once the map grows.
        if state.last_seen.len() >= 4096 {
            state
                .last_seen
                .retain(|_, seen_ns| now_ns.saturating_sub(*seen_ns) < throttle.dedupe_window_ns);
        }
        state.last_seen.insert(key, now_ns);
    }
    if let Some(per_second) = throttle.max_per_second {
        let capacity = f64::from(per_second);
        let elapsed_s = now_ns.saturating_sub(state.last_refill_ns) as f64 / 1e9;
        state.tokens = (state.tokens + elapsed_s * capacity).min(capacity);
        state.last_refill_ns = state.last_refill_ns.max(now_ns);
        if state.tokens < 1.0 {
            state.suppressed += 1;
            return false;
        }
        state.tokens -= 1.0;
    }
    true
}
