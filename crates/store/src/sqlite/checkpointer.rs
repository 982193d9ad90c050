//! The WAL checkpoint, off the writer's hold.
//!
//! With SQLite's automatic checkpoint the connection that commits copies the WAL into the
//! database inside its commit: ingest's writer, the serial stage of the ingest path, stopped
//! for every page a few hundred megabytes of WAL had touched, and for the database file's
//! `fsync`. Here a task of the store with a connection of its own (and so a worker thread of
//! its own, on the other core) runs a `PASSIVE` checkpoint after each commit ingest announces,
//! which copies what is committed while the writer goes on with the next batch and never
//! waits for it or makes it wait.
//!
//! A passive checkpoint alone does not bound the WAL: SQLite starts writing it from its
//! beginning again only when a write transaction begins on a WAL that is wholly copied
//! (`walRestartLog`), and ingest's next batch is usually under way before the checkpoint of
//! the last one ends. So once a checkpoint finds more than [`Limits::restart_frames`] frames in
//! the WAL, the writer's next batch waits, before it begins, until a checkpoint has copied
//! every commit announced so far: that batch then writes the WAL from its start (unless a
//! reader still reads an older snapshot from it, as with any checkpoint). It waits the same
//! way when the checkpoints fall more than [`MAX_COMMITS_BEHIND`] commits behind, so that a
//! slow disk slows ingest rather than letting the WAL grow. The writer's own automatic
//! checkpoint stays as a backstop at [`Limits::backstop_frames`], for a checkpointer that fails.
//!
//! Durability is SQLite's: a checkpoint copies only committed frames, syncs the database file
//! (`synchronous = FULL`) before the WAL may be written over, and recovery after a crash reads
//! whatever the WAL still holds.

use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicU64, Ordering},
};

use sqlx::{Connection, SqliteConnection, sqlite::SqliteConnectOptions};
use tokio::sync::{Notify, watch};

use crate::Result;

/// Commits the checkpoints may fall behind before the writer waits for them.
const MAX_COMMITS_BEHIND: u64 = 3;

/// How large the WAL may grow, in frames (a page and a 24-byte header each).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// WAL frames past which the writer's next batch waits for a checkpoint of everything
    /// committed, and so writes the WAL from its start.
    pub(crate) restart_frames: u64,
    /// The writer's `wal_autocheckpoint` (0: none).
    pub(crate) backstop_frames: u64,
}

impl Limits {
    /// The bytes of [`Limits::restart_frames`] frames of 16 KiB pages (a new database's).
    pub(crate) fn wal_bytes(self) -> u64 {
        self.restart_frames * (16_384 + 24)
    }

    /// 16,384 frames: 256 MiB of 16 KiB pages, where the writer's automatic checkpoint ran
    /// before; the backstop at four times that.
    pub(crate) const DEFAULT: Limits = Limits {
        restart_frames: 16_384,
        backstop_frames: 65_536,
    };
}

/// What the writer and the checkpointer's task share.
#[derive(Debug)]
struct Shared {
    /// Commits announced by the writer ([`Checkpointer::committed`]).
    committed: AtomicU64,
    /// The announced commits a finished checkpoint has copied, at least. The task holds the
    /// sender: however it ends (the runtime shutting down, a panic), the channel closes and a
    /// waiting writer goes on instead of waiting for a checkpoint that will never come.
    covered: watch::Receiver<u64>,
    /// A checkpoint found the WAL past [`Limits::restart_frames`].
    restart_wanted: AtomicBool,
    /// Wakes the task: a commit was announced, or the store is gone.
    wake: Notify,
    stopped: AtomicBool,
    /// The writer has said that the task ended.
    gone_reported: AtomicBool,
}

/// The store's checkpointer: its task runs while the store (any clone of it) lives.
#[derive(Debug, Clone)]
pub(super) struct Checkpointer {
    shared: Arc<Shared>,
    /// Stops the task when the last clone of the store is dropped.
    _stop: Arc<StopOnDrop>,
}

#[derive(Debug)]
struct StopOnDrop(Arc<Shared>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stopped.store(true, Ordering::Release);
        self.0.wake.notify_one();
    }
}

impl Checkpointer {
    /// Opens the checkpointer's connection with `options` (the store's) and starts its task.
    pub(super) async fn start(options: &SqliteConnectOptions, limits: Limits) -> Result<Self> {
        let connection = SqliteConnection::connect_with(options).await?;
        let (covered, covered_receiver) = watch::channel(0);
        let shared = Arc::new(Shared {
            committed: AtomicU64::new(0),
            covered: covered_receiver,
            restart_wanted: AtomicBool::new(false),
            wake: Notify::new(),
            stopped: AtomicBool::new(false),
            gone_reported: AtomicBool::new(false),
        });
        tokio::spawn(run(connection, Arc::clone(&shared), covered, limits));
        Ok(Checkpointer {
            _stop: Arc::new(StopOnDrop(Arc::clone(&shared))),
            shared,
        })
    }

    /// Called by the writer before it begins a batch: waits, if the WAL has passed its limit
    /// or the checkpoints have fallen behind, until a checkpoint has copied every commit
    /// announced so far.
    pub(super) async fn before_write(&self) {
        let shared = &self.shared;
        if shared.covered.has_changed().is_err() {
            // The task has ended, so no checkpoint will come: the writer's backstop bounds the
            // WAL. Said once.
            if !shared.gone_reported.swap(true, Ordering::AcqRel) {
                tracing::warn!(
                    "the WAL checkpointer has stopped: the writer checkpoints by itself"
                );
            }
            return;
        }
        let committed = shared.committed.load(Ordering::Acquire);
        let behind = committed.saturating_sub(*shared.covered.borrow());
        if !shared.restart_wanted.load(Ordering::Acquire) && behind <= MAX_COMMITS_BEHIND {
            return;
        }
        let started = std::time::Instant::now();
        // An error: the task ended meanwhile (the next call says so).
        let _ = shared
            .covered
            .clone()
            .wait_for(|covered| *covered >= committed)
            .await;
        shared.restart_wanted.store(false, Ordering::Release);
        // How long the serial stage stood still for the checkpoint (`RUST_LOG`).
        tracing::debug!(
            behind,
            waited_ms = started.elapsed().as_secs_f64() * 1e3,
            "the writer waited for the WAL checkpoint"
        );
    }

    /// Called by the writer after each commit of a batch: a checkpoint follows.
    pub(super) fn committed(&self) {
        self.shared.committed.fetch_add(1, Ordering::AcqRel);
        self.shared.wake.notify_one();
    }
}

/// The task: a passive checkpoint after each wake-up, until the store is gone.
async fn run(
    mut connection: SqliteConnection,
    shared: Arc<Shared>,
    covered: watch::Sender<u64>,
    limits: Limits,
) {
    loop {
        shared.wake.notified().await;
        if shared.stopped.load(Ordering::Acquire) {
            break;
        }
        let committed = shared.committed.load(Ordering::Acquire);
        // (busy, frames in the WAL, frames copied); busy is 1 only when another checkpoint
        // runs (the writer's backstop).
        match sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(&mut connection)
            .await
        {
            Ok((_, frames, _)) => {
                if u64::try_from(frames).is_ok_and(|frames| frames > limits.restart_frames) {
                    shared.restart_wanted.store(true, Ordering::Release);
                }
            }
            Err(error) => tracing::warn!(%error, "WAL checkpoint failed"),
        }
        // Published after a failure too: the writer must not wait for a checkpoint that
        // cannot run (its backstop bounds the WAL then).
        covered.send_replace(committed);
    }
    if let Err(error) = connection.close().await {
        tracing::debug!(%error, "closing the checkpointer's connection");
    }
}

#[cfg(test)]
mod tests {
    use palisade_model::Timestamp;

    use super::Limits;
    use crate::{HandlingPolicy, SqliteStore, Store, sqlite::tests::alert};

    /// Alerts ingested and their batches in the long ingest below.
    const BATCHES: usize = 120;
    const PER_BATCH: usize = 250;

    /// A writer whose checkpointer task has ended (however: its sender is gone) does not wait
    /// for a checkpoint that will never come; while the task lives, it waits.
    #[tokio::test]
    async fn a_writer_does_not_wait_for_a_checkpointer_that_has_ended() {
        use std::{
            sync::{
                Arc,
                atomic::{AtomicBool, AtomicU64, Ordering},
            },
            time::Duration,
        };
        let (covered, receiver) = tokio::sync::watch::channel(0);
        let shared = Arc::new(super::Shared {
            committed: AtomicU64::new(10),
            covered: receiver,
            restart_wanted: AtomicBool::new(true),
            wake: tokio::sync::Notify::new(),
            stopped: AtomicBool::new(false),
            gone_reported: AtomicBool::new(false),
        });
        let checkpointer = super::Checkpointer {
            _stop: Arc::new(super::StopOnDrop(Arc::clone(&shared))),
            shared: Arc::clone(&shared),
        };
        let waited = tokio::time::timeout(Duration::from_millis(200), checkpointer.before_write());
        assert!(
            waited.await.is_err(),
            "a writer waits while the checkpoints are behind"
        );
        drop(covered);
        tokio::time::timeout(Duration::from_secs(10), checkpointer.before_write())
            .await
            .expect("a writer whose checkpointer has ended goes on");
        assert!(shared.gone_reported.load(Ordering::Acquire));
    }

    /// Through a long ingest, with the checkpoint off the writer and no automatic checkpoint
    /// at all, the WAL stays bounded: it is written from its start again, when a batch begins
    /// after the checkpoint of the last one or waits for it at the limit. Every page the
    /// batches add to the database went through the WAL, so without that the WAL would hold
    /// them all; and everything committed is there after the store is opened again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_stays_bounded_through_a_long_ingest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("palisade.db");
        let limits = Limits {
            restart_frames: 128,
            backstop_frames: 0,
        };
        let store = SqliteStore::open_with(&path, limits).await.unwrap();
        // The migrations' frames are not the ingest's.
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&store.writer)
            .await
            .unwrap();
        let pages = || async {
            sqlx::query_scalar::<_, i64>("PRAGMA page_count")
                .fetch_one(&store.writer)
                .await
                .unwrap()
        };
        let page_size: i64 = sqlx::query_scalar("PRAGMA page_size")
            .fetch_one(&store.writer)
            .await
            .unwrap();
        let pages_before = pages().await;
        let wal = path.with_extension("db-wal");
        let now = Timestamp::now().millis();
        // Two tasks, as an agent keeps two batches in flight: one is waiting for the writer
        // when the other commits, so the checkpoint of a batch rarely ends before the next
        // batch writes.
        let tasks: Vec<_> = (0..2)
            .map(|task| {
                let (store, wal) = (store.clone(), wal.clone());
                tokio::spawn(async move {
                    let mut largest_wal = 0;
                    for batch in (task..BATCHES).step_by(2) {
                        let reports: Vec<_> = (0..PER_BATCH)
                            .map(|index| alert(&format!("web-{batch}-{index}"), now))
                            .collect();
                        let outcome = store
                            .ingest(&reports, &HandlingPolicy::default())
                            .await
                            .unwrap();
                        assert_eq!(outcome.created, PER_BATCH as u64);
                        largest_wal = largest_wal.max(std::fs::metadata(&wal).unwrap().len());
                    }
                    largest_wal
                })
            })
            .collect();
        let mut largest_wal = 0;
        for task in tasks {
            largest_wal = largest_wal.max(task.await.unwrap());
        }
        let added = u64::try_from((pages().await - pages_before) * page_size).unwrap();
        let frame = u64::try_from(page_size).unwrap() + 24;
        eprintln!(
            "added {added} bytes of pages; the WAL's largest size {largest_wal} bytes ({} frames)",
            largest_wal / frame
        );
        assert!(
            largest_wal * 2 < added,
            "the WAL was written from its start again ({largest_wal} bytes at most, {added} \
             bytes of pages added)"
        );
        drop(store);

        let store = SqliteStore::open(&path).await.unwrap();
        let (findings, alerts): (i64, i64) =
            sqlx::query_as("SELECT COUNT(*), SUM(count) FROM findings WHERE kind = 'alert'")
                .fetch_one(&store.reader)
                .await
                .unwrap();
        let stored = i64::try_from(BATCHES * PER_BATCH).unwrap();
        assert_eq!((findings, alerts), (stored, stored));
    }
}
