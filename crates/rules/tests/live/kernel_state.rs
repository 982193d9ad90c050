//! Rules on what the kernel probes read at exec (`proc.fdlimit`, `thread.cgroup.<controller>`,
//! `proc.nthreads`, `evt.cpu`, `thread.cap_inheritable`, `proc.pidns_init_start_ts`) fire on a
//! real exec seen by the eBPF sensor. Needs root and
//! eBPF (no container).

use std::process::Command;

use crate::environment::{can_run_ebpf, collect, engine, sensor_for};

/// This process's memory cgroup as `/proc/self/cgroup` names it.
fn own_memory_cgroup() -> String {
    let text = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    palisade_sensor::controller_cgroups(&text)
        .into_iter()
        .find_map(|entry| Some(entry.strip_prefix("memory=")?.to_owned()))
        .expect("a memory cgroup")
}

#[test]
fn a_rule_on_the_descriptor_limit_and_cgroups_fires_live() {
    if !can_run_ebpf() {
        return;
    }
    let marker = format!("palisade-kernel-state-{}", std::process::id());
    let mut engine = engine(
        &marker,
        " and proc.fdlimit = 777 and proc.nthreads = 1 and evt.cpu >= 0",
        "limit=%proc.fdlimit threads=%proc.nthreads memory=%thread.cgroup.memory",
    );
    let mut sensor = sensor_for(&engine);
    // The same program twice: with the limit the rule asks for, then with another.
    let script = "ulimit -n 777; /bin/true \"$0\"; ulimit -n 700; /bin/true \"$0\"";
    let status = Command::new("/bin/sh")
        .args(["-c", script, &marker])
        .status()
        .unwrap();
    assert!(status.success());
    // The shell's own exec carries the marker as its $0 too.
    let (execs, alerts) = collect(&mut sensor, &mut engine, &marker, 3);
    assert_eq!(execs.len(), 3, "the shell's and both of /bin/true seen");
    assert_eq!(
        alerts.len(),
        1,
        "only the exec under ulimit -n 777: {alerts:?}"
    );
    assert_eq!(
        alerts[0].output,
        format!("limit=777 threads=1 memory={}", own_memory_cgroup())
    );
}

#[test]
fn a_rule_on_capabilities_and_the_pid_namespace_fires_live() {
    if !can_run_ebpf() {
        return;
    }
    let marker = format!("palisade-capabilities-{}", std::process::id());
    let mut engine = engine(
        &marker,
        " and thread.cap_inheritable = CAP_NET_RAW and proc.vpid = 1 \
         and proc.pidns_init_start_ts = val(proc.pid.ts)",
        "inheritable=%thread.cap_inheritable vpid=%proc.vpid",
    );
    let mut sensor = sensor_for(&engine);
    // In a new pid namespace, its init (setpriv, forked by unshare) gives itself CAP_NET_RAW
    // as inheritable and executes /bin/true; then /bin/true on the host without it.
    let status = Command::new("unshare")
        .args(["--pid", "--fork", "setpriv", "--inh-caps", "+net_raw"])
        .args(["/bin/true", &marker])
        .status()
        .unwrap();
    assert!(status.success());
    let status = Command::new("/bin/true").arg(&marker).status().unwrap();
    assert!(status.success());
    // unshare's and setpriv's execs carry the marker too.
    let (execs, alerts) = collect(&mut sensor, &mut engine, &marker, 4);
    assert_eq!(execs.len(), 4, "{execs:#?}");
    assert_eq!(
        alerts.len(),
        1,
        "only the namespace's /bin/true: {alerts:?}"
    );
    assert_eq!(alerts[0].output, "inheritable=CAP_NET_RAW vpid=1");
}

#[test]
fn a_rule_on_the_standard_descriptors_fires_live() {
    if !can_run_ebpf() {
        return;
    }
    let marker = format!("palisade-std-fds-{}", std::process::id());
    let mut engine = engine(
        &marker,
        " and proc.stdin.type = pipe and proc.stdout.type in (ipv4, ipv6)",
        "stdin=%proc.stdin.type stdout=%proc.stdout.type",
    );
    assert!(engine.reads_std_fds());
    let mut sensor = sensor_for(&engine);
    // /bin/true with its output on a TCP connection (a reverse shell's redirection), then
    // with the test's own output.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let stream = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let status = Command::new("/bin/true")
        .arg(&marker)
        .stdin(std::process::Stdio::piped())
        .stdout(std::os::fd::OwnedFd::from(stream))
        .status()
        .unwrap();
    assert!(status.success());
    let status = Command::new("/bin/true")
        .arg(&marker)
        .stdin(std::process::Stdio::piped())
        .status()
        .unwrap();
    assert!(status.success());
    let (execs, alerts) = collect(&mut sensor, &mut engine, &marker, 2);
    assert_eq!(execs.len(), 2, "{execs:#?}");
    assert_eq!(alerts.len(), 1, "only the redirected exec: {alerts:?}");
    assert_eq!(alerts[0].output, "stdin=pipe stdout=ipv4");
}
