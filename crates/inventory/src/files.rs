//! The contents of named files of a target, read after its inventory for checks of file
//! contents (OVAL's `textfilecontent54_test`s): a root filesystem's opened in place inside
//! the root (`openat2(RESOLVE_IN_ROOT)`: symlinks, `..` and absolute links resolve below
//! the root), an image's taken in one more pass over its layers from the layer whose copy
//! the flattened image shows. Each file is read up to [`Limits::max_metadata_bytes`]; a
//! larger one, a directory or a device is not read, with a warning. A path that leads
//! through a symlink in an image is not followed (the walk does not know the link before
//! it is met): it is not read, with a warning.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Read;

use crate::cancel::Cancel;
use crate::error::{Error, Warning};
use crate::limits::Limits;
use crate::target::Target;

/// What [`read_files`] found: the content of each file read, by the path asked for, and
/// why the others that exist were not read.
#[derive(Debug, Default)]
pub struct FileContents {
    /// The content of each file read, keyed by the absolute path asked for.
    pub contents: BTreeMap<String, Vec<u8>>,
    /// Files that exist but were not read, and why.
    pub warnings: Vec<Warning>,
}

/// Reads the files `paths` (absolute, `/boot/grub2/grubenv`) of `target`; a path that does
/// not exist is left out of [`FileContents::contents`]. Fails only when an image's layers
/// cannot be read again, or when cancelled.
pub fn read_files(
    target: &Target,
    paths: &[&str],
    limits: &Limits,
    cancel: &Cancel,
) -> Result<FileContents, Error> {
    let wanted: BTreeSet<&str> = paths
        .iter()
        .map(|path| path.trim_start_matches('/'))
        .filter(|path| !path.is_empty())
        .collect();
    let mut found = FileContents::default();
    if wanted.is_empty() {
        return Ok(found);
    }
    match target {
        Target::RootFs(root_fs) => {
            let root =
                File::open(root_fs.root()).map_err(|error| Error::io(root_fs.root(), error))?;
            for path in wanted {
                if cancel.check().is_err() {
                    return Err(Error::cancelled(root_fs.root()));
                }
                match read_in_root(&root, path, limits.max_metadata_bytes) {
                    Ok(Some(content)) => {
                        found.contents.insert(format!("/{path}"), content);
                    }
                    Ok(None) => {}
                    Err(reason) => found.warnings.push(Warning {
                        location: format!("/{path}"),
                        reason,
                    }),
                }
            }
        }
        Target::Image(image) => {
            // Every layer's copy, by path: the flattened image shows one of them.
            let mut copies: Vec<(String, usize, Result<Vec<u8>, String>)> = Vec::new();
            let walk = image.for_each_file(limits, cancel, |file| {
                if !wanted.contains(file.path) {
                    return Ok(());
                }
                let content = if file.size > limits.max_metadata_bytes {
                    Err(over_limit(file.size, limits.max_metadata_bytes))
                } else {
                    let mut content = Vec::new();
                    Read::by_ref(file)
                        .take(limits.max_metadata_bytes)
                        .read_to_end(&mut content)?;
                    Ok(content)
                };
                copies.push((file.path.to_owned(), file.layer_index, content));
                Ok(())
            })?;
            for (path, layer_index, content) in copies {
                if !walk.filesystem.is_visible(&path, layer_index) {
                    continue;
                }
                match content {
                    Ok(content) => {
                        found.contents.insert(format!("/{path}"), content);
                    }
                    Err(reason) => found.warnings.push(Warning {
                        location: format!("layer {layer_index}: /{path}"),
                        reason,
                    }),
                }
            }
            for path in wanted {
                let resolved = walk.filesystem.resolve(path);
                if resolved.as_deref().is_some_and(|resolved| resolved != path) {
                    found.warnings.push(Warning {
                        location: format!("/{path}"),
                        reason: "leads through a symlink in the image, which is not followed"
                            .to_owned(),
                    });
                }
            }
        }
    }
    Ok(found)
}

/// The content of the regular file `path` below `root`, at most `max_bytes`; `None` when
/// there is no such file.
fn read_in_root(root: &File, path: &str, max_bytes: u64) -> Result<Option<Vec<u8>>, String> {
    let file = match palisade_rootfs::open_in_root(
        root,
        path,
        libc::O_RDONLY | libc::O_NOCTTY | libc::O_NONBLOCK,
        0,
    ) {
        Ok(file) => file,
        Err(error)
            if matches!(
                error.raw_os_error(),
                Some(libc::ENOENT | libc::ENOTDIR | libc::ELOOP)
            ) =>
        {
            return Ok(None);
        }
        Err(error) => return Err(format!("cannot open: {error}")),
    };
    let metadata = file
        .metadata()
        .map_err(|error| format!("cannot stat: {error}"))?;
    if !metadata.is_file() {
        return Err("not a regular file".to_owned());
    }
    if metadata.len() > max_bytes {
        return Err(over_limit(metadata.len(), max_bytes));
    }
    let mut content = Vec::new();
    file.take(max_bytes)
        .read_to_end(&mut content)
        .map_err(|error| format!("cannot read: {error}"))?;
    Ok(Some(content))
}

fn over_limit(size: u64, limit: u64) -> String {
    format!("{size} bytes, over the limit of {limit} for a file whose content is checked")
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::read_files;
    use crate::cancel::Cancel;
    use crate::limits::Limits;
    use crate::rootfs::RootFs;
    use crate::target::Target;

    #[test]
    fn a_root_s_files_are_read_inside_it() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("boot/grub2")).unwrap();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("boot/grub2/grubenv"), "saved_entry=x\n").unwrap();
        // A link out of the root resolves inside it, where there is no such file.
        std::fs::write(dir.path().join("secret"), "outside").unwrap();
        symlink("../../secret", root.join("etc/escape")).unwrap();
        symlink("/boot/grub2/grubenv", root.join("etc/grubenv")).unwrap();
        std::fs::write(root.join("etc/big"), vec![b'x'; 2048]).unwrap();
        let limits = Limits {
            max_metadata_bytes: 1024,
            ..Limits::default()
        };
        let found = read_files(
            &Target::RootFs(RootFs::new(&root)),
            &[
                "/boot/grub2/grubenv",
                "/etc/escape",
                "/etc/grubenv",
                "/etc/missing",
                "/etc/big",
                "/etc",
            ],
            &limits,
            &Cancel::new(),
        )
        .unwrap();
        assert_eq!(
            found.contents.keys().collect::<Vec<_>>(),
            ["/boot/grub2/grubenv", "/etc/grubenv"]
        );
        assert_eq!(found.contents["/etc/grubenv"], b"saved_entry=x\n");
        let warned: Vec<(&str, &str)> = found
            .warnings
            .iter()
            .map(|warning| (warning.location.as_str(), warning.reason.as_str()))
            .collect();
        assert_eq!(
            warned,
            [
                ("/etc", "not a regular file"),
                (
                    "/etc/big",
                    "2048 bytes, over the limit of 1024 for a file whose content is checked"
                ),
            ]
        );
    }
}
