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
//! Applying an event is two steps, in this order:
//!
//! 1. **State** (`state.rs`, written only by `apply.rs`): the event updates
//!    its layer (guest domains and endpoints, host containers, IOMMU
//!    domains, pins and memslots, MSI regions, vectors and messages), the
//!    join of guest requests with host calls, and the [`Health`] counters.
//!    It returns a `Delta` (`delta.rs`): what the rules need that the new
//!    state no longer shows (the vectors bound before a SET_IRQS, the
//!    mappings an UNMAP left, a MAP_DMA's group of pins and `iommu_map`s, a
//!    region seen for the first time, the binding an `msi_vector` disable
//!    removed).
//! 2. **Rules** ([`rules`], one file per rule): the rules subscribed to the
//!    event's kind run, in the order [`rules`] documents (rule-id order),
//!    over `&State` and the delta, and write their findings into the
//!    engine's sink ([`rules::Findings`]). Rules never change the state.
//!
//! The end-of-trace rules run when [`Engine::findings`] is asked, over the
//! state and the [`Engine::pairings`] (the pairing resolution is a state
//! component of its own, `pairing.rs`, over the join's records).
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
mod delta;
pub mod devices;
pub mod guest;
pub mod health;
pub mod host;
pub mod interval;
pub mod iommufd;
pub mod join;
pub mod keys;
pub mod msi;
pub mod pairing;
mod prefetch;
pub mod rules;
mod small_map;
pub mod snapshot;
mod state;

pub use chain::{Chain, ChainQuery, Hop, HopKind, HopStatus};
pub use health::Health;
pub use keys::{ContainerKey, DevKey, EvId, GuestDomainKey, IommuDomainKey, VmKey};
pub use pairing::{ForcedPair, PairParseError, Pairing};
pub use rules::{Finding, RuleId, Severity};
pub use snapshot::Snapshot;

use crate::event::{Event, NodeInfo};
use delta::Delta;
use state::State;

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

#[derive(Clone, Debug)]
pub struct Engine {
    pub(crate) state: State,
    pub(crate) found: rules::Findings,
    rules: rules::Memory,
    pub(crate) events_seen: u64,
    retained: Vec<Event>,
}

impl Engine {
    pub fn new(nodes: Vec<NodeInfo>, cfg: EngineConfig) -> Self {
        Engine {
            state: State::new(nodes, cfg),
            found: Default::default(),
            rules: Default::default(),
            events_seen: 0,
            retained: Vec::new(),
        }
    }

    /// iommufd objects and VFIO-cdev device bindings seen so far.
    pub fn iommufd(&self) -> &iommufd::IommufdState {
        &self.state.iommufd
    }

    /// Applies one event; returns its id.
    pub fn apply(&mut self, ev: &Event) -> EvId {
        let id = self.events_seen;
        self.events_seen += 1;
        let fx = self.state.apply(ev, id);
        rules::on_event(&self.state, &mut self.rules, ev, id, &fx, &mut self.found);
        if let Delta::MapDma(group) = fx {
            self.state.host.recycle_pending(ev.node, ev.tid, group);
        }
        if self.state.cfg.retain_events {
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
                self.state.prefetch(next.borrow());
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
        self.state.clock.nodes()
    }

    /// Updates the node table of a live run: agents that joined since, and
    /// refined clock offsets. Ids of known nodes must not change.
    pub fn set_nodes(&mut self, nodes: Vec<NodeInfo>) {
        self.state.clock.set_nodes(nodes);
    }

    pub fn health(&self) -> &Health {
        &self.state.health
    }

    /// The findings raised so far while applying events (the per-event
    /// rules), in the order they were raised; [`Engine::findings`] adds the
    /// end-of-trace ones. For a live consumer that reports findings as they
    /// come.
    pub fn raised(&self) -> &[Finding] {
        &self.found.list
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
        let (end, absorbed) = rules::finish(&self.state, &self.state.pairings());
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
        out.extend(end.list);
        out
    }

    /// Guest domains paired with the host side serving them.
    pub fn pairings(&self) -> Vec<Pairing> {
        self.state.pairings()
    }
}
