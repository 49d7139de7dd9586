//! `vfio-trace`: the binary. Probes → decoder → engine → views; this crate
//! holds the parts that need the kernel or a terminal (probe loading, live
//! sources, the CLI, the UI). Everything pure lives in `tracer-core`.

mod cli;
mod cmd;
mod net;
mod node;
mod probes;
mod source;
mod tui;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .format_timestamp_millis()
        .init();
    match cmd::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("vfio-trace: error: {e:#}");
            ExitCode::from(cmd::EXIT_CANNOT)
        }
    }
}
