//! Builds the eBPF probes (`tracer-ebpf`) for `bpfel-unknown-none` with the
//! nightly toolchain and hands the object to `include_bytes!` via OUT_DIR.
//!
//! The probes' build directory is shared (`target/ebpf/<arch>`) instead of
//! living in OUT_DIR, so debug, release, test and musl builds of vfio-trace
//! reuse one eBPF build per architecture. Prerequisites come from
//! `cargo xtask setup`; when one is missing the error says so.

use std::{
    env,
    path::{Path, PathBuf},
    process::Command,
};

fn main() {
    if let Err(e) = build() {
        // A build script error is shown verbatim by cargo.
        panic!("\n\nbuilding the eBPF probes failed: {e}\n\n");
    }
}

fn build() -> Result<(), String> {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let workspace = manifest.parent().unwrap().to_path_buf();
    let ebpf_dir = workspace.join("tracer-ebpf");
    let common_dir = workspace.join("tracer-common");
    println!("cargo:rerun-if-changed={}", ebpf_dir.join("src").display());
    println!(
        "cargo:rerun-if-changed={}",
        ebpf_dir.join("Cargo.toml").display()
    );
    println!(
        "cargo:rerun-if-changed={}",
        common_dir.join("src").display()
    );
    println!("cargo:rerun-if-env-changed=VFIO_TRACE_NIGHTLY");

    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap();
    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap());
    let target_dir = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|d| {
            if d.is_relative() {
                workspace.join(d)
            } else {
                d
            }
        })
        .unwrap_or_else(|| workspace.join("target"))
        .join("ebpf")
        .join(&arch);
    let toolchain = env::var("VFIO_TRACE_NIGHTLY").unwrap_or_else(|_| "nightly".into());

    let linker = find_bpf_linker()
        .ok_or("bpf-linker not found on PATH or in ~/.cargo/bin; run `cargo xtask setup` first")?;
    let mut path = env::var_os("PATH").unwrap_or_default();
    if let Some(dir) = linker.parent() {
        let mut dirs = vec![dir.to_path_buf()];
        dirs.extend(env::split_paths(&path));
        path = env::join_paths(dirs).map_err(|e| e.to_string())?;
    }

    let mut cmd = Command::new("rustup");
    cmd.args(["run", &toolchain, "cargo", "build", "--quiet", "--release"])
        .args(["--package", "tracer-ebpf", "--bin", "tracer"])
        .args(["--target", "bpfel-unknown-none", "-Z", "build-std=core"])
        .arg("--target-dir")
        .arg(&target_dir)
        .current_dir(&workspace)
        .env("PATH", path)
        .env(
            "CARGO_ENCODED_RUSTFLAGS",
            format!("--cfg=bpf_target_arch=\"{arch}\"\x1f-Cdebuginfo=2\x1f-Clink-arg=--btf"),
        );
    // The outer build's compiler settings must not leak into the nightly build.
    for key in [
        "RUSTC",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_PROFILE_RELEASE_LTO",
    ] {
        cmd.env_remove(key);
    }
    let out = cmd.output().map_err(|e| {
        format!("could not run rustup ({e}); install rustup and run `cargo xtask setup`")
    })?;
    if !out.status.success() {
        return Err(format!(
            "`rustup run {toolchain} cargo build -p tracer-ebpf --target bpfel-unknown-none` failed \
             ({}):\n{}\n(if the nightly toolchain, rust-src or bpf-linker is missing, run `cargo xtask setup`)",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let obj = target_dir.join("bpfel-unknown-none/release/tracer");
    std::fs::copy(&obj, out_dir.join("tracer.bpf.o"))
        .map_err(|e| format!("copy {}: {e}", obj.display()))?;
    Ok(())
}

fn find_bpf_linker() -> Option<PathBuf> {
    let on_path = env::var_os("PATH")
        .map(|p| {
            env::split_paths(&p)
                .map(|d| d.join("bpf-linker"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let cargo_home = env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")));
    on_path
        .into_iter()
        .chain(cargo_home.map(|h| h.join("bin/bpf-linker")))
        .find(|p| p.is_file())
}
