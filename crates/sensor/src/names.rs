//! User and group names by id as a process's own root file system defines them
//! (`/etc/passwd`, `/etc/group`): Falco's `user.name`, `user.homedir`, `user.shell`,
//! `user.loginname` and `group.name`.
//!
//! The files are read by the container look-up workers ([`crate::ContainerAttribution`]),
//! never by the thread that drains the ring buffer, which only reads the parsed
//! [`RootNames`]: an id without an entry there leaves the name absent (the rules print
//! `<NA>`, as Falco does for a user it cannot name) and never waits.
//!
//! A container's files are hostile input read as root: a FIFO that never answers, a file of
//! gigabytes, a symlink aimed at the host's `/etc/shadow`. So the root is opened first (the
//! kernel's `/proc/<pid>/root` link, the pid checked to be in the cgroup after the open), each
//! file below it with `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` (symlinks, `..` and
//! absolute links resolve inside the root) and `O_NONBLOCK`, anything but a regular file is
//! refused before a byte is read, and at most [`MAX_NAMES_FILE_BYTES`] are read (the entries
//! past that are not, and [`RootNames::files_cut`] says so, which the sensor counts in
//! `SensorHealth::names_files_cut`; the first entry of an id wins, as with `getpwuid`; NSS
//! compat lines, `+name` and `-name`, are skipped, as Falco skips them). A file whose identity
//! (device, inode, size, modification time) has not changed since the last read is not read
//! again.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::sync::Arc;

use palisade_event::SharedStr;

use crate::cgroup_paths::cgroup2_mount;

/// The most read of one `passwd` or `group` file; entries past it are not read. Far above a
/// container's few lines and a host's hundreds of users (≈ 15,000 lines of ≈ 70 bytes), and
/// a bound on the memory and time a hostile file costs a look-up worker (≈ 3 ms to parse).
pub(crate) const MAX_NAMES_FILE_BYTES: u64 = 1 << 20;

/// A user's `/etc/passwd` entry, as the rules read it; shared by the events of the user's
/// processes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct UserEntry {
    pub(crate) name: SharedStr,
    pub(crate) homedir: SharedStr,
    pub(crate) shell: SharedStr,
}

/// What identifies one version of a file: a changed file has another inode (replaced, as
/// `useradd` does), size or modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileIdentity {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
}

/// The users and groups of one root file system.
#[derive(Debug, Default)]
pub(crate) struct RootNames {
    users: HashMap<u32, UserEntry>,
    groups: HashMap<u32, SharedStr>,
    /// The files as read (`None`: missing or refused).
    passwd: Option<FileIdentity>,
    group: Option<FileIdentity>,
    /// How many of the two files were new versions (not those of the names this read
    /// replaced) longer than [`MAX_NAMES_FILE_BYTES`]: read up to it.
    files_cut: u64,
}

impl RootNames {
    /// The entry of user `uid`, if the root's `/etc/passwd` has one.
    pub(crate) fn user(&self, uid: u32) -> Option<&UserEntry> {
        self.users.get(&uid)
    }

    /// The name of group `gid`, if the root's `/etc/group` has one.
    pub(crate) fn group(&self, gid: u32) -> Option<&SharedStr> {
        self.groups.get(&gid)
    }

    /// How many of the root's two files were read only up to [`MAX_NAMES_FILE_BYTES`] (the
    /// users or groups listed past it have no names here), counting only the files that
    /// changed since the names this read replaced: one version of a file is counted once.
    pub(crate) fn files_cut(&self) -> u64 {
        self.files_cut
    }
}

/// Why a root's names could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NamesError {
    /// The root (or a file below it) could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The file is not a regular file (a FIFO, a device, a directory): not read.
    #[error("{path} is a {kind}, not a regular file: not read")]
    NotRegular { path: String, kind: &'static str },
    /// No process of the cgroup is left to show its root.
    #[error("no process of cgroup {cgroup_path} shows its root (pid {pid} left it)")]
    NoProcess { cgroup_path: String, pid: u32 },
}

/// Where a root's names are read: the host's `/`, or the root of a process in a cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NamesRoot {
    Host,
    /// The root of `pid`, which must be in the cgroup at `cgroup_path` (another process
    /// may have the pid by the time a worker reads it); when it is not, another process of
    /// the cgroup (`cgroup.procs`) shows it.
    Process {
        pid: u32,
        cgroup_path: String,
    },
}

/// The names of `root`, or `previous` itself when neither file changed since it was read.
pub(crate) fn load(
    root: &NamesRoot,
    previous: Option<&Arc<RootNames>>,
) -> Result<Arc<RootNames>, NamesError> {
    let root_dir = open_root(root)?;
    Ok(read_root(&root_dir, previous))
}

/// The names below the root directory `root_dir` (see [`load`]).
fn read_root(root_dir: &File, previous: Option<&Arc<RootNames>>) -> Arc<RootNames> {
    let passwd = open_names_file(root_dir, "etc/passwd");
    let group = open_names_file(root_dir, "etc/group");
    let identity = |file: &Result<(File, FileIdentity), NamesError>| {
        file.as_ref().ok().map(|(_, identity)| *identity)
    };
    if let Some(previous) = previous
        && previous.passwd == identity(&passwd)
        && previous.group == identity(&group)
    {
        return Arc::clone(previous);
    }
    let mut names = RootNames {
        passwd: identity(&passwd),
        group: identity(&group),
        ..RootNames::default()
    };
    // A file read again only because the other one changed is the version counted before.
    let new_version = [
        previous.is_none_or(|previous| previous.passwd != names.passwd),
        previous.is_none_or(|previous| previous.group != names.group),
    ];
    for ((file, database), new_version) in [(passwd, "passwd"), (group, "group")]
        .into_iter()
        .zip(new_version)
    {
        let (text, cut) = match file.and_then(|(file, _)| read_bounded(file, database)) {
            Ok(read) => read,
            Err(error) => {
                tracing::debug!(%error, "User or group names not read.");
                continue;
            }
        };
        names.files_cut += u64::from(cut && new_version);
        if database == "passwd" {
            names.users = passwd_entries(&text);
        } else {
            names.groups = group_entries(&text);
        }
    }
    Arc::new(names)
}

/// The root directory, held as a path handle.
fn open_root(root: &NamesRoot) -> Result<File, NamesError> {
    let (pid, cgroup_path) = match root {
        NamesRoot::Host => return open_path_handle("/"),
        NamesRoot::Process { pid, cgroup_path } => (*pid, cgroup_path),
    };
    let candidates = std::iter::once(pid).chain(cgroup_members(cgroup_path));
    for candidate in candidates {
        let Ok(root) = open_path_handle(&format!("/proc/{candidate}/root")) else {
            continue;
        };
        // Checked after the open: a pid reused by a process outside the cgroup before it
        // fails here, so the handle is the root of a process that was in the cgroup.
        if in_cgroup(candidate, cgroup_path) {
            return Ok(root);
        }
    }
    Err(NamesError::NoProcess {
        cgroup_path: cgroup_path.clone(),
        pid,
    })
}

fn open_path_handle(path: &str) -> Result<File, NamesError> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(path)
        .map_err(|source| NamesError::Io {
            path: path.to_owned(),
            source,
        })
}

/// Whether `/proc/<pid>/cgroup` puts the process at `cgroup_path` in the cgroup2 hierarchy
/// (the probes' paths start with the root's slash and each level's: `//a/b`).
fn in_cgroup(pid: u32, cgroup_path: &str) -> bool {
    let wanted = cgroup_path.trim_start_matches('/');
    std::fs::read_to_string(format!("/proc/{pid}/cgroup")).is_ok_and(|cgroups| {
        cgroups.lines().any(|line| {
            line.strip_prefix("0::")
                .is_some_and(|path| path.trim_start_matches('/') == wanted)
        })
    })
}

/// A few processes of the cgroup, from its `cgroup.procs` in the cgroup2 hierarchy; none
/// when it cannot be read.
fn cgroup_members(cgroup_path: &str) -> Vec<u32> {
    const MAX_CANDIDATES: usize = 4;
    let Some(mount) = cgroup2_mount() else {
        return Vec::new();
    };
    if cgroup_path.split('/').any(|part| part == "..") {
        return Vec::new();
    }
    let procs = mount
        .join(cgroup_path.trim_start_matches('/'))
        .join("cgroup.procs");
    std::fs::read_to_string(procs)
        .map(|pids| {
            pids.lines()
                .filter_map(|pid| pid.trim().parse().ok())
                .take(MAX_CANDIDATES)
                .collect()
        })
        .unwrap_or_default()
}

/// Opens `path` (relative) below `root` as the kernel resolves it inside the root, without
/// blocking on a FIFO; refuses anything but a regular file.
fn open_names_file(root: &File, path: &str) -> Result<(File, FileIdentity), NamesError> {
    let io_error = |source| NamesError::Io {
        path: format!("/{path}"),
        source,
    };
    // Non-blocking: a FIFO swapped in for the file cannot hold the worker.
    let file = palisade_rootfs::open_in_root(
        root,
        path,
        libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY,
        0,
    )
    .map_err(io_error)?;
    let metadata = file.metadata().map_err(io_error)?;
    let file_type = metadata.file_type();
    if !file_type.is_file() {
        use std::os::unix::fs::FileTypeExt;
        let kind = if file_type.is_fifo() {
            "FIFO"
        } else if file_type.is_dir() {
            "directory"
        } else if file_type.is_socket() {
            "socket"
        } else {
            "device"
        };
        return Err(NamesError::NotRegular {
            path: format!("/{path}"),
            kind,
        });
    }
    let identity = FileIdentity {
        dev: metadata.dev(),
        ino: metadata.ino(),
        size: metadata.size(),
        mtime_ns: i128::from(metadata.mtime()) * 1_000_000_000 + i128::from(metadata.mtime_nsec()),
    };
    Ok((file, identity))
}

/// The file's text up to [`MAX_NAMES_FILE_BYTES`], cut after the last whole line when longer,
/// and whether it was cut.
fn read_bounded(file: File, database: &str) -> Result<(String, bool), NamesError> {
    let mut bytes = Vec::new();
    file.take(MAX_NAMES_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| NamesError::Io {
            path: format!("/etc/{database}"),
            source,
        })?;
    let cut = bytes.len() as u64 > MAX_NAMES_FILE_BYTES;
    if cut {
        tracing::warn!(
            database,
            limit = MAX_NAMES_FILE_BYTES,
            "A user or group file is larger than the limit: the entries past it are not read."
        );
        let whole_lines = bytes[..MAX_NAMES_FILE_BYTES as usize]
            .iter()
            .rposition(|byte| *byte == b'\n')
            .map_or(0, |newline| newline + 1);
        bytes.truncate(whole_lines);
    }
    Ok((String::from_utf8_lossy(&bytes).into_owned(), cut))
}

/// The fields of one `name:password:id:...` line, unless it is an NSS compat entry
/// (`+name`, `-name`) or has no name or numeric id.
fn entry_fields(line: &str) -> Option<(u32, Vec<&str>)> {
    let fields: Vec<&str> = line.split(':').collect();
    let name = fields.first()?;
    if name.is_empty() || name.starts_with(['+', '-']) {
        return None;
    }
    let id = fields.get(2)?.trim().parse().ok()?;
    Some((id, fields))
}

/// `/etc/passwd` (`name:password:uid:gid:gecos:home:shell`) by uid, the first entry of a uid
/// winning.
fn passwd_entries(text: &str) -> HashMap<u32, UserEntry> {
    let mut users = HashMap::new();
    for (uid, fields) in text.lines().filter_map(entry_fields) {
        users.entry(uid).or_insert_with(|| UserEntry {
            name: fields[0].into(),
            homedir: fields.get(5).copied().unwrap_or_default().into(),
            shell: fields.get(6).copied().unwrap_or_default().into(),
        });
    }
    users
}

/// `/etc/group` (`name:password:gid:members`) by gid, the first entry of a gid winning.
fn group_entries(text: &str) -> HashMap<u32, SharedStr> {
    let mut groups = HashMap::new();
    for (gid, fields) in text.lines().filter_map(entry_fields) {
        groups.entry(gid).or_insert_with(|| fields[0].into());
    }
    groups
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::path::Path;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use crate::names::{
        MAX_NAMES_FILE_BYTES, NamesError, NamesRoot, RootNames, load, open_names_file,
        open_path_handle, read_root,
    };

    /// The names of a directory taken as a root (what `/proc/<pid>/root` shows).
    fn load_dir(dir: &Path) -> Arc<RootNames> {
        read_root(&open_path_handle(dir.to_str().unwrap()).unwrap(), None)
    }

    fn root_with(passwd: &str, group: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/passwd"), passwd).unwrap();
        std::fs::write(dir.path().join("etc/group"), group).unwrap();
        dir
    }

    #[test]
    fn entries_are_read_as_getpwuid_and_falco_read_them() {
        let dir = root_with(
            "# comment\n+nisuser:x:7:7::/:/bin/sh\nroot:x:0:0:root:/root:/bin/bash\n\
             toor:x:0:0::/:/bin/sh\napp:x:1000:1000:App,,,:/home/app\nbad:x:notanumber:0::/:\n",
            "root:x:0:\n-nis:x:9:\nwheel:x:10:app\n",
        );
        let names = load_dir(dir.path());
        let root = names.user(0).unwrap();
        assert_eq!(
            (
                root.name.as_str(),
                root.homedir.as_str(),
                root.shell.as_str()
            ),
            ("root", "/root", "/bin/bash"),
            "the first entry of a uid wins"
        );
        let app = names.user(1000).unwrap();
        assert_eq!(
            (app.homedir.as_str(), app.shell.as_str()),
            ("/home/app", "")
        );
        assert!(names.user(7).is_none(), "NSS compat entries are skipped");
        assert_eq!(names.group(10).map(|name| name.as_str()), Some("wheel"));
        assert!(names.group(9).is_none());
        assert!(names.user(4242).is_none());
    }

    /// A FIFO in the file's place is refused at once (never waited on), and the other file
    /// is still read.
    #[test]
    fn a_fifo_is_refused_without_waiting() {
        let dir = root_with("", "root:x:0:\n");
        let passwd = dir.path().join("etc/passwd");
        std::fs::remove_file(&passwd).unwrap();
        let c_path = std::ffi::CString::new(passwd.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        let root = open_path_handle(dir.path().to_str().unwrap()).unwrap();
        let started = Instant::now();
        let refused = open_names_file(&root, "etc/passwd");
        assert!(
            matches!(refused, Err(NamesError::NotRegular { kind: "FIFO", .. })),
            "{refused:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(1));
        let names = load_dir(dir.path());
        assert_eq!(names.group(0).map(|name| name.as_str()), Some("root"));
    }

    /// A file past the limit is read up to it, to the last whole line, quickly.
    #[test]
    fn a_huge_file_is_read_up_to_the_limit() {
        let dir = root_with("", "");
        let mut passwd =
            std::io::BufWriter::new(std::fs::File::create(dir.path().join("etc/passwd")).unwrap());
        let mut written = 0u64;
        let mut uid = 0u32;
        while written < 2 * MAX_NAMES_FILE_BYTES {
            let line = format!("user{uid}:x:{uid}:{uid}::/home/user{uid}:/bin/sh\n");
            passwd.write_all(line.as_bytes()).unwrap();
            written += line.len() as u64;
            uid += 1;
        }
        passwd.flush().unwrap();
        drop(passwd);
        let started = Instant::now();
        let names = load_dir(dir.path());
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(names.user(0).unwrap().name.as_str(), "user0");
        assert!(names.user(uid - 1).is_none(), "past the limit");
        let kept = names.users.len() as u32;
        assert!(kept > uid / 3 && kept < uid, "{kept} of {uid}");
        assert!(
            names.user(kept).is_none(),
            "the entries up to the limit, in order"
        );
        let last = names.user(kept - 1).unwrap();
        assert_eq!(last.shell.as_str(), "/bin/sh", "no cut line: {last:?}");
        assert_eq!(
            names.files_cut(),
            1,
            "the passwd file was cut, not the group file"
        );
        let whole = load_dir(root_with("root:x:0:0::/:/bin/sh\n", "root:x:0:\n").path());
        assert_eq!(whole.files_cut(), 0);
    }

    /// A file cut at the limit is counted once per version: not again when the names are
    /// read again because the other file changed, again when it is replaced.
    #[test]
    fn a_cut_file_is_counted_once_per_version() {
        let mut group = String::new();
        while group.len() as u64 <= MAX_NAMES_FILE_BYTES {
            group.push_str(&format!("g{0}:x:{0}:\n", group.len()));
        }
        let dir = root_with("root:x:0:0::/:/bin/sh\n", &group);
        let root = open_path_handle(dir.path().to_str().unwrap()).unwrap();
        let first = read_root(&root, None);
        assert_eq!(first.files_cut(), 1);
        let unchanged = read_root(&root, Some(&first));
        assert!(Arc::ptr_eq(&first, &unchanged));
        let passwd = dir.path().join("etc/passwd");
        std::fs::write(&passwd, "root:x:0:0::/:/bin/sh\napp:x:1:1::/:/bin/sh\n").unwrap();
        let passwd_changed = read_root(&root, Some(&first));
        assert_eq!(passwd_changed.user(1).unwrap().name.as_str(), "app");
        assert_eq!(
            passwd_changed.files_cut(),
            0,
            "the same group file as before"
        );
        // Replaced, as groupadd does: another inode.
        let replacement = dir.path().join("etc/group.new");
        std::fs::write(&replacement, format!("{group}late:x:99999:\n")).unwrap();
        std::fs::rename(&replacement, dir.path().join("etc/group")).unwrap();
        let group_changed = read_root(&root, Some(&passwd_changed));
        assert_eq!(group_changed.files_cut(), 1);
        assert!(group_changed.group(99_999).is_none(), "past the limit");
    }

    /// Symlinks resolve inside the root: an absolute link, or one climbing with `..`, never
    /// reaches the host's files.
    #[test]
    fn symlinks_do_not_lead_out_of_the_root() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("passwd"), "escaped:x:0:0::/:/bin/sh\n").unwrap();
        let dir = root_with("", "");
        let passwd = dir.path().join("etc/passwd");
        std::fs::remove_file(&passwd).unwrap();
        let target = format!("/../../../../../..{}/passwd", outside.path().display());
        std::os::unix::fs::symlink(&target, &passwd).unwrap();
        // The same path inside the root holds the root's own file.
        let inside = dir.path().join(outside.path().strip_prefix("/").unwrap());
        std::fs::create_dir_all(&inside).unwrap();
        std::fs::write(inside.join("passwd"), "inside:x:0:0::/:/bin/sh\n").unwrap();
        let names = load_dir(dir.path());
        assert_eq!(names.user(0).unwrap().name.as_str(), "inside");
        std::fs::remove_dir_all(dir.path().join(outside.path().strip_prefix("/").unwrap()))
            .unwrap();
        let names = load_dir(dir.path());
        assert!(
            names.user(0).is_none(),
            "the link's target is not the host's"
        );
    }

    /// `load` through a process's root: a process of this test's cgroup, checked, and an
    /// unchanged root kept as it was read; a pid outside the cgroup is refused.
    #[test]
    fn a_process_root_is_read_once_while_unchanged() {
        let own = std::process::id();
        let cgroup_path = std::fs::read_to_string(format!("/proc/{own}/cgroup"))
            .unwrap()
            .lines()
            .find_map(|line| line.strip_prefix("0::").map(str::to_owned))
            .expect("a cgroup2 path");
        let root = NamesRoot::Process {
            pid: own,
            cgroup_path: cgroup_path.clone(),
        };
        let first = load(&root, None).unwrap();
        assert_eq!(first.user(0).map(|user| user.name.as_str()), Some("root"));
        let again = load(&root, Some(&first)).unwrap();
        assert!(
            Arc::ptr_eq(&first, &again),
            "unchanged files are not read again"
        );
        let elsewhere = NamesRoot::Process {
            pid: own,
            cgroup_path: "/palisade-no-such-cgroup".into(),
        };
        assert!(matches!(
            load(&elsewhere, None),
            Err(NamesError::NoProcess { .. })
        ));
    }
}
