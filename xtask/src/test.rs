//! `cargo xtask test`: the README's test command. Sets up, then runs the
//! formatting and lint gates, every unit and integration test (the root
//! probe tests run for real when root, and must run under CI), then the lab
//! scenarios. Stops at the first failure and says which step it was.

use anyhow::Result;

use crate::{
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

/// Every lab scenario runs in the test command; their verdicts gate CI.
const LAB_SCENARIOS: &[&str] = &["x86", "arm64-swmsi", "nested"];

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
        for scenario in LAB_SCENARIOS {
            step(&format!("lab scenario {scenario}"), || {
                step::run(cmd("cargo", ["xtask", "lab", scenario]).current_dir(&root))
            })?;
        }
    }
    eprintln!(
        "xtask test: all steps passed in {:.0}s",
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
