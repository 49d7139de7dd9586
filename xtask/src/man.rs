//! `cargo xtask man`: the man pages of `vfio-trace` and of each of its
//! subcommands (`vfio-trace.1`, `vfio-trace-record.1`, ...), written by
//! clap_mangen from the CLI definition itself. The pages come from the
//! built binary (`vfio-trace __man-pages DIR`, read before clap so it is
//! in no help or completion script): the CLI is compiled
//! in one place only, and xtask never links tracer-user (whose build script
//! builds the eBPF probes with the nightly toolchain).

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context, Result};

use crate::step::{self, cmd, step, workspace_root};

#[derive(clap::Args, Debug)]
pub struct ManArgs {
    /// Directory to write the pages to (relative to the workspace).
    #[arg(long, value_name = "DIR", default_value = "target/man")]
    pub out: PathBuf,
    /// Use this vfio-trace binary instead of building one (debug profile).
    #[arg(long, value_name = "BIN")]
    pub binary: Option<PathBuf>,
}

pub fn run(a: &ManArgs) -> Result<()> {
    let bin = match &a.binary {
        Some(b) => b.clone(),
        None => step("build vfio-trace", || {
            step::run(
                cmd("cargo", ["build", "--package", "tracer-user"]).current_dir(workspace_root()),
            )?;
            Ok(workspace_root().join("target/debug/vfio-trace"))
        })?,
    };
    let out = workspace_root().join(&a.out);
    let pages = step("man pages", || generate(&bin, &out))?;
    for p in &pages {
        eprintln!("    {}", p.display());
    }
    Ok(())
}

/// Writes the pages into `out` (emptied of older `.1` pages first, so a
/// page of a subcommand that is gone does not linger) and returns them,
/// after checking there is one per subcommand `bin --help` lists.
pub fn generate(bin: &Path, out: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    for p in pages_in(out)? {
        std::fs::remove_file(&p).with_context(|| format!("removing {}", p.display()))?;
    }
    step::run(Command::new(bin).arg("__man-pages").arg(out))?;
    let pages = pages_in(out)?;
    let help = step::output(Command::new(bin).args(["--color", "never", "--help"]))?;
    let mut want = vec!["vfio-trace.1".to_string()];
    want.extend(
        subcommands(&help)
            .into_iter()
            .map(|s| format!("vfio-trace-{s}.1")),
    );
    for w in &want {
        let p = out.join(w);
        let text = std::fs::read_to_string(&p).with_context(|| format!("no page {w}"))?;
        if !text.lines().any(|l| l.starts_with(".TH ")) {
            bail!("{w} is not a man page (no .TH)");
        }
    }
    if pages.len() != want.len() {
        bail!(
            "expected the pages {want:?}, found {:?}",
            pages.iter().map(|p| p.file_name()).collect::<Vec<_>>()
        );
    }
    Ok(pages)
}

fn pages_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "1"))
        .collect();
    v.sort();
    Ok(v)
}

/// The subcommands in clap's `--help` ("Commands:" section), less `help`.
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| l.trim() != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|s| *s != "help")
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::subcommands;

    #[test]
    fn subcommands_from_help() {
        let help = "Trace things\n\nUsage: vfio-trace [OPTIONS]\n\nCommands:\n  live    Trace live\n  record  Record\n  help    Print this message\n\nOptions:\n  --pid <PID>\n";
        assert_eq!(subcommands(help), ["live", "record"]);
    }
}
