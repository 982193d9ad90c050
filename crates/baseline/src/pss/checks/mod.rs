//! The registry of Pod Security Standards checks, one module per upstream check id.
//!
//! Each module exports `CHECK`, a [`Check`] naming its upstream id, level and versioned
//! revisions. [`selected`] reproduces `registry.go`: per version, the newest applicable revision
//! of each check; at the restricted level, baseline checks minus those a restricted revision
//! overrides, plus the restricted checks; baseline ids first, each group sorted by id.

mod allow_privilege_escalation;
mod app_armor_profile;
mod capabilities_baseline;
mod capabilities_restricted;
mod host_namespaces;
mod host_path_volumes;
mod host_ports;
mod host_probes_and_host_lifecycle;
mod privileged;
mod proc_mount;
mod proc_mount_restricted;
mod restricted_volumes;
mod run_as_non_root;
mod run_as_user;
mod se_linux_options;
mod seccomp_profile_baseline;
mod seccomp_profile_restricted;
mod sysctls;
mod windows_host_process;

use crate::{
    pss::{
        Level,
        pod::{Pod, join_quote, pluralize},
    },
    yaml::Node,
};

/// A forbidden check result: upstream's `ForbiddenReason` and `ForbiddenDetail`, plus the first
/// offending field (path and line) when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Forbidden {
    pub(crate) reason: String,
    pub(crate) detail: String,
    pub(crate) at: Option<(String, usize)>,
}

/// How the pod's or a container's `securityContext.<field>` stands, as a check judges it.
pub(crate) enum Setting {
    /// Set to a value the check allows.
    Allowed,
    /// Set to a value it refuses (the value as the check's message names it).
    Refused(String),
    /// Left unset (or set to something the check reads as unset).
    Unset,
}

/// Who sets a `securityContext` field the pod sets for every container and each container may
/// set for itself, to a value the check refuses (upstream's `badSetters` and `badValues`);
/// and which containers leave it unset while the pod does not set an allowed value.
pub(crate) struct PodAndContainers<'a> {
    /// `pod`, then `container "a"` / `containers "a", "b"`.
    pub(crate) setters: Vec<String>,
    /// The refused values, in the order found.
    pub(crate) values: Vec<String>,
    /// The first refused field.
    pub(crate) at: Option<(String, usize)>,
    /// The containers that leave it unset where the pod does not allow it for them.
    pub(crate) unset: Vec<&'a str>,
    /// The first of those containers' field.
    pub(crate) unset_at: Option<(String, usize)>,
}

/// Judges `securityContext.<field>` of the pod and of every container with `judge` (called
/// only where the field is present), naming fields by `securityContext.<reported>` (the
/// field, or the key of it the message names).
pub(crate) fn judge_pod_and_containers<'a>(
    pod: &Pod<'a>,
    field: &str,
    reported: &[&str],
    judge: impl Fn(&'a Node) -> Setting,
) -> PodAndContainers<'a> {
    let mut judged = PodAndContainers {
        setters: Vec::new(),
        values: Vec::new(),
        at: None,
        unset: Vec::new(),
        unset_at: None,
    };
    let mut pod_allows = false;
    if let Some(node) = pod.security_context(&[field]) {
        match judge(node) {
            Setting::Allowed => pod_allows = true,
            Setting::Refused(value) => {
                judged.setters.push("pod".to_owned());
                judged.values.push(value);
                judged.at = Some((pod.security_context_path(reported), node.line));
            }
            Setting::Unset => {}
        }
    }
    let mut refusing_containers = Vec::new();
    for container in pod.containers() {
        let setting = container
            .security_context(&[field])
            .map(|node| (judge(node), node.line));
        match setting {
            Some((Setting::Allowed, _)) => {}
            Some((Setting::Refused(value), line)) => {
                refusing_containers.push(container.name);
                judged.values.push(value);
                judged
                    .at
                    .get_or_insert_with(|| (container.security_context_path(reported), line));
            }
            Some((Setting::Unset, _)) | None => {
                if !pod_allows {
                    judged.unset.push(container.name);
                    judged.unset_at.get_or_insert_with(|| {
                        (
                            container.security_context_path(reported),
                            container.node.line,
                        )
                    });
                }
            }
        }
    }
    if !refusing_containers.is_empty() {
        judged.setters.push(format!(
            "{} {}",
            pluralize("container", "containers", refusing_containers.len()),
            join_quote(&refusing_containers)
        ));
    }
    judged
}

/// [`judge_pod_and_containers`] for a profile (`securityContext.<field>.type`): set (not
/// null) with a type (`type_of`) that `allowed` refuses, or unset.
pub(crate) fn bad_profile_types<'a>(
    pod: &Pod<'a>,
    field: &str,
    type_of: fn(&Node) -> String,
    allowed: fn(&str) -> bool,
) -> PodAndContainers<'a> {
    judge_pod_and_containers(pod, field, &[field, "type"], |profile| {
        if profile.is_null() {
            return Setting::Unset;
        }
        let value = type_of(profile);
        if allowed(&value) {
            Setting::Allowed
        } else {
            Setting::Refused(value)
        }
    })
}

/// A check function: `None` when the pod is allowed.
pub(crate) type CheckFn = fn(&Pod<'_>) -> Option<Forbidden>;

/// One check, as upstream's `policy.Check`.
pub(crate) struct Check {
    pub(crate) id: &'static str,
    pub(crate) level: Level,
    /// Revisions with strictly increasing minimum minor versions.
    pub(crate) versions: &'static [VersionedCheck],
}

/// One revision of a check, as upstream's `policy.VersionedCheck`.
pub(crate) struct VersionedCheck {
    /// The first policy minor version (`v1.<n>`) this revision applies to.
    pub(crate) minimum_minor: u32,
    pub(crate) check: CheckFn,
    /// Baseline check ids this (restricted) revision replaces at the restricted level.
    pub(crate) overrides: &'static [&'static str],
}

/// Every check, in no particular order; [`selected`] sorts.
const CHECKS: &[&Check] = &[
    &allow_privilege_escalation::CHECK,
    &app_armor_profile::CHECK,
    &capabilities_baseline::CHECK,
    &capabilities_restricted::CHECK,
    &host_namespaces::CHECK,
    &host_path_volumes::CHECK,
    &host_ports::CHECK,
    &host_probes_and_host_lifecycle::CHECK,
    &privileged::CHECK,
    &proc_mount::CHECK,
    &proc_mount_restricted::CHECK,
    &restricted_volumes::CHECK,
    &run_as_non_root::CHECK,
    &run_as_user::CHECK,
    &se_linux_options::CHECK,
    &seccomp_profile_baseline::CHECK,
    &seccomp_profile_restricted::CHECK,
    &sysctls::CHECK,
    &windows_host_process::CHECK,
];

/// The revision of `check` that applies at `minor`, if any.
fn revision(check: &Check, minor: u32) -> Option<&'static VersionedCheck> {
    check
        .versions
        .iter()
        .rev()
        .find(|versioned| versioned.minimum_minor <= minor)
}

/// The checks that run at a level and minor version, in upstream's evaluation order.
pub(crate) fn selected(level: Level, minor: u32) -> Vec<(&'static str, CheckFn)> {
    let mut baseline: Vec<(&'static str, &'static VersionedCheck)> = Vec::new();
    let mut restricted: Vec<(&'static str, &'static VersionedCheck)> = Vec::new();
    for check in CHECKS {
        if let Some(versioned) = revision(check, minor) {
            match check.level {
                Level::Baseline => baseline.push((check.id, versioned)),
                Level::Restricted => restricted.push((check.id, versioned)),
            }
        }
    }
    if level == Level::Restricted {
        let overridden: Vec<&str> = restricted
            .iter()
            .flat_map(|(_, versioned)| versioned.overrides.iter().copied())
            .collect();
        baseline.retain(|(check_id, _)| !overridden.contains(check_id));
    } else {
        restricted.clear();
    }
    // Go sorts the ids as byte strings; so does `str::cmp`.
    baseline.sort_by_key(|(check_id, _)| *check_id);
    restricted.sort_by_key(|(check_id, _)| *check_id);
    baseline
        .into_iter()
        .chain(restricted)
        .map(|(check_id, versioned)| (check_id, versioned.check))
        .collect()
}

/// The restricted check whose revision at `minor` overrides the baseline check `check_id`.
pub(crate) fn overridden_by(check_id: &str, minor: u32) -> Option<&'static str> {
    CHECKS
        .iter()
        .filter(|check| check.level == Level::Restricted)
        .find(|check| {
            revision(check, minor).is_some_and(|versioned| versioned.overrides.contains(&check_id))
        })
        .map(|check| check.id)
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Runs one check revision against a pod written in YAML.

    use crate::pss::{
        checks::{CHECKS, Forbidden, revision},
        pod::Pod,
    };

    /// Evaluates check `check_id` at `v1.<minor>` on the pod manifest `pod_yaml`.
    ///
    /// Panics when the check has no revision at that version: tests name versions on purpose.
    pub(crate) fn run(check_id: &str, minor: u32, pod_yaml: &str) -> Option<Forbidden> {
        let documents = crate::yaml::parse_stream(pod_yaml).expect("test pod parses");
        let root = &documents[0];
        let spec = root.get("spec").expect("test pod has a spec");
        let pod = Pod::new(root.get("metadata"), spec, "spec");
        let check = CHECKS
            .iter()
            .find(|check| check.id == check_id)
            .expect("known check id");
        let versioned = revision(check, minor).expect("check applies at this version");
        (versioned.check)(&pod)
    }

    /// The detail of a forbidden result, or `"allowed"`.
    pub(crate) fn detail(check_id: &str, minor: u32, pod_yaml: &str) -> String {
        run(check_id, minor, pod_yaml)
            .map_or_else(|| "allowed".to_owned(), |forbidden| forbidden.detail)
    }
}

#[cfg(test)]
mod tests {
    use crate::pss::checks::CHECKS;

    #[test]
    fn registry_is_valid_like_upstream_validate_checks() {
        let mut ids: Vec<&str> = CHECKS.iter().map(|check| check.id).collect();
        ids.sort();
        let n_ids = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), n_ids, "duplicate check id");
        for check in CHECKS {
            assert!(!check.versions.is_empty(), "{}", check.id);
            for pair in check.versions.windows(2) {
                assert!(
                    pair[0].minimum_minor < pair[1].minimum_minor,
                    "{}",
                    check.id
                );
            }
            for versioned in check.versions {
                for overridden in versioned.overrides {
                    assert_eq!(check.level, crate::pss::Level::Restricted, "{}", check.id);
                    let target = CHECKS.iter().find(|other| other.id == *overridden);
                    assert!(
                        target.is_some_and(|target| target.level == crate::pss::Level::Baseline),
                        "{} overrides {overridden}",
                        check.id
                    );
                }
            }
        }
        let newest = CHECKS
            .iter()
            .flat_map(|check| {
                check
                    .versions
                    .iter()
                    .map(|versioned| versioned.minimum_minor)
            })
            .max();
        assert_eq!(newest, Some(crate::pss::LATEST_MINOR));
    }
}
