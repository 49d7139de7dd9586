//! One module per subcommand.

mod agent;
mod check;
pub mod completions;
mod export;
mod files;
mod live;
mod output;
mod privilege;
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
    let local = loads_probes(&cli);
    let result = dispatch(cli);
    match result {
        // Refused by the kernel: say which capability is missing and how
        // to run it.
        Err(e) if local && privilege::is_permission_error(&e) => {
            let missing = privilege::missing_for_probes();
            if missing.is_empty() {
                Err(e)
            } else {
                Err(e.context(Hint(privilege::probes_hint(&missing))))
            }
        }
        r => r,
    }
}

/// What to do about an error (the missing capability and the command to
/// run), attached as its outermost context; printed on a line of its own
/// after the error.
#[derive(Debug)]
pub struct Hint(pub String);

impl std::fmt::Display for Hint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether the command loads this machine's probes (needs privileges).
fn loads_probes(cli: &Cli) -> bool {
    match &cli.command {
        None => !cli.live.probe.remote.no_local,
        Some(Command::Live(a)) => !a.probe.remote.no_local,
        Some(Command::Record(a)) => !a.probe.remote.no_local,
        Some(Command::Check(a)) => a.files.is_empty() && !a.probe.remote.no_local,
        Some(Command::Agent(a)) => a.synthetic.is_none(),
        Some(Command::Probes(a)) => !a.leftovers,
        Some(Command::Replay(_) | Command::Export(_) | Command::Completions(_)) => false,
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        None => live::run(cli.live),
        Some(Command::Live(a)) => live::run(a),
        Some(Command::Probes(a)) => probes::run(a),
        Some(Command::Record(a)) => record::run(a),
        Some(Command::Replay(a)) => replay::run(a),
        Some(Command::Check(a)) => check::run(a),
        Some(Command::Export(a)) => export::run(a),
        Some(Command::Agent(a)) => agent::run(a),
        Some(Command::Completions(a)) => completions::run(a),
    }
}
