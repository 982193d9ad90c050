//! The REST API over a real socket: authentication and roles, filters and pagination, grouped
//! listings, handling actions, whitelist rules, exceptions, the audit trail and hostile input.

mod support;

use std::{sync::Arc, time::Duration};

use palisade_model::{
    AffectedAsset, AgentBatch, AlertDetails, BaselineCategory, BaselineDetails, Details, Evidence,
    Finding, FindingReport, ProcessInfo, Severity, Status, Timestamp, VulnerabilityDetails,
};
use palisade_notify::Notifier;
use palisade_server::{AppState, router, serve};
use palisade_store::{SqliteStore, Store};
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use support::Server;
use uuid::Uuid;

const ADMIN: &str = "test-admin-token-0123456789";

impl Server {
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base()));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        support::read(request.send().await.unwrap()).await
    }

    async fn send(&self, agent: &str, reports: Vec<FindingReport>) -> Value {
        let batch = AgentBatch {
            sequence: 1,
            reports,
            assets: vec![],
            losses: None,
            facts: None,
        };
        let (status, body) = self
            .post(
                "/api/v1/agent/batches",
                agent,
                &serde_json::to_value(batch).unwrap(),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }
}

fn alert(namespace: &str, pod: &str, exe: &str, severity: Severity) -> FindingReport {
    FindingReport {
        id: Uuid::new_v4(),
        observed_at: Timestamp::now(),
        severity,
        rule: format!("Shell via {exe}"),
        title: format!("{exe} in {pod}"),
        asset: AffectedAsset {
            cluster: "prod".into(),
            namespace: Some(namespace.into()),
            pod: Some(pod.into()),
            container_name: Some("app".into()),
            ..Default::default()
        },
        details: Details::Alert(AlertDetails {
            process: ProcessInfo {
                pid: 42,
                ppid: 1,
                exe: exe.into(),
                cmdline: format!("{exe} -i"),
                user: "root".into(),
            },
            ..Default::default()
        }),
        demo: false,
    }
}

#[tokio::test]
async fn authentication_and_roles() {
    let server = Server::start(ADMIN).await;
    let (status, body) = server.call(Method::GET, "/api/v1/alerts", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "unauthorized");
    for bad in ["nope", "pal_0123456789ab_wrong", &"x".repeat(10_000)] {
        assert_eq!(
            server.get("/api/v1/alerts", bad).await.0,
            StatusCode::UNAUTHORIZED,
            "{}",
            &bad[..bad.len().min(20)]
        );
    }
    let raw = server
        .client
        .get(format!("{}/api/v1/alerts", server.base()))
        .header("Authorization", "Basic YWJj")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), StatusCode::UNAUTHORIZED);
    assert!(raw.headers().contains_key("www-authenticate"));

    let viewer = server.token("vera", "viewer").await;
    let operator = server.token("otto", "operator").await;
    assert_eq!(
        server.get("/api/v1/alerts", &viewer).await.0,
        StatusCode::OK
    );
    // A viewer cannot handle, an operator cannot administer, an agent cannot read.
    let agent = server.agent().await;
    let report = alert("shop", "web-1", "/bin/sh", Severity::High);
    server.send(&agent, vec![report]).await;
    let (_, page) = server.get("/api/v1/alerts", &viewer).await;
    let id = page["items"][0]["id"].as_str().unwrap().to_owned();
    let (status, body) = server
        .post(
            &format!("/api/v1/alerts/{id}/ignore"),
            &viewer,
            &json!({"reason": "x"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");
    assert_eq!(
        server
            .post(
                "/api/v1/tokens",
                &operator,
                &json!({"name": "x", "role": "admin"})
            )
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        server.get("/api/v1/audit", &operator).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        server.get("/api/v1/alerts", &agent).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        server
            .post("/api/v1/agent/batches", &operator, &json!({"sequence": 1}))
            .await
            .0,
        StatusCode::FORBIDDEN
    );

    // Revocation takes effect at once, despite the verification cache.
    let (_, tokens) = server.get("/api/v1/tokens", ADMIN).await;
    let vera = tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|token| token["name"] == "vera")
        .unwrap();
    assert!(
        vera.get("secret_hash").is_none(),
        "hashes never leave the server"
    );
    let (status, _) = server
        .call(
            Method::DELETE,
            &format!("/api/v1/tokens/{}", vera["id"].as_str().unwrap()),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        server.get("/api/v1/alerts", &viewer).await.0,
        StatusCode::UNAUTHORIZED
    );

    // Public endpoints.
    assert_eq!(
        server.call(Method::GET, "/healthz", None, None).await.0,
        StatusCode::OK
    );
    let (status, openapi) = server
        .call(Method::GET, "/api/openapi.json", None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    for path in [
        "/api/v1/{collection}",
        "/api/v1/whitelist-rules/preview",
        "/api/v1/agent/batches",
        "/api/v1/audit",
    ] {
        assert!(openapi["paths"].get(path).is_some(), "OpenAPI lacks {path}");
    }
    assert_eq!(
        server.call(Method::GET, "/metrics", None, None).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn filters_sorting_and_pagination() {
    let server = Server::start(ADMIN).await;
    let agent = server.agent().await;
    let mut reports = Vec::new();
    for index in 0..120 {
        let namespace = if index % 3 == 0 { "billing" } else { "shop" };
        let severity = Severity::ALL[index % 5];
        reports.push(alert(
            namespace,
            &format!("pod-{index}"),
            "/bin/sh",
            severity,
        ));
    }
    let ack = server.send(&agent, reports).await;
    assert_eq!(ack["created"], 120);

    let (status, counts) = server
        .get("/api/v1/alerts/stats?namespace=billing", ADMIN)
        .await;
    assert_eq!(status, StatusCode::OK);
    let total: u64 = ["critical", "high", "medium", "low", "info"]
        .iter()
        .map(|s| counts[s].as_u64().unwrap())
        .sum();
    assert_eq!(total, 40);

    let mut seen = std::collections::HashSet::new();
    let mut path =
        "/api/v1/alerts?namespace=shop&severity=high,critical&sort=severity&order=desc&limit=7"
            .to_owned();
    let mut last_rank = 5;
    loop {
        let (status, page) = server.get(&path, ADMIN).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for item in page["items"].as_array().unwrap() {
            assert_eq!(item["asset"]["namespace"], "shop");
            let rank = match item["severity"].as_str().unwrap() {
                "critical" => 4,
                "high" => 3,
                other => panic!("unexpected severity {other}"),
            };
            assert!(rank <= last_rank, "sorted by severity, descending");
            last_rank = rank;
            assert!(seen.insert(item["id"].as_str().unwrap().to_owned()));
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => {
                path = format!(
                    "/api/v1/alerts?namespace=shop&severity=high,critical&sort=severity&order=desc&limit=7&cursor={cursor}"
                )
            }
            None => break,
        }
    }
    let expected = (0..120)
        .filter(|index| index % 3 != 0 && index % 5 >= 3)
        .count();
    assert_eq!(seen.len(), expected);

    // The same filters with a time range (the console's live stream lists its page's filters
    // with a `since`): still only the findings they select.
    let since = Timestamp(Timestamp::now().millis() - 3_600_000).to_rfc3339();
    let (status, page) = server
        .get(
            &format!("/api/v1/alerts?namespace=shop&severity=critical&since={since}&limit=1000"),
            ADMIN,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let items = page["items"].as_array().unwrap();
    for item in items {
        assert_eq!(item["asset"]["namespace"], "shop", "{item}");
        assert_eq!(item["severity"], "critical", "{item}");
    }
    let expected = (0..120)
        .filter(|index| index % 3 != 0 && index % 5 == 4)
        .count();
    assert_eq!(items.len(), expected);

    // Text search, time range, asset filter.
    let (_, page) = server
        .get("/api/v1/alerts?q=POD-7%20&limit=1000", ADMIN)
        .await;
    assert!(
        page["items"].as_array().unwrap().is_empty(),
        "the search is for the literal text"
    );
    let (_, page) = server.get("/api/v1/alerts?q=pod-117", ADMIN).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert!(page.get("searched").is_none(), "{page}");
    let (_, stats) = server.get("/api/v1/alerts/stats?q=pod-117", ADMIN).await;
    assert!(stats.get("searched_findings").is_none(), "{stats}");
    // Exact: fewer matches than a search counts.
    assert!(stats.get("counted_since").is_none(), "{stats}");
    assert_eq!(stats["counted_matches"], 10_000, "{stats}");
    // A two-character term reads a window of the newest findings, and says so.
    let (_, page) = server.get("/api/v1/alerts?q=-7&limit=1000", ADMIN).await;
    let listed = page["items"].as_array().unwrap().len();
    assert!(
        listed >= 11,
        "pod-7 and pod-70 to pod-79 at least: {listed}"
    );
    assert_eq!(page["searched"]["findings"], 5000, "{}", page["searched"]);
    assert!(
        page["searched"].get("counted_since").is_none(),
        "120 alerts fit the window"
    );
    assert_eq!(page["searched"]["page_window_full"], false);
    let (_, stats) = server.get("/api/v1/alerts/stats?q=-7", ADMIN).await;
    assert_eq!(stats["searched_findings"], 5000, "{stats}");
    assert!(
        stats.get("counted_since").is_none(),
        "120 alerts fit the window"
    );
    let counted: u64 = ["critical", "high", "medium", "low", "info"]
        .iter()
        .map(|severity| stats[severity].as_u64().unwrap())
        .sum();
    assert_eq!(counted, listed as u64);
    let asset_id = page["items"][0]["asset_id"].as_str().unwrap().to_owned();
    let (_, page) = server
        .get(&format!("/api/v1/alerts?asset_id={asset_id}"), ADMIN)
        .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    let (_, page) = server
        .get("/api/v1/alerts?since=2999-01-01T00:00:00Z", ADMIN)
        .await;
    assert!(page["items"].as_array().unwrap().is_empty());
}

/// Vulnerability `index` of a seed: 13 ids over 7 images and 4 packages, severities and fixed
/// versions varying, so that every column of the groups orders them differently.
fn vulnerability(index: usize) -> FindingReport {
    // A multiplicative hash: consecutive indexes far apart in every column.
    let pick =
        |salt: usize, bound: usize| ((index + salt).wrapping_mul(2_654_435_761) >> 9) % bound;
    let cve = format!("CVE-2025-{:04}", pick(1, 13));
    let package = ["openssl", "zlib", "curl", "libxml2"][pick(2, 4)];
    FindingReport {
        id: Uuid::new_v4(),
        observed_at: Timestamp(Timestamp::now().millis() - pick(3, 600) as i64 * 60_000),
        severity: Severity::ALL[pick(4, 5)],
        rule: cve.clone(),
        title: format!("{cve} in {package}"),
        asset: AffectedAsset {
            cluster: "prod".into(),
            namespace: Some("shop".into()),
            image: Some(format!("registry.example/app-{}:1", pick(5, 7))),
            ..Default::default()
        },
        details: Details::Vulnerability(VulnerabilityDetails {
            package: package.into(),
            ecosystem: ["Debian:12", "npm", "PyPI"][pick(6, 3)].into(),
            installed_version: "1.0".into(),
            fixed_versions: if pick(7, 4) == 0 {
                vec!["1.1".into()]
            } else {
                Vec::new()
            },
            ..Default::default()
        }),
        demo: false,
    }
}

/// The groups of `findings` (as the list API returned them) by rule, sorted by `sort` and
/// `order`, ties by rule: what the grouped listing's pages must add up to.
fn expected_groups(findings: &[Finding], sort: &str, descending: bool) -> Vec<Value> {
    let mut by_rule: std::collections::BTreeMap<&str, Vec<&Finding>> = Default::default();
    for finding in findings {
        by_rule.entry(&finding.rule).or_default().push(finding);
    }
    let mut groups: Vec<(Value, Value)> = by_rule
        .into_iter()
        .map(|(rule, findings)| {
            let packages: std::collections::BTreeSet<&str> = findings
                .iter()
                .map(|finding| finding.details.package())
                .collect();
            let assets: std::collections::HashSet<Uuid> =
                findings.iter().map(|finding| finding.asset_id).collect();
            let severity = findings.iter().map(|finding| finding.severity).max().unwrap();
            let group = json!({
                "rule": rule,
                "severity": severity,
                "category": findings.iter().map(|finding| finding.details.category()).max().unwrap(),
                "assets": assets.len(),
                "findings": findings.len(),
                "open": findings.iter().filter(|finding| finding.status == Status::Open).count(),
                "fix_available": findings.iter().any(|finding| finding.details.fix_known()),
                "last_seen": findings.iter().map(|finding| finding.last_seen).max().unwrap(),
                "package": packages.first().unwrap(),
                "packages": packages.len(),
            });
            let key = match sort {
                "severity" => json!(severity.rank()),
                "last_seen" => json!(group["last_seen"].as_str().map(|at| {
                    Timestamp::parse_rfc3339(at).unwrap().millis()
                })),
                other => group[other].clone(),
            };
            (key, group)
        })
        .collect();
    let compare = |a: &Value, b: &Value| match (a, b) {
        (Value::Number(a), Value::Number(b)) => a.as_i64().cmp(&b.as_i64()),
        (Value::Bool(a), Value::Bool(b)) => a.cmp(b),
        (a, b) => a.as_str().cmp(&b.as_str()),
    };
    groups.sort_by(|(a, ga), (b, gb)| {
        let by_key = compare(a, b);
        let by_key = if descending { by_key.reverse() } else { by_key };
        by_key.then_with(|| ga["rule"].as_str().cmp(&gb["rule"].as_str()))
    });
    groups.into_iter().map(|(_, group)| group).collect()
}

#[tokio::test]
async fn grouped_listings_sort_by_every_column_both_ways_and_page_exactly() {
    let server = Server::start(ADMIN).await;
    let agent = server.agent().await;
    let viewer = server.token("viewer", "viewer").await;
    let ack = server
        .send(&agent, (0..70).map(vulnerability).collect())
        .await;
    assert_eq!(ack["created"], 70, "{ack}");
    // Some ignored, so that findings and open differ.
    let (_, page) = server
        .get("/api/v1/vulnerabilities?limit=1000&sort=first_seen", ADMIN)
        .await;
    for item in page["items"].as_array().unwrap().iter().step_by(4) {
        let id = item["id"].as_str().unwrap();
        let (status, body) = server
            .post(
                &format!("/api/v1/vulnerabilities/{id}/ignore"),
                ADMIN,
                &json!({"reason": "test"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    // Authentication: a token is needed, a viewer's is enough.
    let (status, _) = server
        .call(Method::GET, "/api/v1/vulnerabilities/groups", None, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = server
        .get("/api/v1/vulnerabilities/groups?cluster=prod", &viewer)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    for filters in [
        "cluster=prod&status=open",
        "cluster=prod",
        "severity=critical,high",
    ] {
        let (_, listed) = server
            .get(
                &format!("/api/v1/vulnerabilities?limit=1000&{filters}"),
                ADMIN,
            )
            .await;
        let findings: Vec<Finding> = serde_json::from_value(listed["items"].clone()).unwrap();
        assert!(findings.len() > 10, "{filters}");
        let mut orders = std::collections::HashSet::new();
        for sort in [
            "severity",
            "rule",
            "package",
            "category",
            "assets",
            "findings",
            "open",
            "fix_available",
            "last_seen",
        ] {
            for order in ["asc", "desc"] {
                let expected = expected_groups(&findings, sort, order == "desc");
                let mut listed = Vec::new();
                let mut cursor = String::new();
                loop {
                    let path = format!(
                        "/api/v1/vulnerabilities/groups?{filters}&sort={sort}&order={order}&limit=3&cursor={cursor}"
                    );
                    let (status, page) = server.get(&path, &viewer).await;
                    assert_eq!(status, StatusCode::OK, "{path}: {page}");
                    let items = page["items"].as_array().unwrap();
                    assert!(items.len() <= 3, "{path}");
                    for item in items {
                        let mut item = item.clone();
                        item.as_object_mut().unwrap().remove("title");
                        listed.push(item);
                    }
                    match page["next_cursor"].as_str() {
                        Some(next) => cursor = next.to_owned(),
                        None => break,
                    }
                }
                assert_eq!(listed, expected, "{filters} sort={sort} order={order}");
                orders.insert(
                    listed
                        .iter()
                        .map(|group| group["rule"].to_string())
                        .collect::<Vec<_>>(),
                );
            }
        }
        assert!(
            orders.len() > 8,
            "{filters}: the sorts order the groups differently ({} orders)",
            orders.len()
        );
    }

    // Bad sorts and collections without groups.
    let (status, body) = server
        .get("/api/v1/vulnerabilities/groups?sort=title", ADMIN)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    for choice in [
        "severity",
        "rule",
        "package",
        "assets",
        "fix_available",
        "last_seen",
    ] {
        assert!(message.contains(choice), "{message}");
    }
    let (status, body) = server
        .get("/api/v1/baseline-risks/groups?sort=package", ADMIN)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        !body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("package,"),
        "{body}"
    );
    let (status, body) = server
        .get("/api/v1/vulnerabilities/groups?order=up", ADMIN)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = server.get("/api/v1/alerts/groups", ADMIN).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, _) = server.get("/api/v1/baseline-risks/groups", ADMIN).await;
    assert_eq!(status, StatusCode::OK);

    // The OpenAPI document describes the listing.
    let (status, document) = server.get("/api/openapi.json", ADMIN).await;
    assert_eq!(status, StatusCode::OK);
    let operation = &document["paths"]["/api/v1/{collection}/groups"]["get"];
    assert!(operation["responses"]["200"].is_object(), "{operation}");
    assert!(document["components"]["schemas"]["GroupPage"].is_object());
}

#[tokio::test]
async fn hostile_requests_get_clear_errors() {
    let server = Server::start(ADMIN).await;
    let agent = server.agent().await;
    for (path, needle) in [
        ("/api/v1/alerts?limit=5000", "out of range"),
        ("/api/v1/alerts?limit=0", "out of range"),
        ("/api/v1/alerts?limit=-1", "limit"),
        ("/api/v1/alerts?severity=apocalyptic", "unknown severity"),
        (
            "/api/v1/alerts?sort=id;DROP%20TABLE%20findings",
            "cannot sort",
        ),
        ("/api/v1/alerts?cursor=garbage", "invalid cursor"),
        ("/api/v1/alerts?since=yesterday", "RFC 3339"),
        ("/api/v1/alerts?asset_id=1%20OR%201=1", "not a UUID"),
        ("/api/v1/alerts?bogus=1", "unknown field"),
    ] {
        let (status, body) = server.get(path, ADMIN).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(needle),
            "{path}: {body}"
        );
    }
    let long = "a".repeat(5000);
    assert_eq!(
        server
            .get(&format!("/api/v1/alerts?namespace={long}"), ADMIN)
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
    // Injection strings in filters are data.
    let (status, page) = server
        .get(
            "/api/v1/alerts?namespace=%27%20OR%20%271%27=%271&q=%25%27--",
            ADMIN,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(page["items"].as_array().unwrap().is_empty());
    assert_eq!(
        server.get("/api/v1/no-such-thing", ADMIN).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        server.get("/api/v1/alerts/not-a-uuid", ADMIN).await.0,
        StatusCode::NOT_FOUND
    );

    // Bodies: malformed, unknown fields, wrong types, oversized, too many reports.
    let url = format!("{}/api/v1/whitelist-rules", server.base());
    let malformed = server
        .client
        .post(&url)
        .bearer_auth(ADMIN)
        .header("content-type", "application/json")
        .body("{\"field\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    let (status, body) = server
        .post("/api/v1/whitelist-rules", ADMIN, &json!({"field": "process.exe", "operator": "equals", "value": "x", "scope": {"type": "all_assets"}, "surprise": 1}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("surprise")
    );
    let (status, body) = server
        .post("/api/v1/whitelist-rules", ADMIN, &json!({"field": "process.nope", "operator": "equals", "value": "x", "scope": {"type": "all_assets"}}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown field \"process.nope\""),
        "{body}"
    );
    let (status, _) = server
        .post("/api/v1/whitelist-rules", ADMIN, &json!({"field": "process.exe", "operator": "regex", "value": "(", "scope": {"type": "all_assets"}}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let huge = json!({"name": "x".repeat(2 << 20), "role": "viewer"});
    assert_eq!(
        server.post("/api/v1/tokens", ADMIN, &huge).await.0,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    let too_many: Vec<_> = (0..=palisade_model::MAX_BATCH_REPORTS)
        .map(|i| alert("shop", &format!("p{i}"), "/bin/sh", Severity::Low))
        .collect();
    let batch = AgentBatch {
        sequence: 1,
        reports: too_many,
        assets: vec![],
        losses: None,
        facts: None,
    };
    let (status, body) = server
        .post(
            "/api/v1/agent/batches",
            &agent,
            &serde_json::to_value(batch).unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let mut foreign = alert("shop", "p", "/bin/sh", Severity::Low);
    foreign.asset.cluster = "someone-elses".into();
    let batch = AgentBatch {
        sequence: 1,
        reports: vec![foreign],
        assets: vec![],
        losses: None,
        facts: None,
    };
    let (status, body) = server
        .post(
            "/api/v1/agent/batches",
            &agent,
            &serde_json::to_value(batch).unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("someone-elses")
    );
}

#[tokio::test]
async fn handling_actions_whitelist_and_audit() {
    let server = Server::start(ADMIN).await;
    let agent = server.agent().await;
    let operator = server.token("otto", "operator").await;
    server
        .send(
            &agent,
            vec![
                alert("shop", "web-1", "/usr/bin/bash", Severity::High),
                alert("shop", "web-2", "/usr/bin/bash", Severity::High),
                alert("shop", "web-3", "/bin/sh", Severity::Medium),
                alert("shop", "web-4", "/bin/sh", Severity::Medium),
            ],
        )
        .await;
    let (_, page) = server.get("/api/v1/alerts?q=web-3", &operator).await;
    let web3 = page["items"][0]["id"].as_str().unwrap().to_owned();

    // Ignore, conflict on a second ignore, undo.
    let (status, finding) = server
        .post(
            &format!("/api/v1/alerts/{web3}/ignore"),
            &operator,
            &json!({"reason": "known test pod"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(finding["status"], "ignored");
    let (status, body) = server
        .post(
            &format!("/api/v1/alerts/{web3}/ignore"),
            &operator,
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (_, finding) = server
        .post(
            &format!("/api/v1/alerts/{web3}/unignore"),
            &operator,
            &json!({"reason": "oops"}),
        )
        .await;
    assert_eq!(finding["status"], "open");
    // Mark handled, with an empty body; reopen.
    let response = server
        .client
        .post(format!("{}/api/v1/alerts/{web3}/handle", server.base()))
        .bearer_auth(&operator)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let (_, finding) = server
        .post(
            &format!("/api/v1/alerts/{web3}/reopen"),
            &operator,
            &json!({}),
        )
        .await;
    assert_eq!(finding["status"], "open");
    assert_eq!(
        server
            .post(&format!("/api/v1/alerts/{web3}/fix"), &operator, &json!({}))
            .await
            .0,
        StatusCode::NOT_FOUND,
        "fix is for vulnerabilities"
    );
    // Notes.
    let (status, _) = server
        .post(
            &format!("/api/v1/alerts/{web3}/notes"),
            &operator,
            &json!({"text": "talked to the team"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, detail) = server
        .get(&format!("/api/v1/alerts/{web3}"), &operator)
        .await;
    assert_eq!(detail["notes"][0]["text"], "talked to the team");
    assert_eq!(detail["notes"][0]["author"], "otto");
    // Bulk-handle similar: same rule (shell via /bin/sh) → web-3 and web-4.
    let (_, changed) = server
        .post(
            &format!("/api/v1/alerts/{web3}/handle-similar"),
            &operator,
            &json!({"action": "handle", "reason": "drill"}),
        )
        .await;
    assert_eq!(changed["changed"], 2);

    // Whitelist: preview, create (closes the two bash alerts), then a new bash alert is suppressed.
    let rule = json!({"field": "process.exe", "operator": "prefix", "value": "/usr/bin/ba", "scope": {"type": "all_assets"}, "reason": "admins use bash"});
    let (status, preview) = server
        .post("/api/v1/whitelist-rules/preview", &operator, &rule.clone())
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(preview["would_close"], 2);
    let (status, created) = server
        .post("/api/v1/whitelist-rules", &operator, &rule)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["closed"], 2);
    let (_, open) = server.get("/api/v1/alerts?status=open", &operator).await;
    assert!(open["items"].as_array().unwrap().is_empty(), "{open}");
    let ack = server
        .send(
            &agent,
            vec![alert("shop", "web-9", "/usr/bin/bash", Severity::Critical)],
        )
        .await;
    assert_eq!(ack["suppressed"], 1);
    assert_eq!(ack["created"], 0);
    let (_, rules) = server.get("/api/v1/whitelist-rules", &operator).await;
    assert_eq!(rules[0]["hits"], 3);
    // A scoped rule only applies to its asset.
    let (_, page) = server.get("/api/v1/alerts?q=web-1", &operator).await;
    let asset_id = page["items"][0]["asset_id"].as_str().unwrap();
    let scoped = json!({"field": "rule", "operator": "equals", "value": "Shell via /bin/zsh", "scope": {"type": "asset", "asset_id": asset_id}});
    server
        .post("/api/v1/whitelist-rules", &operator, &scoped)
        .await;
    let ack = server
        .send(
            &agent,
            vec![
                alert("shop", "web-1", "/bin/zsh", Severity::High),
                alert("shop", "web-5", "/bin/zsh", Severity::High),
            ],
        )
        .await;
    assert_eq!(
        (ack["suppressed"].as_u64(), ack["created"].as_u64()),
        (Some(1), Some(1))
    );

    // Metrics count what happened.
    let (_, metrics) = server.get("/metrics", &operator).await;
    let metrics = metrics.as_str().unwrap();
    assert!(
        metrics.contains("palisade_findings_ingested_total{outcome=\"suppressed\"} 2"),
        "{metrics}"
    );
    assert!(metrics.contains("palisade_http_request_duration_seconds_bucket{method=\"GET\",route=\"/api/v1/{collection}\""));

    // Every action is in the audit trail, with who and why.
    let (status, audit) = server.get("/api/v1/audit?limit=100", ADMIN).await;
    assert_eq!(status, StatusCode::OK);
    let entries = audit["items"].as_array().unwrap();
    let actions: Vec<&str> = entries
        .iter()
        .map(|entry| entry["action"].as_str().unwrap())
        .collect();
    for expected in [
        "alert.ignore",
        "alert.unignore",
        "alert.handle",
        "alert.reopen",
        "alert.note",
        "alert.handle_similar",
        "whitelist.create",
        "token.create",
        "agent.join",
    ] {
        assert!(
            actions.contains(&expected),
            "audit lacks {expected}: {actions:?}"
        );
    }
    let ignore = entries
        .iter()
        .find(|entry| entry["action"] == "alert.ignore")
        .unwrap();
    assert_eq!(ignore["actor"], "otto");
    assert_eq!(ignore["reason"], "known test pod");
    assert_eq!(ignore["target_id"], web3);
    let (_, filtered) = server
        .get(&format!("/api/v1/audit?target_id={web3}"), ADMIN)
        .await;
    assert!(
        filtered["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|entry| entry["target_id"] == web3.as_str())
    );
}

#[tokio::test]
async fn exceptions_for_baseline_risks() {
    let server = Server::start(ADMIN).await;
    let agent = server.agent().await;
    let risk = |namespace: &str| FindingReport {
        id: Uuid::new_v4(),
        observed_at: Timestamp::now(),
        severity: Severity::High,
        rule: "privileged".into(),
        title: "Privileged container".into(),
        asset: AffectedAsset {
            cluster: "prod".into(),
            namespace: Some(namespace.into()),
            workload: Some("DaemonSet/cni".into()),
            ..Default::default()
        },
        details: Details::BaselineRisk(BaselineDetails {
            category: BaselineCategory::Workload,
            description: "".into(),
            remediation: "".into(),
            evidence: vec![Evidence {
                path: "spec.containers[0].securityContext.privileged".into(),
                value: "true".into(),
                file: "cni.yaml".into(),
                line: Some(12),
            }],
        }),
        demo: false,
    };
    server
        .send(&agent, vec![risk("kube-system"), risk("shop")])
        .await;
    let expiry = Timestamp(Timestamp::now().millis() + 3_600_000);
    let (status, body) = server
        .post("/api/v1/exceptions", ADMIN, &json!({"check": "privileged", "namespace": "kube-system", "reason": "CNI needs it", "owner": "platform", "expires_at": expiry}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["covered"], 1);
    let (_, page) = server
        .get("/api/v1/baseline-risks?status=excepted", ADMIN)
        .await;
    assert_eq!(page["items"][0]["asset"]["namespace"], "kube-system");
    let (status, _) = server
        .post(
            "/api/v1/exceptions",
            ADMIN,
            &json!({"check": "privileged", "reason": "", "owner": "x"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a reason is required");
    let id = body["exception"]["id"].as_str().unwrap();
    let (status, _) = server
        .call(
            Method::DELETE,
            &format!("/api/v1/exceptions/{id}"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, page) = server
        .get("/api/v1/baseline-risks?status=open", ADMIN)
        .await;
    assert_eq!(
        page["items"].as_array().unwrap().len(),
        2,
        "deleting the exception reopens the risk"
    );
}

#[tokio::test]
async fn tls_with_generated_ca_speaks_http2() {
    let dir = tempfile::tempdir().unwrap();
    let pki =
        palisade_server::tls::ensure_pki(dir.path(), &["localhost".into(), "127.0.0.1".into()])
            .unwrap();
    let config = palisade_server::tls::server_config(&pki.server_cert, &pki.server_key).unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("db")).await.unwrap());
    let state = AppState::new(store, Notifier::start(Default::default()))
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(serve(
        listener,
        router(state),
        Some(config),
        std::future::pending(),
    ));
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&pki.ca_cert).unwrap()).unwrap();
    let client = Client::builder()
        .add_root_certificate(ca)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let response = client
        .get(format!("https://localhost:{port}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    // A client that does not trust the CA is refused.
    let untrusting = Client::builder()
        .tls_built_in_root_certs(true)
        .build()
        .unwrap();
    assert!(
        untrusting
            .get(format!("https://localhost:{port}/healthz"))
            .send()
            .await
            .is_err()
    );
    // A second call reuses the CA and certificate.
    let again = palisade_server::tls::ensure_pki(dir.path(), &["localhost".into()]).unwrap();
    assert_eq!(
        std::fs::read(&again.ca_cert).unwrap(),
        std::fs::read(&pki.ca_cert).unwrap()
    );
}
