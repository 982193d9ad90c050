//! Live updates: a server-sent event stream per alerts page that announces new alerts as
//! table rows, so an open alerts page grows without a reload. The stream takes the page's
//! filters (severity, status, category, namespace, asset) and sends only the new alerts they
//! select, so a filtered page never shows a row its filters exclude.
//!
//! The stream polls the store (one indexed query every [`POLL`]) instead of subscribing to
//! ingest: it then sees alerts stored by any server process sharing the database, and ingest
//! stays unaware of the console.

use std::{collections::HashSet, convert::Infallible, time::Duration};

use askama::Template;
use axum::{
    extract::{Path, Query, State},
    response::sse::{Event, KeepAlive, Sse},
};
use futures_lite::Stream;
use palisade_model::{FindingKind, Role, Timestamp};
use palisade_store::{FindingQuery, SortKey, SortOrder};
use uuid::Uuid;

use super::{
    session::ConsoleUser,
    views::{Filters, Row},
};
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

/// `GET /console/clusters/{cluster}/live?<the alerts page's filters>`: `event: alert` with
/// the rows' HTML as data. A text search is refused: the page of a search has no live stream
/// (see `Filters::live_href`).
pub(crate) async fn stream(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(cluster): Path<String>,
    Query(filters): Query<Filters>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    user.caller.require(Role::Viewer)?;
    if !filters.q.trim().is_empty() {
        return Err(ApiError::bad_request(
            "live updates do not follow a text search; reload the page to search again",
        ));
    }
    let opened = Timestamp::now();
    // The page's filters as the page reads them (validated the same way), newest first, and
    // from the moment the page opened: the range's own start is always earlier.
    let mut query = filters.query(&cluster, FindingKind::Alert, opened)?;
    query.since = Some(opened);
    query.cursor = None;
    query.sort = SortKey::default();
    query.order = SortOrder::default();
    query.limit = MAX_PER_POLL;
    let base = format!("/console/clusters/{}/alerts", super::encode(&cluster));
    let poller = Poller {
        back: filters.href(&base, &[]),
        state,
        user,
        query,
        cluster,
        opened,
        sent: HashSet::new(),
    };
    let events = futures_lite::stream::unfold(poller, |mut poller| async move {
        let event = poller.next_event().await;
        Some((Ok(event), poller))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

/// One page's stream: its query and what it has sent.
struct Poller {
    state: AppState,
    user: ConsoleUser,
    query: FindingQuery,
    cluster: String,
    /// When the page opened: only alerts first seen since are new to it.
    opened: Timestamp,
    /// The new alerts of the last poll: sent already. Only the last poll's (at most
    /// [`MAX_PER_POLL`]), so a stream open for days holds no more; an alert that leaves the
    /// newest and comes back by a repeat is sent again, and the page skips a row it shows.
    sent: HashSet<Uuid>,
    /// The page the rows' forms return to.
    back: String,
}

impl Poller {
    /// Polls until there are new alerts, and returns them as an event.
    async fn next_event(&mut self) -> Event {
        loop {
            tokio::time::sleep(POLL).await;
            let page = match self
                .state
                .store
                .list_findings(FindingKind::Alert, &self.query)
                .await
            {
                Ok(page) => page,
                Err(error) => {
                    tracing::warn!(%error, "Live update query failed; retrying.");
                    continue;
                }
            };
            let new: Vec<_> = page
                .items
                .into_iter()
                .filter(|finding| finding.first_seen >= self.opened)
                .collect();
            let fresh: Vec<_> = new
                .iter()
                .filter(|finding| !self.sent.contains(&finding.id))
                .collect();
            if fresh.is_empty() {
                continue;
            }
            let mut html = String::new();
            for finding in fresh.iter().rev() {
                let fragment = RowFragment {
                    row: Row::new(finding, &self.cluster, "alerts"),
                    section: "alerts",
                    can_handle: self.user.can_handle(),
                    csrf: self.user.csrf.clone(),
                    back: self.back.clone(),
                };
                match fragment.render() {
                    Ok(row) => html.push_str(&row),
                    Err(error) => tracing::warn!(%error, "Cannot render a live row."),
                }
            }
            self.sent = new.iter().map(|finding| finding.id).collect();
            return Event::default()
                .event("alert")
                .data(html.replace('\n', " "));
        }
    }
}
