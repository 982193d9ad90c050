//! `palisade agent --status` counts as pending only what the server has not acknowledged,
//! also when a batch ended inside one of the outbox's runs (a push of up to 1,000 entries
//! kept in one row, agent migration 0004).

mod support;

use palisade_model::{
    AffectedAsset, AlertDetails, Details, FindingReport, ProcessInfo, Severity, Timestamp,
};
use serde_json::Value;

fn alert(index: u32) -> FindingReport {
    FindingReport {
        id: uuid::Uuid::now_v7(),
        observed_at: Timestamp::now(),
        severity: Severity::High,
        rule: "Terminal shell in container".into(),
        title: format!("shell {index}"),
        asset: AffectedAsset {
            cluster: "prod".into(),
            pod: Some(format!("web-{index}")),
            ..Default::default()
        },
        details: Details::Alert(AlertDetails {
            process: ProcessInfo {
                pid: 100 + index,
                exe: "/bin/sh".into(),
                ..Default::default()
            },
            ..Default::default()
        }),
        demo: false,
    }
}

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
        .push(&(0..2_500).map(alert).collect::<Vec<_>>())
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
