//! What the checked events cover: every input file read to its end marker,
//! every live stream followed to its end, nothing dropped. Anything less
//! makes the verdict `incomplete`, and marks the findings that the missing
//! data may have caused.

use crate::event::{Event, EventKind, NodeId, NodeInfo};
use crate::tracefile::{InputReport, ReadReport};

/// How far before a gap a finding may still be the gap's doing: the join
/// window (a host's answer to a guest request is expected within 1 s) plus
/// the reorder window of a merge (events up to 1 s out of order).
pub const GAP_MARGIN_NS: i128 = 2_000_000_000;

/// What the events handed to the check cover.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Coverage {
    /// What was read from each input file (empty for a live check).
    pub inputs: Vec<InputReport>,
    /// Live streams that stopped early or lost events (an agent lost
    /// mid-stream, events an agent dropped), one line each. When in the
    /// stream the loss happened is not known.
    pub lost_streams: Vec<String>,
}

impl Coverage {
    /// Coverage of events read from files.
    pub fn from_read(read: &ReadReport) -> Self {
        Coverage {
            inputs: read.inputs.clone(),
            lost_streams: Vec::new(),
        }
    }

    /// Why the events are not all there (empty: nothing is missing).
    pub fn reasons(&self) -> Vec<String> {
        let mut out: Vec<String> = self.inputs.iter().flat_map(InputReport::reasons).collect();
        out.extend(self.lost_streams.iter().cloned());
        out
    }

    /// Wall-clock time (ns) from which a finding may have been caused by
    /// missing data: the earliest gap, less [`GAP_MARGIN_NS`]. `None`:
    /// nothing is missing. `Some(i128::MIN)`: a gap whose place in time is
    /// unknown, so every finding may be its doing.
    pub fn suspect_from(&self, events: &[&Event], nodes: &[NodeInfo]) -> Option<i128> {
        let wall = |node: &str, ts: u64| {
            let id = nodes.iter().position(|n| n.name == node)?;
            Some(crate::event::wall_ns(nodes, NodeId::try_from(id).ok()?, ts) - GAP_MARGIN_NS)
        };
        let mut from: Option<i128> = None;
        let mut earliest = |t: i128| from = Some(from.map_or(t, |f| f.min(t)));
        for gap in self.inputs.iter().flat_map(InputReport::gaps) {
            earliest(
                gap.and_then(|g| wall(&g.node, g.ts_ns))
                    .unwrap_or(i128::MIN),
            );
        }
        if !self.lost_streams.is_empty() {
            earliest(i128::MIN);
        }
        for (_, at) in stream_gaps(events, nodes) {
            earliest(at);
        }
        // Ring drops: counters are reported within a second of the loss.
        if let Some(d) = events
            .iter()
            .find(|e| matches!(&e.kind, EventKind::Drops(d) if d.total() > 0))
        {
            earliest(crate::tracefile::aligned_ns(d, nodes) - GAP_MARGIN_NS);
        }
        from
    }
}

/// The `stream_gap` events among `events`: why (naming the node) and from
/// when findings may be their doing. An agent lost mid-stream lost what was
/// in flight just before (its time, less [`GAP_MARGIN_NS`]); events an agent
/// dropped or lost may be from any time before (`i128::MIN`).
pub fn stream_gaps(events: &[&Event], nodes: &[NodeInfo]) -> Vec<(String, i128)> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::StreamGap(g) => Some((e, g)),
            _ => None,
        })
        .map(|(e, g)| {
            let name = crate::tracefile::node_name(nodes, e.node);
            let counts = g.dropped > 0 || g.lost > 0 || g.missing_batches > 0;
            let at = if counts {
                i128::MIN
            } else {
                crate::tracefile::aligned_ns(e, nodes) - GAP_MARGIN_NS
            };
            (format!("node {name}: stream gap: {g}"), at)
        })
        .collect()
}
