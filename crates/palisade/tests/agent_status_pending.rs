//! `palisade agent --status` counts as pending only what the server has not acknowledged,
//! also when a batch ended inside one of the outbox's runs (a push of up to 1,000 entries
//! kept in one row, agent migration 0004).

mod support;

use serde_json::Value;

fn pending(data_dir: &std::path::Path) -> Value {
    let output = support::agent_status(data_dir, "json");
    serde_json::from_slice::<Value>(&output.stdout).unwrap()["outbox_pending"].clone()
}

#[tokio::test]
async fn the_acknowledged_head_of_a_cut_run_is_not_pending() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = palisade_agent::Outbox::open(dir.path()).await.unwrap();
    // Runs of 1,000, 1,000 and 500 entries.
    outbox
        .push(
            &(0..2_500)
                .map(palisade_testdata::findings::shell_alert)
                .collect::<Vec<_>>(),
        )
        .await
        .unwrap();
    // A batch of 1,500 acknowledged: it ended in the middle of the second run.
    outbox.acknowledge(1_500).await.unwrap();
    drop(outbox);
    assert_eq!(pending(dir.path()), 1_000);

    let outbox = palisade_agent::Outbox::open(dir.path()).await.unwrap();
    let next = outbox.peek(0, 1).await.unwrap();
    assert_eq!(
        next[0].0, 1_501,
        "the next process sends from the first unacknowledged"
    );
    outbox.acknowledge(2_500).await.unwrap();
    drop(outbox);
    assert_eq!(pending(dir.path()), 0);
}
