//! `vfio-trace live`: trace and show. The terminal UI is not built yet;
//! `--no-tui` prints the event stream as text.

use std::process::ExitCode;

use anyhow::Result;
use tracer_core::event::Event;

use super::session::{runtime, Session, StopWhen};
use crate::cli::LiveArgs;

pub fn run(args: LiveArgs) -> Result<ExitCode> {
    if !args.no_tui {
        eprintln!(
            "vfio-trace live: the terminal UI is not built yet in this version; use --no-tui"
        );
        return Ok(ExitCode::from(super::EXIT_CANNOT));
    }
    runtime()?.block_on(async {
        let mut session = Session::start(&args.probe)?;
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

fn print_event(e: &Event) {
    println!(
        "{:>16} {:>7} {:<16} {}",
        e.ts_ns,
        e.pid,
        e.comm.as_str(),
        serde_json::to_string(&e.kind).unwrap_or_default()
    );
}
