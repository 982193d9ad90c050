//! A state together with its engine, for holders that keep a policy for long and replace it
//! whole (the agent's firewall observer).

use crate::engine::Engine;
use crate::error::Error;
use crate::state::State;

mod cell {
    #![allow(missing_docs)]
    use crate::engine::Engine;
    use crate::state::State;

    self_cell::self_cell!(
        pub(super) struct Cell {
            owner: State,
            #[covariant]
            dependent: Engine,
        }
    );
}

/// A [`State`] that owns its [`Engine`].
///
/// [`Engine`] borrows the state it indexes, which suits a command that reads a file and
/// exits. A long-running holder swaps whole policies as they change; this type keeps the
/// two together so the holder needs no lifetime.
pub struct OwnedEngine(cell::Cell);

impl OwnedEngine {
    /// Indexes `state`; fails as [`Engine::new`] does.
    pub fn new(state: State) -> Result<OwnedEngine, Error> {
        cell::Cell::try_new(state, |state| Engine::new(state)).map(OwnedEngine)
    }

    /// The engine.
    pub fn engine(&self) -> &Engine<'_> {
        self.0.borrow_dependent()
    }

    /// The state.
    pub fn state(&self) -> &State {
        self.0.borrow_owner()
    }
}

impl std::fmt::Debug for OwnedEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnedEngine")
            .field("pods", &self.state().pods().len())
            .field("policies", &self.state().policies().len())
            .field("firewall_rules", &self.state().firewall_rules().len())
            .finish()
    }
}
