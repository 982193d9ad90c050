//! `palisade server`: the server alone, for agents on other nodes.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::ExitCode,
    sync::Arc,
};

use anyhow::Context;
use palisade_notify::{Notifier, NotifyConfig};
use palisade_rules::RuleSet;
use palisade_server::{
    AdminToken, AgentBatchBudget, AppState, AuditRules, TaskLeaseLength, ensure_admin_token, tls,
};
use palisade_store::{SqliteStore, Store};

/// Arguments of `palisade server`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where the database (and generated TLS material) live.
    #[arg(long, env = "PALISADE_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub tls: TlsArgs,
    /// Notification settings (YAML or JSON: min_severity, sinks).
    #[arg(long, value_name = "FILE")]
    pub notify: Option<PathBuf>,
    /// Falco-format rules files for the Kubernetes audit webhook (its `k8s_audit` rules),
    /// loaded after Palisade's default rules; later files override earlier ones.
    #[arg(long = "rules", value_name = "FILE")]
    pub rules: Vec<PathBuf>,
    /// Do not load Palisade's default rules.
    #[arg(long)]
    pub no_default_rules: bool,
    #[command(flatten)]
    pub agents: AgentLinkArgs,
}

/// How the server serves its agents, shared by `server` and `up`.
#[derive(Debug, clap::Args)]
pub struct AgentLinkArgs {
    /// How long an agent's claim of a task holds without a heartbeat, in seconds (2 to
    /// 3600); a task whose agent froze or died is handed out again after it.
    #[arg(long, value_name = "SECS", default_value_t)]
    pub task_lease_secs: TaskLeaseLength,
    /// The most bytes of agent batches the server holds at once (being received, decoded or
    /// stored), in MiB (64 to 1048576); a batch beyond it is deferred (503 with Retry-After)
    /// and sent again. One agent holds at most 64 MiB of it, and always leaves 32 MiB (the
    /// largest batch) to the others.
    #[arg(long, value_name = "MIB", default_value_t)]
    pub agent_batch_budget_mib: AgentBatchBudget,
}

/// TLS choices shared by `server` and `up`.
#[derive(Debug, clap::Args)]
pub struct TlsArgs {
    /// Server certificate (PEM). Without it, a private CA and certificate are generated under
    /// the data directory.
    #[arg(long, requires = "tls_key", conflicts_with = "insecure_http")]
    pub tls_cert: Option<PathBuf>,
    /// Server private key (PEM).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve plain HTTP (only sensible on loopback or behind a TLS-terminating proxy).
    #[arg(long)]
    pub insecure_http: bool,
}

/// A started server.
pub struct Running {
    /// The base URL clients use.
    pub url: String,
    /// The CA certificate clients must trust, when the server generated its own.
    pub ca_cert: Option<PathBuf>,
    /// The state (for the local agent of `up`).
    pub store: Arc<dyn Store>,
    /// What happened to the admin token.
    pub admin_token: AdminToken,
    /// The serving task.
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Opens the store, bootstraps the admin token, and starts serving until `shutdown`.
pub async fn start(
    data_dir: &Path,
    listen: SocketAddr,
    tls_args: &TlsArgs,
    notify: Option<&Path>,
    audit_rules: RuleSet,
    agents: &AgentLinkArgs,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Running> {
    let db_path = data_dir.join("palisade.db");
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&db_path)
            .await
            .with_context(|| format!("cannot open the database {}", db_path.display()))?,
    );
    let from_env = std::env::var("PALISADE_ADMIN_TOKEN")
        .ok()
        .filter(|token| !token.is_empty());
    let admin_token = ensure_admin_token(store.as_ref(), from_env.as_deref())
        .await
        .map_err(|error| anyhow::anyhow!("cannot set up the admin token: {error}"))?;
    let notify_config = match notify {
        Some(path) => read_notify_config(path)?,
        None => NotifyConfig::default(),
    };
    let state = AppState::new(Arc::clone(&store), Notifier::start(notify_config))
        .await
        .map_err(|error| anyhow::anyhow!("cannot load the handling policy: {error}"))?;
    anyhow::ensure!(
        state.set_audit_rules(AuditRules::new(audit_rules)),
        "the audit rules were in use before the server started"
    );
    anyhow::ensure!(
        state.set_task_lease_length(agents.task_lease_secs),
        "the task lease was in use before the server started"
    );
    anyhow::ensure!(
        state.set_agent_batch_budget(agents.agent_batch_budget_mib),
        "the agent batch budget was in use before the server started"
    );
    let (tls_config, ca_cert, scheme) = if tls_args.insecure_http {
        (None, None, "http")
    } else if let (Some(cert), Some(key)) = (&tls_args.tls_cert, &tls_args.tls_key) {
        (Some(tls::server_config(cert, key)?), None, "https")
    } else {
        let mut names = vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ];
        let hostname = palisade_agent::host_facts(Path::new("/"), "none").hostname;
        if !hostname.is_empty() {
            names.push(hostname);
        }
        if !listen.ip().is_unspecified() && !listen.ip().is_loopback() {
            names.push(listen.ip().to_string());
        }
        let pki = tls::ensure_pki(&data_dir.join("tls"), &names)
            .context("cannot prepare TLS certificates")?;
        (
            Some(tls::server_config(&pki.server_cert, &pki.server_key)?),
            Some(pki.ca_cert),
            "https",
        )
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let bound = listener.local_addr()?;
    let host = if bound.ip().is_unspecified() {
        "127.0.0.1".to_owned()
    } else {
        bound.ip().to_string()
    };
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    };
    let url = format!("{scheme}://{host}:{}", bound.port());
    let router = palisade_server::router(state);
    let task = tokio::spawn(palisade_server::serve(
        listener, router, tls_config, shutdown,
    ));
    Ok(Running {
        url,
        ca_cert,
        store,
        admin_token,
        task,
    })
}

fn read_notify_config(path: &Path) -> anyhow::Result<NotifyConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_saphyr::from_str(&text)
        .with_context(|| format!("invalid notification settings in {}", path.display()))
}

/// Prints how to log in, once, after start.
pub fn print_admin_token(admin_token: &AdminToken) {
    match admin_token {
        AdminToken::Generated(token) => {
            println!("Admin token (shown once; store it now): {token}");
            println!(
                "  Use it as `Authorization: Bearer <token>`, or set PALISADE_ADMIN_TOKEN to choose your own."
            );
        }
        AdminToken::FromEnvironment => println!("Admin token: the value of PALISADE_ADMIN_TOKEN."),
        AdminToken::Existing => println!(
            "Admin token: the one shown at first start (or create one with an admin token: POST /api/v1/tokens)."
        ),
    }
}

/// Resolves when the process receives SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => return std::future::pending().await,
        };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}

/// Runs `palisade server`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let running = start(
            &args.data_dir,
            args.listen,
            &args.tls,
            args.notify.as_deref(),
            crate::detection::load_rule_set(&args.rules, args.no_default_rules)?,
            &args.agents,
            shutdown_signal(),
        )
        .await?;
        println!("Palisade server listening on {}", running.url);
        if let Some(ca) = &running.ca_cert {
            println!(
                "Agents and clients must trust the CA certificate {}",
                ca.display()
            );
        }
        print_admin_token(&running.admin_token);
        running.task.await??;
        Ok(ExitCode::SUCCESS)
    })
}
