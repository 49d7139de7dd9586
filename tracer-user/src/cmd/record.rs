//! `vfio-trace record -o FILE`: live probes to a trace file until the
//! duration passes, the command exits, or SIGINT/SIGTERM, through the
//! [`Recorder`] the UI's `r` uses too. Chunks are flushed at least every
//! second, so a killed recorder loses about the last second. A failed write
//! (full disk) stops the recording with an error that names the file, where
//! it ends and the events kept and lost; the exit code is then 2.
//! With `--listen`, agents' events are recorded too: each agent's node is
//! added to the file's node table when it joins, before its first event.

use std::{
    collections::HashMap,
    io::Write,
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::Result;
use tokio::sync::mpsc;
use tracer_core::{
    event::{EventKind, NodeId, ProbeState},
    tracefile::{RecordError, Recorder, TraceHeader, FLUSH_TICK},
};

use super::{
    output::{self, Kind, Output},
    session::{runtime, Session, StopReason, StopWhen},
};
use crate::{cli::RecordArgs, net::aggregator::Notice, node};

pub fn run(args: RecordArgs) -> Result<ExitCode> {
    runtime()?.block_on(record(args))
}

async fn record(args: RecordArgs) -> Result<ExitCode> {
    output::check(&args.output, &[], args.force)?;
    let mut session = Session::start_observed(&args.probe, &args.observe.config())?;
    let header = TraceHeader {
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        kernel: session.node.kernel.clone(),
        machine: session.node.machine.clone(),
        nodes: session.nodes(),
        probes: session.probe_table.clone(),
        cmdline: std::env::args().collect(),
        start_realtime_ns: (node::monotonic_ns() as i64 + session.node.clock_offset_ns) as u64,
        start_monotonic_ns: node::monotonic_ns(),
        ..TraceHeader::default()
    };
    let path = &args.output;
    // The recorder writes where the output says: the file itself, or with
    // --force over an existing one a temporary file renamed at the end.
    let out = Output::create(path, &[], args.force, Kind::Recording)?;
    let mut recorder = Recorder::new(out.writer()?, out.write_path(), &header)?;
    let attached = session
        .probe_table
        .iter()
        .filter(|p| p.status == ProbeState::Attached)
        .count();
    let mut notices = session.take_notices();
    let mut stop = StopWhen::new(args.duration, &args.command)?;
    // Tests and scripts wait for this line: from here on, events are
    // captured and SIGINT/SIGTERM stop the recording cleanly. The header is
    // already in the file.
    eprintln!(
        "vfio-trace: recording to {} ({attached}/{} probes attached)",
        path.display(),
        session.probe_table.len()
    );

    let stopping = stop.wait();
    tokio::pin!(stopping);
    // Pending events are written at least every FLUSH_EVERY (1 s).
    let mut flush = tokio::time::interval(FLUSH_TICK);
    let mut status = Status::new(args.quiet);
    let mut reason = None;
    let mut write_error = None;
    loop {
        tokio::select! {
            batch = session.events.recv() => {
                let Some(batch) = batch else { break };
                for ev in &batch {
                    if let EventKind::Drops(d) = &ev.kind {
                        status.drops_of(ev.node, d.total());
                    }
                }
                status.events += batch.len() as u64;
                // Joins are announced before their nodes' first events.
                let written = drain_notices(&mut notices, &mut recorder, &mut status)
                    .and_then(|()| recorder.append(&batch));
                if let Err(e) = written {
                    write_error = Some(e);
                    session.request_stop();
                    break;
                }
            }
            _ = flush.tick() => {
                match recorder.flush_if_due() {
                    Ok(true) => status.show(recorder.bytes_written()),
                    Ok(false) => {}
                    Err(e) => {
                        write_error = Some(e);
                        session.request_stop();
                        break;
                    }
                }
            }
            Some(n) = next_notice(&mut notices) => {
                if let Err(e) = on_notice(&n, &mut recorder, &mut status) {
                    write_error = Some(e);
                    session.request_stop();
                    break;
                }
            }
            r = &mut stopping, if reason.is_none() => {
                reason = Some(r);
                session.request_stop();
            }
        }
    }
    // Drain what the source still sends after a stop request. After a
    // failed write the recorder counts these as lost.
    while let Some(batch) = session.events.recv().await {
        status.events += batch.len() as u64;
        if write_error.is_none() {
            let written = drain_notices(&mut notices, &mut recorder, &mut status)
                .and_then(|()| recorder.append(&batch));
            write_error = written.err();
        } else if recorder.failure().is_some() {
            let _ = recorder.append(&batch);
        }
    }
    if write_error.is_none() {
        write_error = drain_notices(&mut notices, &mut recorder, &mut status).err();
    }
    let finished = recorder.finish();
    session.finish().await?;
    status.done();
    // A stopped recording's own error has the final counts.
    let done = match (finished, write_error) {
        (Err(e), _) | (Ok(_), Some(e)) => return Err(e.into()),
        (Ok(done), None) => done,
    };
    out.commit()?;
    let why = match reason {
        Some(StopReason::Duration) => "duration reached".to_string(),
        Some(StopReason::Signal(s)) => s.to_string(),
        Some(StopReason::CommandExited(st)) => format!("command exited ({st})"),
        None => "source ended".to_string(),
    };
    // The size is the closed file's own.
    eprintln!(
        "vfio-trace: recorded {} events ({} drops) to {} ({} bytes): {why}",
        done.events,
        status.drops,
        path.display(),
        done.bytes
    );
    Ok(ExitCode::SUCCESS)
}

async fn next_notice(rx: &mut Option<mpsc::UnboundedReceiver<Notice>>) -> Option<Notice> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

fn drain_notices(
    rx: &mut Option<mpsc::UnboundedReceiver<Notice>>,
    recorder: &mut Recorder,
    status: &mut Status,
) -> Result<(), RecordError> {
    if let Some(rx) = rx {
        while let Ok(n) = rx.try_recv() {
            on_notice(&n, recorder, status)?;
        }
    }
    Ok(())
}

/// A new agent's node goes into the file's node table (same id as the
/// aggregator gave it); every notice is shown.
fn on_notice(n: &Notice, recorder: &mut Recorder, status: &mut Status) -> Result<(), RecordError> {
    if let Notice::Joined {
        id,
        info,
        rejoined: false,
        ..
    } = n
    {
        let got = recorder.add_node(info.clone())?;
        if got != *id {
            log::error!(
                "node table out of step: {} is node {id} live but {got} in the file",
                info.name
            );
        }
    }
    // The file says where a node's stream has a gap.
    if let Some(gap) = n.stream_gap(recorder.nodes()) {
        recorder.append(&[gap])?;
    }
    status.note(&format!("vfio-trace: {n}"));
    Ok(())
}

/// The live status on stderr: on a terminal, one line rewritten in place
/// (`\r` + erase line) every flush; otherwise (a CI log, a file) a plain
/// line every [`PLAIN_STATUS_EVERY`], with no control characters.
struct Status {
    quiet: bool,
    /// Whether stderr is a terminal (decided once).
    terminal: bool,
    start: Instant,
    events: u64,
    drops: u64,
    /// Latest cumulative drop count of each node.
    node_drops: HashMap<NodeId, u64>,
    /// The in-place line is on screen (terminal only).
    shown: bool,
    /// When the last plain line was written (not a terminal).
    last_plain: Option<Instant>,
}

/// How often `record` writes its status when stderr is not a terminal.
const PLAIN_STATUS_EVERY: Duration = Duration::from_secs(10);

impl Status {
    fn new(quiet: bool) -> Self {
        use std::io::IsTerminal;
        Status {
            quiet,
            terminal: std::io::stderr().is_terminal(),
            start: Instant::now(),
            events: 0,
            drops: 0,
            node_drops: HashMap::new(),
            shown: false,
            last_plain: None,
        }
    }

    fn drops_of(&mut self, node: NodeId, total: u64) {
        self.node_drops.insert(node, total);
        self.drops = self.node_drops.values().sum();
    }

    /// A line of its own (not overwritten by the status line).
    fn note(&mut self, line: &str) {
        if self.shown {
            eprint!("\r\x1b[2K");
            self.shown = false;
        }
        eprintln!("{line}");
    }

    fn line(&self, bytes: u64) -> String {
        let secs = self.start.elapsed().as_secs_f64().max(1e-3);
        format!(
            "{:.0}s  events {}  rate {:.0}/s  drops {}  file {} KiB",
            secs,
            self.events,
            self.events as f64 / secs,
            self.drops,
            bytes / 1024
        )
    }

    fn show(&mut self, bytes: u64) {
        if self.quiet {
            return;
        }
        if self.terminal {
            eprint!("\r\x1b[2K{}", self.line(bytes));
            let _ = std::io::stderr().flush();
            self.shown = true;
        } else if self
            .last_plain
            .is_none_or(|t| t.elapsed() >= PLAIN_STATUS_EVERY)
        {
            eprintln!("vfio-trace: {}", self.line(bytes));
            self.last_plain = Some(Instant::now());
        }
    }

    fn done(&self) {
        if self.shown {
            eprintln!();
        }
    }
}
