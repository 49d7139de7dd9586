//! What the `probe_status` and `drops` events say: each probe's latest state
//! and hits, and each node's drop counters (with whether they ever grew).

use std::collections::BTreeMap;

use tracer_core::event::{Drops, NodeId, ProbeState, ProbeStatus};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeRow {
    pub status: ProbeStatus,
    /// Hits in the previous status report (to show activity).
    pub prev_hits: u64,
    pub ever_attached: bool,
}

#[derive(Debug, Default)]
pub struct HealthState {
    pub probes: BTreeMap<(NodeId, String), ProbeRow>,
    pub drops: BTreeMap<NodeId, Drops>,
}

impl HealthState {
    pub fn probe(&mut self, node: NodeId, p: &ProbeStatus) {
        let attached = p.status == ProbeState::Attached;
        self.probes
            .entry((node, p.probe.clone()))
            .and_modify(|row| {
                row.prev_hits = row.status.hits;
                row.status = p.clone();
                row.ever_attached |= attached;
            })
            .or_insert_with(|| ProbeRow {
                status: p.clone(),
                prev_hits: p.hits,
                ever_attached: attached,
            });
    }

    pub fn drops(&mut self, node: NodeId, d: &Drops) {
        self.drops.insert(node, d.clone());
    }

    /// Drops over every node.
    pub fn total_drops(&self) -> u64 {
        self.drops.values().map(Drops::total).sum()
    }

    /// (attached, not attached) probe counts.
    pub fn attach_counts(&self) -> (usize, usize) {
        let up = self
            .probes
            .values()
            .filter(|r| r.status.status == ProbeState::Attached)
            .count();
        (up, self.probes.len() - up)
    }
}
