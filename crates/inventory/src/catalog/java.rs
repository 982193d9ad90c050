//! Java archives (jar, war, ear, Jenkins plugins): Maven `pom.properties`, falling back to
//! `MANIFEST.MF` and the file name; archives nested inside are read too, within limits.

use std::io::{Cursor, Read};

use crate::cancel::{Cancel, Checked};
use crate::catalog::fields::{field, stanzas};
use crate::catalog::{Cataloger, Extracted, Found};
use crate::limits::Limits;

/// True for file names of Java archives.
pub(crate) fn is_archive_name(name: &str) -> bool {
    [".jar", ".war", ".ear", ".jpi", ".hpi"]
        .iter()
        .any(|extension| name.ends_with(extension))
}

/// Entries read per archive; a zip's central directory can claim millions.
const MAX_ENTRIES: usize = 100_000;

/// The packages of an archive and of the archives nested in it. Decompressing nested
/// archives can take seconds, so it stops once `cancel` is cancelled.
pub(crate) fn parse_archive(
    bytes: &[u8],
    file_name: &str,
    limits: &Limits,
    cancel: &Cancel,
) -> Result<Extracted, String> {
    let mut packages = Vec::new();
    let mut budget = limits.max_binary_bytes;
    let reading = Reading {
        limits,
        cancel,
        depth: 0,
    };
    read_archive(bytes, file_name, &reading, &mut budget, &mut packages)?;
    Ok(Extracted::packages(Cataloger::Java, packages))
}

/// How deep in nested archives a read is, and what bounds it.
struct Reading<'a> {
    limits: &'a Limits,
    cancel: &'a Cancel,
    depth: usize,
}

fn read_archive(
    bytes: &[u8],
    file_name: &str,
    reading: &Reading<'_>,
    budget: &mut u64,
    packages: &mut Vec<Found>,
) -> Result<(), String> {
    let Reading {
        limits,
        cancel,
        depth,
    } = *reading;
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|error| format!("{file_name}: not a readable zip archive ({error})"))?;
    if archive.len() > MAX_ENTRIES {
        return Err(format!(
            "{file_name}: {} entries, over {MAX_ENTRIES}",
            archive.len()
        ));
    }
    let mut found_pom = false;
    let mut manifest: Option<String> = None;
    let mut nested: Vec<(String, Vec<u8>)> = Vec::new();
    for index in 0..archive.len() {
        let Ok(mut entry) = archive.by_index(index) else {
            continue;
        };
        let Ok(name) = entry.name().map(|name| name.into_owned()) else {
            continue;
        };
        let wanted_text = (name.starts_with("META-INF/maven/")
            && name.ends_with("/pom.properties"))
            || name == "META-INF/MANIFEST.MF";
        let wanted_archive =
            depth < limits.max_archive_depth && is_archive_name(&name) && entry.size() <= *budget;
        if !wanted_text && !wanted_archive {
            continue;
        }
        let mut content = Vec::new();
        // The declared size can lie; the budget bounds what decompression may produce.
        Checked {
            inner: &mut entry,
            cancel,
        }
        .take(*budget + 1)
        .read_to_end(&mut content)
        .map_err(|error| format!("{file_name}!{name}: {error}"))?;
        if content.len() as u64 > *budget {
            return Err(format!(
                "{file_name}: nested content over max_binary_bytes ({})",
                limits.max_binary_bytes
            ));
        }
        *budget -= content.len() as u64;
        if wanted_archive {
            nested.push((name, content));
        } else if name == "META-INF/MANIFEST.MF" {
            manifest = Some(String::from_utf8_lossy(&content).into_owned());
        } else if let Some(found) = pom_properties(&String::from_utf8_lossy(&content)) {
            found_pom = true;
            packages.push(found);
        }
    }
    if !found_pom && let Some(found) = from_manifest_or_name(manifest.as_deref(), file_name) {
        packages.push(found);
    }
    for (name, content) in nested {
        let nested_name = name.rsplit('/').next().unwrap_or(&name).to_owned();
        // A broken nested archive does not hide the outer archive's packages.
        let nested_reading = Reading {
            depth: depth + 1,
            ..*reading
        };
        let _ = read_archive(&content, &nested_name, &nested_reading, budget, packages);
        if cancel.is_cancelled() {
            return Err(format!("{file_name}: cancelled"));
        }
    }
    Ok(())
}

fn pom_properties(text: &str) -> Option<Found> {
    let value = |key: &str| {
        text.lines().find_map(|line| {
            let (name, value) = line.split_once('=')?;
            (name.trim() == key).then(|| value.trim().to_owned())
        })
    };
    let (group, artifact, version) = (value("groupId")?, value("artifactId")?, value("version")?);
    Some(Found {
        name: format!("{group}:{artifact}"),
        version,
        ..Found::default()
    })
}

/// `Implementation-*`/`Bundle-*` attributes, or `<artifact>-<version>.jar`.
fn from_manifest_or_name(manifest: Option<&str>, file_name: &str) -> Option<Found> {
    let attributes = manifest.map(|text| stanzas(text, true)).unwrap_or_default();
    let main = attributes.first().map(Vec::as_slice).unwrap_or_default();
    let stem = file_name
        .rsplit_once('.')
        .map_or(file_name, |(stem, _)| stem);
    let from_name = stem
        .rmatch_indices('-')
        .find(|(index, _)| {
            stem[index + 1..]
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_digit())
        })
        .map(|(index, _)| (&stem[..index], &stem[index + 1..]));
    let version = field(main, "Implementation-Version")
        .or_else(|| field(main, "Bundle-Version"))
        .map(str::to_owned)
        .or_else(|| from_name.map(|(_, version)| version.to_owned()))?;
    let artifact = from_name.map_or(stem, |(artifact, _)| artifact).to_owned();
    let name = match field(main, "Implementation-Vendor-Id") {
        Some(group) => format!("{group}:{artifact}"),
        None => artifact,
    };
    Some(Found {
        name,
        version,
        ..Found::default()
    })
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::parse_archive;
    use crate::cancel::Cancel;
    use crate::limits::Limits;

    /// A jar holding a nested jar whose entry decompresses to `inflated` zero bytes.
    fn jar_with_nested(inflated: usize) -> Vec<u8> {
        let options = zip::write::SimpleFileOptions::default();
        let mut inner = std::io::Cursor::new(Vec::new());
        let mut inner_zip = zip::ZipWriter::new(&mut inner);
        inner_zip.start_file("zeros.bin", options).unwrap();
        inner_zip.write_all(&vec![0; inflated]).unwrap();
        inner_zip.finish().unwrap();
        let mut outer = std::io::Cursor::new(Vec::new());
        let mut zip = zip::ZipWriter::new(&mut outer);
        zip.start_file("lib/inner-1.0.jar", options).unwrap();
        zip.write_all(inner.get_ref()).unwrap();
        zip.finish().unwrap();
        outer.into_inner()
    }

    #[test]
    fn nested_archives_are_read_until_cancelled() {
        let jar = jar_with_nested(1 << 20);
        let read = parse_archive(&jar, "app-2.0.jar", &Limits::default(), &Cancel::new()).unwrap();
        let names: Vec<String> = read
            .packages
            .iter()
            .map(|(_, found)| format!("{}@{}", found.name, found.version))
            .collect();
        assert_eq!(names, ["app@2.0", "inner@1.0"]);

        let cancel = Cancel::new();
        cancel.cancel();
        let error = parse_archive(&jar, "app-2.0.jar", &Limits::default(), &cancel).unwrap_err();
        assert!(error.contains("cancelled"), "{error}");
    }
}
