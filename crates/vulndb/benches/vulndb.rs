//! Import time, index size and matching throughput on the shared real feeds.
//!
//! Run with `cargo bench -p palisade-vulndb --bench vulndb`; needs `../shared/data/vulndb`
//! (skips with a message without it, outside CI).

use std::time::Instant;

use palisade_vulndb::{Database, Index, Limits, Package};

/// A version that parses in each ecosystem and falls inside most `introduced: 0` ranges.
fn old_version(ecosystem: &str) -> &'static str {
    match ecosystem {
        "Go" => "v0.0.1",
        "PyPI" => "1.0",
        _ => "0.1.0",
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut packages = Vec::new();
    for set in ["go", "crates", "pypi"] {
        let Some(path) = palisade_testdata::shared_data(&format!("vulndb/{set}")) else {
            return;
        };
        let db_path = dir.path().join(format!("{set}.sqlite"));
        runtime.block_on(async {
            let database = Database::open(&db_path).await.expect("open");
            let start = Instant::now();
            let report = database
                .import_path(&path, Limits::default())
                .await
                .expect("import");
            let import_seconds = start.elapsed().as_secs_f64();
            // Fold the write-ahead log into the file before measuring it.
            database.close().await;
            let size: u64 = ["", "-wal"]
                .iter()
                .filter_map(|suffix| std::fs::metadata(format!("{}{suffix}", db_path.display())).ok())
                .map(|metadata| metadata.len())
                .sum();
            let database = Database::open(&db_path).await.expect("reopen");
            let start = Instant::now();
            let index = Index::load(&database).await.expect("load");
            let load_seconds = start.elapsed().as_secs_f64();
            println!(
                "{set}: {} records imported in {import_seconds:.2} s, index file {:.1} MiB, index load {load_seconds:.3} s",
                report.record_count,
                size as f64 / (1 << 20) as f64
            );
            packages.extend(index.packages().map(|(ecosystem, name)| Package {
                ecosystem: ecosystem.to_owned(),
                name: name.to_owned(),
                version: old_version(ecosystem).to_owned(),
                source_name: None,
                source_version: None,
                module_streams: Vec::new(),
            }));
        });
    }
    let index = runtime.block_on(async {
        let database = Database::open_in_memory().await.expect("open");
        for set in ["go", "crates", "pypi"] {
            let path = palisade_testdata::shared_data(&format!("vulndb/{set}")).expect("present");
            database
                .import_path(&path, Limits::default())
                .await
                .expect("import");
        }
        Index::load(&database).await.expect("load")
    });
    // Half the queries hit an indexed package, half miss (an unknown name).
    let misses: Vec<Package> = packages
        .iter()
        .map(|package| Package {
            name: format!("{}-not-indexed", package.name),
            ..package.clone()
        })
        .collect();
    let queries: Vec<&Package> = packages.iter().chain(&misses).collect();
    let rounds = 5;
    let start = Instant::now();
    let mut n_findings = 0usize;
    for _ in 0..rounds {
        for package in &queries {
            n_findings += index
                .matches(package)
                .map_or(0, |report| report.findings.len());
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let n_queries = queries.len() * rounds;
    println!(
        "matching: {n_queries} packages ({} indexed names, half unknown) in {seconds:.3} s = {:.0} packages/s, {n_findings} findings",
        packages.len(),
        n_queries as f64 / seconds
    );
}
