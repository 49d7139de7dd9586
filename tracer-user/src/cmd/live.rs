//! `vfio-trace live`: trace and show, in the terminal UI (`crate::tui`), or
//! with `--no-tui` as a text stream.

use std::process::ExitCode;

use anyhow::Result;
use tracer_core::event::Event;

use super::session::{runtime, Session, StopWhen};
use crate::cli::LiveArgs;

pub fn run(args: LiveArgs) -> Result<ExitCode> {
    if !args.no_tui {
        return run_tui(args);
    }
    runtime()?.block_on(async {
        let mut session = Session::start_observed(&args.probe, &args.observe.config())?;
        let mut stop = StopWhen::new(args.duration, &[])?;
        let stopping = stop.wait();
        tokio::pin!(stopping);
        let mut stopped = false;
        loop {
            tokio::select! {
                batch = session.events.recv() => match batch {
                    Some(batch) => batch.iter().for_each(print_event),
                    None => break,
                },
                _ = &mut stopping, if !stopped => {
                    stopped = true;
                    session.request_stop();
                }
            }
        }
        session.finish().await?;
        Ok(ExitCode::SUCCESS)
    })
}

/// The terminal UI until the user quits, `--duration` passes or a signal
/// comes; then the probes drain and detach.
fn run_tui(args: LiveArgs) -> Result<ExitCode> {
    runtime()?.block_on(async {
        let mut session = Session::start_observed(&args.probe, &args.observe.config())?;
        let mut stop = StopWhen::new(args.duration, &[])?;
        let nodes = session.nodes();
        let node_source = session.node_source();
        let probes = session.probe_table.clone();
        let (ui, mut rec) =
            crate::tui::run_live(nodes, node_source, probes, &mut session.events, async {
                stop.wait().await;
            })
            .await;
        session.request_stop();
        // Quitting while recording (`r`): what drains still goes to the file.
        let mut recorded = Ok(());
        while let Some(batch) = session.events.recv().await {
            if let (Some(r), true) = (rec.as_mut(), recorded.is_ok()) {
                recorded = r.append(&batch);
            }
        }
        // A recording stopped by a failed write says so when finished,
        // with its final counts.
        let recorded = match rec.map(crate::tui::finish_recording) {
            Some(Err(e)) => Err(e),
            _ => recorded.map_err(anyhow::Error::from),
        };
        session.finish().await?;
        ui?;
        recorded?;
        Ok(ExitCode::SUCCESS)
    })
}

fn print_event(e: &Event) {
    println!(
        "{:>16} {:>7} {:<16} {}",
        e.ts_ns,
        e.pid,
        e.comm.as_str(),
        serde_json::to_string(&e.kind).unwrap_or_default()
    );
}
