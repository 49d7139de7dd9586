//! Developer tasks for vfio-trace: `cargo xtask <task>`.
//!
//! Every task says what it is doing and how long each step took; a failing
//! step names itself, the command it ran and that command's stderr.

mod bench;
mod build;
mod deb;
mod fuzz;
mod lab;
mod man;
mod probecheck;
mod prometheus;
mod setup;
mod step;
mod test;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask", about = "vfio-trace developer tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install what the build, the tests and the lab need (idempotent).
    Setup(setup::SetupArgs),
    /// Build `vfio-trace` (probes embedded), optionally as static musl binaries.
    Build(build::BuildArgs),
    /// Set up, then run every test: unit, root probe tests, the lab scenarios.
    Test(test::TestArgs),
    /// Boot a lab scenario in QEMU and check vfio-trace against ground truth.
    Lab(Box<lab::LabArgs>),
    /// `lab nested --live` in tmux: both agents join, a guest mapping's
    /// chain is complete across L2 and L1, the fault steps' findings show,
    /// and q stops everything.
    LiveTest(lab::live_test::LiveTestArgs),
    /// The soak: N minutes of MAP/UNMAP/MSI churn in the x86 lab VM under
    /// `vfio-trace live --no-tui` and `record`; RSS, drops and events/s
    /// per minute; fails unless memory stays flat and nothing is dropped.
    Soak(lab::soak::SoakArgs),
    /// Run a benchmark and print its figures (never fails on numbers).
    Bench(bench::BenchArgs),
    /// Run the cargo-fuzz targets for a fixed time each.
    Fuzz(fuzz::FuzzArgs),
    /// Write the man pages of vfio-trace and each subcommand (clap_mangen).
    Man(man::ManArgs),
    /// Build the Debian package (binary, man pages, completions, unit).
    Deb(deb::DebArgs),
    /// Compare a lab run's vfio-trace recording with the exerciser's and
    /// QEMU's logs (the lab does this itself when given --tracer).
    ProbeCheck(probecheck::ProbeCheckArgs),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.task {
        Task::Setup(a) => setup::run(&a),
        Task::Build(a) => build::run(&a),
        Task::Test(a) => test::run(&a),
        Task::Lab(a) => lab::run(&a),
        Task::LiveTest(a) => lab::live_test::run(&a),
        Task::Soak(a) => lab::soak::run(&a),
        Task::Bench(a) => bench::run(&a),
        Task::ProbeCheck(a) => probecheck::run(&a),
        Task::Fuzz(a) => fuzz::run(&a),
        Task::Man(a) => man::run(&a),
        Task::Deb(a) => deb::run(&a),
    };
    if let Err(e) = result {
        eprintln!("xtask: error: {e:#}");
        std::process::exit(1);
    }
}
