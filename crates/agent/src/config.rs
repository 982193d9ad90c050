//! The agent's configuration.

use std::{path::PathBuf, time::Duration};

use palisade_sensor::{HoldLimits, HoldLimitsError};
use serde::{Deserialize, Serialize};

/// How the agent reaches its server and where it keeps its state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// Base URL of the server, e.g. `https://palisade.example:8443`.
    pub server_url: String,
    /// CA certificate (PEM) to trust for the server, in addition to none: a private CA is
    /// the norm for self-hosted servers. `None` trusts the bundled public roots.
    #[serde(default)]
    pub ca_cert: Option<PathBuf>,
    /// Join token, used once to enroll; the resulting credential is kept in `data_dir`.
    #[serde(default)]
    pub join_token: Option<String>,
    /// Where the outbox and the credential live.
    pub data_dir: PathBuf,
    /// The cluster this node belongs to.
    pub cluster: String,
    /// The agent's name (the host name by default).
    pub name: String,
    /// Most reports per batch: 1 to 20,000 ([`palisade_model::MAX_BATCH_REPORTS`], the most
    /// the server takes), 20,000 by default. A batch is whatever the outbox holds up to this,
    /// so a larger bound adds no wait at low rates; under a backlog the server commits more
    /// reports at once, and pays a commit's pages once for all of them.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Most batches sent and not yet acknowledged (the server stores one while the next
    /// travels).
    #[serde(default = "default_batches_in_flight")]
    pub batches_in_flight: usize,
    /// Heartbeat interval (host facts, dropped-event counts), in seconds.
    #[serde(default = "default_heartbeat_secs")]
    pub heartbeat_secs: u64,
    /// The runtime event source feeding this agent (`ebpf`, `fallback`, `none`), shown in the
    /// node's asset record.
    #[serde(default = "default_sensor")]
    pub sensor: String,
    /// The event fields that source cannot fill (the fallback's reduced field set), shown in
    /// the node's asset record.
    #[serde(default)]
    pub sensor_missing_fields: Vec<String>,
    /// Scheduled vulnerability scans and host checks.
    #[serde(default)]
    pub scans: crate::ScanConfig,
    /// Package upgrades on the server's request (off by default).
    #[serde(default)]
    pub fix: crate::FixConfig,
    /// Where quarantined files are kept (reported to the server, restored on its request);
    /// `quarantine` under `data_dir` when not set.
    #[serde(default)]
    pub quarantine_dir: Option<PathBuf>,
    /// How the sensor's events wait for their container's metadata (`sensor_hold`).
    #[serde(default)]
    pub sensor_hold: SensorHoldConfig,
    /// `sensor_reader_nice`: the nice value (−20 to 19) of the thread that reads the
    /// sensor's ring buffer and evaluates the rules, −10 by default
    /// ([`palisade_sensor::DEFAULT_READER_NICE`]), so that under CPU load it keeps up with
    /// an event storm instead of the kernel dropping events; `null` leaves it at the
    /// agent's (`--sensor-reader-nice`, `off`). Only that thread and the sensor's container
    /// look-up workers are raised: what the thread starts later runs at nice 0.
    #[serde(default = "default_sensor_reader_nice")]
    pub sensor_reader_nice: Option<i32>,
    /// `respond_rules: [<rule name>...]`: the rules whose requested response actions
    /// (`response.kill_process`, `response.deny_exec` tags) the agent carries out on their
    /// alerts (`--respond RULE`); empty by default, so no rule kills or denies anything. At
    /// start each must be a loaded, enabled syscall rule that requests an action, else the
    /// agent does not start.
    #[serde(default)]
    pub respond_rules: Vec<String>,
}

/// How long and how many of the sensor's events wait for a container's metadata while its
/// runtime's store is read (a new container's first events, an exec while missing metadata
/// is looked up again) before they go out with only the id the cgroup's name gives
/// (`sensor_hold` in the configuration; `--sensor-hold-ms`, `--sensor-max-held-events`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SensorHoldConfig {
    /// `sensor_hold.max_wait_ms`: how long a container's events wait at most, in
    /// milliseconds: 0 to 5,000, 50 by default. Every alert on those events is late by up
    /// to this much.
    pub max_wait_ms: u64,
    /// `sensor_hold.max_events`: how many events wait at most over all containers (≈ 1 KiB
    /// each): 1 to 65,536, 4,096 by default. Past it the container waiting longest has its
    /// events sent at once.
    pub max_events: usize,
}

impl Default for SensorHoldConfig {
    fn default() -> SensorHoldConfig {
        let limits = HoldLimits::default();
        SensorHoldConfig {
            max_wait_ms: limits.max_wait().as_millis() as u64,
            max_events: limits.max_events(),
        }
    }
}

impl SensorHoldConfig {
    /// The sensor's limits; a value out of its range is an error naming its key.
    pub fn limits(&self) -> Result<HoldLimits, ConfigError> {
        HoldLimits::new(Duration::from_millis(self.max_wait_ms), self.max_events).map_err(|error| {
            ConfigError::Invalid {
                key: match error {
                    HoldLimitsError::MaxWait { .. } => "sensor_hold.max_wait_ms",
                    HoldLimitsError::MaxEvents { .. } => "sensor_hold.max_events",
                },
                reason: error.to_string(),
            }
        })
    }
}

/// A configuration value the agent cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A value out of its range.
    #[error("invalid agent configuration: {key}: {reason}")]
    Invalid {
        /// The value's key, e.g. `sensor_hold.max_wait_ms`.
        key: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

fn default_sensor_reader_nice() -> Option<i32> {
    Some(palisade_sensor::DEFAULT_READER_NICE)
}

fn default_sensor() -> String {
    "none".to_owned()
}

const fn default_batch_size() -> usize {
    palisade_model::MAX_BATCH_REPORTS
}

const fn default_batches_in_flight() -> usize {
    2
}

const fn default_heartbeat_secs() -> u64 {
    30
}

impl AgentConfig {
    /// A configuration with defaults for everything but the essentials.
    pub fn new(
        server_url: impl Into<String>,
        data_dir: impl Into<PathBuf>,
        cluster: impl Into<String>,
        name: impl Into<String>,
    ) -> AgentConfig {
        AgentConfig {
            server_url: server_url.into(),
            ca_cert: None,
            join_token: None,
            data_dir: data_dir.into(),
            cluster: cluster.into(),
            name: name.into(),
            batch_size: default_batch_size(),
            batches_in_flight: default_batches_in_flight(),
            heartbeat_secs: default_heartbeat_secs(),
            sensor: default_sensor(),
            sensor_missing_fields: Vec::new(),
            scans: crate::ScanConfig::default(),
            fix: crate::FixConfig::default(),
            quarantine_dir: None,
            sensor_hold: SensorHoldConfig::default(),
            sensor_reader_nice: default_sensor_reader_nice(),
            respond_rules: Vec::new(),
        }
    }

    /// The facts of the host this agent runs on, with its sensor and the fields that sensor
    /// cannot fill, as the node's asset record shows them.
    pub fn host_facts(&self) -> palisade_model::HostFacts {
        palisade_model::HostFacts {
            sensor_missing_fields: self.sensor_missing_fields.clone(),
            ..crate::host_facts(std::path::Path::new("/"), &self.sensor)
        }
    }

    /// Checks every value that has a range; the error names the first bad key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.sensor_hold.limits()?;
        // More than the server takes would be refused, batch after batch.
        if !(1..=palisade_model::MAX_BATCH_REPORTS).contains(&self.batch_size) {
            return Err(ConfigError::Invalid {
                key: "batch_size",
                reason: format!(
                    "{} reports per batch; 1 to {} are sent",
                    self.batch_size,
                    palisade_model::MAX_BATCH_REPORTS
                ),
            });
        }
        if let Some(nice) = self.sensor_reader_nice
            && !palisade_sensor::READER_NICE_RANGE.contains(&nice)
        {
            return Err(ConfigError::Invalid {
                key: "sensor_reader_nice",
                reason: format!(
                    "{nice} is no nice value ({:?})",
                    palisade_sensor::READER_NICE_RANGE
                ),
            });
        }
        Ok(())
    }

    /// The quarantine directory: [`AgentConfig::quarantine_dir`] or `data_dir/quarantine`.
    pub fn quarantine_dir(&self) -> PathBuf {
        self.quarantine_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("quarantine"))
    }

    pub(crate) fn heartbeat(&self) -> Duration {
        Duration::from_secs(self.heartbeat_secs.max(1))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use palisade_sensor::HoldLimits;

    use crate::config::{AgentConfig, ConfigError, SensorHoldConfig};

    fn parsed(json: &str) -> Result<AgentConfig, serde_json::Error> {
        serde_json::from_str(json)
    }

    const ESSENTIALS: &str =
        r#""server_url":"https://p:8443","data_dir":"/d","cluster":"c","name":"n""#;

    /// Without `sensor_hold` the sensor keeps its defaults (50 ms, 4,096 events); set values
    /// reach the sensor's limits.
    #[test]
    fn sensor_hold_defaults_and_values_reach_the_sensor() {
        let defaults = parsed(&format!("{{{ESSENTIALS}}}")).unwrap();
        assert_eq!(
            defaults.sensor_hold.limits().unwrap(),
            HoldLimits::default()
        );
        assert_eq!(defaults.validate(), Ok(()));
        assert_eq!(defaults.batch_size, palisade_model::MAX_BATCH_REPORTS);
        for batch_size in [0, palisade_model::MAX_BATCH_REPORTS + 1] {
            let config = parsed(&format!(r#"{{{ESSENTIALS},"batch_size":{batch_size}}}"#)).unwrap();
            assert!(
                matches!(
                    config.validate(),
                    Err(ConfigError::Invalid {
                        key: "batch_size",
                        ..
                    })
                ),
                "{batch_size}"
            );
        }
        let set = parsed(&format!(
            r#"{{{ESSENTIALS},"sensor_hold":{{"max_wait_ms":200,"max_events":100}}}}"#
        ))
        .unwrap();
        let limits = set.sensor_hold.limits().unwrap();
        assert_eq!(
            (limits.max_wait(), limits.max_events()),
            (Duration::from_millis(200), 100)
        );
        let partial = parsed(&format!(
            r#"{{{ESSENTIALS},"sensor_hold":{{"max_wait_ms":0}}}}"#
        ))
        .unwrap();
        assert_eq!(partial.sensor_hold.max_events, 4096);
        assert_eq!(
            partial.sensor_hold.limits().unwrap().max_wait(),
            Duration::ZERO
        );
    }

    /// A value out of its range is refused naming its key; an unknown key in the section
    /// is refused by name.
    #[test]
    fn bad_sensor_hold_values_name_their_key() {
        let error = |max_wait_ms, max_events| {
            let config = AgentConfig {
                sensor_hold: SensorHoldConfig {
                    max_wait_ms,
                    max_events,
                },
                ..AgentConfig::new("https://p", "/d", "c", "n")
            };
            let Err(ConfigError::Invalid { key, reason }) = config.validate() else {
                panic!("{max_wait_ms} ms, {max_events} events accepted");
            };
            (key, reason)
        };
        let (key, reason) = error(5001, 4096);
        assert_eq!(key, "sensor_hold.max_wait_ms");
        assert!(reason.contains("5.001s"), "{reason}");
        assert_eq!(error(50, 0).0, "sensor_hold.max_events");
        assert_eq!(error(50, 65_537).0, "sensor_hold.max_events");
        let message = AgentConfig {
            sensor_hold: SensorHoldConfig {
                max_wait_ms: 50,
                max_events: 0,
            },
            ..AgentConfig::new("https://p", "/d", "c", "n")
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(
            message.starts_with("invalid agent configuration: sensor_hold.max_events: "),
            "{message}"
        );
        let unknown = parsed(&format!(
            r#"{{{ESSENTIALS},"sensor_hold":{{"max_wait":50}}}}"#
        ))
        .unwrap_err();
        assert!(unknown.to_string().contains("max_wait"), "{unknown}");
    }

    /// The reader's priority is raised by default, can be set or left alone (`null`), and a
    /// value that is no nice value is refused by its key.
    #[test]
    fn sensor_reader_nice_defaults_values_and_bounds() {
        let defaults = parsed(&format!("{{{ESSENTIALS}}}")).unwrap();
        assert_eq!(
            defaults.sensor_reader_nice,
            Some(palisade_sensor::DEFAULT_READER_NICE)
        );
        let set = parsed(&format!(r#"{{{ESSENTIALS},"sensor_reader_nice":-5}}"#)).unwrap();
        assert_eq!((set.sensor_reader_nice, set.validate()), (Some(-5), Ok(())));
        let off = parsed(&format!(r#"{{{ESSENTIALS},"sensor_reader_nice":null}}"#)).unwrap();
        assert_eq!((off.sensor_reader_nice, off.validate()), (None, Ok(())));
        for bad in [-21, 20] {
            let config =
                parsed(&format!(r#"{{{ESSENTIALS},"sensor_reader_nice":{bad}}}"#)).unwrap();
            let Err(ConfigError::Invalid { key, reason }) = config.validate() else {
                panic!("{bad} accepted");
            };
            assert_eq!(key, "sensor_reader_nice");
            assert!(reason.contains(&bad.to_string()), "{reason}");
        }
    }

    /// No rule responds unless named in `respond_rules`.
    #[test]
    fn respond_rules_are_empty_unless_named() {
        let defaults = parsed(&format!("{{{ESSENTIALS}}}")).unwrap();
        assert!(defaults.respond_rules.is_empty());
        let named = parsed(&format!(
            r#"{{{ESSENTIALS},"respond_rules":["Crypto miner launched"]}}"#
        ))
        .unwrap();
        assert_eq!(named.respond_rules, ["Crypto miner launched"]);
    }
}
