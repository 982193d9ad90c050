//! Response actions: what a rule requested and the operator enabled for it
//! ([`Alert::response_actions`], off unless the rule is on the engine's response allowlist)
//! carried out with the enforcement primitives.
//!
//! - `response.kill_process`: the event's process gets SIGKILL through a pidfd, after the
//!   process behind the pid is checked to be the event's (its start time, to a clock tick, on
//!   the clock of the sensor's events, and its executable's device and inode), so that a pid
//!   reused since the event is never signalled.
//! - `response.deny_exec`: the event's program (its executable's device and inode, as the
//!   sensor read them) is added to the kill-at-exec program's denied binaries
//!   ([`palisade_enforce::ExecKiller`]): every later execution of that file, under any name and
//!   in any container, is killed at exec. The program is loaded when the responder is made
//!   ([`Responder::for_engine`], before the sensor's first event) if the engine enables
//!   `deny_exec`: a load at the first denial would stop the sensor's event path (and its ring
//!   reading) for the verifier's time. The execution that raised the alert has already
//!   happened (the sensor reports an exec after the kernel ran it); pair the action with
//!   `response.kill_process` to stop it too. Denials last while the responder (the agent,
//!   `palisade monitor`) runs.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use palisade_enforce::{Binary, BinaryId, ExecKiller};
use palisade_event::{Event, Process};
use palisade_rules::{Alert, Engine, ResponseAction};

use crate::tasks::error_chain;

/// Carries out response actions. The default responder is ready for `kill_process` only.
#[derive(Default)]
pub struct Responder {
    /// The kill-at-exec program: `None` when no rule of the engine enables `deny_exec`,
    /// `Some(Err)` with why it could not be loaded.
    exec_killer: Option<Result<ExecKiller, String>>,
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

/// How far the start time `/proc` shows may be from the event's: `/proc` keeps it in clock
/// ticks (USER_HZ, 100 a second), rounded down, where the eBPF sensor reads nanoseconds. Both
/// are put on the epoch with the same offset ([`palisade_sensor::process_start_time_ns`]).
const START_TIME_TOLERANCE_NS: u64 = 10_000_000;

impl Responder {
    /// A responder ready for every action `engine`'s alerts may carry
    /// ([`Engine::response_actions`]): when one is `response.deny_exec`, the kill-at-exec
    /// program is loaded now. A load that fails is logged here and named in the outcome of
    /// every denial.
    pub fn for_engine(engine: &Engine) -> Responder {
        let exec_killer = engine
            .response_actions()
            .any(|action| action == ResponseAction::DenyExec)
            .then(|| {
                ExecKiller::load().map_err(|error| {
                    let failed =
                        format!("loading the kill-at-exec program: {}", error_chain(&error));
                    tracing::error!(%failed, "Response deny_exec cannot be carried out.");
                    failed
                })
            });
        Responder { exec_killer }
    }

    /// Carries out the actions `alert` carries, raised by `event`; one outcome per action.
    pub fn respond(&self, alert: &Alert, event: &Event) -> Vec<ResponseOutcome> {
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

    fn deny_exec(&self, process: &Process) -> Result<String, String> {
        let killer = match &self.exec_killer {
            Some(Ok(killer)) => killer,
            Some(Err(failed)) => return Err(failed.clone()),
            None => {
                return Err("the responder was made for rules that enable no \
                            response.deny_exec: the kill-at-exec program is not loaded"
                    .to_owned());
            }
        };
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
        killer
            .deny(Binary::Inode(binary_id))
            .map_err(|error| format!("denying {}: {}", process.exepath, error_chain(&error)))?;
        Ok(format!(
            "every later execution of {} (device {}, inode {}) is killed at exec",
            process.exepath, binary_id.dev, binary_id.ino
        ))
    }
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
    let start_ns = palisade_sensor::process_start_time_ns(pid)?;
    if start_ns.abs_diff(process.start_time_ns) >= START_TIME_TOLERANCE_NS {
        return Some(format!(
            "started at {start_ns} ns, the event's at {} ns",
            process.start_time_ns
        ));
    }
    if process.exe_ino != 0
        && let Ok(exe) = BinaryId::of_path(format!("/proc/{pid}/exe").as_ref())
        && (u64::from(exe.kernel_dev()) != process.exe_dev || exe.ino != process.exe_ino)
    {
        return Some(format!("runs {exe}"));
    }
    None
}

#[cfg(test)]
mod tests {
    use std::ffi::CString;
    use std::path::Path;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use super::*;

    /// The event's view of running process `pid`: its start time on the sensor's clock and
    /// its executable.
    fn process_of(pid: u32, exepath: &str) -> Process {
        let exe = BinaryId::of_path(format!("/proc/{pid}/exe").as_ref()).unwrap();
        Process {
            pid,
            start_time_ns: palisade_sensor::process_start_time_ns(pid).unwrap(),
            exepath: exepath.into(),
            exe_dev: u64::from(exe.kernel_dev()),
            exe_ino: exe.ino,
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

    /// Waits until `child` sleeps in its program (state `S` in `/proc/PID/stat`): its exec
    /// is over, tracepoints and all. `spawn` returns once the exec has closed the child's
    /// close-on-exec pipe, before the kernel's exec tracepoint has run, so a program that
    /// acts at that tracepoint could still see this exec.
    fn wait_until_asleep(child: &std::process::Child) {
        let stat = format!("/proc/{}/stat", child.id());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            let state = std::fs::read_to_string(&stat).unwrap_or_default();
            // The state follows the command, which is in parentheses.
            if state
                .rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('S'))
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("process {} never slept", child.id());
    }

    fn sleep_30() -> std::process::Child {
        Command::new("sleep")
            .arg("30")
            .stdin(Stdio::null())
            .spawn()
            .unwrap()
    }

    /// An engine running `rules` (YAML), whose rules named in `allowlist` respond.
    fn engine(rules: &str, allowlist: &[&str]) -> Engine {
        use palisade_rules::{EngineConfig, RuleSet, RuleSource};

        let rule_set = RuleSet::load(&[RuleSource {
            name: "test.yaml".into(),
            text: rules.into(),
        }]);
        assert!(rule_set.errors().is_empty(), "{:?}", rule_set.errors());
        let config = EngineConfig {
            response_allowlist: allowlist.iter().map(|name| (*name).to_owned()).collect(),
            ..EngineConfig::default()
        };
        Engine::new(rule_set, &config)
    }

    #[test]
    fn a_process_is_killed_only_while_its_pid_names_it() {
        let mut sleeper = sleep_30();
        let process = process_of(sleeper.id(), "/usr/bin/sleep");
        // Another executable at the same start: the pid would name another process; nothing
        // is sent.
        let other_exe = Process {
            exe_ino: process.exe_ino + 1,
            ..process.clone()
        };
        let refused = kill_process(&other_exe).unwrap_err();
        assert!(refused.contains("another process"), "{refused}");
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

    /// A child of this process started with a chosen pid; killed and reaped when dropped.
    struct ChildWithPid {
        pid: libc::pid_t,
        reaped: bool,
    }

    impl ChildWithPid {
        /// Starts `program` with `args` as process `pid` (clone3 with `set_tid`, which needs
        /// CAP_SYS_ADMIN), and waits until it runs `program`.
        fn spawn(pid: u32, program: &Path, args: &[&str]) -> ChildWithPid {
            let path = CString::new(program.as_os_str().as_encoded_bytes()).unwrap();
            let argv: Vec<CString> = std::iter::once(path.clone())
                .chain(args.iter().map(|arg| CString::new(*arg).unwrap()))
                .collect();
            let mut argv_pointers: Vec<*const libc::c_char> =
                argv.iter().map(|arg| arg.as_ptr()).collect();
            argv_pointers.push(std::ptr::null());
            let set_tid = [pid as libc::pid_t];
            // SAFETY: clone_args is plain data; all zero is "no flags, nothing requested".
            let mut clone_args: libc::clone_args = unsafe { std::mem::zeroed() };
            clone_args.exit_signal = libc::SIGCHLD as u64;
            clone_args.set_tid = set_tid.as_ptr() as u64;
            clone_args.set_tid_size = 1;
            // SAFETY: a valid clone_args of the size given. Without CLONE_VM the child has
            // its own copy of memory and calls only execv and _exit, which are safe after a
            // fork of a multi-threaded process.
            let child = unsafe {
                libc::syscall(
                    libc::SYS_clone3,
                    &clone_args as *const libc::clone_args,
                    std::mem::size_of::<libc::clone_args>(),
                )
            };
            if child == 0 {
                // SAFETY: a NUL-terminated path and a NULL-terminated argv, built before the
                // clone.
                unsafe {
                    libc::execv(path.as_ptr(), argv_pointers.as_ptr());
                    libc::_exit(127);
                }
            }
            assert!(
                child > 0,
                "clone3 with pid {pid}: {}",
                std::io::Error::last_os_error()
            );
            let child = ChildWithPid {
                pid: child as libc::pid_t,
                reaped: false,
            };
            assert_eq!(child.pid, pid as libc::pid_t);
            // Until the exec, the child runs this test's executable.
            let program_id = BinaryId::of_path(program).unwrap();
            let started = Instant::now();
            while BinaryId::of_path(format!("/proc/{pid}/exe").as_ref()).ok() != Some(program_id) {
                assert!(
                    started.elapsed() < Duration::from_secs(5),
                    "process {pid} did not run {} within 5 s",
                    program.display()
                );
                std::thread::sleep(Duration::from_millis(5));
            }
            child
        }

        /// The signal that ended it, waiting up to `limit`; `None` while it runs.
        fn killed_by_within(&mut self, limit: Duration) -> Option<libc::c_int> {
            let started = Instant::now();
            loop {
                let mut status = 0;
                // SAFETY: our own child's pid and a status to write.
                let waited = unsafe { libc::waitpid(self.pid, &mut status, libc::WNOHANG) };
                if waited == self.pid {
                    self.reaped = true;
                    return Some(libc::WTERMSIG(status)).filter(|_| libc::WIFSIGNALED(status));
                }
                if started.elapsed() >= limit {
                    return None;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    impl Drop for ChildWithPid {
        fn drop(&mut self) {
            if !self.reaped {
                // SAFETY: our own unreaped child: the pid names it until it is waited for.
                unsafe {
                    libc::kill(self.pid, libc::SIGKILL);
                    libc::waitpid(self.pid, std::ptr::null_mut(), 0);
                }
            }
        }
    }

    /// The pid of a killed process taken again by another run of the same program: its
    /// executable is the same, only the start time tells them apart, and the check (on the
    /// sensor's clock, to a clock tick) refuses the old event's process where a one-second
    /// tolerance let it through. The original, while it ran, was accepted.
    #[test]
    fn a_pid_reused_by_another_run_of_the_same_program_is_refused_and_the_original_accepted() {
        // SAFETY: geteuid has no preconditions.
        let is_root = unsafe { libc::geteuid() } == 0;
        if !palisade_testdata::capability("root (clone3 with set_tid)", is_root) {
            return;
        }
        let mut original = sleep_30();
        let pid = original.id();
        let sleep = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
        let event_process = process_of(pid, &sleep.display().to_string());
        assert_eq!(other_process(&event_process), None);
        let done = kill_process(&event_process).unwrap();
        assert!(done.starts_with("killed process"), "{done}");
        assert!(exited_within(&mut original, Duration::from_secs(5)));
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(original.wait().unwrap().signal(), Some(libc::SIGKILL));

        // Two clock ticks later, a new `sleep` under the same pid.
        std::thread::sleep(Duration::from_millis(20));
        let mut reused = ChildWithPid::spawn(pid, &sleep, &["30"]);
        let refused = kill_process(&event_process).unwrap_err();
        assert!(
            refused.contains("another process") && refused.contains("started at"),
            "{refused}"
        );
        assert_eq!(reused.killed_by_within(Duration::from_millis(200)), None);
        // The new process's own event is accepted.
        let done = kill_process(&process_of(pid, &sleep.display().to_string())).unwrap();
        assert!(done.starts_with("killed process"), "{done}");
        assert_eq!(
            reused.killed_by_within(Duration::from_secs(5)),
            Some(libc::SIGKILL)
        );
    }

    /// The rules that may deny an exec get the kill-at-exec program loaded with the
    /// responder, before any event (none otherwise); the first denial then only adds the
    /// binary: the run that raised it goes on, the next run of the file is killed at exec.
    #[test]
    fn the_kill_at_exec_program_is_loaded_with_the_responder_and_the_first_denial_holds() {
        // SAFETY: geteuid has no preconditions.
        let is_root = unsafe { libc::geteuid() } == 0;
        if !palisade_testdata::capability(
            "root and a kernel with BTF (eBPF)",
            is_root && Path::new("/sys/kernel/btf/vmlinux").exists(),
        ) {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let program = dir.path().join("palisade-respond-first-denial");
        std::fs::copy("/bin/sleep", &program).unwrap();
        let responder = |tag: &str, allowlist: &[&str]| {
            let rules = format!(
                "- rule: Marked\n  desc: x\n  condition: evt.type = execve\n  output: o\n  \
                 priority: WARNING\n  tags: [{tag}]\n"
            );
            Responder::for_engine(&engine(&rules, allowlist))
        };
        assert!(responder("response.deny_exec", &[]).exec_killer.is_none());
        assert!(
            responder("response.kill_process", &["Marked"])
                .exec_killer
                .is_none()
        );
        let responder = responder("response.deny_exec", &["Marked"]);
        assert!(
            matches!(responder.exec_killer, Some(Ok(_))),
            "{:?}",
            responder
                .exec_killer
                .as_ref()
                .map(|loaded| loaded.as_ref().err())
        );

        let mut first = Command::new(&program).arg("30").spawn().unwrap();
        wait_until_asleep(&first);
        let done = responder
            .deny_exec(&process_of(first.id(), &program.display().to_string()))
            .unwrap();
        assert!(done.contains("killed at exec"), "{done}");
        let first_running = !exited_within(&mut first, Duration::from_millis(200));
        let _ = first.kill();
        let _ = first.wait();
        assert!(first_running, "the denial killed the run that raised it");
        let mut second = Command::new(&program).arg("30").spawn().unwrap();
        let killed = exited_within(&mut second, Duration::from_secs(5));
        let _ = second.kill();
        use std::os::unix::process::ExitStatusExt;
        let status = second.wait().unwrap();
        assert!(killed, "the denied program ran again");
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");
    }

    #[test]
    fn the_detector_carries_out_only_an_allowlisted_rules_response_and_records_it() {
        use palisade_event::{EventKind, EventSink};
        use palisade_model::Details;

        const RULES: &str = "- rule: Sleeper\n  desc: x\n  condition: evt.type = execve and \
                             proc.name = sleep\n  output: \"sleep %proc.pid\"\n  priority: \
                             WARNING\n  tags: [response.kill_process]\n";
        for allowlist in [&[][..], &["Sleeper"][..]] {
            let allowlisted = !allowlist.is_empty();
            let mut detector = crate::Detector::new(engine(RULES, allowlist), "prod", "node-1");
            let mut sleeper = sleep_30();
            let mut event = Event::new(EventKind::Execve);
            event.process = Process {
                name: "sleep".into(),
                ..process_of(sleeper.id(), "/usr/bin/sleep")
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
