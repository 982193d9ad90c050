//! What this kernel lets the enforcement primitives do, detected at start-up by trying.

use std::fmt;

use crate::bpf;
use crate::error::ErrorKind;

const LSM_LIST: &str = "/sys/kernel/security/lsm";

/// Whether one primitive can run here, and why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Support {
    /// It loads on this kernel.
    Available,
    /// It does not; the reason says what the kernel refused.
    Missing(String),
}

impl Support {
    /// True when available.
    pub fn is_available(&self) -> bool {
        *self == Support::Available
    }
}

impl fmt::Display for Support {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Support::Available => f.write_str("available"),
            Support::Missing(reason) => write!(f, "missing: {reason}"),
        }
    }
}

/// The enforcement capabilities of this kernel.
///
/// Each eBPF entry is decided by loading (verifying) the real program, not by reading
/// version numbers or config files: loading is what fails on kernels that lack the feature
/// or forbid it. Nothing is attached during detection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// Kill at exec: `tp_btf/sched_process_exec` with `bpf_send_signal`.
    pub kill_at_exec: Support,
    /// Refuse connects: `cgroup/connect4` and `cgroup/connect6`.
    pub connect_refusal: Support,
    /// BPF-LSM programs (`lsm/*`), which would deny exec and connect in the kernel without
    /// a kill or a daemon. Needs `CONFIG_BPF_LSM` and `bpf` in the active LSM list.
    pub bpf_lsm: Support,
    /// The active LSM list (`/sys/kernel/security/lsm`), when securityfs is mounted.
    pub active_lsms: Option<String>,
}

impl Capabilities {
    /// Detects the capabilities by loading each program once.
    pub fn detect() -> Capabilities {
        let active_lsms = std::fs::read_to_string(LSM_LIST)
            .ok()
            .map(|list| list.trim().to_owned());
        let mut bpf_lsm = probe("lsm_probe", bpf::LSM_PROBE_OBJECT);
        if let (Support::Missing(reason), Some(list)) = (&mut bpf_lsm, &active_lsms)
            && !list.split(',').any(|lsm| lsm == "bpf")
        {
            reason.push_str(&format!("; `bpf` is not in the active LSM list ({list})"));
        }
        Capabilities {
            kill_at_exec: probe("exec_kill", bpf::EXEC_KILL_OBJECT),
            connect_refusal: probe("connect", bpf::CONNECT_OBJECT),
            bpf_lsm,
            active_lsms,
        }
    }
}

fn probe(name: &'static str, object: &[u8]) -> Support {
    match bpf::load_object(name, object) {
        Ok(_) => Support::Available,
        Err(error) => {
            let cause = std::error::Error::source(&error)
                .map(|source| format!(": {source}"))
                .unwrap_or_default();
            let what = if error.kind() == ErrorKind::Unsupported {
                "the kernel refused the program"
            } else {
                "loading failed"
            };
            Support::Missing(format!("{what}{cause}"))
        }
    }
}
