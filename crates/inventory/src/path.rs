//! Paths inside a root: normalising archive entry names and resolving symlinks without ever
//! leaving the root.

/// Why an entry name is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UnsafePath {
    Absolute,
    ParentComponent,
    Empty,
}

impl UnsafePath {
    pub(crate) fn reason(self) -> &'static str {
        match self {
            UnsafePath::Absolute => "absolute path in a layer entry",
            UnsafePath::ParentComponent => "path climbs out of the root with `..`",
            UnsafePath::Empty => "empty path",
        }
    }
}

/// Normalises a tar entry name to `a/b/c` (no leading `./`, no trailing or doubled `/`).
/// Absolute names and names with a `..` component are refused: image tools never write them,
/// and honouring them is how archive extraction escapes its root.
pub(crate) fn normalize_entry(name: &str) -> Result<String, UnsafePath> {
    if name.starts_with('/') {
        return Err(UnsafePath::Absolute);
    }
    let mut normalized = String::with_capacity(name.len());
    for component in name.split('/') {
        match component {
            "" | "." => {}
            ".." => return Err(UnsafePath::ParentComponent),
            component => {
                if !normalized.is_empty() {
                    normalized.push('/');
                }
                normalized.push_str(component);
            }
        }
    }
    if normalized.is_empty() {
        return Err(UnsafePath::Empty);
    }
    Ok(normalized)
}

/// Joins a symlink target onto the directory holding the link, the way the kernel would
/// inside a chroot: absolute targets start at the root and `..` stops at the root.
/// Returns the normalised result, `""` for the root itself.
pub(crate) fn join_in_root(link_dir: &str, target: &str) -> String {
    let mut parts: Vec<&str> = if target.starts_with('/') {
        Vec::new()
    } else {
        link_dir
            .split('/')
            .filter(|part| !part.is_empty())
            .collect()
    };
    for component in target.split('/') {
        match component {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            component => parts.push(component),
        }
    }
    parts.join("/")
}

/// The parent directory of a normalised path, `""` at the top.
pub(crate) fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(parent, _)| parent)
}

/// The last component of a normalised path.
pub(crate) fn file_name(path: &str) -> &str {
    path.rsplit_once('/').map_or(path, |(_, name)| name)
}

#[cfg(test)]
mod tests {
    use super::{UnsafePath, join_in_root, normalize_entry};

    #[test]
    fn entries() {
        assert_eq!(normalize_entry("./usr//bin/").unwrap(), "usr/bin");
        assert_eq!(normalize_entry("/etc/passwd"), Err(UnsafePath::Absolute));
        assert_eq!(
            normalize_entry("a/../../x"),
            Err(UnsafePath::ParentComponent)
        );
        assert_eq!(normalize_entry("./"), Err(UnsafePath::Empty));
    }

    #[test]
    fn symlinks_stay_in_root() {
        assert_eq!(
            join_in_root("etc", "../usr/lib/os-release"),
            "usr/lib/os-release"
        );
        assert_eq!(join_in_root("etc", "../../../../etc/shadow"), "etc/shadow");
        assert_eq!(join_in_root("usr/bin", "/bin/sh"), "bin/sh");
    }
}
