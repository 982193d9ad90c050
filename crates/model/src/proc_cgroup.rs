//! The parser of a `/proc/<pid>/cgroup` listing: which cgroup a process is in, in the
//! unified (v2) hierarchy or in the v1 hierarchy holding a controller.
//!
//! It lives in the model crate, though it is no domain type, because it is the one crate
//! both the store (the writer's cache is sized from its own memory cgroup's limits) and the
//! agent (the firewall puts connect programs on a workload's cgroup) depend on, and the
//! store may not depend on the agent; a crate of its own would be a crate for forty lines.
//! It parses text only: the callers read the file (no I/O in this crate).
//!
//! Each line is `hierarchy-id:controllers:path`. The unified hierarchy's line is
//! `0::/path`; a v1 hierarchy's names its controllers, comma-separated (`4:cpu,cpuacct:/x`;
//! a named one without controllers `1:name=systemd:/x`). A v2-only machine lists the `0::`
//! line alone, a v1-only one (cgroup2 not mounted) no `0::` line, a hybrid one both. The path
//! is relative to the root of the reader's cgroup namespace; the kernel writes a cgroup
//! outside it as `/../..`, and a removed v2 cgroup (a zombie's) with ` (deleted)` after it.

use std::path::{Component, Path};

/// The process's cgroup in the unified (v2) hierarchy (the `0::` line of `listing`), relative
/// to the hierarchy's root (empty for the root itself). `None` without such a line, or when
/// the cgroup cannot be reached under the reader's mount of the hierarchy: removed
/// (` (deleted)`) or outside the reader's cgroup namespace (`..`).
///
/// ```
/// use std::path::Path;
/// use palisade_model::proc_cgroup::unified_cgroup;
///
/// let hybrid = "4:memory:/docker/abc\n1:name=systemd:/x.scope\n0::/system.slice/x.service\n";
/// assert_eq!(unified_cgroup(hybrid), Some(Path::new("system.slice/x.service")));
/// assert_eq!(unified_cgroup("4:memory:/docker/abc\n"), None);
/// ```
pub fn unified_cgroup(listing: &str) -> Option<&Path> {
    cgroup(listing, |id, controllers| {
        id == "0" && controllers.is_empty()
    })
}

/// The process's cgroup in the v1 hierarchy holding `controller` (`memory`, `cpuacct`, or a
/// named hierarchy's `name=systemd`), relative to the hierarchy's root (empty for the root
/// itself). `None` without such a hierarchy (a v2-only machine), or when the cgroup is
/// outside the reader's cgroup namespace (`..`).
///
/// ```
/// use std::path::Path;
/// use palisade_model::proc_cgroup::v1_cgroup;
///
/// let hybrid = "4:memory:/docker/abc\n2:cpu,cpuacct:/\n0::/\n";
/// assert_eq!(v1_cgroup(hybrid, "memory"), Some(Path::new("docker/abc")));
/// assert_eq!(v1_cgroup(hybrid, "cpuacct"), Some(Path::new("")));
/// assert_eq!(v1_cgroup("0::/system.slice\n", "memory"), None);
/// ```
pub fn v1_cgroup<'l>(listing: &'l str, controller: &str) -> Option<&'l Path> {
    cgroup(listing, |id, controllers| {
        id != "0" && controllers.split(',').any(|name| name == controller)
    })
}

/// The path of the first well-formed line of `listing` whose hierarchy id and controllers
/// `wanted` accepts, relative to the hierarchy's root. A line without two colons, with a
/// hierarchy id that is not a number, or with a path that does not start at the root (`/`)
/// is not one the kernel writes and is skipped.
fn cgroup(listing: &str, wanted: impl Fn(&str, &str) -> bool) -> Option<&Path> {
    let path = listing.lines().find_map(|line| {
        let mut fields = line.splitn(3, ':');
        let (id, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
        let well_formed =
            !id.is_empty() && id.bytes().all(|byte| byte.is_ascii_digit()) && path.starts_with('/');
        (well_formed && wanted(id, controllers)).then_some(path)
    })?;
    if path.ends_with(" (deleted)") {
        return None;
    }
    let relative = Path::new(path.trim_start_matches('/'));
    let reachable = relative
        .components()
        .all(|component| matches!(component, Component::Normal(_)));
    reachable.then_some(relative)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::{unified_cgroup, v1_cgroup};

    /// A hybrid machine (v1 controllers and the unified hierarchy, as with systemd's
    /// "hybrid" mode): each hierarchy's own line answers.
    #[test]
    fn a_hybrid_listing_answers_per_hierarchy() {
        let hybrid = "12:cpu,cpuacct:/user.slice\n\
                      4:memory:/process_api/abc\n\
                      1:name=systemd:/user.slice/x.scope\n\
                      0::/palisade/pod-a\n";
        assert_eq!(unified_cgroup(hybrid), Some(Path::new("palisade/pod-a")));
        assert_eq!(
            v1_cgroup(hybrid, "memory"),
            Some(Path::new("process_api/abc"))
        );
        assert_eq!(v1_cgroup(hybrid, "cpu"), Some(Path::new("user.slice")));
        assert_eq!(v1_cgroup(hybrid, "cpuacct"), Some(Path::new("user.slice")));
        assert_eq!(
            v1_cgroup(hybrid, "name=systemd"),
            Some(Path::new("user.slice/x.scope"))
        );
        assert_eq!(v1_cgroup(hybrid, "cpu,cpuacct"), None, "one controller");
        assert_eq!(v1_cgroup(hybrid, "pids"), None);
        assert_eq!(v1_cgroup(hybrid, ""), None, "the unified line is not v1");
    }

    /// A v2-only machine lists the `0::` line alone: no v1 hierarchy.
    #[test]
    fn a_v2_only_listing_has_the_unified_cgroup_only() {
        let v2 = "0::/system.slice/palisade.service\n";
        assert_eq!(
            unified_cgroup(v2),
            Some(Path::new("system.slice/palisade.service"))
        );
        assert_eq!(v1_cgroup(v2, "memory"), None);
        assert_eq!(unified_cgroup("0::/\n"), Some(Path::new("")), "the root");
        assert_eq!(unified_cgroup("0::/a b\n"), Some(Path::new("a b")));
    }

    /// A v1-only machine (cgroup2 not mounted) lists no `0::` line.
    #[test]
    fn a_v1_only_listing_has_no_unified_cgroup() {
        let v1 = "5:memory:/docker/abc\n3:cpuset:/\n1:name=systemd:/docker/abc\n";
        assert_eq!(unified_cgroup(v1), None);
        assert_eq!(v1_cgroup(v1, "memory"), Some(Path::new("docker/abc")));
        assert_eq!(v1_cgroup(v1, "cpuset"), Some(Path::new("")));
        assert_eq!(unified_cgroup(""), None);
    }

    /// Lines the kernel does not write are skipped, not taken for a cgroup; cgroups the reader
    /// cannot reach under its mount are none.
    #[test]
    fn malformed_lines_and_unreachable_cgroups_are_no_cgroup() {
        assert_eq!(unified_cgroup("0:/x\n"), None, "one colon");
        assert_eq!(unified_cgroup("garbage\n"), None);
        assert_eq!(unified_cgroup("::/x\n"), None, "no hierarchy id");
        assert_eq!(unified_cgroup("x::/x\n"), None, "id not a number");
        assert_eq!(unified_cgroup("0::x\n"), None, "not from the root");
        assert_eq!(
            unified_cgroup("0:memory:/x\n"),
            None,
            "v2 has no controllers"
        );
        assert_eq!(v1_cgroup("x:memory:/x\n", "memory"), None);
        assert_eq!(
            unified_cgroup("0::x\n0::/good\n"),
            Some(Path::new("good")),
            "a malformed line does not hide a good one"
        );
        assert_eq!(unified_cgroup("0::/../../x\n"), None, "another namespace");
        assert_eq!(unified_cgroup("0::/a/../b\n"), None);
        assert_eq!(unified_cgroup("0::/a/x (deleted)\n"), None, "removed");
        assert_eq!(
            unified_cgroup("0::/a:b\n"),
            Some(Path::new("a:b")),
            "a colon in the path is the path's"
        );
    }
}
