//! `cargo xtask bench <name>`: benchmarks print figures with a baseline
//! measured in the same run; they never fail on numbers.

use anyhow::{bail, Result};

use crate::step::{self, cmd, workspace_root};

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// engine (replay throughput quiet and beside `stress-ng --cpu 1`,
    /// bytes per mapping) | record | live (drop-free rate of `record` and
    /// the TUI on this machine's tracepoints; root) | screen (event to
    /// screen latency in the TUI at 1 M events/s) | probes (the MAP/UNMAP
    /// loop in a lab VM: no tracer, vfio-trace, bpftrace)
    pub name: String,
    #[command(flatten)]
    pub probes: crate::lab::bench::ProbesArgs,
}

pub fn run(a: &BenchArgs) -> Result<()> {
    let root = workspace_root();
    match a.name.as_str() {
        "engine" => {
            competing_load();
            step::run(
                cmd("cargo", ["bench", "-p", "tracer-core", "--bench", "engine"]).current_dir(root),
            )
        }
        "record" => step::run(
            cmd("cargo", ["bench", "-p", "tracer-core", "--bench", "record"]).current_dir(root),
        ),
        "live" => step::run(
            cmd(
                "cargo",
                ["bench", "-p", "tracer-user", "--bench", "live_rate"],
            )
            .current_dir(root),
        ),
        "screen" => step::run(
            cmd(
                "cargo",
                [
                    "test",
                    "--release",
                    "-p",
                    "tracer-user",
                    "--test",
                    "tui_latency",
                    "--",
                    "--ignored",
                    "--nocapture",
                    "--test-threads=1",
                ],
            )
            .current_dir(root),
        ),
        "probes" => crate::lab::bench::probes(&a.probes),
        other => bail!("unknown benchmark {other:?}: engine, record, live, screen, probes"),
    }
}

/// Installs stress-ng (the engine bench's competing load) when missing and
/// root; otherwise the bench spins a thread of its own instead, and says so.
fn competing_load() {
    let have = std::process::Command::new("stress-ng")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if have {
        return;
    }
    if !step::is_root() {
        eprintln!("stress-ng missing and not root: the engine bench spins a thread instead");
        return;
    }
    let apt =
        |args: &[&str]| step::run(cmd("apt-get", args).env("DEBIAN_FRONTEND", "noninteractive"));
    if apt(&[
        "install",
        "-y",
        "-q",
        "--no-install-recommends",
        "stress-ng",
    ])
    .is_err()
    {
        // The package lists may be missing or stale.
        let _ = apt(&["update", "-q"]);
        if let Err(e) = apt(&[
            "install",
            "-y",
            "-q",
            "--no-install-recommends",
            "stress-ng",
        ]) {
            eprintln!(
                "stress-ng could not be installed ({e:#}): the engine bench spins a thread instead"
            );
        }
    }
}
