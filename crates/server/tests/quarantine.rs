//! Quarantined files over a real socket: the real agent reports its quarantine directory,
//! viewers list it, viewers cannot restore, a hostile or unknown id is refused, and an
//! operator's restore — from the API or from the console's CSRF-protected form — travels
//! through the task channel to the agent, which puts the real file back with its content and
//! mode and reports the quarantine again (now without it).

mod support;

use std::{
    os::unix::fs::PermissionsExt,
    time::{Duration, Instant},
};

use palisade_malware::Quarantine;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use support::Server;

const ADMIN: &str = "quarantine-test-admin-token-0123456789";

/// A client for the console, whose answers to forms are redirects to look at.
fn no_redirect() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A console session: its cookie and CSRF token.
struct ConsoleSession {
    cookie: String,
    csrf: String,
}

impl Server {
    /// Logs into the console with `token`: the session cookie and its CSRF token.
    async fn console_login(&self, token: &str) -> ConsoleSession {
        let cookie =
            support::console_login(&no_redirect(), self.base(), token, "/console/quarantine").await;
        let mut session = ConsoleSession {
            cookie,
            csrf: String::new(),
        };
        let (_, page) = self.console_get("/console/quarantine", &session).await;
        session.csrf = page
            .split("data-csrf=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap()
            .to_owned();
        session
    }

    async fn console_get(&self, path: &str, session: &ConsoleSession) -> (StatusCode, String) {
        let response = no_redirect()
            .get(format!("{}{path}", self.base()))
            .header(reqwest::header::COOKIE, &session.cookie)
            .send()
            .await
            .unwrap();
        (response.status(), response.text().await.unwrap())
    }

    /// Posts a console form; the status and the redirect's location.
    async fn console_post(
        &self,
        path: &str,
        session: &ConsoleSession,
        csrf: Option<&str>,
    ) -> (StatusCode, String) {
        let form: Vec<(&str, &str)> = csrf.map(|csrf| ("csrf", csrf)).into_iter().collect();
        let response = no_redirect()
            .post(format!("{}{path}", self.base()))
            .header(reqwest::header::COOKIE, &session.cookie)
            .form(&form)
            .send()
            .await
            .unwrap();
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        (response.status(), location)
    }

    /// The listing, once `check` accepts it (waiting up to 30 s).
    async fn quarantine_when(&self, token: &str, what: &str, check: impl Fn(&[Value]) -> bool) {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let (status, body) = self.get("/api/v1/quarantine", token).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            if check(body.as_array().unwrap()) {
                return;
            }
            assert!(
                Instant::now() < until,
                "timed out waiting for {what}: {body:#}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

#[tokio::test]
async fn quarantine_is_listed_and_restored_through_the_agent() {
    let api = Server::start(ADMIN).await;
    let dir = tempfile::tempdir().unwrap();
    let infected = dir.path().join("www/upload.php");
    std::fs::create_dir_all(infected.parent().unwrap()).unwrap();
    // What the files hold does not matter here (nothing is scanned): plain text, so that this
    // source is not itself flagged by the default rule pack.
    let content = b"quarantined content, first file\n";
    std::fs::write(&infected, content).unwrap();
    std::fs::set_permissions(&infected, std::fs::Permissions::from_mode(0o640)).unwrap();
    let second = dir.path().join("www/shell.jsp");
    std::fs::write(&second, b"quarantined content, second file\n").unwrap();
    let quarantine_dir = dir.path().join("quarantine");
    let quarantine = Quarantine::open(&quarantine_dir).unwrap();
    let record = quarantine
        .quarantine(&infected, "WebShell_PHP_Eval")
        .unwrap();
    let second_record = quarantine.quarantine(&second, "WebShell_JSP_Exec").unwrap();
    assert!(!infected.exists() && !second.exists());

    let data_dir = dir.path().join("agent");
    std::fs::create_dir_all(&data_dir).unwrap();
    let mut config =
        palisade_agent::AgentConfig::new(api.base().to_owned(), &data_dir, "prod", "node-q");
    config.join_token = Some(
        palisade_server::issue_join_token(api.running.store.as_ref(), "test agent")
            .await
            .unwrap(),
    );
    config.scans.enabled = false;
    config.quarantine_dir = Some(quarantine_dir.clone());
    let outbox = palisade_agent::Outbox::open(&data_dir).await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let agent = tokio::spawn(async move {
        let status = palisade_agent::AgentStatus::default();
        palisade_agent::run(config, outbox, &status, async {
            let _ = stopped.await;
        })
        .await
    });

    // The agent reports its quarantine; a viewer sees the entry with its node.
    let viewer = api.token("vera", "viewer").await;
    let id = record.id.to_string();
    api.quarantine_when(&viewer, "the agent's quarantine entries", |files| {
        files.len() == 2
    })
    .await;
    let (_, files) = api.get("/api/v1/quarantine", &viewer).await;
    let file = files
        .as_array()
        .unwrap()
        .iter()
        .find(|file| file["id"] == id.as_str())
        .unwrap();
    assert_eq!(file["original_path"], infected.display().to_string());
    assert_eq!(file["rule"], "WebShell_PHP_Eval");
    assert_eq!(file["sha256"], record.hashes.sha256.as_str());
    assert_eq!(file["node"], "node-q");
    assert_eq!(file["cluster"], "prod");

    // A viewer cannot restore; hostile and unknown ids are refused before anything is queued.
    let restore = format!("/api/v1/quarantine/{id}/restore");
    let (status, body) = api.post(&restore, &viewer, &Value::Null).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let operator = api.token("otto", "operator").await;
    for hostile in ["..%2F..%2Fetc%2Fpasswd", "not-a-uuid", "%00"] {
        let (status, body) = api
            .post(
                &format!("/api/v1/quarantine/{hostile}/restore"),
                &operator,
                &Value::Null,
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{hostile}: {body}");
    }
    let unknown = uuid::Uuid::new_v4();
    let (status, body) = api
        .post(
            &format!("/api/v1/quarantine/{unknown}/restore"),
            &operator,
            &Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    // Nor can an operator queue the task directly for an agent of its choice.
    let (status, body) = api
        .post(
            &format!("/api/v1/agents/{}/tasks", file["agent_id"].as_str().unwrap()),
            &operator,
            &json!({"spec": {"kind": "restore_quarantined", "entry_id": id, "original_path": "/etc/passwd"}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // The operator's restore reaches the agent, which puts the file back.
    let (status, task) = api.post(&restore, &operator, &Value::Null).await;
    assert_eq!(status, StatusCode::CREATED, "{task}");
    assert_eq!(task["spec"]["kind"], "restore_quarantined");
    let task_path = format!("/api/v1/tasks/{}", task["id"].as_str().unwrap());
    let until = Instant::now() + Duration::from_secs(30);
    let finished = loop {
        let (_, task) = api.get(&task_path, &viewer).await;
        if task["state"] == "done" || task["state"] == "failed" {
            break task;
        }
        assert!(
            Instant::now() < until,
            "the restore task did not finish: {task:#}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(finished["state"], "done", "{finished:#}");
    assert_eq!(std::fs::read(&infected).unwrap(), content);
    let mode = std::fs::metadata(&infected).unwrap().permissions().mode();
    assert_eq!(mode & 0o7777, 0o640);
    api.quarantine_when(&viewer, "the restored entry to leave the list", |files| {
        files.len() == 1
    })
    .await;

    // Restoring it again is refused: the entry left the list with the agent's new report.
    let (status, body) = api.post(&restore, &operator, &Value::Null).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // The audit log names who asked for the restore.
    let (status, audit) = api.get("/api/v1/audit?limit=100", ADMIN).await;
    assert_eq!(status, StatusCode::OK, "{audit}");
    let entries = audit["items"].as_array().cloned().unwrap_or_default();
    assert!(
        entries
            .iter()
            .any(|entry| entry["actor"] == "otto"
                && entry["details"]["kind"] == "restore_quarantined"),
        "{audit:#}"
    );

    // The console lists the other file; a viewer sees no restore button and cannot post one,
    // a post without the session's CSRF token is refused, and an operator's restore goes
    // through the same task channel.
    let second_id = second_record.id.to_string();
    let restore_form = format!("/console/quarantine/{second_id}/restore");
    let viewer_session = api.console_login(&viewer).await;
    let (status, page) = api
        .console_get("/console/quarantine", &viewer_session)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(&second.display().to_string()), "{page}");
    assert!(page.contains("WebShell_JSP_Exec"), "{page}");
    assert!(
        !page.contains(&restore_form),
        "a viewer is offered a restore"
    );
    let (status, _) = api
        .console_post(&restore_form, &viewer_session, Some(&viewer_session.csrf))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let operator_session = api.console_login(&operator).await;
    let (_, page) = api
        .console_get("/console/quarantine", &operator_session)
        .await;
    assert!(page.contains(&restore_form), "{page}");
    let (status, _) = api
        .console_post(&restore_form, &operator_session, None)
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a post without the CSRF token"
    );
    let (status, location) = api
        .console_post(
            &restore_form,
            &operator_session,
            Some(&operator_session.csrf),
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(
        location.starts_with("/console/quarantine?notice="),
        "{location}"
    );
    api.quarantine_when(
        &viewer,
        "the console's restore to empty the list",
        |files| files.is_empty(),
    )
    .await;
    assert!(second.exists());

    let _ = stop.send(());
    agent.await.unwrap().unwrap();
}

#[tokio::test]
async fn only_agents_report_and_hostile_reports_are_refused() {
    let api = Server::start(ADMIN).await;
    let viewer = api.token("vera", "viewer").await;
    let entry = |path: &str, sha256: &str| {
        json!({"id": uuid::Uuid::new_v4(), "original_path": path, "sha256": sha256, "size": 1,
               "rule": "r", "quarantined_at": "2026-01-01T00:00:00Z"})
    };
    let good = entry("/tmp/x", &"a".repeat(64));
    let (status, body) = api
        .post(
            "/api/v1/agents/quarantine",
            &viewer,
            &json!({"entries": [good]}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    let agent = &api.enroll("node-h", "node-h").await.token;
    for (hostile, complaint) in [
        (entry("relative/path", &"a".repeat(64)), "absolute"),
        (entry("/tmp/x", "not-hex"), "sha256"),
        (
            entry(&format!("/{}", "a".repeat(5000)), &"a".repeat(64)),
            "absolute",
        ),
    ] {
        let (status, body) = api
            .post(
                "/api/v1/agents/quarantine",
                agent,
                &json!({"entries": [hostile]}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(body.to_string().contains(complaint), "{body}");
    }
    let (status, body) = api
        .post(
            "/api/v1/agents/quarantine",
            agent,
            &json!({"entries": [good]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, 1);
    let (_, files) = api.get("/api/v1/quarantine", &viewer).await;
    assert_eq!(files.as_array().unwrap().len(), 1);
    assert_eq!(files[0]["node"], "node-h");
    // The routes are in the OpenAPI document.
    let (status, document) = api.get("/api/openapi.json", &viewer).await;
    assert_eq!(status, StatusCode::OK);
    for (path, method) in [
        ("/api/v1/quarantine", "get"),
        ("/api/v1/quarantine/{id}/restore", "post"),
        ("/api/v1/agents/quarantine", "post"),
    ] {
        assert!(
            document["paths"][path][method].is_object(),
            "{method} {path} is not documented"
        );
    }
}
