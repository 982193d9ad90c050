//! PAL-K8S-019: a secret written into the manifest as an environment variable value.

use crate::{
    practices::{Hit, Reference, Rule, Severity, Target},
    yaml::Node,
};

pub(crate) const RULE: Rule = Rule {
    id: "PAL-K8S-019",
    severity: Severity::High,
    title: "Secret in environment variable value",
    description: "An environment variable whose name says password, secret, token or key has a literal value: the secret is in the manifest, its repository and every copy of the object.",
    remediation: "Move the value into a Secret and mount it as a file, or at least reference it with env[].valueFrom.secretKeyRef; rotate the exposed secret.",
    references: REFERENCES,
};

const REFERENCES: &[Reference] = &[
    Reference {
        source: "kubescape",
        id: "C-0012",
    },
    Reference {
        source: "kube-linter",
        id: "env-var-secret",
    },
];

/// Name fragments (upper case, compared without `-` and `_`) that mark a variable as secret.
const SECRET_WORDS: &[&str] = &[
    "PASSWORD",
    "PASSWD",
    "PASSPHRASE",
    "SECRET",
    "TOKEN",
    "APIKEY",
    "ACCESSKEY",
    "PRIVATEKEY",
    "CREDENTIAL",
    "AUTHKEY",
];

pub(crate) fn looks_secret(name: &str) -> bool {
    let squashed: String = name
        .chars()
        .filter(|character| *character != '_' && *character != '-' && *character != '.')
        .collect::<String>()
        .to_ascii_uppercase();
    SECRET_WORDS.iter().any(|word| squashed.contains(word))
}

pub(crate) fn check(target: &Target<'_>) -> Vec<Hit> {
    let mut hits = Vec::new();
    for container in target.pod.containers() {
        let env = container
            .node
            .get("env")
            .map(Node::items)
            .unwrap_or_default();
        for (env_idx, variable) in env.iter().enumerate() {
            let Some(name) = variable.get("name").and_then(Node::as_str) else {
                continue;
            };
            let Some(value) = variable.get("value") else {
                continue;
            };
            let text = value
                .as_str()
                .map_or_else(|| value.display(), str::to_owned);
            if looks_secret(name) && !text.is_empty() && !value.is_null() {
                // The value itself never goes into a report.
                hits.push(Hit {
                    path: format!("{}.env[{env_idx}].value", container.path),
                    value: format!("<redacted: {} characters>", text.chars().count()),
                    line: value.line,
                });
            }
        }
    }
    hits
}

#[cfg(test)]
mod tests {
    use crate::practices::{secret_env_value::looks_secret, test_support::hits};

    #[test]
    fn secret_looking_names_with_literal_values() {
        assert!(
            looks_secret("DB_PASSWORD")
                && looks_secret("api-key")
                && looks_secret("AWS_SECRET_ACCESS_KEY")
        );
        assert!(!looks_secret("LOG_LEVEL") && !looks_secret("KEYBOARD"));
        let manifest = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: a\n    env:\n    - {name: DB_PASSWORD, value: hunter2}\n    - {name: LOG_LEVEL, value: debug}\n    - {name: API_TOKEN, value: ''}\n    - name: OTHER_SECRET\n      valueFrom: {secretKeyRef: {name: s, key: k}}\n";
        assert_eq!(
            hits("PAL-K8S-019", manifest),
            [(
                "spec.containers[0].env[0].value".to_owned(),
                "<redacted: 7 characters>".to_owned()
            )]
        );
    }
}
