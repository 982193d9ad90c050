//! Root filesystems on disk: a directory, a running container's merged root, the host.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cancel::Cancel;
use crate::error::{Error, ErrorKind, Warning};
use crate::filesystem::NodeKind;
use crate::limits::Limits;
use crate::walk::{Content, FileVisit, Walk};

/// A root filesystem read in place: files are opened inside the root
/// (`openat2(RESOLVE_IN_ROOT)`), so no symlink, not even one a running container swaps in,
/// leads outside it, and nothing is written.
#[derive(Debug, Clone)]
pub struct RootFs {
    root: PathBuf,
    excluded: Vec<String>,
}

/// Directories of a live system that hold kernel interfaces, devices, runtime state or other
/// containers' storage, not installed software.
const LIVE_SYSTEM_EXCLUDES: &[&str] = &[
    "proc",
    "sys",
    "dev",
    "run",
    "var/lib/containers",
    "var/lib/containerd",
    "var/lib/docker",
];

impl RootFs {
    /// A directory holding a root filesystem (an unpacked image, a debootstrap tree).
    pub fn new(root: &Path) -> RootFs {
        RootFs {
            root: root.to_owned(),
            excluded: Vec::new(),
        }
    }

    /// The host's root, without `/proc`, `/sys`, `/dev`, `/run` and container storage
    /// (container images are inventoried as images).
    pub fn host() -> RootFs {
        RootFs::live(PathBuf::from("/"))
    }

    /// A running container's merged root, given a directory, or a runc or podman container
    /// id or name (read through `/proc/<pid>/root`, which works for any runtime and sees the
    /// container's own mounts).
    pub fn container(id_or_path: &str) -> Result<RootFs, Error> {
        let as_path = Path::new(id_or_path);
        if as_path.is_dir() {
            return Ok(RootFs::live(as_path.to_owned()));
        }
        let pid = container_pid(id_or_path)?;
        Ok(RootFs::live(PathBuf::from(format!("/proc/{pid}/root"))))
    }

    fn live(root: PathBuf) -> RootFs {
        RootFs {
            root,
            excluded: LIVE_SYSTEM_EXCLUDES
                .iter()
                .map(|dir| (*dir).to_owned())
                .collect(),
        }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Visits every regular file below the root (symlinks are recorded in the tree, never
    /// followed; other mounts are entered, excluded directories are not) and returns the tree
    /// and the entries that could not be read. Stops with [`ErrorKind::Cancelled`] once
    /// `cancel` is cancelled.
    pub fn for_each_file(
        &self,
        limits: &Limits,
        cancel: &Cancel,
        mut visit: impl FnMut(&mut FileVisit<'_>) -> std::io::Result<()>,
    ) -> Result<Walk, Error> {
        let root_dir = File::open(&self.root).map_err(|source| Error::io(&self.root, source))?;
        let mut walk = Walk::default();
        let mut pending = vec![String::new()];
        let mut n_entries = 0u64;
        while let Some(dir) = pending.pop() {
            let dir_path = self.root.join(&dir);
            let entries = match std::fs::read_dir(&dir_path) {
                Ok(entries) => entries,
                Err(error) => {
                    warn(&mut walk, &dir_path, &error.to_string());
                    continue;
                }
            };
            for entry in entries {
                if cancel.is_cancelled() {
                    return Err(Error::cancelled(&self.root));
                }
                let entry = match entry {
                    Ok(entry) => entry,
                    Err(error) => {
                        warn(&mut walk, &dir_path, &error.to_string());
                        continue;
                    }
                };
                n_entries += 1;
                if n_entries > limits.max_entries {
                    return Err(Error::limit(
                        self.root.display().to_string(),
                        format!("more than {} entries (max_entries)", limits.max_entries),
                    ));
                }
                let name = entry.file_name();
                let Some(name) = name.to_str() else {
                    warn(&mut walk, &entry.path(), "file name is not UTF-8");
                    continue;
                };
                let path = if dir.is_empty() {
                    name.to_owned()
                } else {
                    format!("{dir}/{name}")
                };
                if path.len() > limits.max_path_bytes {
                    warn(&mut walk, &entry.path(), "path longer than max_path_bytes");
                    continue;
                }
                // `DirEntry::metadata` does not follow symlinks.
                let metadata = match entry.metadata() {
                    Ok(metadata) => metadata,
                    Err(error) => {
                        warn(&mut walk, &entry.path(), &error.to_string());
                        continue;
                    }
                };
                let file_type = metadata.file_type();
                if file_type.is_dir() {
                    if !self.excluded.contains(&path) {
                        walk.filesystem.insert(path.clone(), 0, NodeKind::Directory);
                        pending.push(path);
                    }
                } else if file_type.is_symlink() {
                    if let Ok(target) = std::fs::read_link(entry.path()) {
                        let target = target.to_string_lossy().into_owned();
                        walk.filesystem
                            .insert(path, 0, NodeKind::Symlink { target });
                    }
                } else if file_type.is_file() {
                    use std::os::unix::fs::PermissionsExt;
                    let size = metadata.len();
                    walk.filesystem
                        .insert(path.clone(), 0, NodeKind::File { size });
                    let mut file = FileVisit {
                        path: &path,
                        layer_index: 0,
                        layer_digest: None,
                        size,
                        mode: metadata.permissions().mode() & 0o7777,
                        content: Content::InRoot {
                            root: &root_dir,
                            file: None,
                        },
                        cancel,
                    };
                    if let Err(source) = visit(&mut file) {
                        if cancel.is_cancelled() {
                            return Err(Error::cancelled(&self.root));
                        }
                        if file_was_unreadable(&source) {
                            warn(&mut walk, &entry.path(), &source.to_string());
                            continue;
                        }
                        return Err(ErrorKind::Visit { path, source }.into());
                    }
                }
                // Devices, FIFOs and sockets hold no software; they are left out silently.
            }
        }
        Ok(walk)
    }
}

/// Errors a live file system produces when a file vanishes or is locked while being read;
/// such files are skipped, not fatal.
fn file_was_unreadable(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied
    ) || error.raw_os_error() == Some(libc::ELOOP)
}

fn warn(walk: &mut Walk, path: &Path, reason: &str) {
    tracing::warn!(path = %path.display(), reason, "Skipped a file.");
    walk.warnings.push(Warning {
        location: path.display().to_string(),
        reason: reason.to_owned(),
    });
}

/// The host pid of a running container's init process, from runc's state or podman's (by id
/// or name; anything but letters, digits, `-`, `_` and `.` is refused before either runs).
pub fn container_pid(container: &str) -> Result<u32, Error> {
    let fail = |reason: String| -> Error {
        ErrorKind::Container {
            container: container.to_owned(),
            reason,
        }
        .into()
    };
    if container.is_empty()
        || !container
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(fail(
            "not a directory, and not a valid container id or name".into(),
        ));
    }
    let mut tried = Vec::new();
    let attempts: [(&str, &[&str]); 2] = [
        ("runc", &["state", container]),
        (
            "podman",
            &["inspect", "--format", "{{.State.Pid}}", container],
        ),
    ];
    for (program, args) in attempts {
        match Command::new(program).args(args).output() {
            Ok(output) if output.status.success() => {
                let text = String::from_utf8_lossy(&output.stdout);
                let pid = if program == "runc" {
                    serde_json::from_str::<serde_json::Value>(&text)
                        .ok()
                        .and_then(|state| state.get("pid").and_then(|pid| pid.as_u64()))
                } else {
                    text.trim().parse::<u64>().ok()
                };
                match pid {
                    Some(pid) if pid > 0 => return Ok(pid as u32),
                    _ => tried.push(format!("{program}: the container is not running")),
                }
            }
            Ok(output) => tried.push(format!(
                "{program}: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            )),
            Err(error) => tried.push(format!("{program}: {error}")),
        }
    }
    Err(fail(tried.join("; ")))
}
