//! One type for everything that can be inventoried.

use std::path::Path;

use crate::cancel::Cancel;
use crate::error::Error;
use crate::image::Image;
use crate::limits::Limits;
use crate::rootfs::RootFs;
use crate::walk::{FileVisit, Walk};

/// An image or a root filesystem.
#[derive(Debug)]
pub enum Target {
    /// A container image stored as files.
    Image(Image),
    /// A directory, a running container's root or the host.
    RootFs(RootFs),
}

impl Target {
    /// Visits every regular file; see [`Image::for_each_file`] and [`RootFs::for_each_file`].
    pub fn for_each_file(
        &self,
        limits: &Limits,
        cancel: &Cancel,
        visit: impl FnMut(&mut FileVisit<'_>) -> std::io::Result<()>,
    ) -> Result<Walk, Error> {
        match self {
            Target::Image(image) => image.for_each_file(limits, cancel, visit),
            Target::RootFs(root_fs) => root_fs.for_each_file(limits, cancel, visit),
        }
    }

    /// Where the target is: the image file or directory, or the root directory.
    pub fn path(&self) -> &Path {
        match self {
            Target::Image(image) => image.path(),
            Target::RootFs(root_fs) => root_fs.root(),
        }
    }
}
