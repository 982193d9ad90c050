//! Facts about the host the agent runs on.

use std::path::Path;

use palisade_model::HostFacts;

/// Reads host facts from `root` (`/` for the live host): os-release, kernel release,
/// architecture and host name. Missing files give empty fields, never an error: a minimal
/// host still registers.
pub fn host_facts(root: &Path, sensor: &str) -> HostFacts {
    let read = |path: &str| {
        std::fs::read_to_string(root.join(path.trim_start_matches('/')))
            .map(|text| text.trim().to_owned())
            .unwrap_or_default()
    };
    let os_release = {
        let etc = read("/etc/os-release");
        if etc.is_empty() {
            read("/usr/lib/os-release")
        } else {
            etc
        }
    };
    let field = |name: &str| {
        os_release
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix('='))
            .map(|value| value.trim().trim_matches('"').to_owned())
            .unwrap_or_default()
    };
    HostFacts {
        hostname: read("/proc/sys/kernel/hostname"),
        os: field("PRETTY_NAME"),
        os_id: field("ID"),
        os_version: field("VERSION_ID"),
        kernel: read("/proc/sys/kernel/osrelease"),
        arch: std::env::consts::ARCH.to_owned(),
        sensor: sensor.to_owned(),
        sensor_missing_fields: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_os_release_from_a_root() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("etc")).unwrap();
        std::fs::write(
            root.path().join("etc/os-release"),
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n",
        )
        .unwrap();
        let facts = host_facts(root.path(), "none");
        assert_eq!(facts.os, "Debian GNU/Linux 12 (bookworm)");
        assert_eq!(facts.os_id, "debian");
        assert_eq!(facts.os_version, "12");
        assert_eq!(facts.hostname, "", "no /proc in the fake root");
        let live = host_facts(Path::new("/"), "none");
        assert!(!live.kernel.is_empty());
    }
}
