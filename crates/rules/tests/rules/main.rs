//! The rules crate's single integration test binary: data-driven checks of the language,
//! of loading (exceptions, overrides, diagnostics) and of the Falco stable rule set.

mod alerts;
mod defaults;
mod environment;
mod event_class;
mod falco;
mod k8s_meta;
mod kernel_state;
mod language;
mod libsinsp;
mod loading;
mod scenarios;
mod support;
mod timing;
