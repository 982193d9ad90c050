//! Loading manifests: directories, multi-document YAML, JSON Lists, CronJobs, errors and limits.

use std::{fs, path::PathBuf};

use palisade_baseline::{
    ErrorKind, Level, MAX_FILE_SIZE, Version, check_workload, load_paths, load_str,
};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

#[test]
fn directory_walk_finds_every_workload_in_order() {
    let loaded = load_paths(&[fixtures().join("loader")]);
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    let found: Vec<(String, String, Option<String>)> = loaded
        .workloads
        .iter()
        .map(|workload| {
            (
                workload.kind.clone(),
                workload.name.clone(),
                workload.namespace.clone(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            ("CronJob".to_owned(), "backup".to_owned(), None),
            (
                "Pod".to_owned(),
                "one".to_owned(),
                Some("default".to_owned())
            ),
            ("DaemonSet".to_owned(), "agent".to_owned(), None),
            (
                "Deployment".to_owned(),
                "web".to_owned(),
                Some("shop".to_owned())
            ),
            ("Rollout".to_owned(), "canary".to_owned(), None),
            ("PodTemplate".to_owned(), "tpl".to_owned(), None),
        ]
    );
    // The Service has no pod template; the plain mapping is not a Kubernetes object.
    assert_eq!(loaded.n_other_objects, 1);
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    assert_eq!(loaded.warnings[0].line, 27);
    assert!(loaded.warnings[0].file.ends_with("multi.yaml"));
    assert!(
        loaded.warnings[0]
            .message
            .contains("not a Kubernetes object")
    );
}

#[test]
fn fields_keep_their_file_and_line() {
    let loaded = load_paths(&[fixtures().join("loader")]);
    let report = |kind: &str| {
        let workload = loaded
            .workloads
            .iter()
            .find(|workload| workload.kind == kind)
            .unwrap();
        check_workload(workload, Level::Baseline, Version::Latest)
    };
    let deployment = report("Deployment");
    assert_eq!(deployment.line, 3);
    let privileged = deployment
        .findings
        .iter()
        .find(|finding| finding.id == "PAL-K8S-001")
        .unwrap();
    assert_eq!(
        privileged.evidence.path,
        "spec.template.spec.containers[0].securityContext.privileged"
    );
    assert_eq!(privileged.evidence.line, 18);
    assert!(privileged.evidence.file.ends_with("multi.yaml"));
    assert_eq!(deployment.pss.violations[0].check, "privileged");
    assert_eq!(deployment.pss.violations[0].line, 18);

    let cron_job = report("CronJob");
    let socket = cron_job
        .findings
        .iter()
        .find(|finding| finding.id == "PAL-K8S-006")
        .unwrap();
    assert_eq!(
        socket.evidence.path,
        "spec.jobTemplate.spec.template.spec.volumes[0].hostPath.path"
    );
    assert_eq!(
        (socket.evidence.value.as_str(), socket.evidence.line),
        ("/var/run/docker.sock", 18)
    );
    assert_eq!(cron_job.pss.violations[0].check, "hostPathVolumes");

    let daemon_set = report("DaemonSet");
    assert_eq!(
        daemon_set.pss.violations[0].message,
        "host namespaces (hostPID=true)"
    );
    let host_pid = daemon_set
        .findings
        .iter()
        .find(|finding| finding.id == "PAL-K8S-004")
        .unwrap();
    assert_eq!(host_pid.evidence.line, 18);
    assert!(host_pid.evidence.file.ends_with("list.json"));

    let template = report("PodTemplate");
    assert_eq!(template.pss.violations[0].check, "appArmorProfile");
    let rollout = report("Rollout");
    assert_eq!(rollout.pss.violations[0].check, "hostPorts");
}

#[test]
fn malformed_yaml_names_file_line_and_column() {
    let path = fixtures().join("malformed.yaml");
    let loaded = load_paths(&[&path]);
    assert!(loaded.workloads.is_empty());
    assert_eq!(loaded.errors.len(), 1);
    let error = &loaded.errors[0];
    assert_eq!(error.kind(), ErrorKind::Syntax);
    let (line, column) = error.location().unwrap();
    assert_eq!(line, 9, "{error}");
    assert!(column >= 1);
    let message = error.to_string();
    assert!(
        message.starts_with(&format!("{}:9:{column}: invalid YAML", path.display())),
        "{message}"
    );
}

#[test]
fn other_files_still_load_when_one_is_broken() {
    let loaded = load_paths(&[
        fixtures().join("malformed.yaml"),
        fixtures().join("loader/cronjob.yml"),
    ]);
    assert_eq!(loaded.errors.len(), 1);
    assert_eq!(loaded.workloads.len(), 1);
}

#[test]
fn missing_paths_and_huge_files_are_errors() {
    let loaded = load_paths(&[fixtures().join("does-not-exist.yaml")]);
    assert_eq!(loaded.errors[0].kind(), ErrorKind::Io);

    let dir = tempfile::tempdir().unwrap();
    let huge = dir.path().join("huge.yaml");
    let file = fs::File::create(&huge).unwrap();
    file.set_len(MAX_FILE_SIZE + 1).unwrap();
    let loaded = load_paths(&[&huge]);
    assert_eq!(loaded.errors[0].kind(), ErrorKind::TooLarge);
    assert!(
        loaded.errors[0].to_string().contains("too large"),
        "{}",
        loaded.errors[0]
    );

    let binary = dir.path().join("binary.yaml");
    fs::write(&binary, [0xff, 0xfe, 0x00, 0x41]).unwrap();
    assert_eq!(load_paths(&[&binary]).errors[0].kind(), ErrorKind::Encoding);
}

#[test]
fn hostile_inputs_do_not_panic() {
    let deep_flow = format!("a: {}{}", "[".repeat(100_000), "]".repeat(100_000));
    let loaded = load_str("deep.yaml".as_ref(), &deep_flow);
    assert_eq!(loaded.errors[0].kind(), ErrorKind::Syntax);

    let laughs = "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n";
    let loaded = load_str("laughs.yaml".as_ref(), laughs);
    assert_eq!(loaded.errors.len(), 1, "alias expansion must be bounded");

    for text in [
        "",
        "---\n---\n",
        "~",
        "[1, 2]",
        "kind: Pod",
        "kind: Pod\napiVersion: v1\nspec: 3\n",
        "kind: Deployment\napiVersion: apps/v1\nspec: {template: {spec: {containers: 5}}}\n",
        "kind: Pod\napiVersion: v1\nspec: {containers: [7, {securityContext: 1}], volumes: [1], securityContext: [] }\n",
        "kind: List\napiVersion: v1\nitems: [1, {kind: List, apiVersion: v1, items: 3}]\n",
        "kind: Pod\napiVersion: v1\nmetadata: {annotations: {container.apparmor.security.beta.kubernetes.io/a: [1]}}\nspec: {containers: [{name: a, ports: [{hostPort: x}]}]}\n",
        "{\"kind\": \"Pod\", \"apiVersion\": \"v1\", \"spec\": {\"containers\": [{\"name\": \"\\u0000\"}]}}",
        "a: b: c",
        "- [",
        "\"\\",
        "? [a]\n: b\n",
        "!!binary xyz",
        "kind: !!str Pod\napiVersion: v1\nspec: {}\n",
    ] {
        let loaded = load_str("odd.yaml".as_ref(), text);
        for workload in &loaded.workloads {
            for level in [Level::Baseline, Level::Restricted] {
                let report = check_workload(workload, level, Version::Latest);
                assert_eq!(report.pss.allowed, report.pss.violations.is_empty());
            }
        }
    }
}

#[test]
fn big_json_lists_parse_fast() {
    let item = r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web-N","namespace":"shop"},"spec":{"replicas":3,"template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"app","image":"nginx:1.27","ports":[{"containerPort":80}],"resources":{"limits":{"cpu":"1","memory":"1Gi"}},"env":[{"name":"A","value":"1"},{"name":"B","value":"2"}]}]}}}}"#;
    let n_items = 20_000;
    let items: Vec<String> = (0..n_items)
        .map(|item_idx| item.replace("web-N", &format!("web-{item_idx}")))
        .collect();
    let text = format!(
        "{{\"apiVersion\":\"v1\",\"kind\":\"List\",\"items\":[\n{}\n]}}",
        items.join(",\n")
    );
    assert!(text.len() > 7_000_000);
    let started = std::time::Instant::now();
    let loaded = load_str("big.json".as_ref(), &text);
    let elapsed = started.elapsed();
    assert_eq!(loaded.workloads.len(), n_items);
    assert_eq!(
        loaded.workloads[n_items - 1].name,
        format!("web-{}", n_items - 1)
    );
    assert_eq!(loaded.workloads[n_items - 1].line, n_items + 1);
    // Generous: debug builds are slow; a release build parses this in well under a second.
    assert!(
        elapsed.as_secs() < 30,
        "{} MB took {elapsed:?}",
        text.len() / 1_000_000
    );
    println!(
        "parsed {} MB of JSON in {elapsed:?}",
        text.len() / 1_000_000
    );
}
