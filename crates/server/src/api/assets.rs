//! Assets and clusters.

use axum::extract::{Path, State};
use palisade_model::{Asset, AssetKind, Role};
use palisade_store::{AssetQuery, ClusterSummary};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{bounded, cursor_param, limit_param};
use crate::{ApiError, ApiJson, ApiQuery, AppState, Caller};

/// Filters for assets.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AssetParams {
    /// Only this cluster.
    pub cluster: Option<String>,
    /// Only this kind.
    pub kind: Option<AssetKind>,
    /// Page size, 1 to 1000.
    pub limit: Option<u32>,
    /// `next_cursor` from the previous page.
    pub cursor: Option<String>,
}

/// A page of assets.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AssetPage {
    /// The assets.
    pub items: Vec<Asset>,
    /// Cursor of the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Lists assets.
#[utoipa::path(get, path = "/api/v1/assets", tag = "assets", params(AssetParams),
    responses((status = 200, body = AssetPage)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<AssetParams>,
) -> Result<ApiJson<AssetPage>, ApiError> {
    caller.require(Role::Viewer)?;
    let query = AssetQuery {
        cluster: bounded("cluster", params.cluster)?,
        kind: params.kind,
        limit: limit_param(params.limit)?,
        cursor: cursor_param(params.cursor.as_deref())?,
    };
    let page = state.store.list_assets(&query).await?;
    Ok(ApiJson(AssetPage {
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}

/// Gets one asset.
#[utoipa::path(get, path = "/api/v1/assets/{id}", tag = "assets", params(("id" = Uuid, Path)),
    responses((status = 200, body = Asset), (status = 404)), security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<ApiJson<Asset>, ApiError> {
    caller.require(Role::Viewer)?;
    let not_found = || ApiError::not_found(format!("no asset {id:?}"));
    let uuid = Uuid::parse_str(&id).map_err(|_| not_found())?;
    state
        .store
        .get_asset(uuid)
        .await?
        .map(ApiJson)
        .ok_or_else(not_found)
}

/// A cluster and its open findings per kind.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Cluster {
    /// Name.
    pub name: String,
    /// Open alerts.
    pub open_alerts: u64,
    /// Open vulnerabilities.
    pub open_vulnerabilities: u64,
    /// Open baseline risks.
    pub open_baseline_risks: u64,
    /// Open firewall alerts.
    pub open_firewall_alerts: u64,
}

impl From<ClusterSummary> for Cluster {
    fn from(summary: ClusterSummary) -> Self {
        Cluster {
            name: summary.name,
            open_alerts: summary.open_alerts,
            open_vulnerabilities: summary.open_vulnerabilities,
            open_baseline_risks: summary.open_baseline_risks,
            open_firewall_alerts: summary.open_firewall_alerts,
        }
    }
}

/// Lists clusters.
#[utoipa::path(get, path = "/api/v1/clusters", tag = "assets", responses((status = 200, body = Vec<Cluster>)), security(("bearer" = [])))]
pub async fn clusters(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<ApiJson<Vec<Cluster>>, ApiError> {
    caller.require(Role::Viewer)?;
    Ok(ApiJson(
        state
            .store
            .clusters()
            .await?
            .into_iter()
            .map(Cluster::from)
            .collect(),
    ))
}
