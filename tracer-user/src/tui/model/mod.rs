//! The ingest side's state: the engine plus what only the UI keeps (recent
//! events, rates, probe health). Pure: events in, [`Snapshot`]s out; the
//! runner owns it in its own task so the terminal never slows ingestion.
//!
//! [`Snapshot`]: super::snapshot::Snapshot

pub mod history;
pub mod lifetimes;
pub mod rates;

use std::{collections::BTreeMap, sync::Arc};

use tracer_core::{
    engine::{snapshot::SnapshotOptions, Engine, EngineConfig, Health},
    event::{Event, NodeInfo},
};

use self::{history::History, lifetimes::Lifetimes, rates::Rates};

/// Mappings per domain the Chains view lists (all are counted).
pub const LISTED_MAPPINGS: usize = 512;

pub struct Model {
    pub engine: Engine,
    pub history: History,
    pub rates: Rates,
    pub health: Health,
    /// The engine's read-only view, refreshed by [`Model::refresh`].
    pub analysis: Arc<tracer_core::engine::Snapshot>,
    /// Evidence events of findings, kept after they leave `history`.
    pub evidence: BTreeMap<u64, history::Row>,
    /// Events applied since the last [`Model::refresh`].
    pub stale: u64,
    /// Ids of the events passing the Events view's filter, kept up to date
    /// incrementally so a filtered frame costs only the new events.
    pub filtered: std::cell::RefCell<FilterCache>,
    /// A replay's mappings and their lifetimes over the whole recording
    /// (the Chains view's history), computed once when it opens; empty live.
    pub lifetimes: Lifetimes,
}

#[derive(Debug, Default)]
pub struct FilterCache {
    pub filter: crate::tui::filter::Filter,
    /// Newest event id examined.
    pub scanned: Option<u64>,
    /// Matching ids, ascending.
    pub ids: std::collections::VecDeque<u64>,
}

/// Live, each node's events arrive with their own latency (a nested
/// guest's agent is two virtio-serial hops away), so a host's MAP_DMA is
/// often applied well before the guest MAP it follows: keep unmatched host
/// calls this long (the engine's default, for wall-sorted files, is 0.1 s).
const LIVE_SKEW_NS: u64 = 2_000_000_000;

impl Model {
    pub fn new(nodes: Vec<NodeInfo>, history_capacity: usize) -> Self {
        let engine = Engine::new(
            nodes,
            EngineConfig {
                clock_skew_ns: LIVE_SKEW_NS,
                ..EngineConfig::default()
            },
        );
        let analysis = Arc::new(engine.snapshot(Self::snapshot_options()));
        Model {
            engine,
            history: History::new(history_capacity),
            rates: Rates::default(),
            health: Health::default(),
            analysis,
            evidence: BTreeMap::new(),
            stale: 0,
            filtered: Default::default(),
            lifetimes: Lifetimes::default(),
        }
    }

    fn snapshot_options() -> SnapshotOptions {
        SnapshotOptions {
            max_mappings: LISTED_MAPPINGS,
        }
    }

    /// A replay: the lifetimes of the whole recording, computed once.
    pub fn give_lifetimes(&mut self, lifetimes: Lifetimes) {
        self.lifetimes = lifetimes;
    }

    pub fn nodes(&self) -> &[NodeInfo] {
        self.engine.nodes()
    }

    /// Nodes joined (remote agents) or clocks refined since the start.
    pub fn set_nodes(&mut self, nodes: Vec<NodeInfo>) {
        self.engine.set_nodes(nodes);
    }

    pub fn apply(&mut self, ev: &Event) {
        let id = self.engine.apply(ev);
        self.history.push(id, ev);
        self.rates.record(ev.node, ev.ts_ns);
        self.health.fold(ev.node, &ev.kind);
        self.stale += 1;
    }

    /// Re-reads the engine's view (findings, chains, doorbells). Costs more
    /// than applying an event; the runner calls it a few times a second.
    pub fn refresh(&mut self) {
        if self.stale == 0 {
            return;
        }
        self.stale = 0;
        let snap = self.engine.snapshot(Self::snapshot_options());
        for f in &snap.findings {
            for id in f.evidence.iter().chain(std::iter::once(&f.at)) {
                if self.evidence.contains_key(id) {
                    continue;
                }
                if let Some(row) = self.history.get(*id) {
                    self.evidence.insert(*id, row.clone());
                }
            }
        }
        self.analysis = Arc::new(snap);
    }

    /// The event row of `id`, from the history or the kept evidence.
    pub fn row(&self, id: u64) -> Option<&history::Row> {
        self.history.get(id).or_else(|| self.evidence.get(&id))
    }
}
