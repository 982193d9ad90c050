//! Downloading a feed over HTTP(S), bounded in size.

use crate::error::{Error, ErrorKind};

/// Downloads `url`, refusing bodies over `max_bytes` (checked while streaming, whatever the
/// server declares).
pub async fn download(url: &str, max_bytes: u64) -> Result<Vec<u8>, Error> {
    let fail = |reason: String| -> Error {
        ErrorKind::Download {
            url: url.to_owned(),
            reason,
        }
        .into()
    };
    let client = reqwest::Client::builder()
        .user_agent(concat!("palisade/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|error| fail(error.to_string()))?;
    let mut response = client
        .get(url)
        .send()
        .await
        .map_err(|error| fail(error.to_string()))?;
    if !response.status().is_success() {
        return Err(fail(format!("HTTP status {}", response.status())));
    }
    let too_large = |size: u64| -> Error {
        ErrorKind::TooLarge {
            what: url.to_owned(),
            size,
            limit: max_bytes,
        }
        .into()
    };
    if let Some(length) = response
        .content_length()
        .filter(|length| *length > max_bytes)
    {
        return Err(too_large(length));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|error| fail(error.to_string()))?
    {
        body.extend_from_slice(&chunk);
        if body.len() as u64 > max_bytes {
            return Err(too_large(body.len() as u64));
        }
    }
    Ok(body)
}
