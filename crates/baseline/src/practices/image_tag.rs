//! PAL-K8S-015: an image without a tag, or tagged `latest`.

use crate::practices::{Hit, Reference, Rule, Severity, Target};

pub(crate) const RULE: Rule = Rule {
    id: "PAL-K8S-015",
    severity: Severity::Medium,
    title: "Image tag missing or latest",
    description: "An image without a tag means :latest, which changes under the workload: two replicas can run different code, and a rollback restores nothing.",
    remediation: "Reference images by an immutable version tag, or better by digest (image@sha256:…).",
    references: REFERENCES,
};

const REFERENCES: &[Reference] = &[
    Reference {
        source: "checkov",
        id: "CKV_K8S_14",
    },
    Reference {
        source: "kube-linter",
        id: "latest-tag",
    },
    Reference {
        source: "trivy",
        id: "KSV013",
    },
];

/// The tag and digest of an image reference such as `registry:5000/app:1.2@sha256:…`.
pub(crate) struct ImageRef<'a> {
    pub(crate) tag: Option<&'a str>,
    pub(crate) digest: Option<&'a str>,
}

pub(crate) fn parse_image(image: &str) -> ImageRef<'_> {
    let (name, digest) = match image.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (image, None),
    };
    // A colon after the last slash starts the tag; one before it is a registry port.
    let last_component = name.rfind('/').map_or(name, |slash| &name[slash + 1..]);
    let tag = last_component.rsplit_once(':').map(|(_, tag)| tag);
    ImageRef { tag, digest }
}

/// True when the image floats: no digest, and no tag or the `latest` tag.
pub(crate) fn is_floating(image: &str) -> bool {
    let image_ref = parse_image(image);
    image_ref.digest.is_none()
        && image_ref
            .tag
            .is_none_or(|tag| tag.is_empty() || tag == "latest")
}

pub(crate) fn check(target: &Target<'_>) -> Vec<Hit> {
    target
        .pod
        .containers()
        .filter_map(|container| {
            let node = container.node.get("image")?;
            is_floating(node.as_str()?).then(|| Hit::at(format!("{}.image", container.path), node))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::practices::{image_tag::is_floating, test_support::hits};

    #[test]
    fn floating_images() {
        for image in [
            "nginx",
            "nginx:latest",
            "localhost:5000/app",
            "r.io/a/b:latest",
        ] {
            assert!(is_floating(image), "{image}");
        }
        for image in [
            "nginx:1.27",
            "localhost:5000/app:2",
            "nginx@sha256:abc",
            "nginx:latest@sha256:abc",
        ] {
            assert!(!is_floating(image), "{image}");
        }
        let manifest = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - {name: a, image: nginx}\n  - {name: b, image: 'nginx:1.27'}\n";
        assert_eq!(
            hits("PAL-K8S-015", manifest),
            [("spec.containers[0].image".to_owned(), "nginx".to_owned())]
        );
    }
}
