//! Live updates: a server-sent event stream per cluster that announces new alerts as table
//! rows, so an open alerts page grows without a reload.
//!
//! The stream polls the store (one indexed query every [`POLL`]) instead of subscribing to
//! ingest: it then sees alerts stored by any server process sharing the database, and ingest
//! stays unaware of the console.

use std::{convert::Infallible, time::Duration};

use askama::Template;
use axum::{
    extract::{Path, State},
    response::sse::{Event, KeepAlive, Sse},
};
use futures_lite::Stream;
use palisade_model::{FindingKind, Role, Status, Timestamp};
use palisade_store::FindingQuery;

use super::{session::ConsoleUser, views::Row};
use crate::{ApiError, AppState};

/// How often the stream looks for new alerts.
const POLL: Duration = Duration::from_secs(2);
/// Most rows sent per poll; a flood beyond it is summarised by the page's counters.
const MAX_PER_POLL: u32 = 50;

#[derive(Template)]
#[template(path = "row.html")]
struct RowFragment {
    row: Row,
    section: &'static str,
    can_handle: bool,
    csrf: String,
    back: String,
}

/// `GET /console/clusters/{cluster}/live`: `event: alert` with the row's HTML as data.
pub(crate) async fn stream(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(cluster): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    user.caller.require(Role::Viewer)?;
    let start = Timestamp::now();
    let back = format!("/console/clusters/{}/alerts", super::encode(&cluster));
    let events = futures_lite::stream::unfold(
        (
            state,
            user,
            cluster,
            start,
            std::collections::HashSet::new(),
            back,
        ),
        |(state, user, cluster, since, mut sent, back)| async move {
            loop {
                tokio::time::sleep(POLL).await;
                let query = FindingQuery {
                    cluster: Some(cluster.clone()),
                    statuses: vec![Status::Open],
                    since: Some(since),
                    limit: MAX_PER_POLL,
                    ..FindingQuery::default()
                };
                let page = match state.store.list_findings(FindingKind::Alert, &query).await {
                    Ok(page) => page,
                    Err(error) => {
                        tracing::warn!(%error, "Live update query failed; retrying.");
                        continue;
                    }
                };
                // Only alerts first seen after the page was opened are new to it.
                let fresh: Vec<_> = page
                    .items
                    .into_iter()
                    .filter(|finding| finding.first_seen >= since && !sent.contains(&finding.id))
                    .collect();
                if fresh.is_empty() {
                    continue;
                }
                let mut html = String::new();
                for finding in fresh.iter().rev() {
                    sent.insert(finding.id);
                    let fragment = RowFragment {
                        row: Row::new(finding, &cluster, "alerts"),
                        section: "alerts",
                        can_handle: user.can_handle(),
                        csrf: user.csrf.clone(),
                        back: back.clone(),
                    };
                    match fragment.render() {
                        Ok(row) => html.push_str(&row),
                        Err(error) => tracing::warn!(%error, "Cannot render a live row."),
                    }
                }
                let event = Event::default()
                    .event("alert")
                    .data(html.replace('\n', " "));
                return Some((Ok(event), (state, user, cluster, since, sent, back)));
            }
        },
    );
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}
