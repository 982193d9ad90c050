//! [`ServiceTarget`]: where the service checks look — a root file system for the
//! configuration files and a network namespace for the probes.
//!
//! A container's configuration is read through `/proc/<pid>/root` and its servers are probed
//! on its own loopback: a thread joins the network namespace of the container's process
//! (`setns(CLONE_NEWNET)` affects only the calling thread), runs the probes and ends, so the
//! rest of the process never leaves its own namespace. The loopback-only rule and the pace of
//! login attempts are [`probe_services`]'s, unchanged.

use std::{
    os::fd::AsRawFd,
    path::{Path, PathBuf},
};

use super::{ProbeOptions, check_services, probe_services};
use crate::{CheckResult, Error, HostRoot};

/// What the service checks look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceTarget {
    root: PathBuf,
    /// The process whose network namespace the probes join; `None` probes from this
    /// process's own namespace.
    namespace_pid: Option<u32>,
}

impl ServiceTarget {
    /// A root directory (`/` for this host, or a mounted image); probes run in this process's
    /// own network namespace.
    pub fn root(root: impl Into<PathBuf>) -> ServiceTarget {
        ServiceTarget {
            root: root.into(),
            namespace_pid: None,
        }
    }

    /// A running process (a container's init): its root file system (`/proc/<pid>/root`) and
    /// its network namespace.
    pub fn process(pid: u32) -> ServiceTarget {
        ServiceTarget {
            root: PathBuf::from(format!("/proc/{pid}/root")),
            namespace_pid: Some(pid),
        }
    }

    /// The root directory the configuration files are read under.
    pub fn root_dir(&self) -> &Path {
        &self.root
    }

    /// The process whose network namespace the probes join, if any.
    pub fn namespace_pid(&self) -> Option<u32> {
        self.namespace_pid
    }

    /// Opens the target's root.
    pub fn host_root(&self) -> Result<HostRoot, Error> {
        HostRoot::new(&self.root)
    }

    /// Runs [`probe_services`] with `options` inside the target's network namespace.
    pub fn probe(&self, options: ProbeOptions) -> Result<Vec<CheckResult>, Error> {
        match self.namespace_pid {
            None => probe_services(&options),
            Some(pid) => in_network_namespace(pid, move || probe_services(&options))?,
        }
    }

    /// The configuration checks and, when `probe` is set, the probes of the ports the
    /// configuration names (or the defaults) on the target's loopback.
    pub fn check(&self, probe: bool) -> Result<Vec<CheckResult>, Error> {
        let host = self.host_root()?;
        let mut results = check_services(&host);
        if probe {
            results.extend(self.probe(ProbeOptions::from_config(&host))?);
        }
        Ok(results)
    }
}

/// Runs `work` on a thread that joined the network namespace of process `pid`, so that its
/// sockets (and their loopback) are that namespace's; the calling thread stays where it is.
fn in_network_namespace<T: Send + 'static>(
    pid: u32,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Error> {
    let path = PathBuf::from(format!("/proc/{pid}/ns/net"));
    let namespace = std::fs::File::open(&path).map_err(|error| {
        Error::namespace(
            pid,
            format!(
                "cannot open {} (is the process running? are we root?)",
                path.display()
            ),
            Some(error),
        )
    })?;
    let thread = std::thread::Builder::new()
        .name(format!("netns-{pid}"))
        .spawn(move || {
            // SAFETY: setns on a file descriptor this thread owns; it changes the network
            // namespace of this thread only, which ends when `work` returns.
            if unsafe { libc::setns(namespace.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(work())
        })
        .map_err(|error| {
            Error::namespace(pid, "cannot start the probe thread".to_owned(), Some(error))
        })?;
    match thread.join() {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(Error::namespace(
            pid,
            "cannot enter the network namespace (are we root?)".to_owned(),
            Some(error),
        )),
        Err(_) => Err(Error::namespace(
            pid,
            "the probe thread panicked".to_owned(),
            None,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_target_reads_its_root_and_joins_its_namespace() {
        let target = ServiceTarget::process(4242);
        assert_eq!(target.root_dir(), Path::new("/proc/4242/root"));
        assert_eq!(target.namespace_pid(), Some(4242));
        assert_eq!(ServiceTarget::root("/").namespace_pid(), None);
    }

    #[test]
    fn a_missing_process_is_a_clear_error() {
        // Pids are below 2^22 on Linux: this one never exists.
        let error = in_network_namespace(u32::MAX, || ()).unwrap_err();
        assert_eq!(error.kind(), crate::ErrorKind::Namespace);
        assert!(
            error.to_string().contains("/proc/4294967295/ns/net"),
            "{error}"
        );
    }

    #[test]
    fn the_own_namespace_can_be_joined_again() {
        // Joining the namespace one is already in works without privileges only as root;
        // as another user the error must say so rather than panic.
        match in_network_namespace(std::process::id(), || 7) {
            Ok(value) => assert_eq!(value, 7),
            Err(error) => assert_eq!(error.kind(), crate::ErrorKind::Namespace),
        }
    }
}
