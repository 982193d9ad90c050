//! `appArmorProfile` (baseline, v1.0+): AppArmor may not be disabled or overridden.
//!
//! Restricted fields: `spec.securityContext.appArmorProfile.type` and every container's
//! `securityContext.appArmorProfile.type` (allowed: `RuntimeDefault`, `Localhost`, unset), and
//! the annotations `container.apparmor.security.beta.kubernetes.io/*` (allowed: empty,
//! `runtime/default`, `localhost/*`). Upstream amended its single v1.0 revision in place when the
//! fields arrived (Kubernetes 1.30), so the fields are checked at every policy version.

use crate::{
    pss::{
        Level,
        checks::{Check, Forbidden, PodAndContainers, VersionedCheck, bad_profile_types},
        pod::{Pod, go_quote, join_quote, pluralize, sorted_set},
    },
    yaml::Node,
};

pub(crate) const CHECK: Check = Check {
    id: "appArmorProfile",
    level: Level::Baseline,
    versions: &[VersionedCheck {
        minimum_minor: 0,
        check: app_armor_profile_1_0,
        overrides: &[],
    }],
};

const ANNOTATION_PREFIX: &str = "container.apparmor.security.beta.kubernetes.io/";

fn allowed_type(profile_type: &str) -> bool {
    matches!(profile_type, "RuntimeDefault" | "Localhost")
}

fn allowed_annotation_value(value: &str) -> bool {
    value.is_empty() || value == "runtime/default" || value.starts_with("localhost/")
}

fn profile_type(profile: &Node) -> String {
    profile
        .get("type")
        .and_then(Node::as_str)
        .unwrap_or("")
        .to_owned()
}

fn app_armor_profile_1_0(pod: &Pod<'_>) -> Option<Forbidden> {
    let PodAndContainers {
        setters: mut bad_setters,
        values: bad_values,
        mut at,
        ..
    } = bad_profile_types(pod, "appArmorProfile", profile_type, allowed_type);
    let mut forbidden_annotations = Vec::new();
    for (key, value) in pod.annotations() {
        let text = value
            .as_str()
            .map_or_else(|| value.display(), str::to_owned);
        if key.starts_with(ANNOTATION_PREFIX) && !allowed_annotation_value(&text) {
            forbidden_annotations.push(format!("{key}={}", go_quote(&text)));
            at.get_or_insert_with(|| (format!("metadata.annotations['{key}']"), value.line));
        }
    }
    let mut bad_value_list = sorted_set(bad_values);
    if !forbidden_annotations.is_empty() {
        forbidden_annotations.sort();
        bad_setters
            .push(pluralize("annotation", "annotations", forbidden_annotations.len()).to_owned());
        bad_value_list.extend(forbidden_annotations);
    }
    if bad_setters.is_empty() {
        return None;
    }
    Some(Forbidden {
        reason: pluralize(
            "forbidden AppArmor profile",
            "forbidden AppArmor profiles",
            bad_value_list.len(),
        )
        .to_owned(),
        detail: format!(
            "{} must not set AppArmor profile type to {}",
            bad_setters.join(" and "),
            join_quote(&bad_value_list)
        ),
        at,
    })
}

#[cfg(test)]
mod tests {
    use crate::pss::checks::test_support::{detail, run};

    #[test]
    fn unconfined_fields_and_annotations_are_forbidden() {
        let pod = "spec:\n  securityContext:\n    appArmorProfile: {type: RuntimeDefault}\n  containers:\n  - name: foo\n    securityContext:\n      appArmorProfile: {type: Unconfined}\n";
        assert_eq!(
            detail("appArmorProfile", 0, pod),
            "container \"foo\" must not set AppArmor profile type to \"Unconfined\""
        );
        let pod = "metadata:\n  annotations:\n    container.apparmor.security.beta.kubernetes.io/a: unconfined\nspec:\n  securityContext:\n    appArmorProfile: {type: Unconfined}\n  containers:\n  - name: a\n";
        let forbidden = run("appArmorProfile", 5, pod).unwrap();
        assert_eq!(forbidden.reason, "forbidden AppArmor profiles");
        assert_eq!(
            forbidden.detail,
            "pod and annotation must not set AppArmor profile type to \"Unconfined\", \"container.apparmor.security.beta.kubernetes.io/a=\"unconfined\"\""
        );
        let pod = "metadata:\n  annotations:\n    container.apparmor.security.beta.kubernetes.io/a: localhost/x\nspec:\n  containers:\n  - name: a\n    securityContext:\n      appArmorProfile: {type: Localhost, localhostProfile: x}\n";
        assert_eq!(detail("appArmorProfile", 0, pod), "allowed");
    }
}
