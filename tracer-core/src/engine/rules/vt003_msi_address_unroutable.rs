//! VT003 msi-address-unroutable: a device programmed with an MSI address
//! neither in a bypass window nor mapped to a doorbell.
//!
//! Subscribes to: `msi_write` (with its [`Route`], computed once for VT003
//! and VT004).

use super::msi_route::{container_name, Route};
use super::{hex, Finding, Findings, RuleId};
use crate::event::{Event, MsiWrite};

pub(crate) fn on_msi_write(e: &Event, w: &MsiWrite, route: &Route, out: &mut Findings) {
    let (v, a) = (w.vector, hex(w.address));
    let (msg, evidence) = match route {
        Route::GuestDma { dom, gpa, evidence } => (
            format!(
                "vector {v} programmed with MSI address {a}, which domain {dom} translates as DMA to GPA {} (a buffer, not a doorbell)",
                hex(*gpa)
            ),
            evidence.clone(),
        ),
        Route::GuestUnmapped { dom, ep, evidence } => (
            format!(
                "vector {v} programmed with MSI address {a}: not in a bypass MSI region of endpoint {ep:#x} and not mapped in domain {dom}"
            ),
            evidence.clone(),
        ),
        Route::HostContainerDma {
            container,
            hva,
            evidence,
        } => (
            format!(
                "vector {v} programmed with MSI address {a}, which container {} maps as DMA to HVA {} (a buffer, not a doorbell)",
                container_name(*container),
                hex(*hva)
            ),
            evidence.clone(),
        ),
        Route::HostDomainDma {
            domain,
            to,
            evidence,
        } => (
            format!(
                "vector {v} programmed with MSI address {a}, which domain {domain:#x} maps as DMA to {} (memory, not a doorbell)",
                hex(*to)
            ),
            evidence.clone(),
        ),
        Route::HostUnrouted { names, evidence } => (
            format!(
                "vector {v} programmed with MSI address {a}: not in a bypass MSI window and not mapped to a doorbell ({names})"
            ),
            evidence.clone(),
        ),
        Route::Fine | Route::WindowEmpty { .. } => return,
    };
    out.push(
        Finding::new(RuleId::MsiUnroutable, e.node, msg, evidence)
            .device(w.device)
            .at_address(w.address),
    );
}
