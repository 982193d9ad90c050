//! The attack scenario format (`crates/rules/scenarios/*.yaml`): what to set up, what to
//! run, and which rules must and must not fire.
//!
//! One file holds a YAML sequence of [`Scenario`]s. Each scenario serves two runners:
//!
//! - **Replay** (today, in `cargo test`): the recorded or constructed [`Scenario::events`]
//!   (the sensor's JSON wire format, written as YAML) and [`Scenario::audit`] objects
//!   (`audit.k8s.io/v1` `Event`s) go through an [`crate::Engine`] loaded with the default
//!   rules. The rules that fire must be **exactly** [`Expect::fire`].
//! - **Live** (the sensor's suite): start the container described by [`Setup`], run
//!   [`Scenario::steps`] in it (or on the host), and collect the alerts the sensor and the
//!   engine raise meanwhile. Live runs see more than the replayed events (the shell's own
//!   file reads, the runtime's setup), so there every rule of [`Expect::fire`] must fire and
//!   no rule of [`Expect::not_fire`] may; a quiet scenario names in [`Expect::seen`] the
//!   calls that must be observed, so that its silence is not merely the absence of the
//!   behaviour.
//!
//! Unknown keys are errors, so that a typo (`not_fires:`) cannot silently weaken a scenario.

use palisade_event::{Event, EventKind};
use serde::Deserialize;

/// One attack (or benign) scenario.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short unique name.
    pub name: String,
    /// What the scenario does and why the rules should (not) fire.
    pub description: String,
    /// What a live run prepares before the steps.
    #[serde(default)]
    pub setup: Setup,
    /// Commands a live run performs, in order.
    #[serde(default)]
    pub steps: Vec<Step>,
    /// The events a replay feeds to the engine (syscall source), in order.
    #[serde(default)]
    pub events: Vec<Event>,
    /// `audit.k8s.io/v1` `Event` objects a replay feeds to the engine (k8s_audit source),
    /// after [`Scenario::events`].
    #[serde(default)]
    pub audit: Vec<serde_json::Value>,
    /// The outcome.
    pub expect: Expect,
}

/// What a live run prepares.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Setup {
    /// The container the steps run in; `None` when every step runs on the host.
    #[serde(default)]
    pub container: Option<ContainerSetup>,
    /// For host steps: a live run creates a fresh directory below this one, gives its path to
    /// the steps as `$SCENARIO_DIR`, and removes it afterwards (from outside the steps'
    /// processes, so that the removal is not part of what the rules judge).
    #[serde(default)]
    pub host_dir: Option<String>,
}

/// A container for a live run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerSetup {
    /// Image reference (`docker.io/library/busybox:1.36`).
    pub image: String,
    /// Run privileged.
    #[serde(default)]
    pub privileged: bool,
    /// Share the host's PID namespace.
    #[serde(default)]
    pub host_pid: bool,
    /// Bind mounts as `host_path:container_path[:ro]`.
    #[serde(default)]
    pub mounts: Vec<String>,
    /// Extra capabilities (`SYS_PTRACE`).
    #[serde(default)]
    pub cap_add: Vec<String>,
    /// Memory-backed volumes (`/dev/shm`), mounted with exec allowed as a Kubernetes
    /// `emptyDir` with `medium: Memory` is.
    #[serde(default)]
    pub tmpfs: Vec<String>,
    /// A live run has no registry to pull [`ContainerSetup::image`] from: when set, it gives
    /// its local image that name for the container's lifetime (for rules about the image's
    /// name), and refuses to run when an image of that name already exists.
    #[serde(default)]
    pub tag_image: bool,
    /// The container's health check (`CMD-SHELL` form), run by the runtime after the steps.
    #[serde(default)]
    pub healthcheck: Option<String>,
}

/// One command of a live run.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// The command, run with `sh -c`.
    pub run: String,
    /// Where it runs.
    #[serde(default)]
    pub on: Place,
    /// Allocate a terminal for it (`exec -t`).
    #[serde(default)]
    pub tty: bool,
    /// Run it in the background and go on (a listener the next steps connect to).
    #[serde(default)]
    pub background: bool,
}

/// Where a step runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Place {
    /// In the scenario's container.
    #[default]
    Container,
    /// On the host.
    Host,
}

/// The rules that must and must not fire.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Rules that must fire (in a replay: exactly these).
    #[serde(default)]
    pub fire: Vec<String>,
    /// Rules that must not fire.
    #[serde(default)]
    pub not_fire: Vec<String>,
    /// Event types a live run must observe from the scenario (its container, or its host
    /// steps' processes): a quiet expectation then means the rules saw the behaviour and
    /// stayed quiet, not that the behaviour never happened.
    #[serde(default)]
    pub seen: Vec<EventKind>,
}

/// A scenario file that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("scenario file {file}: {message}")]
pub struct ScenarioError {
    file: String,
    message: String,
}

/// Parses a scenario file (a YAML sequence of scenarios); `file` names it in errors.
pub fn parse_scenarios(file: &str, text: &str) -> Result<Vec<Scenario>, ScenarioError> {
    // YAML 1.2 booleans only, as Kubernetes reads manifests: `on: host` must stay a key.
    let options = serde_saphyr::Options {
        strict_booleans: true,
        ..serde_saphyr::Options::default()
    };
    let scenarios: Vec<Scenario> =
        serde_saphyr::from_str_with_options(text, options).map_err(|error| ScenarioError {
            file: file.to_owned(),
            message: error.to_string(),
        })?;
    let mut names = std::collections::HashSet::new();
    for scenario in &scenarios {
        if !names.insert(scenario.name.as_str()) {
            return Err(ScenarioError {
                file: file.to_owned(),
                message: format!("scenario '{}' is defined twice", scenario.name),
            });
        }
    }
    Ok(scenarios)
}
