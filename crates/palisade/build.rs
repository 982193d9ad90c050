//! Link options of the `palisade` binary.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        // Pack the relative relocations (DT_RELR; glibc 2.36 and binutils 2.38 or later).
        // A position-independent binary of this size otherwise carries 1.3 MB of them in
        // `.rela.dyn`, which the loader reads whole at start and which then stay resident
        // for the life of `palisade up` (docs/benchmarks.md, "Idle memory").
        println!("cargo::rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
