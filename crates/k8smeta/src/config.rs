//! Where the API server is and how to authenticate to it: the in-cluster configuration of a
//! pod's service account, or a kubeconfig file.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::Deserialize;

use crate::Error;

/// The service account's directory in every pod that mounts its token.
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// How to reach and authenticate to one Kubernetes API server.
#[derive(Clone)]
pub struct ApiConfig {
    /// The API server's base URL (`https://10.96.0.1:443`).
    pub server: String,
    /// PEM certificates of the CA that signed the API server's certificate; `None` uses the
    /// system's roots.
    pub ca_pem: Option<Vec<u8>>,
    /// The bearer token, if any.
    pub token: Option<Token>,
    /// A client certificate and its key, PEM, concatenated; `None` without one.
    pub identity_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for ApiConfig {
    /// Never prints the token or the key.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ApiConfig")
            .field("server", &self.server)
            .field("ca_pem", &self.ca_pem.as_ref().map(Vec::len))
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field(
                "identity_pem",
                &self.identity_pem.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// A bearer token.
#[derive(Clone)]
pub enum Token {
    /// Given once.
    Fixed(String),
    /// Read from a file before every request: projected service-account tokens are rotated
    /// by the kubelet (hourly by default), so a token read at start would expire.
    File(PathBuf),
}

impl Token {
    /// The token's current value.
    pub(crate) fn value(&self) -> Result<String, Error> {
        match self {
            Token::Fixed(token) => Ok(token.clone()),
            Token::File(path) => std::fs::read_to_string(path)
                .map(|text| text.trim().to_owned())
                .map_err(|source| Error::ReadFile {
                    what: "bearer token file",
                    path: path.clone(),
                    source,
                }),
        }
    }
}

impl ApiConfig {
    /// The configuration of a pod's service account: `KUBERNETES_SERVICE_HOST` and
    /// `KUBERNETES_SERVICE_PORT`, the token and CA in [`SERVICE_ACCOUNT_DIR`].
    pub fn in_cluster() -> Result<ApiConfig, Error> {
        let host = std::env::var("KUBERNETES_SERVICE_HOST").ok();
        let port = std::env::var("KUBERNETES_SERVICE_PORT").ok();
        ApiConfig::in_cluster_from(
            host.as_deref(),
            port.as_deref(),
            Path::new(SERVICE_ACCOUNT_DIR),
        )
    }

    /// [`ApiConfig::in_cluster`] with its inputs given.
    pub fn in_cluster_from(
        host: Option<&str>,
        port: Option<&str>,
        account_dir: &Path,
    ) -> Result<ApiConfig, Error> {
        let (Some(host), Some(port)) = (host, port) else {
            return Err(Error::NotInCluster {
                missing: "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set".into(),
            });
        };
        let token_path = account_dir.join("token");
        if !token_path.is_file() {
            return Err(Error::NotInCluster {
                missing: format!("no service-account token at {}", token_path.display()),
            });
        }
        let ca_path = account_dir.join("ca.crt");
        let ca_pem = read(&ca_path, "service-account CA certificate")?;
        // An IPv6 service address needs brackets in a URL.
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_owned()
        };
        Ok(ApiConfig {
            server: format!("https://{host}:{port}"),
            ca_pem: Some(ca_pem),
            token: Some(Token::File(token_path)),
            identity_pem: None,
        })
    }

    /// The cluster and user of the kubeconfig file's current context: server, CA (file or
    /// data), bearer token (inline or file) and client certificate (file or data). Exec and
    /// auth-provider plugins are refused: this client runs no programs.
    pub fn from_kubeconfig(path: &Path) -> Result<ApiConfig, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::ReadFile {
            what: "kubeconfig",
            path: path.to_owned(),
            source,
        })?;
        let invalid = |message: String| Error::Kubeconfig {
            path: path.to_owned(),
            message,
        };
        let kubeconfig: Kubeconfig =
            serde_saphyr::from_str(&text).map_err(|error| invalid(error.to_string()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let context_name = kubeconfig
            .current_context
            .as_deref()
            .filter(|name| !name.is_empty())
            .ok_or_else(|| invalid("no current-context".into()))?;
        let context = kubeconfig
            .contexts
            .iter()
            .find(|named| named.name == context_name)
            .map(|named| &named.context)
            .ok_or_else(|| invalid(format!("current-context '{context_name}' is not defined")))?;
        let cluster = kubeconfig
            .clusters
            .iter()
            .find(|named| named.name == context.cluster)
            .map(|named| &named.cluster)
            .ok_or_else(|| invalid(format!("cluster '{}' is not defined", context.cluster)))?;
        if cluster.server.is_empty() {
            return Err(invalid(format!(
                "cluster '{}' has no server",
                context.cluster
            )));
        }
        if cluster.insecure_skip_tls_verify {
            return Err(invalid(format!(
                "cluster '{}' sets insecure-skip-tls-verify, which this client refuses: give its CA",
                context.cluster
            )));
        }
        let ca_pem = pem_from(
            base,
            cluster.certificate_authority_data.as_deref(),
            cluster.certificate_authority.as_deref(),
            "certificate-authority",
        )
        .map_err(&invalid)?;
        let user = match context.user.as_deref() {
            None | Some("") => User::default(),
            Some(user_name) => kubeconfig
                .users
                .iter()
                .find(|named| named.name == user_name)
                .map(|named| named.user.clone())
                .ok_or_else(|| invalid(format!("user '{user_name}' is not defined")))?,
        };
        if user.exec.is_some() || user.auth_provider.is_some() {
            return Err(invalid(format!(
                "user '{}' authenticates through an exec or auth-provider plugin, which this client does not run: give a token or a client certificate",
                context.user.as_deref().unwrap_or_default()
            )));
        }
        let token = match (&user.token, &user.token_file) {
            (Some(token), _) if !token.is_empty() => Some(Token::Fixed(token.clone())),
            (_, Some(file)) if !file.is_empty() => Some(Token::File(base.join(file))),
            _ => None,
        };
        let certificate = pem_from(
            base,
            user.client_certificate_data.as_deref(),
            user.client_certificate.as_deref(),
            "client-certificate",
        )
        .map_err(&invalid)?;
        let key = pem_from(
            base,
            user.client_key_data.as_deref(),
            user.client_key.as_deref(),
            "client-key",
        )
        .map_err(&invalid)?;
        let identity_pem = match (certificate, key) {
            (Some(mut certificate), Some(key)) => {
                certificate.push(b'\n');
                certificate.extend_from_slice(&key);
                Some(certificate)
            }
            (None, None) => None,
            _ => {
                return Err(invalid(
                    "a client certificate needs both client-certificate and client-key".into(),
                ));
            }
        };
        Ok(ApiConfig {
            server: cluster.server.trim_end_matches('/').to_owned(),
            ca_pem,
            token,
            identity_pem,
        })
    }
}

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| Error::ReadFile {
        what,
        path: path.to_owned(),
        source,
    })
}

/// PEM from a kubeconfig's `<key>-data` (base64) or `<key>` (a file, relative to the
/// kubeconfig's directory); the data wins, as in kubectl.
fn pem_from(
    base: &Path,
    data: Option<&str>,
    file: Option<&str>,
    key: &str,
) -> Result<Option<Vec<u8>>, String> {
    if let Some(data) = data.filter(|data| !data.is_empty()) {
        return base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .map(Some)
            .map_err(|error| format!("{key}-data is not base64: {error}"));
    }
    match file.filter(|file| !file.is_empty()) {
        Some(file) => {
            let path = base.join(file);
            std::fs::read(&path)
                .map(Some)
                .map_err(|error| format!("cannot read {key} {}: {error}", path.display()))
        }
        None => Ok(None),
    }
}

#[derive(Deserialize)]
struct Kubeconfig {
    #[serde(rename = "current-context")]
    current_context: Option<String>,
    #[serde(default)]
    contexts: Vec<NamedContext>,
    #[serde(default)]
    clusters: Vec<NamedCluster>,
    #[serde(default)]
    users: Vec<NamedUser>,
}

#[derive(Deserialize)]
struct NamedContext {
    name: String,
    context: Context,
}

#[derive(Deserialize)]
struct Context {
    cluster: String,
    user: Option<String>,
}

#[derive(Deserialize)]
struct NamedCluster {
    name: String,
    cluster: Cluster,
}

#[derive(Deserialize)]
struct Cluster {
    #[serde(default)]
    server: String,
    #[serde(rename = "certificate-authority")]
    certificate_authority: Option<String>,
    #[serde(rename = "certificate-authority-data")]
    certificate_authority_data: Option<String>,
    #[serde(rename = "insecure-skip-tls-verify", default)]
    insecure_skip_tls_verify: bool,
}

#[derive(Deserialize)]
struct NamedUser {
    name: String,
    #[serde(default)]
    user: User,
}

#[derive(Deserialize, Default, Clone)]
struct User {
    token: Option<String>,
    #[serde(rename = "tokenFile")]
    token_file: Option<String>,
    #[serde(rename = "client-certificate")]
    client_certificate: Option<String>,
    #[serde(rename = "client-certificate-data")]
    client_certificate_data: Option<String>,
    #[serde(rename = "client-key")]
    client_key: Option<String>,
    #[serde(rename = "client-key-data")]
    client_key_data: Option<String>,
    exec: Option<serde::de::IgnoredAny>,
    #[serde(rename = "auth-provider")]
    auth_provider: Option<serde::de::IgnoredAny>,
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use base64::Engine as _;

    use crate::{ApiConfig, Error, Token};

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn kubeconfig_gives_server_ca_token_and_client_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let ca = base64::engine::general_purpose::STANDARD.encode("CA PEM");
        write(dir.path(), "client.crt", "CERT PEM");
        write(dir.path(), "token", "file-token\n");
        let path = write(
            dir.path(),
            "config",
            &format!(
                "apiVersion: v1\nkind: Config\npreferences: {{}}\ncurrent-context: prod\n\
                 contexts:\n- name: dev\n  context: {{cluster: dev, user: dev}}\n\
                 - name: prod\n  context:\n    cluster: prod\n    user: admin\n    namespace: x\n\
                 clusters:\n- name: prod\n  cluster:\n    server: https://10.0.0.1:6443/\n\
                 \x20   certificate-authority-data: {ca}\n\
                 users:\n- name: admin\n  user:\n    client-certificate: client.crt\n\
                 \x20   client-key-data: {}\n    tokenFile: token\n",
                base64::engine::general_purpose::STANDARD.encode("KEY PEM")
            ),
        );
        let config = ApiConfig::from_kubeconfig(&path).unwrap();
        assert_eq!(config.server, "https://10.0.0.1:6443");
        assert_eq!(config.ca_pem.as_deref(), Some(&b"CA PEM"[..]));
        assert_eq!(
            config.identity_pem.as_deref(),
            Some(&b"CERT PEM\nKEY PEM"[..])
        );
        let Some(token @ Token::File(_)) = &config.token else {
            panic!("a token file: {config:?}");
        };
        assert_eq!(token.value().unwrap(), "file-token");
        assert!(!format!("{config:?}").contains("KEY PEM"));
    }

    #[test]
    fn kubeconfig_errors_name_the_file_and_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            ("current-context: [", "kubeconfig"),
            ("clusters: []\n", "no current-context"),
            (
                "current-context: a\ncontexts: [{name: a, context: {cluster: c}}]\n",
                "cluster 'c' is not defined",
            ),
            (
                "current-context: a\ncontexts: [{name: a, context: {cluster: c, user: u}}]\n\
                 clusters: [{name: c, cluster: {server: 'https://x'}}]\n\
                 users: [{name: u, user: {exec: {command: aws}}}]\n",
                "exec or auth-provider plugin",
            ),
            (
                "current-context: a\ncontexts: [{name: a, context: {cluster: c}}]\n\
                 clusters: [{name: c, cluster: {server: 'https://x', insecure-skip-tls-verify: true}}]\n",
                "insecure-skip-tls-verify",
            ),
            (
                "current-context: a\ncontexts: [{name: a, context: {cluster: c}}]\n\
                 clusters: [{name: c, cluster: {server: 'https://x', certificate-authority: missing.crt}}]\n",
                "cannot read certificate-authority",
            ),
        ];
        for (text, expected) in cases {
            let path = write(dir.path(), "config", text);
            let error = ApiConfig::from_kubeconfig(&path).unwrap_err().to_string();
            assert!(
                error.contains(expected) && error.contains("config"),
                "{text}: {error}"
            );
        }
        let missing = ApiConfig::from_kubeconfig(&dir.path().join("absent")).unwrap_err();
        assert!(matches!(missing, Error::ReadFile { .. }), "{missing}");
    }

    #[test]
    fn in_cluster_reads_the_service_account() {
        let dir = tempfile::tempdir().unwrap();
        let error = ApiConfig::in_cluster_from(None, None, dir.path()).unwrap_err();
        assert!(error.to_string().contains("--kubeconfig"), "{error}");
        let error = ApiConfig::in_cluster_from(Some("10.96.0.1"), Some("443"), dir.path())
            .unwrap_err()
            .to_string();
        assert!(error.contains("no service-account token"), "{error}");
        write(dir.path(), "token", "sa-token");
        write(dir.path(), "ca.crt", "CA");
        let config = ApiConfig::in_cluster_from(Some("fd00::1"), Some("443"), dir.path()).unwrap();
        assert_eq!(config.server, "https://[fd00::1]:443");
        assert_eq!(config.ca_pem.as_deref(), Some(&b"CA"[..]));
        assert_eq!(config.token.unwrap().value().unwrap(), "sa-token");
    }
}
