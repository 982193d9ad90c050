//! The console in headless Chromium (thirtyfour + the Debian chromedriver): log in, open each
//! view, whitelist an alert through the dialog, ignore and undo, details and diagnosis,
//! verify fix, fix (refused by a real agent without `--enable-fix`), a baseline exception and a
//! firewall rule edit. Screenshots go to the test's artifact directory, printed at the start;
//! when a step fails, the page's screenshot and source, its URL and chromedriver's log (every
//! command and answer) are saved there too and their paths printed.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use palisade_model::{
    AffectedAsset, AlertDetails, Details, FindingKind, FindingReport, ProcessInfo, Role, Severity,
    Status, Timestamp, VulnerabilityDetails,
};
use palisade_notify::Notifier;
use palisade_server::{AppState, issue_token, load_demo, router, serve};
use palisade_store::{FindingQuery, SqliteStore, Store};
use thirtyfour::prelude::*;
use uuid::Uuid;

/// chromedriver, killed when the test ends however it ends.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts chromedriver on a port it picks itself (`--port=0`) and returns its URL once it says
/// it listens there: a port picked by the test and handed over could be taken meanwhile by
/// another test's chromedriver or Chromium. Its log (every command and answer) goes to `log`.
fn start_chromedriver(log: &Path) -> (Driver, String) {
    let mut child = Command::new("chromedriver")
        .arg("--port=0")
        .arg(format!("--log-path={}", log.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let stdout = child.stdout.take().unwrap();
    let driver = Driver(child);
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    // Reads to the end, so that chromedriver never blocks on a full pipe.
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(port) = line
                .strip_prefix("ChromeDriver was started successfully on port ")
                .and_then(|rest| rest.trim_end_matches('.').parse::<u16>().ok())
            {
                let _ = port_tx.send(port);
            }
        }
    });
    let port = port_rx
        .recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|_| {
            panic!(
                "chromedriver did not say it listens within 20 s; its log: {}",
                log.display()
            )
        });
    (driver, format!("http://127.0.0.1:{port}"))
}

/// Clicks `element`, which submits a form or follows a link, and waits until the browser has
/// left the page it was on. A click returns before the navigation it starts is under way, so
/// a check right after it can read the old page: with another Chromium running, the URL read
/// after logging in was still the login page's.
async fn click_to_load(driver: &WebDriver, element: WebElement) -> WebDriverResult<()> {
    let page = driver.find(By::Tag("html")).await?;
    element.click().await?;
    page.wait_until()
        .wait(Duration::from_secs(20), Duration::from_millis(50))
        .stale()
        .await
}

/// Saves what a failed step saw to `dir`: the page's screenshot and source, its URL, and
/// chromedriver's log; and says where.
async fn save_failure(driver: &WebDriver, dir: &Path, chromedriver_log: &Path) {
    let url = driver
        .current_url()
        .await
        .map_or_else(|error| format!("unknown ({error})"), |url| url.to_string());
    eprintln!("the browser was at {url}");
    let screenshot = dir.join("failure.png");
    match driver.screenshot(&screenshot).await {
        Ok(()) => eprintln!("its screenshot: {}", screenshot.display()),
        Err(error) => eprintln!("no screenshot: {error}"),
    }
    let source = dir.join("failure.html");
    match driver.source().await {
        Ok(html) => {
            std::fs::write(&source, html).unwrap();
            eprintln!("its source: {}", source.display());
        }
        Err(error) => eprintln!("no page source: {error}"),
    }
    let log = dir.join("failure-chromedriver.log");
    std::fs::copy(chromedriver_log, &log).unwrap();
    eprintln!("chromedriver's log: {}", log.display());
}

fn shell_alert(pod: &str) -> FindingReport {
    FindingReport {
        id: Uuid::new_v4(),
        observed_at: Timestamp::now(),
        severity: Severity::High,
        rule: "Terminal shell in container".into(),
        title: format!("browser test shell in {pod}"),
        asset: AffectedAsset {
            cluster: "demo".into(),
            namespace: Some("e2e".into()),
            pod: Some(pod.into()),
            container_name: Some("app".into()),
            ..Default::default()
        },
        details: Details::Alert(AlertDetails {
            process: ProcessInfo {
                pid: 7,
                ppid: 1,
                exe: "/usr/bin/e2e-shell".into(),
                cmdline: "e2e-shell -i".into(),
                user: "root".into(),
            },
            ..Default::default()
        }),
        demo: false,
    }
}

async fn screenshot(driver: &WebDriver, dir: &Path, name: &str) {
    driver
        .screenshot(&dir.join(format!("{name}.png")))
        .await
        .unwrap();
}

/// Checks the page as it is shown (or its open dialog alone, the page behind being inert):
/// every visible form control has a label; every visible text has WCAG AA contrast against
/// the background it is drawn on (4.5:1, large text 3:1); every focusable element's focus
/// outline has 3:1 against the background around it; and nothing is wider than the window
/// (a laptop's 1280 pixels in this test). Returns what fails, one line each.
const ACCESSIBILITY_AUDIT: &str = r##"
const root = document.querySelector("dialog[open]") || document.body;
const problems = [];
const rgba = (text) => {
  const match = /rgba?\(([^)]*)\)/.exec(text);
  if (!match) { return null; }
  const parts = match[1].split(",").map((part) => parseFloat(part));
  return [parts[0], parts[1], parts[2], parts.length > 3 ? parts[3] : 1];
};
const over = (top, below) => [0, 1, 2].map((i) => top[i] * top[3] + below[i] * (1 - top[3]));
const background = (element) => {
  const layers = [];
  for (let e = element; e; e = e.parentElement) {
    const color = rgba(getComputedStyle(e).backgroundColor);
    if (color && color[3] > 0) {
      layers.push(color);
      if (color[3] >= 1) { break; }
    }
  }
  return layers.reverse().reduce((below, top) => over(top, below), [255, 255, 255]);
};
const luminance = (rgb) => {
  const linear = rgb.map((c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4); });
  return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2];
};
const contrast = (a, b) => {
  const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p);
  return (x + 0.05) / (y + 0.05);
};
const name = (element) => element.tagName.toLowerCase() + (element.id ? "#" + element.id : "") +
  (element.className && typeof element.className === "string" ? "." + element.className.trim().replace(/\s+/g, ".") : "");
const shown = (element) => element.checkVisibility({ visibilityProperty: true, opacityProperty: true }) &&
  !element.closest(".visually-hidden");

for (const control of root.querySelectorAll("input, select, textarea")) {
  if (control.type === "hidden" || !shown(control)) { continue; }
  if (control.labels.length === 0 && !control.getAttribute("aria-label") && !control.getAttribute("aria-labelledby")) {
    problems.push("no label: " + control.outerHTML.slice(0, 120));
  }
}

const checked = new Set();
const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
for (let node = walker.nextNode(); node; node = walker.nextNode()) {
  const element = node.parentElement;
  if (!/\S/.test(node.textContent) || checked.has(element)) { continue; }
  checked.add(element);
  if (element.closest("svg, option, script, style, template") || !shown(element)) { continue; }
  const style = getComputedStyle(element);
  const color = rgba(style.color);
  if (!color) {
    problems.push("colour not in rgb(): " + style.color + " on " + name(element));
    continue;
  }
  const behind = background(element);
  const ratio = contrast(over(color, behind), behind);
  const size = parseFloat(style.fontSize);
  const large = size >= 24 || (parseInt(style.fontWeight, 10) >= 700 && size >= 18.66);
  if (ratio < (large ? 3 : 4.5)) {
    problems.push("contrast " + ratio.toFixed(2) + ": " + name(element) + " " + JSON.stringify(node.textContent.trim().slice(0, 40)));
  }
}

const before = document.activeElement;
const focusable = root.querySelectorAll("a[href], button, input:not([type=hidden]), select, textarea, pre[tabindex]");
for (const element of focusable) {
  if (!shown(element) || element.disabled) { continue; }
  element.focus({ preventScroll: true });
  if (document.activeElement !== element) { continue; }
  const style = getComputedStyle(element);
  const around = background(element.parentElement);
  const outline = rgba(style.outlineColor);
  const ratio = style.outlineStyle === "none" || !outline ? 0 : contrast(over(outline, around), around);
  if (ratio < 3) {
    problems.push("focus outline " + ratio.toFixed(2) + ": " + name(element));
  }
}
if (before && before.focus) { before.focus({ preventScroll: true }); }

const page = document.documentElement;
if (page.scrollWidth > page.clientWidth + 1) {
  const wide = [...document.querySelectorAll("body *")]
    .filter((element) => element.getBoundingClientRect().right > page.clientWidth + 1)
    .slice(-3).map(name).join(", ");
  problems.push("wider than the window: " + page.scrollWidth + " > " + page.clientWidth + " px (" + wide + ")");
}
return problems;
"##;

/// Runs [`ACCESSIBILITY_AUDIT`] on the page shown and fails with what it found.
async fn assert_accessible(driver: &WebDriver, view: &str) -> WebDriverResult<()> {
    let problems: Vec<String> = driver
        .execute(ACCESSIBILITY_AUDIT, Vec::<serde_json::Value>::new())
        .await?
        .convert()?;
    assert!(
        problems.is_empty(),
        "{view} is not accessible:\n{}",
        problems.join("\n")
    );
    Ok(())
}

/// Whether the element with this id is the focused one, or inside it.
async fn focus_is_in(driver: &WebDriver, id: &str) -> WebDriverResult<bool> {
    driver
        .execute(
            "return document.getElementById(arguments[0]).contains(document.activeElement);",
            vec![serde_json::Value::from(id)],
        )
        .await?
        .convert()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_in_a_real_browser() {
    let chromium =
        Path::new("/usr/bin/chromium").exists() && Path::new("/usr/bin/chromedriver").exists();
    if !palisade_testdata::capability(
        "Chromium and chromedriver (Debian chromium, chromium-driver)",
        chromium,
    ) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let artifacts: PathBuf = std::env::var_os("PALISADE_TEST_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("palisade-console-screenshots"));
    std::fs::create_dir_all(&artifacts).unwrap();
    println!("screenshots: {}", artifacts.display());

    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&work.path().join("palisade.db"))
            .await
            .unwrap(),
    );
    load_demo(store.as_ref()).await.unwrap();
    let state = AppState::new(store.clone(), Notifier::start(Default::default()))
        .await
        .unwrap();
    state
        .store
        .ingest(&[shell_alert("e2e-1")], &state.policy())
        .await
        .unwrap();
    state
        .store
        .ingest(&[host_vulnerability()], &state.policy())
        .await
        .unwrap();
    let admin = issue_token("e2e-admin", Role::Admin, "test", None)
        .await
        .unwrap();
    store.insert_token(&admin.record, None).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, router(state.clone()), None, async {
        let _ = stopped.await;
    }));
    let (stop_agent, agent) = start_agent(&base, store.as_ref(), work.path()).await;

    let chromedriver_log = work.path().join("chromedriver.log");
    let (_chromedriver, driver_url) = start_chromedriver(&chromedriver_log);
    let mut caps = DesiredCapabilities::chrome();
    caps.set_binary("/usr/bin/chromium").unwrap();
    for arg in [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,800",
    ] {
        caps.add_arg(arg).unwrap();
    }
    caps.add_arg(&format!(
        "--user-data-dir={}",
        work.path().join("chromium").display()
    ))
    .unwrap();
    let driver = WebDriver::new(&driver_url, caps).await.unwrap();
    driver
        .set_implicit_wait_timeout(Duration::from_secs(5))
        .await
        .unwrap();
    // In its own task, so that a failed assertion too leaves the browser open for
    // `save_failure`.
    let steps = tokio::spawn({
        let (driver, base, state, artifacts) = (
            driver.clone(),
            base.clone(),
            state.clone(),
            artifacts.clone(),
        );
        async move { run(&driver, &base, &admin.token, &state, &artifacts).await }
    })
    .await;
    if !matches!(steps, Ok(Ok(()))) {
        save_failure(&driver, &artifacts, &chromedriver_log).await;
    }
    driver.quit().await.unwrap();
    let _ = stop_agent.send(());
    let _ = agent.await;
    let _ = stop.send(());
    let _ = server.await;
    match steps {
        Ok(result) => result.unwrap(),
        Err(panicked) => std::panic::resume_unwind(panicked.into_panic()),
    }
}

/// A vulnerable package on the host `e2e-node`, which the test's agent reports.
fn host_vulnerability() -> FindingReport {
    FindingReport {
        id: Uuid::new_v4(),
        observed_at: Timestamp::now(),
        severity: Severity::High,
        rule: "CVE-2099-4242".into(),
        title: "CVE-2099-4242 in zlib1g".into(),
        asset: AffectedAsset {
            cluster: "demo".into(),
            node: Some("e2e-node".into()),
            ..Default::default()
        },
        details: Details::Vulnerability(VulnerabilityDetails {
            package: "zlib1g".into(),
            ecosystem: "Debian:12".into(),
            installed_version: "1:1.2.13.dfsg-1".into(),
            fixed_versions: vec!["1:1.2.13.dfsg-2".into()],
            fix: "apt-get install --only-upgrade zlib1g=1:1.2.13.dfsg-2".into(),
            ..Default::default()
        }),
        demo: false,
    }
}

/// The real agent as node `e2e-node` of cluster `demo`, with its defaults: no scheduled
/// scans here, and package upgrades disabled (not started with `--enable-fix`).
async fn start_agent(
    base: &str,
    store: &dyn Store,
    work: &Path,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), palisade_agent::RunError>>,
) {
    let data_dir = work.join("agent");
    std::fs::create_dir_all(&data_dir).unwrap();
    let mut config =
        palisade_agent::AgentConfig::new(base.to_owned(), &data_dir, "demo", "e2e-node");
    config.join_token = Some(
        palisade_server::issue_join_token(store, "browser test agent")
            .await
            .unwrap(),
    );
    config.scans.enabled = false;
    let outbox = palisade_agent::Outbox::open(&data_dir).await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let agent = tokio::spawn(async move {
        let status = palisade_agent::AgentStatus::default();
        palisade_agent::run(config, outbox, &status, async {
            let _ = stopped.await;
        })
        .await
    });
    (stop, agent)
}

async fn run(
    driver: &WebDriver,
    base: &str,
    token: &str,
    state: &AppState,
    shots: &Path,
) -> WebDriverResult<()> {
    // Log in.
    driver
        .goto(format!("{base}/console/clusters/demo/alerts"))
        .await?;
    assert!(
        driver
            .current_url()
            .await?
            .as_str()
            .contains("/console/login")
    );
    screenshot(driver, shots, "01-login").await;
    assert_accessible(driver, "the login page").await?;
    driver.find(By::Id("token")).await?.send_keys(token).await?;
    click_to_load(driver, driver.find(By::Id("login")).await?).await?;
    assert!(
        driver
            .current_url()
            .await?
            .as_str()
            .ends_with("/console/clusters/demo/alerts")
    );
    assert!(driver.source().await?.contains("Demo data."));
    screenshot(driver, shots, "02-alerts").await;
    assert_accessible(driver, "the alerts view").await?;
    driver.goto(format!("{base}/console/clusters")).await?;
    assert_accessible(driver, "the clusters page").await?;

    // Each view.
    for (section, shot) in [
        ("vulnerabilities", "03-vulnerabilities"),
        ("baseline-risks", "04-baseline"),
        ("firewall-alerts", "05-firewall"),
    ] {
        driver
            .goto(format!("{base}/console/clusters/demo/{section}"))
            .await?;
        driver.find(By::Css("svg.chart")).await?;
        driver.find(By::Id("count-critical")).await?;
        screenshot(driver, shots, shot).await;
        assert_accessible(driver, section).await?;
    }

    // A grouped table sorts by its column headers: by id from A, then the other way.
    driver
        .goto(format!(
            "{base}/console/clusters/demo/vulnerabilities?status=any"
        ))
        .await?;
    let group_ids = || async {
        let mut ids = Vec::new();
        for link in driver
            .find_all(By::Css("#findings tbody tr td:nth-child(2) a"))
            .await?
        {
            ids.push(link.text().await?);
        }
        WebDriverResult::Ok(ids)
    };
    let most_severe_first = group_ids().await?;
    let mut by_id = most_severe_first.clone();
    by_id.sort();
    assert!(
        by_id.len() > 2 && by_id != most_severe_first,
        "{most_severe_first:?}"
    );
    click_to_load(driver, driver.find(By::Id("sort-rule")).await?).await?;
    let url = driver.current_url().await?.to_string();
    assert!(
        url.contains("sort=rule") && url.contains("order=asc") && url.contains("status=any"),
        "{url}"
    );
    assert_eq!(group_ids().await?, by_id, "{url}");
    driver
        .find(By::Css("th[aria-sort=ascending] #sort-rule"))
        .await?;
    screenshot(driver, shots, "03b-vulnerabilities-by-id").await;
    click_to_load(driver, driver.find(By::Id("sort-rule")).await?).await?;
    by_id.reverse();
    assert_eq!(
        group_ids().await?,
        by_id,
        "the second click sorts the other way"
    );
    driver
        .find(By::Css("th[aria-sort=descending] #sort-rule"))
        .await?;

    // Whitelist through the dialog: the live preview, then save.
    let e2e = state
        .store
        .list_findings(
            FindingKind::Alert,
            &FindingQuery {
                text: Some("browser test shell".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .items
        .remove(0);
    driver
        .goto(format!("{base}/console/clusters/demo/alerts"))
        .await?;
    let handle_link = driver
        .find(By::Css(format!("#finding-{} a.handle", e2e.id)))
        .await?;

    // The dialog from the keyboard: Enter on the link opens it with focus inside; Tab and
    // Shift+Tab stay inside; Escape closes it and focus is back on the link.
    handle_link.focus().await?;
    driver
        .action_chain()
        .send_keys(Key::Enter)
        .perform()
        .await?;
    let dialog = driver.find(By::Id("dialog")).await?;
    dialog.wait_until().displayed().await?;
    assert!(
        focus_is_in(driver, "dialog").await?,
        "the open dialog has the focus"
    );
    assert_accessible(driver, "the handling dialog").await?;
    for step in 0..24 {
        driver.action_chain().send_keys(Key::Tab).perform().await?;
        assert!(
            focus_is_in(driver, "dialog").await?,
            "Tab {step} left the dialog"
        );
    }
    for step in 0..24 {
        driver
            .action_chain()
            .key_down(Key::Shift)
            .send_keys(Key::Tab)
            .key_up(Key::Shift)
            .perform()
            .await?;
        assert!(
            focus_is_in(driver, "dialog").await?,
            "Shift+Tab {step} left the dialog"
        );
    }
    driver
        .action_chain()
        .send_keys(Key::Escape)
        .perform()
        .await?;
    dialog.wait_until().not_displayed().await?;
    let focused = driver.active_element().await?;
    assert_eq!(
        focused.element_id(),
        handle_link.element_id(),
        "closing the dialog gives focus back to its link"
    );

    handle_link.click().await?;
    dialog.wait_until().displayed().await?;
    let preview = driver.find(By::Id("preview")).await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !preview.text().await?.contains("would close 1 open finding") {
        assert!(
            Instant::now() < deadline,
            "the preview count did not appear: {:?}",
            preview.text().await?
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    screenshot(driver, shots, "06-whitelist-dialog").await;
    click_to_load(driver, driver.find(By::Id("save-whitelist")).await?).await?;
    driver.find(By::Css(".notice")).await?;
    assert!(driver.source().await?.contains("closed 1 open finding"));
    assert!(
        driver
            .find_all(By::Id(format!("finding-{}", e2e.id)))
            .await?
            .is_empty(),
        "the alert left the open list"
    );
    assert_eq!(state.store.whitelist_rules().await.unwrap().len(), 1);
    let outcome = state
        .store
        .ingest(&[shell_alert("e2e-1")], &state.policy())
        .await
        .unwrap();
    assert_eq!(outcome.suppressed, 1, "a new matching alert is suppressed");

    // Ignore and undo.
    let target = state
        .store
        .list_findings(
            FindingKind::Alert,
            &FindingQuery {
                rule: Some("Clear log activities".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .items
        .remove(0);
    driver
        .goto(format!(
            "{base}/console/clusters/demo/alerts/{}/handle",
            target.id
        ))
        .await?;
    click_to_load(driver, driver.find(By::Id("ignore")).await?).await?;
    driver.find(By::Id("undo-ignore")).await?;
    assert_eq!(
        state
            .store
            .get_finding(FindingKind::Alert, target.id)
            .await
            .unwrap()
            .unwrap()
            .status,
        Status::Ignored
    );
    screenshot(driver, shots, "07-ignored").await;
    click_to_load(driver, driver.find(By::Id("undo-ignore")).await?).await?;
    driver.find(By::Css(".notice")).await?;
    assert_eq!(
        state
            .store
            .get_finding(FindingKind::Alert, target.id)
            .await
            .unwrap()
            .unwrap()
            .status,
        Status::Open
    );

    // Details and the diagnosis tab.
    let dropper = state
        .store
        .list_findings(
            FindingKind::Alert,
            &FindingQuery {
                rule: Some("Drop and execute new binary in container".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .items
        .remove(0);
    driver
        .goto(format!(
            "{base}/console/clusters/demo/alerts/{}",
            dropper.id
        ))
        .await?;
    assert!(driver.source().await?.contains("T1204.002"));
    screenshot(driver, shots, "08-details").await;
    assert_accessible(driver, "an alert's details").await?;
    click_to_load(driver, driver.find(By::Id("tab-diagnosis")).await?).await?;
    let ancestry = driver.find(By::Id("ancestry")).await?;
    assert!(ancestry.text().await?.contains("/usr/sbin/nginx"));
    assert!(
        driver
            .find(By::Id("raw-event"))
            .await?
            .text()
            .await?
            .contains("\"evt.type\": \"execve\"")
    );
    assert!(
        driver
            .find(By::Css("button.copy"))
            .await?
            .is_displayed()
            .await?,
        "copy button shown with scripts"
    );
    screenshot(driver, shots, "09-diagnosis").await;
    assert_accessible(driver, "an alert's diagnosis").await?;

    // Verify fix from the pending list.
    driver
        .goto(format!(
            "{base}/console/clusters/demo/vulnerabilities/group?rule=CVE-2024-3094"
        ))
        .await?;
    click_to_load(driver, driver.find(By::Css("button.verify-fix")).await?).await?;
    driver.find(By::Css(".notice")).await?;
    let verification = driver
        .find(By::Css("td.verification"))
        .await?
        .text()
        .await?;
    assert!(verification.starts_with("pending"), "{verification}");
    screenshot(driver, shots, "10-verify-fix").await;
    assert_accessible(driver, "a vulnerability's pending list").await?;

    // Fix a host's package from the pending list: the agent on the node was not started with
    // --enable-fix, and the finding page shows its refusal.
    driver
        .goto(format!(
            "{base}/console/clusters/demo/vulnerabilities/group?rule=CVE-2099-4242"
        ))
        .await?;
    click_to_load(driver, driver.find(By::Css("button.fix")).await?).await?;
    let notice = driver.find(By::Css(".notice")).await?.text().await?;
    assert!(notice.contains("Fix queued"), "{notice}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let refused = loop {
        if let Some(task) = driver
            .find_all(By::Css("li.fix-failed"))
            .await?
            .into_iter()
            .next()
        {
            break task;
        }
        assert!(
            Instant::now() < deadline,
            "the agent did not report the upgrade within 60 s: {}",
            driver.find(By::Id("fix-tasks")).await?.text().await?
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        driver.refresh().await?;
    };
    refused.scroll_into_view().await?;
    let refused = refused.text().await?;
    assert!(refused.contains("palisade agent --enable-fix"), "{refused}");
    assert!(refused.contains("zlib1g to 1:1.2.13.dfsg-2"), "{refused}");
    screenshot(driver, shots, "10b-fix-refused").await;

    // A baseline exception.
    driver
        .goto(format!(
            "{base}/console/clusters/demo/baseline-risks/group?rule=PAL-K8S-001"
        ))
        .await?;
    driver
        .find(By::Id("exc-reason"))
        .await?
        .send_keys("sized by the autoscaler")
        .await?;
    click_to_load(driver, driver.find(By::Id("add-exception")).await?).await?;
    let notice = driver.find(By::Css(".notice")).await?.text().await?;
    assert!(notice.contains("covers 2 open risks"), "{notice}");
    screenshot(driver, shots, "11-exception").await;
    assert_accessible(driver, "a baseline check's failing assets").await?;

    // Edit the firewall rule that fired.
    driver
        .goto(format!("{base}/console/clusters/demo/firewall-alerts"))
        .await?;
    click_to_load(driver, driver.find(By::LinkText("Edit rule")).await?).await?;
    let priority = driver.find(By::Id("fr-priority")).await?;
    priority.clear().await?;
    priority.send_keys("7").await?;
    screenshot(driver, shots, "12-firewall-rule").await;
    assert_accessible(driver, "the firewall rule form").await?;
    click_to_load(driver, driver.find(By::Id("save-rule")).await?).await?;
    driver.find(By::Css(".notice")).await?;
    let rules = state.store.firewall_rules().await.unwrap();
    assert!(
        rules
            .iter()
            .any(|rule| rule.rule.priority == 7 && rule.updated_by == "e2e-admin")
    );

    // Live update: an alert ingested now appears without a reload, if the page's filters
    // select it. Both alerts come in one poll, so the other namespace's would be in the same
    // event; the browser's stream (the page's data-live URL as the browser decodes it) carries
    // the namespace filter.
    driver
        .goto(format!("{base}/console/clusters/demo/alerts?namespace=e2e"))
        .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut live = shell_alert("e2e-live");
    live.details = Details::Alert(AlertDetails {
        process: ProcessInfo {
            exe: "/bin/live".into(),
            ..Default::default()
        },
        ..Default::default()
    });
    let mut elsewhere = live.clone();
    elsewhere.id = Uuid::new_v4();
    elsewhere.asset.namespace = Some("e2e-other".into());
    let outcome = state
        .store
        .ingest(&[live, elsewhere], &state.policy())
        .await
        .unwrap();
    assert_eq!(outcome.created_ids.len(), 2, "two new alerts");
    let (mut id, mut elsewhere_id) = (outcome.created_ids[0].1, outcome.created_ids[1].1);
    let first = state
        .store
        .get_finding(FindingKind::Alert, id)
        .await
        .unwrap()
        .unwrap();
    if first.asset.namespace.as_deref() != Some("e2e") {
        std::mem::swap(&mut id, &mut elsewhere_id);
    }
    driver
        .find(By::Id(format!("finding-{id}")))
        .await?
        .wait_until()
        .displayed()
        .await?;
    assert!(
        driver
            .find_all(By::Id(format!("finding-{elsewhere_id}")))
            .await?
            .is_empty(),
        "the live stream sent an alert of another namespace to a namespace=e2e page"
    );
    screenshot(driver, shots, "13-live").await;

    // Paging: 60 alerts in a cluster of their own make a page of 50 and one of 10; "Next
    // page" keeps the sort and shows the other 10, "Previous page" the first 50 again.
    let now = Timestamp::now().millis();
    let paged: Vec<FindingReport> = (0..60)
        .map(|index| {
            let mut report = shell_alert(&format!("paging-{index}"));
            report.asset.cluster = "paging".into();
            report.observed_at = Timestamp(now - (60 - index) * 1_000);
            report
        })
        .collect();
    state.store.ingest(&paged, &state.policy()).await.unwrap();
    driver
        .goto(format!(
            "{base}/console/clusters/paging/alerts?sort=first_seen&order=asc"
        ))
        .await?;
    let row_ids = || async {
        let mut ids = Vec::new();
        for row in driver
            .find_all(By::Css("#findings tbody tr[data-id]"))
            .await?
        {
            ids.push(row.attr("data-id").await?.unwrap_or_default());
        }
        WebDriverResult::Ok(ids)
    };
    let first_page = row_ids().await?;
    assert_eq!(first_page.len(), 50);
    click_to_load(driver, driver.find(By::Id("next-page")).await?).await?;
    let url = driver.current_url().await?.to_string();
    assert!(
        url.contains("cursor=") && url.contains("sort=first_seen") && url.contains("order=asc"),
        "{url}"
    );
    let second_page = row_ids().await?;
    assert_eq!(second_page.len(), 10, "{url}");
    assert!(
        second_page.iter().all(|id| !first_page.contains(id)),
        "the next page shows other alerts"
    );
    assert!(driver.find_all(By::Id("next-page")).await?.is_empty());
    screenshot(driver, shots, "13b-next-page").await;
    click_to_load(driver, driver.find(By::Id("previous-page")).await?).await?;
    assert_eq!(
        row_ids().await?,
        first_page,
        "previous leads back to the first page"
    );

    // Audit log.
    driver.goto(format!("{base}/console/audit")).await?;
    let audit = driver.find(By::Id("audit")).await?.text().await?;
    for action in [
        "whitelist.create",
        "alert.ignore",
        "alert.unignore",
        "vulnerability.verify_fix",
        "agent.task.create",
        "exception.create",
        "firewall_rule.update",
    ] {
        assert!(audit.contains(action), "{action} in the audit log");
    }
    screenshot(driver, shots, "14-audit").await;
    assert_accessible(driver, "the audit log").await?;
    Ok(())
}
