//! Task claims are leases, over a real socket: a task claimed by an agent process that died is
//! handed to the agent's next process, a claim whose lease lapsed without a heartbeat is
//! handed out again, retries are bounded, every attempt is recorded, and heartbeats and
//! results of a stale attempt are refused — so one task never runs twice at once.

mod support;

use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

const ADMIN: &str = "task-leases-test-admin-token-0123456789";

struct Api {
    base: String,
    client: Client,
    running: support::Running,
}

impl Api {
    async fn start() -> Api {
        Api::with(support::start(ADMIN).await)
    }

    fn with(running: support::Running) -> Api {
        Api {
            base: running.base.clone(),
            client: Client::new(),
            running,
        }
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        support::read(response).await
    }

    async fn get(&self, path: &str) -> Value {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        let (status, body) = support::read(response).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// Enrolls agent `node`: (agent id, agent token).
    async fn enroll(&self, node: &str) -> (String, String) {
        let enrolled = support::enroll(&self.client, &self.base, ADMIN, node, node).await;
        (enrolled.agent_id, enrolled.token)
    }

    async fn queue_host_checks(&self, agent_id: &str) -> String {
        let (status, task) = self
            .post(
                &format!("/api/v1/agents/{agent_id}/tasks"),
                ADMIN,
                json!({"spec": {"kind": "run_host_checks"}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{task}");
        task["id"].as_str().unwrap().to_owned()
    }

    /// Claims as agent process `session` with a lease of `lease_secs`.
    async fn claim(&self, token: &str, session: Uuid, lease_secs: u64) -> Vec<Value> {
        let (status, body) = self
            .post(
                "/api/v1/agents/tasks/claim",
                token,
                json!({"wait_secs": 0, "session": session, "lease_secs": lease_secs}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body.as_array().unwrap().clone()
    }

    async fn heartbeat(&self, token: &str, task: &str, attempt: u64) -> (StatusCode, Value) {
        self.post(
            &format!("/api/v1/agents/tasks/{task}/heartbeat?attempt={attempt}&lease_secs=1"),
            token,
            Value::Null,
        )
        .await
    }

    async fn result(&self, token: &str, task: &str, attempt: u64) -> (StatusCode, Value) {
        self.post(
            &format!("/api/v1/agents/tasks/{task}/result?attempt={attempt}"),
            token,
            json!({"succeeded": true, "message": format!("done by attempt {attempt}")}),
        )
        .await
    }
}

fn outcomes(task: &Value) -> Vec<String> {
    task["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|attempt| {
            format!(
                "{} {}",
                attempt["attempt"],
                attempt["outcome"].as_str().unwrap_or("running")
            )
        })
        .collect()
}

#[tokio::test]
async fn a_new_agent_process_gets_the_tasks_its_dead_predecessor_claimed() {
    let api = Api::start().await;
    let (agent_id, token) = api.enroll("node-1").await;
    let task_id = api.queue_host_checks(&agent_id).await;
    let (dead, next) = (Uuid::new_v4(), Uuid::new_v4());

    let claimed = api.claim(&token, dead, 60).await;
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0]["attempt"], 1);
    assert!(claimed[0]["lease_until"].is_string(), "{}", claimed[0]);
    // The same process asking again gets nothing: its task is running.
    assert!(api.claim(&token, dead, 60).await.is_empty());

    // A new process of the agent claims: the task is handed to it as attempt 2.
    let claimed = api.claim(&token, next, 60).await;
    assert_eq!(claimed.len(), 1, "the restarted agent did not get its task");
    assert_eq!(claimed[0]["id"], task_id.as_str());
    assert_eq!(claimed[0]["attempt"], 2);

    // The old attempt can neither keep the claim nor finish the task.
    let (status, body) = api.heartbeat(&token, &task_id, 1).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body) = api.result(&token, &task_id, 1).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body.to_string().contains("stale"), "{body}");
    let (status, body) = api.heartbeat(&token, &task_id, 2).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = api.result(&token, &task_id, 2).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "done");

    let task = api.get(&format!("/api/v1/tasks/{task_id}")).await;
    assert_eq!(task["result"]["message"], "done by attempt 2");
    assert_eq!(
        outcomes(&task),
        [
            "1 lost: the agent restarted (another process of it claimed tasks)",
            "2 finished: succeeded"
        ]
    );
    assert_eq!(task["attempts"][0]["session"], dead.to_string());
    assert_eq!(task["attempts"][1]["session"], next.to_string());
    // Finished is final, whatever attempt reports.
    let (status, _) = api.result(&token, &task_id, 2).await;
    assert_eq!(status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn a_lapsed_lease_is_handed_out_again_at_most_three_times() {
    let api = Api::start().await;
    let (agent_id, token) = api.enroll("node-1").await;
    let task_id = api.queue_host_checks(&agent_id).await;
    let session = Uuid::new_v4();

    let claimed = api.claim(&token, session, 1).await;
    assert_eq!(claimed[0]["attempt"], 1);
    // Heartbeats keep the claim past its first lease.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (status, body) = api.heartbeat(&token, &task_id, 1).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(api.claim(&token, session, 1).await.is_empty());
    }
    // No heartbeat: the lease lapses and the task comes back as attempt 2, then 3.
    for attempt in 2..=3 {
        tokio::time::sleep(Duration::from_millis(1_200)).await;
        let claimed = api.claim(&token, session, 1).await;
        assert_eq!(claimed.len(), 1, "attempt {attempt} was not handed out");
        assert_eq!(claimed[0]["attempt"], attempt);
    }
    // The third lapse is the last: the task fails, and is not handed out again.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert!(api.claim(&token, session, 1).await.is_empty());
    let task = api.get(&format!("/api/v1/tasks/{task_id}")).await;
    assert_eq!(task["state"], "failed", "{task}");
    assert_eq!(
        task["result"]["message"],
        "gave up after 3 attempts; the last one was lost: the lease expired without a heartbeat"
    );
    assert_eq!(outcomes(&task).len(), 3, "{task}");
    assert!(
        outcomes(&task)
            .iter()
            .all(|outcome| outcome.ends_with("lost: the lease expired without a heartbeat")),
        "{task}"
    );
    let (status, _) = api.result(&token, &task_id, 3).await;
    assert_eq!(status, StatusCode::CONFLICT);

    // Out-of-range leases are refused with a reason.
    let (status, body) = api
        .post(
            "/api/v1/agents/tasks/claim",
            &token,
            json!({"session": session, "lease_secs": 0}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.to_string().contains("lease_secs"), "{body}");
}

/// The server's lease applies when the agent names none; a lease that lapsed is lost at the
/// next heartbeat or result of its attempt even though no other claim came, and the attempt's
/// end is recorded at once.
#[tokio::test]
async fn the_servers_lease_applies_and_a_lapsed_one_is_lost_without_another_claim() {
    let lease = palisade_server::TaskLeaseLength::from_secs(2).unwrap();
    let api = Api::with(
        support::start_with(ADMIN, move |state| {
            assert!(state.set_task_lease_length(lease));
        })
        .await,
    );
    let (agent_id, token) = api.enroll("node-1").await;
    let session = Uuid::new_v4();
    let post_claim = |session: Uuid| {
        api.post(
            "/api/v1/agents/tasks/claim",
            &token,
            json!({"wait_secs": 0, "session": session}),
        )
    };

    // A heartbeat in time keeps the claim for the server's lease; a late one is refused.
    let task_id = api.queue_host_checks(&agent_id).await;
    let (status, claimed) = post_claim(session).await;
    assert_eq!(status, StatusCode::OK, "{claimed}");
    let time = |task: &Value, field: &str| {
        palisade_model::Timestamp::parse_rfc3339(task[field].as_str().unwrap())
            .unwrap()
            .millis()
    };
    assert_eq!(
        time(&claimed[0], "lease_until") - time(&claimed[0], "started_at"),
        2_000
    );
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let path = format!("/api/v1/agents/tasks/{task_id}/heartbeat?attempt=1");
    let (status, body) = api.post(&path, &token, Value::Null).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    tokio::time::sleep(Duration::from_millis(2_300)).await;
    let (status, body) = api.post(&path, &token, Value::Null).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let task = api.get(&format!("/api/v1/tasks/{task_id}")).await;
    assert_eq!(task["state"], "pending", "{task}");
    assert_eq!(
        outcomes(&task),
        ["1 lost: the lease expired without a heartbeat"]
    );

    // The same for a result that comes after the lease lapsed: refused, saying why.
    let (_, claimed) = post_claim(session).await;
    assert_eq!(claimed[0]["attempt"], 2);
    tokio::time::sleep(Duration::from_millis(2_300)).await;
    let (status, body) = api.result(&token, &task_id, 2).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body.to_string().contains("lease lapsed"), "{body}");
    let task = api.get(&format!("/api/v1/tasks/{task_id}")).await;
    assert_eq!(task["state"], "pending", "{task}");
    assert_eq!(outcomes(&task).len(), 2, "{task}");

    // Lease lengths out of the server's bounds are refused with them.
    for secs in [0, 1, 3_601] {
        let error = palisade_server::TaskLeaseLength::from_secs(secs).unwrap_err();
        assert!(error.to_string().contains("2 to 3600 seconds"), "{error}");
    }
    assert!("soon".parse::<palisade_server::TaskLeaseLength>().is_err());
}

/// The real agent: a task claimed by a process that then died is run by the agent's next
/// process, as attempt 2.
#[tokio::test]
async fn the_restarted_agent_runs_the_task_its_dead_process_claimed() {
    let api = Api::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = support::agent_config(&api.base, api.running.store.as_ref(), dir.path()).await;
    config.scans.enabled = false;
    config.scans.container_services = false;
    // The first process enrolls, claims a task and dies before reporting.
    let credential = palisade_agent::Link::new(&config)
        .unwrap()
        .credential(&config)
        .await
        .unwrap();
    let agent_id = credential.agent_id.to_string();
    let task_id = api.queue_host_checks(&agent_id).await;
    let claimed = api.claim(&credential.token, Uuid::new_v4(), 60).await;
    assert_eq!(claimed[0]["attempt"], 1);

    // The next process (the real agent) picks it up at its first claim.
    let agent = support::RunningAgent::start(config).await;
    let until = Instant::now() + Duration::from_secs(30);
    let task = loop {
        let task = api.get(&format!("/api/v1/tasks/{task_id}")).await;
        if task["state"] == "done" || task["state"] == "failed" {
            break task;
        }
        assert!(Instant::now() < until, "the task was not run again: {task}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(task["state"], "done", "{task}");
    assert_eq!(task["attempt"], 2, "{task}");
    assert_eq!(
        outcomes(&task),
        [
            "1 lost: the agent restarted (another process of it claimed tasks)",
            "2 finished: succeeded"
        ]
    );
    agent.stop().await;
}
