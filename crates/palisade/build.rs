//! Link options of the `palisade` binary.

use std::process::Command;

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    if packs_relative_relocations() {
        // Pack the relative relocations (DT_RELR). A position-independent binary of this size
        // otherwise carries 1.3 MB of them in `.rela.dyn`, which the loader reads whole at
        // start and which then stay resident for the life of `palisade up` (docs/benchmarks.md,
        // "Idle memory").
        println!("cargo::rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// Whether the binary can use DT_RELR: a native glibc build whose glibc is 2.36 or later (a
/// binary with DT_RELR needs `GLIBC_ABI_DT_RELR` at run time, which older glibc lacks, so it
/// would not start there). Cross builds and unknown versions keep the plain relocations.
fn packs_relative_relocations() -> bool {
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    if var("CARGO_CFG_TARGET_OS") != "linux"
        || var("CARGO_CFG_TARGET_ENV") != "gnu"
        || var("HOST") != var("TARGET")
    {
        return false;
    }
    let Ok(output) = Command::new("getconf").arg("GNU_LIBC_VERSION").output() else {
        return false;
    };
    // "glibc 2.36"
    let text = String::from_utf8_lossy(&output.stdout);
    let mut numbers = text
        .trim()
        .trim_start_matches("glibc ")
        .split('.')
        .map(|part| part.parse::<u32>().ok());
    matches!(
        (numbers.next().flatten(), numbers.next().flatten()),
        (Some(major), Some(minor)) if (major, minor) >= (2, 36)
    )
}
