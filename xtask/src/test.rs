//! `cargo xtask test`: the README's test command. Sets up, then runs the
//! formatting and lint gates, every unit and integration test (the root
//! probe tests run for real when root, and must run under CI), then the lab
//! scenarios. Stops at the first failure and says which step it was.

use anyhow::Result;

use crate::{
    build,
    setup::{self, SetupArgs},
    step::{self, cmd, step, workspace_root},
};

#[derive(clap::Args, Debug, Default)]
pub struct TestArgs {
    /// Skip `cargo xtask setup`.
    #[arg(long)]
    pub no_setup: bool,
    /// Skip the VM lab scenarios.
    #[arg(long)]
    pub no_lab: bool,
}

pub fn run(a: &TestArgs) -> Result<()> {
    let t = std::time::Instant::now();
    if !a.no_setup {
        setup::run(&SetupArgs::default())?;
    }
    let root = workspace_root();
    step("rustfmt --check", || {
        step::run(cmd("cargo", ["fmt", "--all", "--", "--check"]).current_dir(&root))
    })?;
    step("clippy (all targets, warnings are errors)", || {
        step::run(
            cmd("cargo", ["clippy", "--all-targets", "--", "-D", "warnings"]).current_dir(&root),
        )
    })?;
    step(
        "unit and integration tests (root probe tests included)",
        || {
            let mut c = cmd("cargo", ["test"]);
            c.current_dir(&root);
            if !step::is_root() {
                eprintln!("    not root: the probe tests will print why they skip");
            }
            step::run(&mut c)
        },
    )?;
    if a.no_lab {
        eprintln!("==> lab scenarios: skipped (--no-lab)");
    } else {
        // The lab runs vfio-trace inside the VMs and checks its recording
        // against the exerciser's journal and QEMU's own logs.
        let x86 = step("vfio-trace for the x86_64 VMs", || {
            build::musl_binary("x86_64-unknown-linux-musl", "vfio-trace")
        })?;
        let arm64 = step("vfio-trace for the arm64 VMs", || {
            build::musl_binary("aarch64-unknown-linux-musl", "vfio-trace")
        })?;
        // `cargo xtask lab X --tracer T` is the whole verdict: the oracle,
        // probe-check against the ground truth, the rules on the clean run
        // and the fault pass. The matrix runs it for each scenario on each
        // pinned kernel (never `newest`: a new upload to Debian unstable
        // must not break a landing) and writes docs/compatibility.md.
        for (scenarios, kernels) in ci_matrix() {
            step(
                &format!("lab matrix: {scenarios} on kernels {kernels} (with vfio-trace)"),
                || {
                    let mut c = cmd("cargo", ["xtask", "lab", "matrix", "--kernels"]);
                    c.arg(&kernels)
                        .args(["--scenarios", &scenarios, "--tracer"])
                        .arg(&x86)
                        .arg("--tracer-arm64")
                        .arg(&arm64)
                        .current_dir(&root);
                    step::run(&mut c)
                },
            )?;
        }
        step(
            "lab nested --live in tmux (joined chain, findings, q)",
            || {
                crate::lab::live_test::run(&crate::lab::live_test::LiveTestArgs {
                    tracer: Some(x86.clone()),
                })
            },
        )?;
    }
    eprintln!(
        "xtask test: all steps passed in {:.0}s",
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

/// What CI's matrix runs: (scenarios, kernels), comma-separated. Every
/// scenario but nested on every pinned kernel; nested (two TCG levels, the
/// slowest by far) on the default kernel only, to stay well inside CI's
/// 90 minutes from a fresh machine (README, "Session 5 changes").
fn ci_matrix() -> Vec<(String, String)> {
    use crate::lab::{kernels, scenarios_names};
    let all_pinned: Vec<&str> = kernels::PINNED.iter().map(|p| p.series).collect();
    let single: Vec<&str> = scenarios_names()
        .into_iter()
        .filter(|s| *s != "nested")
        .collect();
    vec![
        (single.join(","), all_pinned.join(",")),
        ("nested".to_string(), kernels::DEFAULT.to_string()),
    ]
}
