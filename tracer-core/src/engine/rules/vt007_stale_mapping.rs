//! VT007 stale-mapping: an UNMAP removed less than asked while mappings
//! remain there, or a guest UNMAP the VMM never propagated.
//!
//! Subscribes to: `vfio_unmap_dma`, `ioas_unmap`, `iommu_unmap`,
//! `viommu_req` UNMAP (with the mappings the UNMAP left, [`Delta::Left`]);
//! at the end, per pairing: the guest UNMAPs the join saw lost.

use super::{hex, range, Finding, Findings, RuleId};
use crate::engine::delta::Delta;
use crate::engine::keys::{ContainerKey, EvId};
use crate::engine::pairing::Pairing;
use crate::engine::state::State;
use crate::event::{Event, IoasUnmap, IommuUnmap, VfioUnmapDma, ViommuReq};

/// When the UNMAP of `[s, l]` (the delta) left mappings there: a finding
/// that says `what(s, l)` and names the first one left.
fn report(
    node: u16,
    fx: &Delta,
    id: EvId,
    out: &mut Findings,
    what: impl FnOnce(u64, u64) -> String,
) {
    let Delta::Left { start, last, left } = fx else {
        return;
    };
    let Some(first) = left.first() else {
        return;
    };
    let msg = format!(
        "{}; {} still mapped ({} piece(s), first mapped by event {})",
        what(*start, *last),
        range(first.start, first.last),
        left.len(),
        first.meta.ev()
    );
    out.push(
        Finding::new(RuleId::StaleMapping, node, msg, vec![first.meta.ev(), id])
            .address(first.start, first.last),
    );
}

/// A host UNMAP (VFIO or iommufd) that removed `unmapped` bytes.
fn host(key: ContainerKey, unmapped: u64, fx: &Delta, id: EvId, out: &mut Findings) {
    let layer = if key.ioas == 0 {
        "VFIO UNMAP_DMA"
    } else {
        "IOMMU_IOAS_UNMAP"
    };
    report(key.node, fx, id, out, |s, l| {
        format!(
            "{layer} of {} in container {:#x} removed {} bytes",
            range(s, l),
            key.container,
            hex(unmapped)
        )
    });
}

pub(crate) fn on_unmap_dma(e: &Event, u: &VfioUnmapDma, fx: &Delta, id: EvId, out: &mut Findings) {
    host(
        ContainerKey::vfio(e.node, u.container),
        u.unmapped,
        fx,
        id,
        out,
    );
}

pub(crate) fn on_ioas_unmap(e: &Event, u: &IoasUnmap, fx: &Delta, id: EvId, out: &mut Findings) {
    let key = ContainerKey {
        node: e.node,
        container: u.iommufd,
        ioas: u.ioas,
    };
    host(key, u.unmapped, fx, id, out);
}

/// `iommu_unmap` that removed less than asked while mappings remain.
pub(crate) fn on_iommu_unmap(e: &Event, u: &IommuUnmap, fx: &Delta, id: EvId, out: &mut Findings) {
    report(e.node, fx, id, out, |s, l| {
        format!(
            "iommu_unmap of {} in domain {:#x} removed {} bytes",
            range(s, l),
            u.domain,
            hex(u.unmapped)
        )
    });
}

/// Guest UNMAP that left (partially covered) mappings.
pub(crate) fn on_viommu(e: &Event, r: &ViommuReq, fx: &Delta, id: EvId, out: &mut Findings) {
    report(e.node, fx, id, out, |s, l| {
        format!(
            "guest UNMAP {} in domain {} (status {}) did not remove partially covered mappings",
            range(s, l),
            r.domain,
            r.status
        )
    });
}

/// End, per pairing: guest UNMAPs with no host UNMAP_DMA in the window.
pub(crate) fn lost_unmaps(st: &State, p: &Pairing, out: &mut Findings) {
    let (Some(g), Some(c)) = (p.guest_key(), p.host) else {
        return;
    };
    if let Some(l) = st.join.lost_unmaps().get(&g) {
        let msg = format!(
            "{} guest UNMAP(s) in domain {} had no host UNMAP_DMA in container {:#x} within {} ms: the host mapping stays live",
            l.count,
            g.domain,
            c.container,
            st.cfg.join_window_ns / 1_000_000
        );
        out.push(
            Finding::new(RuleId::StaleMapping, g.node, msg, l.examples.clone()).with_span(l.span),
        );
    }
}
