//! Imports feed files into a vulnerability database, as `palisade db import` does, and
//! prints each one's record count: the driver of `scripts/bench/vulndb-xml` where no
//! `palisade` binary of the same tree can be built.
//!
//! Usage: `import_feed DB PATH...`

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(db), paths) = (args.next(), args.collect::<Vec<_>>()) else {
        return Err("usage: import_feed DB PATH...".into());
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let database = palisade_vulndb::Database::open(std::path::Path::new(&db)).await?;
        for path in paths {
            let report = database
                .import_path(
                    std::path::Path::new(&path),
                    palisade_vulndb::Limits::default(),
                )
                .await?;
            println!(
                "{path}: {} records ({}), {} skipped",
                report.record_count,
                report.format,
                report.warnings.len()
            );
        }
        Ok(())
    })
}
