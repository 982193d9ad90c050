//! A test hook: the watch stops for good at a chosen point of a take of the connect
//! programs' attempt counts, so that a test can kill the agent exactly there and check that
//! the next agent neither loses nor repeats the take's attempts.
//!
//! Set `PALISADE_FIREWALL_TEST_PAUSE=<point>:<attempts>:<file>` in the agent's environment:
//! at the first take of at least `<attempts>` attempts that reaches `<point>` — `taken`
//! (taken from the kernel, before its alerts are written to the outbox) or `delivered` (its
//! alerts and receipt are in the outbox, before the counts are deleted from the kernel) —
//! the watch writes `<epoch> <attempts>` to `<file>` and sleeps on the detection thread
//! until the process is killed. Unset (as in production), it does nothing; a malformed value
//! is ignored with a warning.

use std::path::PathBuf;
use std::time::Duration;

/// The environment variable that sets the pause.
const VARIABLE: &str = "PALISADE_FIREWALL_TEST_PAUSE";

/// Where a take may pause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PausePoint {
    /// Taken from the kernel; its alerts not in the outbox yet.
    Taken,
    /// Its alerts and receipt in the outbox; its counts not deleted from the kernel yet.
    Delivered,
}

impl PausePoint {
    fn from_name(name: &str) -> Option<PausePoint> {
        match name {
            "taken" => Some(PausePoint::Taken),
            "delivered" => Some(PausePoint::Delivered),
            _ => None,
        }
    }
}

/// The pause the environment asks for, if any.
#[derive(Debug, Default)]
pub(super) struct TestPause(Option<Pause>);

#[derive(Debug)]
struct Pause {
    point: PausePoint,
    min_attempts: u64,
    file: PathBuf,
}

impl TestPause {
    /// The pause `PALISADE_FIREWALL_TEST_PAUSE` asks for.
    pub(super) fn from_env() -> TestPause {
        let Ok(value) = std::env::var(VARIABLE) else {
            return TestPause(None);
        };
        let pause = TestPause::parse(&value);
        if pause.0.is_none() {
            tracing::warn!(%value, "{VARIABLE} is not <taken|delivered>:<attempts>:<file>; ignored.");
        }
        pause
    }

    fn parse(value: &str) -> TestPause {
        let mut fields = value.splitn(3, ':');
        let pause = (|| {
            Some(Pause {
                point: PausePoint::from_name(fields.next()?)?,
                min_attempts: fields.next()?.parse().ok()?,
                file: PathBuf::from(fields.next().filter(|file| !file.is_empty())?),
            })
        })();
        TestPause(pause)
    }

    /// Stops here for good when this is the point asked for and the take of `epoch` holds
    /// enough attempts.
    pub(super) fn pause_at(&self, point: PausePoint, epoch: u64, attempts: u64) {
        let Some(pause) = &self.0 else {
            return;
        };
        if pause.point != point || attempts < pause.min_attempts {
            return;
        }
        tracing::warn!(?point, epoch, attempts, "Test pause: waiting to be killed.");
        if let Err(error) = std::fs::write(&pause.file, format!("{epoch} {attempts}\n")) {
            tracing::error!(%error, file = %pause.file.display(), "Test pause: cannot write the file.");
        }
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{PausePoint, TestPause};
    use std::path::Path;

    #[test]
    fn the_pause_reads_its_point_threshold_and_file_and_refuses_anything_else() {
        let pause = TestPause::parse("delivered:100:/tmp/a:b").0.unwrap();
        assert_eq!(pause.point, PausePoint::Delivered);
        assert_eq!(pause.min_attempts, 100);
        assert_eq!(pause.file, Path::new("/tmp/a:b"));
        assert_eq!(
            TestPause::parse("taken:1:/x").0.unwrap().point,
            PausePoint::Taken
        );
        for bad in [
            "",
            "taken",
            "taken:1",
            "taken:1:",
            "later:1:/x",
            "taken:-1:/x",
        ] {
            assert!(TestPause::parse(bad).0.is_none(), "{bad}");
        }
        // Not asked for, or not enough attempts: no pause (it would never return).
        TestPause::default().pause_at(PausePoint::Taken, 1, 1_000);
        TestPause::parse("taken:100:/nonexistent/x").pause_at(PausePoint::Taken, 1, 99);
        TestPause::parse("taken:100:/nonexistent/x").pause_at(PausePoint::Delivered, 1, 500);
    }
}
