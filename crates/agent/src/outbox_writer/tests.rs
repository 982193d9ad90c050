//! The writer against a push that fails and recovers, as an outbox's would: with a detector
//! whose observer gives out a report and a receipt at every tick, as the firewall does for
//! each take of its attempt counts.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use palisade_event::{Event, EventKind};
use palisade_model::{AffectedAsset, AlertDetails, Details, FindingReport, Severity, Timestamp};
use uuid::Uuid;

use super::OutboxWriter;
use crate::{Detector, EventObserver, OutboxError, Receipt};

/// Gives out `per_tick` reports titled `take <n>` and the receipt `n` at its n-th tick, and
/// notes which receipts it was told are delivered.
struct Taker {
    per_tick: Arc<Mutex<usize>>,
    ticks: u64,
    delivered: Arc<Mutex<Vec<u64>>>,
    receipt: Option<u64>,
}

impl EventObserver for Taker {
    fn kinds(&self) -> BTreeSet<EventKind> {
        BTreeSet::new()
    }

    fn observe(&mut self, _event: &Event, _reports: &mut Vec<FindingReport>) {}

    fn tick(&mut self, now: Timestamp, reports: &mut Vec<FindingReport>) {
        self.ticks += 1;
        for _ in 0..*self.per_tick.lock().unwrap() {
            reports.push(report(&format!("take {}", self.ticks), now));
        }
        self.receipt = Some(self.ticks);
    }

    fn take_receipt(&mut self) -> Option<Receipt> {
        self.receipt.take().map(|serial| Receipt {
            source: "takes".to_owned(),
            serial,
        })
    }

    fn delivered(&mut self, receipt: &Receipt) {
        self.delivered.lock().unwrap().push(receipt.serial);
    }
}

fn report(title: &str, at: Timestamp) -> FindingReport {
    FindingReport {
        id: Uuid::now_v7(),
        observed_at: at,
        severity: Severity::High,
        rule: "taken".to_owned(),
        title: title.to_owned(),
        asset: AffectedAsset::default(),
        details: Details::Alert(AlertDetails::default()),
        demo: false,
    }
}

/// A detector with a [`Taker`] of `per_tick` reports; its delivered receipts.
fn detector(per_tick: &Arc<Mutex<usize>>) -> (Detector, Arc<Mutex<Vec<u64>>>) {
    let engine = palisade_rules::Engine::new(
        palisade_rules::RuleSet::load(&[]),
        &palisade_rules::EngineConfig::default(),
    );
    let delivered = Arc::new(Mutex::new(Vec::new()));
    let detector = Detector::new(engine, "prod", "node-1").with_observer(Box::new(Taker {
        per_tick: Arc::clone(per_tick),
        ticks: 0,
        delivered: Arc::clone(&delivered),
        receipt: None,
    }));
    (detector, delivered)
}

/// What a push wrote: the reports' titles and the receipts' serials.
type Written = (Vec<String>, Vec<u64>);

/// Writes with a push that fails when `failing`, noting what a successful one wrote.
fn write(
    writer: &mut OutboxWriter,
    detector: &mut Detector,
    failing: bool,
    written: &mut Vec<Written>,
) -> Result<(), OutboxError> {
    writer.write(detector, |reports, receipts| {
        if failing {
            return Err(OutboxError::Database(sqlx::Error::PoolTimedOut));
        }
        written.push((
            reports.iter().map(|report| report.title.clone()).collect(),
            receipts.iter().map(|receipt| receipt.serial).collect(),
        ));
        Ok(())
    })
}

/// A failed write keeps its reports and receipts, and each later write retries them first,
/// with what was detected since behind them; the receipts are delivered (the firewall's
/// counts deleted from the kernel) only once a write holds them. The failures are counted
/// while they last, and once the outbox takes writes again a node alert says how many there
/// were. (Before, the first failure stopped detection and that take's counts were left to
/// the pins, logged only.)
#[test]
fn a_failed_write_is_kept_and_retried_and_its_receipts_wait_for_it() {
    let per_tick = Arc::new(Mutex::new(1));
    let (mut detector, delivered) = detector(&per_tick);
    let mut writer = OutboxWriter::default();
    let mut written = Vec::new();
    detector.tick(Timestamp(1_000));
    write(&mut writer, &mut detector, false, &mut written).unwrap();
    assert_eq!(*delivered.lock().unwrap(), [1]);

    for tick in [2_000, 3_000] {
        detector.tick(Timestamp(tick));
        assert!(write(&mut writer, &mut detector, true, &mut written).is_err());
    }
    assert_eq!(
        *delivered.lock().unwrap(),
        [1],
        "nothing delivered while failing"
    );
    assert!(writer.is_failing());
    let status = writer.status();
    assert_eq!(status.write_failures, 2);
    assert_eq!(status.waiting, 2);
    assert!(status.failing_since.is_some());

    detector.tick(Timestamp(4_000));
    write(&mut writer, &mut detector, false, &mut written).unwrap();
    assert_eq!(
        written[1],
        (
            vec![
                "take 2".to_owned(),
                "take 3".to_owned(),
                "take 4".to_owned()
            ],
            vec![2, 3, 4]
        ),
        "the failed writes first, in order, then the new one"
    );
    assert_eq!(*delivered.lock().unwrap(), [1, 2, 3, 4]);
    assert!(!writer.is_failing());
    assert_eq!(writer.status().failing_since, None);
    assert_eq!(writer.status().write_failures, 2, "counted for good");

    // The next write carries the failure's node alert.
    write(&mut writer, &mut detector, false, &mut written).unwrap();
    assert_eq!(written[2].0.len(), 1);
    assert!(
        written[2].0[0].starts_with("2 outbox writes failed on node-1"),
        "{:?}",
        written[2]
    );
}

/// While the outbox fails, what was detected after the failed write waits up to the bound;
/// beyond it, reports are dropped and counted, and the failed write itself (which holds a
/// take) is never cut. The node alert says how many were dropped.
#[test]
fn reports_beyond_the_bound_wait_for_no_failing_outbox_and_are_counted() {
    let per_tick = Arc::new(Mutex::new(OutboxWriter::MAX_WAITING - 10));
    let (mut detector, _delivered) = detector(&per_tick);
    let mut writer = OutboxWriter::default();
    let mut written = Vec::new();
    detector.tick(Timestamp(1_000));
    assert!(write(&mut writer, &mut detector, true, &mut written).is_err());
    *per_tick.lock().unwrap() = 25;
    detector.tick(Timestamp(2_000));
    assert!(write(&mut writer, &mut detector, true, &mut written).is_err());
    let status = writer.status();
    assert_eq!(status.reports_dropped, 15);
    assert_eq!(status.waiting, OutboxWriter::MAX_WAITING as u64);

    *per_tick.lock().unwrap() = 0;
    write(&mut writer, &mut detector, false, &mut written).unwrap();
    let (titles, receipts) = &written[0];
    assert_eq!(titles.len(), OutboxWriter::MAX_WAITING);
    assert_eq!(
        titles.iter().filter(|title| *title == "take 1").count(),
        OutboxWriter::MAX_WAITING - 10,
        "the failed write whole"
    );
    assert_eq!(receipts, &[1, 2]);
    write(&mut writer, &mut detector, false, &mut written).unwrap();
    let alert = &written[1].0[0];
    assert!(
        alert.starts_with("2 outbox writes failed on node-1")
            && alert.ends_with("15 reports dropped"),
        "{alert}"
    );
}

/// The status is a file format (the agent's status file): a field a file lacks (written by
/// another build) reads as its default instead of failing the whole file.
#[test]
fn a_status_without_some_fields_reads_them_as_their_defaults() {
    let status: super::OutboxWriteStatus =
        serde_json::from_str(r#"{"write_failures": 3}"#).unwrap();
    assert_eq!(
        status,
        super::OutboxWriteStatus {
            write_failures: 3,
            ..Default::default()
        }
    );
}
