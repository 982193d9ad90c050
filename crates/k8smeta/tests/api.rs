//! The client against a mock API server that speaks the real protocol
//! (`palisade_testdata::k8s_api`): lists in pages, watches as chunked newline-delimited streams
//! with bookmarks, 410 Gone, bearer tokens. Each test checks one family of `k8s.*` metadata or
//! one failure, through `PodMetaLookup::attach` on an event of the pod, as the agent's detection
//! thread does.

use std::{sync::Arc, time::Duration};

use palisade_event::{Container, Event, EventKind, K8sMeta, K8sPod, K8sProbe, ProbeKind};
use palisade_k8smeta::{ApiConfig, Limits, MetaSource, ResourceKind, Token, WatchSettings};
use serde_json::json;

use palisade_testdata::k8s_api::{
    DEPLOYMENTS, MockApi, NAMESPACES, PODS, REPLICA_SETS, REPLICATION_CONTROLLERS, SERVICES,
    object, pod, service,
};

fn settings(node: Option<&str>) -> WatchSettings {
    WatchSettings {
        node: node.map(str::to_owned),
        limits: Limits {
            // Small pages, so that lists take several requests.
            list_page: 2,
            ..Limits::default()
        },
        backoff_min: Duration::from_millis(20),
        backoff_max: Duration::from_millis(200),
        watch_server_timeout: Duration::from_secs(60),
        watch_idle_timeout: Duration::from_secs(90),
        connect_timeout: Duration::from_secs(2),
        list_timeout: Duration::from_secs(5),
    }
}

fn config(mock: &MockApi, token: Option<&str>) -> ApiConfig {
    ApiConfig {
        server: mock.url(),
        ca_pem: None,
        token: token.map(|token| Token::Fixed(token.to_owned())),
        identity_pem: None,
    }
}

/// An exec in the container of pod `namespace/name` with `uid`, as the CRI labels name it.
fn event_in(namespace: &str, name: &str, uid: &str) -> Event {
    let mut event = Event::new(EventKind::Execve);
    event.container = Some(Arc::new(Container {
        id: "c0ffee".into(),
        k8s: Some(K8sPod {
            pod_name: name.into(),
            namespace: namespace.into(),
            pod_uid: uid.into(),
            container_name: "app".into(),
        }),
        ..Container::default()
    }));
    event
}

fn meta_of(source: &MetaSource, event: &Event) -> Option<Arc<K8sMeta>> {
    let mut event = event.clone();
    source.lookup().attach(&mut event);
    event.k8s_meta
}

/// Waits up to 10 s for `condition`.
async fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    for _ in 0..500 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

/// A namespace `shop` with deployment `web` → replica set `web-7d9f` → pod `web-7d9f-x2` on
/// node-a, two services (one selecting the pod), a pod of a replication controller, and a pod
/// on another node.
fn populate(mock: &MockApi) {
    mock.put(
        NAMESPACES,
        object("Namespace", "", "shop", "ns-1", &[("env", "prod")], None),
    );
    mock.put(
        DEPLOYMENTS,
        object("Deployment", "shop", "web", "d-1", &[("app", "web")], None),
    );
    mock.put(
        REPLICA_SETS,
        object(
            "ReplicaSet",
            "shop",
            "web-7d9f",
            "rs-1",
            &[("app", "web"), ("pod-template-hash", "7d9f")],
            Some(("Deployment", "web", "d-1")),
        ),
    );
    let mut web = pod(
        "shop",
        "web-7d9f-x2",
        "p-1",
        "node-a",
        &[("app", "web"), ("pod-template-hash", "7d9f")],
        Some(("ReplicaSet", "web-7d9f", "rs-1")),
    );
    // Exec probes run a process; an HTTP probe is the kubelet's own request.
    web["spec"]["containers"] = json!([{"name": "app", "image": "nginx:1.27",
        "livenessProbe": {"exec": {"command": ["cat", "/tmp/healthy"]}, "periodSeconds": 5},
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}}}]);
    web["spec"]["initContainers"] = json!([{"name": "proxy", "image": "envoy:1.31",
        "restartPolicy": "Always",
        "readinessProbe": {"exec": {"command": ["/bin/sh", "-c", "test -f /ready"]}}}]);
    mock.put(PODS, web);
    mock.put(
        SERVICES,
        service(
            "shop",
            "web",
            "s-1",
            &[("expose", "public")],
            &[("app", "web")],
        ),
    );
    mock.put(
        SERVICES,
        service("shop", "api", "s-2", &[], &[("app", "api")]),
    );
    // Same selector, other namespace: selects nothing of shop's.
    mock.put(
        SERVICES,
        service("other", "web", "s-3", &[], &[("app", "web")]),
    );
    mock.put(
        REPLICATION_CONTROLLERS,
        object(
            "ReplicationController",
            "shop",
            "old",
            "rc-1",
            &[("gen", "1")],
            None,
        ),
    );
    mock.put(
        PODS,
        pod(
            "shop",
            "old-abcde",
            "p-2",
            "node-a",
            &[("gen", "1")],
            Some(("ReplicationController", "old", "rc-1")),
        ),
    );
    mock.put(
        PODS,
        pod(
            "shop",
            "elsewhere",
            "p-3",
            "node-b",
            &[("app", "web")],
            None,
        ),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_resolve_to_namespace_owners_and_services() {
    let mock = MockApi::start(Some("s3cret")).await;
    populate(&mock);
    let before_start = std::time::SystemTime::now();
    let source = MetaSource::start(
        &config(&mock, Some("s3cret")),
        settings(Some("node-a")),
        &tokio::runtime::Handle::current(),
    )
    .unwrap();
    wait_for("every kind listed", || source.synced()).await;

    let meta = meta_of(&source, &event_in("shop", "web-7d9f-x2", "p-1")).expect("pod p-1");
    assert_eq!(meta.pod.name, "web-7d9f-x2");
    assert_eq!(meta.pod.label("app"), Some("web"));
    assert_eq!(meta.pod_ip, "10.244.1.7");
    let probes: Vec<(&str, ProbeKind, &str, Vec<&str>)> = meta
        .probes
        .iter()
        .map(|K8sProbe { container, probe }| {
            let args = probe.args.iter().map(String::as_str).collect();
            (container.as_str(), probe.kind, probe.exe.as_str(), args)
        })
        .collect();
    assert_eq!(
        probes,
        [
            (
                "proxy",
                ProbeKind::ReadinessProbe,
                "/bin/sh",
                vec!["-c", "test -f /ready"]
            ),
            ("app", ProbeKind::LivenessProbe, "cat", vec!["/tmp/healthy"]),
        ],
        "the exec probes of the sidecar and the container, in the spec's order"
    );
    let namespace = meta.namespace.as_ref().unwrap();
    assert_eq!(
        (namespace.uid.as_str(), namespace.label("env")),
        ("ns-1", Some("prod"))
    );
    let replica_set = meta.replica_set.as_ref().unwrap();
    assert_eq!(
        (replica_set.name.as_str(), replica_set.uid.as_str()),
        ("web-7d9f", "rs-1")
    );
    let deployment = meta.deployment.as_ref().unwrap();
    assert_eq!(
        (deployment.name.as_str(), deployment.uid.as_str()),
        ("web", "d-1")
    );
    assert!(meta.replication_controller.is_none());
    let services: Vec<(&str, &str)> = meta
        .services
        .iter()
        .map(|service| (service.name.as_str(), service.uid.as_str()))
        .collect();
    assert_eq!(services, [("web", "s-1")]);

    let rc_pod = meta_of(&source, &event_in("shop", "old-abcde", "p-2")).expect("pod p-2");
    assert_eq!(rc_pod.replication_controller.as_ref().unwrap().uid, "rc-1");
    assert!(rc_pod.replica_set.is_none() && rc_pod.services.is_empty());
    assert!(rc_pod.probes.is_empty(), "a container without probes");

    // Pods of other nodes are not listed; a pod name with another uid is another pod.
    assert!(meta_of(&source, &event_in("shop", "elsewhere", "p-3")).is_none());
    assert!(meta_of(&source, &event_in("shop", "web-7d9f-x2", "p-old")).is_none());
    // Outside a pod nothing is attached.
    let mut host_event = Event::new(EventKind::Execve);
    source.lookup().attach(&mut host_event);
    assert!(host_event.k8s_meta.is_none());

    let requests = mock.requests();
    assert!(
        requests
            .iter()
            .any(|request| request.starts_with("/api/v1/pods?")
                && request.contains("fieldSelector=spec.nodeName=node-a")),
        "pods of this node only: {requests:?}"
    );
    assert!(
        requests
            .iter()
            .any(|request| request == "/api/v1/services?limit=2&continue=2"),
        "three services listed in pages of two: {requests:?}"
    );
    assert!(
        requests.iter().any(|request| request.contains("watch=1")
            && request.contains("allowWatchBookmarks=true")
            && request.contains("resourceVersion=")),
        "{requests:?}"
    );
    let stats = source.stats();
    assert_eq!(stats.lists, 6, "{stats:?}");
    assert_eq!(
        (stats.malformed, stats.oversized, stats.failures),
        (0, 0, 0),
        "{stats:?}"
    );
    assert!(stats.reachable && stats.synced, "{stats:?}");
    assert!(
        stats.last_sync.is_some_and(|at| at >= before_start),
        "{stats:?}"
    );
    let objects: Vec<(&str, usize)> = stats
        .objects
        .iter()
        .map(|(kind, count)| (kind.kind_name(), *count))
        .collect();
    assert_eq!(
        objects,
        [
            ("Pod", 2),
            ("Namespace", 1),
            ("ReplicaSet", 1),
            ("Deployment", 1),
            ("Service", 3),
            ("ReplicationController", 1)
        ],
        "this node's pods only"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_updates_reach_the_metadata() {
    let mock = MockApi::start(None).await;
    populate(&mock);
    let source = MetaSource::start(
        &config(&mock, None),
        settings(Some("node-a")),
        &tokio::runtime::Handle::current(),
    )
    .unwrap();
    wait_for("every kind listed", || source.synced()).await;
    let event = event_in("shop", "web-7d9f-x2", "p-1");
    let mut lookup = source.lookup();
    let label_of = |lookup: &mut palisade_k8smeta::PodMetaLookup| {
        let mut event = event.clone();
        lookup.attach(&mut event);
        event
            .k8s_meta
            .and_then(|meta| meta.pod.label("app").map(str::to_owned))
    };
    assert_eq!(label_of(&mut lookup).as_deref(), Some("web"));

    // A relabelled pod: the service no longer selects it, the other one does.
    mock.put(
        PODS,
        pod(
            "shop",
            "web-7d9f-x2",
            "p-1",
            "node-a",
            &[("app", "api")],
            Some(("ReplicaSet", "web-7d9f", "rs-1")),
        ),
    );
    wait_for("the new label", || {
        label_of(&mut lookup).as_deref() == Some("api")
    })
    .await;
    let meta = meta_of(&source, &event).unwrap();
    let services: Vec<&str> = meta.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(services, ["api"]);

    // A namespace label change, a deleted service, a new pod.
    mock.put(
        NAMESPACES,
        object("Namespace", "", "shop", "ns-1", &[("env", "staging")], None),
    );
    mock.delete(SERVICES, "shop", "api");
    mock.put(PODS, pod("shop", "new", "p-9", "node-a", &[], None));
    wait_for("the namespace label, the deletion and the new pod", || {
        let meta = meta_of(&source, &event).unwrap();
        meta.namespace.as_ref().unwrap().label("env") == Some("staging")
            && meta.services.is_empty()
            && meta_of(&source, &event_in("shop", "new", "p-9")).is_some()
    })
    .await;
    // The pod's deletion removes it.
    mock.delete(PODS, "shop", "web-7d9f-x2");
    wait_for("the pod's deletion", || meta_of(&source, &event).is_none()).await;
    assert_eq!(source.stats().relists_after_gone, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gone_resource_version_lists_again() {
    let mock = MockApi::start(None).await;
    populate(&mock);
    let source = MetaSource::start(
        &config(&mock, None),
        settings(Some("node-a")),
        &tokio::runtime::Handle::current(),
    )
    .unwrap();
    wait_for("every kind listed", || source.synced()).await;
    let event = event_in("shop", "web-7d9f-x2", "p-1");
    // A change the watch never reports, then the history compacted and the watches ended:
    // the client's version is gone (ERROR 410) and only a new list shows the change.
    mock.put_unwatched(
        DEPLOYMENTS,
        object(
            "Deployment",
            "shop",
            "web",
            "d-1",
            &[("app", "web"), ("v", "2")],
            None,
        ),
    );
    mock.compact_and_end_watches();
    wait_for("the list after 410", || {
        meta_of(&source, &event)
            .and_then(|meta| meta.deployment.clone())
            .is_some_and(|deployment| deployment.label("v") == Some("2"))
    })
    .await;
    wait_for("every kind listed again", || source.stats().lists >= 12).await;
    let stats = source.stats();
    assert!(stats.relists_after_gone >= 6, "{stats:?}");
    assert_eq!(stats.failures, 0, "a 410 is no failure: {stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_events_are_counted_and_skipped() {
    let mock = MockApi::start(None).await;
    populate(&mock);
    let mut settings = settings(Some("node-a"));
    settings.limits.max_object_bytes = 8192;
    settings.limits.max_labels = 8;
    let source = MetaSource::start(
        &config(&mock, None),
        settings,
        &tokio::runtime::Handle::current(),
    )
    .unwrap();
    wait_for("every kind listed", || source.synced()).await;

    mock.raw_line(PODS, "this is not json".into());
    mock.raw_line(
        PODS,
        json!({"type": "ADDED", "object": {"metadata": {}}}).to_string(),
    );
    mock.raw_line(PODS, json!({"type": "SIDEWAYS", "object": {}}).to_string());
    mock.raw_line(
        PODS,
        format!(
            r#"{{"type":"ADDED","object":{{"x":"{}"}}}}"#,
            "a".repeat(20_000)
        ),
    );
    let many_labels: Vec<(String, String)> =
        (0..20).map(|n| (format!("k{n}"), "v".to_owned())).collect();
    let many_labels: Vec<(&str, &str)> = many_labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    mock.put(
        PODS,
        pod("shop", "labelled", "p-7", "node-a", &many_labels, None),
    );
    // And then a good change, which still arrives.
    mock.put(
        PODS,
        pod("shop", "after", "p-8", "node-a", &[("ok", "yes")], None),
    );
    wait_for("the change after the bad events", || {
        meta_of(&source, &event_in("shop", "after", "p-8")).is_some()
    })
    .await;
    let stats = source.stats();
    assert_eq!(stats.malformed, 3, "{stats:?}");
    assert_eq!(stats.oversized, 2, "{stats:?}");
    assert!(meta_of(&source, &event_in("shop", "labelled", "p-7")).is_none());
    assert!(
        stats
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("more than 8 labels"),
        "{stats:?}"
    );
    // The known pods are still there.
    assert!(meta_of(&source, &event_in("shop", "web-7d9f-x2", "p-1")).is_some());
}

/// A role that may not list one kind: that kind is failing and the API server is not
/// reported reachable, while the other kinds' metadata still arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kind_the_role_may_not_list_makes_the_api_server_not_reachable() {
    let mock = MockApi::start(None).await;
    populate(&mock);
    mock.forbid(REPLICATION_CONTROLLERS);
    let source = MetaSource::start(
        &config(&mock, None),
        settings(Some("node-a")),
        &tokio::runtime::Handle::current(),
    )
    .unwrap();
    wait_for("the deployment's metadata and a failure", || {
        source.stats().failures >= 2
            && meta_of(&source, &event_in("shop", "web-7d9f-x2", "p-1"))
                .is_some_and(|meta| meta.deployment.is_some())
    })
    .await;
    let stats = source.stats();
    assert!(!stats.reachable && !stats.synced, "{stats:?}");
    assert_eq!(
        stats.failing,
        [ResourceKind::ReplicationController],
        "{stats:?}"
    );
    assert!(stats.last_sync.is_some(), "{stats:?}");
    assert!(
        stats.last_error.as_deref().unwrap_or("").contains("403"),
        "{stats:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_is_a_clear_error_and_leaves_the_fields_absent() {
    let mock = MockApi::start(Some("right")).await;
    populate(&mock);
    let source = MetaSource::start(
        &config(&mock, Some("wrong")),
        settings(Some("node-a")),
        &tokio::runtime::Handle::current(),
    )
    .unwrap();
    wait_for("failures", || source.stats().failures >= 6).await;
    let stats = source.stats();
    let error = stats.last_error.unwrap();
    assert!(
        error.contains("answered 401")
            && error.contains("Unauthorized")
            && error.contains("check the service-account token"),
        "{error}"
    );
    assert!(!source.synced());
    let stats = source.stats();
    assert!(
        !stats.reachable && !stats.synced && stats.last_sync.is_none(),
        "a refusing API server is not reachable: {stats:?}"
    );
    assert!(meta_of(&source, &event_in("shop", "web-7d9f-x2", "p-1")).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_a_clear_error_and_retried() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = ApiConfig {
        server: format!("http://127.0.0.1:{port}"),
        ca_pem: None,
        token: None,
        identity_pem: None,
    };
    let source =
        MetaSource::start(&config, settings(None), &tokio::runtime::Handle::current()).unwrap();
    wait_for("retries", || source.stats().failures >= 12).await;
    let stats = source.stats();
    let error = stats.last_error.clone().unwrap();
    assert!(
        error.contains("did not answer") && error.contains(&port.to_string()),
        "{error}"
    );
    assert!(
        !stats.reachable && stats.last_sync.is_none(),
        "nothing answered: {stats:?}"
    );
    assert!(
        stats.objects.iter().all(|(_, count)| *count == 0),
        "{stats:?}"
    );
    assert!(meta_of(&source, &event_in("shop", "web-7d9f-x2", "p-1")).is_none());
}

/// A CA and a certificate for 127.0.0.1 that it signed, as a cluster's API server has.
fn cluster_pki() -> (String, Arc<rustls::ServerConfig>) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "kubernetes");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let server_key = rcgen::KeyPair::generate().unwrap();
    let server = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![server.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(server_key.serialize_der().into()),
    )
    .unwrap();
    (ca.pem(), Arc::new(config))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_the_cluster_ca_of_a_kubeconfig_and_a_foreign_ca_refused() {
    use base64::Engine as _;
    let (ca_pem, tls) = cluster_pki();
    let mock = MockApi::start_tls(Some("s3cret"), tls).await;
    populate(&mock);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("config");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: kind\n\
             contexts: [{{name: kind, context: {{cluster: kind, user: agent}}}}]\n\
             clusters: [{{name: kind, cluster: {{server: '{}', certificate-authority-data: {}}}}}]\n\
             users: [{{name: agent, user: {{token: s3cret}}}}]\n",
            mock.https_url(),
            base64::engine::general_purpose::STANDARD.encode(&ca_pem)
        ),
    )
    .unwrap();
    let config = ApiConfig::from_kubeconfig(&kubeconfig).unwrap();
    let source = MetaSource::start(
        &config,
        settings(Some("node-a")),
        &tokio::runtime::Handle::current(),
    )
    .unwrap();
    wait_for("every kind listed over TLS", || source.synced()).await;
    let meta = meta_of(&source, &event_in("shop", "web-7d9f-x2", "p-1")).unwrap();
    assert_eq!(meta.deployment.as_ref().unwrap().name, "web");

    // The same server under another cluster's CA: refused, and said so.
    let (foreign_ca, _) = cluster_pki();
    let foreign = ApiConfig {
        ca_pem: Some(foreign_ca.into_bytes()),
        ..config
    };
    let refused = MetaSource::start(
        &foreign,
        settings(Some("node-a")),
        &tokio::runtime::Handle::current(),
    )
    .unwrap();
    wait_for("refusals", || refused.stats().failures >= 6).await;
    let error = refused.stats().last_error.unwrap();
    assert!(
        error.contains("did not answer") && error.to_lowercase().contains("certificate"),
        "{error}"
    );
    assert!(!refused.synced());
}
