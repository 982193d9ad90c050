//! Kubernetes objects that carry a pod template, and where that template is.

use std::path::PathBuf;

use crate::yaml::{Node, Value};

/// A Kubernetes object with a pod template: a Pod, a PodTemplate, a CronJob, or any object with
/// `spec.template.spec.containers` (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job,
/// ReplicationController, and custom resources shaped like them).
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    /// The file the object was read from.
    pub file: PathBuf,
    /// The line where the object starts.
    pub line: usize,
    /// `kind`, e.g. `Deployment`.
    pub kind: String,
    /// `apiVersion`, e.g. `apps/v1`.
    pub api_version: String,
    /// `metadata.name`, empty when unset.
    pub name: String,
    /// `metadata.namespace`, when set.
    pub namespace: Option<String>,
    /// The whole object.
    pub object: Node,
    template: TemplateAt,
}

/// Where an object keeps its pod template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TemplateAt {
    /// A Pod: `metadata` and `spec`.
    Pod,
    /// A PodTemplate: `template.metadata` and `template.spec`.
    PodTemplate,
    /// A CronJob: `spec.jobTemplate.spec.template`.
    CronJob,
    /// Everything else: `spec.template`.
    SpecTemplate,
}

impl TemplateAt {
    /// The keys leading to the pod template (the object holding `metadata` and `spec`).
    fn template_keys(self) -> &'static [&'static str] {
        match self {
            TemplateAt::Pod => &[],
            TemplateAt::PodTemplate => &["template"],
            TemplateAt::CronJob => &["spec", "jobTemplate", "spec", "template"],
            TemplateAt::SpecTemplate => &["spec", "template"],
        }
    }

    fn spec_path(self) -> &'static str {
        match self {
            TemplateAt::Pod => "spec",
            TemplateAt::PodTemplate => "template.spec",
            TemplateAt::CronJob => "spec.jobTemplate.spec.template.spec",
            TemplateAt::SpecTemplate => "spec.template.spec",
        }
    }
}

/// Kinds that are workloads by definition: a missing template is worth a warning.
pub(crate) const WORKLOAD_KINDS: &[&str] = &[
    "Pod",
    "PodTemplate",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "Job",
    "CronJob",
    "ReplicationController",
];

impl Workload {
    /// Builds a workload from a Kubernetes object, or returns `None` when the object has no pod
    /// template.
    pub(crate) fn from_object(
        file: PathBuf,
        kind: &str,
        api_version: &str,
        object: Node,
    ) -> Option<Workload> {
        let template = match kind {
            "Pod" => TemplateAt::Pod,
            "PodTemplate" => TemplateAt::PodTemplate,
            "CronJob" => TemplateAt::CronJob,
            _ => TemplateAt::SpecTemplate,
        };
        let template_node = object.at(template.template_keys())?;
        let spec = template_node.get("spec")?;
        let is_pod_spec = match kind {
            // A Pod or PodTemplate is one by its kind; other objects must look like one.
            "Pod" | "PodTemplate" | "CronJob" => matches!(spec.value, Value::Map(_)),
            _ => spec
                .get("containers")
                .is_some_and(|node| matches!(node.value, Value::Seq(_))),
        };
        if !is_pod_spec {
            return None;
        }
        let metadata = object.get("metadata");
        let text = |key: &str| {
            metadata
                .and_then(|node| node.get(key))
                .and_then(Node::as_str)
        };
        Some(Workload {
            file,
            line: object.line,
            kind: kind.to_owned(),
            api_version: api_version.to_owned(),
            name: text("name").unwrap_or("").to_owned(),
            namespace: text("namespace").map(str::to_owned),
            template,
            object,
        })
    }

    /// The pod spec of the template.
    pub fn pod_spec(&self) -> &Node {
        // `from_object` only builds workloads whose template has a spec.
        static EMPTY: Node = Node {
            line: 0,
            column: 0,
            value: Value::Map(Vec::new()),
        };
        self.template_node()
            .and_then(|template| template.get("spec"))
            .unwrap_or(&EMPTY)
    }

    /// The pod template's metadata (the object's own metadata for a Pod).
    pub fn pod_metadata(&self) -> Option<&Node> {
        self.template_node()?.get("metadata")
    }

    /// The field path of the pod spec in the object, e.g. `spec.template.spec`.
    pub fn pod_spec_path(&self) -> &'static str {
        self.template.spec_path()
    }

    fn template_node(&self) -> Option<&Node> {
        self.object.at(self.template.template_keys())
    }
}
