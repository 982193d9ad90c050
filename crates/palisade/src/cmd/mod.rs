//! One module per subcommand: its clap arguments and its `run` function.

pub mod agent;
pub mod baseline;
pub mod db;
pub mod enforce;
pub mod firewall;
pub mod monitor;
pub mod rules;
pub mod scan;
pub mod scan_malware;
pub mod server;
pub mod up;
