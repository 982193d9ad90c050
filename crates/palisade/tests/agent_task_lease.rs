//! A task whose claim is lost mid-run stops, for real: `palisade server --task-lease-secs 3`
//! and a `palisade agent` process that rescans a large generated tree. The agent is frozen
//! with SIGSTOP while the first attempt scans, for longer than the lease, and thawed with
//! SIGCONT: the first attempt stops without posting a result — its inventory walk too, at
//! once and after a fraction of the files the full walk reads — the task is handed out again,
//! the second attempt (kept past its 3-second lease by heartbeats) completes, and the task's
//! history shows both attempts.

mod support;

use std::{
    os::unix::fs::PermissionsExt,
    path::Path,
    time::{Duration, Instant},
};

use palisade_testdata::KillOnDrop;
use support::server_and_agent::{Agent, Server, import, task_ended, write_advisory};

const ADMIN: &str = "agent-task-lease-test-admin-token";
/// The server's lease: short, so that the frozen agent loses its claim quickly.
const LEASE_SECS: u64 = 3;
/// Executables in the scanned tree; each is read whole by the inventory (an ELF file may carry
/// Go or Rust build information), which makes one rescan last seconds.
const EXECUTABLES: usize = 120;
/// Size of each (sparse: it costs no disk).
const EXECUTABLE_BYTES: u64 = 64 << 20;

/// A host root whose inventory reads [`EXECUTABLES`] sparse ELF files of
/// [`EXECUTABLE_BYTES`].
fn write_slow_tree(root: &Path) {
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(
        root.join("etc/os-release"),
        "ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n",
    )
    .unwrap();
    let bin = root.join("usr/bin");
    std::fs::create_dir_all(&bin).unwrap();
    for index in 0..EXECUTABLES {
        let path = bin.join(format!("tool-{index}"));
        let file = std::fs::File::create(&path).unwrap();
        std::io::Write::write_all(&mut &file, b"\x7fELF\x02\x01\x01").unwrap();
        file.set_len(EXECUTABLE_BYTES).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// A vulnerability database with one advisory, so that a rescan has something to match.
fn write_database(dir: &Path) -> std::path::PathBuf {
    let database = dir.join("vulndb.sqlite");
    import(
        &database,
        &write_advisory(dir, "CVE-2099-0001", "zlib", "1:1.2.13.dfsg-2"),
    );
    database
}

fn signal(process: &KillOnDrop, signal: i32) {
    let pid = i32::try_from(process.0.id()).unwrap();
    // SAFETY: kill has no memory-safety preconditions; the pid is our own child's.
    assert_eq!(
        unsafe { libc::kill(pid, signal) },
        0,
        "kill({pid}, {signal})"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_frozen_agent_stops_the_task_whose_lease_it_lost_and_runs_it_again() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("host");
    write_slow_tree(&root);
    let database = write_database(dir.path());
    let server = Server::start(
        dir.path(),
        &["--task-lease-secs", &LEASE_SECS.to_string()],
        ADMIN,
    );
    let api = &server.api;
    let agent = Agent::enrol(
        &server,
        dir.path(),
        "join lease test",
        ("lease", "node-lease"),
        &database,
        &root,
    )
    .await;
    let (agent_id, agent_log) = (agent.id.clone(), agent.log.clone());

    let task_id = api.start_rescan(&agent_id).await;
    let running = api
        .task_until(&task_id, 30, |task| task["state"] != "pending")
        .await;
    assert_eq!(running["state"], "running", "{running:#}");
    assert_eq!(running["attempt"], 1, "{running:#}");
    // The server's lease, as the claim says.
    let time = |field: &str| {
        palisade_model::Timestamp::parse_rfc3339(running[field].as_str().unwrap())
            .unwrap()
            .millis()
    };
    assert_eq!(
        time("lease_until") - time("started_at"),
        LEASE_SECS as i64 * 1000,
        "{running:#}"
    );

    // Frozen mid-scan (once the walk has begun) for longer than the lease: no heartbeat
    // reaches the server.
    let walking = Instant::now();
    while !std::fs::read_to_string(&agent_log)
        .unwrap()
        .contains("Taking an inventory.")
    {
        assert!(
            walking.elapsed() < Duration::from_secs(30),
            "the agent did not start its inventory:\n{}",
            std::fs::read_to_string(&agent_log).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    signal(&agent.process, libc::SIGSTOP);
    tokio::time::sleep(Duration::from_secs(LEASE_SECS + 2)).await;
    let frozen = api.task(&task_id).await;
    assert_eq!(
        frozen["state"], "running",
        "attempt 1 ended while frozen: {frozen:#}"
    );
    signal(&agent.process, libc::SIGCONT);

    let finished = api.task_until(&task_id, 120, task_ended).await;
    assert_eq!(finished["state"], "done", "{finished:#}");
    assert_eq!(finished["attempt"], 2, "{finished:#}");
    let outcomes: Vec<&str> = finished["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|attempt| attempt["outcome"].as_str().unwrap_or("running"))
        .collect();
    assert_eq!(
        outcomes,
        [
            "lost: the lease expired without a heartbeat",
            "finished: succeeded"
        ],
        "{finished:#}"
    );
    let log = std::fs::read_to_string(&agent_log).unwrap();
    assert!(
        log.contains("The claim of the task was lost; its work stopped without a result."),
        "the agent did not stop the first attempt:\n{log}"
    );
    assert!(
        !log.contains("refused the result"),
        "the first attempt posted a result:\n{log}"
    );
    // The first attempt's walk of the host root stopped as soon as its claim was lost, after
    // a fraction of the files the second attempt's complete walk read (the agent also
    // inventories the images of whatever containers other tests run meanwhile: other roots).
    let host_walks: Vec<&str> = log
        .lines()
        .filter(|line| line.contains(&format!("root={}", root.display())))
        .filter(|line| line.contains("Inventory "))
        .collect();
    println!("the host root's walks: {host_walks:#?}");
    let [stopped, taken] = host_walks.as_slice() else {
        panic!("not one abandoned walk and then one complete walk:\n{log}");
    };
    assert!(
        stopped.contains("Inventory stopped: the scan was abandoned."),
        "{log}"
    );
    assert!(taken.contains("Inventory taken."), "{log}");
    let (stopped, taken) = (log_fields(stopped), log_fields(taken));
    assert_eq!(taken["files"], EXECUTABLES as u64 + 1, "{log}");
    assert!(
        stopped["files"] <= taken["files"] / 2,
        "the abandoned walk read {} of {} files:\n{log}",
        stopped["files"],
        taken["files"]
    );
    assert!(
        stopped["stopped_ms"] < 1000,
        "the abandoned walk took {} ms to stop:\n{log}",
        stopped["stopped_ms"]
    );
    drop(agent);
}

/// The numeric `key=value` fields of a log line.
fn log_fields(line: &str) -> std::collections::HashMap<&str, u64> {
    line.split_whitespace()
        .filter_map(|field| field.split_once('='))
        .filter_map(|(key, value)| Some((key, value.parse().ok()?)))
        .collect()
}
