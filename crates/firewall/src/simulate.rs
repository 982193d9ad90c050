//! Replaying recorded flows against a draft policy: what it would newly block or allow.

use serde::Serialize;

use crate::engine::Engine;
use crate::error::Error;
use crate::flows::ObservedFlow;

/// A recorded flow whose verdict the draft changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// The flow.
    pub flow: ObservedFlow,
    /// What decided it under the draft: the deciding policy or rule and the reason, per
    /// direction (`egress: ...; ingress: ...`).
    pub decided_by: String,
}

/// The outcome of a replay.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Simulation {
    /// Flows allowed before and refused by the draft.
    pub newly_blocked: Vec<Change>,
    /// Flows refused before and allowed by the draft.
    pub newly_allowed: Vec<Change>,
    /// Flows whose verdict does not change.
    pub unchanged: usize,
}

/// Replays `flows` against `draft`. The verdict before is `current`'s when given, else what
/// the recording says (`blocked`). Fails on a flow whose ends cannot be resolved.
pub fn simulate(
    current: Option<&Engine<'_>>,
    draft: &Engine<'_>,
    flows: &[ObservedFlow],
) -> Result<Simulation, Error> {
    let mut simulation = Simulation::default();
    for observed in flows {
        let before = match current {
            Some(engine) => engine.evaluate(&observed.to_flow(engine.state())?).allowed,
            None => !observed.blocked,
        };
        let explanation = draft.explain(&observed.to_flow(draft.state())?);
        if explanation.allowed == before {
            simulation.unchanged += 1;
            continue;
        }
        let change = Change {
            flow: observed.clone(),
            decided_by: format!(
                "egress: {}; ingress: {}",
                explanation.egress.reason, explanation.ingress.reason
            ),
        };
        if explanation.allowed {
            simulation.newly_allowed.push(change);
        } else {
            simulation.newly_blocked.push(change);
        }
    }
    Ok(simulation)
}
