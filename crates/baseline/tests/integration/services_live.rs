//! Real Redis, PostgreSQL and MariaDB from Debian, started on loopback ports as unprivileged
//! daemons in temporary directories (which double as the host root whose configuration files
//! the checks read), probed, then stopped and removed.

use std::{
    net::{SocketAddr, TcpStream},
    os::unix::{fs::PermissionsExt, process::CommandExt},
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use palisade_baseline::{
    CheckResult, HostRoot, ProbeOptions, Status, check_services, probe_services,
};
use palisade_testdata::free_port;

/// A daemon that is killed and reaped when the test ends, however it ends.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The uid and gid of a system account, from /etc/passwd.
fn account(name: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        if fields.len() < 4 || fields[0] != name {
            return None;
        }
        Some((fields[2].parse().ok()?, fields[3].parse().ok()?))
    })
}

fn available(what: &str, binary: &str, user: &str) -> Option<(u32, u32)> {
    let is_root =
        std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0);
    let ids = account(user);
    palisade_testdata::capability(what, is_root && Path::new(binary).exists() && ids.is_some())
        .then(|| ids.unwrap())
}

fn wait_for(port: u16, daemon: &mut Daemon) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = daemon.0.try_wait() {
            panic!("the daemon exited with {status} before listening on {port}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("nothing listens on 127.0.0.1:{port} after 60 s");
}

/// A temporary root that unprivileged daemons can traverse, with `dirs` owned by `ids`.
fn root_for(ids: (u32, u32), dirs: &[&str]) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    for dir in dirs {
        let path = root.path().join(dir);
        std::fs::create_dir_all(&path).unwrap();
        let mut current = path.as_path();
        while current != root.path() {
            std::fs::set_permissions(current, std::fs::Permissions::from_mode(0o755)).unwrap();
            current = current.parent().unwrap();
        }
        std::os::unix::fs::chown(&path, Some(ids.0), Some(ids.1)).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    root
}

fn options(redis: Option<u16>, postgres: Option<u16>, mysql: Option<u16>) -> ProbeOptions {
    let address = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
    ProbeOptions {
        redis: redis.map(address),
        postgres: postgres.map(address),
        mysql: mysql.map(address),
        mysql_socket: None,
        attempt_interval: Duration::from_millis(50),
        timeout: Duration::from_secs(5),
    }
}

fn result<'a>(results: &'a [CheckResult], id: &str) -> &'a CheckResult {
    results
        .iter()
        .find(|result| result.rule.id == id)
        .unwrap_or_else(|| panic!("no result for {id}: {results:?}"))
}

fn start_redis(ids: (u32, u32), config: &str) -> (tempfile::TempDir, Daemon, u16) {
    let root = root_for(ids, &["var/lib/redis"]);
    let port = free_port();
    let dir = root.path().join("var/lib/redis");
    let config = format!(
        "port {port}\ndir {}\nsave \"\"\nappendonly no\ndaemonize no\nlogfile \"\"\n{config}",
        dir.display()
    );
    std::fs::create_dir_all(root.path().join("etc/redis")).unwrap();
    let config_path = root.path().join("etc/redis/redis.conf");
    std::fs::write(&config_path, config).unwrap();
    let mut daemon = Daemon(
        Command::new("/usr/bin/redis-server")
            .arg(&config_path)
            .uid(ids.0)
            .gid(ids.1)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for(port, &mut daemon);
    (root, daemon, port)
}

#[test]
fn redis_insecure_weak_and_secure() {
    let Some(ids) = available(
        "root and redis-server (apt redis-server)",
        "/usr/bin/redis-server",
        "redis",
    ) else {
        return;
    };
    let (root, _daemon, port) = start_redis(ids, "bind 127.0.0.1\nprotected-mode no\n");
    let config = check_services(&HostRoot::new(root.path()).unwrap());
    assert_eq!(result(&config, "PAL-SVC-001").status, Status::Fail);
    assert_eq!(result(&config, "PAL-SVC-002").status, Status::Pass);
    assert_eq!(result(&config, "PAL-SVC-003").status, Status::Fail);
    let probed = probe_services(&options(Some(port), None, None)).unwrap();
    assert_eq!(result(&probed, "PAL-SVC-014").status, Status::Fail);
    assert_eq!(result(&probed, "PAL-SVC-015").status, Status::NotApplicable);

    let (_root, _daemon, port) = start_redis(ids, "bind 127.0.0.1\nrequirepass changeme\n");
    let probed = probe_services(&options(Some(port), None, None)).unwrap();
    assert_eq!(result(&probed, "PAL-SVC-014").status, Status::Pass);
    let weak = result(&probed, "PAL-SVC-015");
    assert_eq!(weak.status, Status::Fail);
    assert_eq!(weak.evidence[0].value, "accepted \"changeme\"");

    let (root, _daemon, port) = start_redis(
        ids,
        "bind 127.0.0.1 -::1\nprotected-mode yes\nrequirepass Zq8-long-random-secret\n\
         rename-command FLUSHALL \"\"\nrename-command FLUSHDB \"\"\nrename-command CONFIG \"\"\n\
         rename-command DEBUG \"\"\nrename-command MODULE \"\"\nrename-command SLAVEOF \"\"\nrename-command REPLICAOF \"\"\n",
    );
    let config = check_services(&HostRoot::new(root.path()).unwrap());
    for id in ["PAL-SVC-001", "PAL-SVC-002", "PAL-SVC-003", "PAL-SVC-004"] {
        assert_eq!(result(&config, id).status, Status::Pass, "{id}");
    }
    let probed = probe_services(&options(Some(port), None, None)).unwrap();
    assert_eq!(result(&probed, "PAL-SVC-014").status, Status::Pass);
    assert_eq!(result(&probed, "PAL-SVC-015").status, Status::Pass);
}

fn start_postgres(ids: (u32, u32), auth: &str, password: &str) -> (tempfile::TempDir, Daemon, u16) {
    let root = root_for(ids, &["var/lib/postgresql/data", "run/postgresql"]);
    let data = root.path().join("var/lib/postgresql/data");
    let socket_dir = root.path().join("run/postgresql");
    let password_file = socket_dir.join("pw");
    std::fs::write(&password_file, format!("{password}\n")).unwrap();
    std::os::unix::fs::chown(&password_file, Some(ids.0), Some(ids.1)).unwrap();
    let status = Command::new("/usr/lib/postgresql/15/bin/initdb")
        .args([
            "-D",
            data.to_str().unwrap(),
            "-U",
            "postgres",
            "--no-sync",
            "--auth",
            auth,
        ])
        .arg(format!("--pwfile={}", password_file.display()))
        .uid(ids.0)
        .gid(ids.1)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "initdb failed");
    let port = free_port();
    let mut daemon = Daemon(
        Command::new("/usr/lib/postgresql/15/bin/postgres")
            .args([
                "-D",
                data.to_str().unwrap(),
                "-p",
                &port.to_string(),
                "-k",
                socket_dir.to_str().unwrap(),
            ])
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .uid(ids.0)
            .gid(ids.1)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for(port, &mut daemon);
    // The port opens before the server accepts logins; pg_isready says when it does.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !Command::new("/usr/lib/postgresql/15/bin/pg_isready")
        .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
        .status()
        .unwrap()
        .success()
    {
        assert!(Instant::now() < deadline, "PostgreSQL not ready after 60 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    (root, daemon, port)
}

#[test]
fn postgres_trust_scram_and_md5() {
    let Some(ids) = available(
        "root and PostgreSQL 15 (apt postgresql)",
        "/usr/lib/postgresql/15/bin/postgres",
        "postgres",
    ) else {
        return;
    };
    let (root, _daemon, port) = start_postgres(ids, "trust", "Zq8-long-random-secret");
    let config = check_services(&HostRoot::new(root.path()).unwrap());
    let trust = result(&config, "PAL-SVC-008");
    assert_eq!(trust.status, Status::Fail);
    assert_eq!(
        trust.evidence[0].file,
        "/var/lib/postgresql/data/pg_hba.conf"
    );
    let probed = probe_services(&options(None, Some(port), None)).unwrap();
    assert_eq!(
        result(&probed, "PAL-SVC-016").status,
        Status::Fail,
        "{probed:?}"
    );

    assert_eq!(
        result(&probed, "PAL-SVC-019").status,
        Status::NotApplicable,
        "no password needed at all"
    );

    let (root, _daemon, port) = start_postgres(ids, "scram-sha-256", "Zq8-long-random-secret");
    let config = check_services(&HostRoot::new(root.path()).unwrap());
    assert_eq!(result(&config, "PAL-SVC-008").status, Status::Pass);
    let probed = probe_services(&options(None, Some(port), None)).unwrap();
    let scram = result(&probed, "PAL-SVC-016");
    assert_eq!(scram.status, Status::Pass);
    assert_eq!(scram.message, "the server asks for SASL (SCRAM)");
    let weak = result(&probed, "PAL-SVC-019");
    assert_eq!(weak.status, Status::Pass, "{probed:?}");
    assert!(weak.message.ends_with("all refused"), "{}", weak.message);

    for auth in ["scram-sha-256", "md5"] {
        let (root, _daemon, port) = start_postgres(ids, auth, "changeme");
        if auth == "md5" {
            // initdb stored a SCRAM hash, with which `md5` lines authenticate by SCRAM too;
            // store an MD5 hash so that the server asks for the MD5 exchange.
            let status = Command::new("/usr/lib/postgresql/15/bin/psql")
                .args(["-h", root.path().join("run/postgresql").to_str().unwrap()])
                .args([
                    "-p",
                    &port.to_string(),
                    "-U",
                    "postgres",
                    "-d",
                    "postgres",
                    "-q",
                ])
                .args(["-c", "SET password_encryption = 'md5'"])
                .args(["-c", "ALTER ROLE postgres PASSWORD 'changeme'"])
                .env("PGPASSWORD", "changeme")
                .status()
                .unwrap();
            assert!(status.success(), "re-hashing the password as MD5 failed");
        }
        let probed = probe_services(&options(None, Some(port), None)).unwrap();
        let weak = result(&probed, "PAL-SVC-019");
        assert_eq!(weak.status, Status::Fail, "{auth}: {probed:?}");
        assert_eq!(weak.evidence[0].value, "accepted password \"changeme\"");
    }
}

#[test]
fn mariadb_empty_weak_and_strong_root_password() {
    let Some(ids) = available(
        "root and MariaDB (apt mariadb-server)",
        "/usr/sbin/mariadbd",
        "mysql",
    ) else {
        return;
    };
    let root = root_for(ids, &["var/lib/mysql", "run/mysqld"]);
    let data = root.path().join("var/lib/mysql");
    let socket = root.path().join("run/mysqld/mysqld.sock");
    let port = free_port();
    std::fs::create_dir_all(root.path().join("etc/mysql")).unwrap();
    let my_cnf = root.path().join("etc/mysql/my.cnf");
    std::fs::write(
        &my_cnf,
        format!(
            "[mysqld]\ndatadir = {}\nsocket = {}\nport = {port}\nbind-address = 127.0.0.1\n\
             local-infile = 1\nskip-log-bin\ninnodb_buffer_pool_size = 16M\n",
            data.display(),
            socket.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&my_cnf, std::fs::Permissions::from_mode(0o644)).unwrap();
    let status = Command::new("/usr/bin/mariadb-install-db")
        .arg(format!("--defaults-file={}", my_cnf.display()))
        .args([
            "--user=mysql",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "mariadb-install-db failed");
    let mut daemon = Daemon(
        Command::new("/usr/sbin/mariadbd")
            .arg(format!("--defaults-file={}", my_cnf.display()))
            .arg("--user=mysql")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for(port, &mut daemon);

    let config = check_services(&HostRoot::new(root.path()).unwrap());
    assert_eq!(result(&config, "PAL-SVC-005").status, Status::Fail);
    assert_eq!(result(&config, "PAL-SVC-006").status, Status::Pass);
    assert_eq!(result(&config, "PAL-SVC-007").status, Status::Pass);

    let probed = probe_services(&options(None, None, Some(port))).unwrap();
    assert_eq!(
        result(&probed, "PAL-SVC-017").status,
        Status::Fail,
        "{probed:?}"
    );

    let set_root_password = |password: &str| {
        let status = Command::new("/usr/bin/mariadb")
            .arg(format!("--socket={}", socket.display()))
            .args(["-u", "root", "-e"])
            .arg(format!(
                "SET PASSWORD FOR 'root'@'localhost' = PASSWORD('{password}')"
            ))
            .status()
            .unwrap();
        assert!(status.success(), "setting the root password failed");
    };
    set_root_password("changeme");
    let probed = probe_services(&options(None, None, Some(port))).unwrap();
    assert_eq!(
        result(&probed, "PAL-SVC-017").status,
        Status::Pass,
        "{probed:?}"
    );
    let weak = result(&probed, "PAL-SVC-018");
    assert_eq!(weak.status, Status::Fail, "{probed:?}");
    assert_eq!(weak.evidence[0].value, "accepted password \"changeme\"");

    // The client logs in over the socket as root with the password now.
    let status = Command::new("/usr/bin/mariadb")
        .arg(format!("--socket={}", socket.display()))
        .args(["-u", "root", "-pchangeme", "-e"])
        .arg("SET PASSWORD FOR 'root'@'localhost' = PASSWORD('Zq8-long-random-secret')")
        .status()
        .unwrap();
    assert!(status.success());
    let probed = probe_services(&options(None, None, Some(port))).unwrap();
    assert_eq!(result(&probed, "PAL-SVC-017").status, Status::Pass);
    assert_eq!(
        result(&probed, "PAL-SVC-018").status,
        Status::Pass,
        "{probed:?}"
    );
    assert_eq!(
        result(&probed, "PAL-SVC-020").status,
        Status::Error,
        "no root session without the socket: {probed:?}"
    );

    // Over the unix socket, as the OS root (unix_socket authentication), the probe reads
    // root's hosts: a root@'%' account fails the check, dropping it passes.
    let sql = |statement: &str| {
        let status = Command::new("/usr/bin/mariadb")
            .arg(format!("--socket={}", socket.display()))
            .args(["-u", "root", "-pZq8-long-random-secret", "-e", statement])
            .status()
            .unwrap();
        assert!(status.success(), "{statement} failed");
    };
    sql(
        "DELETE FROM mysql.global_priv WHERE User = 'root' AND Host NOT IN ('localhost', '127.0.0.1', '::1'); FLUSH PRIVILEGES",
    );
    sql("CREATE USER 'root'@'%' IDENTIFIED BY 'Zq8-long-random-secret'");
    sql("ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket");
    let with_socket = ProbeOptions {
        mysql_socket: Some(socket.clone()),
        ..options(None, None, Some(port))
    };
    let probed = probe_services(&with_socket).unwrap();
    let remote = result(&probed, "PAL-SVC-020");
    assert_eq!(remote.status, Status::Fail, "{probed:?}");
    assert_eq!(remote.evidence.len(), 1, "{:?}", remote.evidence);
    assert_eq!(remote.evidence[0].value, "root@'%'");
    let status = Command::new("/usr/bin/mariadb")
        .arg(format!("--socket={}", socket.display()))
        .args(["-u", "root", "-e", "DROP USER 'root'@'%'"])
        .status()
        .unwrap();
    assert!(
        status.success(),
        "dropping root@'%' over unix_socket failed"
    );
    let probed = probe_services(&with_socket).unwrap();
    assert_eq!(
        result(&probed, "PAL-SVC-020").status,
        Status::Pass,
        "{probed:?}"
    );
}
