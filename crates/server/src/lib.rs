//! The Palisade server: the REST API under `/api/v1`, the security console under `/console`
//! (server-rendered HTML, see `console/`), authentication and roles, the agent link (join and
//! batches), Prometheus metrics, the OpenAPI document, TLS and the demo data set
//! ([`load_demo`]).
//!
//! [`router`] builds the whole HTTP surface from an [`AppState`]; it holds no sockets, so
//! tests drive it directly or through [`serve`] on a real socket. Only this crate knows
//! HTTP: the store below it knows SQL, the model knows neither.
//!
//! Access control is explicit in each handler: every handler takes a [`Caller`] (extracted
//! from `Authorization: Bearer <token>`, 401 when missing or invalid) and calls
//! [`Caller::require`] with the role it needs (403 otherwise). Every state-changing handler
//! hands the store an audit entry that is written in the same transaction as the change.
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! use std::sync::Arc;
//! let store = Arc::new(palisade_store::SqliteStore::open("palisade.db".as_ref()).await?);
//! let state = palisade_server::AppState::new(store, palisade_notify::Notifier::start(Default::default())).await?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8443").await?;
//! palisade_server::serve(listener, palisade_server::router(state), None, std::future::pending()).await?;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod api;
mod auth;
mod batch_budget;
mod bootstrap;
mod console;
mod demo;
mod error;
mod metrics;
mod openapi;
mod serve;
mod state;
pub mod tls;

use std::time::{Duration, Instant};

use axum::{
    Router,
    extract::{DefaultBodyLimit, MatchedPath, Request, State},
    http::{StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{delete, get, post},
};
use palisade_model::Role;
use tower_http::timeout::TimeoutLayer;

pub use api::k8s_audit::AuditRules;
pub use api::tasks::{TaskLeaseLength, TaskLeaseLengthError};
pub use auth::{Caller, IssuedToken, issue_token, token_id};
pub use batch_budget::{AgentBatchBudget, AgentBatchBudgetError};
pub use bootstrap::{AdminToken, ensure_admin_token, issue_join_token};
pub use demo::{DemoSummary, load_demo};
pub use error::{ApiError, ApiJson, ApiQuery};
pub use metrics::{Metrics, label_value as prometheus_label_value};
pub use serve::serve;
pub use state::AppState;

/// Largest request body, except agent batches.
const MAX_BODY: usize = 1 << 20;
/// Longest time a request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The whole HTTP surface.
pub fn router(state: AppState) -> Router {
    let findings = Router::new()
        .route("/api/v1/{collection}", get(api::findings::list))
        .route("/api/v1/{collection}/stats", get(api::findings::stats))
        .route("/api/v1/{collection}/groups", get(api::groups::list))
        .route("/api/v1/{collection}/{id}", get(api::findings::get))
        .route(
            "/api/v1/{collection}/{id}/notes",
            post(api::findings::add_note),
        )
        .route(
            "/api/v1/{collection}/{id}/handle-similar",
            post(api::findings::handle_similar),
        )
        .route(
            "/api/v1/{collection}/{id}/{action}",
            post(api::findings::act),
        );
    let handling = Router::new()
        .route(
            "/api/v1/whitelist-rules",
            get(api::handling::list).post(api::handling::create),
        )
        .route(
            "/api/v1/whitelist-rules/preview",
            post(api::handling::preview),
        )
        .route(
            "/api/v1/whitelist-rules/{id}",
            delete(api::handling::delete),
        )
        .route(
            "/api/v1/exceptions",
            get(api::handling::list_exceptions).post(api::handling::create_exception),
        )
        .route(
            "/api/v1/exceptions/{id}",
            delete(api::handling::delete_exception),
        );
    let inventory = Router::new()
        .route("/api/v1/assets", get(api::assets::list))
        .route("/api/v1/assets/{id}", get(api::assets::get))
        .route("/api/v1/clusters", get(api::assets::clusters));
    let admin = Router::new()
        .route(
            "/api/v1/tokens",
            get(api::admin::list_tokens).post(api::admin::create_token),
        )
        .route("/api/v1/tokens/{id}", delete(api::admin::revoke_token))
        .route("/api/v1/audit", get(api::admin::audit_log));
    let firewall = Router::new()
        .route(
            "/api/v1/firewall-rules",
            get(api::firewall_rules::list).post(api::firewall_rules::create),
        )
        .route(
            "/api/v1/firewall-rules/{id}",
            get(api::firewall_rules::get)
                .put(api::firewall_rules::update)
                .delete(api::firewall_rules::delete),
        )
        .route(
            "/api/v1/firewall-rules/{id}/open-connections",
            get(api::firewall_rules::open_connections),
        )
        .route(
            "/api/v1/agent/firewall-rules",
            get(api::firewall_rules::for_agents),
        );
    let agents = Router::new()
        .route("/api/v1/agents", get(api::agents::list))
        .route("/api/v1/agents/join", post(api::agents::join))
        .route(
            "/api/v1/agent/batches",
            post(api::agents::batch).layer(DefaultBodyLimit::max(palisade_model::MAX_BATCH_BYTES)),
        );
    Router::new()
        .merge(findings)
        .merge(handling)
        .merge(inventory)
        .merge(admin)
        .merge(agents)
        .merge(firewall)
        .merge(api::k8s_audit::router())
        .merge(api::tasks::router())
        .merge(api::quarantine::router())
        .merge(console::router(state.clone()))
        .route("/api/openapi.json", get(openapi::document))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            record_latency,
        ))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            REQUEST_TIMEOUT,
        ))
        .with_state(state)
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint; the API is described at /api/openapi.json")
}

async fn metrics_text(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    caller.require(Role::Viewer)?;
    let body = state.metrics.render(state.notifier.stats());
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response())
}

async fn record_latency(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let response = next.run(request).await;
    state.metrics.record_request(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}
