//! Firewall alerts through the real API and SQLite store (issue 8): attempts aggregate per
//! flow (source, destination, port and protocol, cluster) and UTC day whichever rule decided
//! them, and the open connections an agent lists after a rule change are served per rule at
//! `/api/v1/firewall-rules/{id}/open-connections` and on the console's rule page.

mod support;

use palisade_model::{
    AffectedAsset, ConnectionDirection, Details, FindingReport, FirewallDetails, OpenConnection,
    Severity, Timestamp,
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::Server;
use uuid::Uuid;

const ADMIN: &str = "firewall-api-test-admin-token";
const DAY_MS: i64 = 86_400_000;

impl Server {
    /// Sends `reports` as the agent's batch number `sequence`.
    async fn send(&self, agent: &str, sequence: u64, reports: &[FindingReport]) {
        let (status, body) = self
            .post(
                "/api/v1/agent/batches",
                agent,
                &json!({"sequence": sequence, "reports": reports}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    /// Every firewall alert of cluster `prod`.
    async fn firewall_alerts(&self) -> Vec<Value> {
        let (status, page) = self
            .get("/api/v1/firewall-alerts?cluster=prod&limit=100", ADMIN)
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        page["items"].as_array().unwrap().clone()
    }
}

/// A firewall alert of shop/web's connects to shop/db on `port`/TCP at `at`, decided by rule
/// `rule` in `mode`, standing for `attempts`.
fn attempts(rule: &str, mode: &str, port: u16, at: i64, attempts: u32) -> FindingReport {
    FindingReport {
        id: Uuid::now_v7(),
        observed_at: Timestamp(at),
        severity: if mode == "block" {
            Severity::High
        } else {
            Severity::Medium
        },
        rule: rule.into(),
        title: format!("{rule}: shop/web -> shop/db {port}/TCP {mode}"),
        asset: AffectedAsset {
            cluster: "prod".into(),
            node: Some("node-1".into()),
            namespace: Some("shop".into()),
            pod: Some("web".into()),
            ..Default::default()
        },
        details: Details::FirewallAlert(FirewallDetails {
            source: "shop/web".into(),
            destination: "shop/db".into(),
            destination_object: "db".into(),
            port,
            protocol: "TCP".into(),
            mode: mode.into(),
            rule_id: Some(rule.into()),
            trace: vec![format!("palisade rule {rule:?} matched: {mode}")],
            attempts,
            ..Default::default()
        }),
        demo: false,
    }
}

/// Two rules deciding the same flow on one day are one alert with the attempts summed, which
/// shows the rule that decided last and its trace; the next UTC day and another port are
/// alerts of their own.
#[tokio::test]
async fn attempts_of_one_flow_and_day_are_one_alert_whatever_rule_decided() {
    let server = Server::start(ADMIN).await;
    let agent = server.agent().await;
    let day = 1_764_460_800_000; // 2025-11-30T00:00:00Z
    server
        .send(
            &agent,
            1,
            &[attempts("deny-db", "block", 5432, day + 10 * 3_600_000, 3)],
        )
        .await;
    server
        .send(
            &agent,
            2,
            &[
                attempts("watch-db", "alert", 5432, day + 11 * 3_600_000, 2),
                attempts("deny-db", "block", 5432, day + DAY_MS + 60_000, 4),
                attempts("deny-db", "block", 5433, day + 12 * 3_600_000, 1),
            ],
        )
        .await;
    let alerts = server.firewall_alerts().await;
    assert_eq!(alerts.len(), 3, "{alerts:#?}");
    let of = |port: u16, first_seen_day: i64| {
        alerts
            .iter()
            .find(|alert| {
                alert["details"]["port"] == port
                    && Timestamp::parse_rfc3339(alert["first_seen"].as_str().unwrap())
                        .unwrap()
                        .day()
                        == first_seen_day
            })
            .unwrap_or_else(|| {
                panic!("no alert for port {port} on day {first_seen_day}: {alerts:#?}")
            })
    };
    let today = Timestamp(day).day();
    let both_rules = of(5432, today);
    assert_eq!(both_rules["count"], 5, "3 + 2 attempts: {both_rules}");
    assert_eq!(
        both_rules["details"]["rule_id"], "watch-db",
        "the rule that decided last: {both_rules}"
    );
    assert_eq!(both_rules["details"]["mode"], "alert", "{both_rules}");
    assert_eq!(
        both_rules["details"]["trace"][0], "palisade rule \"watch-db\" matched: alert",
        "{both_rules}"
    );
    assert_eq!(
        both_rules["severity"], "high",
        "the day's highest: {both_rules}"
    );
    assert_eq!(of(5432, today + 1)["count"], 4, "the next UTC day");
    assert_eq!(of(5433, today)["count"], 1, "another port");
}

/// `report` as the flow's other end reports it: from shop/db's pod.
fn from_db_pod(mut report: FindingReport) -> FindingReport {
    report.asset.pod = Some("db".into());
    report
}

/// A flow's finding keeps the identity of its first report, whichever pod and rule sent it
/// (its `rule`, title and asset), and shows the latest report's decision in its details
/// (`rule_id`, mode, trace): alike whether the reports come in one batch or in two.
#[tokio::test]
async fn a_flow_alert_keeps_its_first_identity_and_shows_the_latest_decision() {
    let server = Server::start(ADMIN).await;
    let agent = server.agent().await;
    let at = 1_764_460_800_000 + 10 * 3_600_000;
    let first = |port| attempts("deny-db", "block", port, at, 3);
    let latest = |port| from_db_pod(attempts("watch-db", "alert", port, at + 60_000, 2));
    // Port 5432: both in one batch; port 5433: one batch each.
    server
        .send(&agent, 1, &[first(5432), latest(5432), first(5433)])
        .await;
    server.send(&agent, 2, &[latest(5433)]).await;
    let alerts = server.firewall_alerts().await;
    assert_eq!(alerts.len(), 2, "{alerts:#?}");
    let web = first(5432).asset;
    for port in [5432, 5433] {
        let alert = alerts
            .iter()
            .find(|alert| alert["details"]["port"] == port)
            .unwrap_or_else(|| panic!("no alert for port {port}: {alerts:#?}"));
        assert_eq!(alert["count"], 5, "{alert}");
        assert_eq!(alert["rule"], "deny-db", "the first report's rule: {alert}");
        assert_eq!(
            alert["title"],
            first(port).title,
            "the first report's: {alert}"
        );
        assert_eq!(alert["asset_id"], web.asset_id().to_string(), "{alert}");
        assert_eq!(
            alert["asset"]["pod"], "web",
            "the first report's pod: {alert}"
        );
        assert_eq!(alert["details"]["rule_id"], "watch-db", "{alert}");
        assert_eq!(alert["details"]["mode"], "alert", "{alert}");
        assert_eq!(
            alert["details"]["trace"][0], "palisade rule \"watch-db\" matched: alert",
            "{alert}"
        );
    }
    // The rule column is what the list filters on: the first report's.
    for (rule, expected) in [("deny-db", 2), ("watch-db", 0)] {
        let (status, page) = server
            .get(
                &format!("/api/v1/firewall-alerts?cluster=prod&limit=100&rule={rule}"),
                ADMIN,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(
            page["items"].as_array().unwrap().len(),
            expected,
            "{rule}: {page}"
        );
    }
}

/// During a rolling upgrade an older block-mode agent reports a connection it closed as
/// `<rule>: open connection closed` without `open_connection`: a finding of its own, which
/// adds no attempt to its flow's.
#[tokio::test]
async fn an_older_agents_closed_connection_is_not_an_attempt_of_its_flow() {
    let server = Server::start(ADMIN).await;
    let agent = server.agent().await;
    let at = 1_764_460_800_000 + 10 * 3_600_000;
    let legacy = attempts(
        &FirewallDetails::open_connection_alert_name("deny-db", true),
        "block",
        5432,
        at + 1_000,
        1,
    );
    server
        .send(
            &agent,
            1,
            &[attempts("deny-db", "block", 5432, at, 3), legacy],
        )
        .await;
    let alerts = server.firewall_alerts().await;
    assert_eq!(alerts.len(), 2, "{alerts:#?}");
    let count_of = |rule: &str| {
        alerts
            .iter()
            .find(|alert| alert["rule"] == rule)
            .unwrap_or_else(|| panic!("no alert {rule}: {alerts:#?}"))["count"]
            .clone()
    };
    assert_eq!(count_of("deny-db"), 3, "the flow's attempts alone");
    assert_eq!(count_of("deny-db: open connection closed"), 1);
}

/// An open connection rule `rule` refuses, listed by the agent at `at`.
fn open_connection(rule: &str, local_port: u16, closed: bool, at: i64) -> FindingReport {
    let mut report = attempts(
        &FirewallDetails::open_connection_alert_name(rule, closed),
        if closed { "block" } else { "alert" },
        5432,
        at,
        1,
    );
    if let Details::FirewallAlert(details) = &mut report.details {
        details.rule_id = Some(rule.into());
        details.open_connection = Some(OpenConnection {
            direction: ConnectionDirection::Outbound,
            local: format!("10.0.0.1:{local_port}"),
            peer: "10.0.0.2:5432".into(),
            closed,
        });
    }
    report
}

/// The open connections an agent listed for a rule since its last change are served per
/// rule (viewers may read them, nobody anonymous), with node, pod, peer, port, protocol,
/// direction, since when and whether closed; a listing from before the change, another
/// rule's and the rule's attempts are not; the OpenAPI document has the route; the console's
/// rule page shows them.
#[tokio::test]
async fn the_open_connections_a_rule_refuses_are_listed_per_rule_since_its_change() {
    let server = Server::start(ADMIN).await;
    let agent = server.agent().await;
    let (status, rule) = server
        .post(
            "/api/v1/firewall-rules",
            ADMIN,
            &json!({"name": "deny-db", "source": "web", "destination": "db",
                    "ports": [{"start": 5432, "end": 5432}], "protocol": "TCP",
                    "action": "block", "priority": 1, "enabled": true}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{rule}");
    let id = rule["id"].as_str().unwrap();
    let changed = Timestamp::parse_rfc3339(rule["updated_at"].as_str().unwrap())
        .unwrap()
        .millis();
    server
        .send(
            &agent,
            1,
            &[
                open_connection("deny-db", 40_000, true, changed + 1),
                open_connection("deny-db", 40_001, false, changed + 2),
                // Listed before the change: not shown.
                open_connection("deny-db", 40_002, true, changed - 60_000),
                open_connection("another-rule", 40_003, true, changed + 1),
                attempts("deny-db", "block", 5432, changed + 1, 7),
            ],
        )
        .await;

    let path = format!("/api/v1/firewall-rules/{id}/open-connections");
    let viewer = server.token("viewer of the test", "viewer").await;
    let (status, listed) = server.get(&path, &viewer).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(listed["truncated"], false, "{listed}");
    let connections = listed["connections"].as_array().unwrap();
    assert_eq!(connections.len(), 2, "{listed:#}");
    // Latest listed first.
    let (left_open, closed) = (&connections[0], &connections[1]);
    assert_eq!(closed["local"], "10.0.0.1:40000", "{closed}");
    assert_eq!(closed["closed"], true, "{closed}");
    assert_eq!(left_open["local"], "10.0.0.1:40001", "{left_open}");
    assert_eq!(left_open["closed"], false, "{left_open}");
    for connection in connections {
        assert_eq!(connection["cluster"], "prod", "{connection}");
        assert_eq!(connection["node"], "node-1", "{connection}");
        assert_eq!(connection["namespace"], "shop", "{connection}");
        assert_eq!(connection["pod"], "web", "{connection}");
        assert_eq!(connection["direction"], "outbound", "{connection}");
        assert_eq!(connection["peer"], "10.0.0.2:5432", "{connection}");
        assert_eq!(connection["peer_workload"], "shop/db", "{connection}");
        assert_eq!(connection["port"], 5432, "{connection}");
        assert_eq!(connection["protocol"], "TCP", "{connection}");
        assert!(connection["first_seen"].is_string(), "{connection}");
        assert!(connection["finding_id"].is_string(), "{connection}");
    }

    // Roles as for the other firewall routes: nobody anonymous, an unknown rule is not found.
    let anonymous = server
        .client
        .get(format!("{}{path}", server.running.base))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let (status, _) = server
        .get(
            &format!("/api/v1/firewall-rules/{}/open-connections", Uuid::now_v7()),
            &viewer,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, document) = server.get("/api/openapi.json", ADMIN).await;
    assert!(
        document["paths"]["/api/v1/firewall-rules/{id}/open-connections"]["get"].is_object(),
        "the route is in the OpenAPI document"
    );

    // The console's rule page lists them.
    let page = console_page(&server, &format!("/console/firewall-rules/{id}")).await;
    assert!(
        page.contains("Open connections this rule refuses"),
        "{page}"
    );
    assert!(
        page.contains("10.0.0.1:40000") && page.contains("10.0.0.1:40001"),
        "{page}"
    );
    assert!(!page.contains("10.0.0.1:40002"), "{page}");
    assert!(
        page.contains("left open") && page.contains(">closed<"),
        "{page}"
    );

    // After the next change (later than every listing above), only what the agents list
    // from then on.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let mut edited = rule.clone();
    edited["action"] = json!("alert");
    for field in ["id", "updated_by", "updated_at", "demo"] {
        edited.as_object_mut().unwrap().remove(field);
    }
    let response = server
        .client
        .put(format!(
            "{}/api/v1/firewall-rules/{id}",
            server.running.base
        ))
        .bearer_auth(ADMIN)
        .json(&edited)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let (_, listed) = server.get(&path, &viewer).await;
    assert_eq!(listed["connections"], json!([]), "{listed}");
}

/// The console page at `path`, read by an admin logged in with the admin token.
async fn console_page(server: &Server, path: &str) -> String {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let base = &server.running.base;
    let cookie = support::console_login(&client, base, ADMIN, "/console/clusters").await;
    let response = client
        .get(format!("{base}{path}"))
        .header(reqwest::header::COOKIE, cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.text().await.unwrap()
}
