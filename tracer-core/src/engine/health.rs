//! What the `probe_status` and `drops` events say: each probe's latest
//! state (and whether it was ever attached), the hits of its previous
//! report, and each node's drop counters. One fold, used by the engine
//! (`check`'s summary) and the terminal UI's Health tab.

use std::collections::BTreeMap;

use crate::event::{Drops, EventKind, NodeId, ProbeState, ProbeStatus, StreamGap};

#[derive(Clone, Debug, Default)]
pub struct Health {
    /// Latest status per (node, probe), and whether it was ever attached.
    pub probes: BTreeMap<(NodeId, String), (ProbeStatus, bool)>,
    /// Latest (cumulative) drop counters per node.
    pub drops: BTreeMap<NodeId, Drops>,
    /// Latest stream gap per node (an agent lost mid-stream, its drops).
    pub gaps: BTreeMap<NodeId, StreamGap>,
    /// Hits in the status report before the latest, per (node, probe).
    prev_hits: BTreeMap<(NodeId, String), u64>,
}

impl Health {
    /// Folds a health event in; other kinds are ignored. True when it was one.
    pub fn fold(&mut self, node: NodeId, kind: &EventKind) -> bool {
        match kind {
            EventKind::ProbeStatus(p) => self.probe(node, p),
            EventKind::Drops(d) => self.drops(node, d),
            EventKind::StreamGap(g) => {
                self.gaps.insert(node, g.clone());
            }
            _ => return false,
        }
        true
    }

    pub fn probe(&mut self, node: NodeId, p: &ProbeStatus) {
        let ok = p.status == ProbeState::Attached;
        let key = (node, p.probe.clone());
        let prev = match self.probes.get_mut(&key) {
            Some(slot) => {
                let prev = slot.0.hits;
                *slot = (p.clone(), slot.1 || ok);
                prev
            }
            None => {
                self.probes.insert(key.clone(), (p.clone(), ok));
                p.hits
            }
        };
        self.prev_hits.insert(key, prev);
    }

    pub fn drops(&mut self, node: NodeId, d: &Drops) {
        self.drops.insert(node, d.clone());
    }

    /// Hits of a probe since its previous status report.
    pub fn new_hits(&self, node: NodeId, probe: &str) -> u64 {
        let key = (node, probe.to_string());
        let now = self.probes.get(&key).map_or(0, |(p, _)| p.hits);
        now.saturating_sub(self.prev_hits.get(&key).copied().unwrap_or(now))
    }

    /// Drops over every node.
    pub fn total_drops(&self) -> u64 {
        let probes: u64 = self.drops.values().map(Drops::total).sum();
        let streams: u64 = self
            .gaps
            .values()
            .map(|g| {
                g.dropped
                    .saturating_add(g.lost)
                    .saturating_add(g.missing_batches)
            })
            .sum();
        probes.saturating_add(streams)
    }

    /// (attached, not attached) probe counts, by latest status.
    pub fn attach_counts(&self) -> (usize, usize) {
        let up = self
            .probes
            .values()
            .filter(|(p, _)| p.status == ProbeState::Attached)
            .count();
        (up, self.probes.len() - up)
    }
}
