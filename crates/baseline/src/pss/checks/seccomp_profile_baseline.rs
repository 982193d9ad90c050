//! `seccompProfile_baseline` (baseline; annotations v1.0, fields v1.19+): seccomp may not be
//! disabled.
//!
//! v1.0–v1.18: the annotations `seccomp.security.alpha.kubernetes.io/pod` and
//! `container.seccomp.security.alpha.kubernetes.io/<container>` may be `runtime/default`,
//! `docker/default` or `localhost/*`. From v1.19: `seccompProfile.type` of the pod and of every
//! container may be `RuntimeDefault`, `Localhost` or unset. At the restricted level
//! `seccompProfile_restricted` replaces it from v1.19.

use crate::{
    pss::{
        Level,
        checks::{Check, Forbidden, PodAndContainers, VersionedCheck, bad_profile_types},
        pod::{Pod, go_quote, join_quote, pluralize, sorted_set},
    },
    yaml::Node,
};

pub(crate) const CHECK: Check = Check {
    id: "seccompProfile_baseline",
    level: Level::Baseline,
    versions: &[
        VersionedCheck {
            minimum_minor: 0,
            check: seccomp_profile_baseline_1_0,
            overrides: &[],
        },
        VersionedCheck {
            minimum_minor: 19,
            check: seccomp_profile_baseline_1_19,
            overrides: &[],
        },
    ],
};

const ANNOTATION_KEY_POD: &str = "seccomp.security.alpha.kubernetes.io/pod";
const ANNOTATION_KEY_CONTAINER_PREFIX: &str = "container.seccomp.security.alpha.kubernetes.io/";

/// Upstream's `validSeccomp`, shared with `seccompProfile_restricted`.
pub(crate) fn valid_seccomp_type(profile_type: &str) -> bool {
    matches!(profile_type, "Localhost" | "RuntimeDefault")
}

/// The `type` of a `seccompProfile` node; an absent type is Go's empty string.
pub(crate) fn seccomp_type(profile: &Node) -> String {
    match profile.get("type") {
        Some(node) => node.as_str().map_or_else(|| node.display(), str::to_owned),
        None => String::new(),
    }
}

fn valid_annotation_value(value: &str) -> bool {
    value == "runtime/default" || value == "docker/default" || value.starts_with("localhost/")
}

fn annotation_text(node: &Node) -> String {
    node.as_str().map_or_else(|| node.display(), str::to_owned)
}

fn seccomp_profile_baseline_1_0(pod: &Pod<'_>) -> Option<Forbidden> {
    let mut forbidden = Vec::new();
    let mut at = None;
    if let Some(node) = pod.annotation(ANNOTATION_KEY_POD) {
        let value = annotation_text(node);
        if !valid_annotation_value(&value) {
            forbidden.push(format!("{ANNOTATION_KEY_POD}={}", go_quote(&value)));
            at = Some((
                format!("metadata.annotations['{ANNOTATION_KEY_POD}']"),
                node.line,
            ));
        }
    }
    for container in pod.containers() {
        let key = format!("{ANNOTATION_KEY_CONTAINER_PREFIX}{}", container.name);
        if let Some(node) = pod.annotation(&key) {
            let value = annotation_text(node);
            if !valid_annotation_value(&value) {
                forbidden.push(format!("{key}={}", go_quote(&value)));
                at.get_or_insert_with(|| (format!("metadata.annotations['{key}']"), node.line));
            }
        }
    }
    let forbidden = sorted_set(forbidden);
    if forbidden.is_empty() {
        return None;
    }
    Some(Forbidden {
        reason: "seccompProfile".to_owned(),
        detail: format!(
            "forbidden {} {}",
            pluralize("annotation", "annotations", forbidden.len()),
            forbidden.join(", ")
        ),
        at,
    })
}

fn seccomp_profile_baseline_1_19(pod: &Pod<'_>) -> Option<Forbidden> {
    let PodAndContainers {
        setters: bad_setters,
        values: bad_values,
        at,
        ..
    } = bad_profile_types(pod, "seccompProfile", seccomp_type, valid_seccomp_type);
    if bad_setters.is_empty() {
        return None;
    }
    Some(Forbidden {
        reason: "seccompProfile".to_owned(),
        detail: format!(
            "{} must not set securityContext.seccompProfile.type to {}",
            bad_setters.join(" and "),
            join_quote(&sorted_set(bad_values))
        ),
        at,
    })
}

#[cfg(test)]
mod tests {
    use crate::pss::checks::test_support::detail;

    #[test]
    fn annotations_before_1_19_fields_after() {
        let pod = "metadata:\n  annotations:\n    seccomp.security.alpha.kubernetes.io/pod: unconfined\n    container.seccomp.security.alpha.kubernetes.io/a: docker/default\nspec:\n  containers:\n  - name: a\n    securityContext:\n      seccompProfile: {type: Unconfined}\n";
        assert_eq!(
            detail("seccompProfile_baseline", 18, pod),
            "forbidden annotation seccomp.security.alpha.kubernetes.io/pod=\"unconfined\""
        );
        assert_eq!(
            detail("seccompProfile_baseline", 19, pod),
            "container \"a\" must not set securityContext.seccompProfile.type to \"Unconfined\""
        );
        let pod = "spec:\n  securityContext:\n    seccompProfile: {type: RuntimeDefault}\n  containers:\n  - name: a\n";
        assert_eq!(detail("seccompProfile_baseline", 37, pod), "allowed");
    }
}
