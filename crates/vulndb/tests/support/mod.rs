//! Helpers shared by the feed import tests (`oval.rs`, `updateinfo.rs`): import a document
//! into an in-memory database, load its index, and read findings and warnings.

use std::path::{Path, PathBuf};

use palisade_vulndb::{Database, Finding, ImportOptions, ImportReport, Index, Limits, Package};

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// A fixture file of `tests/data/<dir>/`.
pub fn fixture(dir: &str, name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(dir)
        .join(name)
}

/// Imports `bytes` as `location` with `options`, and loads the whole index.
pub fn import(
    location: &str,
    bytes: &[u8],
    options: impl Into<ImportOptions>,
) -> (ImportReport, Index) {
    runtime().block_on(async {
        let database = Database::open_in_memory().await.expect("open");
        let report = database
            .import_bytes(location, bytes.to_vec(), options)
            .await
            .expect("import");
        (report, Index::load(&database).await.expect("load"))
    })
}

/// Imports the fixture `tests/data/<dir>/<name>` with the default limits.
pub fn import_fixture(dir: &str, name: &str) -> (ImportReport, Index) {
    import(
        name,
        &std::fs::read(fixture(dir, name)).unwrap(),
        Limits::default(),
    )
}

pub fn findings(index: &Index, ecosystem: &str, name: &str, version: &str) -> Vec<Finding> {
    module_findings(index, ecosystem, name, version, &[])
}

/// The findings of a package that may be of the dnf module streams `module_streams`.
pub fn module_findings(
    index: &Index,
    ecosystem: &str,
    name: &str,
    version: &str,
    module_streams: &[&str],
) -> Vec<Finding> {
    index
        .matches(&Package {
            ecosystem: ecosystem.into(),
            name: name.into(),
            version: version.into(),
            source_name: None,
            source_version: None,
            module_streams: module_streams
                .iter()
                .map(|&stream| stream.to_owned())
                .collect(),
        })
        .expect("match")
        .findings
}

pub fn ids(found: &[Finding]) -> Vec<&str> {
    found.iter().map(|finding| finding.id.as_str()).collect()
}

pub fn reasons(report: &ImportReport) -> Vec<String> {
    report
        .warnings
        .iter()
        .map(|warning| format!("{}: {}", warning.location, warning.reason))
        .collect()
}
