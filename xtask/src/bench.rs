//! `cargo xtask bench <name>`: benchmarks print figures with a baseline
//! measured in the same run; they never fail on numbers.

use anyhow::{bail, Result};

use crate::step::{self, cmd, workspace_root};

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// engine | record | probes (the MAP/UNMAP loop in a lab VM: no tracer,
    /// vfio-trace, bpftrace)
    pub name: String,
    #[command(flatten)]
    pub probes: crate::lab::bench::ProbesArgs,
}

pub fn run(a: &BenchArgs) -> Result<()> {
    let bench = match a.name.as_str() {
        "engine" => "engine",
        "record" => "record",
        "probes" => return crate::lab::bench::probes(&a.probes),
        other => bail!("unknown benchmark {other:?}: engine, record, probes"),
    };
    step::run(
        cmd("cargo", ["bench", "-p", "tracer-core", "--bench", bench])
            .current_dir(workspace_root()),
    )
}
