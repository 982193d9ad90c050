//! The cgroup paths the sensor knows, by cgroup id, for as long as their cgroups live.
//!
//! The kernel sends a cgroup's path only in its first records (`cgroup_reported` in
//! sensor.bpf.c) and user space keeps it by id. A node that runs short-lived containers or
//! jobs sees a new cgroup for each, so the paths are checked every
//! [`CgroupPaths::check_interval`] and those of cgroups that are gone are forgotten: their
//! ids are handed back to be deleted from the kernel's `cgroup_reported` too, so that a
//! path is never missing for a live cgroup (an id the kernel no longer holds gets its path
//! sent again with its next record). Whether a cgroup lives is asked of the kernel by its id
//! (a file handle on the cgroup2 hierarchy, as `bpftool cgroup` and systemd resolve ids),
//! not by its path, which a cgroup namespace or a rename could change; the fallback's keys
//! (hashes of the paths `/proc` gives, [`FALLBACK_KEY_BIT`]) are checked by path.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The bit that marks a key made from a cgroup's path (the fallback's, and the processes read
/// from `/proc`) apart from the kernel's cgroup ids.
pub(crate) const FALLBACK_KEY_BIT: u64 = 1 << 63;

/// How often the paths are checked by default ([`crate::SensorConfig::cgroup_check_interval`]).
pub const DEFAULT_CGROUP_CHECK_INTERVAL: Duration = Duration::from_secs(60);

/// Cgroup paths by cgroup id (or fallback key).
#[derive(Debug)]
pub(crate) struct CgroupPaths {
    by_id: HashMap<u64, String>,
    check_interval: Duration,
    checked_at: Instant,
    /// The cgroup2 hierarchy, opened at the first check (`None` inside: none mounted).
    hierarchy: Option<Option<Cgroup2>>,
}

impl CgroupPaths {
    pub(crate) fn new(check_interval: Duration) -> CgroupPaths {
        CgroupPaths {
            by_id: HashMap::new(),
            check_interval,
            checked_at: Instant::now(),
            hierarchy: None,
        }
    }

    /// The path of cgroup `id`, when known.
    pub(crate) fn get(&self, id: u64) -> Option<&str> {
        self.by_id.get(&id).map(String::as_str)
    }

    /// The path of cgroup `id`, or an empty one.
    pub(crate) fn path_or_empty(&self, id: u64) -> String {
        self.get(id).unwrap_or_default().to_owned()
    }

    /// Keeps `path()` for cgroup `id` unless one is kept already.
    pub(crate) fn insert_if_absent(&mut self, id: u64, path: impl FnOnce() -> String) {
        self.by_id.entry(id).or_insert_with(path);
    }

    /// How many paths are kept.
    pub(crate) fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Once the check interval has passed since the last check, forgets the paths of the
    /// cgroups that are gone and returns their ids; otherwise returns none. A cgroup whose
    /// life cannot be told (no cgroup2 hierarchy mounted, the handle refused) is kept.
    pub(crate) fn forget_gone(&mut self, now: Instant) -> Vec<u64> {
        if now.saturating_duration_since(self.checked_at) < self.check_interval {
            return Vec::new();
        }
        self.checked_at = now;
        let Some(hierarchy) = self.hierarchy.get_or_insert_with(Cgroup2::open) else {
            return Vec::new();
        };
        let gone: Vec<u64> = self
            .by_id
            .iter()
            .filter(|&(&id, path)| !hierarchy.lives(id, path))
            .map(|(&id, _)| id)
            .collect();
        for id in &gone {
            self.by_id.remove(id);
        }
        gone
    }
}

/// Opens the directory of the cgroup whose id is `id` (an [`palisade_event::Event::cgroup_id`]
/// of the eBPF probes) by the id itself, so without a living process of it to read its path
/// from: `ESTALE` once the cgroup is gone, `NotFound` when no cgroup2 hierarchy is mounted.
/// Needs `CAP_DAC_READ_SEARCH`.
pub fn open_cgroup(id: u64) -> std::io::Result<OwnedFd> {
    Cgroup2::open()
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no cgroup2 hierarchy is mounted",
            )
        })?
        .open_by_id(id)
}

/// The cgroup2 hierarchy as this process sees it mounted.
#[derive(Debug)]
struct Cgroup2 {
    mount: PathBuf,
    /// The mount's root directory, to resolve file handles on its file system.
    root: OwnedFd,
}

impl Cgroup2 {
    fn open() -> Option<Cgroup2> {
        let mount = cgroup2_mount()?.to_owned();
        let root = std::fs::File::open(&mount).ok()?;
        Some(Cgroup2 {
            mount,
            root: root.into(),
        })
    }

    /// Whether cgroup `id` (its `path` for a fallback key) still exists; true when it cannot
    /// be told.
    fn lives(&self, id: u64, path: &str) -> bool {
        if id & FALLBACK_KEY_BIT != 0 {
            return path.split('/').any(|part| part == "..")
                || self.mount.join(path.trim_start_matches('/')).is_dir();
        }
        !matches!(self.open_by_id(id), Err(error) if error.raw_os_error() == Some(libc::ESTALE))
    }

    /// Opens the cgroup directory whose kernfs id is `id`: kernfs's file handle is the id
    /// itself (`FILEID_KERNFS`); the kernel answers `ESTALE` once the cgroup is gone.
    fn open_by_id(&self, id: u64) -> std::io::Result<OwnedFd> {
        /// `struct file_handle` with kernfs's 8-byte handle.
        #[repr(C)]
        struct KernfsHandle {
            handle_bytes: libc::c_uint,
            handle_type: libc::c_int,
            id: [u8; 8],
        }
        const FILEID_KERNFS: libc::c_int = 0xfe;
        let mut handle = KernfsHandle {
            handle_bytes: 8,
            handle_type: FILEID_KERNFS,
            id: id.to_ne_bytes(),
        };
        // SAFETY: `handle` is a file_handle whose handle_bytes match its trailing bytes, valid
        // for the call; the mount descriptor is open.
        let fd = unsafe {
            libc::open_by_handle_at(
                self.root.as_raw_fd(),
                (&raw mut handle).cast::<libc::file_handle>(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: the descriptor was just opened and is owned by nobody else.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

/// Where the cgroup2 hierarchy is mounted (`/sys/fs/cgroup`, or `/sys/fs/cgroup/unified` on
/// a hybrid host), read once from the mount table.
pub(crate) fn cgroup2_mount() -> Option<&'static Path> {
    static MOUNT: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    MOUNT
        .get_or_init(|| {
            let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
            mounts.lines().find_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                (fields.get(2) == Some(&"cgroup2")).then(|| fields[1].into())
            })
        })
        .as_deref()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;
    use std::time::{Duration, Instant};

    use super::{CgroupPaths, FALLBACK_KEY_BIT, cgroup2_mount};

    /// A cgroup2 directory of the test's, removed when dropped.
    struct TestCgroup(std::path::PathBuf);
    impl Drop for TestCgroup {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir(&self.0);
        }
    }

    /// Real cgroups: a live one is kept however often it is checked, a removed one is
    /// forgotten at the next check (by id, and by path for a fallback key), and nothing is
    /// checked before the interval has passed.
    #[test]
    fn the_paths_of_removed_cgroups_are_forgotten() {
        // SAFETY: geteuid has no preconditions.
        let is_root = unsafe { libc::geteuid() } == 0;
        let mount = cgroup2_mount();
        if !palisade_testdata::capability(
            "root and a cgroup2 hierarchy",
            is_root && mount.is_some(),
        ) {
            return;
        }
        let mount = mount.unwrap();
        let name = |which: &str| format!("palisade-cgroup-paths-{}-{which}", std::process::id());
        let make = |which: &str| {
            let path = mount.join(name(which));
            std::fs::create_dir(&path).expect("a cgroup");
            let id = std::fs::metadata(&path).unwrap().ino();
            (TestCgroup(path), id)
        };
        let (live, live_id) = make("live");
        let (removed, removed_id) = make("removed");
        let path_key = 7 | FALLBACK_KEY_BIT;
        let mut paths = CgroupPaths::new(Duration::from_secs(3600));
        paths.insert_if_absent(live_id, || format!("/{}", name("live")));
        paths.insert_if_absent(removed_id, || format!("/{}", name("removed")));
        paths.insert_if_absent(path_key, || format!("/{}", name("removed")));
        paths.insert_if_absent(live_id, || unreachable!("kept already"));

        let start = Instant::now();
        drop(removed);
        assert!(
            paths.forget_gone(start).is_empty(),
            "not before the interval"
        );
        assert_eq!(paths.len(), 3);

        let mut gone = paths.forget_gone(start + Duration::from_secs(3600));
        gone.sort_unstable();
        let mut expected = vec![removed_id, path_key];
        expected.sort_unstable();
        assert_eq!(gone, expected);
        assert_eq!(
            paths.get(live_id),
            Some(format!("/{}", name("live")).as_str())
        );
        assert_eq!(paths.len(), 1);
        assert!(
            paths
                .forget_gone(start + Duration::from_secs(7200))
                .is_empty(),
            "a live cgroup stays"
        );
        drop(live);
    }
}
