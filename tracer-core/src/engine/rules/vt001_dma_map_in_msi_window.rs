//! VT001 dma-map-in-msi-window: a guest or host DMA mapping (MAP, MAP_DMA,
//! IOAS_MAP, or a kernel `iommu_map` no MAP_DMA asked for) overlaps a
//! reserved MSI/doorbell window.
//!
//! Subscribes to: `vfio_map_dma`, `ioas_map`, `iommu_map` (successful),
//! `viommu_req` MAP (successful).

use std::collections::BTreeSet;

use super::{hex, range, Finding, Findings, RuleId};
use crate::engine::guest::{MAP_MMIO, S_OK};
use crate::engine::host::PROT_MMIO;
use crate::engine::interval::{mapped_span, overlaps};
use crate::engine::keys::{ContainerKey, EvId, GuestDomainKey, IommuDomainKey};
use crate::engine::state::State;
use crate::event::{
    Device, Event, IoasMap, IommuMap, ResvRegion, ResvType, VfioMapDma, ViommuOp, ViommuReq,
};

pub(crate) fn on_map_dma(st: &State, e: &Event, m: &VfioMapDma, id: EvId, out: &mut Findings) {
    if let Some((s, l)) = mapped_span(m.errno, m.iova, m.size) {
        host_map(st, ContainerKey::vfio(e.node, m.container), (s, l), id, out);
    }
}

pub(crate) fn on_ioas_map(st: &State, e: &Event, m: &IoasMap, id: EvId, out: &mut Findings) {
    if let Some((s, l)) = mapped_span(m.errno, m.iova, m.length) {
        let key = ContainerKey {
            node: e.node,
            container: m.iommufd,
            ioas: m.ioas,
        };
        host_map(st, key, (s, l), id, out);
    }
}

fn layer(key: ContainerKey) -> &'static str {
    if key.ioas == 0 {
        "VFIO MAP_DMA"
    } else {
        "IOMMU_IOAS_MAP"
    }
}

/// Host: a successful MAP_DMA / IOAS_MAP inside an MSI window.
fn host_map(st: &State, key: ContainerKey, (s, l): (u64, u64), id: EvId, out: &mut Findings) {
    let Some((r, rev)) = st.msi.msi_overlap(key.node, s, l) else {
        return;
    };
    let msg = format!(
        "{} {} in container {:#x} overlaps the {:?} window {} of group {}",
        layer(key),
        range(s, l),
        key.container,
        r.rtype,
        range(r.start, r.end),
        r.group
    );
    // The MAP_DMA's own iommu_map was reported a moment ago at the IOMMU
    // layer: one cause, one finding (the MAP_DMA's, with both events).
    if let Some(f) = out.recent_mut(8).find(|f| {
        f.rule == RuleId::MapInMsiWindow
            && f.node == Some(key.node)
            && f.address.is_some_and(|(a, b)| s <= a && b <= l)
    }) {
        f.message = msg;
        f.evidence.push(id);
        f.at = f.at.max(id);
        f.address = Some((s, l));
        return;
    }
    let f = Finding::new(RuleId::MapInMsiWindow, key.node, msg, vec![*rev, id])
        .device(r.device)
        .address(s, l);
    out.push(f);
}

/// IOMMU layer: an `iommu_map` into an MSI window of the node, whoever
/// called it (VFIO refuses such MAP_DMAs, so this is a kernel caller: a
/// driver, a VFIO bug). DMA there is never translated (a hardware window
/// bypasses the IOMMU) or hits the doorbells (software window); only the
/// MMIO doorbell mappings `iommu_dma_prepare_msi` makes inside a software
/// window belong there.
pub(crate) fn on_iommu_map(st: &State, e: &Event, m: &IommuMap, id: EvId, out: &mut Findings) {
    let Some((s, l)) = mapped_span(m.errno, m.iova, m.size) else {
        return;
    };
    let k = IommuDomainKey {
        node: e.node,
        domain: m.domain,
    };
    let all = st.msi.node_regions(k.node);
    if all.is_empty() {
        // Nothing to overlap (the common case: every map of a trace).
        return;
    }
    let mmio = m.prot & PROT_MMIO != 0;
    let hit = |r: &ResvRegion| {
        (r.rtype == ResvType::Msi || (r.rtype == ResvType::SwMsi && !mmio))
            && overlaps(s, l, r.start, r.end)
    };
    let mut regions: Vec<&(ResvRegion, EvId)> = all.iter().filter(|(r, _)| hit(r)).collect();
    // The domain's own devices when known (doorbell maps name them);
    // else every group with that window (x86: all of them).
    if let Some(devs) = st.host.domains.get(&k).map(|d| &d.devices) {
        if regions.iter().any(|(r, _)| devs.contains(&r.device)) {
            regions.retain(|(r, _)| devs.contains(&r.device));
        }
    }
    let Some((r, rev)) = regions.first().map(|(r, e)| (r.clone(), *e)) else {
        return;
    };
    let groups: BTreeSet<u32> = regions.iter().map(|(r, _)| r.group).collect();
    let devices: BTreeSet<Device> = regions.iter().map(|(r, _)| r.device).collect();
    let groups: Vec<String> = groups.iter().map(u32::to_string).collect();
    let msg = format!(
        "iommu_map {} → {} (prot {:#x}) in IOMMU domain {:#x} overlaps the {:?} window {} of group{} {}: no VFIO MAP_DMA asked for it (a kernel caller mapped it)",
        range(s, l),
        hex(m.paddr),
        m.prot,
        k.domain,
        r.rtype,
        range(r.start, r.end),
        if groups.len() > 1 { "s" } else { "" },
        groups.join(", ")
    );
    let mut f = Finding::new(RuleId::MapInMsiWindow, k.node, msg, vec![rev, id]).address(s, l);
    if devices.len() == 1 {
        f = f.device(r.device);
    }
    out.push(f);
}

/// Guest: a MAP inside a reserved region an attached endpoint's PROBE
/// reported, or (non-doorbell) inside the driver's own SW_MSI window.
pub(crate) fn on_viommu(st: &State, e: &Event, r: &ViommuReq, id: EvId, out: &mut Findings) {
    if r.op != ViommuOp::Map || r.status != S_OK || r.virt_start > r.virt_end {
        return;
    }
    let key = GuestDomainKey {
        node: e.node,
        domain: r.domain,
    };
    let (s, l) = (r.virt_start, r.virt_end);
    let mmio = r.flags & MAP_MMIO != 0;
    let mut hits = Vec::new();
    for (ep, e) in st.guest.attached(key) {
        if let Some((w0, w1)) = e.implicit_sw_msi() {
            let inside = s >= w0 && l <= w1;
            if overlaps(s, l, w0, w1) && !(mmio && inside) {
                let probe_ev = e.probe.as_ref().map_or(id, |p| p.0);
                hits.push((
                    ep,
                    format!("the driver's own SW_MSI window {}", range(w0, w1)),
                    probe_ev,
                ));
            }
        }
        let Some((pev, resv)) = &e.probe else {
            continue;
        };
        for m in resv.iter().filter(|m| overlaps(s, l, m.start, m.end)) {
            if mmio
                && e.implicit_sw_msi()
                    .is_some_and(|(w0, w1)| s >= w0 && l <= w1)
            {
                continue;
            }
            let what = if m.subtype == 1 { "MSI" } else { "RESERVED" };
            hits.push((
                ep,
                format!(
                    "the {what} region {} reported by PROBE",
                    range(m.start, m.end)
                ),
                *pev,
            ));
        }
    }
    for (ep, what, pev) in hits {
        let msg = format!(
            "guest MAP {} → {} in domain {} overlaps {what} of endpoint {ep:#x}",
            range(s, l),
            hex(r.phys_start),
            key.domain
        );
        let f = Finding::new(RuleId::MapInMsiWindow, key.node, msg, vec![pev, id])
            .device(Device::from_rid(0, ep))
            .address(s, l);
        out.push(f);
    }
}
