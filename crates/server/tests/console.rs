//! The console without a browser: login and sessions, CSRF, roles, every page rendering, and
//! the handling forms changing the store as the API would.

use std::sync::Arc;

use axum::{
    Router,
    body::Body,
    http::{Request, StatusCode, header},
};
use palisade_model::{
    AffectedAsset, AlertDetails, Details, FindingKind, FindingReport, ProcessInfo, Role, Severity,
    Status, Timestamp,
};
use palisade_notify::Notifier;
use palisade_server::{AppState, issue_token, load_demo, router};
use palisade_store::{AuditQuery, FindingQuery, SqliteStore, Store};
use tower::ServiceExt;
use uuid::Uuid;

struct Console {
    app: Router,
    state: AppState,
    _dir: tempfile::TempDir,
}

struct Session {
    cookie: String,
    csrf: String,
}

fn alert(exe: &str, pod: &str) -> FindingReport {
    FindingReport {
        id: Uuid::new_v4(),
        observed_at: Timestamp::now(),
        severity: Severity::High,
        rule: "Terminal shell in container".into(),
        title: format!("shell in {pod}"),
        asset: AffectedAsset {
            cluster: "prod".into(),
            namespace: Some("shop".into()),
            pod: Some(pod.into()),
            container_name: Some("web".into()),
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
            raw_event: serde_json::json!({"evt.type": "execve"}),
            ..Default::default()
        }),
        demo: false,
    }
}

impl Console {
    async fn start() -> Console {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(
            SqliteStore::open(&dir.path().join("palisade.db"))
                .await
                .unwrap(),
        );
        let state = AppState::new(store, Notifier::start(Default::default()))
            .await
            .unwrap();
        Console {
            app: router(state.clone()),
            state,
            _dir: dir,
        }
    }

    async fn token(&self, role: Role) -> String {
        let issued = issue_token(role.to_string().as_str(), role, "test", None)
            .await
            .unwrap();
        self.state
            .store
            .insert_token(&issued.record, None)
            .await
            .unwrap();
        issued.token
    }

    async fn send(&self, request: Request<Body>) -> (StatusCode, axum::http::HeaderMap, String) {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), 16 << 20)
            .await
            .unwrap();
        (status, headers, String::from_utf8_lossy(&body).into_owned())
    }

    async fn get(&self, path: &str, session: Option<&Session>) -> (StatusCode, String) {
        let mut request = Request::get(path);
        if let Some(session) = session {
            request = request.header(header::COOKIE, &session.cookie);
        }
        let (status, _, body) = self.send(request.body(Body::empty()).unwrap()).await;
        (status, body)
    }

    /// `path`'s page for `session`, which must be served (200).
    async fn page(&self, path: &str, session: &Session) -> String {
        let (status, page) = self.get(path, Some(session)).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        page
    }

    async fn post(
        &self,
        path: &str,
        session: Option<&Session>,
        form: &[(&str, &str)],
    ) -> (StatusCode, axum::http::HeaderMap, String) {
        let mut request =
            Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(session) = session {
            request = request.header(header::COOKIE, &session.cookie);
        }
        let body = serde_urlencoded::to_string(form).unwrap();
        self.send(request.body(Body::from(body)).unwrap()).await
    }

    async fn login(&self, token: &str) -> Session {
        let (status, headers, _) = self
            .post(
                "/console/login",
                None,
                &[("token", token), ("next", "/console/clusters")],
            )
            .await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        let set_cookie = headers[header::SET_COOKIE].to_str().unwrap().to_owned();
        assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
        assert!(set_cookie.contains("SameSite=Strict"), "{set_cookie}");
        let cookie = set_cookie.split(';').next().unwrap().to_owned();
        let mut session = Session {
            cookie,
            csrf: String::new(),
        };
        let (status, page) = self.get("/console/clusters", Some(&session)).await;
        assert_eq!(status, StatusCode::OK);
        session.csrf = page
            .split("data-csrf=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap()
            .to_owned();
        assert!(!session.csrf.is_empty());
        session
    }

    async fn ingest(&self, reports: &[FindingReport]) -> palisade_store::IngestOutcome {
        self.state
            .store
            .ingest(reports, &self.state.policy())
            .await
            .unwrap()
    }

    /// Ingests `total` alerts a second apart, the newest now, each titled `title(index)`.
    async fn ingest_titled_alerts(&self, total: usize, title: impl Fn(usize) -> String) {
        let now = Timestamp::now().millis();
        let reports: Vec<_> = (0..total)
            .map(|index| {
                let mut report = alert(&format!("/bin/tool-{index}"), "web");
                report.observed_at = Timestamp(now - (total - index) as i64 * 1_000);
                report.title = title(index);
                report
            })
            .collect();
        for batch in reports.chunks(2_000) {
            self.ingest(batch).await;
        }
    }

    async fn status_of(&self, id: Uuid) -> Status {
        self.state
            .store
            .get_finding(FindingKind::Alert, id)
            .await
            .unwrap()
            .unwrap()
            .status
    }
}

/// The text of an attribute's value as the browser reads it: askama writes `&` as `&#38;`
/// (`&amp;` in hand-written markup). A URL taken from the markup without this would request
/// `?a=1&#38;b=2`, which ends its query at the `#`: every parameter after the first is lost.
fn attribute_value(markup: &str) -> String {
    markup.replace("&#38;", "&").replace("&amp;", "&")
}

/// The text of the paragraph whose element has id `id` (up to its `</p>`); `what` says what the
/// page should have shown.
fn paragraph<'a>(page: &'a str, id: &str, what: &str) -> &'a str {
    page.split(&format!("id=\"{id}\""))
        .nth(1)
        .and_then(|rest| rest.split("</p>").next())
        .unwrap_or_else(|| panic!("{what}: no paragraph with id {id:?}"))
}

async fn only_alert(console: &Console) -> Uuid {
    let page = console
        .state
        .store
        .list_findings(FindingKind::Alert, &FindingQuery::default())
        .await
        .unwrap();
    page.items[0].id
}

#[tokio::test]
async fn login_refuses_bad_tokens_and_pages_need_a_session() {
    let console = Console::start().await;
    let (status, _, body) = console
        .post(
            "/console/login",
            None,
            &[("token", "pal_000000000000_nope")],
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body.contains("unknown or revoked"));
    let (status, _) = console.get("/console/clusters/prod/alerts", None).await;
    assert_eq!(
        status,
        StatusCode::SEE_OTHER,
        "a page without a session redirects to login"
    );
    let (status, _, _) = console
        .post(
            "/console/act/alerts/00000000-0000-0000-0000-000000000000/ignore",
            None,
            &[("csrf", "x")],
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a post without a session is refused"
    );
    // A cross-site login post is refused.
    let request = Request::post("/console/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::HOST, "palisade.example")
        .header(header::ORIGIN, "https://evil.example")
        .body(Body::from("token=x"))
        .unwrap();
    assert_eq!(console.send(request).await.0, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn posts_without_the_csrf_token_are_refused() {
    let console = Console::start().await;
    console.ingest(&[alert("/bin/sh", "web-1")]).await;
    let id = only_alert(&console).await;
    let session = console.login(&console.token(Role::Operator).await).await;
    let path = format!("/console/act/alerts/{id}/ignore");
    let (status, _, _) = console
        .post(&path, Some(&session), &[("reason", "x")])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = console
        .post(&path, Some(&session), &[("csrf", "wrong"), ("reason", "x")])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(console.status_of(id).await, Status::Open);
    // Another session's token does not work either.
    let other = console.login(&console.token(Role::Operator).await).await;
    let (status, _, _) = console
        .post(&path, Some(&session), &[("csrf", other.csrf.as_str())])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // The right one does, in the form or in the htmx header.
    let (status, headers, _) = console
        .post(
            &path,
            Some(&session),
            &[
                ("csrf", session.csrf.as_str()),
                ("back", "/console/clusters/prod/alerts"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(
        headers[header::LOCATION]
            .to_str()
            .unwrap()
            .contains("undo=")
    );
    assert_eq!(console.status_of(id).await, Status::Ignored);
    let request = Request::post(format!("/console/act/alerts/{id}/unignore"))
        .header(header::COOKIE, &session.cookie)
        .header("x-csrf-token", &session.csrf)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from("reason=undo"))
        .unwrap();
    assert_eq!(console.send(request).await.0, StatusCode::SEE_OTHER);
    assert_eq!(console.status_of(id).await, Status::Open);
    // Logging out ends the session.
    let (status, _, _) = console
        .post(
            "/console/logout",
            Some(&session),
            &[("csrf", session.csrf.as_str())],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        console.get("/console/clusters", Some(&session)).await.0,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn a_viewer_sees_no_handling_and_cannot_handle() {
    let console = Console::start().await;
    console.ingest(&[alert("/bin/sh", "web-1")]).await;
    let id = only_alert(&console).await;
    let viewer = console.login(&console.token(Role::Viewer).await).await;
    let (status, page) = console
        .get("/console/clusters/prod/alerts", Some(&viewer))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("shell in web-1"));
    assert!(
        !page.contains(">Handle<"),
        "no handling buttons for a viewer"
    );
    let operator = console.login(&console.token(Role::Operator).await).await;
    let (_, page) = console
        .get("/console/clusters/prod/alerts", Some(&operator))
        .await;
    assert!(page.contains(">Handle<"));
    for action in ["ignore", "handle"] {
        let (status, _, body) = console
            .post(
                &format!("/console/act/alerts/{id}/{action}"),
                Some(&viewer),
                &[("csrf", viewer.csrf.as_str())],
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    }
    let (status, _, _) = console
        .post(
            &format!("/console/verify-fix/{id}"),
            Some(&viewer),
            &[("csrf", viewer.csrf.as_str())],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Fix upgrades packages on a host: admins only, whichever buttons a page shows.
    for session in [&viewer, &operator] {
        let (status, _, body) = console
            .post(
                &format!("/console/fix/{id}"),
                Some(session),
                &[("csrf", session.csrf.as_str())],
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    }
    assert_eq!(console.status_of(id).await, Status::Open);
    assert_eq!(
        console.get("/console/audit", Some(&viewer)).await.0,
        StatusCode::FORBIDDEN,
        "the audit log is for admins"
    );
}

/// A verify-fix whose rescan task fails shows "verification failed: <reason>" with a retry
/// button, on the finding page and in the pending list.
#[tokio::test]
async fn a_failed_verification_shows_its_reason_and_a_retry() {
    let console = Console::start().await;
    let agent = palisade_store::AgentRecord {
        id: Uuid::now_v7(),
        name: "node-1".into(),
        cluster: "prod".into(),
        joined_at: Timestamp::now(),
        last_seen: Timestamp::now(),
        facts: Default::default(),
        losses: Default::default(),
    };
    console.state.store.upsert_agent(&agent).await.unwrap();
    let report = FindingReport {
        id: Uuid::new_v4(),
        observed_at: Timestamp::now(),
        severity: Severity::High,
        rule: "CVE-2099-0001".into(),
        title: "CVE-2099-0001 in zlib1g".into(),
        asset: AffectedAsset {
            cluster: "prod".into(),
            node: Some("node-1".into()),
            ..Default::default()
        },
        details: Details::Vulnerability(palisade_model::VulnerabilityDetails {
            package: "zlib1g".into(),
            ecosystem: "Debian:12".into(),
            installed_version: "1:1.2.13.dfsg-1".into(),
            fixed_versions: vec!["1:1.2.13.dfsg-2".into()],
            ..Default::default()
        }),
        demo: false,
    };
    let id = console.ingest(&[report]).await.created_ids[0].1;
    let operator = console.login(&console.token(Role::Operator).await).await;
    let finding_page = format!("/console/clusters/prod/vulnerabilities/{id}");
    let (status, _, body) = console
        .post(
            &format!("/console/verify-fix/{id}"),
            Some(&operator),
            &[("csrf", operator.csrf.as_str()), ("back", &finding_page)],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let task = console
        .state
        .store
        .tasks(agent.id, 10)
        .await
        .unwrap()
        .remove(0);
    let reason = "cannot read /var/lib/dpkg/status: permission denied";
    console
        .state
        .store
        .finish_task(
            agent.id,
            task.id,
            None,
            &palisade_model::TaskResult::failed(reason),
            Timestamp::now(),
        )
        .await
        .unwrap()
        .unwrap();

    let (_, details) = console.get(&finding_page, Some(&operator)).await;
    assert!(
        details.contains(&format!("verification failed: {reason}")),
        "{details}"
    );
    assert!(details.contains(">Retry verification<"), "{details}");
    let (_, group) = console
        .get(
            "/console/clusters/prod/vulnerabilities/group?rule=CVE-2099-0001",
            Some(&operator),
        )
        .await;
    assert!(
        group.contains(&format!("verification failed: {reason}")),
        "{group}"
    );
    assert!(group.contains(">Retry verification<"), "{group}");
    // An operator sees no fix button: upgrades are for admins.
    assert!(!group.contains("class=\"fix\""), "{group}");
    let admin = console.login(&console.token(Role::Admin).await).await;
    let (_, group) = console
        .get(
            "/console/clusters/prod/vulnerabilities/group?rule=CVE-2099-0001",
            Some(&admin),
        )
        .await;
    assert!(group.contains("class=\"fix\""), "{group}");
}

#[tokio::test]
async fn whitelisting_through_the_form_closes_and_suppresses() {
    let console = Console::start().await;
    console
        .ingest(&[alert("/bin/sh", "web-1"), alert("/bin/bash", "web-1")])
        .await;
    let session = console.login(&console.token(Role::Operator).await).await;
    let page = console
        .state
        .store
        .list_findings(FindingKind::Alert, &FindingQuery::default())
        .await
        .unwrap();
    let sh = page
        .items
        .iter()
        .find(|finding| {
            finding.title == "shell in web-1"
                && matches!(&finding.details, Details::Alert(a) if a.process.exe == "/bin/sh")
        })
        .unwrap();
    let asset_id = sh.asset_id.to_string();
    let id = sh.id.to_string();
    let form = [
        ("csrf", session.csrf.as_str()),
        ("finding", id.as_str()),
        ("cluster", "prod"),
        ("kind", "alert"),
        ("field", "process.exe"),
        ("operator", "equals"),
        ("value", "/bin/sh"),
        ("scope", "asset"),
        ("asset_id", asset_id.as_str()),
        ("reason", "admin shell"),
        ("back", "/console/clusters/prod/alerts"),
    ];
    let (status, _, preview) = console
        .post("/console/whitelist/preview", Some(&session), &form)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(preview.contains("would close 1 open finding"), "{preview}");
    let (status, headers, _) = console
        .post("/console/whitelist", Some(&session), &form)
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(
        headers[header::LOCATION]
            .to_str()
            .unwrap()
            .contains("closed+1+open")
    );
    assert_eq!(
        console.state.store.whitelist_rules().await.unwrap().len(),
        1
    );
    let (_, list) = console
        .get("/console/clusters/prod/alerts", Some(&session))
        .await;
    assert!(
        list.contains("/bin/bash")
            || list.contains(
                &page
                    .items
                    .iter()
                    .find(|f| f.id != sh.id)
                    .unwrap()
                    .id
                    .to_string()
            )
    );
    assert!(
        !list.contains(&id),
        "the whitelisted alert left the open list"
    );
    let outcome = console.ingest(&[alert("/bin/sh", "web-1")]).await;
    assert_eq!(outcome.suppressed, 1, "a new matching alert is suppressed");
}

#[tokio::test]
async fn every_view_renders_the_demo_data_and_actions_are_audited() {
    let console = Console::start().await;
    let summary = load_demo(console.state.store.as_ref()).await.unwrap();
    assert!(summary.created > 20, "{summary:?}");
    assert_eq!(
        load_demo(console.state.store.as_ref())
            .await
            .unwrap()
            .created,
        0
    );
    let admin = console.login(&console.token(Role::Admin).await).await;
    let (_, clusters) = console.get("/console/clusters", Some(&admin)).await;
    assert!(clusters.contains("/console/clusters/demo/alerts"));
    assert!(
        clusters.contains("Demo data.")
            && clusters.contains(
                "/console/clusters/demo/alerts\">demo</a> <span class=\"badge demo\">demo</span>"
            ),
        "the clusters page labels the demo cluster: {clusters}"
    );
    for section in [
        "alerts",
        "vulnerabilities",
        "baseline-risks",
        "firewall-alerts",
    ] {
        let (status, page) = console
            .get(
                &format!("/console/clusters/demo/{section}?range=all"),
                Some(&admin),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{section}: {page}");
        assert!(
            page.contains("Demo data."),
            "{section} shows the demo banner"
        );
        assert!(
            page.contains("<svg class=\"chart\""),
            "{section} has a chart"
        );
        assert!(page.contains("id=\"count-critical\""));
    }
    let (_, vulns) = console
        .get("/console/clusters/demo/vulnerabilities", Some(&admin))
        .await;
    assert!(vulns.contains("CVE-2023-0286"));
    let (status, group) = console
        .get(
            "/console/clusters/demo/vulnerabilities/group?rule=CVE-2023-0286",
            Some(&admin),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(group.contains("https://nvd.nist.gov/vuln/detail/CVE-2023-0286"));
    assert!(group.contains("apt-get install --only-upgrade openssl=1.1.1n-0+deb11u4"));
    assert_eq!(group.matches("class=\"verify-fix\"").count(), 3);

    // Verify fix is recorded and shown as pending.
    let vulnerability = console
        .state
        .store
        .list_findings(
            FindingKind::Vulnerability,
            &FindingQuery {
                rule: Some("CVE-2024-3094".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .items
        .remove(0);
    let (status, _, _) = console
        .post(
            &format!("/console/verify-fix/{}", vulnerability.id),
            Some(&admin),
            &[
                ("csrf", admin.csrf.as_str()),
                ("back", "/console/clusters/demo/vulnerabilities"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, details) = console
        .get(
            &format!(
                "/console/clusters/demo/vulnerabilities/{}",
                vulnerability.id
            ),
            Some(&admin),
        )
        .await;
    assert!(details.contains("<strong>pending</strong>"), "{details}");

    // The alert details and diagnosis.
    let alert = console
        .state
        .store
        .list_findings(
            FindingKind::Alert,
            &FindingQuery {
                rule: Some("Drop and execute new binary in container".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .items
        .remove(0);
    let (_, details) = console
        .get(
            &format!("/console/clusters/demo/alerts/{}", alert.id),
            Some(&admin),
        )
        .await;
    assert!(
        details.contains("T1204.002") && details.contains("attack.mitre.org/techniques/T1204/002/")
    );
    let (_, diagnosis) = console
        .get(
            &format!("/console/clusters/demo/alerts/{}?tab=diagnosis", alert.id),
            Some(&admin),
        )
        .await;
    assert!(diagnosis.contains("id=\"ancestry\""));
    assert!(
        diagnosis.contains("Terminal shell in container"),
        "related alerts of the same container"
    );
    let raw = diagnosis.split("id=\"raw-event\"").nth(1).unwrap();
    assert!(
        raw.contains("evt.type") && raw.contains("execve"),
        "the raw event is shown"
    );
    let (_, handle) = console
        .get(
            &format!("/console/clusters/demo/alerts/{}/handle", alert.id),
            Some(&admin),
        )
        .await;
    for (view, page) in [
        ("details", &details),
        ("diagnosis", &diagnosis),
        ("handling", &handle),
        ("pending list", &group),
    ] {
        assert!(
            page.contains("Demo data."),
            "the {view} page shows the demo banner"
        );
    }

    // A baseline exception through the form.
    let (status, headers, body) = console
        .post(
            "/console/exceptions",
            Some(&admin),
            &[
                ("csrf", admin.csrf.as_str()),
                ("check", "PAL-K8S-001"),
                ("cluster", "demo"),
                ("namespace", "shop"),
                ("reason", "sized by the HPA"),
                ("owner", "platform"),
                ("expires", "2099-12-31"),
                ("back", "/console/clusters/demo/baseline-risks"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert!(
        headers[header::LOCATION]
            .to_str()
            .unwrap()
            .contains("covers+2+open")
    );

    // Edit a firewall rule; a bad port range is refused with the reason.
    let rule = console
        .state
        .store
        .firewall_rules()
        .await
        .unwrap()
        .remove(0);
    let path = format!("/console/firewall-rules/{}", rule.id);
    let (status, _, body) = console
        .post(
            &path,
            Some(&admin),
            &[
                ("csrf", admin.csrf.as_str()),
                ("name", "pools"),
                ("source", "any"),
                ("destination", "pools"),
                ("ports", "9-1"),
                ("action", "block"),
                ("priority", "1"),
                ("enabled", "1"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("port range 9-1 is invalid"));
    let (status, _, _) = console
        .post(
            &path,
            Some(&admin),
            &[
                ("csrf", admin.csrf.as_str()),
                ("name", "pools"),
                ("source", "any"),
                ("destination", "pools"),
                ("ports", "3333-3336, 14444"),
                ("protocol", "TCP"),
                ("action", "alert"),
                ("priority", "1"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let saved = console
        .state
        .store
        .firewall_rule(rule.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            saved.rule.name.as_str(),
            saved.rule.enabled,
            saved.rule.ports.len()
        ),
        ("pools", false, 2)
    );

    let (status, audit) = console.get("/console/audit", Some(&admin)).await;
    assert_eq!(status, StatusCode::OK);
    for action in [
        "firewall_rule.update",
        "exception.create",
        "vulnerability.verify_fix",
    ] {
        assert!(audit.contains(action), "{action} in the audit page");
    }
    let entries = console
        .state
        .store
        .audit_log(&AuditQuery {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        entries
            .items
            .iter()
            .any(|entry| entry.action == "firewall_rule.update"
                && entry.details["before"]["name"] == rule.rule.name)
    );
}

#[tokio::test]
async fn a_short_search_term_says_how_far_it_searched_and_offers_older_findings() {
    let console = Console::start().await;
    let session = console.login(&console.token(Role::Viewer).await).await;
    let window = palisade_store::SearchWindow::FINDINGS as usize;
    let total = window + 50;
    // Three alerts hold "q7": two among the oldest fifty, one among the newest.
    let holding = [5, 20, window + 40];
    console
        .ingest_titled_alerts(total, |index| {
            if holding.contains(&index) {
                format!("beacon Q7 #{index}")
            } else {
                format!("shell #{index}")
            }
        })
        .await;

    let (status, page) = console
        .get("/console/clusters/prod/alerts?q=q7", Some(&session))
        .await;
    assert_eq!(status, StatusCode::OK);
    let note = paragraph(
        &page,
        "search-window",
        "the page says the search was bounded",
    );
    assert!(note.contains("newest 5,000 findings"), "{note}");
    assert!(note.contains("search older findings"), "{note}");
    assert!(page.contains(&format!("beacon Q7 #{}", window + 40)));
    assert!(!page.contains("beacon Q7 #20"));
    // The high counter counts the window's one match, a lower bound.
    assert!(page.contains("<span class=\"n\">≥ 1</span> <span class=\"label\">high</span>"));
    let older = page
        .split("id=\"next-page\"")
        .next()
        .and_then(|before| before.rsplit("href=\"").next())
        .and_then(|rest| rest.split('"').next())
        .map(attribute_value)
        .unwrap();
    assert!(page.contains(">Search older findings</a>"));

    let (status, page) = console.get(&older, Some(&session)).await;
    assert_eq!(status, StatusCode::OK, "{older}");
    assert!(
        page.contains("beacon Q7 #20") && page.contains("beacon Q7 #5"),
        "{older}: {page}"
    );
    assert!(!page.contains(&format!("beacon Q7 #{}", window + 40)));
    assert!(!page.contains("id=\"next-page\""));

    // A term of three characters searches everything.
    let (_, page) = console
        .get("/console/clusters/prod/alerts?q=q7%20%23", Some(&session))
        .await;
    assert!(!page.contains("id=\"search-window\""));
    assert_eq!(page.matches("beacon Q7 #").count(), 3);
}

#[tokio::test]
async fn a_common_search_term_shows_counts_as_lower_bounds_and_a_rare_one_exactly() {
    let console = Console::start().await;
    let session = console.login(&console.token(Role::Viewer).await).await;
    let bound = palisade_store::SearchWindow::COUNTED_MATCHES as usize;
    // More "C2 server" alerts than a search counts, all high, then 30 "rare beacon" ones.
    let total = bound + 60 + 30;
    console
        .ingest_titled_alerts(total, |index| {
            if index < bound + 60 {
                format!("Outbound connection to C2 server #{index}")
            } else {
                format!("rare beacon #{index}")
            }
        })
        .await;

    let (status, page) = console
        .get(
            "/console/clusters/prod/alerts?q=C2%20server",
            Some(&session),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("<span class=\"n\">≥ 10000</span> <span class=\"label\">high</span>"),
        "the high counter is a lower bound"
    );
    let note = paragraph(&page, "count-bound", "the page says the counts are bounded");
    assert!(note.contains("At least 10,000 findings match"), "{note}");
    assert!(!page.contains("id=\"search-window\""));

    let (status, page) = console
        .get(
            "/console/clusters/prod/alerts?q=rare%20beacon",
            Some(&session),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("<span class=\"n\">30</span> <span class=\"label\">high</span>"),
        "a rare term's count is exact"
    );
    assert!(!page.contains("id=\"count-bound\""));
    assert!(!page.contains("≥"));
}

#[tokio::test]
async fn a_searched_grouped_view_counts_every_match_exactly() {
    let console = Console::start().await;
    let session = console.login(&console.token(Role::Viewer).await).await;
    let bound = palisade_store::SearchWindow::COUNTED_MATCHES as usize;
    let now = Timestamp::now().millis();
    // More "privileged" baseline risks than a search of alerts counts, one per workload: the
    // 60 oldest fail check PAL-OLD-1, the newer ones PAL-NEW-1; then 30 risks of a rarely
    // named check.
    let total = bound + 60 + 30;
    let reports: Vec<_> = (0..total)
        .map(|index| {
            let (rule, title) = match index {
                index if index < 60 => ("PAL-OLD-1", "Privileged container"),
                index if index < bound + 60 => ("PAL-NEW-1", "Privileged container"),
                _ => ("PAL-RARE-1", "Host path mounted read-write"),
            };
            FindingReport {
                id: Uuid::new_v4(),
                observed_at: Timestamp(now - (total - index) as i64 * 1_000),
                severity: Severity::High,
                rule: rule.into(),
                title: title.into(),
                asset: AffectedAsset {
                    cluster: "prod".into(),
                    namespace: Some("shop".into()),
                    workload: Some(format!("Deployment/web-{index}")),
                    ..Default::default()
                },
                details: Details::BaselineRisk(palisade_model::BaselineDetails {
                    category: palisade_model::BaselineCategory::Workload,
                    description: String::new(),
                    remediation: String::new(),
                    evidence: Vec::new(),
                }),
                demo: false,
            }
        })
        .collect();
    for batch in reports.chunks(2_000) {
        console.ingest(batch).await;
    }

    // A common term, two characters, and a term with LIKE's wildcards and a quote (literal):
    // every group counted exactly, no bound, no note.
    for term in ["privileged", "PR", "ed%20co"] {
        let page = console
            .page(
                &format!("/console/clusters/prod/baseline-risks?q={term}"),
                &session,
            )
            .await;
        for (rule, findings) in [("PAL-OLD-1", 60), ("PAL-NEW-1", bound)] {
            assert!(
                group_row(&page, rule).contains(&format!("<td class=\"num\">{findings}</td>")),
                "{term}: {rule}: {}",
                group_row(&page, rule)
            );
        }
        assert!(!page.contains("PAL-RARE-1"), "{term}");
        assert!(!page.contains("id=\"groups-bound\""), "{term}");
        assert!(!page.contains("id=\"search-window\""), "{term}");
        assert!(!page.contains("≥"), "{term}: exact counts");
        assert!(
            page.contains(&format!(
                "<span class=\"n\">{}</span> <span class=\"label\">high</span>",
                bound + 60
            )),
            "{term}: the high counter counts every match"
        );
    }
    for term in ["%25", "_", "%27", "privileged%25"] {
        let page = console
            .page(
                &format!("/console/clusters/prod/baseline-risks?q={term}"),
                &session,
            )
            .await;
        for rule in ["PAL-OLD-1", "PAL-NEW-1", "PAL-RARE-1"] {
            assert!(!page.contains(rule), "{term}: {rule} holds no such text");
        }
    }

    let page = console
        .page(
            "/console/clusters/prod/baseline-risks?q=host%20path",
            &session,
        )
        .await;
    assert!(page.contains(">PAL-RARE-1</a>"));
    assert!(
        page.contains("<td class=\"num\">30</td>"),
        "a rare term's group counts exactly"
    );
    assert!(!page.contains("id=\"groups-bound\""));
    assert!(!page.contains("≥"));

    // Without a search, the first view groups every finding exactly, the oldest included.
    let page = console
        .page("/console/clusters/prod/baseline-risks", &session)
        .await;
    assert!(!page.contains("id=\"groups-bound\""));
    for (rule, findings) in [("PAL-OLD-1", 60), ("PAL-NEW-1", bound), ("PAL-RARE-1", 30)] {
        assert!(
            group_row(&page, rule).contains(&format!("<td class=\"num\">{findings}</td>")),
            "{rule}: {}",
            group_row(&page, rule)
        );
    }
    assert!(!page.contains("≥"));
}

/// A Debian finding matched by its source package (issue 6): the details page and the pending
/// list's fix suggestion show the source package, its installed version and the advisory's
/// fixed source version beside the binary's upgrade; a finding matched by its own name shows
/// no source.
#[tokio::test]
async fn a_finding_matched_by_its_source_package_shows_the_source_fix() {
    let console = Console::start().await;
    let session = console.login(&console.token(Role::Viewer).await).await;
    let finding = |package: &str, source: Option<(&str, &str, &str)>| FindingReport {
        id: Uuid::new_v4(),
        observed_at: Timestamp::now(),
        severity: Severity::High,
        rule: "CVE-2024-0727".into(),
        title: format!("CVE-2024-0727 in {package}"),
        asset: AffectedAsset {
            cluster: "prod".into(),
            node: Some(format!("node-{package}")),
            ..Default::default()
        },
        details: Details::Vulnerability(palisade_model::VulnerabilityDetails {
            package: package.into(),
            ecosystem: "Debian:12".into(),
            installed_version: "3.0.11-1~deb12u2".into(),
            fixed_versions: vec!["3.0.13-1~deb12u1".into()],
            source_package: source.map(|(name, _, _)| name.to_owned()),
            source_version: source.map(|(_, version, _)| version.to_owned()),
            source_fixed_versions: source
                .map(|(_, _, fixed)| vec![fixed.to_owned()])
                .unwrap_or_default(),
            fix: format!("apt-get install --only-upgrade {package}=3.0.13-1~deb12u1"),
            ..Default::default()
        }),
        demo: false,
    };
    let outcome = console
        .ingest(&[
            finding(
                "libssl3",
                Some(("openssl", "3.0.11-1~deb12u2+b1", "3.0.13-1~deb12u1")),
            ),
            finding("openssl", None),
        ])
        .await;
    let ids: Vec<Uuid> = outcome.created_ids.iter().map(|(_, id)| *id).collect();

    let (status, page) = console
        .get(
            &format!("/console/clusters/prod/vulnerabilities/{}", ids[0]),
            Some(&session),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        page.contains("<dt>Source package</dt><dd>openssl 3.0.11-1~deb12u2+b1</dd>"),
        "{page}"
    );
    assert!(page.contains("<dt>Source fixed versions</dt><dd>3.0.13-1~deb12u1</dd>"));
    let note = paragraph(
        &page,
        "source-fix",
        "the fix suggestion names the source package",
    );
    assert!(
        note.contains("<code>openssl 3.0.11-1~deb12u2+b1</code>")
            && note.contains("fixes source version <code>3.0.13-1~deb12u1</code>"),
        "{note}"
    );
    assert!(page.contains("apt-get install --only-upgrade libssl3=3.0.13-1~deb12u1"));

    let (status, page) = console
        .get(
            &format!("/console/clusters/prod/vulnerabilities/{}", ids[1]),
            Some(&session),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(!page.contains("Source package") && !page.contains("id=\"source-fix\""));

    let (status, page) = console
        .get(
            "/console/clusters/prod/vulnerabilities/group?rule=CVE-2024-0727",
            Some(&session),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let member = |id: Uuid| {
        page.split(&format!("id=\"member-{id}\""))
            .nth(1)
            .and_then(|rest| rest.split("</tr>").next())
            .expect("the pending list has the finding")
            .to_owned()
    };
    let with_source = member(ids[0]);
    assert!(
        with_source.contains("libssl3=3.0.13-1~deb12u1</code><div class=\"sub source-fix\">built from source <code>openssl 3.0.11-1~deb12u2+b1</code>, fixed in source <code>3.0.13-1~deb12u1</code>"),
        "{with_source}"
    );
    assert!(!member(ids[1]).contains("source-fix"));
}

/// The clusters page lists each enrolled agent's node with what it lost: kernel events and
/// firewall connect reports, summed over the agent's processes.
#[tokio::test]
async fn the_clusters_page_shows_what_each_node_lost() {
    let console = Console::start().await;
    let store = &console.state.store;
    let agent = palisade_store::AgentRecord {
        id: Uuid::now_v7(),
        name: "node-7".into(),
        cluster: "prod".into(),
        joined_at: Timestamp::now(),
        last_seen: Timestamp::now(),
        facts: Default::default(),
        losses: Default::default(),
    };
    store.upsert_agent(&agent).await.unwrap();
    for (process, sensor_events, connect_reports) in
        [(Uuid::new_v4(), 12, 3456), (Uuid::new_v4(), 30, 0)]
    {
        let report = palisade_model::AgentLosses {
            process,
            process_started_at: Timestamp::now(),
            sensor_events,
            sensor_events_by_cpu: Vec::new(),
            connect_reports,
            sensor_context: palisade_model::SensorContextLosses::default(),
        };
        store
            .count_agent_losses(agent.id, &report, Timestamp::now())
            .await
            .unwrap();
    }
    let viewer = console.login(&console.token(Role::Viewer).await).await;
    let (status, page) = console.get("/console/clusters", Some(&viewer)).await;
    assert_eq!(status, StatusCode::OK);
    let row = page
        .split("<th scope=\"row\">node-7</th>")
        .nth(1)
        .and_then(|rest| rest.split("</tr>").next())
        .unwrap_or_else(|| panic!("no row for node-7: {page}"));
    assert!(
        row.contains("<td>prod</td>")
            && row.contains("<td>42</td>")
            && row.contains("<td>3456</td>"),
        "{row}"
    );
}

/// Mark handled and bulk handling of similar alerts (issue 3, Handle dialog): one alert marked
/// handled leaves the open list; "handle similar" closes the other open alerts of its rule and
/// nothing of another rule, says how many, and both are in the audit log.
#[tokio::test]
async fn marking_handled_and_handling_similar_alerts_close_exactly_those() {
    let console = Console::start().await;
    let mut reports: Vec<_> = ["web-1", "web-2", "web-3"]
        .iter()
        .map(|pod| alert("/bin/sh", pod))
        .collect();
    let mut other = alert("/usr/bin/curl", "web-4");
    other.rule = "Outbound connection to C2 server".into();
    other.title = "beacon from web-4".into();
    reports.push(other);
    console.ingest(&reports).await;
    let listed = console
        .state
        .store
        .list_findings(FindingKind::Alert, &FindingQuery::default())
        .await
        .unwrap()
        .items;
    let id_of = |title: &str| {
        listed
            .iter()
            .find(|finding| finding.title == title)
            .unwrap_or_else(|| panic!("{title} stored"))
            .id
    };
    let operator = console.login(&console.token(Role::Operator).await).await;
    let back = "/console/clusters/prod/alerts";

    let (status, headers, body) = console
        .post(
            &format!("/console/act/alerts/{}/handle", id_of("shell in web-1")),
            Some(&operator),
            &[("csrf", operator.csrf.as_str()), ("back", back)],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert!(
        headers[header::LOCATION]
            .to_str()
            .unwrap()
            .starts_with(back)
    );
    assert_eq!(
        console.status_of(id_of("shell in web-1")).await,
        Status::Handled
    );
    let (_, page) = console.get(back, Some(&operator)).await;
    assert!(
        !page.contains("shell in web-1"),
        "handled leaves the open list"
    );
    assert!(page.contains("shell in web-2"));

    let (status, headers, body) = console
        .post(
            &format!("/console/similar/alerts/{}", id_of("shell in web-2")),
            Some(&operator),
            &[
                ("csrf", operator.csrf.as_str()),
                ("action", "handle"),
                ("reason", "known admin sessions"),
                ("back", back),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let location = headers[header::LOCATION].to_str().unwrap();
    assert!(
        location.contains("notice=2%20similar%20findings")
            || location.contains("notice=2+similar+findings"),
        "{location}"
    );
    for title in ["shell in web-2", "shell in web-3"] {
        assert_eq!(
            console.status_of(id_of(title)).await,
            Status::Handled,
            "{title}"
        );
    }
    assert_eq!(
        console.status_of(id_of("beacon from web-4")).await,
        Status::Open,
        "another rule's alert stays open"
    );
    let (_, page) = console.get(back, Some(&operator)).await;
    assert!(page.contains("beacon from web-4"));
    assert!(!page.contains("shell in web-"));

    let admin = console.login(&console.token(Role::Admin).await).await;
    let (status, audit) = console.get("/console/audit", Some(&admin)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        audit.contains("known admin sessions"),
        "the reason is audited"
    );
}

#[tokio::test]
async fn logout_needs_the_csrf_token_and_ends_the_session_on_the_server() {
    let console = Console::start().await;
    let session = console.login(&console.token(Role::Operator).await).await;

    let (status, _, body) = console
        .post("/console/logout", Some(&session), &[("csrf", "forged")])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _, body) = console.post("/console/logout", Some(&session), &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _) = console.get("/console/clusters", Some(&session)).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a refused logout leaves the session alive"
    );

    let (status, headers, body) = console
        .post(
            "/console/logout",
            Some(&session),
            &[("csrf", session.csrf.as_str())],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(headers[header::LOCATION], "/console/login");
    let cleared = headers[header::SET_COOKIE].to_str().unwrap();
    let cookie_name = session.cookie.split('=').next().unwrap();
    assert!(
        cleared.starts_with(&format!("{cookie_name}=;")) && cleared.contains("Max-Age=0"),
        "the browser is told to drop the cookie: {cleared}"
    );

    // The old cookie, replayed, is refused: the server forgot the session.
    let request = Request::get("/console/clusters/prod/alerts")
        .header(header::COOKIE, &session.cookie)
        .body(Body::empty())
        .unwrap();
    let (status, headers, _) = console.send(request).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "a page redirects to login");
    assert!(
        headers[header::LOCATION]
            .to_str()
            .unwrap()
            .starts_with("/console/login"),
        "{:?}",
        headers[header::LOCATION]
    );
    let (status, _, _) = console
        .post(
            &format!("/console/act/alerts/{}/ignore", Uuid::new_v4()),
            Some(&session),
            &[("csrf", session.csrf.as_str())],
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a form posted with the old cookie and token is refused"
    );
}

/// The cells of `rule`'s row in a grouped table on `page`.
fn group_row(page: &str, rule: &str) -> String {
    page.split(&format!(">{rule}</a>"))
        .nth(1)
        .and_then(|rest| rest.split("</tr>").next())
        .unwrap_or_else(|| panic!("{rule} is listed"))
        .to_owned()
}

/// The titles of the table's rows, top to bottom.
fn listed_titles(page: &str) -> Vec<String> {
    page.split("<tr id=\"finding-")
        .skip(1)
        .map(|row| {
            row.split("<td><a href=\"")
                .nth(1)
                .and_then(|cell| cell.split_once("\">"))
                .and_then(|(_, rest)| rest.split("</a>").next())
                .unwrap_or_else(|| panic!("a row without a title link: {row}"))
                .to_owned()
        })
        .collect()
}

/// The target of the pager's link with id `id` ("next-page", "previous-page"), if the page
/// has one.
fn pager_link(page: &str, id: &str) -> Option<String> {
    let (before, _) = page.split_once(&format!("id=\"{id}\""))?;
    let href = before.rsplit("href=\"").next()?.split('"').next()?;
    Some(attribute_value(href))
}

/// One finding of the sort test: its severity, when it was first and last seen (minutes ago)
/// and how many times.
struct SortCase {
    severity: Severity,
    first_minutes_ago: i64,
    last_minutes_ago: i64,
    count: u32,
}

/// Five findings whose severities, first and last sightings and counts are each in a
/// different order, so that a table sorted by the wrong column shows a wrong order. Each
/// spans less than an hour, the aggregation window of runtime alerts.
const SORT_CASES: [SortCase; 5] = [
    SortCase {
        severity: Severity::Medium,
        first_minutes_ago: 50,
        last_minutes_ago: 2,
        count: 3,
    },
    SortCase {
        severity: Severity::Critical,
        first_minutes_ago: 45,
        last_minutes_ago: 12,
        count: 6,
    },
    SortCase {
        severity: Severity::Low,
        first_minutes_ago: 40,
        last_minutes_ago: 8,
        count: 2,
    },
    SortCase {
        severity: Severity::Info,
        first_minutes_ago: 35,
        last_minutes_ago: 18,
        count: 5,
    },
    SortCase {
        severity: Severity::High,
        first_minutes_ago: 30,
        last_minutes_ago: 25,
        count: 4,
    },
];

/// The reports of a sort case: its first sighting, its last, and the ones between, built by
/// `report(observed_at)`; a firewall alert counts its attempts instead.
fn sort_case_reports(
    case: &SortCase,
    firewall: bool,
    report: impl Fn(Timestamp) -> FindingReport,
) -> Vec<FindingReport> {
    // Minutes before the latest noon (UTC): a firewall alert's sightings then fall on one
    // day, whenever the test runs, and stay one finding.
    const DAY_MS: i64 = 86_400_000;
    let noon = (Timestamp::now().millis() - DAY_MS / 2).div_euclid(DAY_MS) * DAY_MS + DAY_MS / 2;
    let at = |minutes_ago: i64| Timestamp(noon - minutes_ago * MINUTE_MS);
    let mut first = report(at(case.first_minutes_ago));
    let mut last = report(at(case.last_minutes_ago));
    if firewall {
        for (report, attempts) in [(&mut first, 1), (&mut last, case.count - 1)] {
            if let Details::FirewallAlert(details) = &mut report.details {
                details.attempts = attempts;
            }
        }
        return vec![first, last];
    }
    let middle = (case.first_minutes_ago + case.last_minutes_ago) / 2;
    let mut reports = vec![first, last];
    reports.extend((2..case.count).map(|_| report(at(middle))));
    reports
}

const MINUTE_MS: i64 = 60_000;

fn firewall_alert(index: usize, severity: Severity, observed_at: Timestamp) -> FindingReport {
    FindingReport {
        id: Uuid::new_v4(),
        observed_at,
        severity,
        rule: "Blocked egress".into(),
        title: format!("sort case {index}"),
        asset: AffectedAsset {
            cluster: "prod".into(),
            namespace: Some("shop".into()),
            pod: Some("web".into()),
            ..Default::default()
        },
        details: Details::FirewallAlert(palisade_model::FirewallDetails {
            source: "shop/web".into(),
            destination: format!("10.0.0.{index}"),
            port: 443,
            protocol: "tcp".into(),
            mode: "block".into(),
            ..Default::default()
        }),
        demo: false,
    }
}

#[tokio::test]
async fn every_sortable_column_sorts_both_ways() {
    let console = Console::start().await;
    for (index, case) in SORT_CASES.iter().enumerate() {
        let alerts = sort_case_reports(case, false, |observed_at| {
            let mut report = alert(&format!("/bin/sort-{index}"), "web");
            report.observed_at = observed_at;
            report.severity = case.severity;
            report.title = format!("sort case {index}");
            report
        });
        let firewall = sort_case_reports(case, true, |observed_at| {
            firewall_alert(index, case.severity, observed_at)
        });
        // One report at a time, as sensors send them.
        for report in alerts.iter().chain(&firewall) {
            console.ingest(std::slice::from_ref(report)).await;
        }
    }
    let session = console.login(&console.token(Role::Viewer).await).await;
    type Key = fn(&SortCase) -> i64;
    let columns: [(&str, Key); 4] = [
        ("severity", |case| case.severity.rank()),
        ("first_seen", |case| -case.first_minutes_ago),
        ("last_seen", |case| -case.last_minutes_ago),
        ("count", |case| i64::from(case.count)),
    ];
    for section in ["alerts", "firewall-alerts"] {
        for (column, key) in columns {
            let mut ascending: Vec<usize> = (0..SORT_CASES.len()).collect();
            ascending.sort_by_key(|&index| key(&SORT_CASES[index]));
            for order in ["asc", "desc"] {
                let mut expected: Vec<String> = ascending
                    .iter()
                    .map(|index| format!("sort case {index}"))
                    .collect();
                if order == "desc" {
                    expected.reverse();
                }
                let path = format!(
                    "/console/clusters/prod/{section}?status=any&sort={column}&order={order}"
                );
                let (status, page) = console.get(&path, Some(&session)).await;
                assert_eq!(status, StatusCode::OK, "{path}");
                assert_eq!(listed_titles(&page), expected, "{path}");
                assert!(
                    page.contains(&format!("<option value=\"{column}\" selected>")),
                    "{path}: the form shows the sort applied"
                );
            }
        }
    }
    // A column the store cannot sort by is a clear error, not a silent default.
    let (status, page) = console
        .get("/console/clusters/prod/alerts?sort=title", Some(&session))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("cannot sort by"), "{page}");
}

#[tokio::test]
async fn walking_the_pages_visits_every_matching_alert_once() {
    let console = Console::start().await;
    // 130 alerts in "shop" with counts 1 to 3 (many ties across page boundaries) and 40 in
    // "billing" that the filter leaves out.
    let now = Timestamp::now().millis();
    let mut reports = Vec::new();
    let mut expected = std::collections::HashMap::new();
    for index in 0..170usize {
        let namespace = if index < 130 { "shop" } else { "billing" };
        let count = index % 3 + 1;
        for repeat in 0..count {
            let mut report = alert(&format!("/bin/page-{index}"), "web");
            report.asset.namespace = Some(namespace.into());
            report.title = format!("page case {index}.");
            report.observed_at = Timestamp(now - (index * 10 + repeat) as i64 * 1_000);
            reports.push(report);
        }
        if namespace == "shop" {
            expected.insert(format!("page case {index}."), count);
        }
    }
    console.ingest(&reports).await;
    let session = console.login(&console.token(Role::Viewer).await).await;

    let mut href =
        Some("/console/clusters/prod/alerts?namespace=shop&sort=count&order=asc".to_owned());
    let mut pages: Vec<Vec<String>> = Vec::new();
    let mut last_page = String::new();
    while let Some(path) = href {
        let (status, page) = console.get(&path, Some(&session)).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(pages.len() < 5, "the pager does not end: {path}");
        let titles = listed_titles(&page);
        assert!(titles.len() <= 50, "{path}: {} rows", titles.len());
        if pages.is_empty() {
            assert!(
                pager_link(&page, "previous-page").is_none(),
                "the first page has no previous page"
            );
        } else {
            assert!(
                page.contains("namespace=shop") && page.contains(">First page</a>"),
                "{path}: a later page keeps the filter and offers the first page"
            );
        }
        pages.push(titles);
        href = pager_link(&page, "next-page");
        last_page = page;
        if let Some(next) = &href {
            assert!(
                next.contains("namespace=shop")
                    && next.contains("sort=count")
                    && next.contains("order=asc"),
                "the next link keeps filter and sort: {next}"
            );
        }
    }
    assert_eq!(pages.len(), 3, "130 alerts make three pages of 50");
    // Back from the last page, one "Previous page" at a time: the same pages, in reverse.
    let mut page = last_page;
    for earlier in pages.iter().rev().skip(1) {
        let previous = pager_link(&page, "previous-page")
            .unwrap_or_else(|| panic!("no previous page link on a later page: {page}"));
        assert!(
            previous.contains("namespace=shop") && previous.contains("sort=count"),
            "the previous link keeps filter and sort: {previous}"
        );
        let (status, body) = console.get(&previous, Some(&session)).await;
        assert_eq!(status, StatusCode::OK, "{previous}");
        assert_eq!(&listed_titles(&body), earlier, "{previous}");
        page = body;
    }
    assert!(
        pager_link(&page, "previous-page").is_none(),
        "back on the first page"
    );
    let seen: Vec<String> = pages.concat();
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "an alert was listed twice");
    assert_eq!(seen.len(), expected.len(), "every matching alert is listed");
    for title in &seen {
        assert!(
            expected.contains_key(title),
            "{title} does not match the filter"
        );
    }
    let counts: Vec<usize> = seen.iter().map(|title| expected[title]).collect();
    assert!(
        counts.windows(2).all(|pair| pair[0] <= pair[1]),
        "the walk keeps the ascending count order across pages: {counts:?}"
    );
}

/// A finding of group `group` (of 66) on workload `workload` for the grouped sort test: the
/// group's findings differ in severity, assets, status-free counts, category, fix and time,
/// with many ties; workloads 0-1 are in "shop", 2 in "billing" (which the filter leaves out),
/// and groups 60-65 do not name the searched package.
fn sorted_group_report(
    kind: FindingKind,
    group: usize,
    workload: usize,
    now: i64,
) -> FindingReport {
    let rule = format!("SORT-{group:03}");
    let details = match kind {
        FindingKind::Vulnerability => {
            Details::Vulnerability(palisade_model::VulnerabilityDetails {
                // A group's workloads may differ in package: "libsorted-1 and 1 more".
                package: if group < 60 {
                    format!("libsorted-{}", (group * 7 + workload) % 5)
                } else {
                    "other".into()
                },
                ecosystem: ["Debian:12", "npm", "PyPI"][group % 3].into(),
                installed_version: "1.0".into(),
                fixed_versions: if group.is_multiple_of(4) {
                    vec!["1.1".into()]
                } else {
                    Vec::new()
                },
                ..Default::default()
            })
        }
        _ => Details::BaselineRisk(palisade_model::BaselineDetails {
            category: [
                palisade_model::BaselineCategory::Os,
                palisade_model::BaselineCategory::Container,
                palisade_model::BaselineCategory::Workload,
            ][group % 3],
            description: String::new(),
            remediation: String::new(),
            evidence: Vec::new(),
        }),
    };
    FindingReport {
        id: Uuid::new_v4(),
        observed_at: Timestamp(now - ((group * 7 + workload) % 40) as i64 * 60_000),
        severity: Severity::ALL[(group + workload) % 5],
        rule: rule.clone(),
        title: if group < 60 {
            format!("libsorted issue {group}")
        } else {
            format!("unrelated {group}")
        },
        asset: AffectedAsset {
            cluster: "prod".into(),
            namespace: Some(if workload < 2 { "shop" } else { "billing" }.into()),
            workload: Some(format!("Deployment/web-{workload}")),
            image: Some(format!("registry.example/web-{workload}:1")),
            ..Default::default()
        },
        details,
        demo: false,
    }
}

/// The ids of the groups a grouped table on `page` lists, top to bottom.
fn listed_groups(page: &str) -> Vec<String> {
    let table = page
        .split("<tbody>")
        .nth(1)
        .and_then(|rest| rest.split("</tbody>").next())
        .expect("a grouped table");
    table
        .split("<tr>")
        .skip(1)
        .filter_map(|row| {
            row.split("<td><a href=\"")
                .nth(1)
                .and_then(|cell| cell.split_once("\">"))
                .and_then(|(_, rest)| rest.split("</a>").next())
                .map(str::to_owned)
        })
        .collect()
}

/// Every column of both grouped tables sorts both ways from its header: the rows equal every
/// group of the filtered, searched findings sorted by that column (ties by id), over two pages
/// forward and back again; the header says which sort applies.
#[tokio::test]
async fn every_grouped_column_sorts_both_ways_and_pages_exactly() {
    let console = Console::start().await;
    let now = Timestamp::now().millis();
    let mut reports = Vec::new();
    for kind in [FindingKind::Vulnerability, FindingKind::BaselineRisk] {
        for group in 0..66 {
            // 1 to 3 workloads, one of them sometimes outside the filter.
            for workload in 0..=(group % 3) {
                reports.push(sorted_group_report(kind, group, workload, now));
            }
        }
    }
    console.ingest(&reports).await;
    let session = console.login(&console.token(Role::Viewer).await).await;
    let filters = "status=any&namespace=shop&q=libsorted";
    let all_columns = [
        "severity",
        "rule",
        "package",
        "category",
        "assets",
        "findings",
        "open",
        "fix_available",
        "last_seen",
    ];
    let vulnerabilities_only = ["fix_available", "package"];
    for (section, kind) in [
        ("vulnerabilities", FindingKind::Vulnerability),
        ("baseline-risks", FindingKind::BaselineRisk),
    ] {
        // Every group the filters select, in the store's default order (most severe first).
        let every = console
            .state
            .store
            .finding_groups(
                kind,
                &FindingQuery {
                    cluster: Some("prod".into()),
                    namespace: Some("shop".into()),
                    text: Some("libsorted".into()),
                    limit: 1000,
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .items;
        assert_eq!(every.len(), 60, "{section}: the groups naming the package");
        let columns = all_columns.iter().filter(|column| {
            kind == FindingKind::Vulnerability || !vulnerabilities_only.contains(*column)
        });
        for column in columns {
            for order in ["asc", "desc"] {
                let mut expected = every.clone();
                expected.sort_by(|a, b| {
                    let by_column = match *column {
                        "severity" => a.severity.rank().cmp(&b.severity.rank()),
                        "rule" => a.rule.cmp(&b.rule),
                        "package" => a.package.cmp(&b.package),
                        "category" => a.category.cmp(&b.category),
                        "assets" => a.assets.cmp(&b.assets),
                        "findings" => a.findings.cmp(&b.findings),
                        "open" => a.open.cmp(&b.open),
                        "fix_available" => a.fix_available.cmp(&b.fix_available),
                        _ => a.last_seen.cmp(&b.last_seen),
                    };
                    let by_column = if order == "desc" {
                        by_column.reverse()
                    } else {
                        by_column
                    };
                    by_column.then_with(|| a.rule.cmp(&b.rule))
                });
                let expected: Vec<String> = expected.into_iter().map(|group| group.rule).collect();

                let first = format!(
                    "/console/clusters/prod/{section}?{filters}&sort={column}&order={order}"
                );
                let page = console.page(&first, &session).await;
                // The current column's header says so and links to the other direction; no
                // other header claims the sort.
                let (direction, other) = if order == "asc" {
                    ("ascending", "desc")
                } else {
                    ("descending", "asc")
                };
                assert_eq!(page.matches("aria-sort=").count(), 1, "{first}");
                let header = page
                    .split(&format!("aria-sort=\"{direction}\"><a href=\""))
                    .nth(1)
                    .and_then(|rest| rest.split('"').next())
                    .unwrap_or_else(|| panic!("{first}: no {direction} header"));
                assert!(
                    header.contains(&format!("sort={column}&#38;order={other}"))
                        || header.contains(&format!("sort={column}&amp;order={other}")),
                    "{first}: the header toggles: {header}"
                );
                assert!(header.contains("namespace=shop") && header.contains("q=libsorted"));

                let first_groups = listed_groups(&page);
                assert_eq!(first_groups.len(), 50, "{first}");
                let next = pager_link(&page, "next-page").unwrap_or_else(|| panic!("{first}"));
                assert!(
                    next.contains(&format!("sort={column}"))
                        && next.contains(&format!("order={order}"))
                        && next.contains("q=libsorted"),
                    "{next}"
                );
                let second = console.page(&next, &session).await;
                assert!(pager_link(&second, "next-page").is_none(), "{next}");
                let listed: Vec<String> = [first_groups.clone(), listed_groups(&second)].concat();
                assert_eq!(listed, expected, "{first}");
                let previous =
                    pager_link(&second, "previous-page").unwrap_or_else(|| panic!("{next}"));
                let back = console.page(&previous, &session).await;
                assert_eq!(listed_groups(&back), first_groups, "{previous}");
            }
        }
    }
    // The default is most severe first, said in the caption.
    let page = console
        .page(
            "/console/clusters/prod/vulnerabilities?status=any",
            &session,
        )
        .await;
    assert!(page.contains("most severe first"));
    assert!(page.contains("aria-sort=\"descending\"><a href"));
    // The package column: a group's first package by name and how many more it has (SORT-001
    // on two workloads: libsorted-2 and -3; SORT-002 on three: -4, -0 and -1).
    let page = console
        .page(
            "/console/clusters/prod/vulnerabilities?status=any&sort=rule&order=asc",
            &session,
        )
        .await;
    let packages: Vec<&str> = ["SORT-000", "SORT-001", "SORT-002"]
        .iter()
        .map(|rule| {
            page.split(&format!(">{rule}</a></td>\n<td>"))
                .nth(1)
                .and_then(|rest| rest.split("</td>").next())
                .unwrap_or_else(|| panic!("{rule} has a package cell"))
        })
        .collect();
    assert_eq!(
        packages,
        [
            "libsorted-0",
            "libsorted-2 and 1 more",
            "libsorted-0 and 2 more"
        ]
    );
    // A column the table does not sort by is a clear error.
    for path in [
        "/console/clusters/prod/vulnerabilities?sort=title",
        "/console/clusters/prod/vulnerabilities?sort=count",
        "/console/clusters/prod/baseline-risks?sort=fix_available",
        "/console/clusters/prod/baseline-risks?sort=package",
    ] {
        let (status, page) = console.get(path, Some(&session)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        assert!(
            page.contains("cannot sort these groups by"),
            "{path}: {page}"
        );
    }
}

/// The category filter (issue 3, point 2) offers each section's own categories: alert and
/// baseline categories and the firewall's defense modes as choices, a vulnerability's
/// ecosystem typed; choosing one lists exactly the store's findings of that category.
#[tokio::test]
async fn the_category_filter_offers_each_sections_categories_and_filters_by_them() {
    let console = Console::start().await;
    load_demo(console.state.store.as_ref()).await.unwrap();
    let viewer = console.login(&console.token(Role::Viewer).await).await;
    // The store's findings of a kind in the demo cluster, of one category when given.
    let demo_findings = |kind: FindingKind, category: Option<&str>| {
        let query = FindingQuery {
            cluster: Some("demo".into()),
            category: category.map(str::to_owned),
            ..Default::default()
        };
        let store = console.state.store.clone();
        async move { store.list_findings(kind, &query).await.unwrap().items }
    };
    for (section, kind, label, category, other) in [
        (
            "alerts",
            FindingKind::Alert,
            "Category",
            "escape",
            "high-risk-operation\">high risk operation<",
        ),
        (
            "firewall-alerts",
            FindingKind::FirewallAlert,
            "Defense mode",
            "block",
            "alert\">alert<",
        ),
    ] {
        let page = console
            .page(
                &format!(
                    "/console/clusters/demo/{section}?status=any&range=all&category={category}"
                ),
                &viewer,
            )
            .await;
        assert!(
            page.contains(&format!("<label for=\"f-category\">{label}</label>")),
            "{section}: {page}"
        );
        assert!(
            page.contains(&format!("<option value=\"{category}\" selected>")),
            "{section}: the chosen category is selected"
        );
        assert!(
            page.contains(&format!("<option value=\"{other}")),
            "{section}"
        );
        let expected = demo_findings(kind, Some(category)).await;
        let all = demo_findings(kind, None).await;
        assert!(
            !expected.is_empty() && expected.len() < all.len(),
            "{section}: the demo data has findings of {category} and of others"
        );
        let mut listed = listed_titles(&page);
        let mut titles: Vec<String> = expected.into_iter().map(|finding| finding.title).collect();
        listed.sort();
        titles.sort();
        assert_eq!(listed, titles, "{section}: only {category}");
    }
    // The baseline risks offer their categories; a vulnerability's is its ecosystem, typed.
    for (path, expected) in [
        (
            "/console/clusters/demo/baseline-risks",
            &["<option value=\"workload\">workload</option>"][..],
        ),
        (
            "/console/clusters/demo/vulnerabilities?category=Debian%3A11",
            &[
                "<label for=\"f-category\">Ecosystem</label>",
                "name=\"category\" value=\"Debian:11\"",
            ],
        ),
    ] {
        let page = console.page(path, &viewer).await;
        for markup in expected {
            assert!(page.contains(markup), "{path}: {markup} in {page}");
        }
    }
}

/// Live updates (issue 3, point 7) follow the page's filters: the alerts page's stream carries
/// its filters and sends only the alerts first seen since the page opened that they select;
/// a search, a later page or another order has no stream (new alerts would not go on top),
/// and a stream asked for a search is refused.
#[tokio::test]
async fn live_updates_send_only_the_new_alerts_the_pages_filters_select() {
    use futures_lite::StreamExt;

    let console = Console::start().await;
    let mut before = alert("/bin/sh", "web-0");
    before.severity = Severity::Critical;
    console.ingest(&[before]).await;
    let viewer = console.login(&console.token(Role::Viewer).await).await;
    let live_of = |page: &str| {
        page.split("data-live=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .map(attribute_value)
            .unwrap_or_else(|| panic!("no findings table: {page}"))
    };
    for path in [
        "/console/clusters/prod/alerts?q=shell",
        "/console/clusters/prod/alerts?sort=count",
        "/console/clusters/prod/alerts?order=asc",
    ] {
        let page = console.page(path, &viewer).await;
        assert_eq!(live_of(&page), "", "{path} has no live stream");
    }
    let page = console
        .page(
            "/console/clusters/prod/alerts?severity=critical&namespace=shop",
            &viewer,
        )
        .await;
    let live = live_of(&page);
    assert!(
        live.starts_with("/console/clusters/prod/live?")
            && live.contains("severity=critical")
            && live.contains("namespace=shop"),
        "{live}"
    );
    let request = Request::get(&live)
        .header(header::COOKIE, &viewer.cookie)
        .body(Body::empty())
        .unwrap();
    let response = console.app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body().into_data_stream();

    let mut matching = alert("/bin/sh", "web-1");
    matching.severity = Severity::Critical;
    let other_severity = alert("/bin/sh", "web-2");
    let mut other_namespace = alert("/bin/sh", "web-3");
    other_namespace.severity = Severity::Critical;
    other_namespace.asset.namespace = Some("cart".into());
    console
        .ingest(&[matching, other_severity, other_namespace])
        .await;
    // Keep-alive comments may come first; an event ends with a blank line.
    let mut text = String::new();
    while !text.contains("event: alert") || !text.ends_with("\n\n") {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), body.next())
            .await
            .expect("an event within 10 s")
            .expect("the stream goes on")
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.contains("shell in web-1"), "{text}");
    // Before the page opened, another severity, another namespace.
    for excluded in ["web-0", "web-2", "web-3"] {
        assert!(!text.contains(excluded), "{excluded} sent: {text}");
    }

    let (status, _) = console
        .get("/console/clusters/prod/live?q=shell", Some(&viewer))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
