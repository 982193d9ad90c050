//! Falco-compatible detection rules: load, compile and evaluate.
#![deny(missing_docs)]

mod compile;
mod condition;
mod engine;
mod error;
mod fields;
mod output;
mod ruleset;
mod text;

pub use engine::{Alert, Engine, EngineConfig, Throttle};
pub use error::{Error, ErrorKind, Location, Warning, WarningKind};
pub use fields::supported_fields;
pub use ruleset::{ENGINE_VERSION, Priority, Rule, RuleSet, RuleSource};
