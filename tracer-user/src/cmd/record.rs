//! `vfio-trace record -o FILE`: live probes to a trace file until the
//! duration passes, the command exits, or SIGINT/SIGTERM. Chunks are flushed
//! at least every second, so a killed recorder loses at most the last second.

use std::{
    io::Write,
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use tracer_core::{
    event::{EventKind, ProbeState},
    tracefile::{TraceHeader, TraceWriter, WriterOptions},
};

use super::session::{runtime, Session, StopReason, StopWhen};
use crate::{cli::RecordArgs, node};

const FLUSH_EVERY: Duration = Duration::from_secs(1);

pub fn run(args: RecordArgs) -> Result<ExitCode> {
    runtime()?.block_on(record(args))
}

async fn record(args: RecordArgs) -> Result<ExitCode> {
    let mut session = Session::start(&args.probe)?;
    let header = TraceHeader {
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        kernel: session.node.kernel.clone(),
        machine: session.node.machine.clone(),
        nodes: vec![session.node.clone()],
        probes: session.probe_table.clone(),
        cmdline: std::env::args().collect(),
        start_realtime_ns: (node::monotonic_ns() as i64 + session.node.clock_offset_ns) as u64,
        start_monotonic_ns: node::monotonic_ns(),
        ..TraceHeader::default()
    };
    let path = &args.output;
    let mut writer = TraceWriter::create(path, &header, WriterOptions::default())
        .with_context(|| format!("creating {}", path.display()))?;
    let attached = session
        .probe_table
        .iter()
        .filter(|p| p.status == ProbeState::Attached)
        .count();
    let mut stop = StopWhen::new(args.duration, &args.command)?;
    // Tests and scripts wait for this line: from here on, events are
    // captured and SIGINT/SIGTERM stop the recording cleanly.
    eprintln!(
        "vfio-trace: recording to {} ({attached}/{} probes attached)",
        path.display(),
        session.probe_table.len()
    );

    let stopping = stop.wait();
    tokio::pin!(stopping);
    let mut flush = tokio::time::interval(FLUSH_EVERY);
    let mut status = Status::new(args.quiet);
    let mut reason = None;
    let mut write_error = None;
    loop {
        tokio::select! {
            batch = session.events.recv() => {
                let Some(batch) = batch else { break };
                for ev in &batch {
                    if let EventKind::Drops(d) = &ev.kind {
                        status.drops = d.total();
                    }
                    if let Err(e) = writer.append(ev) {
                        write_error = Some(e);
                        break;
                    }
                }
                status.events += batch.len() as u64;
                if write_error.is_some() {
                    session.request_stop();
                    break;
                }
            }
            _ = flush.tick() => {
                if let Err(e) = writer.flush() {
                    write_error = Some(e);
                    session.request_stop();
                    break;
                }
                status.show(writer.bytes_written());
            }
            r = &mut stopping, if reason.is_none() => {
                reason = Some(r);
                session.request_stop();
            }
        }
    }
    // Drain what the source still sends after a stop request.
    while let Some(batch) = session.events.recv().await {
        if write_error.is_none() {
            for ev in &batch {
                if let Err(e) = writer.append(ev) {
                    write_error = Some(e);
                    break;
                }
            }
            status.events += batch.len() as u64;
        }
    }
    let bytes = writer.bytes_written();
    let finished = writer.finish();
    session.finish().await?;
    status.done();
    if let Some(e) = write_error {
        return Err(e).with_context(|| format!("writing {}", path.display()));
    }
    finished.with_context(|| format!("finishing {}", path.display()))?;
    let why = match reason {
        Some(StopReason::Duration) => "duration reached".to_string(),
        Some(StopReason::Signal(s)) => s.to_string(),
        Some(StopReason::CommandExited(st)) => format!("command exited ({st})"),
        None => "source ended".to_string(),
    };
    eprintln!(
        "vfio-trace: recorded {} events ({} drops) to {} ({bytes} bytes): {why}",
        status.events,
        status.drops,
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The live status line on stderr.
struct Status {
    quiet: bool,
    start: Instant,
    events: u64,
    drops: u64,
    shown: bool,
}

impl Status {
    fn new(quiet: bool) -> Self {
        Status {
            quiet,
            start: Instant::now(),
            events: 0,
            drops: 0,
            shown: false,
        }
    }

    fn show(&mut self, bytes: u64) {
        if self.quiet {
            return;
        }
        let secs = self.start.elapsed().as_secs_f64().max(1e-3);
        eprint!(
            "\r\x1b[2K{:.0}s  events {}  rate {:.0}/s  drops {}  file {} KiB",
            secs,
            self.events,
            self.events as f64 / secs,
            self.drops,
            bytes / 1024
        );
        let _ = std::io::stderr().flush();
        self.shown = true;
    }

    fn done(&self) {
        if self.shown {
            eprintln!();
        }
    }
}
