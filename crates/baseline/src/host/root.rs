//! [`HostRoot`]: reading a host's files under a root directory as hostile input.
//!
//! Every path is resolved component by component inside the root, the way
//! `openat2(RESOLVE_IN_ROOT)` does: an absolute symbolic link restarts at the root and `..`
//! stops at it, so a link such as `etc/shadow -> /../../etc/shadow` in a mounted image can never
//! make the checks read the scanning machine's own files. Files are read up to
//! [`MAX_CONFIG_SIZE`] bytes.

use std::{
    ffi::OsString,
    fs::{self, Metadata},
    io::Read,
    os::unix::fs::MetadataExt,
    path::{Component, Path, PathBuf},
};

use crate::Error;

/// The largest configuration file the host checks read (4 MiB).
pub const MAX_CONFIG_SIZE: u64 = 4 * 1024 * 1024;

/// How many symbolic links one path may pass through, as Linux's `MAXSYMLINKS`.
const MAX_SYMLINKS: usize = 40;

/// A host's file system, seen from `root` (`/` for the running host).
#[derive(Debug, Clone)]
pub struct HostRoot {
    root: PathBuf,
    live: bool,
}

/// A text file read from the host.
#[derive(Debug, Clone)]
pub(crate) struct HostFile {
    /// The path on the host (inside the root), e.g. `/etc/ssh/sshd_config`.
    pub(crate) path: String,
    /// The contents.
    pub(crate) text: String,
}

/// Whether `path` is `/proc/<pid>/root` or `/proc/self/root`.
fn is_process_root(path: &Path) -> bool {
    let parts: Vec<_> = path.components().collect();
    matches!(
        parts.as_slice(),
        [Component::RootDir, Component::Normal(proc), Component::Normal(pid), Component::Normal(root)]
            if *proc == "proc"
                && *root == "root"
                && pid.to_str().is_some_and(|pid| pid == "self" || pid.bytes().all(|b| b.is_ascii_digit()))
    )
}

impl HostRoot {
    /// A host root at `root`. When `root` is `/`, the checks also read the running kernel's
    /// state (`/proc`): sysctls, loaded modules, running daemons.
    pub fn new(root: &Path) -> Result<HostRoot, Error> {
        // `/proc/<pid>/root` is a magic link into the process's mount namespace (a container's
        // root): resolving it yields the path as that namespace names it, usually `/`, which
        // here would be this host's root. Kept as it is, it reaches the container's files.
        let canonical = if is_process_root(root) {
            Ok(root.to_path_buf())
        } else {
            fs::canonicalize(root)
        }
        .map_err(|error| Error::io(root.to_path_buf(), "cannot open the host root", error))?;
        if !canonical.is_dir() {
            return Err(Error::io(
                root.to_path_buf(),
                "the host root is not a directory",
                std::io::Error::from(std::io::ErrorKind::NotADirectory),
            ));
        }
        let live = canonical == Path::new("/");
        Ok(HostRoot {
            root: canonical,
            live,
        })
    }

    /// The root directory on the scanning machine.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether this is the running host (`/`), whose kernel state can be read from `/proc`.
    pub fn is_live(&self) -> bool {
        self.live
    }

    /// Resolves `host_path` (absolute on the host) to a path on the scanning machine, following
    /// symbolic links inside the root; the last component is followed only when
    /// `follow_last` is true. Returns `None` when a component does not exist.
    pub(crate) fn resolve(
        &self,
        host_path: &str,
        follow_last: bool,
    ) -> Result<Option<PathBuf>, Error> {
        let mut resolved: Vec<OsString> = Vec::new();
        let mut pending: Vec<OsString> = components_reversed(Path::new(host_path));
        let mut n_links = 0;
        while let Some(component) = pending.pop() {
            if component == ".." {
                resolved.pop();
                continue;
            }
            resolved.push(component);
            let real = self.real_path(&resolved);
            let metadata = match fs::symlink_metadata(&real) {
                Ok(metadata) => metadata,
                Err(error) if is_missing(&error) => return Ok(None),
                Err(error) => return Err(Error::io(real, "cannot inspect", error)),
            };
            if !metadata.file_type().is_symlink() || (pending.is_empty() && !follow_last) {
                continue;
            }
            n_links += 1;
            if n_links > MAX_SYMLINKS {
                return Err(Error::too_deep(
                    PathBuf::from(host_path),
                    format!("more than {MAX_SYMLINKS} symbolic links while resolving the path"),
                ));
            }
            let target = fs::read_link(&real)
                .map_err(|error| Error::io(real.clone(), "cannot read symbolic link", error))?;
            resolved.pop();
            if target.is_absolute() {
                resolved.clear();
            }
            pending.extend(components_reversed(&target));
        }
        Ok(Some(self.real_path(&resolved)))
    }

    fn real_path(&self, components: &[OsString]) -> PathBuf {
        let mut real = self.root.clone();
        real.extend(components);
        real
    }

    /// Reads a text file of the host, or `None` when it does not exist. Files larger than
    /// [`MAX_CONFIG_SIZE`], non-regular files and invalid UTF-8 are errors.
    pub(crate) fn read(&self, host_path: &str) -> Result<Option<HostFile>, Error> {
        let Some(real) = self.resolve(host_path, true)? else {
            return Ok(None);
        };
        let file = match fs::File::open(&real) {
            Ok(file) => file,
            Err(error) if is_missing(&error) => return Ok(None),
            Err(error) => return Err(Error::io(real, "cannot open", error)),
        };
        let metadata = file
            .metadata()
            .map_err(|error| Error::io(real.clone(), "cannot inspect", error))?;
        if !metadata.is_file() {
            return Err(Error::config(
                PathBuf::from(host_path),
                None,
                "is not a regular file".to_owned(),
            ));
        }
        if metadata.len() > MAX_CONFIG_SIZE {
            return Err(Error::too_large_limit(
                PathBuf::from(host_path),
                metadata.len(),
                MAX_CONFIG_SIZE,
            ));
        }
        let mut bytes = Vec::new();
        file.take(MAX_CONFIG_SIZE + 1)
            .read_to_end(&mut bytes)
            .map_err(|error| Error::io(real, "cannot read", error))?;
        if bytes.len() as u64 > MAX_CONFIG_SIZE {
            return Err(Error::too_large_limit(
                PathBuf::from(host_path),
                bytes.len() as u64,
                MAX_CONFIG_SIZE,
            ));
        }
        let text = String::from_utf8(bytes).map_err(|_| Error::encoding(host_path.into()))?;
        Ok(Some(HostFile {
            path: host_path.to_owned(),
            text,
        }))
    }

    /// The metadata of a host path without following its last component, or `None`.
    pub(crate) fn metadata(&self, host_path: &str) -> Result<Option<Metadata>, Error> {
        let Some(real) = self.resolve(host_path, false)? else {
            return Ok(None);
        };
        match fs::symlink_metadata(&real) {
            Ok(metadata) => Ok(Some(metadata)),
            Err(error) if is_missing(&error) => Ok(None),
            Err(error) => Err(Error::io(real, "cannot inspect", error)),
        }
    }

    /// Whether a host path exists (following symbolic links inside the root).
    pub(crate) fn exists(&self, host_path: &str) -> bool {
        matches!(self.resolve(host_path, true), Ok(Some(real)) if real.exists())
    }

    /// Whether any of these programs exists on the host.
    pub(crate) fn any_exists(&self, host_paths: &[&str]) -> bool {
        host_paths.iter().any(|host_path| self.exists(host_path))
    }

    /// The names in a host directory, sorted (empty when it does not exist). At most
    /// `MAX_DIR_ENTRIES` names are read.
    pub(crate) fn list_dir(&self, host_dir: &str) -> Result<Vec<String>, Error> {
        const MAX_DIR_ENTRIES: usize = 10_000;
        let Some(real) = self.resolve(host_dir, true)? else {
            return Ok(Vec::new());
        };
        let entries = match fs::read_dir(&real) {
            Ok(entries) => entries,
            Err(error) if is_missing(&error) || error.raw_os_error() == Some(20) => {
                return Ok(Vec::new());
            }
            Err(error) => return Err(Error::io(real, "cannot list", error)),
        };
        let mut names = Vec::new();
        for entry in entries.take(MAX_DIR_ENTRIES) {
            let entry = entry.map_err(|error| Error::io(real.clone(), "cannot list", error))?;
            if let Some(name) = entry.file_name().to_str() {
                names.push(name.to_owned());
            }
        }
        names.sort();
        Ok(names)
    }

    /// The host paths of the files in `host_dir` whose names end with `suffix`, sorted.
    pub(crate) fn files_with_suffix(
        &self,
        host_dir: &str,
        suffix: &str,
    ) -> Result<Vec<String>, Error> {
        Ok(self
            .list_dir(host_dir)?
            .into_iter()
            .filter(|name| name.ends_with(suffix) && !name.starts_with('.'))
            .map(|name| format!("{}/{name}", host_dir.trim_end_matches('/')))
            .collect())
    }
}

impl HostRoot {
    /// The host paths matching `pattern`, sorted; `*` and `?` are wildcards in the last
    /// component only (as in `Include /etc/ssh/sshd_config.d/*.conf`). A pattern without
    /// wildcards yields itself when it exists.
    pub(crate) fn glob(&self, pattern: &str) -> Result<Vec<String>, Error> {
        let (dir, name_pattern) = pattern.rsplit_once('/').unwrap_or(("", pattern));
        if !name_pattern.contains(['*', '?']) {
            return Ok(if self.exists(pattern) {
                vec![pattern.to_owned()]
            } else {
                Vec::new()
            });
        }
        let dir = if dir.is_empty() { "/" } else { dir };
        Ok(self
            .list_dir(dir)?
            .into_iter()
            .filter(|name| !name.starts_with('.') && wildcard_match(name_pattern, name))
            .map(|name| format!("{}/{name}", dir.trim_end_matches('/')))
            .collect())
    }
}

/// Whether `text` matches `pattern`, where `*` matches any run of characters and `?` one.
pub(crate) fn wildcard_match(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    // Iterative matching with one backtrack point: linear in practice, never exponential.
    let (mut pattern_idx, mut text_idx) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while text_idx < text.len() {
        if pattern_idx < pattern.len()
            && (pattern[pattern_idx] == '?' || pattern[pattern_idx] == text[text_idx])
        {
            pattern_idx += 1;
            text_idx += 1;
        } else if pattern_idx < pattern.len() && pattern[pattern_idx] == '*' {
            star = Some((pattern_idx, text_idx));
            pattern_idx += 1;
        } else if let Some((star_pattern, star_text)) = star {
            pattern_idx = star_pattern + 1;
            text_idx = star_text + 1;
            star = Some((star_pattern, star_text + 1));
        } else {
            return false;
        }
    }
    pattern[pattern_idx..].iter().all(|&c| c == '*')
}

/// The normal components of `path`, last first, so that `pop` yields them in order.
fn components_reversed(path: &Path) -> Vec<OsString> {
    let mut components: Vec<OsString> = path
        .components()
        .filter_map(|component| match component {
            Component::Normal(name) => Some(name.to_owned()),
            Component::ParentDir => Some(OsString::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect();
    components.reverse();
    components
}

fn is_missing(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
    )
}

/// `mode` as four octal digits, e.g. `0640`.
pub(crate) fn octal_mode(metadata: &Metadata) -> String {
    format!("{:04o}", metadata.mode() & 0o7777)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbolic_links_stay_inside_the_root() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("etc")).unwrap();
        fs::write(root.path().join("etc/real"), "inside").unwrap();
        std::os::unix::fs::symlink("/../../../etc/real", root.path().join("etc/absolute")).unwrap();
        std::os::unix::fs::symlink("../../../../etc/passwd", root.path().join("etc/escape"))
            .unwrap();
        std::os::unix::fs::symlink("loop", root.path().join("etc/loop")).unwrap();
        let host = HostRoot::new(root.path()).unwrap();
        assert!(!host.is_live());
        assert_eq!(host.read("/etc/absolute").unwrap().unwrap().text, "inside");
        // `../..` stops at the root, so this names <root>/etc/passwd, which does not exist.
        assert!(host.read("/etc/escape").unwrap().is_none());
        let error = host.read("/etc/loop").unwrap_err();
        assert_eq!(error.kind(), crate::ErrorKind::TooDeep);
        assert!(error.to_string().contains("symbolic links"), "{error}");
    }

    #[test]
    fn large_and_binary_files_are_errors() {
        let root = tempfile::tempdir().unwrap();
        fs::write(
            root.path().join("big"),
            vec![b'a'; MAX_CONFIG_SIZE as usize + 1],
        )
        .unwrap();
        fs::write(root.path().join("binary"), [0xff, 0xfe, 0x00]).unwrap();
        let host = HostRoot::new(root.path()).unwrap();
        assert_eq!(
            host.read("/big").unwrap_err().kind(),
            crate::ErrorKind::TooLarge
        );
        assert_eq!(
            host.read("/binary").unwrap_err().kind(),
            crate::ErrorKind::Encoding
        );
        assert_eq!(
            host.read("/").unwrap_err().to_string(),
            "/: is not a regular file"
        );
    }
}
