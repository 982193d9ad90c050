//! The agent's worker: the scan schedule and the server's tasks, one at a time.
//!
//! The worker long-polls the server for tasks (`POST /api/v1/agents/tasks/claim`, waiting up
//! to [`CLAIM_WAIT_SECS`] seconds, so a new task starts within milliseconds while the agent
//! is idle), runs each, and posts the result. Between polls it runs what the schedule says is
//! due, and re-matches the kept inventories when the vulnerability database changed. Reports
//! go through the outbox like every other finding; the scan snapshot that closes vanished
//! findings is a direct call, retried at the next scan when it fails.
//!
//! Each claim is a lease of the server's length (the claim's `lease_until` minus its
//! `started_at`), renewed by heartbeats from the moment it is claimed. A task whose claim is
//! lost — the server refuses a heartbeat (409), or the lease runs out here before a renewal,
//! as when this process was frozen — stops: its future is dropped and no result is posted, so
//! the attempt the server hands out next is the only one that reports. An inventory walk on
//! its blocking thread stops too, within one bounded read (dropping its future cancels it:
//! [`palisade_inventory::Cancel::on_drop`]); a package manager, which must not be killed
//! half-way, runs to its end and its result is dropped.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

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
/// The lease assumed when the server's claim does not say how long it holds (a server from
/// before configurable leases, whose default this is).
const DEFAULT_LEASE: Duration = Duration::from_secs(palisade_model::DEFAULT_LEASE_SECS);
/// The shortest pause between heartbeats.
const MIN_BEAT: Duration = Duration::from_millis(250);

impl Link {
    /// Claims this agent's pending tasks for the agent process `session`, waiting up to
    /// `wait_secs` for one, leased for as long as the server's setting says. Each element is
    /// the raw task, read with [`AgentTask::from_wire`] so that an unknown kind can be failed.
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
                lease_secs: None,
            },
        )
        .await
    }

    /// Renews the claim of attempt `attempt` of a running task for the server's lease; a
    /// [`LinkError::Rejected`] with status 409 means the claim is lost and the work must stop.
    pub async fn task_heartbeat(
        &self,
        credential: &Credential,
        task_id: Uuid,
        attempt: u32,
    ) -> Result<serde_json::Value, LinkError> {
        self.post(
            &format!("/api/v1/agents/tasks/{task_id}/heartbeat?attempt={attempt}"),
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
                    // Every claim is kept from now on, also while its task waits for the ones
                    // before it.
                    let claimed_at = Instant::now();
                    let held: Vec<HeldTask> = tasks
                        .into_iter()
                        .map(|wire| HeldTask::keep(wire, claimed_at, &self.link, &self.credential))
                        .collect();
                    for task in held {
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

    async fn run_task(&mut self, held: HeldTask) {
        // The claim is kept until the result is reported.
        let HeldTask {
            task,
            attempt,
            mut claim,
        } = held;
        let (id, result, rescan) = match task {
            Ok(task) => {
                let Some(claim) = claim.as_mut() else {
                    return;
                };
                if !claim.holds() {
                    tracing::warn!(task = %task.id, attempt, "The claim of the task was lost before it started; not running it.");
                    return;
                }
                tracing::info!(task = %task.id, attempt, kind = task.spec.kind_name(), by = %task.requested_by, "Running a task.");
                // Losing the claim stops the work: the server hands the task to another
                // attempt, and one task never runs twice at once. The claim is looked at
                // first, and its lease again when the work ends, so that work finished after
                // the lease ran out (the agent was frozen) is dropped, not reported. Dropping the work's future cancels it at its next
                // await: nothing it had not reported yet is queued, and an inventory walk on
                // a blocking thread stops at its next read.
                let outcome = tokio::select! {
                    biased;
                    lost = &mut claim.heartbeats => Err(lost.unwrap_or("its heartbeats stopped")),
                    (result, rescan) = self.execute(&task.spec) => if claim.holds() {
                        Ok((result, rescan))
                    } else {
                        Err("its lease ran out while the work finished")
                    },
                };
                match outcome {
                    Ok((result, rescan)) => (task.id, result, rescan),
                    Err(reason) => {
                        tracing::warn!(task = %task.id, attempt, reason, "The claim of the task was lost; its work stopped without a result.");
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

/// A claimed task, its claim kept by heartbeats until it is dropped.
struct HeldTask {
    task: Result<AgentTask, palisade_model::UnreadableTask>,
    attempt: u32,
    /// `None` for a task this agent cannot read (it is failed at once).
    claim: Option<KeptClaim>,
}

impl HeldTask {
    /// Reads a claimed task and starts keeping its claim, leased from `claimed_at`.
    fn keep(
        wire: serde_json::Value,
        claimed_at: Instant,
        link: &Link,
        credential: &Credential,
    ) -> HeldTask {
        let attempt = wire
            .get("attempt")
            .and_then(serde_json::Value::as_u64)
            .and_then(|attempt| u32::try_from(attempt).ok())
            .unwrap_or_default();
        let task = AgentTask::from_wire(wire);
        let claim = task.as_ref().ok().map(|task| {
            let claim = Claim {
                task_id: task.id,
                attempt,
                lease: lease_of(task),
            };
            let held_until = Arc::new(Mutex::new(claimed_at + claim.lease));
            KeptClaim {
                heartbeats: tokio::spawn(claim.keep(
                    link.clone(),
                    credential.clone(),
                    claimed_at,
                    Arc::clone(&held_until),
                )),
                held_until,
            }
        });
        HeldTask {
            task,
            attempt,
            claim,
        }
    }
}

/// The heartbeats of one claim, which end with the reason the claim was lost and stop
/// (aborted) when dropped, and until when the last renewal holds it.
struct KeptClaim {
    heartbeats: tokio::task::JoinHandle<&'static str>,
    held_until: Arc<Mutex<Instant>>,
}

impl KeptClaim {
    /// Whether the claim still holds now: read from the lease itself rather than from the
    /// heartbeats' task, which a process waking from a freeze may not have run yet.
    fn holds(&self) -> bool {
        let held_until = *self
            .held_until
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        !self.heartbeats.is_finished() && Instant::now() < held_until
    }
}

impl Drop for KeptClaim {
    fn drop(&mut self) {
        self.heartbeats.abort();
    }
}

/// An attempt of a task this agent process holds.
struct Claim {
    task_id: Uuid,
    attempt: u32,
    lease: Duration,
}

impl Claim {
    /// Renews the claim every quarter lease; returns why the claim is lost — the server
    /// refused a heartbeat (409), or the lease ran out here before a heartbeat renewed it (the
    /// server unreachable, or this process frozen: `SIGSTOP`, a suspended VM). A heartbeat that
    /// merely fails is retried at the next beat, within the lease.
    async fn keep(
        self,
        link: Link,
        credential: Credential,
        claimed_at: Instant,
        shared_held_until: Arc<Mutex<Instant>>,
    ) -> &'static str {
        let beat_every = (self.lease / 4).max(MIN_BEAT);
        // Counted from when each renewal was sent, so that the claim never outlives the
        // server's idea of it.
        let mut held_until = claimed_at + self.lease;
        let mut next_beat = claimed_at + beat_every;
        loop {
            tokio::select! {
                biased;
                () = tokio::time::sleep_until(held_until) => {
                    return "its lease ran out before a heartbeat renewed it";
                }
                () = tokio::time::sleep_until(next_beat) => {}
            }
            let sent_at = Instant::now();
            next_beat = sent_at + beat_every;
            match link
                .task_heartbeat(&credential, self.task_id, self.attempt)
                .await
            {
                Ok(_) => {
                    held_until = sent_at + self.lease;
                    *shared_held_until
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner()) = held_until;
                }
                Err(LinkError::Rejected { status: 409, .. }) => {
                    return "the server refused its heartbeat";
                }
                Err(error) => {
                    tracing::warn!(%error, task = %self.task_id, "Cannot renew the claim of a task; retrying.")
                }
            }
            // A frozen process wakes up past its lease: that is a loss, whatever the
            // heartbeat sent on waking got.
            if Instant::now() >= held_until {
                return "its lease ran out before a heartbeat renewed it";
            }
        }
    }
}

/// How long the server leases a claim: from its start to `lease_until` as the claim says.
fn lease_of(task: &AgentTask) -> Duration {
    match (task.started_at, task.lease_until) {
        (Some(started), Some(until)) if until.millis() > started.millis() => {
            Duration::from_millis(u64::try_from(until.millis() - started.millis()).unwrap_or(0))
        }
        _ => DEFAULT_LEASE,
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
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}
