//! The engine: pure, deterministic state rebuilt from [`Event`]s.
//!
//! Feed events in time order (wall clock: `ts_ns + clock_offset_ns` of the
//! event's node) with [`Engine::apply`], or a whole slice with
//! [`Engine::apply_all`] (same result, faster: it prefetches); read state
//! back as
//! [`Engine::chain`] (IOVA→GPA→HVA→HPA with the event behind each hop),
//! [`Engine::pairings`] (which host container serves which guest domain),
//! [`Engine::findings`] (rule violations, see [`rules::RuleId`]) and
//! [`Engine::snapshot`] (read-only views for a TUI).
//!
//! State per layer follows the kernel: failed calls change nothing; UNMAPs
//! remove what the kernel says they removed; partial unmaps split mappings
//! ([`interval::IntervalMap`]). Host `vfio_pin` / `iommu_map` events of a
//! thread between two of its ioctl events belong to the MAP_DMA that ends the
//! group: that ties a container to its IOMMU domains and HVAs to HPAs.
//!
//! ```
//! use tracer_core::engine::{Engine, EngineConfig};
//! let mut engine = Engine::new(vec![], EngineConfig::default());
//! # let events: Vec<tracer_core::event::Event> = vec![];
//! for ev in &events {
//!     engine.apply(ev);
//! }
//! let findings = engine.findings();
//! # assert!(findings.is_empty());
//! ```

mod apply;
pub mod chain;
pub mod clock;
pub mod devices;
pub mod guest;
pub mod host;
pub mod interval;
pub mod join;
pub mod keys;
pub mod msi;
pub mod pairing;
pub mod rules;
pub mod snapshot;

use std::collections::BTreeMap;

pub use chain::{Chain, ChainQuery, Hop, HopKind, HopStatus};
pub use keys::{ContainerKey, DevKey, EvId, GuestDomainKey, IommuDomainKey, VmKey};
pub use pairing::{ForcedPair, PairParseError, Pairing};
pub use rules::{Finding, RuleId, Severity};
pub use snapshot::Snapshot;

use crate::event::{Drops, Event, NodeId, NodeInfo, ProbeStatus};

#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// How long after a guest MAP/UNMAP the host's MAP_DMA/UNMAP_DMA may come.
    pub join_window_ns: u64,
    /// How much earlier than the guest request a host call may appear
    /// (clock offsets between nodes are not exact).
    pub clock_skew_ns: u64,
    /// Matches needed before a guest domain is paired automatically.
    pub min_join_matches: u64,
    pub forced_pairs: Vec<ForcedPair>,
    /// Keep every applied event so [`Engine::event`] can resolve ids.
    pub retain_events: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            join_window_ns: 1_000_000_000,
            clock_skew_ns: 100_000_000,
            min_join_matches: 1,
            forced_pairs: Vec::new(),
            retain_events: false,
        }
    }
}

/// What the health events said.
#[derive(Clone, Debug, Default)]
pub struct Health {
    /// Latest status per (node, probe), and whether it was ever attached.
    pub probes: BTreeMap<(NodeId, String), (ProbeStatus, bool)>,
    /// Latest (cumulative) drop counters per node.
    pub drops: BTreeMap<NodeId, Drops>,
}

#[derive(Clone, Debug)]
pub struct Engine {
    pub(crate) cfg: EngineConfig,
    pub(crate) clock: clock::Clock,
    pub(crate) guest: guest::GuestState,
    pub(crate) host: host::HostState,
    pub(crate) msi: msi::MsiState,
    pub(crate) join: join::Join,
    pub(crate) found: rules::Findings,
    pub(crate) health: Health,
    pub(crate) events_seen: u64,
    retained: Vec<Event>,
}

impl Engine {
    pub fn new(nodes: Vec<NodeInfo>, cfg: EngineConfig) -> Self {
        let join = join::Join::new(cfg.join_window_ns, cfg.clock_skew_ns);
        Engine {
            cfg,
            clock: clock::Clock::new(nodes),
            guest: Default::default(),
            host: Default::default(),
            msi: Default::default(),
            join,
            found: Default::default(),
            health: Default::default(),
            events_seen: 0,
            retained: Vec::new(),
        }
    }

    /// Applies one event; returns its id.
    pub fn apply(&mut self, ev: &Event) -> EvId {
        let id = self.events_seen;
        self.events_seen += 1;
        self.apply_event(ev, id);
        if self.cfg.retain_events {
            self.retained.push(ev.clone());
        }
        id
    }

    /// Applies events in order, exactly like [`Engine::apply`] on each; returns
    /// the id of the first. Meanwhile it asks the CPU to fetch the mapping
    /// slots the events a few places ahead will touch, so their cache misses
    /// overlap (replay is bound by those misses, see `benches/engine.rs`).
    pub fn apply_all<E: std::borrow::Borrow<Event>>(&mut self, events: &[E]) -> EvId {
        const AHEAD: usize = 4;
        let first = self.events_seen;
        for (i, ev) in events.iter().enumerate() {
            if let Some(next) = events.get(i + AHEAD) {
                self.prefetch(next.borrow());
            }
            self.apply(ev.borrow());
        }
        first
    }

    /// The event with that id, when `retain_events` is on.
    pub fn event(&self, id: EvId) -> Option<&Event> {
        usize::try_from(id).ok().and_then(|i| self.retained.get(i))
    }

    pub fn events_seen(&self) -> u64 {
        self.events_seen
    }

    pub fn nodes(&self) -> &[NodeInfo] {
        self.clock.nodes()
    }

    /// Updates the node table of a live run: agents that joined since, and
    /// refined clock offsets. Ids of known nodes must not change.
    pub fn set_nodes(&mut self, nodes: Vec<NodeInfo>) {
        self.clock.set_nodes(nodes);
    }

    pub fn health(&self) -> &Health {
        &self.health
    }

    /// Findings dropped beyond [`rules::MAX_PER_RULE`] per rule.
    pub fn suppressed(&self) -> u64 {
        self.found.suppressed
    }

    /// Every finding: those detected while applying events, then the
    /// cross-layer ones evaluated on the current state. Deterministic.
    /// A failed MAP_DMA a cross-layer finding explains as the consequence
    /// of its root cause (VT009) is reported there, not as VT008 as well.
    pub fn findings(&self) -> Vec<Finding> {
        let (cross, absorbed) = self.evaluate();
        let mut out: Vec<Finding> = self
            .found
            .list
            .iter()
            .filter(|f| {
                // A MAP_DMA's VT008 has the failed call as its last evidence.
                !(f.rule == RuleId::MapFailed
                    && f.evidence.last().is_some_and(|e| absorbed.contains(e)))
            })
            .cloned()
            .collect();
        out.extend(cross);
        out
    }

    /// Guest domains paired with the host side serving them.
    pub fn pairings(&self) -> Vec<Pairing> {
        self.resolve_pairings()
    }
}
