//! What nodes lost, per node, over a real socket: two agents send their loss counters (the
//! sensor's kernel events, the firewall's connect reports) with their batches, one of them
//! restarts, batches repeat and arrive out of order; `GET /api/v1/agents` shows each node's
//! totals and `/metrics` counts them per cluster and node, the sensor's lost events also per
//! CPU.

mod support;

use palisade_model::{AgentBatch, AgentLosses, CpuEventsLost, SensorContextLosses, Timestamp};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use support::Server;
use uuid::Uuid;

const ADMIN: &str = "node-losses-test-admin-token";

impl Server {
    /// Sends a batch without reports that carries `losses`.
    async fn send(&self, agent: &str, losses: AgentLosses) {
        send(
            self.client.clone(),
            self.base().to_owned(),
            agent.to_owned(),
            losses,
        )
        .await;
    }

    /// (sensor events, connect reports) lost per agent name, as the API lists them.
    async fn losses(&self) -> Vec<(String, u64, u64)> {
        let (status, agents) = self.get("/api/v1/agents", ADMIN).await;
        assert_eq!(status, StatusCode::OK, "{agents}");
        agents
            .as_array()
            .unwrap()
            .iter()
            .map(|agent| {
                let losses = &agent["losses"];
                (
                    agent["name"].as_str().unwrap().to_owned(),
                    losses["sensor_events"].as_u64().unwrap(),
                    losses["connect_reports"].as_u64().unwrap(),
                )
            })
            .collect()
    }

    /// The `palisade_events_dropped_total` samples.
    async fn dropped_metrics(&self) -> Vec<String> {
        self.metric_samples("palisade_events_dropped_total").await
    }

    /// The samples of metric `name`.
    async fn metric_samples(&self, name: &str) -> Vec<String> {
        let (_, metrics) = self.get("/metrics", ADMIN).await;
        let Value::String(metrics) = metrics else {
            panic!("/metrics is text, not {metrics}");
        };
        metrics
            .lines()
            .filter(|line| line.starts_with(&format!("{name}{{")))
            .map(str::to_owned)
            .collect()
    }
}

/// Sends a batch without reports that carries `losses` (a task of its own can run it).
async fn send(client: Client, base: String, agent: String, losses: AgentLosses) {
    let batch = AgentBatch::<Value> {
        sequence: 0,
        reports: vec![],
        assets: vec![],
        losses: Some(losses),
        facts: None,
    };
    let request = client
        .post(format!("{base}/api/v1/agent/batches"))
        .bearer_auth(agent)
        .json(&batch);
    let (status, body) = support::read(request.send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

fn losses(process: Uuid, started_at: i64, sensor_events: u64, connect_reports: u64) -> AgentLosses {
    AgentLosses {
        process,
        process_started_at: Timestamp(started_at),
        sensor_events,
        sensor_events_by_cpu: Vec::new(),
        connect_reports,
        sensor_context: SensorContextLosses::default(),
    }
}

/// Node a loses events and reports, repeats a batch, restarts (its counters start again at
/// zero) and a batch of its old process arrives late; node b loses connect reports in
/// batches sent at once. Each node's totals count every loss once.
#[tokio::test]
async fn each_nodes_losses_are_summed_over_its_restarts_and_shown_per_node() {
    let server = Server::start(ADMIN).await;
    let node_a = server.enroll("node-a", "node-a").await.token;
    let node_b = server.enroll("node-b", "node-b").await.token;
    assert_eq!(
        server.losses().await,
        [("node-a".into(), 0, 0), ("node-b".into(), 0, 0)]
    );
    assert!(server.dropped_metrics().await.is_empty());

    let (first, second) = (Uuid::new_v4(), Uuid::new_v4());
    server.send(&node_a, losses(first, 1_000, 3, 10)).await;
    server.send(&node_a, losses(first, 1_000, 5, 10)).await;
    server.send(&node_a, losses(first, 1_000, 5, 10)).await;
    server.send(&node_a, losses(second, 2_000, 1, 0)).await;
    server.send(&node_a, losses(first, 1_000, 9, 99)).await;

    // Node b's batches travel at once, each with the counters of its time.
    let node_b_process = Uuid::new_v4();
    let mut sends = tokio::task::JoinSet::new();
    for reports in 1..=20 {
        sends.spawn(send(
            server.client.clone(),
            server.base().to_owned(),
            node_b.clone(),
            losses(node_b_process, 1_000, 0, reports),
        ));
    }
    sends.join_all().await;

    assert_eq!(
        server.losses().await,
        [("node-a".into(), 6, 10), ("node-b".into(), 0, 20)]
    );
    let (_, agents) = server.get("/api/v1/agents", ADMIN).await;
    assert!(
        agents[0]["losses"]["last_loss_at"].is_string(),
        "{agents:#}"
    );
    assert_eq!(
        server.dropped_metrics().await,
        [
            r#"palisade_events_dropped_total{cluster="prod",node="node-a",source="sensor"} 6"#,
            r#"palisade_events_dropped_total{cluster="prod",node="node-a",source="connect_reports"} 10"#,
            r#"palisade_events_dropped_total{cluster="prod",node="node-b",source="sensor"} 0"#,
            r#"palisade_events_dropped_total{cluster="prod",node="node-b",source="connect_reports"} 20"#,
        ]
    );
}

/// What a node's sensor could not attach to its events (held events' ancestors named without
/// their container, among others) is summed like its lost events: `GET /api/v1/agents` shows
/// the totals, `/metrics` counts them per node and kind; a repeated batch adds nothing.
#[tokio::test]
async fn a_nodes_sensor_context_losses_reach_the_agents_list_and_the_metrics() {
    let server = Server::start(ADMIN).await;
    let node = server.enroll("node-c", "node-c").await.token;
    let process = Uuid::new_v4();
    let with_context = |counts| AgentLosses {
        sensor_context: SensorContextLosses::from_counts(counts),
        ..losses(process, 1_000, 0, 0)
    };
    server.send(&node, with_context([2, 0, 0, 0, 5, 0])).await;
    server.send(&node, with_context([2, 0, 1, 0, 8, 1])).await;
    server.send(&node, with_context([2, 0, 1, 0, 8, 1])).await;

    let (status, agents) = server.get("/api/v1/agents", ADMIN).await;
    assert_eq!(status, StatusCode::OK, "{agents}");
    let context = &agents[0]["losses"]["sensor_context"];
    assert_eq!(context["held_ancestors_unattributed"], 8, "{agents:#}");
    assert_eq!(context["container_metadata_missing"], 2, "{agents:#}");
    assert_eq!(context["process_ancestors_evicted"], 1, "{agents:#}");
    assert_eq!(context["names_files_cut"], 1, "{agents:#}");
    assert_eq!(
        server
            .metric_samples("palisade_sensor_context_lost_total")
            .await,
        [
            r#"palisade_sensor_context_lost_total{cluster="prod",node="node-c",what="container_metadata_missing"} 2"#,
            r#"palisade_sensor_context_lost_total{cluster="prod",node="node-c",what="container_lookups_dropped"} 0"#,
            r#"palisade_sensor_context_lost_total{cluster="prod",node="node-c",what="process_ancestors_evicted"} 1"#,
            r#"palisade_sensor_context_lost_total{cluster="prod",node="node-c",what="processes_untracked"} 0"#,
            r#"palisade_sensor_context_lost_total{cluster="prod",node="node-c",what="held_ancestors_unattributed"} 8"#,
            r#"palisade_sensor_context_lost_total{cluster="prod",node="node-c",what="names_files_cut"} 1"#,
        ]
    );
}

/// A node's lost events by CPU are counted like its total: `/metrics` has a series per CPU
/// that lost events, which grows by what that CPU newly lost; a repeated or stale batch adds
/// nothing, a restarted agent's counts add to the series; a batch of an agent from before
/// these counts (no `sensor_events_by_cpu`, as JSON) is taken and adds to the total only.
#[tokio::test]
async fn a_nodes_lost_events_are_counted_per_cpu() {
    let server = Server::start(ADMIN).await;
    let node = server.enroll("node-d", "node-d").await.token;
    let on_cpus = |process, started_at, pairs: &[(u32, u64)]| AgentLosses {
        sensor_events_by_cpu: pairs
            .iter()
            .map(|&(cpu, lost)| CpuEventsLost { cpu, lost })
            .collect(),
        ..losses(
            process,
            started_at,
            pairs.iter().map(|pair| pair.1).sum(),
            0,
        )
    };
    let (first, second) = (Uuid::new_v4(), Uuid::new_v4());
    server.send(&node, on_cpus(first, 1_000, &[(1, 40)])).await;
    server
        .send(&node, on_cpus(first, 1_000, &[(0, 2), (1, 45)]))
        .await;
    server.send(&node, on_cpus(first, 1_000, &[(1, 41)])).await;
    server.send(&node, on_cpus(second, 2_000, &[(1, 3)])).await;
    let (status, body) = server
        .post(
            "/api/v1/agent/batches",
            &node,
            &json!({"sequence": 0, "losses": {
                "process": Uuid::new_v4(), "process_started_at": Timestamp(3_000),
                "sensor_events": 4, "connect_reports": 0}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        server
            .metric_samples("palisade_sensor_events_lost_total")
            .await,
        [
            r#"palisade_sensor_events_lost_total{cluster="prod",node="node-d",cpu="0"} 2"#,
            r#"palisade_sensor_events_lost_total{cluster="prod",node="node-d",cpu="1"} 48"#,
        ]
    );
    assert_eq!(
        server.dropped_metrics().await[0],
        r#"palisade_events_dropped_total{cluster="prod",node="node-d",source="sensor"} 54"#
    );
}

/// The real agent's link carries what the sensor lost on each CPU to the server: a loss on
/// CPU 1 shows under `cpu="1"` only, a later loss on CPU 0 under `cpu="0"` with CPU 1's series
/// unchanged, and the node's total with them. The agent's status is set as its detection
/// thread sets it after a poll that lost events.
#[tokio::test]
async fn the_agents_link_carries_each_cpus_lost_events_to_the_metrics() {
    let running = support::start(ADMIN).await;
    let config =
        support::agent_config(&running.base, running.store.as_ref(), running.dir.path()).await;
    let server = Server::serving(running, ADMIN);
    let outbox = palisade_agent::Outbox::open(&config.data_dir)
        .await
        .unwrap();
    let status = std::sync::Arc::new(palisade_agent::AgentStatus::default());
    let lose = |cpu_losses: &[(u32, u64)]| {
        let total: u64 = cpu_losses.iter().map(|pair| pair.1).sum();
        status
            .sensor_events_lost
            .store(total, std::sync::atomic::Ordering::Relaxed);
        *status.sensor_events_lost_by_cpu.lock().unwrap() = cpu_losses
            .iter()
            .map(|&(cpu, lost)| CpuEventsLost { cpu, lost })
            .collect();
    };
    lose(&[(1, 9)]);
    let agent_status = std::sync::Arc::clone(&status);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let agent = tokio::spawn(async move {
        palisade_agent::run(config, outbox, &agent_status, async {
            let _ = stopped.await;
        })
        .await
    });
    let wait_for = |expected: Vec<&'static str>| {
        let server = &server;
        async move {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            loop {
                let samples = server
                    .metric_samples("palisade_sensor_events_lost_total")
                    .await;
                if samples == expected {
                    return;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "{samples:#?} is not {expected:#?}"
                );
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    };
    wait_for(vec![
        r#"palisade_sensor_events_lost_total{cluster="prod",node="node-1",cpu="1"} 9"#,
    ])
    .await;
    lose(&[(0, 4), (1, 9)]);
    wait_for(vec![
        r#"palisade_sensor_events_lost_total{cluster="prod",node="node-1",cpu="0"} 4"#,
        r#"palisade_sensor_events_lost_total{cluster="prod",node="node-1",cpu="1"} 9"#,
    ])
    .await;
    assert_eq!(
        server.dropped_metrics().await[0],
        r#"palisade_events_dropped_total{cluster="prod",node="node-1",source="sensor"} 13"#
    );
    stop.send(()).unwrap();
    agent.await.unwrap().unwrap();
}
