//! The Kubernetes audit webhook over a real socket: the audit scenarios of
//! `crates/rules/scenarios/k8s_audit.yaml` (audit.k8s.io/v1 events as kube-apiserver writes
//! them) posted as the webhook backend posts them, the alerts they raise in the store, and
//! hostile bodies.

mod support;

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::Server;

const ADMIN: &str = "test-admin-token-k8s-audit-0123";
const WEBHOOK: &str = "/api/v1/k8s-audit";

impl Server {
    /// A server whose webhook runs only the rules of `text` (a rules file).
    async fn with_rules(text: &str) -> Server {
        let rule_set = palisade_rules::RuleSet::load(&[palisade_rules::RuleSource {
            name: "custom_k8s_audit_rules.yaml".into(),
            text: text.into(),
        }]);
        assert!(rule_set.errors().is_empty(), "{:?}", rule_set.errors());
        let rules = palisade_server::AuditRules::new(rule_set);
        Server::serving(
            support::start_with(ADMIN, move |state| assert!(state.set_audit_rules(rules))).await,
            ADMIN,
        )
    }

    /// POSTs `body` (raw bytes, JSON content type) with `token`.
    async fn post_raw(
        &self,
        path: &str,
        token: Option<&str>,
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base()))
            .header("content-type", "application/json")
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        support::read(request.send().await.unwrap()).await
    }

    /// `GET path` as the admin: the JSON answer, which must be 200.
    async fn admin_json(&self, path: &str) -> Value {
        let response = self
            .client
            .get(format!("{}{path}", self.base()))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    /// Enrols the API server of cluster `prod` as the webhook's agent: its agent token.
    async fn api_server_token(&self) -> String {
        self.enroll("kube-apiserver", "control-plane-1").await.token
    }
}

fn event_list(items: Vec<Value>) -> Value {
    json!({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": {}, "items": items})
}

fn scenarios() -> Vec<palisade_rules::Scenario> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../rules/scenarios/k8s_audit.yaml"
    );
    palisade_rules::parse_scenarios(path, &std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Every audit scenario in one webhook batch: the alerts stored are exactly the rules the
/// scenarios expect, in the token's cluster, located at the audited object, with the audit
/// event as the raw event.
#[tokio::test]
async fn audit_scenarios_through_the_webhook_become_stored_alerts() {
    let server = Server::start(ADMIN).await;
    let token = server.api_server_token().await;
    let scenarios = scenarios();
    assert!(scenarios.len() >= 8);
    let items: Vec<Value> = scenarios
        .iter()
        .flat_map(|scenario| scenario.audit.clone())
        .collect();
    let expected: BTreeSet<&str> = scenarios
        .iter()
        .flat_map(|scenario| scenario.expect.fire.iter().map(String::as_str))
        .collect();

    let (status, ack) = server
        .post(WEBHOOK, &token, &event_list(items.clone()))
        .await;
    assert_eq!(status, StatusCode::OK, "{ack}");
    assert_eq!(ack["events"], items.len());
    assert!(
        ack["alerts"].as_u64().unwrap() >= expected.len() as u64,
        "{ack}"
    );

    let page = server.admin_json("/api/v1/alerts?limit=200").await;
    let alerts = page["items"].as_array().unwrap();
    let fired: BTreeSet<&str> = alerts
        .iter()
        .map(|alert| alert["rule"].as_str().unwrap())
        .collect();
    assert_eq!(fired, expected);
    assert!(
        alerts
            .iter()
            .all(|alert| alert["asset"]["cluster"] == "prod")
    );

    let exec = alerts
        .iter()
        .find(|alert| alert["rule"] == "Exec or attach into pod")
        .unwrap();
    assert_eq!(exec["asset"]["namespace"], "shop");
    assert_eq!(exec["asset"]["pod"], "web-7d9f8b6c5-x2x4q");
    let id = exec["id"].as_str().unwrap();
    let details = server.admin_json(&format!("/api/v1/alerts/{id}")).await;
    let text = details.to_string();
    assert!(
        text.contains("9b5e2f8a-7c1d-4c3e-8f7a-1d2e3f4a5b6c"),
        "the raw event holds the audit event: {text}"
    );
    assert!(text.contains("alice@example.com"), "{text}");
    assert!(text.contains("T1609"), "MITRE technique: {text}");

    // The API server retries and resends: the same events aggregate into the same findings.
    let (status, again) = server.post(WEBHOOK, &token, &event_list(items)).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["created"], 0, "{again}");
    assert_eq!(again["aggregated"], ack["alerts"], "{again}");
}

/// The server's rule files decide what the webhook raises: a custom `k8s_audit` rule fires on
/// the event it names, and without the default rules an exec into a pod raises nothing.
#[tokio::test]
async fn the_servers_rule_files_decide_what_the_webhook_raises() {
    let server = Server::with_rules(
        r#"
- rule: ConfigMap read in shop
  desc: Someone read a ConfigMap of the shop namespace.
  condition: ka.verb = get and ka.target.resource = configmaps and ka.target.namespace = shop
  output: "ConfigMap read (user=%ka.user.name configmap=%ka.target.name)"
  priority: WARNING
  source: k8s_audit
  tags: [high-risk-operation, k8s]
"#,
    )
    .await;
    let token = server.api_server_token().await;
    let read = json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
        "auditID": "5d0c3a8e-1b2f-4e6a-9c7d-0e1f2a3b4c5d", "stage": "ResponseComplete",
        "requestURI": "/api/v1/namespaces/shop/configmaps/settings", "verb": "get",
        "user": {"username": "bob@example.com", "groups": ["system:authenticated"]},
        "sourceIPs": ["192.0.2.11"],
        "objectRef": {"resource": "configmaps", "namespace": "shop", "name": "settings", "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": 200},
        "requestReceivedTimestamp": "2026-11-29T06:00:00.000000Z",
        "stageTimestamp": "2026-11-29T06:00:00.010000Z"
    });
    // An exec into a pod: the default rules would raise "Exec or attach into pod".
    let exec = scenarios()
        .into_iter()
        .find(|scenario| scenario.name == "kubectl exec into pod")
        .expect("the exec scenario")
        .audit;
    let mut items = vec![read];
    items.extend(exec);

    let (status, ack) = server.post(WEBHOOK, &token, &event_list(items)).await;
    assert_eq!(status, StatusCode::OK, "{ack}");
    assert_eq!(ack["alerts"], 1, "{ack}");
    let page = server.admin_json("/api/v1/alerts?limit=10").await;
    let alerts = page["items"].as_array().unwrap();
    assert_eq!(alerts.len(), 1, "{page}");
    assert_eq!(alerts[0]["rule"], "ConfigMap read in shop");
    assert_eq!(alerts[0]["asset"]["namespace"], "shop");
    assert_eq!(alerts[0]["severity"], "medium");
}

/// Only an enrolled agent token may post audit events.
#[tokio::test]
async fn the_webhook_needs_an_agent_token() {
    let server = Server::start(ADMIN).await;
    let body = serde_json::to_vec(&event_list(vec![])).unwrap();
    let (status, _) = server.post_raw(WEBHOOK, None, body.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = server
        .post_raw(WEBHOOK, Some("pal_nope_nope"), body.clone())
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    for role in ["viewer", "operator", "join"] {
        let token = server.token(role, role).await;
        let (status, error) = server.post_raw(WEBHOOK, Some(&token), body.clone()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{role}: {error}");
        assert!(error.to_string().contains("agent role"), "{error}");
    }
    let (status, error) = server.post_raw(WEBHOOK, Some(ADMIN), body.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{error}");
    let token = server.api_server_token().await;
    let (status, ack) = server.post_raw(WEBHOOK, Some(&token), body).await;
    assert_eq!(status, StatusCode::OK, "{ack}");
    assert_eq!(
        ack,
        json!({"events": 0, "alerts": 0, "created": 0, "aggregated": 0, "suppressed": 0})
    );
}

/// Malformed, oversized and foreign bodies are refused with a message naming the problem,
/// and store nothing.
#[tokio::test]
async fn hostile_bodies_are_refused_with_clear_errors() {
    let server = Server::start(ADMIN).await;
    let token = server.api_server_token().await;
    let secret_read = scenarios()
        .into_iter()
        .find(|scenario| scenario.name == "secret read")
        .unwrap()
        .audit[0]
        .clone();
    let mut no_stage = secret_read.clone();
    no_stage.as_object_mut().unwrap().remove("stage");
    let mut bad_time = secret_read.clone();
    bad_time["stageTimestamp"] = json!("yesterday");
    let mut v1beta1 = event_list(vec![secret_read.clone()]);
    v1beta1["apiVersion"] = json!("audit.k8s.io/v1beta1");
    let cases: Vec<(Vec<u8>, StatusCode, &str)> = vec![
        (
            b"{\"kind\":\"EventList\",".to_vec(),
            StatusCode::BAD_REQUEST,
            "JSON",
        ),
        (
            b"[1,2,3]".to_vec(),
            StatusCode::BAD_REQUEST,
            "expected a JSON object",
        ),
        (
            serde_json::to_vec(&v1beta1).unwrap(),
            StatusCode::BAD_REQUEST,
            "apiVersion 'audit.k8s.io/v1beta1' is not audit.k8s.io/v1",
        ),
        (
            serde_json::to_vec(&json!({"kind": "Pod", "apiVersion": "v1"})).unwrap(),
            StatusCode::BAD_REQUEST,
            "kind 'Pod' is not an audit Event",
        ),
        (
            serde_json::to_vec(&event_list(vec![secret_read.clone(), no_stage])).unwrap(),
            StatusCode::BAD_REQUEST,
            "items[1]: 'stage' is missing",
        ),
        (
            serde_json::to_vec(&event_list(vec![bad_time])).unwrap(),
            StatusCode::BAD_REQUEST,
            "'stageTimestamp' value 'yesterday' is not an RFC 3339 time",
        ),
        (
            serde_json::to_vec(&event_list(vec![json!({}); 10_001])).unwrap(),
            StatusCode::BAD_REQUEST,
            "more than the limit of 10000",
        ),
        (
            [
                b"{\"kind\":\"EventList\",\"apiVersion\":\"audit.k8s.io/v1\",\"pad\":\"".as_slice(),
                &vec![b'a'; 33 << 20],
                b"\",\"items\":[]}",
            ]
            .concat(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "length limit",
        ),
    ];
    for (body, status, message) in cases {
        let (got, error) = server.post_raw(WEBHOOK, Some(&token), body).await;
        assert_eq!(got, status, "{error}");
        assert!(
            error["error"]["message"]
                .as_str()
                .is_some_and(|text| text.contains(message)),
            "expected {message:?} in {error}"
        );
    }
    let page = server.admin_json("/api/v1/alerts").await;
    assert_eq!(page["items"], json!([]), "a refused batch stores nothing");
}
