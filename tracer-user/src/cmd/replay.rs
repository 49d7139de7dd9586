//! `vfio-trace replay FILE...`: recorded files as one timeline. The terminal
//! UI is not built yet; `--print` prints the events as text.

use std::{
    io::{BufWriter, Write},
    process::ExitCode,
};

use anyhow::Result;
use tracer_core::export::text::TextWriter;

use super::files::{for_each_event, report_damage};
use crate::cli::ReplayArgs;

pub fn run(args: ReplayArgs) -> Result<ExitCode> {
    if !args.print {
        eprintln!(
            "vfio-trace replay: the terminal UI is not built yet in this version; use --print"
        );
        return Ok(ExitCode::from(super::EXIT_CANNOT));
    }
    let mut w = TextWriter::new(BufWriter::new(std::io::stdout().lock()));
    let end = for_each_event(&args.files, args.salvage, |ev, nodes| {
        Ok(w.write_event(ev, nodes)?)
    })?;
    w.finish()?.flush()?;
    Ok(if report_damage(&end, args.salvage) {
        ExitCode::from(super::EXIT_CANNOT)
    } else {
        ExitCode::SUCCESS
    })
}
