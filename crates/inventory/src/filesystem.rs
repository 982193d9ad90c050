//! The flattened view: which layer provides each path after whiteouts, and symlink
//! resolution that never leaves the root.

use std::collections::BTreeMap;

use crate::path::{file_name, join_in_root, parent};

/// The flattened file tree of an image (or the tree of a root filesystem): metadata only,
/// no content. Built by [`crate::Image::for_each_file`] and [`crate::RootFs::for_each_file`]
/// in the same pass that streams the files.
#[derive(Debug, Default, Clone)]
pub struct Filesystem {
    nodes: BTreeMap<String, Node>,
}

/// One path of the flattened tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The layer that provides this path (0 for root filesystems).
    pub layer_index: usize,
    /// What the path is.
    pub kind: NodeKind,
}

/// The kind of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind {
    /// A regular file of this size.
    File {
        /// Size in bytes.
        size: u64,
    },
    /// A directory.
    Directory,
    /// A symbolic link with its target as stored.
    Symlink {
        /// The target.
        target: String,
    },
    /// A hard link to another path of the same root (normalised).
    Hardlink {
        /// The linked path.
        target: String,
    },
}

/// Links followed before resolution gives up, as the kernel's `ELOOP` limit.
const MAX_SYMLINK_HOPS: usize = 40;

impl Filesystem {
    /// The node at a normalised path (`usr/bin/sh`, no leading `/`), without following
    /// symlinks.
    pub fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path)
    }

    /// True when the file at `path` from layer `layer_index` is what the flattened image
    /// shows, i.e. no upper layer replaced or deleted it.
    pub fn is_visible(&self, path: &str, layer_index: usize) -> bool {
        self.nodes
            .get(path)
            .is_some_and(|node| node.layer_index == layer_index)
    }

    /// Every path with its node, in path order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Node)> {
        self.nodes.iter().map(|(path, node)| (path.as_str(), node))
    }

    /// Number of paths.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True when there are no paths.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Resolves `path` following symlinks (in every component) and hard links inside the
    /// root: absolute targets start at the root, `..` stops at it, as in a chroot. Returns
    /// the path of the node finally reached, or `None` for a dangling or looping link.
    pub fn resolve(&self, path: &str) -> Option<String> {
        let mut pending: Vec<String> = path
            .split('/')
            .filter(|part| !part.is_empty())
            .rev()
            .map(str::to_owned)
            .collect();
        let mut resolved = String::new();
        let mut hops = 0;
        while let Some(component) = pending.pop() {
            match component.as_str() {
                "." => continue,
                ".." => {
                    resolved = parent(&resolved).to_owned();
                    continue;
                }
                _ => {}
            }
            let candidate = if resolved.is_empty() {
                component
            } else {
                format!("{resolved}/{component}")
            };
            match self.nodes.get(&candidate).map(|node| &node.kind) {
                Some(NodeKind::Symlink { target }) => {
                    hops += 1;
                    if hops > MAX_SYMLINK_HOPS {
                        return None;
                    }
                    let joined = join_in_root(parent(&candidate), target);
                    pending.extend(
                        joined
                            .split('/')
                            .filter(|part| !part.is_empty())
                            .rev()
                            .map(str::to_owned),
                    );
                    resolved = String::new();
                }
                Some(NodeKind::Hardlink { target }) => resolved = target.clone(),
                Some(_) => resolved = candidate,
                // Layers need not carry entries for parent directories: a missing
                // intermediate component is an implied directory.
                None if !pending.is_empty() => resolved = candidate,
                None => return None,
            }
        }
        Some(resolved)
    }

    /// Records a path from `layer_index`. A non-directory replacing a directory from a lower
    /// layer hides that directory's contents, as overlay filesystems do.
    pub(crate) fn insert(&mut self, path: String, layer_index: usize, kind: NodeKind) {
        if kind != NodeKind::Directory
            && self
                .nodes
                .get(&path)
                .is_some_and(|node| node.kind == NodeKind::Directory)
        {
            self.remove_below(&path, layer_index);
        }
        self.nodes.insert(path, Node { layer_index, kind });
    }

    /// Applies a whiteout entry of `layer_index`: `dir/.wh.name` deletes `dir/name` and
    /// everything below it; `dir/.wh..wh..opq` hides everything lower layers had in `dir`.
    /// Returns false when `path` is not a whiteout.
    pub(crate) fn apply_whiteout(&mut self, path: &str, layer_index: usize) -> bool {
        let name = file_name(path);
        let Some(hidden) = name.strip_prefix(".wh.") else {
            return false;
        };
        let dir = parent(path);
        if hidden == ".wh..opq" {
            self.remove_below(dir, layer_index);
        } else {
            let target = if dir.is_empty() {
                hidden.to_owned()
            } else {
                format!("{dir}/{hidden}")
            };
            if self
                .nodes
                .get(&target)
                .is_some_and(|node| node.layer_index < layer_index)
            {
                self.nodes.remove(&target);
            }
            self.remove_below(&target, layer_index);
        }
        true
    }

    /// Removes everything strictly below `dir` that came from layers under `layer_index`.
    fn remove_below(&mut self, dir: &str, layer_index: usize) {
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        let doomed: Vec<String> = self
            .nodes
            .range(prefix.clone()..)
            .take_while(|(path, _)| path.starts_with(&prefix))
            .filter(|(_, node)| node.layer_index < layer_index)
            .map(|(path, _)| path.clone())
            .collect();
        for path in doomed {
            self.nodes.remove(&path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Filesystem, NodeKind};

    fn file() -> NodeKind {
        NodeKind::File { size: 1 }
    }

    #[test]
    fn whiteouts_and_opaque_directories() {
        let mut filesystem = Filesystem::default();
        filesystem.insert("etc".into(), 0, NodeKind::Directory);
        filesystem.insert("etc/a".into(), 0, file());
        filesystem.insert("etc/b".into(), 0, file());
        filesystem.insert("opt/x/y".into(), 0, file());
        assert!(filesystem.apply_whiteout("etc/.wh.a", 1));
        assert!(filesystem.apply_whiteout("opt/.wh..wh..opq", 1));
        filesystem.insert("opt/new".into(), 1, file());
        assert!(!filesystem.apply_whiteout("etc/b", 1));
        assert!(filesystem.get("etc/a").is_none());
        assert!(filesystem.is_visible("etc/b", 0));
        assert!(filesystem.get("opt/x/y").is_none());
        assert!(filesystem.is_visible("opt/new", 1));
        // A whiteout does not delete a file of its own layer.
        filesystem.insert("etc/c".into(), 2, file());
        filesystem.apply_whiteout("etc/.wh.c", 2);
        assert!(filesystem.is_visible("etc/c", 2));
    }

    #[test]
    fn resolution_stays_in_root() {
        let mut filesystem = Filesystem::default();
        filesystem.insert("usr/lib/os-release".into(), 0, file());
        let link = |target: &str| NodeKind::Symlink {
            target: target.into(),
        };
        filesystem.insert("etc/os-release".into(), 0, link("../usr/lib/os-release"));
        filesystem.insert("lib".into(), 0, link("usr/lib"));
        filesystem.insert("escape".into(), 0, link("../../../usr/lib/os-release"));
        filesystem.insert("loop".into(), 0, link("loop"));
        assert_eq!(
            filesystem.resolve("etc/os-release").as_deref(),
            Some("usr/lib/os-release")
        );
        assert_eq!(
            filesystem.resolve("lib/os-release").as_deref(),
            Some("usr/lib/os-release")
        );
        assert_eq!(
            filesystem.resolve("escape").as_deref(),
            Some("usr/lib/os-release")
        );
        assert_eq!(filesystem.resolve("loop"), None);
    }
}
