//! nginx: `/etc/nginx/nginx.conf` and the files it `include`s: `server_tokens` and `autoindex`.
//!
//! Directives are read statement by statement (`;`, `{` and `}` end one; `#` starts a comment);
//! the block structure is not needed because both settings fail wherever they are switched on.

use std::path::PathBuf;

use palisade_model::BaselineCategory;

use crate::{CheckResult, Error, HostEvidence, HostRoot, HostRule, Severity};

const CONFIG: &str = "/etc/nginx/nginx.conf";
const MAX_INCLUDE_DEPTH: usize = 8;

static SERVER_TOKENS: HostRule = HostRule {
    id: "PAL-SVC-012",
    severity: Severity::Low,
    category: BaselineCategory::Software,
    title: "nginx shows its version",
    description: "`server_tokens on` (the default) puts nginx's version in the Server header and \
                  error pages, which tells attackers which vulnerabilities to try.",
    remediation: "Set `server_tokens off;` in the http block of /etc/nginx/nginx.conf.",
    references: &[],
};
static AUTOINDEX: HostRule = HostRule {
    id: "PAL-SVC-013",
    severity: Severity::Medium,
    category: BaselineCategory::Software,
    title: "nginx lists directory contents",
    description: "`autoindex on` shows every file of a directory without an index page, \
                  including backups and configuration left there.",
    remediation: "Remove `autoindex on;` or set `autoindex off;`.",
    references: &[],
};

pub(crate) static RULES: &[&HostRule] = &[&SERVER_TOKENS, &AUTOINDEX];

struct Directive {
    name: String,
    args: Vec<String>,
    file: String,
    line: usize,
}

fn parse(
    host: &HostRoot,
    path: &str,
    depth: usize,
    directives: &mut Vec<Directive>,
) -> Result<(), Error> {
    if depth > MAX_INCLUDE_DEPTH {
        return Err(Error::too_deep(
            PathBuf::from(path),
            format!("more than {MAX_INCLUDE_DEPTH} levels of include"),
        ));
    }
    let Some(file) = host.read(path)? else {
        return Ok(());
    };
    let mut words: Vec<String> = Vec::new();
    let mut start_line = 1;
    for (line_idx, line) in file.text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("");
        let mut word = String::new();
        for c in line.chars().chain([' ']) {
            if c.is_whitespace() || matches!(c, ';' | '{' | '}') {
                if !word.is_empty() {
                    if words.is_empty() {
                        start_line = line_idx + 1;
                    }
                    words.push(
                        std::mem::take(&mut word)
                            .trim_matches(['"', '\''])
                            .to_owned(),
                    );
                }
                if matches!(c, ';' | '{' | '}') && !words.is_empty() {
                    let name = words.remove(0);
                    let args = std::mem::take(&mut words);
                    if name == "include" {
                        for pattern in &args {
                            let pattern = if pattern.starts_with('/') {
                                pattern.clone()
                            } else {
                                format!("/etc/nginx/{pattern}")
                            };
                            for included in host.glob(&pattern)? {
                                parse(host, &included, depth + 1, directives)?;
                            }
                        }
                    } else {
                        directives.push(Directive {
                            name,
                            args,
                            file: path.to_owned(),
                            line: start_line,
                        });
                    }
                }
            } else {
                word.push(c);
            }
        }
    }
    Ok(())
}

pub(crate) fn check(host: &HostRoot) -> Vec<CheckResult> {
    if !host.exists(CONFIG) {
        return RULES
            .iter()
            .map(|rule| rule.not_applicable("no nginx configuration (/etc/nginx/nginx.conf)"))
            .collect();
    }
    let mut directives = Vec::new();
    if let Err(error) = parse(host, CONFIG, 0, &mut directives) {
        return RULES.iter().map(|rule| rule.error(&error)).collect();
    }
    let switched_on = |name: &str| -> Vec<HostEvidence> {
        directives
            .iter()
            .filter(|directive| {
                directive.name == name && directive.args.first().is_some_and(|value| value != "off")
            })
            .map(|directive| {
                HostEvidence::new(
                    name,
                    directive.args.join(" "),
                    &directive.file,
                    Some(directive.line),
                )
            })
            .collect()
    };
    let mut server_tokens = switched_on("server_tokens");
    if !directives
        .iter()
        .any(|directive| directive.name == "server_tokens")
    {
        server_tokens.push(HostEvidence::new(
            "server_tokens",
            "unset (default on)",
            CONFIG,
            None,
        ));
    }
    let message = format!("{} directives read", directives.len());
    vec![
        SERVER_TOKENS.judge(server_tokens, message.clone()),
        AUTOINDEX.judge(switched_on("autoindex"), message),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Status;

    #[test]
    fn nginx_conf_with_includes() {
        let root = tempfile::tempdir().unwrap();
        let etc = root.path().join("etc/nginx");
        std::fs::create_dir_all(etc.join("sites-enabled")).unwrap();
        std::fs::write(
            etc.join("nginx.conf"),
            "events {}\nhttp {\n  # server_tokens off;\n  include sites-enabled/*;\n}\n",
        )
        .unwrap();
        std::fs::write(
            etc.join("sites-enabled/default"),
            "server {\n  listen 80;\n  location /files { autoindex on; }\n}\n",
        )
        .unwrap();
        let host = HostRoot::new(root.path()).unwrap();
        let results = check(&host);
        assert_eq!(results[0].evidence[0].value, "unset (default on)");
        assert_eq!(
            results[1].evidence[0].file,
            "/etc/nginx/sites-enabled/default"
        );
        assert_eq!(results[1].evidence[0].line, Some(3));
        std::fs::write(
            etc.join("nginx.conf"),
            "http { server_tokens off; include sites-enabled/*; }\n",
        )
        .unwrap();
        std::fs::write(
            etc.join("sites-enabled/default"),
            "server { autoindex off; }\n",
        )
        .unwrap();
        assert!(check(&host).iter().all(|r| r.status == Status::Pass));
    }
}
