//! Rules: each checks one failure mode of domain.md and reports
//! [`Finding`]s with the events behind them. A rule is a unit of its own
//! (one file per rule, `vtNNN_name.rs`): it reads the engine's state
//! through `&State` (as it is after the event), the event, and the
//! [`Delta`] the event's application recorded, and writes into a
//! [`Findings`] sink. It never changes the state; VT010 alone keeps a
//! memory of its own (what it already reported).
//!
//! The order below is the order findings come out in; it is part of the
//! output (`check` prints findings in it).
//!
//! **Per event** ([`on_event`]), after the event was applied, the rules
//! subscribed to its kind, in rule-id order:
//!
//! | kind | rules |
//! |---|---|
//! | `vfio_map_dma` | VT001 (success), VT006 (success: its pins vs `iommu_map`s), VT008 (failure) |
//! | `ioas_map` | VT001 |
//! | `iommu_map` | VT001 |
//! | `vfio_unmap_dma`, `ioas_unmap`, `iommu_unmap` | VT007 |
//! | `viommu_req` | VT001 (MAP), VT007 (UNMAP), VT008 (failed MAP) |
//! | `resv_region`, `msi_cookie` | VT005 |
//! | `msi_write` | VT003, VT004 (one [`msi_route::Route`] for both) |
//! | `vfio_set_irqs`, `msi_vector` | VT010 |
//!
//! Other kinds have no rule.
//!
//! **At the end** ([`finish`], on demand, over the state and the join's
//! records): VT002 (x86 endpoints); then per pairing, in pairing order:
//! VT002, VT006 (lost MAPs), VT007 (lost UNMAPs), VT006 (HVA mismatches),
//! VT009, VT004 (guest doorbells); then VT005 (VM RAM in a window), VT004
//! (doorbell mappings).

mod catalog;
mod finding;
mod msi_route;
pub mod needs;
mod vt001_dma_map_in_msi_window;
mod vt002_resv_region_mismatch;
mod vt003_msi_address_unroutable;
mod vt004_sw_msi_doorbell_unbacked;
mod vt005_sw_msi_window_collision;
mod vt006_chain_break;
mod vt007_stale_mapping;
mod vt008_map_failed;
mod vt009_iova_width_granule_mismatch;
mod vt010_irq_ordering;

use std::collections::BTreeSet;

pub use catalog::{RuleId, Severity};
pub(crate) use finding::{hex, range};
pub use finding::{Finding, Findings, MAX_PER_RULE};
pub use needs::{Need, NotJudged, Reported, When};

use super::delta::Delta;
use super::keys::EvId;
use super::pairing::Pairing;
use super::state::State;
use crate::event::{Event, EventKind};
use vt001_dma_map_in_msi_window as vt001;
use vt002_resv_region_mismatch as vt002;
use vt003_msi_address_unroutable as vt003;
use vt004_sw_msi_doorbell_unbacked as vt004;
use vt005_sw_msi_window_collision as vt005;
use vt006_chain_break as vt006;
use vt007_stale_mapping as vt007;
use vt008_map_failed as vt008;
use vt009_iova_width_granule_mismatch as vt009;
use vt010_irq_ordering as vt010;

/// What rules remember between events (only VT010 does).
#[derive(Clone, Debug, Default)]
pub(crate) struct Memory {
    vt010: vt010::Memory,
}

/// Runs the rules subscribed to `e`'s kind (see the module docs), after
/// `e` (event `id`) was applied to `st` with the delta `fx`.
pub(crate) fn on_event(
    st: &State,
    mem: &mut Memory,
    e: &Event,
    id: EvId,
    fx: &Delta,
    out: &mut Findings,
) {
    match &e.kind {
        EventKind::VfioMapDma(m) => {
            vt001::on_map_dma(st, e, m, id, out);
            vt006::on_map_dma(st, e, m, fx, id, out);
            vt008::on_map_dma(st, e, m, id, out);
        }
        EventKind::IoasMap(m) => vt001::on_ioas_map(st, e, m, id, out),
        EventKind::IommuMap(m) => vt001::on_iommu_map(st, e, m, id, out),
        EventKind::VfioUnmapDma(u) => vt007::on_unmap_dma(e, u, fx, id, out),
        EventKind::IoasUnmap(u) => vt007::on_ioas_unmap(e, u, fx, id, out),
        EventKind::IommuUnmap(u) => vt007::on_iommu_unmap(e, u, fx, id, out),
        EventKind::ViommuReq(r) => {
            vt001::on_viommu(st, e, r, id, out);
            vt007::on_viommu(e, r, fx, id, out);
            vt008::on_viommu(st, e, r, id, out);
        }
        EventKind::ResvRegion(r) => vt005::on_resv_region(st, e, r, fx, id, out),
        EventKind::MsiCookie(c) => vt005::on_msi_cookie(st, e, c, id, out),
        EventKind::MsiWrite(w) => {
            let route = msi_route::route(st, e, w, id);
            vt003::on_msi_write(e, w, &route, out);
            vt004::on_msi_write(e, w, &route, out);
        }
        EventKind::VfioSetIrqs(s) => vt010::on_set_irqs(st, &mut mem.vt010, e, s, fx, id, out),
        EventKind::MsiVector(v) => vt010::on_msi_vector(st, &mut mem.vt010, e, v, fx, id, out),
        // No rule reads the other kinds: a new kind joins this table only
        // with its first rule.
        _ => {}
    }
}

/// The end-of-trace rules over `st` and its `pairings` (see the module
/// docs): their findings (capped per rule), and the failed MAP_DMAs they
/// attribute to a root cause (VT009), whose own VT008 findings
/// [`Engine::findings`](super::Engine::findings) drops.
pub(crate) fn finish(st: &State, pairings: &[Pairing]) -> (Findings, BTreeSet<EvId>) {
    let mut out = Findings::default();
    let mut absorbed = BTreeSet::new();
    vt002::x86_msi(st, &mut out);
    for p in pairings {
        vt002::per_pair(st, p, &mut out);
        vt006::lost_maps(st, p, &mut out);
        vt007::lost_unmaps(st, p, &mut out);
        vt006::hva_mismatch(st, p, &mut out);
        vt009::per_pair(st, p, &mut out, &mut absorbed);
        vt004::guest_doorbells(st, p, &mut out);
    }
    vt005::ram_in_window(st, &mut out);
    vt004::doorbell_mismatch(st, &mut out);
    (out, absorbed)
}
