//! `vfio-trace completions SHELL` and the hidden `vfio-trace man-pages
//! DIR`: both generated from the one clap definition in `cli.rs`, so they
//! never drift from the real flags. `cargo xtask man` and `cargo xtask deb`
//! run the built binary's `man-pages` (the binary is the only place the CLI
//! is compiled; a library target would make xtask build the eBPF probes).

use std::{io::Write, process::ExitCode};

use anyhow::{Context, Result};
use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs, ManPagesArgs};

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

pub fn man_pages(a: ManPagesArgs) -> Result<ExitCode> {
    std::fs::create_dir_all(&a.dir).with_context(|| format!("creating {}", a.dir.display()))?;
    clap_mangen::generate_to(Cli::command(), &a.dir)
        .with_context(|| format!("writing man pages to {}", a.dir.display()))?;
    Ok(ExitCode::SUCCESS)
}
