//! Runtime metadata roots under a test's own directory, where no runtime keeps anything
//! unless the test puts it there: runc's states in `runc/`, podman's storage in `storage/`,
//! containerd's database `meta.db` and task states `tasks/`.
//!
//! One helper for the crate's unit tests (a `#[cfg(test)]` child of `container.rs`), its
//! kernel tests (`tests/containers.rs`) and the `metadata_stall` bench driver, which include
//! this file by path: they cannot share code otherwise without it being public API that the
//! sensor itself does not use. It names the sensor's type as `super::MetadataRoots`, which
//! each includer has in scope.

use std::path::Path;

use super::MetadataRoots;

/// Every runtime's metadata root under `dir` (none of them need exist).
pub fn metadata_roots_in(dir: &Path) -> MetadataRoots {
    MetadataRoots {
        runc_state_dirs: vec![dir.join("runc")],
        podman_storage: dir.join("storage"),
        containerd_db: dir.join("meta.db"),
        containerd_tasks: dir.join("tasks"),
    }
}
