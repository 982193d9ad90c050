//! PAL-K8S-016: an image not pinned by digest.

use crate::practices::{Hit, Reference, Rule, Severity, Target, image_tag::parse_image};

pub(crate) const RULE: Rule = Rule {
    id: "PAL-K8S-016",
    severity: Severity::Low,
    title: "Image not pinned by digest",
    description: "Tags are mutable: whoever can push to the registry can change what a tag points to. Only a digest names exactly the image that was reviewed and scanned.",
    remediation: "Reference images as name@sha256:<digest> (a tag may stay for readability: name:1.2@sha256:<digest>).",
    references: REFERENCES,
};

const REFERENCES: &[Reference] = &[Reference {
    source: "checkov",
    id: "CKV_K8S_43",
}];

pub(crate) fn check(target: &Target<'_>) -> Vec<Hit> {
    target
        .pod
        .containers()
        .filter_map(|container| {
            let node = container.node.get("image")?;
            parse_image(node.as_str()?)
                .digest
                .is_none()
                .then(|| Hit::at(format!("{}.image", container.path), node))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::practices::test_support::hits;

    #[test]
    fn digests_pin_images() {
        let manifest = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - {name: a, image: 'nginx:1.27'}\n  - {name: b, image: 'nginx@sha256:0123'}\n";
        assert_eq!(
            hits("PAL-K8S-016", manifest),
            [(
                "spec.containers[0].image".to_owned(),
                "nginx:1.27".to_owned()
            )]
        );
    }
}
