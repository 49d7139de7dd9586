//! One module per subcommand.

mod agent;
mod check;
mod export;
mod files;
mod live;
mod probes;
mod record;
mod replay;
mod session;

use std::process::ExitCode;

use crate::cli::{Cli, Command};

/// Exit codes (a contract): 0 ok/clean, 1 findings (`check`, from its
/// report), 2 could not run/check.
pub const EXIT_CANNOT: u8 = 2;

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        None => live::run(cli.live),
        Some(Command::Live(a)) => live::run(a),
        Some(Command::Probes(a)) => probes::run(a),
        Some(Command::Record(a)) => record::run(a),
        Some(Command::Replay(a)) => replay::run(a),
        Some(Command::Check(a)) => check::run(a),
        Some(Command::Export(a)) => export::run(a),
        Some(Command::Agent(a)) => agent::run(a),
    }
}
