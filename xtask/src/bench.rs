//! `cargo xtask bench <name>`: benchmarks print figures with a baseline
//! measured in the same run; they never fail on numbers.

use anyhow::{bail, Result};

use crate::step::{self, cmd, workspace_root};

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// engine | record
    pub name: String,
}

pub fn run(a: &BenchArgs) -> Result<()> {
    let bench = match a.name.as_str() {
        "engine" => "engine",
        "record" => "record",
        other => bail!("unknown benchmark {other:?}: engine, record"),
    };
    step::run(
        cmd("cargo", ["bench", "-p", "tracer-core", "--bench", bench])
            .current_dir(workspace_root()),
    )
}
