//! Compiles the eBPF programs in `src/bpf/` with clang through libbpf-cargo into
//! `$OUT_DIR/<name>.bpf.o`, which the crate embeds and loads with libbpf-rs.
//!
//! `vmlinux.h` is generated from the build machine's kernel BTF with bpftool rather than
//! vendored: the programs are CO-RE, so the header only needs to name the types, and libbpf
//! relocates field offsets against the running kernel's BTF at load time.

use std::env;
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use libbpf_cargo::SkeletonBuilder;

const PROGRAMS: [&str; 3] = ["exec_kill", "connect", "lsm_probe"];
const KERNEL_BTF: &str = "/sys/kernel/btf/vmlinux";

fn main() {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    write_vmlinux_header(&out_dir);
    let target_arch = match env::var("CARGO_CFG_TARGET_ARCH").as_deref() {
        Ok("x86_64") => "x86",
        Ok("aarch64") => "arm64",
        Ok(other) => panic!("no eBPF target arch mapping for {other}"),
        Err(_) => panic!("cargo sets CARGO_CFG_TARGET_ARCH"),
    };
    let arch_define = format!("-D__TARGET_ARCH_{target_arch}");
    for program in PROGRAMS {
        let source = Path::new("src/bpf").join(format!("{program}.bpf.c"));
        let object = out_dir.join(format!("{program}.bpf.o"));
        SkeletonBuilder::new()
            .source(&source)
            .obj(&object)
            .clang_args([
                OsStr::new("-I"),
                out_dir.as_os_str(),
                OsStr::new("-I"),
                OsStr::new("src/bpf"),
                OsStr::new(&arch_define),
                // BPF ISA v3: atomics that fetch (fully ordered), which the connect
                // programs' generation switch relies on; kernels from 5.12 run them.
                OsStr::new("-mcpu=v3"),
                OsStr::new("-Wall"),
                OsStr::new("-Werror"),
            ])
            .build()
            .unwrap_or_else(|error| panic!("compiling {}: {error:#}", source.display()));
        println!("cargo:rerun-if-changed={}", source.display());
    }
    println!("cargo:rerun-if-changed=src/bpf/enforce.h");
}

fn write_vmlinux_header(out_dir: &Path) {
    let header = out_dir.join("vmlinux.h");
    if header.exists() {
        return;
    }
    let bpftool = ["bpftool", "/usr/sbin/bpftool"]
        .into_iter()
        .find(|candidate| Command::new(candidate).arg("version").output().is_ok())
        .unwrap_or_else(|| {
            panic!("bpftool is needed to generate vmlinux.h: apt-get install bpftool")
        });
    let output = Command::new(bpftool)
        .args(["btf", "dump", "file", KERNEL_BTF, "format", "c"])
        .output()
        .unwrap_or_else(|error| panic!("running {bpftool}: {error}"));
    assert!(
        output.status.success(),
        "{bpftool} btf dump file {KERNEL_BTF} failed (the kernel needs CONFIG_DEBUG_INFO_BTF): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    fs::write(&header, output.stdout)
        .unwrap_or_else(|error| panic!("writing {}: {error}", header.display()));
}
