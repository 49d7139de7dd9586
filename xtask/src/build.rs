//! `cargo xtask build`: `vfio-trace` with its probes embedded, for this
//! machine or as static musl binaries (the lab copies those into VMs).

use std::path::PathBuf;

use anyhow::Result;

use crate::step::{self, cmd, step, workspace_root};

#[derive(clap::Args, Debug, Default)]
pub struct BuildArgs {
    /// Also build static musl binaries for x86_64 and aarch64.
    #[arg(long)]
    pub musl: bool,
    /// Release profile.
    #[arg(long)]
    pub release: bool,
}

pub fn run(a: &BuildArgs) -> Result<()> {
    step("build vfio-trace", || cargo_build(None, a.release))?;
    if a.musl {
        for target in ["x86_64-unknown-linux-musl", "aarch64-unknown-linux-musl"] {
            let p = step(&format!("build vfio-trace for {target}"), || {
                musl_binary(target, "vfio-trace")
            })?;
            eprintln!("    {}", p.display());
        }
    }
    Ok(())
}

fn cargo_build(target: Option<&str>, release: bool) -> Result<()> {
    let mut c = cmd("cargo", ["build", "--package", "tracer-user"]);
    if release {
        c.arg("--release");
    }
    if let Some(t) = target {
        c.args(["--target", t]);
    }
    c.current_dir(workspace_root());
    step::run(&mut c)
}

/// Builds `bin` of the workspace as a static release binary for a musl
/// `target` and returns its path. The probes inside are built for that
/// target's architecture.
pub fn musl_binary(target: &str, bin: &str) -> Result<PathBuf> {
    let mut c = cmd(
        "cargo",
        ["build", "--release", "--bin", bin, "--target", target],
    );
    c.current_dir(workspace_root());
    step::run(&mut c)?;
    Ok(workspace_root()
        .join("target")
        .join(target)
        .join("release")
        .join(bin))
}
