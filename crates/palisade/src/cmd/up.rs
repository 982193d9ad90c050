//! `palisade up`: the server and a local agent in one process, on this machine.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode, sync::Arc};

use anyhow::Context;
use palisade_agent::{AgentConfig, AgentStatus, Outbox};

use crate::detection::{self, DetectionArgs};

use super::server::{AgentLinkArgs, TlsArgs, print_admin_token, shutdown_signal, start};

/// Arguments of `palisade up`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where everything is kept (default: the per-user data directory,
    /// `$XDG_DATA_HOME/palisade` or `~/.local/share/palisade`).
    #[arg(long, env = "PALISADE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// Name of the cluster this machine is shown under.
    #[arg(long, default_value = "local")]
    cluster: String,
    #[command(flatten)]
    tls: TlsArgs,
    /// Notification settings (YAML or JSON: min_severity, sinks).
    #[arg(long, value_name = "FILE")]
    notify: Option<PathBuf>,
    /// Load the labelled demo data set (cluster `demo`, every finding marked demo) so that
    /// every console view has something to show.
    #[arg(long)]
    demo: bool,
    #[command(flatten)]
    agents: AgentLinkArgs,
    #[command(flatten)]
    detection: DetectionArgs,
}

fn default_data_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|dir| !dir.is_empty()) {
        return Ok(PathBuf::from(dir).join("palisade"));
    }
    let home = std::env::var_os("HOME")
        .filter(|home| !home.is_empty())
        .context("neither XDG_DATA_HOME nor HOME is set: pass --data-dir")?;
    Ok(PathBuf::from(home).join(".local/share/palisade"))
}

/// Runs `palisade up`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let data_dir = match args.data_dir {
        Some(dir) => dir,
        None => default_data_dir()?,
    };
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let (stop_server, server_stopped) = tokio::sync::oneshot::channel::<()>();
        let running = start(
            &data_dir.join("server"),
            args.listen,
            &args.tls,
            args.notify.as_deref(),
            detection::load_rule_set(&args.detection.rules, args.detection.no_default_rules)?,
            &args.agents,
            async {
                let _ = server_stopped.await;
            },
        )
        .await?;

        if args.demo {
            let summary = palisade_server::load_demo(running.store.as_ref())
                .await
                .context("cannot load the demo data set")?;
            println!(
                "Demo data loaded into cluster `demo`: {} new findings ({} already there), {} firewall rules.",
                summary.created, summary.already_loaded, summary.firewall_rules
            );
        }

        let agent_dir = data_dir.join("agent");
        let facts = palisade_agent::host_facts(std::path::Path::new("/"), "none");
        let name = if facts.hostname.is_empty() {
            "localhost".to_owned()
        } else {
            facts.hostname
        };
        let mut config =
            AgentConfig::new(running.url.clone(), &agent_dir, &args.cluster, name.clone());
        config.ca_cert = running.ca_cert.clone();
        config.sensor_hold = args.detection.sensor_hold();
        config.sensor_reader_nice = args.detection.sensor_reader_nice.0;
        config.respond_rules = args.detection.respond.clone();
        // Where `palisade db import` puts the database by default when the data directory is
        // the default one.
        config.scans.vulndb = Some(data_dir.join("vulndb.sqlite"));
        if !agent_dir.join("credential.json").exists() {
            config.join_token = Some(
                palisade_server::issue_join_token(running.store.as_ref(), "local agent")
                    .await
                    .map_err(|error| {
                        anyhow::anyhow!("cannot issue a join token for the local agent: {error}")
                    })?,
            );
        }
        let outbox = Outbox::open(&agent_dir)
            .await
            .context("cannot open the local agent's outbox")?;
        let status = Arc::new(AgentStatus::default());
        let detection =
            detection::start_unless_disabled(&args.detection, &outbox, &status, &mut config)?;

        println!("Palisade is up.");
        println!(
            "  API:      {}/api/v1  (OpenAPI: {}/api/openapi.json)",
            running.url, running.url
        );
        if let Some(ca) = &running.ca_cert {
            println!(
                "  CA:       {} (trust it in your browser or pass it to curl --cacert)",
                ca.display()
            );
        }
        println!("  Console:  {}/console", running.url);
        println!("  Data:     {}", data_dir.display());
        println!("  Sensor:   {}", config.sensor);
        print_admin_token(&running.admin_token);
        println!("Press Ctrl-C to stop.");
        crate::start_memory::release_when_settled();

        let agent_result = palisade_agent::run(config, outbox, &status, shutdown_signal()).await;
        if let Some(detection) = detection {
            detection.stop();
        }
        let _ = stop_server.send(());
        running.task.await??;
        agent_result?;
        Ok(ExitCode::SUCCESS)
    })
}
