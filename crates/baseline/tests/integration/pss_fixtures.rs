//! Kubernetes' own pod-security admission fixtures, from `../shared/data/pss`.
//!
//! Layout: `<level>/v1.<minor>/<pass|fail>/<check id, lower case><n>.yaml`, one Pod each. A
//! `pass` Pod must be allowed at that level and version; a `fail` Pod must be denied, by the
//! check its file name names — or, at the restricted level, by the restricted check that
//! upstream runs in that check's place (`capabilities_baseline` is replaced by
//! `capabilities_restricted` from v1.22, for instance).

use std::{collections::BTreeMap, fs, path::Path};

use palisade_baseline::{
    Level, Version, check_workload, load_paths, pss_check_ids, pss_check_overridden_by,
};

#[derive(Default)]
struct Tally {
    passed: usize,
    total: usize,
}

#[test]
fn upstream_fixtures_pass() {
    let Some(root) = palisade_testdata::shared_data("pss") else {
        return;
    };
    let mut failures = Vec::new();
    let mut tallies: BTreeMap<(String, u32), Tally> = BTreeMap::new();
    for level in [Level::Baseline, Level::Restricted] {
        let level_dir = root.join(level.as_str());
        let Ok(version_dirs) = fs::read_dir(&level_dir) else {
            failures.push(format!("{} is missing", level_dir.display()));
            continue;
        };
        for version_dir in version_dirs.flatten() {
            let version_name = version_dir.file_name().to_string_lossy().into_owned();
            let version: Version = version_name.parse().expect("fixture versions are valid");
            let tally = tallies
                .entry((level.to_string(), version.minor()))
                .or_default();
            for expect_allowed in [true, false] {
                let dir = version_dir
                    .path()
                    .join(if expect_allowed { "pass" } else { "fail" });
                let Ok(files) = fs::read_dir(&dir) else {
                    continue;
                };
                for file in files.flatten() {
                    tally.total += 1;
                    match judge(&file.path(), level, version, expect_allowed) {
                        Ok(()) => tally.passed += 1,
                        Err(why) => failures.push(format!("{}: {why}", file.path().display())),
                    }
                }
            }
        }
    }
    let mut n_total = 0;
    for ((level, minor), tally) in &tallies {
        println!(
            "{level} v1.{minor}: {}/{} fixtures pass",
            tally.passed, tally.total
        );
        n_total += tally.total;
    }
    assert_eq!(tallies.len(), 62, "31 versions per level");
    assert!(n_total > 3000, "only {n_total} fixtures found");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn judge(path: &Path, level: Level, version: Version, expect_allowed: bool) -> Result<(), String> {
    let loaded = load_paths(&[path]);
    if !loaded.errors.is_empty() || loaded.workloads.len() != 1 {
        return Err(format!(
            "expected one workload, got {:?} {:?}",
            loaded.workloads.len(),
            loaded.errors
        ));
    }
    let report = check_workload(&loaded.workloads[0], level, version);
    let checks: Vec<&str> = report
        .pss
        .violations
        .iter()
        .map(|violation| violation.check)
        .collect();
    if expect_allowed {
        return if report.pss.allowed {
            Ok(())
        } else {
            Err(format!("denied by {checks:?}"))
        };
    }
    if report.pss.allowed {
        return Err("allowed, expected denied".to_owned());
    }
    let stem = path
        .file_stem()
        .and_then(|stem| stem.to_str())
        .unwrap_or("");
    let prefix = stem.trim_end_matches(|character: char| character.is_ascii_digit());
    let named_check = pss_check_ids(Level::Restricted, Version::Latest)
        .into_iter()
        .chain(pss_check_ids(Level::Baseline, Version::Latest))
        .chain([
            "capabilities_baseline",
            "hostPathVolumes",
            "procMount",
            "seccompProfile_baseline",
        ])
        .find(|check| check.to_ascii_lowercase() == prefix)
        .ok_or_else(|| format!("no check is named {prefix:?}"))?;
    let mut accepted = vec![named_check];
    if level == Level::Restricted
        && let Some(replacement) = pss_check_overridden_by(named_check, version)
    {
        accepted.push(replacement);
    }
    if checks.iter().any(|check| accepted.contains(check)) {
        Ok(())
    } else {
        Err(format!(
            "denied by {checks:?}, expected one of {accepted:?}"
        ))
    }
}
