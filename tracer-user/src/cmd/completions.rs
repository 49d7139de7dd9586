//! `vfio-trace completions SHELL` and `vfio-trace __man-pages DIR`: both
//! generated from the one clap definition in `cli.rs`, so they never drift
//! from the real flags. `cargo xtask man` and `cargo xtask deb` run the
//! built binary's `__man-pages` (the binary is the only place the CLI is
//! compiled; a library target would make xtask build the eBPF probes).
//! `__man-pages` is read before clap (see `main`), so it shows in no help,
//! page or completion script.

use std::{io::Write, process::ExitCode};

use anyhow::{Context, Result};
use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs};

/// The name users type (and completion scripts register for).
const BIN: &str = "vfio-trace";

pub fn run(a: CompletionsArgs) -> Result<ExitCode> {
    let mut script = Vec::new();
    clap_complete::generate(a.shell, &mut Cli::command(), BIN, &mut script);
    let mut out = std::io::stdout().lock();
    out.write_all(&script)
        .and_then(|()| out.flush())
        .context("writing the completion script to stdout")?;
    Ok(ExitCode::SUCCESS)
}

/// Writes `vfio-trace.1` and `vfio-trace-<subcommand>.1` into `dir`
/// (created if missing).
pub fn man_pages(dir: &std::path::Path) -> Result<ExitCode> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    clap_mangen::generate_to(Cli::command(), dir)
        .with_context(|| format!("writing man pages to {}", dir.display()))?;
    Ok(ExitCode::SUCCESS)
}
