//! The live terminal UI (`vfio-trace live`, `vfio-trace replay FILE...`).
//!
//! Two sides that never wait for each other:
//!
//! - the ingest side ([`ingest`]) owns the [`model::Model`] (engine, recent
//!   events, rates, probe health), applies every event as it arrives (or as
//!   the replay clock releases it) and publishes an `Arc<Snapshot>` on a
//!   `tokio::sync::watch` channel at most 30 times a second;
//! - the terminal thread ([`ui_thread`]) reads keys into a [`UiState`],
//!   sends it back on another watch channel, and draws the newest snapshot
//!   with `views::draw(&Snapshot, &UiState, frame)`. A slow terminal drops
//!   frames, never events.
//!
//! In live mode `r` records to a file from the ingest side ([`record`]).
//!
//! While the UI runs, stderr (logs) goes to a file ([`logfile`]); the
//! terminal is restored on exit, on drop and after a panic ([`terminal`]).
//!
//! Tests: `tests/tui_views.rs` (every view into a `TestBackend`, insta
//! snapshots in `tests/snapshots/`), `tests/tui_keys.rs` (keys and mouse),
//! `tests/tui_tmux.rs` (replay in a real terminal under tmux). Frame cost
//! with 1 M mappings and 100 k findings:
//! `cargo test --release -p tracer-user --test tui_bench -- --ignored --nocapture`.
//! Key-to-screen latency while ingesting 1 M events/s: the same with
//! `--test tui_latency`.
//!
//! [`UiState`]: ui_state::UiState

pub mod event_info;
pub mod filter;
pub mod ingest;
pub mod input;
pub mod logfile;
pub mod model;
pub mod record;
pub mod replay_clock;
pub mod snapshot;
pub mod terminal;
pub mod ui_state;
pub mod ui_thread;
pub mod views;

use std::{path::PathBuf, sync::Arc};

use anyhow::{anyhow, Result};
use tokio::sync::{mpsc, watch};
use tracer_core::event::{Event, NodeInfo, ProbeStatus};

use self::{
    ingest::{Ingest, Replay},
    model::history::DEFAULT_CAPACITY,
    replay_clock::ReplayClock,
    snapshot::Snapshot,
    ui_state::UiState,
    ui_thread::Channels,
};

/// Starts the terminal thread; returns its handle and the ingest side's
/// ends of the channels.
fn start_ui(
    replay: bool,
    replay_tx: Option<mpsc::UnboundedSender<input::ReplayCmd>>,
) -> (
    std::thread::JoinHandle<Result<()>>,
    watch::Receiver<UiState>,
    watch::Sender<Arc<Snapshot>>,
) {
    let ui = UiState::new(replay);
    let (ui_tx, ui_rx) = watch::channel(ui.clone());
    let (snap_tx, snap_rx) = watch::channel(Arc::new(Snapshot::default()));
    let ch = Channels {
        snapshots: snap_rx,
        ui: ui_tx,
        replay: replay_tx,
    };
    let handle = std::thread::Builder::new()
        .name("vfio-trace-ui".into())
        .spawn(move || ui_thread::run(ch, ui))
        .expect("spawning the UI thread");
    (handle, ui_rx, snap_tx)
}

fn join(handle: std::thread::JoinHandle<Result<()>>) -> Result<()> {
    handle
        .join()
        .map_err(|_| anyhow!("the terminal UI panicked (terminal restored)"))?
}

/// The UI over a live event stream, until the user quits or `stop`
/// resolves (a signal). The caller stops and finishes the session, and
/// the recording still in progress (`r`), if any: events that drain after
/// the UI is gone belong in it too (append them, then
/// [`finish_recording`]).
pub async fn run_live(
    nodes: Vec<NodeInfo>,
    node_source: Option<ingest::NodeSource>,
    probes: Vec<ProbeStatus>,
    events: &mut mpsc::Receiver<Vec<Event>>,
    stop: impl std::future::Future<Output = ()>,
) -> (Result<()>, Option<record::Recorder>) {
    let log_path = logfile::default_path();
    let log = match logfile::StderrToFile::new(&log_path) {
        Ok(l) => l,
        Err(e) => return (Err(e), None),
    };
    let (handle, ui_rx, snap_tx) = start_ui(false, None);
    let mut ingest = Ingest::new(nodes, DEFAULT_CAPACITY);
    ingest.node_source = node_source;
    for p in &probes {
        ingest.model.health.probe(0, p);
    }
    ingest.record = Some(record::RecordConfig::from_env(probes));
    ingest.run(ui_rx, snap_tx, Some(events), None, stop).await;
    let recorder = ingest.take_recorder();
    let r = join(handle);
    drop(log);
    report_log_path(&log_path);
    (r, recorder)
}

/// Finishes the recording `run_live` handed back; says where it is.
pub fn finish_recording(rec: record::Recorder) -> Result<()> {
    let done = rec.finish()?;
    eprintln!(
        "vfio-trace: recorded {} events to {} ({} bytes)",
        done.events,
        done.path.display(),
        done.bytes
    );
    Ok(())
}

/// The UI over recorded events, with the replay controls.
/// Opens the UI on recorded `events`; `read` is what was read from each
/// file (an incomplete read is flagged in the header, listed in Health).
pub fn run_replay(
    events: Vec<Event>,
    nodes: Vec<NodeInfo>,
    read: tracer_core::tracefile::ReadReport,
) -> Result<()> {
    let log_path: PathBuf = logfile::default_path();
    let log = logfile::StderrToFile::new(&log_path)?;
    let times = events
        .iter()
        .map(|e| tracer_core::tracefile::aligned_ns(e, &nodes))
        .collect();
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (handle, ui_rx, snap_tx) = start_ui(true, Some(cmd_tx));
    let replay = Replay {
        events,
        clock: ReplayClock::new(times),
        cmds: cmd_rx,
        note: incomplete_note(&read),
        inputs: read
            .inputs
            .iter()
            .map(|i| snapshot::InputLine {
                summary: i.summary_line(),
                complete: i.complete,
                reasons: i.reasons(),
            })
            .collect(),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut ingest = Ingest::new(nodes, DEFAULT_CAPACITY);
    rt.block_on(ingest.run(ui_rx, snap_tx, None, Some(replay), std::future::pending()));
    let r = join(handle);
    drop(log);
    report_log_path(&log_path);
    r
}

/// The header's warning when not every event of the files was read.
fn incomplete_note(read: &tracer_core::tracefile::ReadReport) -> Option<String> {
    let reasons = read.reasons();
    let first = reasons.first()?;
    Some(match reasons.len() {
        1 => format!("INCOMPLETE: {first}"),
        n => format!("INCOMPLETE: {first} (+{} more, see Health)", n - 1),
    })
}

/// After the terminal is back: says where the log went, or removes it
/// when nothing was logged.
fn report_log_path(path: &std::path::Path) {
    if std::fs::metadata(path).is_ok_and(|m| m.len() > 0) {
        eprintln!("vfio-trace: log of this session: {}", path.display());
    } else {
        let _ = std::fs::remove_file(path);
    }
}
