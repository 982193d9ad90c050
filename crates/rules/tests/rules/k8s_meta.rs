//! The `k8s.*` fields that come from the Kubernetes API server (`Event::k8s_meta`, attached
//! by the agent's cache): pod labels and IP, namespace, replica set, deployment, replication
//! controller and services — names, uids, `label[key]`, `label.key` and `labels`. Without the
//! metadata every one of them is absent: checks are false, `exists` is false and outputs show
//! `<NA>`, as in Falco.

use palisade_rules::EngineConfig;

use crate::support::{check_fires, ev, fires, run};

/// An exec in pod `web-7d9f-x2` (deployment `web`, through replica set `web-7d9f`) of
/// namespace `shop`, selected by two services.
const IN_POD: &str = r#"{"kind":"execve","process":{"pid":9,"tid":9,"name":"sh"},
  "container":{"id":"c1","k8s":{"pod_name":"web-7d9f-x2","namespace":"shop","pod_uid":"p-1"}},
  "k8s_meta":{
    "pod":{"name":"web-7d9f-x2","uid":"p-1",
           "labels":[["app","web"],["pod-template-hash","7d9f"],["tier","front end"]]},
    "pod_ip":"10.244.1.7",
    "namespace":{"name":"shop","uid":"ns-1","labels":[["env","prod"],["team",""]]},
    "replica_set":{"name":"web-7d9f","uid":"rs-1","labels":[["app","web"]]},
    "deployment":{"name":"web","uid":"d-1","labels":[["app.kubernetes.io/name","web"]]},
    "services":[{"name":"web","uid":"s-1","labels":[["expose","public"]]},
                {"name":"web-internal","uid":"s-2","labels":[["expose","mesh"]]}]}}"#;

/// A pod of a replication controller, no service.
const IN_RC_POD: &str = r#"{"kind":"execve","process":{"pid":9,"tid":9,"name":"sh"},
  "container":{"id":"c2","k8s":{"pod_name":"old-abcde","namespace":"legacy","pod_uid":"p-2"}},
  "k8s_meta":{"pod":{"name":"old-abcde","uid":"p-2"},
    "replication_controller":{"name":"old","uid":"rc-1","labels":[["gen","1"]]}}}"#;

/// The same pod before the API server's metadata arrived (or without an API server).
const WITHOUT: &str = r#"{"kind":"execve","process":{"pid":9,"tid":9,"name":"sh"},
  "container":{"id":"c1","k8s":{"pod_name":"web-7d9f-x2","namespace":"shop","pod_uid":"p-1"}}}"#;

#[test]
fn pod_labels_and_ip() {
    check_fires(&[
        ("k8s.pod.label[app] = web", IN_POD, true),
        ("k8s.pod.label.app = web", IN_POD, true),
        ("k8s.pod.label[tier] = \"front end\"", IN_POD, true),
        ("k8s.pod.label[missing] exists", IN_POD, false),
        (
            "k8s.pod.labels = \"app:web, pod-template-hash:7d9f, tier:front end\"",
            IN_POD,
            true,
        ),
        ("k8s.pod.ip = 10.244.1.7", IN_POD, true),
        ("k8s.pod.ip exists", IN_RC_POD, false),
        ("k8s.pod.name = web-7d9f-x2", WITHOUT, true),
        ("k8s.pod.label[app] exists", WITHOUT, false),
        ("k8s.pod.labels exists", WITHOUT, false),
        ("k8s.pod.ip exists", WITHOUT, false),
    ]);
}

#[test]
fn namespace_uid_and_labels() {
    check_fires(&[
        ("k8s.ns.name = shop", IN_POD, true),
        ("k8s.ns.id = ns-1", IN_POD, true),
        ("k8s.ns.label.env = prod", IN_POD, true),
        ("k8s.ns.label[team] = \"\"", IN_POD, true),
        ("k8s.ns.labels = \"env:prod, team\"", IN_POD, true),
        ("k8s.ns.id exists", IN_RC_POD, false),
        ("k8s.ns.id exists", WITHOUT, false),
        ("k8s.ns.label[env] exists", WITHOUT, false),
    ]);
}

#[test]
fn owners_replica_set_deployment_and_replication_controller() {
    check_fires(&[
        ("k8s.rs.name = web-7d9f and k8s.rs.id = rs-1", IN_POD, true),
        (
            "k8s.rs.label[app] = web and k8s.rs.labels = app:web",
            IN_POD,
            true,
        ),
        (
            "k8s.deployment.name = web and k8s.deployment.id = d-1",
            IN_POD,
            true,
        ),
        (
            "k8s.deployment.label[app.kubernetes.io/name] = web",
            IN_POD,
            true,
        ),
        ("k8s.rc.name exists", IN_POD, false),
        ("k8s.rc.name = old and k8s.rc.id = rc-1", IN_RC_POD, true),
        (
            "k8s.rc.label.gen = 1 and k8s.rc.labels = gen:1",
            IN_RC_POD,
            true,
        ),
        (
            "k8s.rs.name exists or k8s.deployment.name exists",
            IN_RC_POD,
            false,
        ),
        ("k8s.deployment.name in (web, api)", WITHOUT, false),
        ("not k8s.rs.id exists", WITHOUT, true),
    ]);
}

#[test]
fn services_are_every_service_that_selects_the_pod() {
    check_fires(&[
        ("k8s.svc.name = web", IN_POD, true),
        ("k8s.svc.name = web-internal", IN_POD, true),
        ("k8s.svc.name in (api, web-internal)", IN_POD, true),
        ("k8s.svc.name = api", IN_POD, false),
        ("k8s.svc.id = s-2", IN_POD, true),
        ("k8s.svc.label[expose] = mesh", IN_POD, true),
        ("k8s.svc.label.expose = public", IN_POD, true),
        ("k8s.svc.labels contains mesh", IN_POD, true),
        ("k8s.svc.name exists", IN_RC_POD, false),
        ("k8s.svc.name exists", WITHOUT, false),
    ]);
}

#[test]
fn outputs_show_the_values_and_na_without_them() {
    let rules = "- rule: Shell in pod\n  desc: d\n  condition: evt.type = execve\n  \
                 output: \"pod=%k8s.pod.name app=%k8s.pod.label[app] ip=%k8s.pod.ip \
                 ns=%k8s.ns.id deploy=%k8s.deployment.name svc=%k8s.svc.name\"\n  \
                 priority: WARNING\n";
    let out = run(
        &[rules],
        &EngineConfig::default(),
        &[ev(IN_POD), ev(WITHOUT)],
    );
    assert_eq!(
        out,
        "0: Shell in pod: pod=web-7d9f-x2 app=web ip=10.244.1.7 ns=ns-1 deploy=web \
         svc=web,web-internal\n\
         1: Shell in pod: pod=web-7d9f-x2 app=<NA> ip=<NA> ns=<NA> deploy=<NA> svc=<NA>"
    );
}

/// The k8smeta plugin's names (Falco 0.37+): the same metadata, labels as lists of
/// `key:value`, services as lists; its example rule, with the plugin required, loads and fires.
#[test]
fn k8smeta_plugin_fields() {
    check_fires(&[
        (
            "k8smeta.pod.name = web-7d9f-x2 and k8smeta.pod.uid = p-1",
            IN_POD,
            true,
        ),
        (
            "k8smeta.pod.label[app] = web and k8smeta.pod.ip = 10.244.1.7",
            IN_POD,
            true,
        ),
        ("k8smeta.pod.labels intersects (app:web, x:y)", IN_POD, true),
        ("k8smeta.pod.labels = \"app:web\"", IN_POD, true),
        (
            "k8smeta.ns.name = shop and k8smeta.ns.uid = ns-1",
            IN_POD,
            true,
        ),
        ("k8smeta.ns.labels in (\"team:\")", IN_POD, true),
        (
            "k8smeta.deployment.uid = d-1 and k8smeta.rs.uid = rs-1",
            IN_POD,
            true,
        ),
        (
            "k8smeta.rc.uid = rc-1 and k8smeta.rc.labels = gen:1",
            IN_RC_POD,
            true,
        ),
        ("k8smeta.svc.name = web-internal", IN_POD, true),
        ("k8smeta.svc.label[expose] = public", IN_POD, true),
        ("k8smeta.svc.labels contains mesh", IN_POD, true),
        ("k8smeta.pod.labels exists", IN_RC_POD, false),
        ("k8smeta.pod.uid exists", WITHOUT, false),
    ]);
    let rules = "- required_plugin_versions:\n    - name: k8smeta\n      version: 0.1.0\n\
                 - rule: Example rule for k8smeta plugin\n  desc: Detect execve events into pods\n  \
                 condition: evt.type = execve and k8smeta.pod.uid != \"\"\n  \
                 output: -> Triggered (pod_name=%k8smeta.pod.name pod_id=%k8smeta.pod.uid \
                 pod_namespace_name=%k8smeta.ns.name pod_deployment_name=%k8smeta.deployment.name \
                 pod_rs_name=%k8smeta.rs.name pod_services_names=%k8smeta.svc.name)\n  \
                 priority: WARNING\n";
    let out = run(
        &[rules],
        &EngineConfig::default(),
        &[ev(IN_POD), ev(WITHOUT)],
    );
    assert_eq!(
        out,
        "0: Example rule for k8smeta plugin: -> Triggered (pod_name=web-7d9f-x2 pod_id=p-1 \
         pod_namespace_name=shop pod_deployment_name=web pod_rs_name=web-7d9f \
         pod_services_names=web,web-internal)\n1: -"
    );
}

/// A pod with the recommended labels, whose keys hold '/', '.' and '-' (sorted by key, as
/// the cache keeps them).
const IN_LABELLED_POD: &str = r#"{"kind":"execve","process":{"pid":9,"tid":9,"name":"sh"},
  "container":{"id":"c3","k8s":{"pod_name":"shop-0","namespace":"shop","pod_uid":"p-3"}},
  "k8s_meta":{
    "pod":{"name":"shop-0","uid":"p-3","labels":[["app.kubernetes.io","short"],
           ["app.kubernetes.io/name","shop"],["custom-label_one","c1"]]},
    "namespace":{"name":"shop","uid":"ns-1",
                 "labels":[["kubernetes.io/metadata.name","shop"]]}}}"#;

/// Label keys with '/' or '-' as Falco takes them: in a condition only in brackets (libsinsp's
/// field-name lexer is `[a-zA-Z][a-zA-Z0-9_]*` parts joined by '.', so the dotted form stops
/// at the '/' and the condition is refused), and the dotted form of a key without them; in an
/// output also dotted, as the k8s filtercheck reads its key (letters, digits, '/', '_', '-'
/// and '.').
#[test]
fn label_keys_with_slashes_and_dashes() {
    check_fires(&[
        (
            "k8s.pod.label[app.kubernetes.io/name] = shop",
            IN_LABELLED_POD,
            true,
        ),
        (
            "k8s.pod.label['app.kubernetes.io/name'] = shop",
            IN_LABELLED_POD,
            true,
        ),
        (
            "k8s.pod.label[custom-label_one] = c1",
            IN_LABELLED_POD,
            true,
        ),
        (
            "k8s.pod.label.app.kubernetes.io = short",
            IN_LABELLED_POD,
            true,
        ),
        (
            "k8s.ns.label[kubernetes.io/metadata.name] = shop",
            IN_LABELLED_POD,
            true,
        ),
        (
            "k8s.ns.label[kubernetes.io/metadata.name] = shop",
            WITHOUT,
            false,
        ),
    ]);
    for (condition, message) in [
        (
            "k8s.pod.label.app.kubernetes.io/name = shop",
            "'k8s.pod.label.app.kubernetes.io/name': a field name in a condition holds only \
             letters, digits, '_' and '.' (as in Falco); write a key with '/' or '-' in \
             brackets: k8s.pod.label[app.kubernetes.io/name]",
        ),
        (
            "k8s.ns.label.kubernetes.io/metadata.name = shop",
            "k8s.ns.label[kubernetes.io/metadata.name]",
        ),
        (
            "k8s.pod.label.custom-label_one exists",
            "k8s.pod.label[custom-label_one]",
        ),
    ] {
        let errors = fires(condition, IN_LABELLED_POD).expect_err(condition);
        assert!(errors.contains(message), "{condition}: {errors}");
    }
    let rules = "- rule: Labelled pod\n  desc: d\n  condition: evt.type = execve\n  \
                 output: \"name=%k8s.pod.label.app.kubernetes.io/name \
                 ns=%k8s.ns.label.kubernetes.io/metadata.name. \
                 custom=%k8s.pod.label.custom-label_one short=%k8s.pod.label.app.kubernetes.io \
                 bracket=%k8s.pod.label[app.kubernetes.io/name]/x\"\n  priority: WARNING\n";
    let out = run(
        &[rules],
        &EngineConfig::default(),
        &[ev(IN_LABELLED_POD), ev(WITHOUT)],
    );
    assert_eq!(
        out,
        "0: Labelled pod: name=shop ns=shop. custom=c1 short=short bracket=shop/x\n\
         1: Labelled pod: name=<NA> ns=<NA>. custom=<NA> short=<NA> bracket=<NA>/x"
    );
}
