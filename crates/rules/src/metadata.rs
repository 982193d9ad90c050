//! What Palisade reads from a rule's tags: its alert category, MITRE ATT&CK techniques, the
//! suggested response and the response actions it requests.
//!
//! Everything is a tag so that Palisade's rules files stay plain Falco files (Falco loads
//! them unchanged and prints the tags with each alert):
//!
//! - a category: exactly one of `malicious-image`, `malware`, `intrusion`, `escape`,
//!   `high-risk-operation`;
//! - MITRE ATT&CK technique ids, as Falco's own rules write them: `T1059` or `T1059.004`;
//! - `suggest: <text>`: the suggested response shown with the alert;
//! - `response.kill_process` / `response.deny_exec`: an action the rule requests. A request
//!   alone does nothing: the engine emits the action only for rules on
//!   [`crate::EngineConfig::response_allowlist`], so responses are off by default and
//!   enabled per rule.

use std::fmt;

/// The alert categories of Palisade's default rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    /// A container from a blocklisted or known-bad image, or running what its image did not
    /// ship (drift).
    MaliciousImage,
    /// Malware and crypto miners.
    Malware,
    /// Intrusion into a container: shells, reverse shells, dropped binaries, credential reads.
    Intrusion,
    /// Attempts to break out of a container to the host.
    Escape,
    /// Operations that are legitimate for administrators but high-risk (exec into pods, RBAC,
    /// log clearing, persistence).
    HighRiskOperation,
}

impl Category {
    /// Every category.
    pub const ALL: [Category; 5] = [
        Category::MaliciousImage,
        Category::Malware,
        Category::Intrusion,
        Category::Escape,
        Category::HighRiskOperation,
    ];

    /// The tag naming the category (`high-risk-operation`).
    pub fn as_str(self) -> &'static str {
        match self {
            Category::MaliciousImage => "malicious-image",
            Category::Malware => "malware",
            Category::Intrusion => "intrusion",
            Category::Escape => "escape",
            Category::HighRiskOperation => "high-risk-operation",
        }
    }

    /// The category a tag names, if any.
    pub fn from_tag(tag: &str) -> Option<Category> {
        Category::ALL
            .into_iter()
            .find(|category| category.as_str() == tag)
    }
}

impl fmt::Display for Category {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// A response action a rule may request; carrying it out is the agent's job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResponseAction {
    /// Kill the process that caused the event (`response.kill_process`).
    KillProcess,
    /// Deny further executions of the program the process runs (`response.deny_exec`).
    DenyExec,
}

impl ResponseAction {
    /// Every action.
    pub const ALL: [ResponseAction; 2] = [ResponseAction::KillProcess, ResponseAction::DenyExec];

    /// The tag requesting the action (`response.kill_process`).
    pub fn tag(self) -> &'static str {
        match self {
            ResponseAction::KillProcess => "response.kill_process",
            ResponseAction::DenyExec => "response.deny_exec",
        }
    }

    /// The action a tag requests, if any.
    pub fn from_tag(tag: &str) -> Option<ResponseAction> {
        ResponseAction::ALL
            .into_iter()
            .find(|action| action.tag() == tag)
    }
}

/// The Palisade metadata of one rule, read from its tags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleMetadata {
    /// The first category tag; `None` for rules without one (Falco's own rules).
    pub category: Option<Category>,
    /// MITRE ATT&CK technique ids (`T1059.004`), in tag order.
    pub mitre_techniques: Vec<String>,
    /// The text of the `suggest:` tag.
    pub suggested_response: Option<String>,
    /// The actions the rule requests (whether they run depends on the engine's allowlist).
    pub requested_responses: Vec<ResponseAction>,
}

impl RuleMetadata {
    /// Reads the metadata from a rule's tags; unknown tags are ignored.
    pub fn from_tags(tags: &[String]) -> RuleMetadata {
        let mut metadata = RuleMetadata::default();
        for tag in tags {
            if let Some(category) = Category::from_tag(tag) {
                metadata.category.get_or_insert(category);
            } else if is_mitre_technique(tag) {
                metadata.mitre_techniques.push(tag.clone());
            } else if let Some(text) = tag.strip_prefix("suggest:") {
                metadata.suggested_response = Some(text.trim().to_owned());
            } else if let Some(action) = ResponseAction::from_tag(tag)
                && !metadata.requested_responses.contains(&action)
            {
                metadata.requested_responses.push(action);
            }
        }
        metadata
    }
}

/// `T` and four digits, optionally `.` and three digits.
fn is_mitre_technique(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    let digits = |range: std::ops::Range<usize>| bytes[range].iter().all(u8::is_ascii_digit);
    match bytes.len() {
        5 => bytes[0] == b'T' && digits(1..5),
        9 => bytes[0] == b'T' && digits(1..5) && bytes[5] == b'.' && digits(6..9),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use crate::metadata::{Category, ResponseAction, RuleMetadata};

    #[test]
    fn tags_become_metadata() {
        let tags: Vec<String> = [
            "container",
            "intrusion",
            "escape",
            "mitre_execution",
            "T1059",
            "T1059.004",
            "T10590",
            "T1059.04",
            "suggest: Kill it",
            "response.kill_process",
            "response.kill_process",
            "response.reboot",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            RuleMetadata::from_tags(&tags),
            RuleMetadata {
                category: Some(Category::Intrusion),
                mitre_techniques: vec!["T1059".into(), "T1059.004".into()],
                suggested_response: Some("Kill it".into()),
                requested_responses: vec![ResponseAction::KillProcess],
            }
        );
        assert_eq!(RuleMetadata::from_tags(&[]), RuleMetadata::default());
    }
}
