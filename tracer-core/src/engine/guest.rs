//! Guest side: virtio-iommu domains (IOVA → GPA), which endpoints are
//! attached where, and what each endpoint's PROBE reported.
//!
//! Semantics follow the virtio-iommu device (QEMU): a failed request changes
//! nothing; ATTACH moves an endpoint (a domain left without endpoints is
//! destroyed with its mappings); UNMAP removes only mappings that lie
//! entirely inside the range.

use std::collections::{BTreeMap, BTreeSet};

use super::interval::{IntervalMap, Mapping, Meta};
use super::keys::{EvId, GuestDomainKey};
use crate::event::{NodeId, ResvMem, ViommuOp, ViommuReq};

/// virtio-iommu MAP flags.
pub const MAP_MMIO: u32 = 4;
/// virtio-iommu ATTACH flag.
pub const ATTACH_BYPASS: u32 = 1;
/// Status OK.
pub const S_OK: u8 = 0;
/// The Linux driver's own software-MSI window when the device reports no
/// MSI region (MSI_IOVA_BASE, 1 MiB).
pub const LINUX_SW_MSI: (u64, u64) = (0x800_0000, 0x80f_ffff);

#[derive(Clone, Debug, Default)]
pub struct GuestDomain {
    /// IOVA → GPA; meta flags are the MAP flags.
    pub maps: IntervalMap,
    pub bypass: bool,
    pub endpoints: BTreeSet<u32>,
    pub attach_ev: Option<EvId>,
}

#[derive(Clone, Debug, Default)]
pub struct Endpoint {
    pub domain: Option<u32>,
    pub attach_ev: Option<EvId>,
    /// `Some` once a PROBE was seen.
    pub probe: Option<(EvId, Vec<ResvMem>)>,
}

impl Endpoint {
    /// Did PROBE report an MSI (bypass) region?
    pub fn has_msi_region(&self) -> bool {
        self.probe
            .as_ref()
            .is_some_and(|(_, r)| r.iter().any(|m| m.subtype == 1))
    }

    /// The window where the Linux driver maps doorbells itself: its own
    /// SW_MSI region when the device reported no MSI region.
    pub fn implicit_sw_msi(&self) -> Option<(u64, u64)> {
        (self.probe.is_some() && !self.has_msi_region()).then_some(LINUX_SW_MSI)
    }
}

#[derive(Clone, Debug, Default)]
pub struct GuestState {
    pub domains: BTreeMap<GuestDomainKey, GuestDomain>,
    pub endpoints: BTreeMap<(NodeId, u32), Endpoint>,
    /// Endpoints ever attached to each domain id, kept after the domain is
    /// destroyed (a VFIO user's domain goes away when it exits, before a
    /// recording is judged).
    pub attached_ever: BTreeMap<GuestDomainKey, BTreeSet<u32>>,
}

/// What an UNMAP did.
#[derive(Clone, Debug, Default)]
pub struct GuestUnmap {
    /// Bytes removed.
    pub removed: u64,
    /// Some removed mapping was DMA (not a MAP_MMIO doorbell).
    pub removed_dma: bool,
    /// Mappings still overlapping the range afterwards.
    pub left: Vec<Mapping>,
}

impl GuestState {
    pub fn endpoint(&self, node: NodeId, ep: u32) -> Option<&Endpoint> {
        self.endpoints.get(&(node, ep))
    }

    pub fn domain(&self, key: GuestDomainKey) -> Option<&GuestDomain> {
        self.domains.get(&key)
    }

    /// Endpoints currently attached to a domain, with their state.
    pub fn attached(&self, key: GuestDomainKey) -> impl Iterator<Item = (u32, &Endpoint)> {
        self.domains
            .get(&key)
            .into_iter()
            .flat_map(|d| d.endpoints.iter())
            .filter_map(move |&ep| self.endpoint(key.node, ep).map(|e| (ep, e)))
    }

    fn detach(&mut self, node: NodeId, ep: u32) {
        let Some(e) = self.endpoints.get_mut(&(node, ep)) else {
            return;
        };
        let Some(old) = e.domain.take() else {
            return;
        };
        let key = GuestDomainKey { node, domain: old };
        if let Some(d) = self.domains.get_mut(&key) {
            d.endpoints.remove(&ep);
            if d.endpoints.is_empty() {
                self.domains.remove(&key);
            }
        }
    }

    pub fn attach(&mut self, node: NodeId, r: &ViommuReq, ev: EvId) {
        self.detach(node, r.endpoint);
        let key = GuestDomainKey {
            node,
            domain: r.domain,
        };
        let d = self.domains.entry(key).or_default();
        d.bypass = r.flags & ATTACH_BYPASS != 0;
        d.endpoints.insert(r.endpoint);
        d.attach_ev = Some(ev);
        self.attached_ever
            .entry(key)
            .or_default()
            .insert(r.endpoint);
        let e = self.endpoints.entry((node, r.endpoint)).or_default();
        e.domain = Some(r.domain);
        e.attach_ev = Some(ev);
    }

    /// Applies a request that succeeded (`status` OK). Returns what an
    /// UNMAP removed and left.
    pub fn apply(&mut self, node: NodeId, r: &ViommuReq, ev: EvId) -> GuestUnmap {
        let key = GuestDomainKey {
            node,
            domain: r.domain,
        };
        let mut out = GuestUnmap::default();
        match r.op {
            ViommuOp::Attach => self.attach(node, r, ev),
            ViommuOp::Detach => self.detach(node, r.endpoint),
            ViommuOp::Probe => {
                self.endpoints.entry((node, r.endpoint)).or_default().probe =
                    Some((ev, r.resv.clone()));
            }
            ViommuOp::Map => {
                if r.virt_start <= r.virt_end {
                    let flags = (r.flags & 0xffff) as u16;
                    self.domains.entry(key).or_default().maps.insert(
                        r.virt_start,
                        r.virt_end,
                        r.phys_start,
                        Meta::new(ev, flags),
                    );
                }
            }
            ViommuOp::Unmap => {
                if let Some(d) = self.domains.get_mut(&key) {
                    let dma = &mut out.removed_dma;
                    let n = d.maps.remove_contained(r.virt_start, r.virt_end, |m| {
                        *dma |= u32::from(m.meta.flags()) & MAP_MMIO == 0;
                    });
                    out.removed = n;
                    let whole = (r.virt_end - r.virt_start).saturating_add(1);
                    if n != whole {
                        out.left = d.maps.overlapping(r.virt_start, r.virt_end).collect();
                    }
                }
            }
        }
        out
    }
}
