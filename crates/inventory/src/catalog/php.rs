//! PHP: Composer's `vendor/composer/installed.json` (Composer 1 array, Composer 2 object).

use serde_json::Value;

use crate::catalog::{Cataloger, Extracted, Found};

/// The installed packages.
pub(crate) fn parse_installed(bytes: &[u8]) -> Result<Extracted, String> {
    let json: Value =
        serde_json::from_slice(bytes).map_err(|error| format!("malformed JSON ({error})"))?;
    let entries = json
        .get("packages")
        .unwrap_or(&json)
        .as_array()
        .ok_or("installed.json is neither a list nor an object with packages")?;
    let packages = entries
        .iter()
        .filter_map(|entry| {
            let name = entry.get("name")?.as_str()?;
            let version = entry.get("version")?.as_str()?;
            Some(Found {
                name: name.to_owned(),
                version: version.trim_start_matches('v').to_owned(),
                ..Found::default()
            })
        })
        .collect();
    Ok(Extracted::packages(Cataloger::Composer, packages))
}
