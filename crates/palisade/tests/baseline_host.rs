//! `palisade baseline host` and `palisade baseline services`: JSON and SARIF shape, exit codes,
//! not-applicable checks, hostile roots and the loopback-only probe guard.

mod support;

use std::{fs, path::Path, process::Command};

use palisade_testdata::PodmanContainer;
use serde_json::Value;
use support::is_root;

fn palisade(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(args)
        .output()
        .expect("palisade runs");
    (
        output.status.code().expect("exit code"),
        String::from_utf8(output.stdout).expect("utf-8 stdout"),
        String::from_utf8(output.stderr).expect("utf-8 stderr"),
    )
}

fn write(root: &Path, path: &str, text: &str) {
    let real = root.join(path.trim_start_matches('/'));
    fs::create_dir_all(real.parent().unwrap()).unwrap();
    fs::write(real, text).unwrap();
}

fn result<'a>(document: &'a Value, id: &str) -> &'a Value {
    document["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|result| result["id"] == id)
        .unwrap_or_else(|| panic!("no result for {id}"))
}

#[test]
fn host_json_reports_every_rule_with_status_and_evidence() {
    let root = tempfile::tempdir().unwrap();
    write(
        root.path(),
        "/etc/ssh/sshd_config",
        "PermitRootLogin yes\nPasswordAuthentication no\n",
    );
    write(
        root.path(),
        "/etc/docker/daemon.json",
        "{\"icc\": false, \"userns-remap\": \"default\", \"live-restore\": true, \"no-new-privileges\": true}\n",
    );
    let (code, stdout, stderr) = palisade(&[
        "baseline",
        "host",
        "--root",
        root.path().to_str().unwrap(),
        "--output",
        "json",
    ]);
    assert_eq!(code, 1, "{stderr}");
    let document: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(document["live"], false);
    let root_login = result(&document, "PAL-HOST-001");
    assert_eq!(root_login["status"], "fail");
    assert_eq!(root_login["severity"], "high");
    assert_eq!(root_login["category"], "os");
    assert_eq!(root_login["evidence"][0]["file"], "/etc/ssh/sshd_config");
    assert_eq!(root_login["evidence"][0]["line"], 1);
    assert_eq!(root_login["references"][0]["id"], "SSH-7408");
    assert_eq!(
        root_login["references"][1],
        serde_json::json!({"source": "CIS Debian Linux 12 v1.1.0", "id": "5.1.20"})
    );
    assert_eq!(result(&document, "PAL-HOST-002")["status"], "pass");
    assert_eq!(result(&document, "PAL-HOST-040")["status"], "pass");
    // No kubelet, no containerd: not applicable, never pass.
    assert_eq!(
        result(&document, "PAL-HOST-050")["status"],
        "not_applicable"
    );
    assert_eq!(
        result(&document, "PAL-HOST-046")["status"],
        "not_applicable"
    );
    assert_eq!(document["results"].as_array().unwrap().len(), 55);
    assert!(document["summary"]["fail"].as_u64().unwrap() > 0);

    // Only high and critical failures count with --fail-on high; the root login one is high.
    let (code, ..) = palisade(&[
        "baseline",
        "host",
        "--root",
        root.path().to_str().unwrap(),
        "--fail-on",
        "critical",
        "--output",
        "json",
    ]);
    assert_eq!(code, 0);
}

#[test]
fn host_sarif_and_table() {
    let root = tempfile::tempdir().unwrap();
    write(
        root.path(),
        "/var/lib/kubelet/config.yaml",
        "authorization:\n  mode: AlwaysAllow\n",
    );
    let (code, stdout, _) = palisade(&[
        "baseline",
        "host",
        "--root",
        root.path().to_str().unwrap(),
        "--output",
        "sarif",
    ]);
    assert_eq!(code, 1);
    let sarif: Value = serde_json::from_str(&stdout).unwrap();
    let run = &sarif["runs"][0];
    let sarif_rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    assert_eq!(sarif_rules.len(), 55);
    let shadow_rule = sarif_rules
        .iter()
        .find(|rule| rule["id"] == "PAL-HOST-017")
        .unwrap();
    assert_eq!(
        shadow_rule["properties"]["references"],
        serde_json::json!([
            "lynis FILE-7524",
            "CIS Debian Linux 12 v1.1.0 7.1.5",
            "CIS Debian Linux 12 v1.1.0 7.1.7"
        ])
    );
    let always_allow = run["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|result| result["ruleId"] == "PAL-HOST-051")
        .unwrap();
    assert_eq!(always_allow["level"], "error");
    assert_eq!(
        always_allow["locations"][0]["physicalLocation"]["region"]["startLine"],
        2
    );
    let (_, table, _) = palisade(&["baseline", "host", "--root", root.path().to_str().unwrap()]);
    assert!(table.contains("PAL-HOST-051"), "{table}");
    assert!(
        table.contains("CIS Debian Linux 12 v1.1.0 7.1.1, 7.1.3"),
        "{table}"
    );
    assert!(table.contains("55 checks:"), "{table}");
}

#[test]
fn hostile_roots_are_clear_errors() {
    let (code, _, stderr) = palisade(&["baseline", "host", "--root", "/nonexistent/root"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("/nonexistent/root: cannot open the host root"),
        "{stderr}"
    );

    let root = tempfile::tempdir().unwrap();
    write(root.path(), "/etc/docker/daemon.json", "{\"icc\": ");
    fs::create_dir_all(root.path().join("etc/ssh")).unwrap();
    std::os::unix::fs::symlink("sshd_config", root.path().join("etc/ssh/sshd_config.loop"))
        .unwrap();
    std::os::unix::fs::symlink("sshd_config.loop", root.path().join("etc/ssh/sshd_config"))
        .unwrap();
    let (code, stdout, _) = palisade(&[
        "baseline",
        "host",
        "--root",
        root.path().to_str().unwrap(),
        "--output",
        "json",
    ]);
    assert_eq!(code, 1);
    let document: Value = serde_json::from_str(&stdout).unwrap();
    let docker = result(&document, "PAL-HOST-040");
    assert_eq!(docker["status"], "error");
    assert!(
        docker["message"].as_str().unwrap().contains("invalid JSON"),
        "{docker}"
    );
    let ssh = result(&document, "PAL-HOST-001");
    assert_eq!(ssh["status"], "error");
    assert!(
        ssh["message"].as_str().unwrap().contains("symbolic links"),
        "{ssh}"
    );
}

#[test]
fn services_config_and_probe_guard() {
    let root = tempfile::tempdir().unwrap();
    write(
        root.path(),
        "/etc/nginx/nginx.conf",
        "http {\n  server_tokens off;\n  autoindex on;\n}\n",
    );
    let (code, stdout, stderr) = palisade(&[
        "baseline",
        "services",
        "--root",
        root.path().to_str().unwrap(),
        "--output",
        "json",
    ]);
    assert_eq!(code, 1, "{stderr}");
    let document: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(result(&document, "PAL-SVC-012")["status"], "pass");
    assert_eq!(result(&document, "PAL-SVC-013")["evidence"][0]["line"], 3);
    assert_eq!(result(&document, "PAL-SVC-001")["status"], "not_applicable");

    let (code, _, stderr) = palisade(&[
        "baseline",
        "services",
        "--root",
        root.path().to_str().unwrap(),
        "--probe",
        "--redis",
        "10.1.2.3:6379",
    ]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("refusing to probe 10.1.2.3:6379"),
        "{stderr}"
    );
}

/// Whether something listens on 127.0.0.1:`port` in the network namespace of `pid`, from that
/// namespace's own socket table.
fn listens_in(pid: u32, port: u16) -> bool {
    let table = fs::read_to_string(format!("/proc/{pid}/net/tcp")).unwrap_or_default();
    let local = format!("0100007F:{port:04X}");
    table.lines().skip(1).any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        fields.get(1) == Some(&local.as_str()) && fields.get(3) == Some(&"0A")
    })
}

#[test]
fn services_probe_runs_inside_the_target_process_network_namespace() {
    let ready = is_root() && Path::new("/usr/bin/redis-server").exists();
    if !palisade_testdata::capability("root and redis-server (apt redis-server)", ready) {
        return;
    }
    // A port nothing listens on in this (the host's) namespace.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    // Redis without a password in a fresh network namespace: only its own loopback reaches it.
    let mut server = Command::new("unshare")
        .args(["--net", "--", "sh", "-c"])
        .arg(format!(
            "ip link set lo up && exec redis-server --port {port} --bind 127.0.0.1 --save '' \
             --appendonly no --dir {}",
            dir.path().display()
        ))
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = server.id();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !listens_in(pid, port) {
        assert!(std::time::Instant::now() < deadline, "redis did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let address = format!("127.0.0.1:{port}");
    let probe = |extra: &[&str]| {
        let mut args = vec!["baseline", "services", "--probe", "--redis", &address];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--output", "json"]);
        let (_, stdout, stderr) = palisade(&args);
        serde_json::from_str::<Value>(&stdout).unwrap_or_else(|_| panic!("{stderr}"))
    };
    let pid_text = pid.to_string();
    let inside = probe(&["--pid", &pid_text]);
    let outside = probe(&[]);
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(result(&inside, "PAL-SVC-014")["status"], "fail", "{inside}");
    assert_eq!(inside["pid"], pid);
    assert_eq!(inside["root"], format!("/proc/{pid}/root"));
    assert_eq!(
        result(&outside, "PAL-SVC-014")["status"],
        "not_applicable",
        "the host's loopback has no server on that port: {outside}"
    );

    let (code, _, stderr) = palisade(&["baseline", "services", "--container", "no such;name"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("not a valid container id or name"),
        "{stderr}"
    );
}

#[test]
fn services_of_a_running_container_are_read_through_its_root() {
    if !support::podman_and_busybox() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rootfs = dir.path().join("rootfs");
    fs::create_dir_all(rootfs.join("bin")).unwrap();
    fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    // The container's Redis configuration; the host has none at this path's content.
    write(
        &rootfs,
        "/etc/redis/redis.conf",
        "bind 0.0.0.0\nprotected-mode no\n",
    );
    let container = PodmanContainer::import(
        &rootfs,
        &dir.path().join("rootfs.tar"),
        "palisade-baseline-services",
        &std::process::id().to_string(),
    );
    container.start(&["/bin/busybox", "sleep", "120"]);
    let (_, stdout, stderr) = palisade(&[
        "baseline",
        "services",
        "--container",
        &container.container,
        "--output",
        "json",
    ]);
    let document: Value = serde_json::from_str(&stdout).unwrap_or_else(|_| panic!("{stderr}"));
    assert_eq!(document["container"], container.container.as_str());
    let bind = result(&document, "PAL-SVC-002");
    assert_eq!(bind["status"], "fail", "{document}");
    assert_eq!(bind["evidence"][0]["file"], "/etc/redis/redis.conf");
    assert_eq!(bind["evidence"][0]["value"], "0.0.0.0");
}
