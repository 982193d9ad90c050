//! Reading container images, root filesystems, running containers and hosts, and listing the
//! packages installed in them.
//!
//! # Reading files
//!
//! [`Image::open`] opens an OCI image layout directory, an OCI archive
//! (`skopeo copy ... oci-archive:FILE`) or a `docker save` archive. It reads only the JSON
//! documents; [`Image::layers`] lists the layers (base first) with their digests.
//! [`Image::for_each_file`] then streams **every regular file of every layer** to a callback
//! as a [`FileVisit`] (path, layer index and digest, size, mode, and `Read` for the content)
//! and returns a [`Walk`]: the **flattened view** ([`Filesystem`], after `.wh.` whiteouts and
//! `.wh..wh..opq` opaque directories) and the [`Warning`]s for entries it skipped. A file
//! visited from layer `i` is part of the flattened image exactly when
//! `walk.filesystem.is_visible(path, i)`; [`Filesystem::resolve`] follows symlinks the way a
//! chroot would.
//!
//! [`RootFs`] does the same for a directory ([`RootFs::new`]), a running container's merged
//! root ([`RootFs::container`], by path or runc/podman id) and the host ([`RootFs::host`]),
//! with layer index 0 and no digest. [`Target`] wraps either.
//!
//! # Listing packages
//!
//! [`inventory`] walks a [`Target`] once and runs every cataloger on the files it meets:
//! dpkg (`status`, distroless `status.d/`), apk, rpm (`rpmdb.sqlite`, Berkeley DB `Packages`,
//! NDB `Packages.db`), Python
//! (`.dist-info`, `.egg-info`), npm (`node_modules/*/package.json`, `package-lock.json`
//! v1–v3), `Cargo.lock`, cargo-auditable executables, Go executables (modules and the Go
//! release as `stdlib`), Java archives (`pom.properties`, `MANIFEST.MF`, nested archives),
//! Ruby gemspecs, Composer's `installed.json` and .NET `*.deps.json`. Each [`Package`] has
//! the OSV ecosystem the vulnerability database indexes (`Debian:12` from `os-release`,
//! `PyPI`, ...), its purl and its [`Location`] (path, layer). A distribution's release is
//! the one its advisories are filed under: RHEL's update streams (`Red Hat:rhel_eus:9.2`,
//! from the content manifests of Red Hat's builds or a host's enabled repositories), SUSE's
//! Micro products (`SUSE:Linux Micro 6.0`), SLES on Long Term Service Pack Support
//! (`SUSE:15.4-LTSS`, from `etc/products.d/SLES-LTSS.prod`), SLES for SAP Applications and
//! SLE HPC with its LTSS and ESPOS streams (`SUSE:15.4-SAP`, `SUSE:15.4-HPC-LTSS`, from the
//! product files, `ID` and `CPE_NAME`), openEuler's releases with their support label
//! (`openEuler:22.03-LTS-SP3`, from `VERSION` or `etc/openEuler-release`), and
//! `etc/redhat-release` for roots without `os-release` ([`Distro`]). rpm distributions
//! without advisories in OSV form are named by what they are (`Amazon Linux:2023`,
//! `Oracle Linux:9`, `Fedora:40`, purls `pkg:rpm/amazon/...?distro=amzn-2023`), never as
//! `Red Hat`. Language packages whose metadata
//! file an OS package owns are not reported twice, nor are `package-lock.json` entries that the
//! project's `node_modules` holds installed; packages from files an upper layer
//! deleted or replaced are not reported at all. A malformed package database is a
//! [`Warning`], not an error. Of the kernels an rpm system has installed side by side, the
//! running one is told by its `uname -r` ([`RunningKernel`]), so that a scan of the running
//! host matches its packages and not those of kernels it does not run.
//!
//! Hostile input never escapes: nothing is written to disk; tar entries with absolute paths,
//! `..` components, hard links leaving the root, and device files are skipped with a warning;
//! symlinks are recorded, never followed outside the root; files of a root filesystem are
//! opened with `openat2(RESOLVE_IN_ROOT)`; decompression bombs, huge layers and entry floods
//! stop at the explicit [`Limits`]; a truncated or corrupt layer is an [`ErrorKind::Layer`]
//! error naming the layer.
//!
//! # Stopping a walk
//!
//! Every walk takes a [`Cancel`]; [`inventory_cancellable`] too. Cancelling it from another
//! thread stops the walk within one bounded read ([`Cancel::MAX_READ_BYTES`]), even in the
//! middle of a huge file or of a layer entry being skipped, with [`ErrorKind::Cancelled`].
//! [`Cancel::on_drop`] ties the request to a guard, so that async code waiting for a walk on
//! a blocking thread stops the walk when its future is dropped.
//!
//! Design decision: one pass per layer. The callback sees each file while its layer is being
//! decompressed, and the flattened tree is built in the same pass, so a consumer that needs
//! flattened results keeps what it extracted per `(path, layer)` and filters it with
//! [`Filesystem::is_visible`] at the end. Compressed layers cannot be seeked, so a design that
//! first flattens and then reads the surviving files would decompress every layer twice.
//!
//! ```
//! use std::io::Read;
//! use palisade_inventory::{Cancel, Limits, RootFs};
//!
//! let dir = tempfile::tempdir()?;
//! std::fs::create_dir_all(dir.path().join("etc"))?;
//! std::fs::write(dir.path().join("etc/hostname"), "box\n")?;
//! std::os::unix::fs::symlink("/etc/hostname", dir.path().join("name"))?;
//!
//! let mut contents = Vec::new();
//! let limits = Limits::default();
//! let walk = RootFs::new(dir.path()).for_each_file(&limits, &Cancel::new(), |file| {
//!     let mut text = String::new();
//!     file.read_to_string(&mut text)?;
//!     contents.push((file.path.to_owned(), text));
//!     Ok(())
//! })?;
//! assert_eq!(contents, [("etc/hostname".to_owned(), "box\n".to_owned())]);
//! assert_eq!(walk.filesystem.resolve("name").as_deref(), Some("etc/hostname"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Images work the same way:
//!
//! ```no_run
//! use palisade_inventory::{Cancel, Image, Limits};
//!
//! let image = Image::open("busybox-oci".as_ref())?;
//! for layer in image.layers() {
//!     println!("{} {}", layer.index, layer.digest);
//! }
//! let walk = image.for_each_file(&Limits::default(), &Cancel::new(), |file| {
//!     println!("{} (layer {}, {} bytes)", file.path, file.layer_index, file.size);
//!     Ok(())
//! })?;
//! println!("{} paths in the flattened image", walk.filesystem.len());
//! # Ok::<(), palisade_inventory::Error>(())
//! ```
#![deny(missing_docs)]

mod cancel;
mod catalog;
mod error;
mod files;
mod filesystem;
mod image;
mod layer;
mod lazy_files;
mod limits;
mod path;
mod rootfs;
mod running_kernel;
mod target;
mod walk;

pub use crate::cancel::{Cancel, CancelOnDrop};
pub use crate::catalog::{
    Cataloger, Distro, Inventory, Location, Package, inventory, inventory_cancellable,
    inventory_observed,
};
pub use crate::error::{Error, ErrorKind, Warning};
pub use crate::files::{FileContents, read_files};
pub use crate::filesystem::{Filesystem, Node, NodeKind};
pub use crate::image::{Image, ImageFormat, Layer};
pub use crate::lazy_files::LazyFiles;
pub use crate::limits::Limits;
pub use crate::rootfs::{RootFs, container_pid};
pub use crate::running_kernel::RunningKernel;
pub use crate::target::Target;
pub use crate::walk::{FileVisit, Walk};
