//! The host's container runtime binaries, known by file identity.
//!
//! A container runtime's own processes (runc's set-up stages, conmon, the containerd shims)
//! mount, join namespaces and write below `/etc` in a container's cgroup, and the rules must
//! tell them from the container's processes. Names do not: in a container sharing the host's
//! pid namespace anything can be called `runc` or `conmon`. What a process in a container
//! cannot forge is the executable's device and inode: its files live on the container's own
//! root, not on the host's file system where the runtime's binaries are. So the sensor finds
//! those binaries on the host at start and compares every exec's `(dev, inode)` with them.
//! runc re-executes a bind mount of its own binary (`/run/runc/.../runc.XXXXXX`), which keeps
//! the device and inode. A runtime upgraded after the start (a new inode) is found again on
//! the first exec of a runtime-named binary that matches nothing.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// Where distributions install container runtimes (conmon is under `/usr/libexec/podman` on
/// some).
const BINARY_DIRS: &[&str] = &[
    "/usr/bin",
    "/usr/sbin",
    "/usr/local/bin",
    "/usr/local/sbin",
    "/bin",
    "/sbin",
    "/usr/libexec/podman",
];

/// Programs that set up or supervise containers.
const RUNTIME_NAMES: &[&str] = &[
    "runc",
    "crun",
    "youki",
    "conmon",
    "containerd",
    "dockerd",
    "podman",
];

/// Shims are named per runtime (`containerd-shim-runc-v2`).
const RUNTIME_PREFIX: &str = "containerd-shim";

/// How often a runtime-named executable that matches no known binary may trigger a new look
/// at the host's binaries (a container exec'ing its own `runc` in a loop must not make the
/// sensor stat files on every exec).
const REFRESH_INTERVAL: Duration = Duration::from_secs(5);

fn is_runtime_name(name: &str) -> bool {
    RUNTIME_NAMES.contains(&name) || name.starts_with(RUNTIME_PREFIX)
}

/// A device number as the kernel keeps it (`MKDEV`: major << 20 | minor), the encoding the
/// eBPF probes read from the superblock, from the `st_dev` user space sees.
pub(crate) fn kernel_dev(st_dev: u64) -> u64 {
    (u64::from(libc::major(st_dev)) << 20) | u64::from(libc::minor(st_dev))
}

/// The `(device, inode)` of every container runtime binary on the host.
#[derive(Debug)]
pub(crate) struct RuntimeBinaries {
    known: HashSet<(u64, u64)>,
    resolved_at: Instant,
}

impl RuntimeBinaries {
    /// Looks for the runtime binaries in the host's binary directories.
    pub(crate) fn resolve() -> RuntimeBinaries {
        RuntimeBinaries {
            known: find_runtime_binaries(BINARY_DIRS),
            resolved_at: Instant::now(),
        }
    }

    /// Whether the executable `(dev, ino)` (kernel encoding) is a runtime binary. An unknown
    /// executable whose path names a runtime makes the set be looked for again, at most every
    /// [`REFRESH_INTERVAL`], so that an upgraded runtime is still recognised.
    pub(crate) fn is_runtime(&mut self, exepath: &str, dev: u64, ino: u64) -> bool {
        if ino == 0 {
            return false;
        }
        if self.known.contains(&(dev, ino)) {
            return true;
        }
        // runc's re-executed bind mount is named `runc.XXXXXX`.
        let name = Path::new(exepath.trim_end_matches(" (deleted)"))
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or_default();
        let name = name.split_once('.').map_or(name, |(stem, _)| stem);
        if is_runtime_name(name) && self.resolved_at.elapsed() >= REFRESH_INTERVAL {
            *self = RuntimeBinaries::resolve();
            return self.known.contains(&(dev, ino));
        }
        false
    }
}

fn find_runtime_binaries(dirs: &[&str]) -> HashSet<(u64, u64)> {
    let mut known = HashSet::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            if !name.to_str().is_some_and(is_runtime_name) {
                continue;
            }
            // Follows symbolic links: the kernel reports the file that runs.
            if let Ok(metadata) = std::fs::metadata(entry.path())
                && metadata.is_file()
            {
                known.insert((kernel_dev(metadata.dev()), metadata.ino()));
            }
        }
    }
    known
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_dev_puts_the_major_number_above_twenty_bits() {
        // /dev/vda (254:0) is st_dev 0xfe00 in user space and 254 << 20 in the kernel.
        assert_eq!(kernel_dev(0xfe00), 254 << 20);
        // Minors above 255 are split in the user-space encoding.
        assert_eq!(kernel_dev(libc::makedev(8, 300)), (8 << 20) | 300);
    }

    #[test]
    fn binaries_are_known_by_identity_not_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let runtime = dir.path().join("runc");
        let impostor_dir = tempfile::tempdir().unwrap();
        let impostor = impostor_dir.path().join("runc");
        std::fs::write(&runtime, b"runtime").unwrap();
        std::fs::write(&impostor, b"impostor").unwrap();
        std::fs::write(dir.path().join("sh"), b"shell").unwrap();
        let mut binaries = RuntimeBinaries {
            known: find_runtime_binaries(&[dir.path().to_str().unwrap()]),
            resolved_at: Instant::now(),
        };
        let identity = |path: &Path| {
            let metadata = std::fs::metadata(path).unwrap();
            (kernel_dev(metadata.dev()), metadata.ino())
        };
        assert_eq!(binaries.known.len(), 1, "only the runtime-named file");
        let (dev, ino) = identity(&runtime);
        assert!(binaries.is_runtime("/usr/sbin/runc", dev, ino));
        let (dev, ino) = identity(&impostor);
        assert!(!binaries.is_runtime("/usr/sbin/runc", dev, ino));
        assert!(!binaries.is_runtime("/usr/sbin/runc", 0, 0));
    }
}
