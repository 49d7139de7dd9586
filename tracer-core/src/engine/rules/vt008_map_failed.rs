//! VT008 map-failed: a failed MAP explained (EEXIST overlap, EINVAL
//! reserved window / no SET_IOMMU / alignment). A failed MAP_DMA that
//! VT009 explains as a consequence of its root cause is dropped from the
//! report ([`Engine::findings`](crate::engine::Engine::findings)).
//!
//! Subscribes to: `vfio_map_dma` and `viommu_req` MAP that failed.

use super::{hex, range, Finding, Findings, RuleId};
use crate::engine::guest::S_OK;
use crate::engine::interval::{overlaps, span};
use crate::engine::keys::{ContainerKey, EvId, GuestDomainKey};
use crate::engine::state::State;
use crate::event::{Event, ResvType, VfioMapDma, ViommuOp, ViommuReq};

const EEXIST: i32 = 17;
const EINVAL: i32 = 22;

/// Why a VFIO MAP_DMA failed with EEXIST or EINVAL.
pub(crate) fn on_map_dma(st: &State, e: &Event, m: &VfioMapDma, id: EvId, out: &mut Findings) {
    if m.errno == 0 {
        return;
    }
    let key = ContainerKey::vfio(e.node, m.container);
    let c = st.host.containers.get(&key);
    let head = format!(
        "VFIO MAP_DMA iova {} size {} in container {:#x} failed",
        hex(m.iova),
        hex(m.size),
        key.container
    );
    let (why, mut evidence) = match (m.errno, span(m.iova, m.size)) {
        (EEXIST, Some((s, l))) => match c.and_then(|c| c.maps.overlapping(s, l).next()) {
            Some(o) => (
                format!("EEXIST: overlaps the live mapping {} (event {})", range(o.start, o.last), o.meta.ev()),
                vec![o.meta.ev()],
            ),
            None => ("EEXIST, but no overlapping mapping is known (made before the trace started, or events were dropped)".to_string(), vec![]),
        },
        (EINVAL, None) => ("EINVAL: size 0 or the range wraps".to_string(), vec![]),
        (EINVAL, Some((s, l))) => einval_cause(st, key, m, s, l),
        _ => return,
    };
    evidence.push(id);
    let (s, l) = span(m.iova, m.size).unwrap_or((m.iova, m.iova));
    out.push(
        Finding::new(
            RuleId::MapFailed,
            key.node,
            format!("{head} with {why}"),
            evidence,
        )
        .address(s, l),
    );
}

fn einval_cause(
    st: &State,
    key: ContainerKey,
    m: &VfioMapDma,
    s: u64,
    l: u64,
) -> (String, Vec<EvId>) {
    let c = st.host.containers.get(&key);
    if c.is_none_or(|c| c.set_iommu.is_none() && !c.mapped_ok && c.info.is_none()) {
        return (
            "EINVAL: no successful VFIO_SET_IOMMU on this container before it".to_string(),
            vec![],
        );
    }
    if let Some((r, rev)) = st
        .msi
        .node_regions(key.node)
        .iter()
        .find(|(r, _)| overlaps(s, l, r.start, r.end) && r.rtype != ResvType::DirectRelaxable)
    {
        return (
            format!(
                "EINVAL: inside the reserved {:?} window {} of group {}",
                r.rtype,
                range(r.start, r.end),
                r.group
            ),
            vec![*rev],
        );
    }
    if let Some((iev, info)) = c.and_then(|c| c.info.as_ref()) {
        if !info.iova_ranges.is_empty()
            && !info.iova_ranges.iter().any(|r| s >= r.start && l <= r.end)
        {
            return (
                "EINVAL: outside the container's valid IOVA ranges (VFIO_IOMMU_GET_INFO)"
                    .to_string(),
                vec![*iev],
            );
        }
        let min = info.iova_pgsizes & info.iova_pgsizes.wrapping_neg();
        if min > 1 && (!m.iova.is_multiple_of(min) || !m.size.is_multiple_of(min)) {
            return (
                format!(
                    "EINVAL: not aligned to the IOMMU's smallest page size {}",
                    hex(min)
                ),
                vec![*iev],
            );
        }
    } else if !m.iova.is_multiple_of(4096) || !m.size.is_multiple_of(4096) {
        return ("EINVAL: not aligned to 4 KiB".to_string(), vec![]);
    }
    (
        "EINVAL: cause not identified from the trace".to_string(),
        vec![],
    )
}

/// Why a guest virtio-iommu MAP failed.
pub(crate) fn on_viommu(st: &State, e: &Event, r: &ViommuReq, id: EvId, out: &mut Findings) {
    if r.op != ViommuOp::Map || r.status == S_OK {
        return;
    }
    let key = GuestDomainKey {
        node: e.node,
        domain: r.domain,
    };
    let (s, l) = (r.virt_start, r.virt_end);
    let head = format!(
        "guest MAP {} → {} in domain {} failed with status {}",
        range(s, l),
        hex(r.phys_start),
        key.domain,
        r.status
    );
    let dom = st.guest.domain(key);
    let overlap = dom.and_then(|d| d.maps.overlapping(s, l).next());
    let resv = st.guest.attached(key).find_map(|(ep, e)| {
        let (pev, rs) = e.probe.as_ref()?;
        rs.iter()
            .find(|m| overlaps(s, l, m.start, m.end))
            .map(|m| (ep, *m, *pev))
    });
    let (why, mut evidence) = if let Some(o) = overlap {
        (
            format!(
                "overlaps the live mapping {} (event {})",
                range(o.start, o.last),
                o.meta.ev()
            ),
            vec![o.meta.ev()],
        )
    } else if let Some((ep, m, pev)) = resv {
        (
            format!(
                "inside reserved region {} (subtype {}) of endpoint {ep:#x}",
                range(m.start, m.end),
                m.subtype
            ),
            vec![pev],
        )
    } else if dom.is_none() {
        ("the domain has no endpoint attached".to_string(), vec![])
    } else if s > l || !s.is_multiple_of(4096) || !l.wrapping_add(1).is_multiple_of(4096) {
        ("range not aligned to 4 KiB".to_string(), vec![])
    } else {
        ("cause not identified from the trace".to_string(), vec![])
    };
    evidence.push(id);
    out.push(
        Finding::new(
            RuleId::MapFailed,
            key.node,
            format!("{head}: {why}"),
            evidence,
        )
        .address(s, l),
    );
}
