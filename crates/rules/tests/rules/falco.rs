//! The Falco stable rule set: it loads unchanged, and real rules fire exactly where they
//! should on hand-built events.

use palisade_event::Event;
use palisade_rules::{Engine, EngineConfig, RuleSet};

use crate::support::{ev, trim_lines};

fn stable_rules() -> Option<RuleSet> {
    let path = palisade_testdata::shared_data("falco/falco_rules.yaml")?;
    Some(RuleSet::load_files(&[path]))
}

#[test]
fn stable_file_loads_with_exact_counts() {
    let Some(rule_set) = stable_rules() else {
        return;
    };
    let errors: Vec<String> = rule_set.errors().iter().map(ToString::to_string).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(rule_set.rules().len(), 25);
    assert_eq!(rule_set.n_macros(), 87);
    assert_eq!(rule_set.n_lists(), 49);
    assert_eq!(rule_set.n_active_rules(), 25);
}

const CONTAINER: &str =
    r#""container":{"id":"3f1c0d9e8b7a6f5e4d3c2b1a","image":"docker.io/library/nginx:1.27"}"#;

fn container_event(body: &str) -> Event {
    ev(&format!("{{{body},{CONTAINER}}}"))
}

/// Runs every event through the whole stable rule set; one line per alert.
fn fired(events: &[Event]) -> Option<String> {
    let rule_set = stable_rules()?;
    let mut engine = Engine::new(rule_set, &EngineConfig::default());
    let mut lines = Vec::new();
    for (index, event) in events.iter().enumerate() {
        let mut alerts = Vec::new();
        engine.process(event, &mut alerts);
        let names: Vec<String> = alerts.into_iter().map(|alert| alert.rule).collect();
        lines.push(format!(
            "{index}: {}",
            if names.is_empty() {
                "-".to_owned()
            } else {
                names.join(", ")
            }
        ));
    }
    Some(lines.join("\n"))
}

#[test]
fn real_rules_fire_where_they_should_and_only_there() {
    let shell = r#""kind":"execve","process":{"pid":200,"name":"bash","exe":"bash","exepath":"/bin/bash","tty":34816,"uid":0,"user":"root"},"ancestors":[{"pid":190,"name":"runc"}]"#;
    let events = [
        // 0: Terminal shell in container.
        container_event(shell),
        // 1: the same without a terminal.
        container_event(&shell.replace("34816", "0")),
        // 2: the same on the host.
        ev(&format!("{{{shell}}}")),
        // 3: Read sensitive file untrusted.
        ev(
            r#"{"kind":"openat","ret":3,"process":{"name":"python3","exepath":"/usr/bin/python3"},
              "ancestors":[{"name":"bash"}],
              "payload":{"type":"open","fd":{"num":3,"kind":"file","name":"/etc/shadow"},"flags":0,"mode":0}}"#,
        ),
        // 4: the same file read by a trusted user-management binary.
        ev(
            r#"{"kind":"openat","ret":3,"process":{"name":"passwd"},"ancestors":[{"name":"bash"}],
              "payload":{"type":"open","fd":{"num":3,"kind":"file","name":"/etc/shadow"},"flags":0,"mode":0}}"#,
        ),
        // 5: a non-sensitive file.
        ev(
            r#"{"kind":"openat","ret":3,"process":{"name":"python3"},"ancestors":[{"name":"bash"}],
              "payload":{"type":"open","fd":{"num":3,"kind":"file","name":"/etc/hosts"},"flags":0,"mode":0}}"#,
        ),
        // 6: Drop and execute new binary in container.
        container_event(
            r#""kind":"execve","process":{"name":"xmrig","exe":"./xmrig","exepath":"/tmp/xmrig","exe_upper_layer":true},"ancestors":[{"name":"sh"}]"#,
        ),
        // 7: the same binary shipped in the image.
        container_event(
            r#""kind":"execve","process":{"name":"xmrig","exe":"./xmrig","exepath":"/tmp/xmrig"},"ancestors":[{"name":"sh"}]"#,
        ),
        // 8: Redirect STDOUT/STDIN to Network Connection in Container.
        container_event(
            r#""kind":"dup2","ret":1,"process":{"name":"bash"},
            "payload":{"type":"dup","new_fd":1,"fd":{"num":3,"kind":"ipv4","socket":{"protocol":"tcp",
              "local_addr":"172.17.0.2","local_port":51000,"remote_addr":"203.0.113.9","remote_port":4444,"connected":true}}}"#,
        ),
        // 9: Fileless execution via memfd_create.
        ev(
            r#"{"kind":"execve","process":{"name":"3","exe":"memfd:x","exepath":"memfd:x","exe_from_memfd":true},"ancestors":[{"name":"python3"}]}"#,
        ),
        // 10: Packet socket created in container.
        container_event(
            r#""kind":"socket","process":{"name":"scapy"},"payload":{"type":"socket_create","domain":17,"socket_type":3,"protocol":768}"#,
        ),
        // 11: Disallowed SSH Connection Non Standard Port.
        ev(
            r#"{"kind":"connect","process":{"name":"ssh","exe":"/usr/bin/ssh"},
              "payload":{"type":"network","fd":{"num":3,"kind":"ipv4","socket":{"protocol":"tcp",
                "local_addr":"192.168.1.5","local_port":50000,"remote_addr":"203.0.113.9","remote_port":443,"connected":true}}}}"#,
        ),
        // 12: the same to a private address.
        ev(
            r#"{"kind":"connect","process":{"name":"ssh","exe":"/usr/bin/ssh"},
              "payload":{"type":"network","fd":{"num":3,"kind":"ipv4","socket":{"protocol":"tcp",
                "local_addr":"192.168.1.5","local_port":50000,"remote_addr":"10.1.2.3","remote_port":443,"connected":true}}}}"#,
        ),
        // 13: Create Symlink Over Sensitive Files.
        ev(
            r#"{"kind":"symlinkat","process":{"name":"ln"},"payload":{"type":"link","source":"/etc/shadow","target":"/tmp/s"}}"#,
        ),
        // 14: PTRACE attached to process.
        ev(
            r#"{"kind":"ptrace","process":{"name":"injector"},"payload":{"type":"ptrace","request":16,"target_pid":1}}"#,
        ),
    ];
    let Some(actual) = fired(&events) else {
        return;
    };
    assert_eq!(
        actual,
        trim_lines(
            "0: Terminal shell in container
             1: -
             2: -
             3: Read sensitive file untrusted
             4: -
             5: -
             6: Drop and execute new binary in container
             7: -
             8: Redirect STDOUT/STDIN to Network Connection in Container
             9: Fileless execution via memfd_create
             10: Packet socket created in container
             11: Disallowed SSH Connection Non Standard Port
             12: -
             13: Create Symlink Over Sensitive Files
             14: PTRACE attached to process"
        )
    );
}

#[test]
fn stable_rule_output_renders_fields() {
    let Some(rule_set) = stable_rules() else {
        return;
    };
    let mut engine = Engine::new(rule_set, &EngineConfig::default());
    let mut alerts = Vec::new();
    engine.process(
        &container_event(r#""kind":"execve","process":{"name":"bash","exe":"bash","exepath":"/bin/bash","args":["-i"],"tty":34816,"uid":0,"user":"root"},"ancestors":[{"name":"runc"}]"#),
        &mut alerts,
    );
    assert_eq!(alerts.len(), 1);
    assert_eq!(
        alerts[0].output,
        "A shell was spawned in a container with an attached terminal | evt_type=execve user=root user_uid=0 user_loginuid=-1 process=bash proc_exepath=/bin/bash parent=runc command=bash -i terminal=34816 exe_flags="
    );
    assert_eq!(alerts[0].priority.to_string(), "Notice");
    assert!(alerts[0].tags.iter().any(|tag| tag == "T1059"));
    assert!(
        alerts[0]
            .fields
            .contains(&("proc.tty".to_owned(), "34816".to_owned()))
    );
}
