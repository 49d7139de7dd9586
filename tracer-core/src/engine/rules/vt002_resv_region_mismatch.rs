//! VT002 resv-region-mismatch: guest and host disagree on reserved regions
//! (HW MSI not reported as MSI, SW-MSI window not RESERVED, x86 MSI range
//! missing).
//!
//! Subscribes to: the end (x86 endpoints, before the pairings; then per
//! pairing).

use super::{range, Finding, Findings, RuleId};
use crate::engine::keys::EvId;
use crate::engine::msi::X86_MSI;
use crate::engine::pairing::Pairing;
use crate::engine::state::State;
use crate::event::{Device, NodeId, ResvMem, ResvRegion, ResvType};

/// Does the union of `regions` of `subtype` cover `[s, l]`?
fn covered(regions: &[ResvMem], subtype: u8, s: u64, l: u64) -> bool {
    let mut v: Vec<(u64, u64)> = regions
        .iter()
        .filter(|m| m.subtype == subtype)
        .map(|m| (m.start, m.end))
        .collect();
    v.sort_unstable();
    let mut need = s;
    for (a, b) in v {
        if a > need {
            break;
        }
        if b >= l {
            return true;
        }
        need = need.max(b.saturating_add(1));
    }
    false
}

/// End: an x86 guest endpoint whose PROBE lacks the MSI window.
pub(crate) fn x86_msi(st: &State, out: &mut Findings) {
    for (&(node, ep), e) in &st.guest.endpoints {
        let Some((pev, resv)) = &e.probe else {
            continue;
        };
        if st.clock.is_x86(node) && !covered(resv, 1, X86_MSI.0, X86_MSI.1) {
            let msg = format!(
                "endpoint {ep:#x}: PROBE did not report the x86 MSI window {} as RESV_MEM_T_MSI",
                range(X86_MSI.0, X86_MSI.1)
            );
            out.push(
                Finding::new(RuleId::ResvMismatch, node, msg, vec![*pev])
                    .device(Device::from_rid(0, ep))
                    .address(X86_MSI.0, X86_MSI.1),
            );
        }
    }
}

/// What a guest endpoint was told about reserved memory: its PROBE when
/// one was recorded, else (vfio-trace started after the guest probed it,
/// the usual case) the regions the guest kernel built from that PROBE for
/// the endpoint's device, read at start: an IOMMU_RESV_MSI came from a
/// RESV_MEM_T_MSI, a RESERVED or DIRECT one from a RESV_MEM_T_RESERVED; a
/// SW_MSI window is the driver's own, never reported by the device.
fn guest_view(st: &State, node: NodeId, ep: u32) -> Option<(EvId, Vec<ResvMem>)> {
    if let Some(p) = st.guest.endpoint(node, ep).and_then(|e| e.probe.clone()) {
        return Some(p);
    }
    let dev = Device::from_rid(0, ep);
    let mine: Vec<&(ResvRegion, EvId)> = st
        .msi
        .node_regions(node)
        .iter()
        .filter(|(r, _)| r.device == dev)
        .collect();
    let ev = mine.iter().map(|(_, e)| *e).min()?;
    let view = mine
        .iter()
        .filter_map(|(r, _)| {
            let subtype = match r.rtype {
                ResvType::Msi => 1,
                ResvType::Reserved | ResvType::Direct | ResvType::DirectRelaxable => 0,
                ResvType::SwMsi => return None,
            };
            Some(ResvMem {
                subtype,
                start: r.start,
                end: r.end,
            })
        })
        .collect();
    Some((ev, view))
}

/// End, per pairing: host reserved MSI windows the paired guest endpoint
/// was not told about.
pub(crate) fn per_pair(st: &State, p: &Pairing, out: &mut Findings) {
    let devs = if p.host_devices.is_empty() {
        vec![Device::Unknown]
    } else {
        p.host_devices.clone()
    };
    let mut regions: Vec<(ResvRegion, EvId)> = Vec::new();
    for d in devs {
        for (r, ev) in st.msi.regions_for(p.host_node, d) {
            if !regions
                .iter()
                .any(|(x, _)| (x.start, x.end, x.rtype) == (r.start, r.end, r.rtype))
            {
                regions.push((r.clone(), *ev));
            }
        }
    }
    for &ep in &p.guest_endpoints {
        let Some((pev, resv)) = guest_view(st, p.guest_node, ep) else {
            continue;
        };
        for (r, rev) in &regions {
            let (want, name) = match r.rtype {
                ResvType::Msi => (1, "MSI (subtype 1)"),
                ResvType::SwMsi => (0, "RESERVED (subtype 0)"),
                _ => continue,
            };
            if covered(&resv, want, r.start, r.end) {
                continue;
            }
            let msg = format!(
                "host {:?} window {} of group {} was not reported to guest endpoint {ep:#x} as {name}",
                r.rtype,
                range(r.start, r.end),
                r.group
            );
            out.push(
                Finding::new(RuleId::ResvMismatch, p.guest_node, msg, vec![*rev, pev])
                    .device(Device::from_rid(0, ep))
                    .address(r.start, r.end),
            );
        }
    }
}
