//! Python: `*.dist-info/METADATA` (wheels) and `*.egg-info/PKG-INFO` or `*.egg-info` files.

use crate::catalog::fields::{field, stanzas};
use crate::catalog::{Cataloger, Extracted, Found};

/// The package a core-metadata file describes.
pub(crate) fn parse_metadata(text: &str) -> Result<Extracted, String> {
    let headers = stanzas(text, true);
    let headers = headers.first().map(Vec::as_slice).unwrap_or_default();
    let (Some(name), Some(version)) = (field(headers, "Name"), field(headers, "Version")) else {
        return Err("core metadata without Name or Version".to_owned());
    };
    Ok(Extracted::packages(
        Cataloger::Python,
        vec![Found {
            name: name.to_owned(),
            version: version.to_owned(),
            ..Found::default()
        }],
    ))
}

/// The purl name: lowercase, `_` as `-`, as the purl spec asks for PyPI.
pub(crate) fn purl_name(name: &str) -> String {
    name.to_ascii_lowercase().replace('_', "-")
}
