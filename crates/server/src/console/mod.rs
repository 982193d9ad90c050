//! The security console: server-rendered HTML under `/console` (askama templates, vendored
//! htmx, every asset served from the binary).
//!
//! Pages read through the same store queries as the REST API, and every action calls the
//! API's own handler with the logged-in [`crate::Caller`], so validation, role checks and audit
//! entries exist once. A browser logs in with an API token and gets a server-side session
//! (`session.rs`); each state-changing request must carry the session's CSRF token. Every page
//! works without JavaScript for reading and submitting forms; htmx adds the handling dialog,
//! the live whitelist preview and live updates by server-sent events.

mod actions;
mod cache;
mod chart;
pub(crate) mod group_sort;
mod live;
mod quarantine;
mod session;
mod views;

use std::sync::Arc;

use askama::Template;
use axum::{
    Router,
    extract::Path,
    http::{StatusCode, header, request::Parts},
    middleware,
    response::{Html, IntoResponse, Redirect, Response},
    routing::{get, post},
};
use palisade_model::{FindingKind, Severity};
use palisade_store::{FindingGroup, FindingQuery};

use crate::AppState;
pub use session::Sessions;

/// State of the console shared by its handlers, beside [`AppState`].
#[derive(Default)]
pub(crate) struct Console {
    sessions: Sessions,
    counts: cache::TtlCache<palisade_store::SeverityCounts>,
    charts: cache::TtlCache<Vec<u64>>,
    groups: cache::TtlCache<palisade_store::Page<FindingGroup>>,
}

impl Console {
    /// Forgets cached aggregates, after a change made through the console.
    fn changed(&self) {
        self.counts.clear();
        self.charts.clear();
        self.groups.clear();
    }

    async fn counts(
        &self,
        state: &AppState,
        kind: FindingKind,
        query: &FindingQuery,
    ) -> Result<palisade_store::SeverityCounts, crate::ApiError> {
        let key = format!("{kind:?}{query:?}");
        let store = Arc::clone(&state.store);
        let query = query.clone();
        Ok(self
            .counts
            .get_or_compute(
                key,
                async move { store.count_by_severity(kind, &query).await },
            )
            .await?)
    }
}

fn sessions(parts: &Parts) -> Option<Arc<Console>> {
    parts.extensions.get::<Arc<Console>>().cloned()
}

/// The console's routes, to merge into the main router.
pub(crate) fn router(state: AppState) -> Router<AppState> {
    let console = Arc::new(Console::default());
    Router::new()
        .route(
            "/console",
            get(|| async { Redirect::to("/console/clusters") }),
        )
        .route(
            "/console/",
            get(|| async { Redirect::to("/console/clusters") }),
        )
        .route(
            "/console/login",
            get(actions::login_form).post(actions::login),
        )
        .route("/console/logout", post(actions::logout))
        .route("/console/assets/{file}", get(asset))
        .route("/console/clusters", get(views::clusters))
        .route("/console/clusters/{cluster}", get(views::cluster_home))
        .route("/console/clusters/{cluster}/live", get(live::stream))
        .route("/console/clusters/{cluster}/{section}", get(views::section))
        .route(
            "/console/clusters/{cluster}/{section}/group",
            get(views::group),
        )
        .route(
            "/console/clusters/{cluster}/{section}/{id}",
            get(views::finding),
        )
        .route(
            "/console/clusters/{cluster}/{section}/{id}/handle",
            get(views::handle_dialog),
        )
        .route("/console/act/{section}/{id}/{action}", post(actions::act))
        .route("/console/note/{section}/{id}", post(actions::note))
        .route("/console/similar/{section}/{id}", post(actions::similar))
        .route(
            "/console/whitelist/preview",
            post(actions::whitelist_preview),
        )
        .route("/console/whitelist", post(actions::whitelist))
        .route("/console/exceptions", post(actions::exception))
        .route("/console/verify-fix/{id}", post(actions::verify_fix))
        .route("/console/fix/{id}", post(actions::fix))
        .route(
            "/console/firewall-rules/{id}",
            get(views::firewall_rule).post(actions::save_firewall_rule),
        )
        .route("/console/audit", get(views::audit))
        .route("/console/quarantine", get(quarantine::page))
        .route(
            "/console/quarantine/{id}/restore",
            post(quarantine::restore),
        )
        .layer(middleware::from_fn_with_state(state, session::require_csrf))
        .layer(axum::Extension(console))
        .layer(middleware::map_response(security_headers))
}

/// Headers on every console response: no framing, no sniffing, scripts only from here.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        header::HeaderValue::from_static("same-origin"),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("no-store"),
        );
    }
    response
}

/// The vendored assets, compiled into the binary.
async fn asset(Path(file): Path<String>) -> Response {
    let (body, content_type): (&'static [u8], &str) = match file.as_str() {
        "htmx.min.js" => (
            include_bytes!("../../assets/htmx.min.js"),
            "text/javascript",
        ),
        "console.js" => (include_bytes!("../../assets/console.js"), "text/javascript"),
        "console.css" => (include_bytes!("../../assets/console.css"), "text/css"),
        "htmx.LICENSE" => (
            include_bytes!("../../assets/htmx.LICENSE"),
            "text/plain; charset=utf-8",
        ),
        _ => return (StatusCode::NOT_FOUND, "no such console asset\n").into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// Renders a template as an HTML response.
fn render(template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => Html(html).into_response(),
        Err(error) => crate::ApiError::internal(&error).into_response(),
    }
}

/// Percent-encodes a query parameter value.
fn encode(text: &str) -> String {
    serde_urlencoded::to_string([("", text)])
        .map(|pair| pair.trim_start_matches('=').to_owned())
        .unwrap_or_default()
}

/// The four sections of a cluster page, in order: (path segment, title, kind).
const SECTIONS: [(&str, &str, FindingKind); 4] = [
    ("alerts", "Alerts", FindingKind::Alert),
    (
        "vulnerabilities",
        "Vulnerabilities",
        FindingKind::Vulnerability,
    ),
    (
        "baseline-risks",
        "Baseline risks",
        FindingKind::BaselineRisk,
    ),
    (
        "firewall-alerts",
        "Container firewall alerts",
        FindingKind::FirewallAlert,
    ),
];

fn section_kind(section: &str) -> Option<FindingKind> {
    SECTIONS
        .iter()
        .find(|(name, _, _)| *name == section)
        .map(|(_, _, kind)| *kind)
}

/// Severities from the most serious down, as the console lists them.
const SEVERITIES_DESC: [Severity; 5] = [
    Severity::Critical,
    Severity::High,
    Severity::Medium,
    Severity::Low,
    Severity::Info,
];

/// A time as the console shows it: `2026-11-28 23:24 UTC`.
fn when(at: palisade_model::Timestamp) -> String {
    let text = at.to_rfc3339();
    match (text.get(..10), text.get(11..19)) {
        (Some(day), Some(time)) => format!("{day} {time} UTC"),
        _ => text,
    }
}
