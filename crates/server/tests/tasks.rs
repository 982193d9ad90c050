//! The agent task channel over a real socket: who may queue, claim and finish tasks, the
//! long poll, timeouts, the audit trail, fix verifications and scan snapshots. The agent's
//! side is played by plain HTTP calls here; `crates/agent/tests/scans.rs` runs the real agent.

mod support;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use palisade_model::{
    AffectedAsset, AgentBatch, BaselineCategory, BaselineDetails, Details, Evidence, FindingReport,
    Severity, Timestamp, VulnerabilityDetails,
};
use palisade_store::Store;
use palisade_testdata::run_checked;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

const ADMIN: &str = "tasks-test-admin-token-0123456789";

struct Api {
    base: String,
    client: Client,
    store: Arc<dyn Store>,
    _dir: tempfile::TempDir,
}

impl Api {
    async fn start() -> Api {
        let running = support::start(ADMIN).await;
        Api {
            base: running.base,
            client: Client::new(),
            store: running.store,
            _dir: running.dir,
        }
    }

    async fn request(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self
            .client
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(token);
        if method == reqwest::Method::POST {
            request = request.json(&body);
        }
        support::read(request.send().await.unwrap()).await
    }

    async fn token(&self, name: &str, role: &str) -> String {
        support::token(&self.client, &self.base, ADMIN, name, role).await
    }

    /// Enrolls agent `node` of cluster `prod`: (agent id, agent token).
    async fn enroll(&self, node: &str) -> (String, String) {
        let enrolled = support::enroll(&self.client, &self.base, ADMIN, node, node).await;
        (enrolled.agent_id, enrolled.token)
    }

    async fn send(&self, agent: &str, reports: &[FindingReport]) {
        let batch = AgentBatch {
            sequence: 1,
            reports: reports.to_vec(),
            assets: vec![],
            losses: None,
            facts: None,
        };
        let (status, body) = self
            .request(
                "POST",
                "/api/v1/agent/batches",
                agent,
                serde_json::to_value(batch).unwrap(),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    /// Asks for a fix verification of `finding_id` with `token`.
    async fn verify_fix(&self, token: &str, finding_id: &str) -> (StatusCode, Value) {
        self.request(
            "POST",
            "/api/v1/fix-verifications",
            token,
            json!({ "finding_id": finding_id }),
        )
        .await
    }

    async fn claim(&self, agent: &str, wait_secs: u64) -> Vec<Value> {
        let (status, body) = self
            .request(
                "POST",
                "/api/v1/agents/tasks/claim",
                agent,
                json!({ "wait_secs": wait_secs }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body.as_array().unwrap().clone()
    }

    /// Waits (up to a minute) until the task is done or failed, and returns it.
    async fn finished_task(&self, task_id: &str, token: &str) -> Value {
        eventually("a finished task", 60, || async {
            let (_, task) = self
                .request(
                    "GET",
                    &format!("/api/v1/tasks/{task_id}"),
                    token,
                    Value::Null,
                )
                .await;
            task["state"]
                .as_str()
                .is_some_and(|state| state == "done" || state == "failed")
                .then_some(task)
        })
        .await
    }

    async fn audit_actions(&self) -> Vec<(String, String)> {
        let (_, body) = self
            .request("GET", "/api/v1/audit?limit=1000", ADMIN, Value::Null)
            .await;
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|entry| {
                (
                    entry["action"].as_str().unwrap().to_owned(),
                    entry["actor"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }
}

/// A server where agent `node-1` reported one vulnerability: the agent's token, a viewer's and
/// an operator's, and the finding's id.
struct OneVulnerability {
    api: Api,
    agent: String,
    viewer: String,
    operator: String,
    finding_id: String,
}

impl OneVulnerability {
    async fn start() -> OneVulnerability {
        let api = Api::start().await;
        let (_, agent) = api.enroll("node-1").await;
        let viewer = api.token("vera", "viewer").await;
        let operator = api.token("otto", "operator").await;
        api.send(&agent, &[vulnerability("node-1")]).await;
        let (_, page) = api
            .request("GET", "/api/v1/vulnerabilities", &viewer, Value::Null)
            .await;
        let finding_id = page["items"][0]["id"].as_str().unwrap().to_owned();
        OneVulnerability {
            api,
            agent,
            viewer,
            operator,
            finding_id,
        }
    }
}

fn node(name: &str) -> AffectedAsset {
    AffectedAsset {
        cluster: "prod".into(),
        node: Some(name.into()),
        ..Default::default()
    }
}

fn vulnerability(node_name: &str) -> FindingReport {
    FindingReport {
        id: Uuid::now_v7(),
        observed_at: Timestamp::now(),
        severity: Severity::High,
        rule: "CVE-2024-0001".into(),
        title: "zlib: overflow".into(),
        asset: node(node_name),
        details: Details::Vulnerability(VulnerabilityDetails {
            package: "zlib1g".into(),
            ecosystem: "Debian:12".into(),
            installed_version: "1:1.2.13.dfsg-1".into(),
            fixed_versions: vec!["1:1.2.13.dfsg-2".into()],
            location: "var/lib/dpkg/status".into(),
            ..Default::default()
        }),
        demo: false,
    }
}

fn baseline_risk(node_name: &str, check: &str) -> FindingReport {
    FindingReport {
        id: Uuid::now_v7(),
        observed_at: Timestamp::now(),
        severity: Severity::Medium,
        rule: check.into(),
        title: format!("{check} failed"),
        asset: node(node_name),
        details: Details::BaselineRisk(BaselineDetails {
            category: BaselineCategory::Os,
            description: String::new(),
            remediation: String::new(),
            evidence: vec![Evidence {
                path: format!("{check}.setting"),
                value: "bad".into(),
                file: "/etc/x".into(),
                line: None,
            }],
        }),
        demo: false,
    }
}

#[tokio::test]
async fn tasks_are_queued_claimed_and_finished_by_their_agent_only() {
    let api = Api::start().await;
    let (agent_id, agent) = api.enroll("node-1").await;
    let (other_id, other) = api.enroll("node-2").await;
    let viewer = api.token("vera", "viewer").await;
    let operator = api.token("otto", "operator").await;
    let tasks_path = format!("/api/v1/agents/{agent_id}/tasks");
    let checks = json!({ "spec": { "kind": "run_host_checks" } });

    // Viewers and agents cannot queue work; operators can, but not package upgrades.
    for token in [&viewer, &agent] {
        let (status, body) = api
            .request("POST", &tasks_path, token, checks.clone())
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    }
    let upgrade = json!({ "spec": { "kind": "upgrade_package", "ecosystem": "Debian:12", "package": "zlib1g", "version": "1:1.2.13.dfsg-2" } });
    let (status, _) = api.request("POST", &tasks_path, &operator, upgrade).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let hostile = json!({ "spec": { "kind": "upgrade_package", "ecosystem": "Debian:12", "package": "zlib1g;rm -rf /", "version": "1" } });
    let (status, body) = api.request("POST", &tasks_path, ADMIN, hostile).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not a valid package name"),
        "{body}"
    );
    let (status, body) = api
        .request(
            "POST",
            &tasks_path,
            &operator,
            json!({ "spec": { "kind": "format_disk" } }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body.to_string().contains("unknown variant `format_disk`"),
        "{body}"
    );
    let (status, _) = api
        .request(
            "POST",
            &format!("/api/v1/agents/{}/tasks", Uuid::now_v7()),
            &operator,
            checks.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, task) = api
        .request("POST", &tasks_path, &operator, checks.clone())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{task}");
    assert_eq!(task["state"], "pending");
    let task_id = task["id"].as_str().unwrap().to_owned();

    // Only the owning agent gets it; humans cannot claim.
    assert!(api.claim(&other, 0).await.is_empty());
    let (status, _) = api
        .request("POST", "/api/v1/agents/tasks/claim", &operator, json!({}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let claimed = api.claim(&agent, 0).await;
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0]["id"], task_id.as_str());
    assert_eq!(claimed[0]["state"], "running");
    assert_eq!(claimed[0]["spec"]["kind"], "run_host_checks");
    assert!(
        api.claim(&agent, 0).await.is_empty(),
        "a claimed task is not handed out twice"
    );

    let result_path = format!("/api/v1/agents/tasks/{task_id}/result");
    let result = json!({ "succeeded": true, "message": "3 checks failed" });
    let (status, _) = api
        .request("POST", &result_path, &other, result.clone())
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "another agent cannot finish it"
    );
    let (status, done) = api
        .request("POST", &result_path, &agent, result.clone())
        .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["state"], "done");
    let (status, body) = api.request("POST", &result_path, &agent, result).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, shown) = api
        .request(
            "GET",
            &format!("/api/v1/tasks/{task_id}"),
            &viewer,
            Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown["result"]["message"], "3 checks failed");
    let (_, listed) = api.request("GET", &tasks_path, &viewer, Value::Null).await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let (_, listed) = api
        .request(
            "GET",
            &format!("/api/v1/agents/{other_id}/tasks"),
            &viewer,
            Value::Null,
        )
        .await;
    assert!(listed.as_array().unwrap().is_empty());
    assert!(
        api.audit_actions()
            .await
            .contains(&("agent.task.create".to_owned(), "otto".to_owned()))
    );

    // The long poll answers as soon as a task is queued.
    let waiting = {
        let base = api.base.clone();
        let agent = agent.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let response = Client::new()
                .post(format!("{base}/api/v1/agents/tasks/claim"))
                .bearer_auth(agent)
                .json(&json!({ "wait_secs": 8 }))
                .send()
                .await
                .unwrap();
            (
                started.elapsed(),
                response.json::<Vec<Value>>().await.unwrap(),
            )
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, _) = api
        .request("POST", &tasks_path, &operator, checks.clone())
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (waited, tasks) = waiting.await.unwrap();
    assert_eq!(tasks.len(), 1);
    assert!(
        waited < Duration::from_secs(3),
        "the long poll took {waited:?}"
    );
    let (status, body) = api
        .request(
            "POST",
            "/api/v1/agents/tasks/claim",
            &agent,
            json!({ "wait_secs": 60 }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // A task nobody finishes fails at its deadline.
    let (_, task) = api
        .request(
            "POST",
            &tasks_path,
            &operator,
            json!({ "spec": { "kind": "rescan_vulnerabilities" }, "timeout_secs": 1 }),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let (_, shown) = api
        .request(
            "GET",
            &format!("/api/v1/tasks/{}", task["id"].as_str().unwrap()),
            &viewer,
            Value::Null,
        )
        .await;
    assert_eq!(shown["state"], "failed");
    assert!(
        shown["result"]["message"]
            .as_str()
            .unwrap()
            .contains("timed out")
    );
}

#[tokio::test]
async fn verify_fix_closes_the_finding_only_when_the_rescan_says_fixed() {
    let OneVulnerability {
        api,
        agent,
        viewer,
        operator,
        finding_id,
    } = OneVulnerability::start().await;

    let (status, _) = api.verify_fix(&viewer, &finding_id).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for (verdict, expected_state, expected_status) in [
        (false, "still_vulnerable", "open"),
        (true, "fixed", "fixed"),
    ] {
        let (status, started) = api.verify_fix(&operator, &finding_id).await;
        assert_eq!(status, StatusCode::CREATED, "{started}");
        assert_eq!(started["verification"]["state"], "pending");
        let claimed = api.claim(&agent, 0).await;
        assert_eq!(claimed.len(), 1);
        let spec = &claimed[0]["spec"];
        assert_eq!(spec["kind"], "verify_fix");
        assert_eq!(spec["package"], "zlib1g");
        assert_eq!(spec["installed_version"], "1:1.2.13.dfsg-1");
        assert_eq!(spec["asset"]["node"], "node-1");
        let result = json!({
            "succeeded": true,
            "message": "rescanned",
            "verdict": { "fixed": verdict, "installed_versions": [], "reason": "test" },
        });
        let (status, body) = api
            .request(
                "POST",
                &format!(
                    "/api/v1/agents/tasks/{}/result",
                    claimed[0]["id"].as_str().unwrap()
                ),
                &agent,
                result,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (_, finding) = api
            .request(
                "GET",
                &format!("/api/v1/vulnerabilities/{finding_id}"),
                &viewer,
                Value::Null,
            )
            .await;
        assert_eq!(finding["status"], expected_status, "{finding}");
        let verifications = api
            .store
            .fix_verifications(Uuid::parse_str(&finding_id).unwrap())
            .await
            .unwrap();
        assert_eq!(verifications[0].state.as_str(), expected_state);
        assert!(verifications[0].completed_at.is_some());
    }
    assert!(api.audit_actions().await.contains(&(
        "vulnerability.fix_verified".to_owned(),
        "agent node-1".to_owned()
    )));

    // A finding on a node no agent reports cannot be verified.
    api.send(&agent, &[vulnerability("node-9")]).await;
    let (_, page) = api
        .request(
            "GET",
            "/api/v1/vulnerabilities?status=open",
            &viewer,
            Value::Null,
        )
        .await;
    let orphan = page["items"][0]["id"].as_str().unwrap();
    let (status, body) = api.verify_fix(&operator, orphan).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body.to_string()
            .contains("no enrolled agent reports node \\\"node-9\\\""),
        "{body}"
    );

    // Fixes are for admins and queue an upgrade to the first fixed version.
    let (status, _) = api
        .request(
            "POST",
            "/api/v1/fixes",
            &operator,
            json!({ "finding_id": orphan }),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

/// A rescan the agent cannot do fails its verification with the agent's error, which the API
/// lists with the finding's verifications; asking again starts a new, pending one.
#[tokio::test]
async fn a_failed_rescan_fails_its_verification_with_the_reason() {
    let OneVulnerability {
        api,
        agent,
        viewer,
        operator,
        finding_id,
    } = OneVulnerability::start().await;
    let verifications_path = format!("/api/v1/vulnerabilities/{finding_id}/fix-verifications");

    let (status, started) = api.verify_fix(&operator, &finding_id).await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    let claimed = api.claim(&agent, 0).await;
    assert_eq!(claimed.len(), 1);
    let message = "cannot read /var/lib/dpkg/status: permission denied";
    let (status, body) = api
        .request(
            "POST",
            &format!(
                "/api/v1/agents/tasks/{}/result",
                claimed[0]["id"].as_str().unwrap()
            ),
            &agent,
            json!({ "succeeded": false, "message": message }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (status, listed) = api
        .request("GET", &verifications_path, &viewer, Value::Null)
        .await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["id"], started["verification"]["id"]);
    assert_eq!(listed[0]["state"], "failed", "{listed}");
    assert_eq!(listed[0]["reason"], message, "{listed}");
    assert!(listed[0]["completed_at"].is_string(), "{listed}");
    let (_, finding) = api
        .request(
            "GET",
            &format!("/api/v1/vulnerabilities/{finding_id}"),
            &viewer,
            Value::Null,
        )
        .await;
    assert_eq!(finding["status"], "open", "a failed rescan proves nothing");

    // Retry: a new verification, pending until its task reports.
    let (status, retried) = api.verify_fix(&operator, &finding_id).await;
    assert_eq!(status, StatusCode::CREATED, "{retried}");
    let (_, listed) = api
        .request("GET", &verifications_path, &viewer, Value::Null)
        .await;
    let states: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|verification| verification["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["pending", "failed"], "{listed}");

    // The route beside the handling actions: those still answer, unknown findings are 404.
    let (status, body) = api
        .request(
            "POST",
            &format!("/api/v1/vulnerabilities/{finding_id}/ignore"),
            &operator,
            json!({ "reason": "accepted risk" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = api
        .request(
            "GET",
            &format!(
                "/api/v1/vulnerabilities/{}/fix-verifications",
                Uuid::now_v7()
            ),
            &viewer,
            Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_scan_snapshot_resolves_what_the_rescan_no_longer_finds() {
    let api = Api::start().await;
    let (_, agent) = api.enroll("node-1").await;
    let viewer = api.token("vera", "viewer").await;
    let kept = baseline_risk("node-1", "PAL-HOST-001");
    let gone = baseline_risk("node-1", "PAL-HOST-002");
    let elsewhere = baseline_risk("node-2", "PAL-HOST-002");
    api.send(&agent, &[kept.clone(), gone, elsewhere]).await;
    let snapshot = json!({
        "asset": node("node-1"),
        "kind": "baseline_risk",
        "present": [kept.dedupe_key()],
        "scanned_at": Timestamp::now(),
    });
    let (status, body) = api
        .request(
            "POST",
            "/api/v1/agents/scan-snapshots",
            &viewer,
            snapshot.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = api
        .request(
            "POST",
            "/api/v1/agents/scan-snapshots",
            &agent,
            snapshot.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["resolved"], 1);
    let (_, page) = api
        .request(
            "GET",
            "/api/v1/baseline-risks?status=open&limit=10",
            &viewer,
            Value::Null,
        )
        .await;
    let mut open: Vec<String> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            format!(
                "{} {}",
                item["rule"].as_str().unwrap(),
                item["asset"]["node"].as_str().unwrap()
            )
        })
        .collect();
    open.sort();
    assert_eq!(open, ["PAL-HOST-001 node-1", "PAL-HOST-002 node-2"]);
    let (_, body) = api
        .request("POST", "/api/v1/agents/scan-snapshots", &agent, snapshot)
        .await;
    assert_eq!(body["resolved"], 0, "resolving is idempotent");

    let mut foreign = json!({ "asset": { "cluster": "staging", "node": "node-1" }, "kind": "baseline_risk", "present": [], "scanned_at": Timestamp::now() });
    let (status, _) = api
        .request(
            "POST",
            "/api/v1/agents/scan-snapshots",
            &agent,
            foreign.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    foreign["asset"]["cluster"] = "prod".into();
    foreign["kind"] = "alert".into();
    let (status, _) = api
        .request("POST", "/api/v1/agents/scan-snapshots", &agent, foreign)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(api.audit_actions().await.contains(&(
        "finding.resolve_absent".to_owned(),
        "agent node-1".to_owned()
    )));
}

/// A Debian 12 root filesystem with one package, `zlib1g` (source `zlib`) at `version`, and
/// an sshd configuration that lets root log in.
fn write_fixture_root(root: &std::path::Path, zlib_version: &str) {
    std::fs::create_dir_all(root.join("etc/ssh")).unwrap();
    std::fs::create_dir_all(root.join("var/lib/dpkg")).unwrap();
    std::fs::write(
        root.join("etc/os-release"),
        "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n",
    )
    .unwrap();
    std::fs::write(root.join("etc/ssh/sshd_config"), "PermitRootLogin yes\n").unwrap();
    set_zlib_version(root, zlib_version);
}

fn set_zlib_version(root: &std::path::Path, version: &str) {
    std::fs::write(
        root.join("var/lib/dpkg/status"),
        format!(
            "Package: zlib1g\nStatus: install ok installed\nPriority: required\nSection: libs\n\
             Architecture: amd64\nSource: zlib\nVersion: {version}\nDescription: compression library\n\n"
        ),
    )
    .unwrap();
}

/// An OSV advisory for Debian 12's `zlib`, fixed in `fixed`.
fn osv_advisory(id: &str, fixed: &str) -> Value {
    json!({
        "id": id,
        "modified": "2026-01-01T00:00:00Z",
        "summary": format!("zlib: {id}"),
        "affected": [{
            "package": { "ecosystem": "Debian:12", "name": "zlib" },
            "ranges": [{ "type": "ECOSYSTEM", "events": [{ "introduced": "0" }, { "fixed": fixed }] }],
        }],
        "database_specific": { "severity": "high" },
    })
}

async fn import_advisory(database: &std::path::Path, dir: &std::path::Path, advisory: &Value) {
    let file = dir.join(format!("{}.json", advisory["id"].as_str().unwrap()));
    std::fs::write(&file, advisory.to_string()).unwrap();
    let database = palisade_vulndb::Database::open(database).await.unwrap();
    let report = database
        .import_path(&file, palisade_vulndb::Limits::default())
        .await
        .unwrap();
    assert_eq!(report.record_count, 1, "{report:?}");
    database.close().await;
}

/// Polls `check` every 200 ms until it returns `Some`, for at most `seconds`.
async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    seconds: u64,
    mut check: impl FnMut() -> F,
) -> T {
    let until = Instant::now() + Duration::from_secs(seconds);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < until, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The real agent against the real server: scheduled scans of a fixture root report a
/// vulnerable package and host risks; verify-fix keeps the finding open while the package is
/// old and closes it once the fixture's dpkg database says it was upgraded; host checks on
/// demand close a risk that was fixed; a new database is matched without a new inventory;
/// upgrades are refused because the configuration does not enable them.
#[tokio::test]
async fn the_agent_scans_verifies_fixes_and_runs_host_checks_on_demand() {
    let api = Api::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = support::agent_config(&api.base, api.store.as_ref(), dir.path()).await;
    let root = config.scans.host_root.clone();
    write_fixture_root(&root, "1:1.2.13.dfsg-1");
    let vulndb = config.data_dir.join("vulndb.sqlite");
    import_advisory(
        &vulndb,
        dir.path(),
        &osv_advisory("CVE-2099-0001", "1:1.2.13.dfsg-2"),
    )
    .await;
    config.scans.container_images = false;
    let agent = support::RunningAgent::start(config).await;

    // Scheduled scans: the vulnerable package and the host risk arrive.
    let viewer = api.token("vera", "viewer").await;
    let finding = eventually("the zlib1g vulnerability", 60, || async {
        let (_, page) = api
            .request(
                "GET",
                "/api/v1/vulnerabilities?status=open",
                &viewer,
                Value::Null,
            )
            .await;
        page["items"].as_array()?.first().cloned()
    })
    .await;
    assert_eq!(finding["rule"], "CVE-2099-0001");
    assert_eq!(finding["details"]["package"], "zlib1g");
    assert_eq!(finding["details"]["installed_version"], "1:1.2.13.dfsg-1");
    assert_eq!(finding["asset"]["node"], "node-1");
    let finding_id = finding["id"].as_str().unwrap().to_owned();
    let root_login = eventually("PAL-HOST-001", 60, || async {
        let (_, page) = api
            .request(
                "GET",
                "/api/v1/baseline-risks?status=open&limit=1000",
                &viewer,
                Value::Null,
            )
            .await;
        page["items"]
            .as_array()?
            .iter()
            .find(|risk| risk["rule"] == "PAL-HOST-001")
            .cloned()
    })
    .await;

    // Verify fix while the package is still old: the finding stays open.
    let operator = api.token("otto", "operator").await;
    let verify = |expected: &'static str| {
        let api = &api;
        let operator = operator.clone();
        let finding_id = finding_id.clone();
        async move {
            let (status, started) = api.verify_fix(&operator, &finding_id).await;
            assert_eq!(status, StatusCode::CREATED, "{started}");
            let task_id = started["task"]["id"].as_str().unwrap().to_owned();
            let task = api.finished_task(&task_id, &operator).await;
            assert_eq!(task["state"], "done", "{task}");
            let verifications = api
                .store
                .fix_verifications(Uuid::parse_str(&finding_id).unwrap())
                .await
                .unwrap();
            assert_eq!(verifications[0].state.as_str(), expected, "{task}");
            task
        }
    };
    let task = verify("still_vulnerable").await;
    assert_eq!(task["result"]["verdict"]["fixed"], false);
    assert!(
        task["result"]["message"]
            .as_str()
            .unwrap()
            .starts_with("still vulnerable"),
        "{task}"
    );
    let (_, shown) = api
        .request(
            "GET",
            &format!("/api/v1/vulnerabilities/{finding_id}"),
            &viewer,
            Value::Null,
        )
        .await;
    assert_eq!(shown["status"], "open");

    // "Upgrade" the package in the fixture: the verification closes the finding.
    set_zlib_version(&root, "1:1.2.13.dfsg-2");
    let task = verify("fixed").await;
    assert_eq!(
        task["result"]["verdict"]["installed_versions"],
        json!(["1:1.2.13.dfsg-2"])
    );
    let (_, shown) = api
        .request(
            "GET",
            &format!("/api/v1/vulnerabilities/{finding_id}"),
            &viewer,
            Value::Null,
        )
        .await;
    assert_eq!(shown["status"], "fixed", "{shown}");

    // Host checks on demand: root login fixed in the fixture, the risk is resolved.
    std::fs::write(root.join("etc/ssh/sshd_config"), "PermitRootLogin no\n").unwrap();
    let agent_id = api.store.agents().await.unwrap()[0].id;
    let (status, task) = api
        .request(
            "POST",
            &format!("/api/v1/agents/{agent_id}/tasks"),
            &operator,
            json!({ "spec": { "kind": "run_host_checks" } }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{task}");
    let task_id = task["id"].as_str().unwrap().to_owned();
    let task = api.finished_task(&task_id, &viewer).await;
    assert_eq!(task["state"], "done", "{task}");
    assert!(
        task["result"]["message"]
            .as_str()
            .unwrap()
            .starts_with("host checks ran"),
        "{task}"
    );
    let (_, risk) = api
        .request(
            "GET",
            &format!(
                "/api/v1/baseline-risks/{}",
                root_login["id"].as_str().unwrap()
            ),
            &viewer,
            Value::Null,
        )
        .await;
    assert_eq!(risk["status"], "fixed", "{risk}");

    // A new advisory in the database is matched against the kept inventory.
    import_advisory(
        &vulndb,
        dir.path(),
        &osv_advisory("CVE-2099-0002", "1:1.2.13.dfsg-3"),
    )
    .await;
    eventually("CVE-2099-0002 after the database changed", 60, || async {
        let (_, page) = api
            .request(
                "GET",
                "/api/v1/vulnerabilities?status=open",
                &viewer,
                Value::Null,
            )
            .await;
        page["items"]
            .as_array()?
            .iter()
            .any(|item| {
                item["rule"] == "CVE-2099-0002"
                    && item["details"]["installed_version"] == "1:1.2.13.dfsg-2"
            })
            .then_some(())
    })
    .await;

    // Upgrades are off unless the agent's configuration enables them.
    let (status, task) = api
        .request("POST", &format!("/api/v1/agents/{agent_id}/tasks"), ADMIN, json!({ "spec": {
            "kind": "upgrade_package", "ecosystem": "Debian:12", "package": "zlib1g", "version": "1:1.2.13.dfsg-3" } }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{task}");
    let task_id = task["id"].as_str().unwrap().to_owned();
    let task = api.finished_task(&task_id, &viewer).await;
    assert_eq!(task["state"], "failed");
    assert!(
        task["result"]["message"]
            .as_str()
            .unwrap()
            .contains("fix.enabled"),
        "{task}"
    );

    agent.stop().await;
}

/// The image of a running podman container is inventoried through the container's root, and
/// its vulnerability is reported on the image asset (by digest), beside the host's.
#[tokio::test]
async fn the_agent_scans_the_images_of_running_podman_containers() {
    let podman = std::process::Command::new("podman")
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success());
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| output.stdout.trim_ascii() == b"0");
    if !palisade_testdata::capability("root and podman", podman && root) {
        return;
    }
    let api = Api::start().await;
    let dir = tempfile::tempdir().unwrap();
    // The image: busybox and a dpkg database with the old zlib1g.
    let image_root = dir.path().join("image");
    write_fixture_root(&image_root, "1:1.2.13.dfsg-1");
    std::fs::create_dir_all(image_root.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", image_root.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", image_root.join("bin/sleep")).unwrap();
    let suffix = Uuid::now_v7().simple().to_string();
    let (cleanup, _) = palisade_testdata::PodmanContainer::run(
        &image_root,
        &dir.path().join("image.tar"),
        "palisade-scan-test",
        &suffix[20..],
        &["/bin/sleep", "300"],
    );
    let image_id = run_checked(
        "podman",
        &["image", "inspect", "--format", "{{.Id}}", &cleanup.image],
    );

    // The host root is empty: every vulnerability found is the image's.
    let config = support::agent_config(&api.base, api.store.as_ref(), dir.path()).await;
    import_advisory(
        &config.data_dir.join("vulndb.sqlite"),
        dir.path(),
        &osv_advisory("CVE-2099-0001", "1:1.2.13.dfsg-2"),
    )
    .await;
    let agent = support::RunningAgent::start(config).await;
    let viewer = api.token("vera", "viewer").await;
    let finding = eventually("the image's vulnerability", 60, || async {
        let (_, page) = api
            .request(
                "GET",
                "/api/v1/vulnerabilities?limit=1000",
                &viewer,
                Value::Null,
            )
            .await;
        // Other running containers are scanned too: pick this test's image.
        page["items"]
            .as_array()?
            .iter()
            .find(|item| item["asset"]["image"] == cleanup.image.as_str())
            .cloned()
    })
    .await;
    assert_eq!(finding["details"]["package"], "zlib1g");
    assert_eq!(
        finding["asset"]["image_digest"],
        format!("sha256:{image_id}")
    );
    assert_eq!(finding["asset"]["image"], cleanup.image.as_str());
    assert_eq!(finding["asset"]["node"], "node-1");
    agent.stop().await;
    drop(cleanup);
}

/// A containerd daemon of this test's own (root, state and socket in a temporary folder, no
/// CRI plugin: it would configure host networking); killed, and its mounts undone, on drop.
struct Containerd {
    daemon: std::process::Child,
    dir: std::path::PathBuf,
}

impl Containerd {
    fn start(dir: &std::path::Path) -> Containerd {
        std::fs::create_dir_all(dir).unwrap();
        let config = dir.join("config.toml");
        std::fs::write(
            &config,
            "version = 2\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n",
        )
        .unwrap();
        let daemon = std::process::Command::new("containerd")
            .arg("--config")
            .arg(&config)
            .arg("--root")
            .arg(dir.join("root"))
            .arg("--state")
            .arg(dir.join("state"))
            .arg("--address")
            .arg(dir.join("containerd.sock"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let containerd = Containerd {
            daemon,
            dir: dir.to_owned(),
        };
        let until = Instant::now() + Duration::from_secs(20);
        while !containerd.ctr(&["version"]).status.success() {
            assert!(Instant::now() < until, "containerd did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        containerd
    }

    fn ctr(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new("ctr")
            .arg("--address")
            .arg(self.dir.join("containerd.sock"))
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        if let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") {
            for mount_point in mounts
                .lines()
                .filter_map(|line| line.split_whitespace().nth(1))
            {
                if std::path::Path::new(mount_point).starts_with(&self.dir) {
                    let _ = std::process::Command::new("umount")
                        .args(["-l", mount_point])
                        .output();
                }
            }
        }
    }
}

/// Removes a runc container, a containerd container and the podman image, even when the test
/// fails.
struct RuntimeCleanup<'a> {
    runc: String,
    containerd: Option<(&'a Containerd, String)>,
    image: String,
}

impl Drop for RuntimeCleanup<'_> {
    fn drop(&mut self) {
        let _ = std::process::Command::new("runc")
            .args(["delete", "--force", &self.runc])
            .output();
        if let Some((containerd, id)) = &self.containerd {
            let _ = containerd.ctr(&["task", "kill", "-s", "KILL", id]);
            std::thread::sleep(Duration::from_millis(300));
            let _ = containerd.ctr(&["task", "delete", "--force", id]);
            let _ = containerd.ctr(&["container", "rm", id]);
            // ctr's cgroup is /default/<id>: remove it and, when no other container of the
            // namespace is left, its parent.
            for hierarchy in std::fs::read_dir("/sys/fs/cgroup").into_iter().flatten() {
                let namespace = hierarchy.unwrap().path().join("default");
                let _ = std::fs::remove_dir(namespace.join(id));
                let _ = std::fs::remove_dir(namespace);
            }
        }
        let _ = std::process::Command::new("podman")
            .args(["rmi", "--force", &self.image])
            .output();
    }
}

/// Containers of runc and containerd are found without podman: a plain runc busybox bundle
/// (no image: inventoried as the container) and a `ctr run` container (its image and digest
/// from containerd's bolt metadata), both inventoried through /proc/<pid>/root by the
/// scheduled scan, their vulnerability reported on their own assets.
#[tokio::test]
async fn the_agent_inventories_runc_and_containerd_containers() {
    let available = |program: &str| {
        std::process::Command::new(program)
            .arg("--version")
            .output()
            .is_ok_and(|output| output.status.success())
    };
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| output.stdout.trim_ascii() == b"0");
    if !palisade_testdata::capability(
        "root, runc, containerd, ctr, podman and skopeo",
        root && ["runc", "containerd", "ctr", "podman", "skopeo"]
            .into_iter()
            .all(available),
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // One root file system: busybox and a dpkg database with the old zlib1g.
    let bundle = dir.path().join("bundle");
    let rootfs = bundle.join("rootfs");
    write_fixture_root(&rootfs, "1:1.2.13.dfsg-1");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    for applet in ["sleep", "sh"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
    }
    let suffix = Uuid::now_v7().simple().to_string()[20..].to_owned();
    let containerd = Containerd::start(&dir.path().join("containerd"));
    let mut cleanup = RuntimeCleanup {
        runc: format!("palisade-inv-runc-{suffix}"),
        containerd: None,
        image: format!("localhost/palisade-inv:{suffix}"),
    };

    // The runc container.
    run_checked("runc", &["spec", "--bundle", bundle.to_str().unwrap()]);
    let spec_path = bundle.join("config.json");
    let mut spec: Value = serde_json::from_slice(&std::fs::read(&spec_path).unwrap()).unwrap();
    spec["process"]["terminal"] = json!(false);
    spec["process"]["args"] = json!(["/bin/sleep", "300"]);
    std::fs::write(&spec_path, spec.to_string()).unwrap();
    let status = std::process::Command::new("runc")
        .args([
            "run",
            "--detach",
            "--bundle",
            bundle.to_str().unwrap(),
            &cleanup.runc,
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "runc run: {status}");

    // The containerd container, from the same files as an image.
    let archive = dir.path().join("rootfs.tar");
    palisade_testdata::tar_directory(&rootfs, &archive);
    run_checked(
        "podman",
        &["import", archive.to_str().unwrap(), &cleanup.image],
    );
    let reference = format!("docker.io/library/palisade-inv:{suffix}");
    let image_archive = dir.path().join("image.tar");
    run_checked(
        "skopeo",
        &[
            "copy",
            &format!("containers-storage:{}", cleanup.image),
            &format!("docker-archive:{}:{reference}", image_archive.display()),
        ],
    );
    let imported = containerd.ctr(&["image", "import", image_archive.to_str().unwrap()]);
    assert!(imported.status.success(), "{imported:?}");
    let ctr_id = format!("palisade-inv-ctr-{suffix}");
    cleanup.containerd = Some((&containerd, ctr_id.clone()));
    let started = std::process::Command::new("ctr")
        .arg("--address")
        .arg(containerd.dir.join("containerd.sock"))
        .args(["run", "--detach", &reference, &ctr_id, "/bin/sleep", "300"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(started.success(), "ctr run: {started}");

    let api = Api::start().await;
    let mut config = support::agent_config(&api.base, api.store.as_ref(), dir.path()).await;
    import_advisory(
        &config.data_dir.join("vulndb.sqlite"),
        dir.path(),
        &osv_advisory("CVE-2099-0001", "1:1.2.13.dfsg-2"),
    )
    .await;
    config.scans.container_services = false;
    config.scans.containerd_root = containerd.dir.join("root");
    config.scans.containerd_state = containerd.dir.join("state");
    let agent = support::RunningAgent::start(config).await;
    let viewer = api.token("vera", "viewer").await;
    let (runc_finding, ctr_finding) = eventually("both containers' vulnerability", 90, || async {
        let (_, page) = api
            .request(
                "GET",
                "/api/v1/vulnerabilities?limit=1000",
                &viewer,
                Value::Null,
            )
            .await;
        let items = page["items"].as_array()?;
        let runc = items
            .iter()
            .find(|item| item["asset"]["container_id"] == cleanup.runc.as_str())?;
        let ctr = items
            .iter()
            .find(|item| item["asset"]["image"] == reference.as_str())?;
        Some((runc.clone(), ctr.clone()))
    })
    .await;
    assert_eq!(runc_finding["rule"], "CVE-2099-0001");
    assert_eq!(runc_finding["details"]["package"], "zlib1g");
    assert_eq!(
        runc_finding["asset"]["container_name"],
        cleanup.runc.as_str()
    );
    assert!(runc_finding["asset"]["image"].is_null(), "{runc_finding}");
    assert_eq!(ctr_finding["rule"], "CVE-2099-0001");
    assert!(
        ctr_finding["asset"]["image_digest"]
            .as_str()
            .is_some_and(|digest| digest.starts_with("sha256:")),
        "{ctr_finding}"
    );
    agent.stop().await;
    drop(cleanup);
    drop(containerd);
}
