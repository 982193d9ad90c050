//! Package upgrades on request (`upgrade_package` tasks), off unless the configuration
//! enables them.
//!
//! No shell is involved: the package manager is executed with an argument vector whose only
//! variable part, `PKG=VERSION`, passed [`UpgradeSpec::validate`] (distribution name and
//! version grammars: no whitespace, no leading `-`, no shell characters).

use std::{
    io::Read,
    path::Path,
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use palisade_model::{PackageManager, TaskResult, UpgradeSpec};
use serde::{Deserialize, Serialize};

/// Whether the agent may upgrade packages when the server asks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FixConfig {
    /// Run `upgrade_package` tasks (apt-get or apk on this host). Off by default: a server
    /// compromise must not become root on every node unless the operator opted in.
    pub enabled: bool,
}

/// Longest time one upgrade may take.
const UPGRADE_TIMEOUT: Duration = Duration::from_secs(600);
/// Most bytes of the package manager's output kept in the task result.
const OUTPUT_TAIL: usize = 2_000;

/// A package manager invocation.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct UpgradeCommand {
    /// The program, looked up in `PATH`.
    program: &'static str,
    /// Its arguments.
    args: Vec<String>,
    /// Extra environment.
    env: &'static [(&'static str, &'static str)],
}

/// The package manager invocation that upgrades `spec`'s package.
pub(crate) fn upgrade_command(spec: &UpgradeSpec) -> Result<UpgradeCommand, String> {
    let manager = spec.validate().map_err(|error| error.to_string())?;
    let target = format!("{}={}", spec.package, spec.version);
    Ok(match manager {
        PackageManager::Apt => UpgradeCommand {
            program: "apt-get",
            args: vec![
                "install".into(),
                "--only-upgrade".into(),
                "--yes".into(),
                "--no-install-recommends".into(),
                target,
            ],
            env: &[("DEBIAN_FRONTEND", "noninteractive")],
        },
        PackageManager::Apk => UpgradeCommand {
            program: "apk",
            args: vec!["add".into(), target],
            env: &[],
        },
    })
}

/// Runs an upgrade task.
pub(crate) async fn upgrade(
    config: &FixConfig,
    host_root: &Path,
    spec: &UpgradeSpec,
) -> TaskResult {
    if !config.enabled {
        return TaskResult::failed(
            "package upgrades are disabled on this agent: restart it with `palisade agent --enable-fix` (or set `fix.enabled: true` in its configuration) to allow them",
        );
    }
    if host_root != Path::new("/") {
        return TaskResult::failed(format!(
            "package upgrades run only on the live host, and this agent scans {}",
            host_root.display()
        ));
    }
    let UpgradeCommand { program, args, env } = match upgrade_command(spec) {
        Ok(command) => command,
        Err(message) => return TaskResult::failed(message),
    };
    tracing::info!(program, ?args, "Upgrading a package.");
    let mut command = std::process::Command::new(program);
    command.args(&args).envs(env.iter().copied());
    let output =
        match tokio::task::spawn_blocking(move || run_with_timeout(command, UPGRADE_TIMEOUT)).await
        {
            Ok(Ok(Some(output))) => output,
            Ok(Ok(None)) => {
                return TaskResult::failed(format!(
                    "{program} did not finish within {} seconds and was killed",
                    UPGRADE_TIMEOUT.as_secs()
                ));
            }
            Ok(Err(error)) => return TaskResult::failed(format!("cannot run {program}: {error}")),
            Err(error) => return TaskResult::failed(format!("cannot run {program}: {error}")),
        };
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    let tail = tail(&text, OUTPUT_TAIL);
    if output.status.success() {
        TaskResult {
            succeeded: true,
            message: format!("{program} {} succeeded: {tail}", args.join(" ")),
            verdict: None,
        }
    } else {
        TaskResult::failed(format!(
            "{program} {} failed ({}): {tail}",
            args.join(" "),
            output.status
        ))
    }
}

/// Runs `command` (stdin closed, output captured) and kills it after `timeout`; `None` when
/// it was killed.
fn run_with_timeout(mut command: Command, timeout: Duration) -> std::io::Result<Option<Output>> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    // Drain both pipes on their own threads so that a chatty package manager never blocks on a
    // full pipe while it is being waited for.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|pipe| Box::new(pipe) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|pipe| Box::new(pipe) as Box<dyn Read + Send>),
    );
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if started.elapsed() >= timeout {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    Ok(status.map(|status| Output {
        status,
        stdout,
        stderr,
    }))
}

/// The last `max` bytes of `text`, cut at a character boundary.
fn tail(text: &str, max: usize) -> &str {
    let text = text.trim();
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(ecosystem: &str, package: &str, version: &str) -> UpgradeSpec {
        UpgradeSpec {
            finding_id: None,
            ecosystem: ecosystem.into(),
            package: package.into(),
            version: version.into(),
        }
    }

    #[test]
    fn commands_are_argument_vectors() {
        let apt = upgrade_command(&spec("Debian:12", "libssl3", "3.0.15-1~deb12u1")).unwrap();
        assert_eq!(apt.program, "apt-get");
        assert_eq!(
            apt.args,
            [
                "install",
                "--only-upgrade",
                "--yes",
                "--no-install-recommends",
                "libssl3=3.0.15-1~deb12u1"
            ]
        );
        assert_eq!(apt.env, [("DEBIAN_FRONTEND", "noninteractive")]);
        let apk = upgrade_command(&spec("Alpine:v3.19", "busybox", "1.36.1-r16")).unwrap();
        assert_eq!(apk.program, "apk");
        assert_eq!(apk.args, ["add", "busybox=1.36.1-r16"]);
        let error = upgrade_command(&spec("Debian:12", "x", "1;reboot")).unwrap_err();
        assert!(error.contains("not a valid package version"), "{error}");
    }

    #[tokio::test]
    async fn upgrades_are_refused_unless_enabled() {
        let upgrade_spec = spec("Debian:12", "libssl3", "3.0.15-1~deb12u1");
        let result = upgrade(&FixConfig::default(), Path::new("/"), &upgrade_spec).await;
        assert!(!result.succeeded);
        assert!(result.message.contains("fix.enabled"), "{}", result.message);
        let enabled = FixConfig { enabled: true };
        let result = upgrade(&enabled, Path::new("/srv/fixture"), &upgrade_spec).await;
        assert!(!result.succeeded);
        assert!(
            result.message.contains("only on the live host"),
            "{}",
            result.message
        );
        let hostile = spec("Debian:12", "--config=/tmp/x", "1");
        let result = upgrade(&enabled, Path::new("/"), &hostile).await;
        assert!(!result.succeeded);
        assert!(
            result.message.contains("not a valid package name"),
            "{}",
            result.message
        );
    }

    #[test]
    fn tails_cut_at_characters() {
        assert_eq!(tail("  é.abc  ", 3), "abc");
        assert_eq!(tail("ééé", 3), "é");
    }
}
