//! What one frame shows: built on the ingest side from the [`Model`] and the
//! user's [`UiState`], handed to the terminal thread, drawn by `views::draw`.
//! Only the active tab's pane is filled, and lists carry just the rows around
//! their cursor, so a frame costs the same with 10 or 10 million events.

mod chains;
mod doorbells;
mod events;
mod findings;
mod health;

pub use chains::{ChainRow, ChainRowKind, ChainsPane, HistoryPane, HistoryRow, SelectedChain};
pub use doorbells::{DeviceDoorbells, DoorbellsPane, VectorRow, WindowKind};
pub use events::{EventRow, EventsPane};
pub use findings::FindingsPane;
#[cfg(test)]
pub use health::ProbeLine;
pub use health::{HealthPane, InputLine};

use super::{
    model::Model,
    ui_state::{Tab, UiState},
};

#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeLine {
    pub name: String,
    pub kernel: String,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Header {
    pub replay: bool,
    pub nodes: Vec<NodeLine>,
    /// Live: since the session started; replay: trace time since its start.
    pub uptime_ns: u64,
    /// Events per second, every node.
    pub rate: u64,
    pub drops: u64,
    pub findings: usize,
    pub events: u64,
    /// Probes attached / not attached.
    pub probes_up: usize,
    pub probes_down: usize,
    /// Live: the recording in progress (`r`).
    pub recording: Option<Recording>,
    /// How the last recording ended: (text, is an error).
    pub record_note: Option<(String, bool)>,
    /// Replay: not every event of the files was read (damage, a file cut
    /// short); what the header says in red.
    pub incomplete: Option<String>,
}

/// A recording in progress, for the header line.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Recording {
    /// File name.
    pub file: String,
    /// Events written so far.
    pub events: u64,
}

/// The replay clock, for the timeline bar.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReplayStatus {
    /// Aligned (wall) time of the first and last events.
    pub start_ns: i128,
    pub end_ns: i128,
    pub now_ns: i128,
    pub playing: bool,
    pub speed: f64,
    /// Events applied / in the files.
    pub applied: usize,
    pub total: usize,
    /// Reading stopped early (damage); shown in the bar.
    pub note: Option<String>,
    /// Aligned times of the recording's findings (all of them, wherever
    /// the replay stands), sorted: marks on the bar, `[`/`]` jump there.
    pub findings_ns: std::sync::Arc<[i128]>,
}

impl ReplayStatus {
    /// Seconds from the start of the first finding after now (`next`) or
    /// the last one before now (`!next`).
    pub fn finding_jump(&self, next: bool) -> Option<f64> {
        let t = if next {
            self.findings_ns.iter().find(|&&t| t > self.now_ns)
        } else {
            self.findings_ns.iter().rev().find(|&&t| t < self.now_ns)
        }?;
        Some((t - self.start_ns).max(0) as f64 / 1e9)
    }
}

#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub header: Header,
    pub events: EventsPane,
    pub chains: ChainsPane,
    pub doorbells: DoorbellsPane,
    pub findings: FindingsPane,
    pub health: HealthPane,
    pub replay: Option<ReplayStatus>,
    /// The [`UiState::generation`] it was built for.
    pub generation: u64,
}

/// Builds the frame for `ui` (only its tab's pane).
pub fn build(
    model: &Model,
    ui: &UiState,
    uptime_ns: u64,
    replay: Option<ReplayStatus>,
) -> Snapshot {
    let (up, down) = model.health.attach_counts();
    let header = Header {
        replay: ui.replay,
        nodes: model
            .nodes()
            .iter()
            .map(|n| NodeLine {
                name: n.name.clone(),
                kernel: n.kernel.clone(),
            })
            .collect(),
        uptime_ns,
        rate: model.rates.total_rate(),
        drops: model.health.total_drops(),
        findings: model.analysis.findings.len(),
        events: model.engine.events_seen(),
        probes_up: up,
        probes_down: down,
        recording: None,
        record_note: None,
        incomplete: None,
    };
    let mut snap = Snapshot {
        header,
        replay,
        generation: ui.generation,
        ..Snapshot::default()
    };
    match ui.tab {
        Tab::Events => snap.events = events::build(model, ui),
        Tab::Chains => {
            snap.chains = chains::build(model, ui, snap.replay.as_ref().map(|r| r.start_ns))
        }
        Tab::Doorbells => snap.doorbells = doorbells::build(model, ui),
        Tab::Findings => snap.findings = findings::build(model, ui),
        Tab::Health => snap.health = health::build(model),
    }
    snap
}

/// Indices `[from, to)` of a window of about `2 * height + 1` rows around
/// `cursor` in a list of `len`.
pub fn window(len: usize, cursor: usize, height: usize) -> (usize, usize) {
    let h = height.max(1);
    let from = cursor.saturating_sub(h);
    let to = (cursor + h + 1).min(len);
    (from, to)
}
