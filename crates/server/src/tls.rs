//! TLS: a private CA and server certificate generated for `palisade up`, and the rustls
//! server configuration (ALPN h2 and http/1.1).

use std::{
    fs,
    io::Write,
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
    sync::Arc,
};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A TLS setup failure, naming the file involved.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or written.
    #[error("cannot access {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Certificate generation failed.
    #[error("cannot generate a certificate")]
    Generate(#[from] rcgen::Error),
    /// A PEM file holds no usable certificate or key.
    #[error("{path} holds no usable {what}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// `certificate` or `private key`.
        what: &'static str,
    },
    /// rustls refused the certificate and key.
    #[error("the certificate and key do not form a valid TLS configuration")]
    Rustls(#[from] rustls::Error),
}

/// Paths of a generated PKI.
#[derive(Debug, Clone)]
pub struct Pki {
    /// The CA certificate clients must trust.
    pub ca_cert: PathBuf,
    /// The server certificate.
    pub server_cert: PathBuf,
    /// The server key.
    pub server_key: PathBuf,
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> TlsError + '_ {
    move |source| TlsError::Io {
        path: path.to_owned(),
        source,
    }
}

fn ca_params() -> Result<CertificateParams, rcgen::Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, "Palisade private CA");
    name.push(DnType::OrganizationName, "Palisade");
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(params)
}

fn write_private(path: &Path, contents: &str) -> Result<(), TlsError> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io_error(path))?;
    file.write_all(contents.as_bytes()).map_err(io_error(path))
}

/// Creates (once) a private CA and a server certificate for `names` under `dir`; later calls
/// reuse them, reissuing only the server certificate if it is missing.
pub fn ensure_pki(dir: &Path, names: &[String]) -> Result<Pki, TlsError> {
    fs::create_dir_all(dir).map_err(io_error(dir))?;
    let pki = Pki {
        ca_cert: dir.join("ca.pem"),
        server_cert: dir.join("server.pem"),
        server_key: dir.join("server-key.pem"),
    };
    let ca_key_path = dir.join("ca-key.pem");
    let ca_key = if pki.ca_cert.exists() && ca_key_path.exists() {
        let pem = fs::read_to_string(&ca_key_path).map_err(io_error(&ca_key_path))?;
        KeyPair::from_pem(&pem)?
    } else {
        let key = KeyPair::generate()?;
        let cert = ca_params()?.self_signed(&key)?;
        write_private(&ca_key_path, &key.serialize_pem())?;
        fs::write(&pki.ca_cert, cert.pem()).map_err(io_error(&pki.ca_cert))?;
        // A new CA invalidates any old server certificate.
        let _ = fs::remove_file(&pki.server_cert);
        key
    };
    if !(pki.server_cert.exists() && pki.server_key.exists()) {
        let issuer = Issuer::new(ca_params()?, ca_key);
        let mut params = CertificateParams::new(names.to_vec())?;
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().cloned().unwrap_or_else(|| "localhost".into()),
        );
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &issuer)?;
        write_private(&pki.server_key, &key.serialize_pem())?;
        fs::write(&pki.server_cert, cert.pem()).map_err(io_error(&pki.server_cert))?;
    }
    Ok(pki)
}

/// Reads every certificate in a PEM file.
pub fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = fs::read(path).map_err(io_error(path))?;
    let certificates: Vec<_> = rustls_pemfile::certs(&mut pem.as_slice())
        .filter_map(Result::ok)
        .collect();
    if certificates.is_empty() {
        return Err(TlsError::Pem {
            path: path.to_owned(),
            what: "certificate",
        });
    }
    Ok(certificates)
}

/// A rustls server configuration from PEM files, offering HTTP/2 and HTTP/1.1.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let certificates = read_certificates(cert)?;
    let pem = fs::read(key).map_err(io_error(key))?;
    let key_der: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut pem.as_slice())
        .ok()
        .flatten()
        .ok_or_else(|| TlsError::Pem {
            path: key.to_owned(),
            what: "private key",
        })?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(certificates, key_der)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
