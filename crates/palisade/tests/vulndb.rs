//! `palisade db import|update|status|match`, run as a built binary on self-written feeds.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};

const GO_RECORD: &str = r#"{"id": "GO-2099-0001", "aliases": ["CVE-2099-0001"],
  "summary": "Example flaw", "severity": [{"type": "CVSS_V3",
  "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"}],
  "affected": [{"package": {"ecosystem": "Go", "name": "example.com/mod"},
  "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.2.0"}]}]}]}"#;

const DSA_LIST: &str = "[29 Mar 2023] DSA-5380-1 xorg-server - security update\n\t{CVE-2023-1393}\n\t[bullseye] - xorg-server 2:1.20.11-1+deb11u6\n";

fn palisade(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_palisade"))
        .arg("db")
        .args(args)
        .arg("--db")
        .arg(db)
        .output()
        .expect("the palisade binary runs")
}

fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "{error}: stdout {:?}, stderr {:?}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

#[test]
fn import_status_and_match() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("vulndb.sqlite");
    let feeds = dir.path().join("feeds");
    std::fs::create_dir_all(feeds.join("go")).unwrap();
    std::fs::write(feeds.join("go/GO-2099-0001.json"), GO_RECORD).unwrap();
    std::fs::write(feeds.join("go/broken.json"), "{").unwrap();
    std::fs::write(feeds.join("DSA-list"), DSA_LIST).unwrap();

    let output = palisade(
        &db,
        &[
            "import",
            feeds.join("go").to_str().unwrap(),
            feeds.join("DSA-list").to_str().unwrap(),
        ],
    );
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("1 records (osv), 1 skipped"), "{stdout}");
    assert!(stdout.contains("1 records (debian-list)"), "{stdout}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("broken.json: malformed JSON"));

    let status = json(&palisade(&db, &["status", "--output", "json"]));
    assert_eq!(status["total_records"], 2);
    assert_eq!(status["sources"].as_array().unwrap().len(), 2);
    assert_eq!(
        status["ecosystems"],
        serde_json::json!([["Debian:11", 1], ["Go", 1]])
    );
    let table = palisade(&db, &["status"]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("debian-list"), "{table}");
    // Each source's age: imported just now.
    let go_row = table
        .lines()
        .find(|line| line.contains("osv"))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(go_row.contains(" 0 min "), "{table}");
    assert!(table.contains("2 records in total"), "{table}");

    let output = palisade(
        &db,
        &[
            "match",
            "--ecosystem",
            "Go",
            "--package",
            "example.com/mod",
            "--version",
            "v1.1.0",
            "--output",
            "json",
        ],
    );
    assert_eq!(output.status.code(), Some(1), "vulnerable exits with 1");
    let report = json(&output);
    let finding = &report["findings"][0];
    assert_eq!(finding["id"], "GO-2099-0001");
    assert_eq!(finding["aliases"], serde_json::json!(["CVE-2099-0001"]));
    assert_eq!(finding["cvss_score"], 7.5);
    assert_eq!(finding["fix"], "go get example.com/mod@v1.2.0");

    let output = palisade(
        &db,
        &[
            "match",
            "--ecosystem",
            "Go",
            "--package",
            "example.com/mod",
            "--version",
            "v1.2.0",
        ],
    );
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(json(&output)["findings"], serde_json::json!([]));

    let output = palisade(
        &db,
        &[
            "match",
            "--ecosystem",
            "debian:bullseye",
            "--package",
            "xserver-xorg-core",
            "--source-package",
            "xorg-server",
            "--version",
            "2:1.20.11-1+deb11u5",
        ],
    );
    let report = json(&output);
    assert_eq!(report["findings"][0]["id"], "DSA-5380-1");
    assert_eq!(report["findings"][0]["status"], "fixed");
    assert_eq!(
        report["findings"][0]["fix"],
        "apt-get install --only-upgrade xserver-xorg-core=2:1.20.11-1+deb11u6"
    );

    // Re-importing a source replaces it.
    let output = palisade(&db, &["import", feeds.join("go").to_str().unwrap()]);
    assert!(output.status.success());
    assert_eq!(
        json(&palisade(&db, &["status", "--output", "json"]))["total_records"],
        2
    );

    let output = palisade(
        &db,
        &[
            "match",
            "--ecosystem",
            "crates.io",
            "--package",
            "x",
            "--version",
            "not-semver",
        ],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot match x"));
}

/// `db match --module-stream`: a Red Hat module package is matched against its own stream's
/// OVAL definitions only; without a stream, against the version line's.
#[test]
fn match_takes_the_package_module_streams() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("vulndb.sqlite");
    let feed = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../vulndb/tests/data/oval/rhel-8-container-tools.oval.xml");
    let output = palisade(&db, &["import", feed.to_str().unwrap()]);
    assert!(output.status.success(), "{output:?}");
    let matched = |version: &str, streams: &[&str]| {
        let mut args = vec![
            "match",
            "--ecosystem",
            "Red Hat:8",
            "--package",
            "podman",
            "--version",
            version,
            "--output",
            "json",
        ];
        for stream in streams {
            args.extend(["--module-stream", stream]);
        }
        palisade(&db, &args)
    };
    let ids = |streams: &[&str]| -> Vec<String> {
        let report = json(&matched("4.0.2-26.module+el8.9.0+21245+22222222", streams));
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|finding| finding["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        ids(&["container-tools:4.0"]),
        ["CVE-2024-9103", "CVE-2024-9104"]
    );
    assert_eq!(
        ids(&["container-tools:rhel8"]),
        ["CVE-2024-9104", "RHSA-2024:9101"]
    );
    assert_eq!(
        ids(&[]),
        ["CVE-2024-9103", "CVE-2024-9104", "RHSA-2024:9101"]
    );
    // A stream is two plausible names, as the inventory and the OVAL reader take them.
    for refused in [
        "container-tools",
        "container-tools: 4.0",
        "container-tools:4.0:1",
    ] {
        let output = matched("4.0.2-26", &[refused]);
        assert_eq!(output.status.code(), Some(2), "{refused:?}");
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("is not a module stream name:stream"),
            "{output:?}"
        );
    }
}

/// Serves `body` once on 127.0.0.1 and returns the URL.
fn serve_once(body: Vec<u8>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let header = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(header.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    format!("http://{address}/osv/GO-2099-0001.json")
}

#[test]
fn update_from_a_local_http_server() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("vulndb.sqlite");
    let url = serve_once(GO_RECORD.as_bytes().to_vec());
    let output = palisade(&db, &["update", "--url", &url]);
    assert!(output.status.success(), "{output:?}");
    let status = json(&palisade(&db, &["status", "--output", "json"]));
    assert_eq!(status["sources"][0]["location"], url.as_str());
    assert_eq!(status["sources"][0]["record_count"], 1);

    let output = palisade(&db, &["update", "--url", "ftp://127.0.0.1/x"]);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn default_database_location_follows_xdg_data_home() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(["db", "status", "--output", "json"])
        .env("XDG_DATA_HOME", dir.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(dir.path().join("palisade/vulndb.sqlite").exists());
}

mod update_over_https {
    //! `palisade db update --url https://…` against a real TLS server on 127.0.0.1 whose
    //! certificate a private CA made in the test signs (the server's own `tls::ensure_pki`): OSV,
    //! Debian tracker and Alpine secdb feeds imported when the CA is trusted with `--ca-cert`,
    //! and each way a download can go wrong — an untrusted certificate, a redirect to plain
    //! HTTP, a body over the limit, a body cut short, a server slower than `--timeout`, a 404 —
    //! failing with an error that says so while the database keeps what it held.

    use super::{GO_RECORD, json, palisade};
    use std::collections::HashMap;
    use std::net::SocketAddr;
    use std::path::Path;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const DEBIAN_TRACKER: &str = r#"{"bash": {"CVE-2099-2000": {"description": "bash flaw",
      "releases": {"bookworm": {"status": "resolved", "fixed_version": "5.2.15-2+deb12u1",
      "urgency": "medium"}}}}}"#;

    const ALPINE_SECDB: &str = r#"{"distroversion": "v3.19", "reponame": "main", "packages": [
      {"pkg": {"name": "openssl", "secfixes": {"3.1.4-r6": ["CVE-2099-3000"]}}}]}"#;

    /// What the test server answers on a path.
    #[derive(Clone)]
    enum Reply {
        /// 200 with the body and its length.
        Body(Vec<u8>),
        /// The status line (`404 Not Found`) and an empty body.
        Status(&'static str),
        /// 302 to the location.
        Redirect(String),
        /// 200 declaring `declared` bytes, sending the body (shorter), then closing.
        CutShort { declared: usize, body: Vec<u8> },
        /// 200 without a length: the body until the connection closes.
        Unsized(Vec<u8>),
        /// 200 with the body after the headers and a pause.
        Slow(Duration, Vec<u8>),
    }

    /// An HTTPS/1.1 server on 127.0.0.1, one thread, answering each path as it is told.
    struct TlsServer {
        address: SocketAddr,
        replies: Arc<Mutex<HashMap<String, Reply>>>,
    }

    impl TlsServer {
        fn start(config: Arc<tokio_rustls::rustls::ServerConfig>) -> TlsServer {
            // This hand-written server speaks HTTP/1.1 only.
            let mut config = (*config).clone();
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.set_nonblocking(true).unwrap();
            let address = listener.local_addr().unwrap();
            let replies = Arc::new(Mutex::new(HashMap::new()));
            let served = Arc::clone(&replies);
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                    while let Ok((stream, _)) = listener.accept().await {
                        let acceptor = acceptor.clone();
                        let replies = Arc::clone(&served);
                        tokio::spawn(async move {
                            // A client that refuses the certificate ends the handshake.
                            if let Ok(stream) = acceptor.accept(stream).await {
                                answer(stream, &replies).await;
                            }
                        });
                    }
                });
            });
            TlsServer { address, replies }
        }

        fn set(&self, path: &str, reply: Reply) {
            self.replies.lock().unwrap().insert(path.to_owned(), reply);
        }

        fn url(&self, path: &str) -> String {
            format!("https://{}{path}", self.address)
        }
    }

    /// Reads one request's head and writes the reply its path is given (404 for another path).
    async fn answer<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
        mut stream: S,
        replies: &Mutex<HashMap<String, Reply>>,
    ) {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && head.len() < 16 * 1024 {
            match stream.read(&mut byte).await {
                Ok(1) => head.push(byte[0]),
                _ => return,
            }
        }
        let head = String::from_utf8_lossy(&head);
        let path = head.split(' ').nth(1).unwrap_or_default().to_owned();
        let reply = replies
            .lock()
            .unwrap()
            .get(&path)
            .cloned()
            .unwrap_or(Reply::Status("404 Not Found"));
        let with_length = |status: &str, length: usize| {
            format!("HTTP/1.1 {status}\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n")
        };
        let (header, body, pause) = match reply {
            Reply::Body(body) => (with_length("200 OK", body.len()), body, None),
            Reply::Status(status) => (with_length(status, 0), Vec::new(), None),
            Reply::Redirect(location) => (
                format!(
                    "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                ),
                Vec::new(),
                None,
            ),
            Reply::CutShort { declared, body } => (with_length("200 OK", declared), body, None),
            Reply::Unsized(body) => (
                "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_owned(),
                body,
                None,
            ),
            Reply::Slow(pause, body) => (with_length("200 OK", body.len()), body, Some(pause)),
        };
        if stream.write_all(header.as_bytes()).await.is_err() {
            return;
        }
        let _ = stream.flush().await;
        if let Some(pause) = pause {
            tokio::time::sleep(pause).await;
        }
        let _ = stream.write_all(&body).await;
        // A TLS close_notify, then the TCP close.
        let _ = stream.shutdown().await;
    }

    /// `palisade db status --output json` of `db`.
    fn status(db: &Path) -> serde_json::Value {
        json(&palisade(db, &["status", "--output", "json"]))
    }

    /// Runs `db update` for `url` with `extra` arguments and checks that it failed with a
    /// message containing `expected`, and that the database is as it was.
    fn update_fails(db: &Path, url: &str, extra: &[&str], expected: &str) -> Duration {
        let before = status(db);
        let started = Instant::now();
        let mut args = vec!["update", "--url", url];
        args.extend_from_slice(extra);
        let output = palisade(db, &args);
        let took = started.elapsed();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{url} {extra:?}: {output:?}");
        assert!(
            stderr.contains(expected),
            "{url} {extra:?}: expected {expected:?} in {stderr}"
        );
        assert_eq!(status(db), before, "{url} {extra:?} changed the database");
        took
    }

    fn pki(dir: &Path, name: &str) -> palisade_server::tls::Pki {
        palisade_server::tls::ensure_pki(&dir.join(name), &["127.0.0.1".to_owned()]).unwrap()
    }

    fn path_arg(path: &Path) -> &str {
        path.to_str().unwrap()
    }

    #[test]
    fn update_over_https_trusts_the_given_ca_and_fails_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("vulndb.sqlite");
        let trusted = pki(dir.path(), "trusted");
        let other = pki(dir.path(), "other");
        let server = TlsServer::start(
            palisade_server::tls::server_config(&trusted.server_cert, &trusted.server_key).unwrap(),
        );
        server.set("/osv/GO-2099-0001.json", Reply::Body(GO_RECORD.into()));
        server.set("/debian/tracker.json", Reply::Body(DEBIAN_TRACKER.into()));
        server.set("/alpine/v3.19/main.json", Reply::Body(ALPINE_SECDB.into()));
        let ca = path_arg(&trusted.ca_cert);
        let feeds = [
            server.url("/osv/GO-2099-0001.json"),
            server.url("/debian/tracker.json"),
            server.url("/alpine/v3.19/main.json"),
        ];

        // The three feeds, trusted through the private CA.
        let mut args = vec!["update", "--ca-cert", ca];
        for url in &feeds {
            args.extend(["--url", url.as_str()]);
        }
        let output = palisade(&db, &args);
        assert!(output.status.success(), "{output:?}");
        let imported = status(&db);
        let sources: Vec<(&str, &str, u64)> = imported["sources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|source| {
                (
                    source["location"].as_str().unwrap(),
                    source["format"].as_str().unwrap(),
                    source["record_count"].as_u64().unwrap(),
                )
            })
            .collect();
        let mut expected = vec![
            (feeds[0].as_str(), "osv", 1),
            (feeds[1].as_str(), "debian-tracker", 1),
            (feeds[2].as_str(), "alpine-secdb", 1),
        ];
        expected.sort();
        let mut sorted = sources.clone();
        sorted.sort();
        assert_eq!(sorted, expected, "{imported:#}");
        assert_eq!(
            imported["ecosystems"],
            serde_json::json!([["Alpine:v3.19", 1], ["Debian:12", 1], ["Go", 1]]),
            "{imported:#}"
        );
        let matched = palisade(
            &db,
            &[
                "match",
                "--ecosystem",
                "Alpine:v3.19",
                "--package",
                "openssl",
                "--source-package",
                "openssl",
                "--version",
                "3.1.4-r5",
            ],
        );
        assert_eq!(matched.status.code(), Some(1), "{matched:?}");
        assert!(String::from_utf8_lossy(&matched.stdout).contains("CVE-2099-3000"));

        let go = feeds[0].as_str();
        // Not trusted: the built-in roots only, or another CA.
        update_fails(&db, go, &[], &format!("cannot download {go}: "));
        update_fails(&db, go, &[], "invalid peer certificate");
        update_fails(
            &db,
            go,
            &["--ca-cert", path_arg(&other.ca_cert)],
            "invalid peer certificate",
        );
        // A file that is no certificate is refused before anything is fetched.
        let not_pem = dir.path().join("not.pem");
        std::fs::write(&not_pem, "not a certificate").unwrap();
        update_fails(
            &db,
            go,
            &["--ca-cert", path_arg(&not_pem)],
            "holds no PEM certificate to trust",
        );

        // Each failure below is of a source imported above: it keeps its records.
        let ca_args = ["--ca-cert", ca];
        server.set(
            "/osv/GO-2099-0001.json",
            Reply::Redirect(format!("http://{}/osv/GO-2099-0001.json", server.address)),
        );
        update_fails(
            &db,
            go,
            &ca_args,
            "refusing a redirect from https to http://",
        );
        // A redirect within https is followed.
        server.set(
            "/osv/moved.json",
            Reply::Redirect(server.url("/osv/GO-2099-0001.json")),
        );
        server.set("/osv/GO-2099-0001.json", Reply::Body(GO_RECORD.into()));
        let moved = server.url("/osv/moved.json");
        let output = palisade(&db, &["update", "--ca-cert", ca, "--url", &moved]);
        assert!(output.status.success(), "{output:?}");
        assert!(
            String::from_utf8_lossy(&output.stdout).contains(&format!("{moved}: 1 records (osv)")),
            "{output:?}"
        );

        let large = GO_RECORD.as_bytes().repeat(4);
        let limit = (GO_RECORD.len() * 2).to_string();
        let limit_args = ["--ca-cert", ca, "--max-bytes", limit.as_str()];
        server.set("/osv/GO-2099-0001.json", Reply::Body(large.clone()));
        update_fails(&db, go, &limit_args, "over the limit of");
        // Without a declared length, the limit is checked while the body streams in.
        server.set("/osv/GO-2099-0001.json", Reply::Unsized(large));
        update_fails(&db, go, &limit_args, "over the limit of");

        server.set(
            "/osv/GO-2099-0001.json",
            Reply::CutShort {
                declared: GO_RECORD.len(),
                body: GO_RECORD.as_bytes()[..GO_RECORD.len() / 2].to_vec(),
            },
        );
        update_fails(
            &db,
            go,
            &ca_args,
            "end of file before message length reached",
        );

        server.set(
            "/osv/GO-2099-0001.json",
            Reply::Slow(Duration::from_secs(20), GO_RECORD.into()),
        );
        let took = update_fails(&db, go, &["--ca-cert", ca, "--timeout", "2"], "timed out");
        assert!(
            took < Duration::from_secs(10),
            "a 2 s limit took {took:?} to stop the download"
        );

        server.set("/osv/GO-2099-0001.json", Reply::Status("404 Not Found"));
        update_fails(&db, go, &ca_args, "HTTP status 404 Not Found");
        assert_eq!(
            status(&db)["sources"]
                .as_array()
                .unwrap()
                .iter()
                .find(|source| source["location"] == go)
                .unwrap()["record_count"],
            1
        );
    }
}
