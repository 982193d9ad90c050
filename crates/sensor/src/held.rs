//! Events held back until their container's metadata arrives, in bounded time and memory.
//!
//! An event whose cgroup's container look-up is in flight ([`crate::ContainerAttribution`])
//! waits here, behind any earlier event of the same cgroup, so a cgroup's events leave in
//! the order they came; other cgroups' events do not wait. A cgroup's events leave when the
//! look-up answers, or [`HoldLimits::max_wait`] after the first of them came, or, when
//! [`HoldLimits::max_events`] are held, those of the cgroup waiting longest leave at once to
//! make room: those two go out with what is known by then (the container's id from its
//! cgroup's name, `metadata_missing`) and are counted.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use palisade_event::Event;

/// How long and how many events wait for their container's metadata
/// ([`crate::SensorConfig::hold`]); only valid limits can be made ([`HoldLimits::new`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HoldLimits {
    max_wait: Duration,
    max_events: usize,
}

/// Why [`HoldLimits::new`] refused a limit, naming it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HoldLimitsError {
    /// The longest wait is over [`HoldLimits::MAX_WAIT_CEILING`].
    #[error("the longest wait for container metadata must be at most {ceiling:?}, not {got:?}")]
    MaxWait {
        /// The wait asked for.
        got: Duration,
        /// The ceiling.
        ceiling: Duration,
    },
    /// The bound is 0 or over [`HoldLimits::MAX_EVENTS_CEILING`].
    #[error("the events held for container metadata must be between 1 and {ceiling}, not {got}")]
    MaxEvents {
        /// The bound asked for.
        got: usize,
        /// The ceiling.
        ceiling: usize,
    },
}

impl HoldLimits {
    /// The default longest wait. A look-up reads a few small files (≈ 0.1–1 ms); this covers
    /// a store that is slow now and then, and keeps the alert of a new container's first exec
    /// at most this much later.
    pub const DEFAULT_MAX_WAIT: Duration = Duration::from_millis(50);
    /// The default bound over all cgroups: a burst of a new container's events at the ring
    /// buffer's pace, ≈ 1 KiB each.
    pub const DEFAULT_MAX_EVENTS: usize = 4096;
    /// The longest wait accepted: while events wait, every alert of their cgroups is late by
    /// as much, and the sensor polls the kernel every millisecond.
    pub const MAX_WAIT_CEILING: Duration = Duration::from_secs(5);
    /// The largest bound accepted: ≈ 64 MiB of held events.
    pub const MAX_EVENTS_CEILING: usize = 65_536;

    /// Limits of at most `max_wait` (0: a cgroup's held events leave at the next poll
    /// whether its look-up answered or not) and `max_events` (at least 1).
    pub fn new(max_wait: Duration, max_events: usize) -> Result<HoldLimits, HoldLimitsError> {
        if max_wait > HoldLimits::MAX_WAIT_CEILING {
            return Err(HoldLimitsError::MaxWait {
                got: max_wait,
                ceiling: HoldLimits::MAX_WAIT_CEILING,
            });
        }
        if !(1..=HoldLimits::MAX_EVENTS_CEILING).contains(&max_events) {
            return Err(HoldLimitsError::MaxEvents {
                got: max_events,
                ceiling: HoldLimits::MAX_EVENTS_CEILING,
            });
        }
        Ok(HoldLimits {
            max_wait,
            max_events,
        })
    }

    /// How long a cgroup's events wait for its container's metadata at most.
    pub fn max_wait(&self) -> Duration {
        self.max_wait
    }

    /// How many events wait at most, over all cgroups.
    pub fn max_events(&self) -> usize {
        self.max_events
    }
}

impl Default for HoldLimits {
    fn default() -> HoldLimits {
        HoldLimits {
            max_wait: HoldLimits::DEFAULT_MAX_WAIT,
            max_events: HoldLimits::DEFAULT_MAX_EVENTS,
        }
    }
}

/// An event waiting for its container (its container, names and ancestry are finished at
/// release).
#[derive(Debug)]
pub(crate) struct HeldEvent {
    pub(crate) event: Event,
}

/// A cgroup's waiting events.
#[derive(Debug)]
struct CgroupQueue {
    since: Instant,
    events: VecDeque<HeldEvent>,
}

/// The events waiting, by cgroup id.
#[derive(Debug)]
pub(crate) struct HeldEvents {
    by_cgroup: HashMap<u64, CgroupQueue>,
    len: usize,
    limits: HoldLimits,
    /// Cgroups whose events stopped waiting before their look-up answered: their later
    /// events do not wait for it either (a store that does not answer in time costs each
    /// cgroup one wait, not one per event).
    gave_up: HashSet<u64>,
}

impl HeldEvents {
    /// Holds events within `limits`.
    pub(crate) fn new(limits: HoldLimits) -> HeldEvents {
        HeldEvents {
            by_cgroup: HashMap::new(),
            len: 0,
            limits,
            gave_up: HashSet::new(),
        }
    }

    /// How long a cgroup's events wait at most.
    pub(crate) fn max_wait(&self) -> Duration {
        self.limits.max_wait
    }

    /// Whether nothing waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether events of this cgroup wait (a later one must wait behind them).
    pub(crate) fn holds(&self, cgroup_id: u64) -> bool {
        self.by_cgroup.contains_key(&cgroup_id)
    }

    /// Whether the cgroup's events stopped waiting for its look-up in flight.
    pub(crate) fn gave_up_on(&self, cgroup_id: u64) -> bool {
        self.gave_up.contains(&cgroup_id)
    }

    /// Notes that the cgroup's events stopped waiting before its look-up answered.
    pub(crate) fn give_up_on(&mut self, cgroup_id: u64) {
        self.gave_up.insert(cgroup_id);
    }

    /// Notes that the cgroup's look-up answered: its next look-up is waited for again.
    pub(crate) fn answered(&mut self, cgroup_id: u64) {
        self.gave_up.remove(&cgroup_id);
    }

    /// Holds `event` behind the cgroup's earlier ones. When the bound is reached, the
    /// events of the cgroup waiting longest are returned first, to be sent now.
    pub(crate) fn hold(
        &mut self,
        cgroup_id: u64,
        event: HeldEvent,
        now: Instant,
    ) -> Option<(u64, Vec<HeldEvent>)> {
        let evicted = if self.len >= self.limits.max_events {
            self.by_cgroup
                .iter()
                .min_by_key(|(_, queue)| queue.since)
                .map(|(cgroup, _)| *cgroup)
                .and_then(|oldest| self.release(oldest).map(|events| (oldest, events)))
        } else {
            None
        };
        self.by_cgroup
            .entry(cgroup_id)
            .or_insert_with(|| CgroupQueue {
                since: now,
                events: VecDeque::new(),
            })
            .events
            .push_back(event);
        self.len += 1;
        evicted
    }

    /// Takes the cgroup's waiting events, oldest first.
    pub(crate) fn release(&mut self, cgroup_id: u64) -> Option<Vec<HeldEvent>> {
        let queue = self.by_cgroup.remove(&cgroup_id)?;
        self.len -= queue.events.len();
        Some(queue.events.into())
    }

    /// The cgroups whose first waiting event came [`HoldLimits::max_wait`] or longer before
    /// `now`.
    pub(crate) fn expired(&self, now: Instant) -> Vec<u64> {
        let max_wait = self.limits.max_wait;
        self.by_cgroup
            .iter()
            .filter(|(_, queue)| now.saturating_duration_since(queue.since) >= max_wait)
            .map(|(cgroup, _)| *cgroup)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use palisade_event::{Event, EventKind};

    use crate::held::{HeldEvent, HeldEvents, HoldLimits, HoldLimitsError};

    fn limits(max_wait_ms: u64, max_events: usize) -> HoldLimits {
        HoldLimits::new(Duration::from_millis(max_wait_ms), max_events).unwrap()
    }

    fn event(pid: u32) -> HeldEvent {
        let mut event = Event::new(EventKind::Execve);
        event.process.pid = pid;
        HeldEvent { event }
    }

    fn pids(events: &[HeldEvent]) -> Vec<u32> {
        events.iter().map(|held| held.event.process.pid).collect()
    }

    /// A cgroup's events leave in the order they came, apart from other cgroups'.
    #[test]
    fn held_events_are_released_in_order_by_cgroup() {
        let now = Instant::now();
        let mut held = HeldEvents::new(limits(50, 100));
        for (cgroup, pid) in [(1, 10), (2, 20), (1, 11), (1, 12), (2, 21)] {
            assert!(held.hold(cgroup, event(pid), now).is_none());
        }
        assert!(held.holds(1) && held.holds(2) && !held.holds(3));
        assert_eq!(pids(&held.release(1).unwrap()), [10, 11, 12]);
        assert!(!held.holds(1));
        assert!(held.release(1).is_none());
        assert_eq!(pids(&held.release(2).unwrap()), [20, 21]);
        assert!(held.is_empty());
    }

    /// A cgroup's wait ends the configured time after its first event came, whatever came
    /// after.
    #[test]
    fn the_wait_ends_at_the_limit_from_the_first_event() {
        for max_wait_ms in [50, 200] {
            let max_wait = Duration::from_millis(max_wait_ms);
            let start = Instant::now();
            let mut held = HeldEvents::new(limits(max_wait_ms, 100));
            held.hold(1, event(10), start);
            held.hold(2, event(20), start + Duration::from_millis(30));
            held.hold(1, event(11), start + Duration::from_millis(40));
            let almost = start + max_wait - Duration::from_millis(1);
            assert!(held.expired(almost).is_empty());
            assert_eq!(held.expired(start + max_wait), [1]);
            assert_eq!(
                held.expired(start + max_wait + Duration::from_millis(30))
                    .len(),
                2
            );
        }
    }

    /// With no wait, held events leave at the next look at the clock.
    #[test]
    fn a_zero_wait_releases_at_once() {
        let now = Instant::now();
        let mut held = HeldEvents::new(limits(0, 100));
        held.hold(1, event(10), now);
        assert_eq!(held.expired(now), [1]);
    }

    /// The defaults are the documented 50 ms and 4,096 events; limits past the ceilings, and
    /// a bound of no event, are refused naming the limit.
    #[test]
    fn hold_limits_are_checked() {
        let defaults = HoldLimits::default();
        assert_eq!(
            (defaults.max_wait(), defaults.max_events()),
            (Duration::from_millis(50), 4096)
        );
        assert_eq!(limits(50, 4096), defaults);
        assert!(
            HoldLimits::new(HoldLimits::MAX_WAIT_CEILING, HoldLimits::MAX_EVENTS_CEILING).is_ok()
        );
        let too_long = HoldLimits::MAX_WAIT_CEILING + Duration::from_millis(1);
        assert!(matches!(
            HoldLimits::new(too_long, 10),
            Err(HoldLimitsError::MaxWait { got, .. }) if got == too_long
        ));
        for bad in [0, HoldLimits::MAX_EVENTS_CEILING + 1] {
            let error = HoldLimits::new(Duration::ZERO, bad).unwrap_err();
            assert!(matches!(error, HoldLimitsError::MaxEvents { got, .. } if got == bad));
            assert!(error.to_string().contains(&bad.to_string()), "{error}");
        }
    }

    /// At the bound, the cgroup waiting longest leaves whole (its order kept) to make room.
    #[test]
    fn the_bound_releases_the_longest_waiting_cgroup() {
        let start = Instant::now();
        let later = start + Duration::from_millis(1);
        let mut held = HeldEvents::new(limits(50, 3));
        held.hold(2, event(20), later);
        held.hold(1, event(10), start);
        held.hold(1, event(11), later);
        let (cgroup, events) = held.hold(3, event(30), later).expect("room made");
        assert_eq!((cgroup, pids(&events)), (1, vec![10, 11]));
        assert!(!held.holds(1));
        assert!(held.holds(2) && held.holds(3));
        assert!(held.hold(3, event(31), later).is_none(), "2 of 3 held");
        assert_eq!(pids(&held.release(3).unwrap()), [30, 31]);
    }
}
