//! The agent's worker: the scan schedule and the server's tasks, one at a time.
//!
//! The worker long-polls the server for tasks (`POST /api/v1/agents/tasks/claim`, waiting up
//! to [`CLAIM_WAIT_SECS`] seconds, so a new task starts within milliseconds while the agent
//! is idle), runs each, and posts the result. Between polls it runs what the schedule says is
//! due, and re-matches the kept inventories when the vulnerability database changed. Reports
//! go through the outbox like every other finding; the scan snapshot that closes vanished
//! findings is a direct call, retried at the next scan when it fails.

use std::time::Duration;

use palisade_model::{AgentTask, ClaimTasks, ScanSnapshot, SnapshotOutcome, TaskResult, TaskSpec};
use tokio::time::Instant;
use uuid::Uuid;

use crate::{
    AgentConfig, Credential, Link, LinkError, Outbox, fix,
    quarantine::QuarantineSync,
    scans::{AssetScan, ScanError, Scanner},
};

/// Seconds one claim waits for a task (the server allows up to 8).
const CLAIM_WAIT_SECS: u64 = 5;
/// Wait after a failed claim.
const CLAIM_RETRY: Duration = Duration::from_secs(10);
/// How long a claim holds without a heartbeat; heartbeats go at a quarter of it, so three can
/// be lost before the server hands the task out again.
const LEASE_SECS: u64 = 60;

impl Link {
    /// Claims this agent's pending tasks for the agent process `session`, waiting up to
    /// `wait_secs` for one. Each element is the raw task, read with [`AgentTask::from_wire`]
    /// so that an unknown kind can be failed.
    pub async fn claim_tasks(
        &self,
        credential: &Credential,
        session: Uuid,
        wait_secs: u64,
    ) -> Result<Vec<serde_json::Value>, LinkError> {
        self.post(
            "/api/v1/agents/tasks/claim",
            &credential.token,
            &ClaimTasks {
                wait_secs,
                session: Some(session),
                lease_secs: Some(LEASE_SECS),
            },
        )
        .await
    }

    /// Renews the claim of attempt `attempt` of a running task; a [`LinkError::Rejected`]
    /// with status 409 means the claim is lost and the work must stop.
    pub async fn task_heartbeat(
        &self,
        credential: &Credential,
        task_id: Uuid,
        attempt: u32,
    ) -> Result<serde_json::Value, LinkError> {
        self.post(
            &format!(
                "/api/v1/agents/tasks/{task_id}/heartbeat?attempt={attempt}&lease_secs={LEASE_SECS}"
            ),
            &credential.token,
            &serde_json::Value::Null,
        )
        .await
    }

    /// Reports the result of attempt `attempt` of a task (the server refuses a stale one).
    pub async fn report_task(
        &self,
        credential: &Credential,
        task_id: Uuid,
        attempt: u32,
        result: &TaskResult,
    ) -> Result<AgentTask, LinkError> {
        self.post(
            &format!("/api/v1/agents/tasks/{task_id}/result?attempt={attempt}"),
            &credential.token,
            result,
        )
        .await
    }

    /// Tells the server which findings a complete scan of an asset found.
    pub async fn send_snapshot(
        &self,
        credential: &Credential,
        snapshot: &ScanSnapshot,
    ) -> Result<SnapshotOutcome, LinkError> {
        self.post("/api/v1/agents/scan-snapshots", &credential.token, snapshot)
            .await
    }
}

/// Aborts the worker when the agent's main loop ends.
#[derive(Debug)]
pub(crate) struct Worker(tokio::task::JoinHandle<()>);

impl Drop for Worker {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts the worker for an enrolled agent.
pub(crate) fn start(
    config: &AgentConfig,
    link: &Link,
    credential: &Credential,
    outbox: &Outbox,
    session: Uuid,
) -> Worker {
    let context = Context {
        scanner: Scanner::new(
            &config.scans,
            &config.data_dir,
            &config.cluster,
            &config.name,
        ),
        fix: config.fix.clone(),
        quarantine: QuarantineSync::new(&config.quarantine_dir()),
        link: link.clone(),
        credential: credential.clone(),
        outbox: outbox.clone(),
        session,
    };
    Worker(tokio::spawn(context.run()))
}

struct Context {
    scanner: Scanner,
    fix: fix::FixConfig,
    quarantine: QuarantineSync,
    link: Link,
    credential: Credential,
    outbox: Outbox,
    /// This agent process, for the server's leases.
    session: Uuid,
}

impl Context {
    async fn run(mut self) {
        let schedule = self.scanner.config().clone();
        let first = Instant::now() + Duration::from_secs(schedule.start_delay_secs);
        let mut next_inventory = first;
        let mut next_checks = first;
        loop {
            let now = Instant::now();
            if schedule.enabled && now >= next_checks {
                // Failures are logged; the schedule goes on.
                let _ = self.host_checks().await;
                next_checks = Instant::now()
                    + Duration::from_secs(schedule.host_checks_interval_secs.max(60));
            }
            if schedule.enabled && now >= next_inventory {
                let _ = self.vulnerabilities(true).await;
                next_inventory =
                    Instant::now() + Duration::from_secs(schedule.inventory_interval_secs.max(60));
            } else if now >= first && matches!(self.scanner.refresh_database().await, Ok(true)) {
                // A new database: match what is kept without reading any file again (or take
                // the first inventory, if the database was missing at the scheduled scan).
                tracing::info!("The vulnerability database changed; matching again.");
                let inventory = schedule.enabled && !self.scanner.has_inventories();
                let _ = self.vulnerabilities(inventory).await;
            }
            self.quarantine.sync(&self.link, &self.credential).await;
            let due = if schedule.enabled {
                next_checks.min(next_inventory)
            } else {
                Instant::now() + Duration::from_secs(CLAIM_WAIT_SECS)
            };
            let wait = due
                .saturating_duration_since(Instant::now())
                .as_secs()
                .min(CLAIM_WAIT_SECS);
            match self
                .link
                .claim_tasks(&self.credential, self.session, wait)
                .await
            {
                Ok(tasks) => {
                    for task in tasks {
                        self.run_task(task).await;
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, retry_in = ?CLAIM_RETRY, "Cannot fetch tasks from the server.");
                    tokio::time::sleep(CLAIM_RETRY).await;
                }
            }
        }
    }

    async fn run_task(&mut self, wire: serde_json::Value) {
        let attempt = wire
            .get("attempt")
            .and_then(serde_json::Value::as_u64)
            .and_then(|attempt| u32::try_from(attempt).ok())
            .unwrap_or_default();
        let (id, result, rescan) = match AgentTask::from_wire(wire) {
            Ok(task) => {
                tracing::info!(task = %task.id, attempt, kind = task.spec.kind_name(), by = %task.requested_by, "Running a task.");
                let keep_claim =
                    keep_claim(self.link.clone(), self.credential.clone(), task.id, attempt);
                // Losing the claim stops the work: the server has handed the task to another
                // attempt, and one task never runs twice at once.
                tokio::select! {
                    (result, rescan) = self.execute(&task.spec) => (task.id, result, rescan),
                    () = keep_claim => {
                        tracing::warn!(task = %task.id, attempt, "The claim of the task was lost; its work stopped.");
                        return;
                    }
                }
            }
            Err(unreadable) => {
                tracing::warn!(error = %unreadable, "Refusing a task this agent cannot read.");
                match unreadable.id {
                    Some(id) => (id, TaskResult::failed(unreadable.to_string()), None),
                    None => return,
                }
            }
        };
        // A lost result leaves the task running until its deadline, when it fails as timed
        // out: retry a few times before giving up.
        for try_number in 1..=3 {
            match self
                .link
                .report_task(&self.credential, id, attempt, &result)
                .await
            {
                Ok(_) => break,
                Err(LinkError::Rejected {
                    status: 409,
                    message,
                }) => {
                    tracing::warn!(task = %id, attempt, %message, "The server refused the result of a stale attempt.");
                    return;
                }
                Err(error) if error.is_transient() && try_number < 3 => {
                    tracing::warn!(%error, task = %id, "Cannot report a task result; retrying.");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
                Err(error) => {
                    tracing::error!(%error, task = %id, "Cannot report a task result.");
                    break;
                }
            }
        }
        // The verification's rescan is the asset's new state; it goes after the verdict, so
        // that the verdict is what closes the verified finding.
        if let Some(scan) = rescan
            && let Err(message) = self.deliver(scan).await
        {
            tracing::warn!(error = %message, "Cannot report the rescan of a fix verification.");
        }
    }

    /// Runs a task; for a fix verification, also the asset's fresh scan.
    async fn execute(&mut self, spec: &TaskSpec) -> (TaskResult, Option<AssetScan>) {
        let result = match spec {
            TaskSpec::RunHostChecks => match self.host_checks().await {
                Ok(failed) => done(format!("host checks ran: {failed} failed")),
                Err(message) => TaskResult::failed(message),
            },
            TaskSpec::RescanVulnerabilities => match self.vulnerabilities(true).await {
                Ok(found) => done(format!("rescanned: {found} vulnerabilities")),
                Err(message) => TaskResult::failed(message),
            },
            TaskSpec::VerifyFix(verify) => {
                return match self.scanner.verify_fix(verify).await {
                    Ok((verdict, scan)) => (
                        TaskResult {
                            succeeded: true,
                            message: verdict.reason.clone(),
                            verdict: Some(verdict),
                        },
                        Some(scan),
                    ),
                    Err(error) => (TaskResult::failed(error_chain(&error)), None),
                };
            }
            TaskSpec::RestoreQuarantined(restore) => {
                let result = self.quarantine.restore(restore);
                self.quarantine.sync(&self.link, &self.credential).await;
                result
            }
            TaskSpec::UpgradePackage(upgrade) => {
                let result =
                    fix::upgrade(&self.fix, &self.scanner.config().host_root, upgrade).await;
                if result.succeeded {
                    // The upgrade changed the host: report what is left.
                    let _ = self.vulnerabilities(true).await;
                }
                result
            }
        };
        (result, None)
    }

    /// Runs the host checks and the service checks of the host and its containers and
    /// reports them; the number of failed checks.
    async fn host_checks(&mut self) -> Result<usize, String> {
        let scans = self.scanner.host_checks().await.map_err(|error| {
            let message = error_chain(&error);
            tracing::error!(error = %message, "Host checks failed.");
            message
        })?;
        let mut failed = 0;
        let assets = scans.len();
        for scan in scans {
            failed += scan.reports.len();
            self.deliver(scan).await?;
        }
        tracing::info!(failed, assets, "Host checks reported.");
        Ok(failed)
    }

    /// Inventories (when `inventory`) and matches, and reports; the number of findings.
    async fn vulnerabilities(&mut self, inventory: bool) -> Result<usize, String> {
        let scanned = async {
            // Without a database the inventory would be wasted work.
            self.scanner.refresh_database().await?;
            if inventory {
                self.scanner.inventory_all().await?;
            }
            self.scanner.vulnerability_scans()
        }
        .await;
        let scans = scanned.map_err(|error: ScanError| {
            let message = error_chain(&error);
            tracing::warn!(error = %message, "Vulnerability scan skipped.");
            message
        })?;
        let mut found = 0;
        for scan in scans {
            found += scan.reports.len();
            self.deliver(scan).await?;
        }
        Ok(found)
    }

    /// Pushes the reports into the outbox, then sends the snapshot.
    async fn deliver(&self, scan: AssetScan) -> Result<(), String> {
        self.outbox
            .push(&scan.reports)
            .await
            .map_err(|error| format!("cannot queue the findings: {}", error_chain(&error)))?;
        let kind = scan.snapshot.kind;
        match self
            .link
            .send_snapshot(&self.credential, &scan.snapshot)
            .await
        {
            Ok(outcome) => {
                if outcome.resolved > 0 {
                    tracing::info!(resolved = outcome.resolved, kind = kind.as_str(), asset = %scan.snapshot.asset.label(), "Findings no longer present were resolved.");
                }
                Ok(())
            }
            // The findings are queued; closing vanished ones waits for the next scan.
            Err(error) => Err(format!(
                "cannot send the scan snapshot: {}",
                error_chain(&error)
            )),
        }
    }
}

/// Renews the claim of a running task every quarter lease; returns only when the server says
/// the claim is lost (a heartbeat that merely fails is retried at the next beat).
async fn keep_claim(link: Link, credential: Credential, task_id: Uuid, attempt: u32) {
    let mut beat = tokio::time::interval(Duration::from_secs(LEASE_SECS / 4));
    beat.tick().await;
    loop {
        beat.tick().await;
        match link.task_heartbeat(&credential, task_id, attempt).await {
            Ok(_) => {}
            Err(LinkError::Rejected { status: 409, .. }) => return,
            Err(error) => {
                tracing::warn!(%error, task = %task_id, "Cannot renew the claim of a task; retrying.")
            }
        }
    }
}

fn done(message: String) -> TaskResult {
    TaskResult {
        succeeded: true,
        message,
        verdict: None,
    }
}

/// An error with its causes, `: `-separated.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}
