//! A read-only view of a pod template for the checks: its spec, metadata and containers.
//!
//! Kubernetes decodes manifests into typed structs before admission; here the checks read the
//! YAML tree directly, and a field of the wrong type counts as unset, as it never reaches
//! admission in a real cluster.

use crate::yaml::Node;

/// A pod (template): its metadata and spec, and where the spec is in its object.
pub(crate) struct Pod<'a> {
    pub(crate) metadata: Option<&'a Node>,
    pub(crate) spec: &'a Node,
    pub(crate) spec_path: &'a str,
}

/// One container of a pod, init and ephemeral containers included.
pub(crate) struct Container<'a> {
    /// The container's name, empty when unset.
    pub(crate) name: &'a str,
    pub(crate) node: &'a Node,
    /// Which list it is in: `initContainers`, `containers` or `ephemeralContainers`.
    pub(crate) list: &'static str,
    /// The field path of the container, e.g. `spec.containers[0]`.
    pub(crate) path: String,
}

impl<'a> Pod<'a> {
    pub(crate) fn new(metadata: Option<&'a Node>, spec: &'a Node, spec_path: &'a str) -> Pod<'a> {
        Pod {
            metadata,
            spec,
            spec_path,
        }
    }

    /// Init containers, then containers, then ephemeral containers, as upstream's
    /// `visitContainers` orders them.
    pub(crate) fn containers(&self) -> impl Iterator<Item = Container<'a>> + '_ {
        ["initContainers", "containers", "ephemeralContainers"]
            .into_iter()
            .flat_map(move |list| {
                self.spec
                    .get(list)
                    .map(Node::items)
                    .unwrap_or_default()
                    .iter()
                    .enumerate()
                    .map(move |(container_idx, node)| Container {
                        name: node.get("name").and_then(Node::as_str).unwrap_or(""),
                        node,
                        list,
                        path: format!("{}.{list}[{container_idx}]", self.spec_path),
                    })
            })
    }

    /// A field of the pod-level `securityContext`.
    pub(crate) fn security_context(&self, keys: &[&str]) -> Option<&'a Node> {
        self.spec.get("securityContext")?.at(keys)
    }

    /// The path of a pod-level `securityContext` field.
    pub(crate) fn security_context_path(&self, keys: &[&str]) -> String {
        format!("{}.securityContext.{}", self.spec_path, keys.join("."))
    }

    /// A boolean field of the spec, false when unset, as Go's zero value.
    pub(crate) fn spec_flag(&self, key: &str) -> bool {
        self.spec.get(key).and_then(Node::as_bool).unwrap_or(false)
    }

    /// The pod's annotations, in document order.
    pub(crate) fn annotations(&self) -> impl Iterator<Item = (&'a str, &'a Node)> {
        self.metadata
            .and_then(|metadata| metadata.get("annotations"))
            .map(Node::entries)
            .unwrap_or_default()
            .iter()
            .map(|(key, value)| (key.as_str(), value))
    }

    /// The value of one annotation, when it is set (to a string or anything else).
    pub(crate) fn annotation(&self, key: &str) -> Option<&'a Node> {
        self.metadata?.get("annotations")?.get(key)
    }

    /// True when the pod runs in its own user namespace (`hostUsers: false`).
    pub(crate) fn in_user_namespace(&self) -> bool {
        self.spec.get("hostUsers").and_then(Node::as_bool) == Some(false)
    }

    /// True when `spec.os.name` is `windows`.
    pub(crate) fn is_windows(&self) -> bool {
        self.spec.at(&["os", "name"]).and_then(Node::as_str) == Some("windows")
    }
}

impl<'a> Container<'a> {
    /// A field of the container's `securityContext`.
    pub(crate) fn security_context(&self, keys: &[&str]) -> Option<&'a Node> {
        self.node.get("securityContext")?.at(keys)
    }

    /// The path of a container `securityContext` field.
    pub(crate) fn security_context_path(&self, keys: &[&str]) -> String {
        format!("{}.securityContext.{}", self.path, keys.join("."))
    }
}

/// Upstream's `pluralize`.
pub(crate) fn pluralize<'s>(singular: &'s str, plural: &'s str, count: usize) -> &'s str {
    if count == 1 { singular } else { plural }
}

/// Upstream's `joinQuote`: `"a", "b"`.
pub(crate) fn join_quote<S: AsRef<str>>(items: &[S]) -> String {
    if items.is_empty() {
        return String::new();
    }
    let joined: Vec<&str> = items.iter().map(AsRef::as_ref).collect();
    format!("\"{}\"", joined.join("\", \""))
}

/// Go's `%q` for a plain string: quotes and escapes it.
pub(crate) fn go_quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for character in text.chars() {
        match character {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\t' => quoted.push_str("\\t"),
            '\r' => quoted.push_str("\\r"),
            other if other.is_control() => quoted.push_str(&format!("\\u{:04x}", other as u32)),
            other => quoted.push(other),
        }
    }
    quoted.push('"');
    quoted
}

/// A sorted set of strings, as upstream's `sets.NewString().List()`.
pub(crate) fn sorted_set<I: IntoIterator<Item = String>>(items: I) -> Vec<String> {
    let mut list: Vec<String> = items.into_iter().collect();
    list.sort();
    list.dedup();
    list
}

#[cfg(test)]
mod tests {
    use crate::pss::pod::{go_quote, join_quote, pluralize, sorted_set};

    #[test]
    fn helpers_match_upstream() {
        assert_eq!(join_quote(&["a", "b"]), "\"a\", \"b\"");
        assert_eq!(join_quote::<&str>(&[]), "");
        assert_eq!(pluralize("container", "containers", 2), "containers");
        assert_eq!(go_quote("a\"b"), "\"a\\\"b\"");
        assert_eq!(
            sorted_set(["b".to_owned(), "a".to_owned(), "b".to_owned()]),
            ["a", "b"]
        );
    }
}
