//! .NET: `*.deps.json`, whose `libraries` map `Name/Version` to a type.

use serde_json::Value;

use crate::catalog::{Cataloger, Extracted, Found};

/// The NuGet packages (type `package`; `project` entries are the application itself).
pub(crate) fn parse_deps(bytes: &[u8]) -> Result<Extracted, String> {
    let json: Value =
        serde_json::from_slice(bytes).map_err(|error| format!("malformed JSON ({error})"))?;
    let libraries = json
        .get("libraries")
        .and_then(Value::as_object)
        .ok_or("deps.json without libraries")?;
    let packages = libraries
        .iter()
        .filter(|(_, library)| library.get("type").and_then(Value::as_str) == Some("package"))
        .filter_map(|(key, _)| {
            let (name, version) = key.split_once('/')?;
            Some(Found {
                name: name.to_owned(),
                version: version.to_owned(),
                ..Found::default()
            })
        })
        .collect();
    Ok(Extracted::packages(Cataloger::DotNet, packages))
}
