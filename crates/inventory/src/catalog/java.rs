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

/// `Implementation-*`/`Bundle-*` attributes, or `<artifact>-<version>.jar`, named
/// `group:artifact` when a Maven group can be told (see [`maven_group`]).
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
    let version = manifest_field(main, "Implementation-Version")
        .or_else(|| manifest_field(main, "Bundle-Version"))
        .or_else(|| from_name.map(|(_, version)| version.to_owned()))?;
    let artifact = from_name.map_or(stem, |(artifact, _)| artifact).to_owned();
    let name = match maven_group(main, &artifact) {
        Some(group) => format!("{group}:{artifact}"),
        None => artifact,
    };
    Some(Found {
        name,
        version,
        ..Found::default()
    })
}

/// A manifest attribute, its 72-byte line wrapping undone (`stanzas` joins continuation
/// lines with a newline, which a manifest value never contains).
fn manifest_field(main: &[(&str, String)], key: &str) -> Option<String> {
    field(main, key).map(|value| value.replace('\n', ""))
}

/// Groups of widely used libraries whose jars often lack `pom.properties` (shaded, rebuilt
/// or distribution-packaged jars), by artifact: Syft's table (`DefaultArtifactIDToGroupID`)
/// and the libraries with the most Maven advisories in OSV.
const KNOWN_GROUPS: &[(&str, &str)] = &[
    ("ant", "org.apache.ant"),
    ("ant-launcher", "org.apache.ant"),
    ("bcprov-jdk15on", "org.bouncycastle"),
    ("bcprov-jdk18on", "org.bouncycastle"),
    ("c3p0", "com.mchange"),
    ("commons-beanutils", "commons-beanutils"),
    ("commons-codec", "commons-codec"),
    ("commons-collections", "commons-collections"),
    ("commons-collections4", "org.apache.commons"),
    ("commons-compress", "org.apache.commons"),
    ("commons-configuration2", "org.apache.commons"),
    ("commons-fileupload", "commons-fileupload"),
    ("commons-io", "commons-io"),
    ("commons-lang", "commons-lang"),
    ("commons-lang3", "org.apache.commons"),
    ("commons-text", "org.apache.commons"),
    ("freemarker", "org.freemarker"),
    ("gson", "com.google.code.gson"),
    ("guava", "com.google.guava"),
    ("h2", "com.h2database"),
    ("httpclient", "org.apache.httpcomponents"),
    ("httpcore", "org.apache.httpcomponents"),
    ("jackson-annotations", "com.fasterxml.jackson.core"),
    ("jackson-core", "com.fasterxml.jackson.core"),
    ("jackson-databind", "com.fasterxml.jackson.core"),
    (
        "jackson-dataformat-cbor",
        "com.fasterxml.jackson.dataformat",
    ),
    ("jackson-dataformat-xml", "com.fasterxml.jackson.dataformat"),
    (
        "jackson-dataformat-yaml",
        "com.fasterxml.jackson.dataformat",
    ),
    ("jetty-http", "org.eclipse.jetty"),
    ("jetty-io", "org.eclipse.jetty"),
    ("jetty-server", "org.eclipse.jetty"),
    ("jetty-util", "org.eclipse.jetty"),
    ("json-smart", "net.minidev"),
    ("jsoup", "org.jsoup"),
    ("kafka-clients", "org.apache.kafka"),
    ("log4j", "log4j"),
    ("log4j-api", "org.apache.logging.log4j"),
    ("log4j-core", "org.apache.logging.log4j"),
    ("logback-classic", "ch.qos.logback"),
    ("logback-core", "ch.qos.logback"),
    ("mysql-connector-java", "mysql"),
    ("netty-all", "io.netty"),
    ("netty-codec-http", "io.netty"),
    ("netty-handler", "io.netty"),
    ("nimbus-jose-jwt", "com.nimbusds"),
    ("okhttp", "com.squareup.okhttp3"),
    ("okio", "com.squareup.okio"),
    ("poi", "org.apache.poi"),
    ("poi-ooxml", "org.apache.poi"),
    ("postgresql", "org.postgresql"),
    ("protobuf-java", "com.google.protobuf"),
    ("shiro-core", "org.apache.shiro"),
    ("slf4j-api", "org.slf4j"),
    ("snakeyaml", "org.yaml"),
    ("spring-aop", "org.springframework"),
    ("spring-beans", "org.springframework"),
    ("spring-boot", "org.springframework.boot"),
    ("spring-boot-autoconfigure", "org.springframework.boot"),
    ("spring-context", "org.springframework"),
    ("spring-core", "org.springframework"),
    ("spring-expression", "org.springframework"),
    ("spring-security-core", "org.springframework.security"),
    ("spring-security-web", "org.springframework.security"),
    ("spring-web", "org.springframework"),
    ("spring-webflux", "org.springframework"),
    ("spring-webmvc", "org.springframework"),
    ("struts2-core", "org.apache.struts"),
    ("tika-core", "org.apache.tika"),
    ("tomcat-embed-core", "org.apache.tomcat.embed"),
    ("velocity-engine-core", "org.apache.velocity"),
    ("woodstox-core", "com.fasterxml.woodstox"),
    ("xalan", "xalan"),
    ("xercesImpl", "xerces"),
    ("xstream", "com.thoughtworks.xstream"),
    ("zookeeper", "org.apache.zookeeper"),
];

/// The first labels of reverse-domain names that manifest attributes are read as groups
/// from; anything else (`Oracle Corporation`, `commons-io`) is a vendor or a title.
const GROUP_ROOTS: &[&str] = &[
    "com", "org", "net", "io", "edu", "gov", "dev", "ch", "de", "fr", "nl", "uk", "be", "at", "eu",
    "jakarta", "javax",
];

/// The Maven group of a jar without `pom.properties`, as Syft tells it: the manifest's
/// `Implementation-Vendor-Id`, the known group of a common artifact, then the first
/// reverse-domain name among `Bundle-SymbolicName`, `Automatic-Module-Name`,
/// `Extension-Name`, `Specification-Vendor`, `Implementation-Vendor` and
/// `Implementation-Title` (see [`group_from_name`]). `None` when nothing names one: an
/// artifact without a group never matches a Maven advisory, while a guessed group could
/// match another project's.
fn maven_group(main: &[(&str, String)], artifact: &str) -> Option<String> {
    if let Some(group) = manifest_field(main, "Implementation-Vendor-Id") {
        return Some(without_directives(&group).to_owned());
    }
    if let Some((_, group)) = KNOWN_GROUPS.iter().find(|(known, _)| *known == artifact) {
        return Some((*group).to_owned());
    }
    [
        "Bundle-SymbolicName",
        "Automatic-Module-Name",
        "Extension-Name",
        "Specification-Vendor",
        "Implementation-Vendor",
        "Implementation-Title",
    ]
    .iter()
    .filter_map(|key| manifest_field(main, key))
    .find_map(|value| group_from_name(without_directives(&value), artifact))
}

/// An OSGi header value without its directives (`org.foo;singleton:=true` → `org.foo`).
fn without_directives(value: &str) -> &str {
    value.split(';').next().unwrap_or(value).trim()
}

/// The group a reverse-domain name gives for `artifact`: the name without the artifact's
/// own last label (`org.yaml.snakeyaml` → `org.yaml`, `org.apache.logging.log4j.core` for
/// `log4j-core` → `org.apache.logging.log4j`), else the name itself
/// (`org.apache.commons`); `None` for a name that is not a reverse domain.
fn group_from_name(name: &str, artifact: &str) -> Option<String> {
    let labels: Vec<&str> = name.split('.').collect();
    let is_label = |label: &&str| {
        !label.is_empty()
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    if labels.len() < 2 || !GROUP_ROOTS.contains(&labels[0]) || !labels.iter().all(is_label) {
        return None;
    }
    let last = labels[labels.len() - 1];
    let artifact_tail = artifact.rsplit('-').next().unwrap_or(artifact);
    if labels.len() > 2 && (last == artifact || last == artifact_tail) {
        return Some(labels[..labels.len() - 1].join("."));
    }
    Some(name.to_owned())
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

    /// A jar with only a manifest.
    fn manifest_jar(manifest: &str) -> Vec<u8> {
        let mut bytes = std::io::Cursor::new(Vec::new());
        let mut zip = zip::ZipWriter::new(&mut bytes);
        zip.start_file(
            "META-INF/MANIFEST.MF",
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
        zip.write_all(manifest.as_bytes()).unwrap();
        zip.finish().unwrap();
        bytes.into_inner()
    }

    fn coordinates(manifest: &str, file_name: &str) -> Vec<String> {
        parse_archive(
            &manifest_jar(manifest),
            file_name,
            &Limits::default(),
            &Cancel::new(),
        )
        .unwrap()
        .packages
        .into_iter()
        .map(|(_, found)| format!("{}@{}", found.name, found.version))
        .collect()
    }

    #[test]
    fn maven_groups_without_pom_properties() {
        let cases = [
            // Manifests as the projects' released jars have them (OSGi bundles, a line
            // wrapped at 72 bytes, directives after the name).
            (
                "Manifest-Version: 1.0\nBundle-SymbolicName: org.yaml.snakeyaml\nBundle-Version: 1.33.0\n",
                "snakeyaml-1.33.jar",
                "org.yaml:snakeyaml@1.33.0",
            ),
            (
                "Manifest-Version: 1.0\nBundle-SymbolicName: org.apache.logging.log4j.co\n re;singleton:=true\nImplementation-Version: 2.14.1\n",
                "log4j-core-2.14.1.jar",
                "org.apache.logging.log4j:log4j-core@2.14.1",
            ),
            (
                "Manifest-Version: 1.0\nAutomatic-Module-Name: org.apache.commons.text\nImplementation-Version: 1.9\n",
                "commons-text-1.9.jar",
                "org.apache.commons:commons-text@1.9",
            ),
            // Guava's symbolic name is its group: the known table names it first.
            (
                "Manifest-Version: 1.0\nBundle-SymbolicName: com.google.guava\nBundle-Version: 31.0.1.jre\n",
                "guava-31.0.1-jre.jar",
                "com.google.guava:guava@31.0.1.jre",
            ),
            // No manifest attribute names a group: the known table does.
            (
                "Manifest-Version: 1.0\nImplementation-Title: jackson-databind\nImplementation-Vendor: FasterXML\n",
                "jackson-databind-2.9.10.jar",
                "com.fasterxml.jackson.core:jackson-databind@2.9.10",
            ),
            // Vendors that are company names, a title that only starts like a domain: no
            // group is made up, so no Maven advisory can match.
            (
                "Manifest-Version: 1.0\nSpecification-Vendor: Sun Microsystems\nImplementation-Vendor: Oracle Corporation\nImplementation-Title: commons-core\n",
                "core-1.0.jar",
                "core@1.0",
            ),
            // An explicit group wins over the known one (an in-house build of log4j-core).
            (
                "Manifest-Version: 1.0\nImplementation-Vendor-Id: com.acme\nImplementation-Version: 2.14.1\n",
                "log4j-core-2.14.1.jar",
                "com.acme:log4j-core@2.14.1",
            ),
        ];
        for (manifest, file_name, expected) in cases {
            assert_eq!(coordinates(manifest, file_name), [expected], "{file_name}");
        }
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
