//! Downloading a feed over HTTP(S), bounded in size and time.
//!
//! Servers are trusted through the built-in Mozilla roots (`webpki-roots`) and the private
//! CA certificates [`DownloadOptions::ca_certificates`] names (a mirror behind a company CA).
//! Redirects are followed only to the same scheme: an `https` feed is never fetched again
//! over plain `http`, nor an `http` one moved to another protocol. The body must arrive
//! whole: a connection that ends before the declared length is an error, not a short feed
//! to import, and nothing is imported from a failed download, so the database keeps what an
//! earlier import of the source stored.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, ErrorKind};

/// How a feed is downloaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadOptions {
    /// The largest body accepted (checked while streaming, whatever the server declares).
    pub max_bytes: u64,
    /// The longest a whole download may take, from connecting to its last byte.
    pub timeout: Duration,
    /// PEM files of CA certificates trusted besides the built-in roots.
    pub ca_certificates: Vec<PathBuf>,
}

impl DownloadOptions {
    /// The default time limit of a whole download.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
    /// The longest wait for a connection.
    const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
    /// The longest wait for the next bytes of a response (a server that stalls).
    const READ_TIMEOUT: Duration = Duration::from_secs(60);
    /// The most redirects followed.
    const MAX_REDIRECTS: usize = 10;

    /// Bodies up to `max_bytes`, the default time limit, the built-in roots only.
    pub fn new(max_bytes: u64) -> DownloadOptions {
        DownloadOptions {
            max_bytes,
            timeout: DownloadOptions::DEFAULT_TIMEOUT,
            ca_certificates: Vec::new(),
        }
    }
}

/// An HTTP(S) client that downloads feeds within [`DownloadOptions`]' limits.
#[derive(Debug, Clone)]
pub struct Downloader {
    client: reqwest::Client,
    max_bytes: u64,
    timeout: Duration,
}

impl Downloader {
    /// A client trusting the built-in roots and `options`' CA certificates; an error names
    /// a certificate file that cannot be read or holds no certificate.
    pub fn new(options: &DownloadOptions) -> Result<Downloader, Error> {
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("palisade/", env!("CARGO_PKG_VERSION")))
            .timeout(options.timeout)
            .connect_timeout(options.timeout.min(DownloadOptions::CONNECT_TIMEOUT))
            .read_timeout(options.timeout.min(DownloadOptions::READ_TIMEOUT))
            .redirect(reqwest::redirect::Policy::custom(same_scheme_redirects));
        for path in &options.ca_certificates {
            let pem = std::fs::read(path).map_err(|source| ErrorKind::Io {
                path: path.clone(),
                source,
            })?;
            let certificates = reqwest::Certificate::from_pem_bundle(&pem)
                .ok()
                .filter(|certificates| !certificates.is_empty())
                .ok_or_else(|| ErrorKind::CaCertificate { path: path.clone() })?;
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let client = builder.build().map_err(|error| ErrorKind::HttpClient {
            reason: describe(error, options.timeout),
        })?;
        Ok(Downloader {
            client,
            max_bytes: options.max_bytes,
            timeout: options.timeout,
        })
    }

    /// Downloads `url` whole.
    pub async fn get(&self, url: &str) -> Result<Vec<u8>, Error> {
        let fail = |reason: String| -> Error {
            ErrorKind::Download {
                url: url.to_owned(),
                reason,
            }
            .into()
        };
        let mut response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|error| fail(describe(error, self.timeout)))?;
        if !response.status().is_success() {
            return Err(fail(format!("HTTP status {}", response.status())));
        }
        let too_large = |size: u64| -> Error {
            ErrorKind::TooLarge {
                what: url.to_owned(),
                size,
                limit: self.max_bytes,
            }
            .into()
        };
        let declared = response.content_length();
        if let Some(length) = declared.filter(|length| *length > self.max_bytes) {
            return Err(too_large(length));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|error| fail(describe(error, self.timeout)))?
        {
            body.extend_from_slice(&chunk);
            if body.len() as u64 > self.max_bytes {
                return Err(too_large(body.len() as u64));
            }
        }
        // HTTP/1.1 and HTTP/2 report a body cut short as an error already; a server that
        // sends fewer bytes than it declared and ends the response cleanly is refused too.
        if let Some(length) = declared.filter(|length| *length != body.len() as u64) {
            return Err(fail(format!(
                "the body ended after {} of the {length} bytes declared",
                body.len()
            )));
        }
        Ok(body)
    }
}

/// Follows a redirect only to the scheme the download started with, and at most
/// [`DownloadOptions::MAX_REDIRECTS`] of them.
fn same_scheme_redirects(attempt: reqwest::redirect::Attempt<'_>) -> reqwest::redirect::Action {
    let first_scheme = attempt
        .previous()
        .first()
        .map(|url| url.scheme().to_owned())
        .unwrap_or_default();
    if attempt.url().scheme() != first_scheme {
        let reason = format!(
            "refusing a redirect from {first_scheme} to {}",
            attempt.url()
        );
        attempt.error(reason)
    } else if attempt.previous().len() > DownloadOptions::MAX_REDIRECTS {
        let reason = format!("more than {} redirects", DownloadOptions::MAX_REDIRECTS);
        attempt.error(reason)
    } else {
        attempt.follow()
    }
}

/// A reqwest error as one line, its causes included (reqwest's own message names neither
/// a refused certificate nor a cut connection).
fn describe(error: reqwest::Error, timeout: Duration) -> String {
    if error.is_timeout() {
        return format!(
            "timed out (a download may take {} s, and at most {} s without receiving anything)",
            timeout.as_secs_f64(),
            timeout.min(DownloadOptions::READ_TIMEOUT).as_secs_f64()
        );
    }
    let error = error.without_url();
    let mut reason = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !reason.contains(&text) {
            reason.push_str(": ");
            reason.push_str(&text);
        }
        source = cause.source();
    }
    reason
}
