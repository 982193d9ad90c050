//! The start of a process's pid namespace from `/proc` (Falco's `proc.pidns_init_start_ts`),
//! for the processes the kernel probes did not see start: those found at start, and every
//! process of the fallback. The probes read it at exec and fork from the namespace's child
//! reaper; here it is the start of the namespace's init, the process the namespace numbers 1.
//!
//! The init of the sensor's own namespace is `/proc/1`. That of another is found once, by one
//! pass over `/proc` (a process's ancestors do not always lead to it: `nsenter` and `docker
//! exec` start processes in a namespace from outside it), and kept by the namespace's inode,
//! checked against the init's start time at each use, since a namespace's inode number may be
//! reused after it ends.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::procfs;

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
    /// The start of the init of `pid`'s pid namespace, nanoseconds since the epoch
    /// (`boot_offset_ns` after boot, as process start times); 0 when the process is gone or
    /// its namespace's init is not visible from the sensor's own namespace.
    pub(crate) fn init_start_ns(&mut self, pid: u32, boot_offset_ns: u64) -> u64 {
        let Some(namespace) = namespace_of(pid) else {
            return 0;
        };
        match self.by_namespace.get(&namespace) {
            Some(None) => return 0,
            Some(&Some((init_pid, start_ns)))
                if procfs::read_start_time_ns(init_pid, boot_offset_ns) == Some(start_ns) =>
            {
                return start_ns;
            }
            _ => {}
        }
        // Not even root may read the namespace of every process (this one's init may refuse
        // it), so the sensor's own is known by its inode, not looked for.
        let init = if namespace_of_self() == Some(namespace) {
            procfs::read_start_time_ns(1, boot_offset_ns).map(|start_ns| (1, start_ns))
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

/// The inode of `pid`'s pid namespace (`/proc/<pid>/ns/pid`).
fn namespace_of(pid: u32) -> Option<u64> {
    let link = Path::new("/proc").join(pid.to_string()).join("ns/pid");
    std::fs::metadata(link).ok().map(|metadata| metadata.ino())
}

/// The inode of the sensor's own pid namespace.
fn namespace_of_self() -> Option<u64> {
    std::fs::metadata("/proc/self/ns/pid")
        .ok()
        .map(|metadata| metadata.ino())
}

/// The process of `namespace` that the namespace numbers 1 (the last id of status's `NSpid`
/// line), with its start time.
fn find_init(namespace: u64, boot_offset_ns: u64) -> Option<(u32, u64)> {
    let pids = std::fs::read_dir("/proc")
        .ok()?
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok());
    for pid in pids {
        if namespace_of(pid) != Some(namespace) {
            continue;
        }
        let status = Path::new("/proc").join(pid.to_string()).join("status");
        let Ok(status) = std::fs::read_to_string(status) else {
            continue;
        };
        let innermost_pid = status
            .lines()
            .find_map(|line| line.strip_prefix("NSpid:"))
            .and_then(|ids| ids.split_whitespace().last());
        if innermost_pid == Some("1") {
            return Some((pid, procfs::read_start_time_ns(pid, boot_offset_ns)?));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::PidNamespaceInits;
    use crate::procfs;

    #[test]
    fn the_hosts_namespace_started_with_its_init() {
        let boot_offset_ns = procfs::boot_to_epoch_offset_ns();
        let mut inits = PidNamespaceInits::default();
        // This test runs in the namespace of the process /proc numbers 1 (the host's, or a
        // container's when run in one): that process's start is the namespace's.
        let own = inits.init_start_ns(std::process::id(), boot_offset_ns);
        assert_eq!(Some(own), procfs::read_start_time_ns(1, boot_offset_ns));
        assert!(own > 1_600_000_000_000_000_000, "{own}");
        // Kept, and still checked against the init's start.
        assert_eq!(inits.init_start_ns(std::process::id(), boot_offset_ns), own);
        assert_eq!(inits.by_namespace.len(), 1);
        // A process that does not exist has none.
        assert_eq!(inits.init_start_ns(u32::MAX, boot_offset_ns), 0);
    }
}
