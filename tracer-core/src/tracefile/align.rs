//! Clock alignment of separately recorded nodes from the events themselves.
//!
//! Files recorded on different machines are merged by each node's wall
//! clock (`clock_offset_ns`). A VM's wall clock is often off: a guest
//! without NTP starts from the emulated RTC, which has 1 s resolution, so
//! a guest and its host disagree by up to a second (or much more). The
//! join of guest and host views needs the host's MAP_DMA to follow the
//! guest's virtio-iommu MAP by the VMM's latency, so a skew of even a few
//! milliseconds the wrong way breaks it.
//!
//! The data carries its own clock: each guest MAP of (IOVA, size) that the
//! VMM propagates is followed by a host MAP_DMA of the same (IOVA, size).
//! For every such candidate pair the difference host − guest is computed;
//! the true skew shows up as a tight cluster of differences (the VMM's
//! latency spread), the accidental pairs (the same IOVA reused in another
//! round) scatter. When the densest cluster is large enough and does not
//! already put the host just after the guest, the guest node's clock is
//! shifted so the earliest difference in the cluster becomes `MARGIN_NS`.

use std::collections::HashMap;

use crate::event::{Event, EventKind, NodeId, NodeInfo, ViommuOp};

/// Width of the cluster of host − guest differences (the VMM's latency
/// spread; measured under TCG: well under 10 ms).
const CLUSTER_NS: i128 = 50_000_000;
/// Where the earliest difference is put after the shift.
const MARGIN_NS: i128 = 50_000;
/// Differences in [0, this) are already fine: no shift.
const ALIGNED_BELOW_NS: i128 = 500_000_000;
/// Fewest pairs in the cluster to believe it...
const MIN_PAIRS: usize = 4;

/// One node's clock shifted to agree with the host node serving it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alignment {
    pub guest: NodeId,
    pub host: NodeId,
    /// Added to the guest's `clock_offset_ns`.
    pub shift_ns: i64,
    /// Guest MAPs in the cluster / guest MAPs with a same-(IOVA, size) host
    /// MAP_DMA on that host.
    pub pairs: usize,
    pub candidates: usize,
}

impl std::fmt::Display for Alignment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "clock shifted by {:+.3} ms: {} of {} guest MAPs are followed by the host's MAP_DMA of the same IOVA and size at a consistent delay",
            self.shift_ns as f64 / 1e6,
            self.pairs,
            self.candidates
        )
    }
}

fn wall(e: &Event, nodes: &[NodeInfo]) -> i128 {
    super::aligned_ns(e, nodes)
}

/// Estimates each guest node's clock shift against the host that follows
/// its maps and applies it to `nodes`; returns what it changed.
pub fn align_nodes(events: &[Event], nodes: &mut [NodeInfo]) -> Vec<Alignment> {
    // Host MAP_DMAs by (iova, size): (node, wall time).
    let mut host: HashMap<(u64, u64), Vec<(NodeId, i128)>> = HashMap::new();
    for e in events {
        if let EventKind::VfioMapDma(m) = &e.kind {
            if m.errno == 0 {
                host.entry((m.iova, m.size))
                    .or_default()
                    .push((e.node, wall(e, nodes)));
            }
        }
    }
    if host.is_empty() {
        return Vec::new();
    }
    // host − guest per (guest node, host node), one list per guest MAP.
    let mut diffs: HashMap<(NodeId, NodeId), Vec<(usize, i128)>> = HashMap::new();
    let mut maps_seen = 0usize;
    for e in events {
        let EventKind::ViommuReq(r) = &e.kind else {
            continue;
        };
        if r.op != ViommuOp::Map || r.status != 0 || r.virt_end < r.virt_start {
            continue;
        }
        let key = (r.virt_start, r.virt_end - r.virt_start + 1);
        let Some(hs) = host.get(&key) else { continue };
        maps_seen += 1;
        let t = wall(e, nodes);
        for &(h, ht) in hs.iter().filter(|(h, _)| *h != e.node) {
            diffs
                .entry((e.node, h))
                .or_default()
                .push((maps_seen, ht - t));
        }
    }
    // The best host per guest: the densest cluster.
    let mut best: HashMap<NodeId, (NodeId, usize, usize, i128, i128)> = HashMap::new();
    for ((g, h), mut d) in diffs {
        let candidates = {
            let mut ids: Vec<usize> = d.iter().map(|(i, _)| *i).collect();
            ids.dedup();
            ids.len()
        };
        d.sort_by_key(|(_, x)| *x);
        let (mut lo, mut top) = (0usize, (0usize, 0usize));
        for hi in 0..d.len() {
            while d[hi].1 - d[lo].1 > CLUSTER_NS {
                lo += 1;
            }
            if hi + 1 - lo > top.1 - top.0 {
                top = (lo, hi + 1);
            }
        }
        let cluster = &d[top.0..top.1];
        let mut ids: Vec<usize> = cluster.iter().map(|(i, _)| *i).collect();
        ids.sort_unstable();
        ids.dedup();
        let pairs = ids.len();
        let (first, last) = (cluster[0].1, cluster[cluster.len() - 1].1);
        if best.get(&g).is_none_or(|b| pairs > b.2) {
            best.insert(g, (h, candidates, pairs, first, last));
        }
    }
    let mut out = Vec::new();
    let mut guests: Vec<_> = best.into_iter().collect();
    guests.sort_by_key(|(g, _)| *g);
    for (g, (h, candidates, pairs, first, last)) in guests {
        if pairs < MIN_PAIRS || pairs * 2 < candidates {
            continue;
        }
        if first >= 0 && last < ALIGNED_BELOW_NS {
            continue;
        }
        let Ok(shift) = i64::try_from(first - MARGIN_NS) else {
            continue;
        };
        if let Some(n) = nodes.get_mut(usize::from(g)) {
            n.clock_offset_ns = n.clock_offset_ns.saturating_add(shift);
            out.push(Alignment {
                guest: g,
                host: h,
                shift_ns: shift,
                pairs,
                candidates,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Comm, NodeRole, VfioMapDma, ViommuReq};

    fn node(name: &str, off: i64) -> NodeInfo {
        NodeInfo {
            name: name.into(),
            role: NodeRole::Host,
            kernel: "k".into(),
            machine: "x86_64".into(),
            clock_offset_ns: off,
        }
    }

    fn ev(node: NodeId, ts_ns: u64, kind: EventKind) -> Event {
        Event {
            ts_ns,
            node,
            pid: 1,
            tid: 1,
            comm: Comm::new("t"),
            kind,
        }
    }

    fn guest_map(ts: u64, iova: u64) -> Event {
        ev(
            1,
            ts,
            EventKind::ViommuReq(ViommuReq {
                op: ViommuOp::Map,
                domain: 4,
                endpoint: 0,
                virt_start: iova,
                virt_end: iova + 0xfff,
                phys_start: 0x4000_0000 + iova,
                flags: 3,
                status: 0,
                resv: Vec::new(),
            }),
        )
    }

    fn host_map(ts: u64, iova: u64) -> Event {
        ev(
            0,
            ts,
            EventKind::VfioMapDma(VfioMapDma {
                container: 7,
                iova,
                vaddr: 0x7f00_0000_0000 + iova,
                size: 0x1000,
                flags: 3,
                errno: 0,
            }),
        )
    }

    /// Two rounds over the same IOVAs (so every guest map has a wrong
    /// candidate too), the host 300 µs ± jitter after the guest.
    fn rounds(skew_ns: i64) -> (Vec<Event>, Vec<NodeInfo>) {
        let mut events = Vec::new();
        for round in 0..2u64 {
            for i in 0..16u64 {
                let t = 1_000_000_000 + round * 2_000_000_000 + i * 10_000_000;
                let iova = 0x10_0000 + i * 0x1000;
                events.push(guest_map(t, iova));
                events.push(host_map(t + 300_000 + (i % 3) * 40_000, iova));
            }
        }
        // The guest's wall clock is off by `skew`.
        (events, vec![node("l1", 0), node("l2", skew_ns)])
    }

    #[test]
    fn a_guest_clock_ahead_or_behind_is_brought_back() {
        for skew in [700_000_000i64, -800_000_000, 3_000_000_000, 2_000_000] {
            let (events, mut nodes) = rounds(skew);
            let a = align_nodes(&events, &mut nodes);
            assert_eq!(a.len(), 1, "skew {skew}: {a:?}");
            assert_eq!((a[0].guest, a[0].host), (1, 0));
            assert_eq!((a[0].pairs, a[0].candidates), (32, 32));
            // The host now follows each guest MAP by 50 µs + jitter.
            let off = nodes[1].clock_offset_ns;
            assert_eq!(off, 300_000 - 50_000, "skew {skew}");
        }
    }

    #[test]
    fn aligned_clocks_and_thin_evidence_are_left_alone() {
        let (events, mut nodes) = rounds(-100_000); // host still after guest
        assert!(align_nodes(&events, &mut nodes).is_empty());
        assert_eq!(nodes[1].clock_offset_ns, -100_000);
        // Three pairs are not enough to move a clock.
        let (events, mut nodes) = rounds(5_000_000_000);
        let few: Vec<Event> = events.into_iter().take(6).collect();
        assert!(align_nodes(&few, &mut nodes).is_empty());
        // No host MAP_DMA at all.
        let (events, mut nodes) = rounds(5_000_000_000);
        let guest_only: Vec<Event> = events.into_iter().filter(|e| e.node == 1).collect();
        assert!(align_nodes(&guest_only, &mut nodes).is_empty());
    }
}
