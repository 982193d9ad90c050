//! Self-written fixtures for every policy change after v1.30 (the shared fixtures stop there).
//!
//! Each case is a Pod in `tests/fixtures/pss/`, evaluated at the last version before a change
//! and at the version that changes it.

use std::path::PathBuf;

use palisade_baseline::{Level, Version, check_workload, load_paths};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/pss")
        .join(name)
}

/// The ids of the checks that deny fixture `name` at `level` and `v1.<minor>`.
fn denied_by(name: &str, level: Level, minor: u32) -> Vec<&'static str> {
    let loaded = load_paths(&[fixture(name)]);
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    assert_eq!(loaded.workloads.len(), 1, "{name}");
    let report = check_workload(
        &loaded.workloads[0],
        level,
        Version::Minor(u64::from(minor)),
    );
    report
        .pss
        .violations
        .iter()
        .map(|violation| violation.check)
        .collect()
}

#[test]
fn selinux_container_engine_t_from_1_31() {
    assert_eq!(
        denied_by("selinux_container_engine_t.yaml", Level::Baseline, 30),
        ["seLinuxOptions"]
    );
    assert!(denied_by("selinux_container_engine_t.yaml", Level::Baseline, 31).is_empty());
    assert!(denied_by("selinux_container_engine_t.yaml", Level::Restricted, 37).is_empty());
}

#[test]
fn tcp_buffer_sysctls_from_1_32() {
    assert_eq!(
        denied_by("sysctls_tcp_rmem_wmem.yaml", Level::Baseline, 31),
        ["sysctls"]
    );
    assert!(denied_by("sysctls_tcp_rmem_wmem.yaml", Level::Baseline, 32).is_empty());
}

#[test]
fn probe_and_lifecycle_hosts_from_1_34() {
    for minor in [31, 32, 33] {
        assert!(
            denied_by("probe_host.yaml", Level::Baseline, minor).is_empty(),
            "v1.{minor}"
        );
    }
    assert_eq!(
        denied_by("probe_host.yaml", Level::Baseline, 34),
        ["hostProbesAndHostLifecycle"]
    );
    assert_eq!(
        denied_by("lifecycle_host.yaml", Level::Restricted, 37),
        ["hostProbesAndHostLifecycle"]
    );
    assert!(denied_by("lifecycle_host.yaml", Level::Restricted, 33).is_empty());
}

#[test]
fn user_namespaces_relax_from_1_35() {
    // Unmasked /proc in a user namespace: baseline relaxes at 1.35, restricted never does.
    assert_eq!(
        denied_by("user_namespace_unmasked_proc.yaml", Level::Baseline, 34),
        ["procMount"]
    );
    assert!(denied_by("user_namespace_unmasked_proc.yaml", Level::Baseline, 35).is_empty());
    assert_eq!(
        denied_by("user_namespace_unmasked_proc.yaml", Level::Restricted, 34),
        ["procMount"]
    );
    assert_eq!(
        denied_by("user_namespace_unmasked_proc.yaml", Level::Restricted, 35),
        ["procMount_restricted"]
    );
    // Root in a user namespace: restricted relaxes runAsNonRoot and runAsUser at 1.35.
    assert_eq!(
        denied_by("user_namespace_root.yaml", Level::Restricted, 34),
        ["runAsNonRoot", "runAsUser"]
    );
    assert!(denied_by("user_namespace_root.yaml", Level::Restricted, 35).is_empty());
    assert_eq!(
        denied_by("host_users_root.yaml", Level::Restricted, 37),
        ["runAsNonRoot", "runAsUser"]
    );
}

#[test]
fn tcp_slow_start_and_notsent_lowat_sysctls_from_1_37() {
    assert_eq!(
        denied_by("sysctls_tcp_1_37.yaml", Level::Baseline, 36),
        ["sysctls"]
    );
    assert!(denied_by("sysctls_tcp_1_37.yaml", Level::Baseline, 37).is_empty());
    let latest = load_paths(&[fixture("sysctls_tcp_1_37.yaml")]);
    let report = check_workload(&latest.workloads[0], Level::Baseline, Version::Latest);
    assert!(report.pss.allowed);
    assert_eq!(report.pss.version, "latest");
    assert_eq!(report.pss.resolved_version, "v1.37");
}

/// A version after the newest known one is evaluated as it (upstream's `EvaluatePod` clamps to
/// its registry's newest version) and keeps the version asked for in the verdict.
#[test]
fn versions_after_the_newest_known_are_evaluated_as_it() {
    for (name, level) in [
        ("sysctls_tcp_1_37.yaml", Level::Baseline),
        ("host_users_root.yaml", Level::Restricted),
        ("probe_tcp_host_ipv6.yaml", Level::Baseline),
    ] {
        let newest = denied_by(name, level, palisade_baseline::LATEST_MINOR);
        for version in ["v1.38", "v1.99"] {
            let loaded = load_paths(&[fixture(name)]);
            let parsed: Version = version.parse().unwrap();
            let report = check_workload(&loaded.workloads[0], level, parsed);
            let checks: Vec<&str> = report.pss.violations.iter().map(|v| v.check).collect();
            assert_eq!(checks, newest, "{name} at {version}");
            assert_eq!(report.pss.version, version);
            assert_eq!(report.pss.resolved_version, "v1.37");
        }
    }
    let error = "v1.x".parse::<Version>().unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid Pod Security Standards version \"v1.x\": must be \"latest\" or \"v1.x\" \
         (v1.0 … v1.37 are known; newer versions are evaluated as v1.37)"
    );
}

#[test]
fn image_volumes_are_restricted_safe_at_every_version() {
    for minor in [0, 25, 33, 37] {
        assert!(
            denied_by("image_volume.yaml", Level::Restricted, minor).is_empty(),
            "v1.{minor}"
        );
    }
}

/// Cases restated from upstream's generated fixtures for v1.35 to v1.37 (`test/testdata`),
/// which the shared fixtures (v1.0 to v1.30) do not reach: each denied by the check upstream
/// names, at the newest versions as at the oldest where the rule already held.
#[test]
fn upstream_cases_after_1_30_keep_their_verdicts() {
    // tcpSocket hosts count like httpGet hosts, loopback addresses included.
    assert!(denied_by("probe_tcp_host_ipv6.yaml", Level::Baseline, 33).is_empty());
    for minor in [34, 35, 37] {
        assert_eq!(
            denied_by("probe_tcp_host_ipv6.yaml", Level::Baseline, minor),
            ["hostProbesAndHostLifecycle"],
            "v1.{minor}"
        );
    }
    // hostUsers: true is no user namespace: nothing relaxes.
    for minor in [0, 34, 35, 37] {
        assert_eq!(
            denied_by("host_users_unmasked_proc.yaml", Level::Baseline, minor),
            ["procMount"],
            "v1.{minor}"
        );
    }
    assert_eq!(
        denied_by("host_users_unmasked_proc.yaml", Level::Restricted, 34),
        ["procMount"]
    );
    assert_eq!(
        denied_by("host_users_unmasked_proc.yaml", Level::Restricted, 35),
        ["procMount_restricted"]
    );
    // Restricted needs the literal ALL; dropping every capability by name is not enough.
    for minor in [22, 35, 37] {
        assert_eq!(
            denied_by(
                "drop_every_capability_by_name.yaml",
                Level::Restricted,
                minor
            ),
            ["capabilities_restricted"],
            "v1.{minor}"
        );
    }
    assert!(denied_by("drop_every_capability_by_name.yaml", Level::Baseline, 37).is_empty());
    // nfs and rbd volumes: baseline allows them, restricted never has.
    for minor in [0, 36, 37] {
        assert_eq!(
            denied_by("network_volumes.yaml", Level::Restricted, minor),
            ["restrictedVolumes"],
            "v1.{minor}"
        );
        assert!(denied_by("network_volumes.yaml", Level::Baseline, minor).is_empty());
    }
    // NET_RAW: refused by baseline at every version, by restricted's own check from v1.22.
    for minor in [0, 35, 37] {
        assert_eq!(
            denied_by("net_raw_added.yaml", Level::Baseline, minor),
            ["capabilities_baseline"],
            "v1.{minor}"
        );
    }
    assert!(
        denied_by("net_raw_added.yaml", Level::Restricted, 35).contains(&"capabilities_restricted")
    );
}
