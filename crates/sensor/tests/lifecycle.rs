//! Process lifecycle against the real kernel: what the exec event says about the executable
//! (overlay upper layer, memfd, deleted file), the clone flags of forks, threads and
//! namespace-creating spawns, and exit codes.

mod common;

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

use common::{can_run_ebpf, canonical, collect, in_child, marker, start, wait_for};
use palisade_event::{Event, EventKind, Payload};

fn c(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).unwrap()
}

/// Replaces the calling (child) process with the program open at `fd`, `argv[1]` = `arg`.
fn fexecve(fd: i32, arg: &CString) {
    let argv0 = CString::new("palisade-exec").unwrap();
    let argv = [argv0.as_ptr(), arg.as_ptr(), std::ptr::null()];
    let envp = [std::ptr::null()];
    // SAFETY: argv and envp are NULL-terminated arrays of valid strings.
    unsafe { libc::fexecve(fd, argv.as_ptr(), envp.as_ptr()) };
    panic!("fexecve: {}", std::io::Error::last_os_error());
}

fn exec_with_arg(sensor: &mut palisade_sensor::Sensor, arg: &str) -> Event {
    wait_for(sensor, Duration::from_secs(10), |event| {
        event.kind == EventKind::Execve
            && event.process.args.first().map(String::as_str) == Some(arg)
    })
    .unwrap_or_else(|| panic!("an exec with argument {arg}"))
}

#[test]
fn exec_from_a_memfd_is_flagged() {
    if !can_run_ebpf() {
        return;
    }
    let mut sensor = start(&[EventKind::Execve]);
    let program = std::fs::read("/bin/true").unwrap();
    let arg = marker("memfd");
    let arg_c = CString::new(arg.clone()).unwrap();
    let name = CString::new("palisade-dropper").unwrap();
    let child = in_child("pal-memfd", || {
        // SAFETY: plain system calls on memory and descriptors this child owns.
        let fd = unsafe { libc::memfd_create(name.as_ptr(), 0) };
        assert!(fd >= 0);
        let written = unsafe { libc::write(fd, program.as_ptr().cast(), program.len()) };
        assert_eq!(written, program.len() as isize);
        fexecve(fd, &arg_c);
    });
    let event = exec_with_arg(&mut sensor, &arg);
    assert_eq!(event.process.pid, child);
    assert_eq!(event.process.ppid, std::process::id());
    assert_eq!(event.process.exepath, "/memfd:palisade-dropper");
    assert!(event.process.exe_from_memfd, "{:?}", event.process);
    assert!(!event.process.exe_deleted && !event.process.exe_upper_layer);
}

#[test]
fn exec_of_a_file_unlinked_after_open_is_flagged_deleted() {
    if !can_run_ebpf() {
        return;
    }
    let mut sensor = start(&[EventKind::Execve]);
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("vanishing-true");
    std::fs::copy("/bin/true", &copy).unwrap();
    let copy_c = c(&copy);
    let arg = marker("deleted");
    let arg_c = CString::new(arg.clone()).unwrap();
    let child = in_child("pal-deleted", || {
        // SAFETY: plain system calls on a path and a descriptor this child owns.
        let fd = unsafe { libc::open(copy_c.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        assert!(fd >= 0);
        assert_eq!(unsafe { libc::unlink(copy_c.as_ptr()) }, 0);
        fexecve(fd, &arg_c);
    });
    let event = exec_with_arg(&mut sensor, &arg);
    assert_eq!(event.process.pid, child);
    assert_eq!(
        event.process.exepath,
        format!("{}/vanishing-true", canonical(dir.path()))
    );
    assert!(event.process.exe_deleted, "{:?}", event.process);
    assert!(!event.process.exe_from_memfd && !event.process.exe_upper_layer);

    // The same program still linked is not flagged.
    std::fs::copy("/bin/true", &copy).unwrap();
    let arg = marker("linked");
    std::process::Command::new(&copy)
        .arg(&arg)
        .status()
        .unwrap();
    let event = exec_with_arg(&mut sensor, &arg);
    assert!(!event.process.exe_deleted, "{:?}", event.process);
}

#[test]
fn exec_from_an_overlay_upper_layer_is_flagged_and_from_the_lower_layer_is_not() {
    if !can_run_ebpf() {
        return;
    }
    let mut sensor = start(&[EventKind::Execve]);
    let dir = tempfile::tempdir().unwrap();
    let overlay = common::Overlay::new(dir.path());
    std::fs::copy("/bin/true", overlay.lower.join("image-true")).unwrap();
    let (from_image, dropped) = (
        overlay.merged.join("image-true"),
        overlay.merged.join("dropped-true"),
    );
    let (lower_arg, upper_arg) = (marker("lower-layer"), marker("upper-layer"));
    in_child("pal-overlay", || {
        overlay.mount_in_own_namespace();
        // Written at run time, as a dropped payload in a container is.
        std::fs::copy("/bin/true", &dropped).unwrap();
        for (program, arg) in [(&from_image, &lower_arg), (&dropped, &upper_arg)] {
            let status = std::process::Command::new(program)
                .arg(arg)
                .status()
                .unwrap();
            assert!(status.success());
        }
    });
    let execs = common::collect(
        &mut sensor,
        |event| {
            event
                .process
                .args
                .first()
                .is_some_and(|arg| [&lower_arg, &upper_arg].contains(&arg))
        },
        |events| events.len() >= 2,
    );
    assert_eq!(execs.len(), 2, "{execs:#?}");
    let (lower_exec, upper_exec) = (&execs[0], &execs[1]);
    assert_eq!(lower_exec.process.args[0], lower_arg);
    assert!(
        !lower_exec.process.exe_upper_layer,
        "{:?}",
        lower_exec.process
    );
    assert!(
        upper_exec.process.exe_upper_layer,
        "{:?}",
        upper_exec.process
    );
    assert_eq!(
        upper_exec.process.exepath,
        format!("{}/merged/dropped-true", canonical(dir.path()))
    );
    for event in &execs {
        assert!(!event.process.exe_deleted && !event.process.exe_from_memfd);
    }
}

fn spawn_flags(event: &Event) -> (u32, u64) {
    match event.payload {
        Payload::Spawn { child_pid, flags } => (child_pid, flags),
        ref other => panic!("{other:?}"),
    }
}

#[test]
fn clone_events_carry_the_flags_of_threads_forks_vforks_and_namespace_spawns() {
    if !can_run_ebpf() {
        return;
    }
    let mut sensor = start(&[EventKind::Clone]);
    let (read_end, write_end) = std::io::pipe().unwrap();
    let namespaces = libc::CLONE_NEWNS
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWUTS
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWNET;
    let child = in_child("pal-clone", move || {
        use std::io::Write;
        // SAFETY: each new child only exits.
        let thread = std::thread::spawn(|| unsafe { libc::gettid() })
            .join()
            .unwrap();
        let forked = unsafe { libc::fork() };
        if forked == 0 {
            unsafe { libc::_exit(0) };
        }
        common::wait(forked);
        // posix_spawn is a vfork: the parent waits, sharing its memory, until the exec.
        let mut spawned = 0;
        let path = c"/bin/true";
        let argv = [path.as_ptr().cast_mut(), std::ptr::null_mut()];
        let env: [*mut libc::c_char; 1] = [std::ptr::null_mut()];
        let rc = unsafe {
            libc::posix_spawn(
                &mut spawned,
                path.as_ptr(),
                std::ptr::null(),
                std::ptr::null(),
                argv.as_ptr(),
                env.as_ptr(),
            )
        };
        assert_eq!(rc, 0);
        common::wait(spawned);
        // What container runtimes and `unshare --fork` do: new namespaces for the child.
        let isolated = unsafe {
            libc::syscall(
                libc::SYS_clone,
                (namespaces | libc::SIGCHLD) as libc::c_long,
                0,
                0,
                0,
                0,
            )
        };
        if isolated == 0 {
            unsafe { libc::_exit(0) };
        }
        assert!(isolated > 0, "{}", std::io::Error::last_os_error());
        common::wait(isolated as i32);
        writeln!(&write_end, "{thread} {forked} {spawned} {isolated}").unwrap();
    });
    let ids: Vec<u32> = std::io::read_to_string(read_end)
        .unwrap()
        .split_whitespace()
        .map(|id| id.parse().unwrap())
        .collect();
    // The test's own fork of `child` is the agent's: it must not be reported.
    let events = common::collect(
        &mut sensor,
        |event| [child, std::process::id()].contains(&event.process.pid),
        |events| events.len() >= 4,
    );
    assert_eq!(events.len(), 4, "{events:#?}");
    for event in &events {
        assert_eq!(event.process.pid, child, "{event:?}");
        assert_eq!(event.kind, EventKind::Clone);
        assert_eq!(event.process.ppid, std::process::id());
        assert_eq!(event.process.name, "pal-clone");
        assert_eq!(event.ret, i64::from(spawn_flags(event).0));
    }
    let shared = (libc::CLONE_VM | libc::CLONE_FS | libc::CLONE_FILES | libc::CLONE_SIGHAND) as u64;
    let (thread, flags) = spawn_flags(&events[0]);
    assert_eq!(thread, ids[0]);
    assert_ne!(thread, child, "a thread id, not the process");
    assert_eq!(
        flags & (shared | libc::CLONE_THREAD as u64),
        shared | libc::CLONE_THREAD as u64
    );
    let (forked, flags) = spawn_flags(&events[1]);
    assert_eq!(forked, ids[1]);
    assert_eq!(
        flags & (shared | libc::CLONE_THREAD as u64),
        0,
        "a plain fork shares nothing"
    );
    let (spawned, flags) = spawn_flags(&events[2]);
    assert_eq!(spawned, ids[2]);
    let vfork = (libc::CLONE_VM | libc::CLONE_VFORK) as u64;
    assert_eq!(flags & vfork, vfork);
    let (isolated, flags) = spawn_flags(&events[3]);
    assert_eq!(isolated, ids[3]);
    assert_eq!(flags, namespaces as u64, "exactly the requested namespaces");
}

#[test]
fn exit_events_carry_the_exit_status_or_the_killing_signal() {
    if !can_run_ebpf() {
        return;
    }
    let mut sensor = start(&[EventKind::Procexit]);
    let exiting = in_child_exit(|| unsafe { libc::_exit(7) });
    let killed = in_child_exit(|| unsafe {
        libc::raise(libc::SIGKILL);
    });
    let exits = common::collect(
        &mut sensor,
        |event| [exiting, killed].contains(&event.process.pid),
        |events| events.len() >= 2,
    );
    let summary: Vec<(EventKind, u32, u32, Payload)> = exits
        .iter()
        .map(|e| (e.kind, e.process.pid, e.process.ppid, e.payload.clone()))
        .collect();
    let parent = std::process::id();
    assert_eq!(
        summary,
        [
            (
                EventKind::Procexit,
                exiting,
                parent,
                Payload::Exit {
                    status: 7,
                    signal: 0
                }
            ),
            (
                EventKind::Procexit,
                killed,
                parent,
                Payload::Exit {
                    status: 0,
                    signal: libc::SIGKILL
                }
            ),
        ]
    );
}

/// Forks a child that runs `action` (which ends it) and reaps it, whatever its status.
fn in_child_exit(action: impl FnOnce()) -> u32 {
    // SAFETY: the child only runs `action`, which exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        action();
        unsafe { libc::_exit(0) };
    }
    common::wait(pid);
    pid as u32
}

/// `execv` of `/bin/true` with `arg`, in a child.
fn exec_true(arg: &CString) {
    let program = CString::new("/bin/true").unwrap();
    let argv = [program.as_ptr(), arg.as_ptr(), std::ptr::null()];
    // SAFETY: argv is a NULL-terminated array of valid strings.
    unsafe { libc::execv(program.as_ptr(), argv.as_ptr()) };
    panic!("execv: {}", std::io::Error::last_os_error());
}

#[test]
fn exec_events_carry_the_controlling_terminal_and_session() {
    if !can_run_ebpf() {
        return;
    }
    let mut sensor = start(&[EventKind::Execve]);
    let (mut master, mut slave) = (-1, -1);
    // SAFETY: both out-pointers are valid; name, termios and winsize may be null.
    let opened = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(opened, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: `stat` is valid for writes and `slave` is open.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::fstat(slave, &mut stat) }, 0);
    let (major, minor) = (libc::major(stat.st_rdev), libc::minor(stat.st_rdev));
    assert_eq!(major, 136, "a Unix 98 pty slave");
    // How /proc/<pid>/stat's tty_nr encodes the device (the kernel's new_encode_dev).
    let expected_tty = (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12);

    let with_tty = marker("with-tty");
    let with_tty_c = CString::new(with_tty.clone()).unwrap();
    let with_pid = in_child("pal-tty", || {
        // SAFETY: a new session takes the pty as its controlling terminal.
        assert!(unsafe { libc::setsid() } > 0);
        assert_eq!(unsafe { libc::ioctl(slave, libc::TIOCSCTTY, 0) }, 0);
        exec_true(&with_tty_c);
    });
    let without_tty = marker("without-tty");
    let without_tty_c = CString::new(without_tty.clone()).unwrap();
    let without_pid = in_child("pal-notty", || {
        // SAFETY: a new session has no controlling terminal.
        assert!(unsafe { libc::setsid() } > 0);
        exec_true(&without_tty_c);
    });
    // SAFETY: both descriptors are open and owned here.
    unsafe {
        libc::close(slave);
        libc::close(master);
    }

    // Both execs arrive in one poll, so they are collected together.
    let arg_of = |event: &Event| event.process.args.first().cloned().unwrap_or_default();
    let events = collect(
        &mut sensor,
        |event| {
            event.kind == EventKind::Execve && [&with_tty, &without_tty].contains(&&arg_of(event))
        },
        |events| events.len() == 2,
    );
    let exec_of = |arg: &str| {
        events
            .iter()
            .find(|event| arg_of(event) == arg)
            .unwrap_or_else(|| panic!("an exec with argument {arg}: {events:?}"))
    };
    let event = exec_of(&with_tty);
    assert_eq!(event.process.pid, with_pid);
    assert_eq!(event.process.tty, expected_tty, "{:?}", event.process);
    assert_eq!(
        (event.process.sid, event.process.vpgid, event.process.vpid),
        (with_pid, with_pid, with_pid),
        "a session leader on the host: {:?}",
        event.process
    );
    let event = exec_of(&without_tty);
    assert_eq!(event.process.pid, without_pid);
    assert_eq!(event.process.tty, 0, "{:?}", event.process);
    assert_eq!(event.process.sid, without_pid, "{:?}", event.process);
}
