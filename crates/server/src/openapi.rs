//! The OpenAPI document served at `/api/openapi.json`.

use axum::Json;
use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};

use crate::api;

#[derive(OpenApi)]
#[openapi(
    info(title = "Palisade API", description = "Security findings of Kubernetes clusters and container hosts. Authenticate with `Authorization: Bearer <token>`."),
    paths(
        api::findings::list, api::findings::stats, api::findings::get, api::findings::act,
        api::findings::handle_similar, api::findings::add_note, api::groups::list,
        api::handling::preview, api::handling::create, api::handling::list, api::handling::delete,
        api::handling::create_exception, api::handling::list_exceptions, api::handling::delete_exception,
        api::assets::list, api::assets::get, api::assets::clusters,
        api::admin::create_token, api::admin::list_tokens, api::admin::revoke_token, api::admin::audit_log,
        api::agents::join, api::agents::batch, api::agents::list, api::k8s_audit::receive,
        api::firewall_rules::list, api::firewall_rules::get, api::firewall_rules::create,
        api::firewall_rules::update, api::firewall_rules::delete, api::firewall_rules::for_agents,
        api::firewall_rules::open_connections,
        api::tasks::create, api::tasks::list, api::tasks::get_one, api::tasks::claim,
        api::tasks::report, api::tasks::heartbeat, api::tasks::snapshot, api::tasks::verify_fix, api::tasks::verifications, api::tasks::fix,
        api::quarantine::report, api::quarantine::list, api::quarantine::restore,
    ),
    modifiers(&BearerAuth),
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The OpenAPI document (public: it describes the API, it holds no data).
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
