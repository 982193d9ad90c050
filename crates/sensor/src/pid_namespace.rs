//! The start of a process's pid namespace from `/proc` (Falco's `proc.pidns_init_start_ts`),
//! for the processes the kernel probes did not see start: those found at start, and every
//! process of the fallback. The probes read it at exec and fork from the namespace's child
//! reaper; here it is the start of the namespace's init, the process the namespace numbers 1.
//!
//! The init of the sensor's own namespace is `/proc/1`. Those of the others are learnt from
//! the scan of `/proc` that seeds the process table ([`PidNamespaceInits::learn_inits`]: no
//! further reads); a namespace seen later (by the fallback) has its init found by one pass
//! over `/proc` (a process's ancestors do not always lead to it: `nsenter` and `docker exec`
//! start processes in a namespace from outside it). Inits are kept by the namespace's inode,
//! checked against the init's start time at each use, since a namespace's inode number may be
//! reused after it ends.

use std::collections::HashMap;

use crate::procfs::{self, ProcProcess};

/// Namespaces kept at most; past it the table starts again (namespaces end with their
/// containers, and nothing else removes them).
const MAX_NAMESPACES: usize = 4096;

/// The inits of the pid namespaces seen so far.
#[derive(Debug, Default)]
pub(crate) struct PidNamespaceInits {
    /// By namespace inode: the init's pid (as the sensor's namespace numbers it) and start;
    /// `None` for a namespace whose init `/proc` does not show (its namespace link refused),
    /// so that its processes do not each cost a pass over `/proc`.
    by_namespace: HashMap<u64, Option<(u32, u64)>>,
}

impl PidNamespaceInits {
    /// Learns the namespaces of `processes`, a whole scan of `/proc`, and their inits among
    /// them (the process each namespace numbers 1), replacing what was kept of them.
    pub(crate) fn learn_inits(&mut self, processes: &[ProcProcess]) {
        let mut inits: HashMap<u64, Option<(u32, u64)>> = HashMap::new();
        for process in processes {
            let Some(namespace) = process.pid_namespace else {
                continue;
            };
            let init = inits.entry(namespace).or_default();
            if process.info.session.vpid == 1 {
                *init = Some((process.info.pid, process.info.start_time_ns));
            }
        }
        if self.by_namespace.len() + inits.len() > MAX_NAMESPACES {
            self.by_namespace.clear();
        }
        self.by_namespace.extend(inits);
    }

    /// The start of the init of the pid namespace with inode `namespace` (`None`: unknown,
    /// as for a process that is gone), nanoseconds since the epoch (`boot_offset_ns` after
    /// boot, as process start times); 0 when it is not known or its init is not visible from
    /// the sensor's own namespace.
    pub(crate) fn init_start_ns(&mut self, namespace: Option<u64>, boot_offset_ns: u64) -> u64 {
        let Some(namespace) = namespace else {
            return 0;
        };
        let kept = self.by_namespace.get(&namespace).copied();
        match kept {
            Some(Some((init_pid, start_ns)))
                if procfs::read_start_time_ns(init_pid, boot_offset_ns) == Some(start_ns) =>
            {
                return start_ns;
            }
            _ => {}
        }
        // Not even root may read the namespace of every process (this one's init may refuse
        // it), so the sensor's own is known by its inode, not looked for.
        let init = if procfs::read_pid_namespace(std::process::id()) == Some(namespace) {
            procfs::read_start_time_ns(1, boot_offset_ns).map(|start_ns| (1, start_ns))
        } else if kept == Some(None) {
            return 0;
        } else {
            find_init(namespace, boot_offset_ns)
        };
        if self.by_namespace.len() >= MAX_NAMESPACES {
            self.by_namespace.clear();
        }
        self.by_namespace.insert(namespace, init);
        init.map_or(0, |(_, start_ns)| start_ns)
    }
}

/// The process of `namespace` that the namespace numbers 1, with its start time: one pass
/// over `/proc`.
fn find_init(namespace: u64, boot_offset_ns: u64) -> Option<(u32, u64)> {
    procfs::pids()
        .filter(|&pid| procfs::read_pid_namespace(pid) == Some(namespace))
        .find_map(|pid| {
            let (start_ns, session) = procfs::read_start_and_session(pid, boot_offset_ns)?;
            (session.vpid == 1).then_some((pid, start_ns))
        })
}

#[cfg(test)]
mod tests {
    use std::process::{Child, Command};
    use std::time::{Duration, Instant};

    use super::PidNamespaceInits;
    use crate::procfs;

    #[test]
    fn the_hosts_namespace_started_with_its_init() {
        let boot_offset_ns = procfs::boot_to_epoch_offset_ns();
        let mut inits = PidNamespaceInits::default();
        let own_namespace = procfs::read_pid_namespace(std::process::id());
        assert!(own_namespace.is_some());
        // This test runs in the namespace of the process /proc numbers 1 (the host's, or a
        // container's when run in one): that process's start is the namespace's.
        let own = inits.init_start_ns(own_namespace, boot_offset_ns);
        assert_eq!(Some(own), procfs::read_start_time_ns(1, boot_offset_ns));
        assert!(own > 1_600_000_000_000_000_000, "{own}");
        // Kept, and still checked against the init's start.
        assert_eq!(inits.init_start_ns(own_namespace, boot_offset_ns), own);
        assert_eq!(inits.by_namespace.len(), 1);
        // A process that does not exist has none.
        let gone = procfs::read_pid_namespace(u32::MAX);
        assert_eq!(inits.init_start_ns(gone, boot_offset_ns), 0);
    }

    /// `unshare --pid --fork`'s child: the init of a new pid namespace.
    struct NamespaceInit {
        unshare: Child,
        pid: u32,
    }

    impl NamespaceInit {
        fn start() -> NamespaceInit {
            let mut init = NamespaceInit {
                unshare: Command::new("unshare")
                    .args(["--pid", "--fork", "sleep", "30"])
                    .spawn()
                    .expect("unshare runs (as root)"),
                pid: 0,
            };
            let children = format!("/proc/{0}/task/{0}/children", init.unshare.id());
            let waiting_since = Instant::now();
            while init.pid == 0 {
                assert!(
                    waiting_since.elapsed() < Duration::from_secs(10),
                    "no child"
                );
                std::thread::sleep(Duration::from_millis(10));
                init.pid = std::fs::read_to_string(&children)
                    .ok()
                    .and_then(|pids| pids.split_whitespace().next()?.parse().ok())
                    .unwrap_or(0);
            }
            init
        }
    }

    impl Drop for NamespaceInit {
        fn drop(&mut self) {
            if self.pid != 0 {
                // SAFETY: kill takes plain integers; the init is this test's grandchild.
                unsafe { libc::kill(self.pid as libc::pid_t, libc::SIGKILL) };
            }
            let _ = self.unshare.kill();
            let _ = self.unshare.wait();
        }
    }

    /// The scan that seeds the process table gives every namespace's init: none is looked
    /// for again in `/proc`.
    #[test]
    fn the_inits_of_a_scan_are_learnt_from_it() {
        // SAFETY: geteuid has no preconditions.
        let is_root = unsafe { libc::geteuid() } == 0;
        if !palisade_testdata::capability("root (a new pid namespace)", is_root) {
            return;
        }
        let boot_offset_ns = procfs::boot_to_epoch_offset_ns();
        let init = NamespaceInit::start();
        let namespace = procfs::read_pid_namespace(init.pid).expect("its namespace");
        assert_ne!(
            Some(namespace),
            procfs::read_pid_namespace(std::process::id())
        );
        let start_ns = procfs::read_start_time_ns(init.pid, boot_offset_ns).unwrap();
        let mut inits = PidNamespaceInits::default();
        inits.learn_inits(&procfs::scan(boot_offset_ns));
        assert_eq!(
            inits.by_namespace.get(&namespace),
            Some(&Some((init.pid, start_ns)))
        );
        assert_eq!(
            inits.init_start_ns(Some(namespace), boot_offset_ns),
            start_ns
        );
        // Found by a pass over /proc when not learnt (the fallback's processes).
        let mut fresh = PidNamespaceInits::default();
        assert_eq!(
            fresh.init_start_ns(Some(namespace), boot_offset_ns),
            start_ns
        );
    }
}
