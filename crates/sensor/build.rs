//! Compiles the eBPF programs in `src/bpf/` with clang and generates their libbpf skeleton.
//!
//! `vmlinux.h` is generated here from the build machine's kernel BTF rather than vendored:
//! the programs are CO-RE (every kernel struct access is relocated by libbpf at load time), so
//! the header only has to declare the types, and generating it keeps a 5 MB file of generated
//! code out of the repository. `PALISADE_VMLINUX_H` points at a ready header instead (for
//! builds on machines without `/sys/kernel/btf/vmlinux` or `bpftool`).

use std::env;
use std::path::PathBuf;
use std::process::Command;

use libbpf_cargo::SkeletonBuilder;

const PROGRAM: &str = "src/bpf/sensor.bpf.c";

fn main() {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let include_dir = out_dir.join("include");
    std::fs::create_dir_all(&include_dir).expect("create OUT_DIR/include");
    let vmlinux_h = include_dir.join("vmlinux.h");

    println!("cargo:rerun-if-env-changed=PALISADE_VMLINUX_H");
    if let Some(header) = env::var_os("PALISADE_VMLINUX_H") {
        std::fs::copy(&header, &vmlinux_h).unwrap_or_else(|error| {
            panic!("cannot copy PALISADE_VMLINUX_H={header:?} to {vmlinux_h:?}: {error}")
        });
    } else {
        let output = Command::new("bpftool")
            .args([
                "btf",
                "dump",
                "file",
                "/sys/kernel/btf/vmlinux",
                "format",
                "c",
            ])
            .output()
            .unwrap_or_else(|error| {
                panic!(
                    "cannot run bpftool to generate vmlinux.h ({error}); install bpftool \
                     (apt-get install bpftool) or set PALISADE_VMLINUX_H to a vmlinux.h"
                )
            });
        assert!(
            output.status.success(),
            "bpftool btf dump of /sys/kernel/btf/vmlinux failed: {}; set PALISADE_VMLINUX_H \
             to a vmlinux.h generated on a kernel with BTF",
            String::from_utf8_lossy(&output.stderr)
        );
        std::fs::write(&vmlinux_h, &output.stdout).expect("write vmlinux.h");
    }

    SkeletonBuilder::new()
        .source(PROGRAM)
        .obj(out_dir.join("sensor.bpf.o"))
        .clang_args([
            "-I".into(),
            include_dir.clone().into_os_string(),
            "-Isrc/bpf".into(),
            "-Wall".into(),
            "-Wno-unused-function".into(),
        ])
        .build_and_generate(out_dir.join("sensor.skel.rs"))
        .unwrap_or_else(|error| panic!("building {PROGRAM} failed: {error:#}"));
    println!("cargo:rerun-if-changed=src/bpf");
}
