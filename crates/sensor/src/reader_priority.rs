//! The scheduling priority of the thread that reads the sensor's ring buffer.
//!
//! Every CPU writes events into the one ring and only this thread empties it: when it waits
//! behind other runnable work the ring fills and the kernel drops events (counted, never
//! delivered). On the project's loaded 2-CPU machine the reader at the default priority got
//! 12–15 % of a core and lost 5–51 % of an open storm's events, at nice −10 none
//! (docs/benchmarks.md, sensor11 and sensor12). auditd raises its own priority the same way
//! (`priority_boost`).
//!
//! Only the reader's thread is raised (Linux keeps a nice value per thread), with the
//! sensor's container look-up workers, which it starts right after: the events of a new
//! container wait for their answers (at most the hold limit, 50 ms by default), and a worker
//! left at nice 0 behind a reader at −10 answered after it under load (the container's first
//! events then went out without its metadata). Then the thread takes the policy's
//! reset-on-fork flag (`SCHED_RESET_ON_FORK`): a thread or process created from it later
//! starts at nice 0, not at the reader's negative value, so a program that the polling thread
//! runs (a test's workload, a hook) does not compete with the reader at its priority. The
//! policy stays `SCHED_OTHER`: a real-time reader would also run the rules engine's work on
//! that thread ahead of everything else on its CPU, and a fault in it would starve the CPU.

use std::io;

/// The nice value the thread that builds and polls a sensor takes by default
/// ([`crate::SensorConfig::reader_nice`]).
pub const DEFAULT_READER_NICE: i32 = -10;

/// The nice values Linux accepts, and so [`crate::SensorConfig::reader_nice`].
pub const READER_NICE_RANGE: std::ops::RangeInclusive<i32> = -20..=19;

/// The calling thread's priority raised until this is dropped, when the thread gets back the
/// nice value and scheduling policy it had. Not `Send`: it belongs to the thread it raised.
#[derive(Debug)]
pub(crate) struct RaisedPriority {
    tid: libc::pid_t,
    previous_nice: i32,
    previous_policy: Policy,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl RaisedPriority {
    /// Lowers the calling thread's nice value to `nice`, or keeps it when it is lower
    /// already (an agent started at −15 is not demoted to −10); what the thread starts from
    /// now on inherits it until [`RaisedPriority::start_children_at_default`]. A value below
    /// the current one needs `CAP_SYS_NICE` (or `RLIMIT_NICE`).
    pub(crate) fn raise(nice: i32) -> io::Result<RaisedPriority> {
        // SAFETY: gettid has no preconditions and cannot fail.
        let tid = unsafe { libc::gettid() };
        let previous_nice = thread_nice(tid)?;
        let previous_policy = Policy::of(tid)?;
        set_thread_nice(tid, nice.min(previous_nice))?;
        Ok(RaisedPriority {
            tid,
            previous_nice,
            previous_policy,
            _not_send: std::marker::PhantomData,
        })
    }

    /// Sets the thread's reset-on-fork flag: threads and processes it starts from now on
    /// begin at nice 0 (a negative value is not inherited; the flag is never).
    pub(crate) fn start_children_at_default(&self) -> io::Result<()> {
        self.previous_policy.with_reset_on_fork().apply(self.tid)
    }
}

impl Drop for RaisedPriority {
    fn drop(&mut self) {
        // A higher nice value is always allowed; clearing the flag needs the privilege the
        // raise had.
        let restored = set_thread_nice(self.tid, self.previous_nice)
            .and_then(|()| self.previous_policy.apply(self.tid));
        if let Err(error) = restored {
            tracing::warn!(%error, nice = self.previous_nice, "Cannot give the sensor reader's thread its priority back.");
        }
    }
}

/// A thread's scheduling policy (with its flags) and parameter.
#[derive(Debug, Clone, Copy)]
struct Policy {
    policy: libc::c_int,
    priority: libc::c_int,
}

impl Policy {
    /// Thread `tid`'s policy now.
    fn of(tid: libc::pid_t) -> io::Result<Policy> {
        // SAFETY: sched_getscheduler takes a plain integer.
        let policy = unsafe { libc::sched_getscheduler(tid) };
        if policy < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut param = libc::sched_param { sched_priority: 0 };
        // SAFETY: `param` is a valid sched_param to write for the call's duration.
        if unsafe { libc::sched_getparam(tid, &mut param) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Policy {
            policy,
            priority: param.sched_priority,
        })
    }

    /// Whether the thread's children start with the default priority.
    #[cfg(test)]
    fn resets_on_fork(self) -> bool {
        self.policy & libc::SCHED_RESET_ON_FORK != 0
    }

    fn with_reset_on_fork(self) -> Policy {
        Policy {
            policy: self.policy | libc::SCHED_RESET_ON_FORK,
            ..self
        }
    }

    /// Gives thread `tid` this policy. For the normal policies the thread keeps its nice
    /// value (the call passes the one it has).
    fn apply(self, tid: libc::pid_t) -> io::Result<()> {
        let param = libc::sched_param {
            sched_priority: self.priority,
        };
        // SAFETY: `param` is a valid sched_param for the call's duration.
        if unsafe { libc::sched_setscheduler(tid, self.policy, &param) } == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

fn set_thread_nice(tid: libc::pid_t, nice: i32) -> io::Result<()> {
    // SAFETY: setpriority takes plain integers; a thread id changes only that thread.
    let result = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice) };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The nice value of thread `tid` now.
fn thread_nice(tid: libc::pid_t) -> io::Result<i32> {
    // getpriority returns -1 both as a value and as the error: errno tells them apart.
    // SAFETY: __errno_location points at this thread's errno.
    unsafe { *libc::__errno_location() = 0 };
    // SAFETY: getpriority takes plain integers.
    let nice = unsafe { libc::getpriority(libc::PRIO_PROCESS, tid as libc::id_t) };
    let error = io::Error::last_os_error();
    if nice == -1 && error.raw_os_error() != Some(0) {
        return Err(error);
    }
    Ok(nice)
}

#[cfg(test)]
mod tests {
    use super::{Policy, RaisedPriority, thread_nice};

    fn own_tid() -> libc::pid_t {
        // SAFETY: gettid has no preconditions.
        unsafe { libc::gettid() }
    }

    /// Only the calling thread changes, its children start at the default priority (a
    /// negative nice value is not inherited), a thread already at a higher priority keeps
    /// it, and each raise is undone at its drop. Lowering the nice value needs root
    /// (`CAP_SYS_NICE`).
    #[test]
    fn only_the_raised_thread_changes_and_gets_its_priority_back() {
        // SAFETY: geteuid has no preconditions.
        let is_root = unsafe { libc::geteuid() } == 0;
        if !palisade_testdata::capability("root (CAP_SYS_NICE)", is_root) {
            return;
        }
        let main_tid = own_tid();
        let before = thread_nice(main_tid).unwrap();
        let wanted = (before.min(0) - 5).max(-20);
        let (raised, helper, child, kept, after) = std::thread::spawn(move || {
            let tid = own_tid();
            let nice_and_flag = || {
                let tid = own_tid();
                (
                    thread_nice(tid).unwrap(),
                    Policy::of(tid).unwrap().resets_on_fork(),
                )
            };
            let guard = RaisedPriority::raise(wanted).unwrap();
            let helper = std::thread::spawn(nice_and_flag).join().unwrap();
            guard.start_children_at_default().unwrap();
            let raised = nice_and_flag();
            let child = std::thread::spawn(nice_and_flag).join().unwrap();
            // Asked for less than the thread has: it keeps its priority, and gets it back.
            let milder = RaisedPriority::raise(wanted + 3).unwrap();
            let kept = thread_nice(tid).unwrap();
            drop(milder);
            assert_eq!(thread_nice(tid).unwrap(), wanted);
            drop(guard);
            (raised, helper, child, kept, nice_and_flag())
        })
        .join()
        .unwrap();
        assert_eq!(raised, (wanted, true));
        assert_eq!(
            helper,
            (wanted, false),
            "started before the flag: the value inherited"
        );
        assert_eq!(
            child,
            (0, false),
            "started after the flag: the default priority, and no flag"
        );
        assert_eq!(kept, wanted, "a raise never lowers the priority");
        assert_eq!(after, (before, false), "the drop restores the thread's");
        assert_eq!(
            thread_nice(main_tid).unwrap(),
            before,
            "the other threads keep theirs"
        );
    }
}
