//! The `ka.*` fields of Falco's `k8s_audit` source (the k8saudit plugin), and the json
//! plugin's `jevt.value`, `jevt.obj` and `jevt.rawtime` (also named `json.*`),
//! extracted from the raw `audit.k8s.io/v1` `Event` JSON carried by
//! [`palisade_event::Payload::K8sAudit`].
//!
//! Names, meanings and list-ness follow the plugin's field table (`pkg/k8saudit/fields.go` in
//! falcosecurity/plugins). As in the plugin, every value is a string: booleans and numbers
//! from the JSON render as `true` / `80`, so `ka.req.pod.containers.privileged intersects
//! (true)` and `ka.response.code = 403` behave as in Falco. List fields extract as
//! [`Value::Strs`], which string operators match when any element matches.

use std::borrow::Cow;

use palisade_event::{Event, EventKind, Payload};
use serde_json::Value as Json;

use crate::fields::{ArgSpec, FieldArg, FieldDef, FieldType, KindSet, Value};

/// The kinds that carry a Kubernetes audit event.
pub(crate) const K8S_AUDIT: KindSet = KindSet::of(&[EventKind::K8sAudit]);

/// The `ka.*` and `jevt.*` rows of the field table.
pub(crate) static FIELDS: &[FieldDef] = &[
    ka("ka.auditid", "The unique id of the audit event", |e, _| {
        text(e, "/auditID")
    }),
    ka(
        "ka.stage",
        "Stage of the request (RequestReceived, ResponseComplete, ...)",
        |e, _| text(e, "/stage"),
    ),
    ka("ka.auth.decision", "The authorization decision", |e, _| {
        text(e, "/annotations/authorization.k8s.io~1decision")
    }),
    ka("ka.auth.reason", "The authorization reason", |e, _| {
        text(e, "/annotations/authorization.k8s.io~1reason")
    }),
    ka(
        "ka.user.name",
        "The user name performing the request",
        |e, _| text(e, "/user/username"),
    ),
    ka(
        "ka.user.groups",
        "The groups to which the user belongs (list)",
        |e, _| list(e, "/user/groups", &[]),
    ),
    ka("ka.impuser.name", "The impersonated user name", |e, _| {
        text(e, "/impersonatedUser/username")
    }),
    ka("ka.verb", "The action being performed", |e, _| {
        text(e, "/verb")
    }),
    ka(
        "ka.uri",
        "The request URI as sent from client to server",
        |e, _| text(e, "/requestURI"),
    ),
    keyed(
        "ka.uri.param",
        "The value of a query parameter of the URI (ka.uri.param[key])",
        uri_param,
    ),
    ka("ka.target.name", "The target object name", |e, _| {
        text(e, "/objectRef/name")
    }),
    ka(
        "ka.target.namespace",
        "The target object namespace",
        |e, _| text(e, "/objectRef/namespace"),
    ),
    ka(
        "ka.target.resource",
        "The target object resource",
        |e, _| text(e, "/objectRef/resource"),
    ),
    ka(
        "ka.target.subresource",
        "The target object subresource",
        |e, _| text(e, "/objectRef/subresource"),
    ),
    ka(
        "ka.req.binding.subjects",
        "For a (cluster) role binding, the names of the subjects it binds (list)",
        |e, _| list(e, "/requestObject/subjects", &["name"]),
    ),
    ka(
        "ka.req.binding.role",
        "For a (cluster) role binding, the role it binds",
        |e, _| text(e, "/requestObject/roleRef/name"),
    ),
    keyed(
        "ka.req.binding.subject.has_name",
        "Deprecated; always N/A (as in the plugin)",
        |e, _| audit(e).map(|_| Value::Str(Cow::Borrowed("N/A"))),
    ),
    ka(
        "ka.req.configmap.name",
        "For a configmap, its name",
        |e, _| configmap(e).and_then(|object| scalar(object.pointer("/metadata/name")?)),
    ),
    ka(
        "ka.req.configmap.obj",
        "For a configmap, its data as JSON",
        |e, _| {
            configmap(e)
                .and_then(|object| object.get("data"))
                .map(|data| Value::Str(Cow::Owned(data.to_string())))
        },
    ),
    ka(
        "ka.req.pod.containers.image",
        "For a pod, the images of its containers (list)",
        |e, _| list(e, CONTAINERS, &["image"]),
    ),
    ka(
        "ka.req.container.image",
        "Deprecated: the image of the first container",
        |e, _| text(e, "/requestObject/spec/containers/0/image"),
    ),
    ka(
        "ka.req.pod.containers.image.repository",
        "For a pod, the image repositories of its containers (list)",
        |e, _| repositories(e, false),
    ),
    ka(
        "ka.req.container.image.repository",
        "Deprecated: the image repository of the first container",
        |e, _| repositories(e, true),
    ),
    ka(
        "ka.req.pod.host_ipc",
        "For a pod, the hostIPC flag",
        |e, _| text(e, "/requestObject/spec/hostIPC"),
    ),
    ka(
        "ka.req.pod.host_network",
        "For a pod, the hostNetwork flag",
        |e, _| text(e, "/requestObject/spec/hostNetwork"),
    ),
    ka(
        "ka.req.container.host_network",
        "Deprecated alias of ka.req.pod.host_network",
        |e, _| text(e, "/requestObject/spec/hostNetwork"),
    ),
    ka(
        "ka.req.pod.host_pid",
        "For a pod, the hostPID flag",
        |e, _| text(e, "/requestObject/spec/hostPID"),
    ),
    ka(
        "ka.req.pod.containers.host_port",
        "For a pod, every container's hostPort values (list)",
        |e, _| host_ports(e),
    ),
    ka(
        "ka.req.pod.containers.privileged",
        "For a pod, each container's privileged flag, false when unset (list)",
        |e, _| per_container(e, "/securityContext/privileged", Some("false")),
    ),
    ka(
        "ka.req.container.privileged",
        "Deprecated: true when any container is privileged",
        |e, _| any_privileged(e),
    ),
    ka(
        "ka.req.pod.containers.allow_privilege_escalation",
        "For a pod, each container's allowPrivilegeEscalation flag (list)",
        |e, _| per_container(e, "/securityContext/allowPrivilegeEscalation", None),
    ),
    ka(
        "ka.req.pod.containers.read_only_fs",
        "For a pod, each container's readOnlyRootFilesystem flag (list)",
        |e, _| per_container(e, "/securityContext/readOnlyRootFilesystem", None),
    ),
    ka(
        "ka.req.pod.run_as_user",
        "For a pod, the pod security context's runAsUser",
        |e, _| text(e, "/requestObject/spec/securityContext/runAsUser"),
    ),
    ka(
        "ka.req.pod.containers.run_as_user",
        "For a pod, each container's runAsUser (list)",
        |e, _| per_container(e, "/securityContext/runAsUser", None),
    ),
    ka(
        "ka.req.pod.containers.eff_run_as_user",
        "For a pod, each container's effective uid: container, else pod, else 0 (list)",
        |e, _| effective_id(e, "runAsUser"),
    ),
    ka(
        "ka.req.pod.run_as_group",
        "For a pod, the pod security context's runAsGroup",
        |e, _| text(e, "/requestObject/spec/securityContext/runAsGroup"),
    ),
    ka(
        "ka.req.pod.containers.run_as_group",
        "For a pod, each container's runAsGroup (list)",
        |e, _| per_container(e, "/securityContext/runAsGroup", None),
    ),
    ka(
        "ka.req.pod.containers.eff_run_as_group",
        "For a pod, each container's effective gid: container, else pod, else 0 (list)",
        |e, _| effective_id(e, "runAsGroup"),
    ),
    ka(
        "ka.req.pod.containers.proc_mount",
        "For a pod, each container's procMount (list)",
        |e, _| per_container(e, "/securityContext/procMount", None),
    ),
    ka(
        "ka.req.role.rules",
        "For a (cluster) role, its rules as JSON (list)",
        |e, _| role_rules(e),
    ),
    ka(
        "ka.req.role.rules.apiGroups",
        "For a (cluster) role, the API groups of its rules (list)",
        |e, _| list(e, "/requestObject/rules", &["apiGroups"]),
    ),
    ka(
        "ka.req.role.rules.nonResourceURLs",
        "For a (cluster) role, the non-resource URLs of its rules (list)",
        |e, _| list(e, "/requestObject/rules", &["nonResourceURLs"]),
    ),
    ka(
        "ka.req.role.rules.verbs",
        "For a (cluster) role, the verbs of its rules (list)",
        |e, _| list(e, "/requestObject/rules", &["verbs"]),
    ),
    ka(
        "ka.req.role.rules.resources",
        "For a (cluster) role, the resources of its rules (list)",
        |e, _| list(e, "/requestObject/rules", &["resources"]),
    ),
    ka(
        "ka.req.pod.fs_group",
        "For a pod, the security context's fsGroup",
        |e, _| text(e, "/requestObject/spec/securityContext/fsGroup"),
    ),
    ka(
        "ka.req.pod.supplemental_groups",
        "For a pod, the security context's supplementalGroups (list)",
        |e, _| {
            list(
                e,
                "/requestObject/spec/securityContext/supplementalGroups",
                &[],
            )
        },
    ),
    ka(
        "ka.req.pod.containers.add_capabilities",
        "For a pod, every capability its containers add (list)",
        |e, _| list(e, CONTAINERS, &["securityContext", "capabilities", "add"]),
    ),
    ka("ka.req.service.type", "For a service, its type", |e, _| {
        text(e, "/requestObject/spec/type")
    }),
    ka(
        "ka.req.service.ports",
        "For a service, its ports (list)",
        |e, _| list(e, "/requestObject/spec/ports", &["port"]),
    ),
    ka(
        "ka.req.pod.volumes.hostpath",
        "For a pod, the hostPath paths of its volumes (list)",
        |e, _| list(e, VOLUMES, &["hostPath", "path"]),
    ),
    keyed(
        "ka.req.volume.hostpath",
        "Deprecated: true when a hostPath volume's path starts with the argument",
        volume_hostpath_prefix,
    ),
    ka(
        "ka.req.pod.volumes.flexvolume_driver",
        "For a pod, the flexVolume drivers of its volumes (list)",
        |e, _| list(e, VOLUMES, &["flexVolume", "driver"]),
    ),
    ka(
        "ka.req.pod.volumes.volume_type",
        "For a pod, the type of each volume (hostPath, secret, ...) (list)",
        |e, _| volume_types(e),
    ),
    ka("ka.resp.name", "The response object name", |e, _| {
        text(e, "/responseObject/metadata/name")
    }),
    ka("ka.response.code", "The response code", |e, _| {
        text(e, "/responseStatus/code")
    }),
    ka(
        "ka.response.reason",
        "The response reason (usually present only for failures)",
        |e, _| text(e, "/responseStatus/reason"),
    ),
    ka(
        "ka.useragent",
        "The user agent of the client that made the request",
        |e, _| text(e, "/userAgent"),
    ),
    ka(
        "ka.sourceips",
        "The source IP addresses of the request (list)",
        |e, _| list(e, "/sourceIPs", &[]),
    ),
    // The json plugin's fields, under its `jevt.*` and `json.*` names.
    keyed("jevt.value", JSON_VALUE_DESC, json_value),
    ka("jevt.obj", JSON_OBJ_DESC, json_obj),
    raw_time("jevt.rawtime"),
    keyed("json.value", JSON_VALUE_DESC, json_value),
    ka("json.obj", JSON_OBJ_DESC, json_obj),
    raw_time("json.rawtime"),
];

const JSON_VALUE_DESC: &str = "The JSON value at a JSON pointer in the audit event ([/verb])";
const JSON_OBJ_DESC: &str = "The whole audit event, as JSON text";

fn json_value<'e>(event: &'e Event, arg: &FieldArg) -> Option<Value<'e>> {
    match arg {
        FieldArg::Key(pointer) => json_at(event, pointer),
        _ => None,
    }
}

fn json_obj<'e>(event: &'e Event, _: &FieldArg) -> Option<Value<'e>> {
    Some(Value::Str(Cow::Owned(audit(event)?.to_string())))
}

/// The json plugin's `rawtime`: the event's time in nanoseconds (its stage timestamp).
const fn raw_time(name: &'static str) -> FieldDef {
    FieldDef {
        ty: FieldType::Int,
        ..ka(
            name,
            "The event's time in nanoseconds since the epoch",
            |e, _| {
                audit(e)?;
                i64::try_from(e.timestamp_ns).ok().map(Value::Int)
            },
        )
    }
}

const CONTAINERS: &str = "/requestObject/spec/containers";
const VOLUMES: &str = "/requestObject/spec/volumes";

const fn ka(
    name: &'static str,
    desc: &'static str,
    extract: for<'e> fn(&'e Event, &FieldArg) -> Option<Value<'e>>,
) -> FieldDef {
    FieldDef {
        name,
        ty: FieldType::Str,
        arg: ArgSpec::None,
        kinds: K8S_AUDIT,
        desc,
        extract,
    }
}

const fn keyed(
    name: &'static str,
    desc: &'static str,
    extract: for<'e> fn(&'e Event, &FieldArg) -> Option<Value<'e>>,
) -> FieldDef {
    FieldDef {
        arg: ArgSpec::Key,
        ..ka(name, desc, extract)
    }
}

fn audit(event: &Event) -> Option<&Json> {
    match &event.payload {
        Payload::K8sAudit { audit } => Some(audit),
        _ => None,
    }
}

/// A JSON scalar as the plugin renders it; `None` for null, objects and arrays.
fn scalar_text(json: &Json) -> Option<Cow<'_, str>> {
    match json {
        Json::String(text) => Some(Cow::Borrowed(text)),
        Json::Bool(flag) => Some(Cow::Borrowed(if *flag { "true" } else { "false" })),
        Json::Number(number) => Some(Cow::Owned(number.to_string())),
        Json::Null | Json::Array(_) | Json::Object(_) => None,
    }
}

fn scalar(json: &Json) -> Option<Value<'_>> {
    scalar_text(json).map(Value::Str)
}

fn text<'e>(event: &'e Event, pointer: &str) -> Option<Value<'e>> {
    scalar(audit(event)?.pointer(pointer)?)
}

/// Walks `path` (object keys) below `json`, flattening arrays met on the way, and collects
/// the scalars at the end.
fn collect<'e>(json: &'e Json, path: &[&str], out: &mut Vec<Cow<'e, str>>) {
    match json {
        Json::Array(items) => {
            for item in items {
                collect(item, path, out);
            }
        }
        _ => match path.split_first() {
            Some((key, rest)) => {
                if let Some(child) = json.get(key) {
                    collect(child, rest, out);
                }
            }
            None => out.extend(scalar_text(json)),
        },
    }
}

/// The scalars at `path` below the JSON pointer `base`; absent when `base` is absent.
fn list<'e>(event: &'e Event, base: &str, path: &[&str]) -> Option<Value<'e>> {
    let start = audit(event)?.pointer(base)?;
    let mut items = Vec::new();
    collect(start, path, &mut items);
    Some(Value::Strs(items))
}

fn containers(event: &Event) -> Option<&Vec<Json>> {
    audit(event)?.pointer(CONTAINERS)?.as_array()
}

/// One value per container at `pointer` below it; `default` for containers without one.
fn per_container<'e>(
    event: &'e Event,
    pointer: &str,
    default: Option<&'static str>,
) -> Option<Value<'e>> {
    let items = containers(event)?
        .iter()
        .filter_map(|container| {
            container
                .pointer(pointer)
                .and_then(scalar_text)
                .or(default.map(Cow::Borrowed))
        })
        .collect();
    Some(Value::Strs(items))
}

fn any_privileged(event: &Event) -> Option<Value<'_>> {
    let privileged = containers(event)?.iter().any(|container| {
        container.pointer("/securityContext/privileged") == Some(&Json::Bool(true))
    });
    Some(Value::Str(Cow::Borrowed(if privileged {
        "true"
    } else {
        "false"
    })))
}

fn effective_id<'e>(event: &'e Event, key: &str) -> Option<Value<'e>> {
    let pod_level = audit(event)?
        .pointer("/requestObject/spec/securityContext")
        .and_then(|context| context.get(key))
        .and_then(scalar_text);
    let items = containers(event)?
        .iter()
        .map(|container| {
            container
                .get("securityContext")
                .and_then(|context| context.get(key))
                .and_then(scalar_text)
                .or_else(|| pod_level.clone())
                .unwrap_or(Cow::Borrowed("0"))
        })
        .collect();
    Some(Value::Strs(items))
}

fn host_ports(event: &Event) -> Option<Value<'_>> {
    let mut items = Vec::new();
    for container in containers(event)? {
        if let Some(ports) = container.get("ports") {
            collect(ports, &["hostPort"], &mut items);
        }
    }
    Some(Value::Strs(items))
}

/// The repository part of an image reference: without the digest and the tag (a colon
/// after the last slash; a colon before it is a registry port).
fn repository(image: &str) -> &str {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last_slash = without_digest.rfind('/').map_or(0, |index| index + 1);
    match without_digest[last_slash..].find(':') {
        Some(colon) => &without_digest[..last_slash + colon],
        None => without_digest,
    }
}

fn repositories(event: &Event, first_only: bool) -> Option<Value<'_>> {
    let images = containers(event)?
        .iter()
        .filter_map(|container| container.get("image")?.as_str())
        .map(|image| Cow::Borrowed(repository(image)));
    if first_only {
        return images.into_iter().next().map(Value::Str);
    }
    Some(Value::Strs(images.collect()))
}

fn role_rules(event: &Event) -> Option<Value<'_>> {
    let rules = audit(event)?.pointer("/requestObject/rules")?.as_array()?;
    Some(Value::Strs(
        rules
            .iter()
            .map(|rule| Cow::Owned(rule.to_string()))
            .collect(),
    ))
}

fn volume_types(event: &Event) -> Option<Value<'_>> {
    let volumes = audit(event)?.pointer(VOLUMES)?.as_array()?;
    let items = volumes
        .iter()
        .filter_map(|volume| {
            volume
                .as_object()?
                .keys()
                .find(|key| *key != "name")
                .map(|key| Cow::Borrowed(key.as_str()))
        })
        .collect();
    Some(Value::Strs(items))
}

fn volume_hostpath_prefix<'e>(event: &'e Event, arg: &FieldArg) -> Option<Value<'e>> {
    let FieldArg::Key(prefix) = arg else {
        return None;
    };
    let mut paths = Vec::new();
    collect(
        audit(event)?.pointer(VOLUMES)?,
        &["hostPath", "path"],
        &mut paths,
    );
    let used = paths.iter().any(|path| path.starts_with(prefix.as_str()));
    Some(Value::Str(Cow::Borrowed(if used {
        "true"
    } else {
        "false"
    })))
}

fn configmap(event: &Event) -> Option<&Json> {
    let audit = audit(event)?;
    if audit.pointer("/objectRef/resource")?.as_str()? != "configmaps" {
        return None;
    }
    audit.get("requestObject")
}

fn uri_param<'e>(event: &'e Event, arg: &FieldArg) -> Option<Value<'e>> {
    let FieldArg::Key(key) = arg else {
        return None;
    };
    let uri = audit(event)?.get("requestURI")?.as_str()?;
    let (_, query) = uri.split_once('?')?;
    query
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(name, _)| *name == key)
        .map(|(_, value)| Value::Str(percent_decode(value)))
}

/// Decodes `%XX` escapes and `+` (query strings encode spaces either way).
fn percent_decode(text: &str) -> Cow<'_, str> {
    if !text.contains(['%', '+']) {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'+' => decoded.push(b' '),
            b'%' if index + 2 < bytes.len() => {
                let hex = |byte: u8| (byte as char).to_digit(16);
                match (hex(bytes[index + 1]), hex(bytes[index + 2])) {
                    (Some(high), Some(low)) => {
                        decoded.push((high * 16 + low) as u8);
                        index += 2;
                    }
                    _ => decoded.push(b'%'),
                }
            }
            byte => decoded.push(byte),
        }
        index += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&decoded).into_owned())
}

fn json_at<'e>(event: &'e Event, pointer: &str) -> Option<Value<'e>> {
    let json = audit(event)?.pointer(pointer)?;
    match json {
        Json::Array(_) | Json::Object(_) => Some(Value::Str(Cow::Owned(json.to_string()))),
        _ => scalar(json),
    }
}

#[cfg(test)]
mod tests {
    use crate::k8saudit::{percent_decode, repository};

    #[test]
    fn repository_drops_tag_and_digest_but_not_registry_port() {
        assert_eq!(repository("nginx:1.27"), "nginx");
        assert_eq!(
            repository("docker.io/library/nginx"),
            "docker.io/library/nginx"
        );
        assert_eq!(
            repository("registry:5000/team/app:v1"),
            "registry:5000/team/app"
        );
        assert_eq!(
            repository("falcosecurity/falco@sha256:abcd"),
            "falcosecurity/falco"
        );
    }

    #[test]
    fn percent_decoding_handles_truncated_escapes() {
        assert_eq!(percent_decode("a%20b+c"), "a b c");
        assert_eq!(percent_decode("%2"), "%2");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("plain"), "plain");
        assert_eq!(percent_decode("%é"), "%é");
    }
}
