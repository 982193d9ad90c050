//! Form posts: login and logout, and every handling action. Each action calls the REST API's
//! handler with the session's caller, so the console validates, authorises and audits
//! exactly as the API does; the console only turns the outcome into a page or a redirect.

use std::sync::Arc;

use askama::Template;
use axum::{
    Extension, Form,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode, Uri, header},
    response::{IntoResponse, Redirect, Response},
};
use palisade_model::{
    FindingKind, FirewallAction, MatchOperator, NewException, NewFirewallRule, NewWhitelistRule,
    PortRange, Role, TaskSpec, Timestamp, WhitelistScope,
};
use serde::Deserialize;
use uuid::Uuid;

use super::{
    Console, encode, render, section_kind,
    session::{self, ConsoleUser},
    views::{Chrome, FirewallRulePage, HandlePage},
};
use crate::{ApiError, ApiJson, AppState};

/// A redirect target from a form, accepted only inside the console.
pub(crate) fn safe_back(back: &str, default: &str) -> String {
    if back.starts_with("/console/") && !back.starts_with("//") && !back.contains('\\') {
        back.to_owned()
    } else {
        default.to_owned()
    }
}

fn with_param(url: &str, name: &str, value: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{name}={}", encode(value))
}

/// An action's failure as a page: the API's status and message, and a way back.
pub(crate) struct Failure(ApiError, String);

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    status: u16,
    message: String,
    back: String,
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let Failure(error, back) = self;
        let status = error.status();
        let message = error.to_string();
        let mut response = render(&ErrorPage {
            status: status.as_u16(),
            message,
            back,
        });
        *response.status_mut() = status;
        response
    }
}

type ActionResult = Result<Response, Failure>;

fn failed(back: &str) -> impl Fn(ApiError) -> Failure + '_ {
    move |error| Failure(error, back.to_owned())
}

// ---------------------------------------------------------------------------------------------
// Login and logout.

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    next: String,
    error: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct NextParam {
    #[serde(default)]
    next: String,
}

/// `GET /console/login`.
pub(crate) async fn login_form(Query(params): Query<NextParam>) -> Response {
    render(&LoginPage {
        next: safe_back(&params.next, "/console/clusters"),
        error: None,
    })
}

#[derive(Debug, Deserialize)]
pub(crate) struct LoginForm {
    token: String,
    #[serde(default)]
    next: String,
}

/// `POST /console/login`: checks the token exactly as the API does and starts a session.
pub(crate) async fn login(
    State(state): State<AppState>,
    Extension(console): Extension<Arc<Console>>,
    uri: Uri,
    Form(form): Form<LoginForm>,
) -> Response {
    let next = safe_back(&form.next, "/console/clusters");
    let caller = match crate::auth::authenticate(&state, form.token.trim()).await {
        Ok(caller) if caller.role.allows(Role::Viewer) => caller,
        Ok(_) => {
            return login_refused(next, "agent and join tokens cannot log in to the console");
        }
        Err(_) => return login_refused(next, "that token is unknown or revoked"),
    };
    let cookie = console.sessions.start(caller);
    (
        [(header::SET_COOKIE, session::set_cookie(&uri, Some(&cookie)))],
        Redirect::to(&next),
    )
        .into_response()
}

fn login_refused(next: String, why: &str) -> Response {
    let mut response = render(&LoginPage {
        next,
        error: Some(why.to_owned()),
    });
    *response.status_mut() = StatusCode::UNAUTHORIZED;
    response
}

/// `POST /console/logout`.
pub(crate) async fn logout(
    Extension(console): Extension<Arc<Console>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    if let Some(cookie) = session::cookie_value(&headers, session::COOKIE) {
        console.sessions.end(cookie);
    }
    (
        [(header::SET_COOKIE, session::set_cookie(&uri, None))],
        Redirect::to("/console/login"),
    )
        .into_response()
}

// ---------------------------------------------------------------------------------------------
// Handling.

fn kind_of(section: &str, back: &str) -> Result<FindingKind, Failure> {
    section_kind(section).ok_or_else(|| {
        Failure(
            ApiError::not_found(format!("no console section {section:?}")),
            back.to_owned(),
        )
    })
}

#[derive(Debug, Deserialize)]
pub(crate) struct ActionForm {
    #[serde(default)]
    reason: String,
    #[serde(default)]
    back: String,
}

/// `POST /console/act/{section}/{id}/{action}`: ignore, unignore, handle, reopen, fix.
pub(crate) async fn act(
    State(state): State<AppState>,
    Extension(console): Extension<Arc<Console>>,
    user: ConsoleUser,
    Path((section, id, action)): Path<(String, String, String)>,
    Form(form): Form<ActionForm>,
) -> ActionResult {
    let back = safe_back(&form.back, "/console/clusters");
    let kind = kind_of(&section, &back)?;
    let body =
        serde_json::to_vec(&serde_json::json!({ "reason": form.reason })).unwrap_or_default();
    let ApiJson(finding) = crate::api::findings::act(
        State(state),
        user.caller,
        Path((kind.api_collection().to_owned(), id, action.clone())),
        body.into(),
    )
    .await
    .map_err(failed(&back))?;
    console.changed();
    let noun = kind.as_str().replace('_', " ");
    let mut target = with_param(
        &back,
        "notice",
        &format!(
            "The {noun} {:?} is now {}.",
            finding.title,
            finding.status.as_str()
        ),
    );
    if action == "ignore" {
        target = with_param(&target, "undo", &finding.id.to_string());
    }
    Ok(Redirect::to(&target).into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct NoteForm {
    text: String,
    #[serde(default)]
    back: String,
}

/// `POST /console/note/{section}/{id}`.
pub(crate) async fn note(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path((section, id)): Path<(String, String)>,
    Form(form): Form<NoteForm>,
) -> ActionResult {
    let back = safe_back(&form.back, "/console/clusters");
    let kind = kind_of(&section, &back)?;
    crate::api::findings::add_note(
        State(state),
        user.caller,
        Path((kind.api_collection().to_owned(), id)),
        ApiJson(crate::api::findings::NoteRequest { text: form.text }),
    )
    .await
    .map_err(failed(&back))?;
    Ok(Redirect::to(&with_param(&back, "notice", "Note added.")).into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct SimilarForm {
    action: String,
    #[serde(default)]
    same_asset: Option<String>,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    back: String,
}

/// `POST /console/similar/{section}/{id}`: handle or ignore every similar finding.
pub(crate) async fn similar(
    State(state): State<AppState>,
    Extension(console): Extension<Arc<Console>>,
    user: ConsoleUser,
    Path((section, id)): Path<(String, String)>,
    Form(form): Form<SimilarForm>,
) -> ActionResult {
    let back = safe_back(&form.back, "/console/clusters");
    let kind = kind_of(&section, &back)?;
    let ApiJson(changed) = crate::api::findings::handle_similar(
        State(state),
        user.caller,
        Path((kind.api_collection().to_owned(), id)),
        ApiJson(crate::api::findings::SimilarRequest {
            action: form.action.clone(),
            same_asset: form.same_asset.is_some(),
            reason: form.reason,
        }),
    )
    .await
    .map_err(failed(&back))?;
    console.changed();
    let notice = format!("{} similar findings: {}.", changed.changed, form.action);
    Ok(Redirect::to(&with_param(&back, "notice", &notice)).into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct WhitelistForm {
    finding: String,
    cluster: String,
    kind: String,
    field: String,
    operator: String,
    value: String,
    scope: String,
    #[serde(default)]
    asset_id: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    back: String,
}

impl WhitelistForm {
    fn rule(&self) -> Result<NewWhitelistRule, ApiError> {
        let kind = FindingKind::from_name(&self.kind)
            .ok_or_else(|| ApiError::bad_request(format!("unknown kind {:?}", self.kind)))?;
        let operator: MatchOperator = serde_json::from_value(serde_json::Value::String(
            self.operator.clone(),
        ))
        .map_err(|_| ApiError::bad_request(format!("unknown operator {:?}", self.operator)))?;
        let scope = match self.scope.as_str() {
            "all" => WhitelistScope::AllAssets,
            "asset" => WhitelistScope::Asset {
                asset_id: Uuid::parse_str(&self.asset_id).map_err(|_| {
                    ApiError::bad_request(format!("asset id {:?} is not a UUID", self.asset_id))
                })?,
            },
            other => {
                return Err(ApiError::bad_request(format!(
                    "scope {other:?}: use asset or all"
                )));
            }
        };
        Ok(NewWhitelistRule {
            kind,
            field: self.field.clone(),
            operator,
            value: self.value.clone(),
            scope,
            reason: self.reason.clone(),
        })
    }
}

/// `POST /console/whitelist/preview`: how many open findings the rule would close. For htmx,
/// a sentence to place in the dialog; otherwise the whole dialog page with it.
pub(crate) async fn whitelist_preview(
    State(state): State<AppState>,
    user: ConsoleUser,
    headers: HeaderMap,
    Form(form): Form<WhitelistForm>,
) -> ActionResult {
    let back = safe_back(&form.back, "/console/clusters");
    let sentence = match form.rule() {
        Ok(rule) => match crate::api::handling::preview(
            State(state.clone()),
            user.caller.clone(),
            ApiJson(rule),
        )
        .await
        {
            Ok(ApiJson(preview)) => format!(
                "This rule would close {} open finding{} now and suppress matching ones from now on.",
                preview.would_close,
                if preview.would_close == 1 { "" } else { "s" }
            ),
            Err(error) if error.status() == StatusCode::BAD_REQUEST => {
                format!("Not a valid rule yet: {error}")
            }
            Err(error) => return Err(Failure(error, back)),
        },
        Err(error) => format!("Not a valid rule yet: {error}"),
    };
    if headers.contains_key("hx-request") {
        let mut response = sentence_fragment(&sentence);
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("no-store"),
        );
        return Ok(response);
    }
    let kind = FindingKind::from_name(&form.kind).unwrap_or(FindingKind::Alert);
    let finding = crate::api::findings::load(&state, kind, &form.finding)
        .await
        .map_err(failed(&back))?;
    let mut page = HandlePage::new(&user, &finding, &form.cluster);
    page.select(&finding, &form.field, &form.operator);
    page.value = form.value;
    page.scope = form.scope;
    page.reason = form.reason;
    page.preview = Some(sentence);
    Ok(render(&page))
}

fn sentence_fragment(sentence: &str) -> Response {
    #[derive(Template)]
    #[template(source = "{{ sentence }}", ext = "html")]
    struct Sentence<'a> {
        sentence: &'a str,
    }
    render(&Sentence { sentence })
}

/// `POST /console/whitelist`: creates the rule; it closes the matching open findings.
pub(crate) async fn whitelist(
    State(state): State<AppState>,
    Extension(console): Extension<Arc<Console>>,
    user: ConsoleUser,
    Form(form): Form<WhitelistForm>,
) -> ActionResult {
    let back = safe_back(&form.back, "/console/clusters");
    let rule = form.rule().map_err(failed(&back))?;
    let (_, ApiJson(created)) =
        crate::api::handling::create(State(state), user.caller, ApiJson(rule))
            .await
            .map_err(failed(&back))?;
    console.changed();
    let notice = format!(
        "Whitelist rule {} saved: it closed {} open finding{}.",
        created.rule.id,
        created.closed,
        if created.closed == 1 { "" } else { "s" }
    );
    Ok(Redirect::to(&with_param(&back, "notice", &notice)).into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct ExceptionForm {
    check: String,
    cluster: String,
    #[serde(default)]
    namespace: String,
    reason: String,
    owner: String,
    /// `YYYY-MM-DD`, empty for no expiry.
    #[serde(default)]
    expires: String,
    #[serde(default)]
    back: String,
}

/// `POST /console/exceptions`: an exception for a baseline check, with reason and expiry.
pub(crate) async fn exception(
    State(state): State<AppState>,
    Extension(console): Extension<Arc<Console>>,
    user: ConsoleUser,
    Form(form): Form<ExceptionForm>,
) -> ActionResult {
    let back = safe_back(&form.back, "/console/clusters");
    let expires_at = match form.expires.trim() {
        "" => None,
        date => Some(
            Timestamp::parse_rfc3339(&format!("{date}T23:59:59Z")).map_err(|_| {
                Failure(
                    ApiError::bad_request(format!("expiry {date:?} is not a date like 2027-01-31")),
                    back.clone(),
                )
            })?,
        ),
    };
    let non_empty = |text: &str| (!text.trim().is_empty()).then(|| text.trim().to_owned());
    let new = NewException {
        check: form.check,
        cluster: non_empty(&form.cluster),
        namespace: non_empty(&form.namespace),
        name: None,
        container: None,
        asset_id: None,
        labels: Default::default(),
        reason: form.reason,
        owner: form.owner,
        expires_at,
    };
    let (_, ApiJson(created)) =
        crate::api::handling::create_exception(State(state), user.caller, ApiJson(new))
            .await
            .map_err(failed(&back))?;
    console.changed();
    let notice = format!(
        "Exception saved: it covers {} open risk{}.",
        created.covered,
        if created.covered == 1 { "" } else { "s" }
    );
    Ok(Redirect::to(&with_param(&back, "notice", &notice)).into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct BackForm {
    #[serde(default)]
    back: String,
}

/// `POST /console/verify-fix/{id}`: records a request to rescan the asset and queues the
/// rescan for the agent that owns it (`api::tasks::request_fix_verification`); until that agent
/// reports, the request shows as pending, and the finding closes only if the rescan no longer
/// finds the vulnerability.
pub(crate) async fn verify_fix(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(id): Path<String>,
    Form(form): Form<BackForm>,
) -> ActionResult {
    let back = safe_back(&form.back, "/console/clusters");
    user.caller.require(Role::Operator).map_err(failed(&back))?;
    let finding = crate::api::findings::load(&state, FindingKind::Vulnerability, &id)
        .await
        .map_err(failed(&back))?;
    let started = crate::api::tasks::request_fix_verification(&state, &user.caller, &finding)
        .await
        .map_err(failed(&back))?;
    let notice = format!(
        "Fix verification requested for {} on {}: {}",
        finding.rule,
        finding.asset.label(),
        if started.task.is_some() {
            "the agent rescans the asset now; the finding closes only if the vulnerability is gone."
        } else {
            "pending (demo data: no agent reports this asset)."
        }
    );
    Ok(Redirect::to(&with_param(&back, "notice", &notice)).into_response())
}

/// `POST /console/fix/{id}`: asks the agent on the finding's node to upgrade the package to
/// the first fixed version, through the API's `POST /api/v1/fixes` (admins only; the agent
/// refuses unless started with `--enable-fix`). The finding page follows the task.
pub(crate) async fn fix(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(id): Path<String>,
    Form(form): Form<BackForm>,
) -> ActionResult {
    let back = safe_back(&form.back, "/console/clusters");
    let finding_id = Uuid::parse_str(&id)
        .map_err(|_| ApiError::bad_request(format!("{id:?} is not a finding id")))
        .map_err(failed(&back))?;
    let (_, ApiJson(task)) = crate::api::tasks::fix(
        State(state),
        user.caller,
        ApiJson(crate::api::tasks::FindingRef { finding_id }),
    )
    .await
    .map_err(failed(&back))?;
    let notice = match &task.spec {
        TaskSpec::UpgradePackage(upgrade) => format!(
            "Fix queued: the agent upgrades {} to {}; the finding page shows its progress and output.",
            upgrade.package, upgrade.version
        ),
        _ => "Fix queued.".to_owned(),
    };
    Ok(Redirect::to(&with_param(&back, "notice", &notice)).into_response())
}

/// Ports as the editor shows them: `80, 443, 8000-8080`.
pub(crate) fn ports_text(ports: &[PortRange]) -> String {
    ports
        .iter()
        .map(|range| {
            if range.start == range.end {
                range.start.to_string()
            } else {
                format!("{}-{}", range.start, range.end)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn parse_ports(text: &str) -> Result<Vec<PortRange>, ApiError> {
    text.split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (start, end) = part.split_once('-').unwrap_or((part, part));
            match (start.trim().parse::<u16>(), end.trim().parse::<u16>()) {
                (Ok(start), Ok(end)) => Ok(PortRange { start, end }),
                _ => Err(ApiError::bad_request(format!(
                    "port {part:?} is not a port (1-65535) or a range like 8000-8080"
                ))),
            }
        })
        .collect()
}

#[derive(Debug, Deserialize)]
pub(crate) struct FirewallRuleForm {
    name: String,
    source: String,
    destination: String,
    #[serde(default)]
    ports: String,
    #[serde(default)]
    protocol: String,
    action: String,
    priority: String,
    #[serde(default)]
    enabled: Option<String>,
    #[serde(default)]
    back: String,
}

/// `POST /console/firewall-rules/{id}`: saves the rule through the API's handler.
pub(crate) async fn save_firewall_rule(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(id): Path<String>,
    Form(form): Form<FirewallRuleForm>,
) -> ActionResult {
    let back = safe_back(&form.back, "/console/clusters");
    let existing = super::views::find_firewall_rule(&state, &id)
        .await
        .map_err(failed(&back))?;
    let parsed = (|| -> Result<NewFirewallRule, ApiError> {
        let action = FirewallAction::ALL
            .into_iter()
            .find(|action| action.as_str() == form.action)
            .ok_or_else(|| ApiError::bad_request(format!("unknown action {:?}", form.action)))?;
        let priority = form.priority.trim().parse::<u32>().map_err(|_| {
            ApiError::bad_request(format!(
                "priority {:?} is not a whole number from 0 to 4294967295",
                form.priority
            ))
        })?;
        Ok(NewFirewallRule {
            name: form.name.trim().to_owned(),
            source: form.source.trim().to_owned(),
            destination: form.destination.trim().to_owned(),
            ports: parse_ports(&form.ports)?,
            protocol: (!form.protocol.is_empty()).then(|| form.protocol.clone()),
            action,
            priority,
            enabled: form.enabled.is_some(),
        })
    })();
    let result = match parsed {
        Ok(rule) => crate::api::firewall_rules::update(
            State(state.clone()),
            user.caller.clone(),
            Path(existing.id.to_string()),
            ApiJson(rule),
        )
        .await
        .map(|ApiJson(rule)| rule),
        Err(error) => Err(error),
    };
    match result {
        Ok(rule) => {
            // Back to the rule's page, where the open connections the agents list after the
            // change appear.
            let notice = format!(
                "Firewall rule {:?} saved; the agents list the open connections it refuses \
                 below within their poll interval.",
                rule.rule.name
            );
            let page = with_param(
                &format!("/console/firewall-rules/{}", rule.id),
                "back",
                &back,
            );
            Ok(Redirect::to(&with_param(&page, "notice", &notice)).into_response())
        }
        Err(error)
            if error.status() == StatusCode::BAD_REQUEST
                || error.status() == StatusCode::CONFLICT =>
        {
            let (protocols, actions) = super::views::firewall_options(&existing.rule);
            let open =
                crate::api::firewall_rules::open_connections_of(state.store.as_ref(), &existing)
                    .await
                    .map_err(|error| Failure(error.into(), back.clone()))?;
            let mut response = render(&FirewallRulePage {
                chrome: Chrome::new(&user, format!("Firewall rule {}", existing.rule.name)),
                ports: form.ports.clone(),
                rule: existing,
                protocols,
                actions,
                back,
                error: Some(error.to_string()),
                open,
            });
            *response.status_mut() = error.status();
            Ok(response)
        }
        Err(error) => Err(Failure(error, back)),
    }
}
