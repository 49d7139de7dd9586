//! VT005 sw-msi-window-collision: the SW-MSI window collides with guest RAM
//! or DMA mappings.
//!
//! Subscribes to: `resv_region` (a new SW_MSI region, [`Delta::NewRegion`]),
//! `msi_cookie`; at the end, after the pairings: VM RAM in a window.

use std::collections::{BTreeMap, BTreeSet};

use super::{hex, range, Finding, Findings, RuleId};
use crate::engine::delta::Delta;
use crate::engine::host::is_mmio_prot;
use crate::engine::interval::overlaps;
use crate::engine::keys::{EvId, IommuDomainKey};
use crate::engine::msi::sw_msi_window;
use crate::engine::state::State;
use crate::event::{Event, MsiCookie, NodeId, ResvRegion, ResvType};

/// A software-MSI region appears: existing container mappings inside it.
pub(crate) fn on_resv_region(
    st: &State,
    e: &Event,
    r: &ResvRegion,
    fx: &Delta,
    id: EvId,
    out: &mut Findings,
) {
    if !matches!(fx, Delta::NewRegion) || r.rtype != ResvType::SwMsi {
        return;
    }
    let node = e.node;
    let hits: Vec<_> = st
        .host
        .containers_on(node)
        .filter_map(|(ck, c)| c.maps.overlapping(r.start, r.end).next().map(|m| (*ck, m)))
        .collect();
    for (ck, m) in hits {
        let msg = format!(
            "SW-MSI window {} of group {} overlaps the live DMA mapping {} of container {:#x}",
            range(r.start, r.end),
            r.group,
            range(m.start, m.last),
            ck.container
        );
        out.push(
            Finding::new(RuleId::SwMsiCollision, node, msg, vec![m.meta.ev(), id])
                .device(r.device)
                .address(m.start, m.last),
        );
    }
}

/// A domain gets its MSI cookie: DMA mappings already inside the window.
pub(crate) fn on_msi_cookie(st: &State, e: &Event, c: &MsiCookie, id: EvId, out: &mut Findings) {
    let k = IommuDomainKey {
        node: e.node,
        domain: c.domain,
    };
    let (w0, w1) = sw_msi_window(c.base);
    let Some(d) = st.host.domains.get(&k) else {
        return;
    };
    let hit = d.maps.overlapping(w0, w1).find(|m| !is_mmio_prot(m));
    if let Some(m) = hit {
        let msg = format!(
            "SW-MSI cookie window {} of domain {:#x} overlaps the live DMA mapping {} → {}",
            range(w0, w1),
            k.domain,
            range(m.start, m.last),
            hex(m.to)
        );
        out.push(
            Finding::new(RuleId::SwMsiCollision, k.node, msg, vec![m.meta.ev(), id])
                .address(m.start, m.last),
        );
    }
}

/// Software-MSI windows of a node: (start, last, event, what).
fn sw_msi_windows(st: &State, node: NodeId) -> Vec<(u64, u64, EvId, String)> {
    let mut v: Vec<_> = st
        .msi
        .node_regions(node)
        .iter()
        .filter(|(r, _)| r.rtype == ResvType::SwMsi)
        .map(|(r, ev)| {
            (
                r.start,
                r.end,
                *ev,
                format!("SW-MSI region of group {}", r.group),
            )
        })
        .collect();
    for (dk, d) in st.host.domains.iter().filter(|(dk, _)| dk.node == node) {
        if let Some((base, ev)) = d.cookie {
            let (w0, w1) = sw_msi_window(base);
            v.push((w0, w1, ev, format!("MSI cookie of domain {:#x}", dk.domain)));
        }
    }
    v
}

/// End: VFIO-using VMs whose RAM overlaps a SW-MSI window.
pub(crate) fn ram_in_window(st: &State, out: &mut Findings) {
    let nodes: BTreeSet<NodeId> = st.host.containers.keys().map(|k| k.node).collect();
    for node in nodes {
        let windows = sw_msi_windows(st, node);
        if windows.is_empty() {
            continue;
        }
        let pids: BTreeSet<u32> = st.host.containers_on(node).map(|(k, _)| k.pid()).collect();
        for pid in pids {
            for (vm, slots) in st.host.vms_of(node, pid) {
                for (slot, s) in slots {
                    let Some(last) = s.gpa.checked_add(s.size - 1) else {
                        continue;
                    };
                    // One finding per window range: the same window
                    // reported by several groups and cookies is one
                    // collision.
                    let mut by_range: BTreeMap<(u64, u64), (EvId, Vec<&str>)> = BTreeMap::new();
                    for (w0, w1, wev, what) in
                        windows.iter().filter(|w| overlaps(s.gpa, last, w.0, w.1))
                    {
                        let e = by_range.entry((*w0, *w1)).or_insert((*wev, Vec::new()));
                        e.0 = e.0.min(*wev);
                        e.1.push(what);
                    }
                    for ((w0, w1), (wev, what)) in by_range {
                        let msg = format!(
                            "guest RAM memslot {slot} {} of VM {:#x} overlaps the SW-MSI window {} ({}): guest buffers there cannot be DMA-mapped at IOVA = GPA",
                            range(s.gpa, last),
                            vm.vm,
                            range(w0, w1),
                            what.join("; ")
                        );
                        out.push(
                            Finding::new(RuleId::SwMsiCollision, node, msg, vec![wev, s.ev])
                                .address(s.gpa.max(w0), last.min(w1)),
                        );
                    }
                }
            }
        }
    }
}
