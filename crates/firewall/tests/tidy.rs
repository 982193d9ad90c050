//! Every module of the crate opens with a `//!` doc comment saying what it is for.

#[test]
fn every_module_opens_with_module_docs() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut n_modules = 0;
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|ext| ext == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(
                text.starts_with("//! "),
                "{} does not open with //!",
                path.display()
            );
            n_modules += 1;
        }
    }
    assert!(
        n_modules >= 10,
        "found only {n_modules} modules in {}",
        src.display()
    );
}
