//! The ingest side: owns the [`Model`], applies events as they come (live)
//! or as the replay clock releases them, and publishes a snapshot at most
//! [`FPS`](super::ui_thread::FPS) times a second when something changed.
//! In live mode it also records to a file while the user asks for it (`r`,
//! [`UiState::record_toggles`]): every batch received goes to the
//! [`Recorder`] before the model, so recording never drops an event.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::sync::{mpsc, watch};
use tracer_core::event::{Event, NodeInfo};

use super::{
    input::ReplayCmd,
    model::Model,
    record::{self, RecordConfig, Recorder},
    replay_clock::ReplayClock,
    snapshot::{self, InputLine, Recording, ReplayStatus, Snapshot},
    ui_state::UiState,
    ui_thread::FPS,
};

/// How often the engine's (costlier) view is re-read while events flow.
const REFRESH: Duration = Duration::from_millis(250);

/// Recorded events and their clock.
pub struct Replay {
    pub events: Vec<Event>,
    pub clock: ReplayClock,
    pub cmds: mpsc::UnboundedReceiver<ReplayCmd>,
    pub note: Option<String>,
    /// What was read from each file.
    pub inputs: Vec<InputLine>,
}

/// Where a live run learns of nodes that join (remote agents).
pub type NodeSource = Box<dyn Fn() -> Vec<NodeInfo> + Send>;

pub struct Ingest {
    pub model: Model,
    nodes: Vec<NodeInfo>,
    /// The live node table, re-read before each batch.
    pub node_source: Option<NodeSource>,
    /// Live mode: `r` records with this (`None`: no recording, replay).
    pub record: Option<RecordConfig>,
    recorder: Option<Recorder>,
    /// The [`UiState::record_toggles`] acted on so far.
    toggles_seen: u64,
    /// How the last recording ended (or failed to start), for the header.
    record_note: Option<(String, bool)>,
    history: usize,
    started: Instant,
    last_refresh: Instant,
    /// Replay: aligned times of the whole recording's findings.
    replay_findings: Arc<[i128]>,
}

/// Aligned times of the findings a whole recording raises (the engine run
/// once over it beside the model's), sorted.
fn finding_times(events: &[Event], clock: &ReplayClock, nodes: &[NodeInfo]) -> Arc<[i128]> {
    use tracer_core::engine::{Engine, EngineConfig};
    let mut engine = Engine::new(nodes.to_vec(), EngineConfig::default());
    engine.apply_all(events);
    let mut t: Vec<i128> = engine
        .findings()
        .iter()
        .filter_map(|f| clock.time_of(usize::try_from(f.at).ok()?))
        .collect();
    t.sort_unstable();
    t.into()
}

impl Ingest {
    pub fn new(nodes: Vec<NodeInfo>, history: usize) -> Self {
        Ingest {
            model: Model::new(nodes.clone(), history),
            nodes,
            node_source: None,
            record: None,
            recorder: None,
            toggles_seen: 0,
            record_note: None,
            history,
            started: Instant::now(),
            last_refresh: Instant::now(),
            replay_findings: Arc::from(Vec::new()),
        }
    }

    fn refresh(&mut self, force: bool) {
        if force || self.last_refresh.elapsed() >= REFRESH {
            self.model.refresh();
            self.last_refresh = Instant::now();
        }
    }

    fn replay_status(&self, r: &Replay) -> ReplayStatus {
        ReplayStatus {
            findings_ns: self.replay_findings.clone(),
            start_ns: r.clock.start(),
            end_ns: r.clock.end(),
            now_ns: r.clock.now(),
            playing: r.clock.playing,
            speed: r.clock.speed(),
            applied: r.clock.applied(),
            total: r.clock.total(),
            note: r.note.clone(),
        }
    }

    /// The recording in progress, if any (the caller finishes it: after
    /// the UI quits, events still draining go to it too).
    pub fn take_recorder(&mut self) -> Option<Recorder> {
        self.recorder.take()
    }

    /// Acts on `r` presses not seen yet: each one starts or stops.
    fn record_toggles(&mut self, ui: &UiState) {
        let pending = ui.record_toggles.saturating_sub(self.toggles_seen);
        self.toggles_seen = ui.record_toggles;
        for _ in 0..pending {
            self.toggle_recording();
        }
    }

    fn toggle_recording(&mut self) {
        if let Some(rec) = self.recorder.take() {
            self.record_note = Some(match rec.finish() {
                Ok(done) => {
                    let (path, n) = (done.path.display(), done.events);
                    log::info!("recorded {n} events to {path} ({} bytes)", done.bytes);
                    (format!("saved {path} ({n} events)"), false)
                }
                Err(e) => {
                    log::error!("recording: {e:#}");
                    (format!("REC failed: {e:#}"), true)
                }
            });
            return;
        }
        let Some(cfg) = &self.record else {
            return;
        };
        match record::start(cfg, &self.nodes) {
            Ok(rec) => {
                log::info!("recording to {}", rec.path().display());
                self.recorder = Some(rec);
                self.record_note = None;
            }
            Err(e) => {
                log::error!("recording: {e:#}");
                self.record_note = Some((format!("REC failed: {e:#}"), true));
            }
        }
    }

    /// A write error ends the recording (the file keeps every complete
    /// chunk; after a failed write it has no end marker, and the note says
    /// where it ends and how many events it kept and lost).
    fn record_failed(&mut self, e: tracer_core::tracefile::RecordError) {
        // Finishing a stopped recording returns the final counts.
        let e = match self.recorder.take().map(Recorder::finish) {
            Some(Err(last)) => last,
            _ => e,
        };
        log::error!("recording: {e}");
        self.record_note = Some((format!("REC failed: {e}"), true));
    }

    fn record_batch(&mut self, batch: &[Event]) {
        let Some(rec) = self.recorder.as_mut() else {
            return;
        };
        if let Err(e) = rec.sync_nodes(&self.nodes).and_then(|()| rec.append(batch)) {
            self.record_failed(e);
        }
    }

    fn build(&self, ui: &UiState, replay: Option<&Replay>) -> Arc<Snapshot> {
        let (uptime, status) = match replay {
            Some(r) => (
                u64::try_from(r.clock.now() - r.clock.start()).unwrap_or(0),
                Some(self.replay_status(r)),
            ),
            None => (
                u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX),
                None,
            ),
        };
        let mut snap = snapshot::build(&self.model, ui, uptime, status);
        snap.header.recording = self.recorder.as_ref().map(|r| Recording {
            file: r.file_name(),
            events: r.events(),
        });
        snap.header.record_note = self.record_note.clone();
        if let Some(r) = replay {
            snap.header.incomplete = r.note.clone();
            if ui.tab == crate::tui::ui_state::Tab::Health {
                snap.health.inputs = r.inputs.clone();
            }
        }
        Arc::new(snap)
    }

    fn apply_range(&mut self, r: &Replay, range: std::ops::Range<usize>) -> bool {
        let any = !range.is_empty();
        for ev in &r.events[range] {
            self.model.apply(ev);
        }
        any
    }

    fn replay_cmd(&mut self, r: &mut Replay, cmd: ReplayCmd) {
        match cmd {
            ReplayCmd::TogglePlay => r.clock.toggle(),
            ReplayCmd::Faster => r.clock.faster(),
            ReplayCmd::Slower => r.clock.slower(),
            ReplayCmd::Step => {
                let range = r.clock.step();
                self.apply_range(r, range);
                self.refresh(true);
            }
            ReplayCmd::JumpTo(secs) => {
                let j = r.clock.jump(secs);
                if j.rebuild {
                    let lifetimes = std::mem::take(&mut self.model.lifetimes);
                    self.model = Model::new(self.nodes.clone(), self.history);
                    self.model.give_lifetimes(lifetimes);
                }
                self.apply_range(r, j.apply);
                self.refresh(true);
            }
        }
    }

    /// Runs until the UI goes away (its `UiState` sender is dropped) or
    /// `stop` resolves. `live` is the live event stream, if any.
    pub async fn run(
        &mut self,
        mut ui_rx: watch::Receiver<UiState>,
        snap_tx: watch::Sender<Arc<Snapshot>>,
        mut live: Option<&mut mpsc::Receiver<Vec<Event>>>,
        mut replay: Option<Replay>,
        stop: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(stop);
        if let Some(r) = &replay {
            // The Chains view's history lists the whole recording's
            // mappings, wherever the replay stands.
            let all = super::model::lifetimes::Lifetimes::of_all(&r.events, &self.nodes);
            self.model.give_lifetimes(all);
            // So do the timeline bar's finding marks.
            self.replay_findings = finding_times(&r.events, &r.clock, &self.nodes);
        }
        let mut ui = ui_rx.borrow().clone();
        self.record_toggles(&ui);
        let mut tick = tokio::time::interval(Duration::from_millis(1000 / FPS));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut last_tick = Instant::now();
        let mut dirty = true;
        let mut live_open = live.is_some();
        loop {
            tokio::select! {
                batch = async { live.as_mut().expect("guarded").recv().await }, if live_open => {
                    match batch {
                        Some(b) => {
                            if let Some(src) = &self.node_source {
                                let now = src();
                                if now != self.nodes {
                                    self.model.set_nodes(now.clone());
                                    self.nodes = now;
                                }
                            }
                            self.record_batch(&b);
                            b.iter().for_each(|e| self.model.apply(e));
                            dirty = true;
                        }
                        None => live_open = false,
                    }
                }
                changed = ui_rx.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    ui = ui_rx.borrow_and_update().clone();
                    self.record_toggles(&ui);
                    let _ = snap_tx.send(self.build(&ui, replay.as_ref()));
                }
                cmd = async { replay.as_mut().expect("guarded").cmds.recv().await }, if replay.is_some() => {
                    if let (Some(cmd), Some(r)) = (cmd, replay.as_mut()) {
                        self.replay_cmd(r, cmd);
                        dirty = true;
                    }
                }
                _ = tick.tick() => {
                    let dt = last_tick.elapsed();
                    last_tick = Instant::now();
                    if let Some(r) = replay.as_mut() {
                        let range = r.clock.advance(u64::try_from(dt.as_nanos()).unwrap_or(u64::MAX));
                        let playing = r.clock.playing;
                        let any = self.apply_range(r, range);
                        dirty |= any || playing;
                        // Refresh at once when playback stops (end of trace).
                        self.refresh(any && !playing);
                    }
                    self.refresh(false);
                    if let Some(Err(e)) = self.recorder.as_mut().map(Recorder::flush_if_due) {
                        self.record_failed(e);
                    }
                    if dirty || replay.is_none() {
                        let _ = snap_tx.send(self.build(&ui, replay.as_ref()));
                        dirty = false;
                    }
                }
                _ = &mut stop => return,
            }
        }
    }
}
