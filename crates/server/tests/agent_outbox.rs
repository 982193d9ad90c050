//! The real agent's outbox over a real server: the agent forwards stored reports as the JSON
//! its outbox holds, so an entry that is JSON but not a report reaches the server, which
//! refuses the batch. The agent must then discard that entry (and count it) and deliver the
//! rest, instead of stopping or resending the refused batch forever.

mod support;

use std::{
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant},
};

use palisade_model::FindingKind;
use palisade_store::FindingQuery;

#[tokio::test]
async fn entries_that_are_not_reports_are_discarded_and_the_rest_delivered() {
    let server = support::start("outbox-test-admin-token-0123456789").await;
    let config =
        support::agent_config(&server.base, server.store.as_ref(), server.dir.path()).await;
    let outbox = palisade_agent::Outbox::open(&config.data_dir)
        .await
        .unwrap();
    outbox
        .push(
            &(0..6)
                .map(palisade_testdata::findings::shell_alert)
                .collect::<Vec<_>>(),
        )
        .await
        .unwrap();
    // Two entries spoilt on disk: one still JSON (only the server can tell it is no report),
    // one not even JSON (the outbox tells at once).
    let database = config.data_dir.join("outbox.db");
    let mut connection = <sqlx::SqliteConnection as sqlx::Connection>::connect(&format!(
        "sqlite://{}",
        database.display()
    ))
    .await
    .unwrap();
    // The push is one run of six entries, a line each (agent migration 0004).
    let (last, reports): (i64, String) =
        sqlx::query_as("SELECT last_sequence, reports FROM outbox_runs")
            .fetch_one(&mut connection)
            .await
            .unwrap();
    assert_eq!(last, 6);
    let mut lines: Vec<&str> = reports.split('\n').collect();
    for (sequence, text) in [(2, r#"{"id": "not a report"}"#), (5, "{\"id\": tru")] {
        lines[sequence - 1] = text;
    }
    sqlx::query("UPDATE outbox_runs SET reports = $1")
        .bind(lines.join("\n"))
        .execute(&mut connection)
        .await
        .unwrap();
    sqlx::Connection::close(connection).await.unwrap();

    let status = Arc::new(palisade_agent::AgentStatus::default());
    let agent_status = Arc::clone(&status);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let agent = tokio::spawn(async move {
        palisade_agent::run(config, outbox, &agent_status, async {
            let _ = stopped.await;
        })
        .await
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while status.acknowledged.load(Ordering::Relaxed) < 4 && !agent.is_finished() {
        assert!(
            Instant::now() < deadline,
            "the four good reports were not delivered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.send(()).unwrap();
    agent
        .await
        .unwrap()
        .expect("the agent keeps running past corrupt entries");

    assert_eq!(status.discarded.load(Ordering::Relaxed), 2);
    let page = server
        .store
        .list_findings(FindingKind::Alert, &FindingQuery::default())
        .await
        .unwrap();
    let mut titles: Vec<&str> = page
        .items
        .iter()
        .map(|finding| finding.title.as_str())
        .collect();
    titles.sort_unstable();
    // Entries 2 and 5 are alerts 1 and 4.
    assert_eq!(titles, ["shell 0", "shell 2", "shell 3", "shell 5"]);
}
