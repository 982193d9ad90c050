//! PAL-K8S-017: a floating (`latest` or untagged) image that is not always pulled.

use crate::practices::{Hit, Reference, Rule, Severity, Target, image_tag::is_floating};

pub(crate) const RULE: Rule = Rule {
    id: "PAL-K8S-017",
    severity: Severity::Low,
    title: "Latest image not always pulled",
    description: "With a latest or untagged image and imagePullPolicy IfNotPresent or Never, each node runs whatever image it cached first, so replicas silently differ.",
    remediation: "Pin the image to a version or digest; otherwise set imagePullPolicy: Always (the default for latest images when the field is unset).",
    references: REFERENCES,
};

const REFERENCES: &[Reference] = &[
    Reference {
        source: "checkov",
        id: "CKV_K8S_15",
    },
    Reference {
        source: "kubescape",
        id: "C-0075",
    },
];

pub(crate) fn check(target: &Target<'_>) -> Vec<Hit> {
    target
        .pod
        .containers()
        .filter_map(|container| {
            let image = container.node.get("image")?.as_str()?;
            let policy = container.node.get("imagePullPolicy")?;
            (is_floating(image) && policy.as_str() != Some("Always"))
                .then(|| Hit::at(format!("{}.imagePullPolicy", container.path), policy))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::practices::test_support::hits;

    #[test]
    fn only_floating_images_need_always() {
        let manifest = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - {name: a, image: nginx, imagePullPolicy: IfNotPresent}\n  - {name: b, image: nginx}\n  - {name: c, image: 'nginx:1', imagePullPolicy: Never}\n  - {name: d, image: 'nginx:latest', imagePullPolicy: Always}\n";
        assert_eq!(
            hits("PAL-K8S-017", manifest),
            [(
                "spec.containers[0].imagePullPolicy".to_owned(),
                "IfNotPresent".to_owned()
            )]
        );
    }
}
