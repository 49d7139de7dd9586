//! `cargo xtask fuzz [--seconds N] [TARGET...]`: runs the cargo-fuzz targets
//! (fuzz/fuzz_targets) for a fixed time each with the nightly toolchain,
//! installing cargo-fuzz first if it is missing. A crash fails the task and
//! leaves its input under fuzz/artifacts/.

use std::fs;

use anyhow::{Context, Result};

use crate::step::{self, cmd, output, step, workspace_root};

#[derive(clap::Args, Debug)]
pub struct FuzzArgs {
    /// Seconds per target.
    #[arg(long, default_value_t = 60)]
    pub seconds: u64,
    /// Targets to run (default: every target in fuzz/fuzz_targets).
    pub targets: Vec<String>,
}

pub fn run(a: &FuzzArgs) -> Result<()> {
    let root = workspace_root();
    step("cargo-fuzz installed", || {
        if output(&mut cmd("cargo", ["+nightly", "fuzz", "--version"])).is_ok() {
            eprintln!("    cargo-fuzz: present");
            return Ok(());
        }
        step::run(&mut cmd("cargo", ["install", "cargo-fuzz", "--locked"]))
    })?;
    let targets = if a.targets.is_empty() {
        let mut t: Vec<String> = fs::read_dir(root.join("fuzz/fuzz_targets"))
            .context("reading fuzz/fuzz_targets")?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                e.path()
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .map(str::to_owned)
            })
            .collect();
        t.sort();
        t
    } else {
        a.targets.clone()
    };
    for t in &targets {
        let corpus = root.join("fuzz/corpus").join(t);
        fs::create_dir_all(&corpus)?;
        step(&format!("fuzz {t} for {}s", a.seconds), || {
            let mut c = cmd("cargo", ["+nightly", "fuzz", "run", t.as_str()]);
            c.arg(&corpus)
                .arg(root.join("tracer-core/tests/fixtures"))
                .arg("--")
                .arg(format!("-max_total_time={}", a.seconds))
                .arg("-rss_limit_mb=1024")
                .current_dir(&root);
            step::run(&mut c)
        })?;
    }
    Ok(())
}
