//! Response actions: what a rule requested and the operator enabled for it
//! ([`Alert::response_actions`], off unless the rule is on the engine's response allowlist)
//! carried out with the enforcement primitives.
//!
//! - `response.kill_process`: the event's process gets SIGKILL through a pidfd, after the
//!   process behind the pid is checked to be the event's (its start time and its executable's
//!   device and inode), so that a pid reused since the event is never signalled.
//! - `response.deny_exec`: the event's program (its executable's device and inode, as the
//!   sensor read them) is added to the kill-at-exec program's denied binaries
//!   ([`palisade_enforce::ExecKiller`], loaded at the first denial): every later execution of
//!   that file, under any name and in any container, is killed at exec. The execution that
//!   raised the alert has already happened (the sensor reports an exec after the kernel ran
//!   it); pair the action with `response.kill_process` to stop it too. Denials last while the
//!   responder (the agent, `palisade monitor`) runs.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;

use palisade_enforce::{Binary, BinaryId, ExecKiller};
use palisade_event::{Event, Process};
use palisade_rules::{Alert, ResponseAction};

/// Carries out response actions; holds the kill-at-exec program once a binary was denied.
#[derive(Default)]
pub struct Responder {
    killer: Option<ExecKiller>,
}

/// What one action did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseOutcome {
    /// The action.
    pub action: ResponseAction,
    /// What was done, or why nothing was.
    pub result: Result<String, String>,
}

impl ResponseOutcome {
    /// The outcome as JSON: `{"action": "response.kill_process", "done": "..."}` or with
    /// `"failed"`.
    pub fn to_json(&self) -> serde_json::Value {
        match &self.result {
            Ok(done) => serde_json::json!({"action": self.action.tag(), "done": done}),
            Err(failed) => serde_json::json!({"action": self.action.tag(), "failed": failed}),
        }
    }
}

/// How far the start time `/proc` shows (clock ticks since boot, put on the epoch with the
/// clocks' difference now) may be from the sensor's (the boot clock put on the epoch when the
/// sensor started): a tick, plus the wall clock's adjustments since.
const START_TIME_TOLERANCE_NS: u64 = 1_000_000_000;

impl Responder {
    /// A responder that has denied nothing yet.
    pub fn new() -> Responder {
        Responder::default()
    }

    /// Carries out the actions `alert` carries, raised by `event`; one outcome per action.
    pub fn respond(&mut self, alert: &Alert, event: &Event) -> Vec<ResponseOutcome> {
        alert
            .response_actions
            .iter()
            .map(|&action| {
                let result = match action {
                    ResponseAction::KillProcess => kill_process(&event.process),
                    ResponseAction::DenyExec => self.deny_exec(&event.process),
                };
                match &result {
                    Ok(done) => tracing::warn!(rule = %alert.rule, action = action.tag(), %done, "Response action carried out."),
                    Err(failed) => tracing::error!(rule = %alert.rule, action = action.tag(), %failed, "Response action failed."),
                }
                ResponseOutcome { action, result }
            })
            .collect()
    }

    fn deny_exec(&mut self, process: &Process) -> Result<String, String> {
        if process.exe_ino == 0 {
            return Err(format!(
                "the sensor did not read the executable of process {} ({})",
                process.pid, process.exepath
            ));
        }
        let binary_id = BinaryId::from_kernel(
            u32::try_from(process.exe_dev).map_err(|_| {
                format!(
                    "device number {} of the executable is out of range",
                    process.exe_dev
                )
            })?,
            process.exe_ino,
        );
        if self.killer.is_none() {
            self.killer = Some(ExecKiller::load().map_err(|error| {
                format!("loading the kill-at-exec program: {}", with_causes(&error))
            })?);
        }
        let killer = self.killer.as_ref().expect("loaded above");
        killer
            .deny(Binary::Inode(binary_id))
            .map_err(|error| format!("denying {}: {}", process.exepath, with_causes(&error)))?;
        Ok(format!(
            "every later execution of {} (device {}, inode {}) is killed at exec",
            process.exepath, binary_id.dev, binary_id.ino
        ))
    }
}

/// `error` and its causes, as one line.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(error) = cause {
        text.push_str(": ");
        text.push_str(&error.to_string());
        cause = error.source();
    }
    text
}

/// Kills `process` if the pid still names it.
fn kill_process(process: &Process) -> Result<String, String> {
    let pid = process.pid;
    if pid <= 1 || pid == std::process::id() {
        return Err(format!("refusing to kill process {pid}"));
    }
    // The descriptor pins the process the pid names now: once it is checked, the signal
    // reaches that process or, if it exited meanwhile, nobody.
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        let error = std::io::Error::last_os_error();
        return Err(match error.raw_os_error() {
            Some(libc::ESRCH) => format!("process {pid} had already exited"),
            _ => format!("opening process {pid}: {error}"),
        });
    }
    // SAFETY: the descriptor was just returned to us and nothing else owns it.
    let pidfd = unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) };
    if let Some(other) = other_process(process) {
        return Err(format!(
            "pid {pid} now names another process ({other}); not killed"
        ));
    }
    // SAFETY: a valid pidfd, a signal number, no siginfo, no flags.
    let sent = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            libc::SIGKILL,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if sent < 0 {
        let error = std::io::Error::last_os_error();
        return Err(match error.raw_os_error() {
            Some(libc::ESRCH) => format!("process {pid} had already exited"),
            _ => format!("signalling process {pid}: {error}"),
        });
    }
    Ok(format!("killed process {pid} ({})", process.exepath))
}

/// Why the process `/proc` shows under `process.pid` is not `process` (another start time or
/// another executable); `None` when it is, or when it exited (the signal then reaches
/// nobody).
fn other_process(process: &Process) -> Option<String> {
    let pid = process.pid;
    let start_ns = start_time_ns(pid)?;
    if start_ns.abs_diff(process.start_time_ns) > START_TIME_TOLERANCE_NS {
        return Some(format!(
            "started at {start_ns} ns, the event's at {} ns",
            process.start_time_ns
        ));
    }
    if process.exe_ino != 0
        && let Ok(exe) = std::fs::metadata(format!("/proc/{pid}/exe"))
        && (kernel_dev(exe.dev()) != process.exe_dev || exe.ino() != process.exe_ino)
    {
        return Some(format!("runs inode {} of device {}", exe.ino(), exe.dev()));
    }
    None
}

/// The start of process `pid` in nanoseconds since the epoch: `/proc/<pid>/stat`'s start
/// (clock ticks since boot) put on the epoch with the difference of the two clocks now.
fn start_time_ns(pid: u32) -> Option<u64> {
    let mut stat = String::new();
    File::open(format!("/proc/{pid}/stat"))
        .ok()?
        .read_to_string(&mut stat)
        .ok()?;
    // The fields after the command name, which may itself hold spaces and parentheses.
    let after_name = &stat[stat.rfind(')')? + 1..];
    // Field 22 (starttime) is the 20th after the name.
    let ticks: u64 = after_name.split_whitespace().nth(19)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let ticks_per_second = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).ok()?;
    let since_boot_ns = ticks.checked_mul(1_000_000_000)? / ticks_per_second.max(1);
    Some(since_boot_ns + boot_offset_ns()?)
}

/// The epoch time of boot: the wall clock less the boot clock.
fn boot_offset_ns() -> Option<u64> {
    let now = |clock| {
        let mut time = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: a valid clock id and a timespec to write.
        (unsafe { libc::clock_gettime(clock, &mut time) } == 0).then(|| {
            u64::try_from(time.tv_sec).unwrap_or(0) * 1_000_000_000
                + u64::try_from(time.tv_nsec).unwrap_or(0)
        })
    };
    now(libc::CLOCK_REALTIME)?.checked_sub(now(libc::CLOCK_BOOTTIME)?)
}

/// A device number in the kernel's encoding (major << 20 | minor), as the sensor reads an
/// executable's from its superblock.
fn kernel_dev(st_dev: u64) -> u64 {
    (u64::from(libc::major(st_dev)) << 20) | u64::from(libc::minor(st_dev))
}

#[cfg(test)]
mod tests {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use super::*;

    /// The event's view of a running child: pid, start time, executable.
    fn process_of(child: &std::process::Child, exepath: &str) -> Process {
        let pid = child.id();
        let exe = std::fs::metadata(format!("/proc/{pid}/exe")).unwrap();
        Process {
            pid,
            start_time_ns: start_time_ns(pid).unwrap(),
            exepath: exepath.into(),
            exe_dev: kernel_dev(exe.dev()),
            exe_ino: exe.ino(),
            ..Process::default()
        }
    }

    fn exited_within(child: &mut std::process::Child, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if child.try_wait().unwrap().is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    #[test]
    fn a_process_is_killed_only_while_its_pid_names_it() {
        let mut sleeper = Command::new("sleep")
            .arg("30")
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let process = process_of(&sleeper, "/usr/bin/sleep");
        // Another start time: the pid would name another process; nothing is sent.
        let reused = Process {
            start_time_ns: process.start_time_ns - 5_000_000_000,
            ..process.clone()
        };
        let refused = kill_process(&reused).unwrap_err();
        assert!(refused.contains("another process"), "{refused}");
        // Another executable at the same start: the same.
        let other_exe = Process {
            exe_ino: process.exe_ino + 1,
            ..process.clone()
        };
        assert!(
            kill_process(&other_exe)
                .unwrap_err()
                .contains("another process")
        );
        assert!(!exited_within(&mut sleeper, Duration::from_millis(200)));

        let done = kill_process(&process).unwrap();
        assert!(done.starts_with("killed process"), "{done}");
        assert!(exited_within(&mut sleeper, Duration::from_secs(5)));
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(sleeper.wait().unwrap().signal(), Some(libc::SIGKILL));
        // Once reaped, the pid names nobody (or, rarely, a new process: refused either way).
        assert!(kill_process(&process).is_err());
        assert!(
            kill_process(&Process::default())
                .unwrap_err()
                .contains("refusing")
        );
    }

    #[test]
    fn the_detector_carries_out_only_an_allowlisted_rules_response_and_records_it() {
        use palisade_event::{EventKind, EventSink};
        use palisade_model::Details;
        use palisade_rules::{Engine, EngineConfig, RuleSet, RuleSource};

        const RULES: &str = "- rule: Sleeper\n  desc: x\n  condition: evt.type = execve and \
                             proc.name = sleep\n  output: \"sleep %proc.pid\"\n  priority: \
                             WARNING\n  tags: [response.kill_process]\n";
        for allowlisted in [false, true] {
            let rule_set = RuleSet::load(&[RuleSource {
                name: "test.yaml".into(),
                text: RULES.into(),
            }]);
            assert!(rule_set.errors().is_empty(), "{:?}", rule_set.errors());
            let config = EngineConfig {
                response_allowlist: if allowlisted {
                    ["Sleeper".to_owned()].into()
                } else {
                    Default::default()
                },
                ..EngineConfig::default()
            };
            let mut detector =
                crate::Detector::new(Engine::new(rule_set, &config), "prod", "node-1");
            let mut sleeper = Command::new("sleep")
                .arg("30")
                .stdin(Stdio::null())
                .spawn()
                .unwrap();
            let mut event = Event::new(EventKind::Execve);
            event.process = Process {
                name: "sleep".into(),
                ..process_of(&sleeper, "/usr/bin/sleep")
            };
            detector.send(event);
            let reports = detector.take_reports();
            let Details::Alert(details) = &reports[0].details else {
                panic!("an alert: {reports:?}");
            };
            let response = &details.raw_event["response"];
            if allowlisted {
                assert_eq!(response[0]["action"], "response.kill_process", "{response}");
                assert!(
                    response[0]["done"]
                        .as_str()
                        .is_some_and(|done| done.starts_with("killed process")),
                    "{response}"
                );
                assert!(exited_within(&mut sleeper, Duration::from_secs(5)));
            } else {
                assert!(response.is_null(), "{response}");
                assert!(!exited_within(&mut sleeper, Duration::from_millis(200)));
                sleeper.kill().unwrap();
                sleeper.wait().unwrap();
            }
        }
    }
}
