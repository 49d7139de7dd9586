//! VT004 sw-msi-doorbell-unbacked: a software MSI doorbell not backed (or
//! backed differently) at a stage.
//!
//! Subscribes to: `msi_write` (with its [`Route`]); at the end, per
//! pairing: guest doorbells the host's window does not back; after the
//! pairings: doorbell mappings that point elsewhere.

use super::msi_route::{Route, WindowOwner};
use super::{hex, range, Finding, Findings, RuleId};
use crate::engine::guest::MAP_MMIO;
use crate::engine::host::is_mmio_prot;
use crate::engine::keys::{page, IommuDomainKey};
use crate::engine::msi::SW_MSI_LEN;
use crate::engine::pairing::Pairing;
use crate::engine::state::State;
use crate::event::{Event, MsiWrite};

/// A doorbell IOVA inside a software-MSI window that maps nothing there.
pub(crate) fn on_msi_write(e: &Event, w: &MsiWrite, route: &Route, out: &mut Findings) {
    let Route::WindowEmpty {
        owner,
        window: (w0, w1),
        evidence,
    } = route
    else {
        return;
    };
    let inside = match owner {
        WindowOwner::Guest(dom) => format!(
            "the guest's SW_MSI window {} but domain {dom} maps nothing there",
            range(*w0, *w1)
        ),
        WindowOwner::Host(domain) => format!(
            "the SW-MSI window {} of domain {domain:#x}, but no doorbell page is mapped there",
            range(*w0, *w1)
        ),
    };
    let msg = format!(
        "vector {} programmed with doorbell IOVA {} inside {inside}",
        w.vector,
        hex(w.address)
    );
    out.push(
        Finding::new(RuleId::SwMsiUnbacked, e.node, msg, evidence.clone())
            .device(w.device)
            .at_address(w.address),
    );
}

/// End, per pairing: a guest doorbell IOVA inside the host's SW-MSI window
/// with no doorbell mapping there on the host.
pub(crate) fn guest_doorbells(st: &State, p: &Pairing, out: &mut Findings) {
    let (Some(g), Some(c)) = (p.guest_key(), p.host) else {
        return;
    };
    let (Some(gd), Some(cont)) = (st.guest.domain(g), st.host.containers.get(&c)) else {
        return;
    };
    let doms: Vec<_> = cont
        .domains
        .iter()
        .filter_map(|d| {
            let k = IommuDomainKey {
                node: c.node,
                domain: *d,
            };
            st.host.domains.get(&k).map(|dom| (k, dom))
        })
        .collect();
    for m in gd
        .maps
        .iter()
        .filter(|m| u32::from(m.meta.flags()) & MAP_MMIO != 0)
    {
        for (k, dom) in &doms {
            let Some((base, cev)) = dom.cookie else {
                continue;
            };
            if m.start < base || m.start - base >= SW_MSI_LEN {
                continue;
            }
            let backed = dom.doorbells.contains_key(&page(m.start))
                || dom.maps.get(m.start).is_some_and(|hm| is_mmio_prot(&hm));
            if !backed {
                let msg = format!(
                    "guest doorbell IOVA {} (→ GPA {}) in domain {} lies in the host SW-MSI window of domain {:#x}, which maps no doorbell there",
                    hex(m.start),
                    hex(m.to),
                    g.domain,
                    k.domain
                );
                out.push(
                    Finding::new(RuleId::SwMsiUnbacked, g.node, msg, vec![cev, m.meta.ev()])
                        .address(m.start, m.last),
                );
            }
        }
    }
}

/// End, after the pairings: a doorbell recorded by `iommu_dma_prepare_msi`
/// whose IOMMU mapping points elsewhere.
pub(crate) fn doorbell_mismatch(st: &State, out: &mut Findings) {
    for (dk, d) in &st.host.domains {
        for (&iova, &(paddr, dev)) in &d.doorbells {
            let Some(m) = d.maps.get(iova) else {
                continue;
            };
            let actual = m.translate(iova);
            if page(actual) != page(paddr) {
                let msg = format!(
                    "doorbell IOVA {} of domain {:#x} should reach doorbell {} but the IOMMU maps it to {}",
                    hex(iova),
                    dk.domain,
                    hex(page(paddr)),
                    hex(actual)
                );
                out.push(
                    Finding::new(RuleId::SwMsiUnbacked, dk.node, msg, vec![dev, m.meta.ev()])
                        .address(iova, iova | 0xfff),
                );
            }
        }
    }
}
