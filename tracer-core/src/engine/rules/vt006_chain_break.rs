//! VT006 chain-break: a guest MAP not propagated, a MAP_DMA whose HVA is
//! not the memslot's, an `iommu_map` whose HPA is not the pinned page.
//!
//! Subscribes to: `vfio_map_dma` (successful, with its group of pins and
//! `iommu_map`s, [`Delta::MapDma`]); at the end, per pairing: the guest
//! MAPs the join saw lost, and the HVA mismatches it recorded.

use super::{hex, Finding, Findings, RuleId};
use crate::engine::delta::Delta;
use crate::engine::join::Lost;
use crate::engine::keys::{ContainerKey, EvId};
use crate::engine::pairing::Pairing;
use crate::engine::state::State;
use crate::event::{Event, VfioMapDma};

/// Each `iommu_map` done inside a MAP_DMA must map the page VFIO pinned
/// for that HVA.
pub(crate) fn on_map_dma(
    st: &State,
    e: &Event,
    m: &VfioMapDma,
    fx: &Delta,
    id: EvId,
    out: &mut Findings,
) {
    let Delta::MapDma(group) = fx else {
        return;
    };
    let key = ContainerKey::vfio(e.node, m.container);
    let Some(pins) = st.host.pins.get(&(key.node, key.pid())) else {
        return;
    };
    let end = m.iova.saturating_add(m.size);
    for (iev, im) in &group.maps {
        if im.errno != 0 || im.iova < m.iova || im.iova >= end {
            continue;
        }
        let hva = m.vaddr.wrapping_add(im.iova - m.iova);
        let Some(pin) = pins.get(hva) else {
            continue;
        };
        let expected = pin.translate(hva);
        if expected != im.paddr {
            let msg = format!(
                "iommu_map iova {} → {} in domain {:#x}, but VFIO pinned HVA {} at {}",
                hex(im.iova),
                hex(im.paddr),
                im.domain,
                hex(hva),
                hex(expected)
            );
            let last = im.iova.saturating_add(im.size.max(1) - 1);
            let f = Finding::new(
                RuleId::ChainBreak,
                key.node,
                msg,
                vec![pin.meta.ev(), *iev, id],
            )
            .address(im.iova, last);
            out.push(f);
            return;
        }
    }
}

/// End, per pairing: guest MAPs the VMM never propagated. Those all beyond
/// the host's address width are VT009's: the host could not have mapped
/// them.
pub(crate) fn lost_maps(st: &State, p: &Pairing, out: &mut Findings) {
    let (Some(g), Some(c)) = (p.guest_key(), p.host) else {
        return;
    };
    let beyond_width =
        |l: &Lost| matches!((l.span, st.host_last_iova(c)), (Some((s, _)), Some((_, e))) if s > e);
    if let Some(l) = st.join.lost_maps().get(&g).filter(|l| !beyond_width(l)) {
        let msg = format!(
            "{} guest MAP(s) in domain {} had no host MAP_DMA in container {:#x} within {} ms: the VMM did not propagate them",
            l.count,
            g.domain,
            c.container,
            st.cfg.join_window_ns / 1_000_000
        );
        out.push(
            Finding::new(RuleId::ChainBreak, g.node, msg, l.examples.clone()).with_span(l.span),
        );
    }
}

/// End, per pairing: host MAP_DMA HVA ≠ memslot(GPA) on matched maps.
pub(crate) fn hva_mismatch(_st: &State, p: &Pairing, out: &mut Findings) {
    for m in &p.evidence.mismatches {
        let (gev, hev, slot_ev, want) = (m.guest_map, m.map_dma, m.memslot, m.expected_hva);
        let (start, last) = m.iova;
        let msg = format!(
            "host MAP_DMA (event {hev}) for guest MAP (event {gev}) uses an HVA other than the memslot's {}",
            hex(want)
        );
        out.push(
            Finding::new(
                RuleId::ChainBreak,
                p.host_node,
                msg,
                vec![gev, slot_ev, hev],
            )
            .address(start, last),
        );
    }
}
