//! `vfio-trace export FILE... --format jsonl|perfetto`.

use std::{
    fs::File,
    io::{BufWriter, Write},
    process::ExitCode,
};

use anyhow::{Context, Result};
use tracer_core::export::jsonl::JsonlWriter;

use super::files::{for_each_event, report_damage};
use crate::cli::{ExportArgs, ExportFormat};

pub fn run(args: ExportArgs) -> Result<ExitCode> {
    let out: Box<dyn Write> = match &args.output {
        Some(p) => Box::new(File::create(p).with_context(|| format!("creating {}", p.display()))?),
        None => Box::new(std::io::stdout().lock()),
    };
    let out = BufWriter::new(out);
    let end = match args.format {
        ExportFormat::Jsonl => {
            let mut w = JsonlWriter::new(out);
            let end = for_each_event(&args.files, args.salvage, |ev, nodes| {
                Ok(w.write_event(ev, nodes)?)
            })?;
            w.finish()?.flush()?;
            end
        }
        ExportFormat::Perfetto => {
            eprintln!("vfio-trace export: --format perfetto is not built yet in this version");
            return Ok(ExitCode::from(super::EXIT_CANNOT));
        }
    };
    Ok(if report_damage(&end, args.salvage) {
        ExitCode::from(super::EXIT_CANNOT)
    } else {
        ExitCode::SUCCESS
    })
}
