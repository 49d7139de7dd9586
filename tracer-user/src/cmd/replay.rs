//! `vfio-trace replay FILE...`: recorded files as one timeline, in the
//! terminal UI with replay controls (`crate::tui`), or with `--print` as
//! text.

use std::{
    io::{BufWriter, Write},
    process::ExitCode,
};

use anyhow::Result;
use tracer_core::export::text::TextWriter;

use super::files::{for_each_event, read_exit};
use crate::cli::ReplayArgs;

pub fn run(args: ReplayArgs) -> Result<ExitCode> {
    if !args.print {
        return run_tui(args);
    }
    let mut w = TextWriter::new(BufWriter::new(std::io::stdout().lock()));
    let read = for_each_event(&args.files, args.salvage, |ev, nodes| {
        Ok(w.write_event(ev, nodes)?)
    })?;
    w.finish()?.flush()?;
    Ok(read_exit(&read))
}

/// Reads every file (one timeline), then opens the UI on it. Damage is
/// reported on stderr first and noted in the timeline bar.
fn run_tui(args: ReplayArgs) -> Result<ExitCode> {
    let mut events = Vec::new();
    let mut nodes = Vec::new();
    let read = for_each_event(&args.files, args.salvage, |ev, n| {
        events.push(ev.clone());
        if n.len() > nodes.len() {
            nodes = n.to_vec();
        }
        Ok(())
    })?;
    super::files::align(&mut events, &mut nodes);
    crate::tui::run_replay(events, nodes, read.clone())?;
    Ok(read_exit(&read))
}
