//! VT009 iova-width-granule-mismatch: the guest maps what the host IOMMU
//! cannot (width, page size). The VMM's refused MAP_DMAs or missing ones
//! for a guest MAP beyond the host's last valid IOVA are its consequences:
//! their VT008 findings are absorbed here (and VT006 skips them).
//!
//! Subscribes to: the end, per pairing.

use std::collections::BTreeSet;

use super::{hex, range, Finding, Findings, RuleId};
use crate::engine::keys::{ContainerKey, EvId, GuestDomainKey};
use crate::engine::pairing::Pairing;
use crate::engine::state::State;

/// Guest maps beyond the host's valid IOVA ranges or granule; the failed
/// MAP_DMAs it explains go into `absorbed`.
pub(crate) fn per_pair(st: &State, p: &Pairing, out: &mut Findings, absorbed: &mut BTreeSet<EvId>) {
    let (Some(g), Some(c)) = (p.guest_key(), p.host) else {
        return;
    };
    let Some((iev, info)) = st.host.containers.get(&c).and_then(|c| c.info.as_ref()) else {
        return;
    };
    if let Some((_, e)) = st.host_last_iova(c) {
        beyond(st, p, (g, c), (*iev, e), out, absorbed);
    }
    let Some(dom) = st.guest.domain(g) else {
        return;
    };
    let min_pg = info.iova_pgsizes & info.iova_pgsizes.wrapping_neg();
    let mut coarse = None;
    let mut ncoarse = 0u64;
    for m in dom.maps.iter() {
        if min_pg > 1 && (m.start % min_pg != 0 || m.size() % min_pg != 0) {
            ncoarse += 1;
            coarse.get_or_insert(m);
        }
    }
    if let Some(m) = coarse {
        let msg = format!(
            "{ncoarse} guest mapping(s) in domain {} are not aligned to the host IOMMU's smallest page size {} (first {})",
            g.domain,
            hex(min_pg),
            range(m.start, m.last)
        );
        out.push(
            Finding::new(RuleId::WidthGranule, g.node, msg, vec![*iev, m.meta.ev()])
                .address(m.start, m.last),
        );
    }
}

/// Width: guest MAPs beyond the paired host's last valid IOVA `last`
/// (GET_INFO event `iev`). One root cause, one finding: the guest's IOMMU
/// accepted IOVAs the host's cannot map, so the VMM's MAP_DMAs of them fail
/// (their VT008 findings are `absorbed` into this one) or are never made
/// (no VT006 for them). Counts the live guest mappings beyond it and those
/// already gone whose MAP_DMA was refused or never came.
fn beyond(
    st: &State,
    p: &Pairing,
    (g, c): (GuestDomainKey, ContainerKey),
    (iev, last): (EvId, u64),
    out: &mut Findings,
    absorbed: &mut BTreeSet<EvId>,
) {
    let dom = st.guest.domain(g);
    // (guest MAP event, first, last) of the earliest one.
    let mut first: Option<(EvId, u64, u64)> = None;
    let mut see = |ev: EvId, s: u64, l: u64| {
        if first.is_none_or(|f| ev < f.0) {
            first = Some((ev, s, l));
        }
    };
    let mut live = 0u64;
    for m in dom.iter().flat_map(|d| d.maps.iter()) {
        if m.last > last {
            live += 1;
            see(m.meta.ev(), m.start, m.last);
        }
    }
    let is_live = |ev: EvId, s: u64| {
        dom.and_then(|d| d.maps.get(s))
            .is_some_and(|m| m.meta.ev() == ev && m.last > last)
    };
    let refused: Vec<_> = p
        .evidence
        .refused
        .iter()
        .filter(|r| r.iova.1 > last)
        .collect();
    let mut gone = 0u64;
    let mut counted = BTreeSet::new();
    for r in &refused {
        absorbed.insert(r.map_dma);
        see(r.guest_map, r.iova.0, r.iova.1);
        if !is_live(r.guest_map, r.iova.0) && counted.insert(r.guest_map) {
            gone += 1;
        }
    }
    let lost = st
        .join
        .lost_maps()
        .get(&g)
        .filter(|l| l.span.is_some_and(|(s, _)| s > last));
    if let Some(l) = lost {
        if let (Some(ev), Some((s, e))) = (l.examples.first(), l.span) {
            // Lost requests keep only their span, not each range.
            see(*ev, s, e);
        }
    }
    let Some((gev, s, l)) = first else {
        return;
    };
    let n = live + gone + lost.map_or(0, |l| l.count);
    let mut consequences = Vec::new();
    if !refused.is_empty() {
        let errnos: BTreeSet<i32> = refused.iter().map(|r| r.errno).collect();
        consequences.push(format!(
            "the host refused {} VMM MAP_DMA(s) of them ({})",
            refused.len(),
            errnos
                .iter()
                .map(|e| errno_name(*e))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if let Some(l) = lost {
        consequences.push(format!("{} never reached the host as a MAP_DMA", l.count));
    }
    let msg = format!(
            "{n} guest MAP(s) in domain {} reach beyond the host IOMMU's last valid IOVA {} (VFIO_IOMMU_GET_INFO of container {:#x}), first {}: the guest's IOMMU accepts IOVAs the host's cannot map (a VMM that did not pass the host's IOVA ranges or width to the guest){}",
            g.domain,
            hex(last),
            c.container,
            range(s, l),
            if consequences.is_empty() {
                String::new()
            } else {
                format!("; {}", consequences.join("; "))
            }
        );
    let mut evidence = vec![iev, gev];
    evidence.extend(refused.iter().take(4).map(|r| r.map_dma));
    if let Some(l) = lost {
        evidence.extend(l.examples.iter().filter(|e| **e != gev));
    }
    out.push(Finding::new(RuleId::WidthGranule, g.node, msg, evidence).address(s, l));
}

fn errno_name(e: i32) -> String {
    match e {
        22 => "EINVAL".to_string(),
        17 => "EEXIST".to_string(),
        12 => "ENOMEM".to_string(),
        _ => format!("errno {e}"),
    }
}
