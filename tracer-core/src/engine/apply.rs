//! Applying one event to the [`State`]: each event updates the state of its
//! layer (and the join, and the health counters) and returns the [`Delta`]
//! its rules need besides the new state. No rule runs here.

use super::delta::Delta;
use super::guest::{MAP_MMIO, S_OK};
use super::host::{HostState, UNMAP_ALL};
use super::interval::{mapped_span, span, Mapping, Meta};
use super::join::{HostOp, HostView};
use super::keys::{page, ContainerKey, DevKey, EvId, GuestDomainKey, IommuDomainKey};
use super::msi::Vector;
use super::state::State;
use crate::event::{
    Event, EventKind, IoasMap, IoasUnmap, IommuMap, IommuUnmap, MsiVector, VfioMapDma, VfioSetIrqs,
    VfioUnmapDma, ViommuOp, ViommuReq,
};

impl State {
    pub(super) fn apply(&mut self, e: &Event, id: EvId) -> Delta {
        let wall = self.clock.observe(e.node, e.ts_ns);
        self.join.tick(self.clock.now());
        match &e.kind {
            EventKind::VfioMapDma(m) => return self.on_map_dma(e, m, id, wall),
            EventKind::VfioUnmapDma(u) => return self.on_unmap_dma(e, u, id, wall),
            EventKind::VfioIommuInfo(i) => {
                self.host.clear_pending(e.node, e.tid);
                if i.errno == 0 {
                    let k = ContainerKey::vfio(e.node, i.container);
                    self.host.containers.entry(k).or_default().info = Some((id, i.clone()));
                }
            }
            EventKind::VfioSetIommu(s) => {
                self.host.clear_pending(e.node, e.tid);
                if s.errno == 0 {
                    let k = ContainerKey::vfio(e.node, s.container);
                    self.host.containers.entry(k).or_default().set_iommu = Some(id);
                }
            }
            EventKind::VfioPin(p) => self.host.push_pin(e.node, e.tid, id, p),
            EventKind::IommuMap(m) => self.on_iommu_map(e, m, id),
            EventKind::IommuUnmap(u) => return self.on_iommu_unmap(e, u),
            EventKind::ViommuReq(r) => return self.on_viommu(e, r, id, wall),
            EventKind::ResvRegion(r) => {
                if self.msi.add_resv(e.node, r, id) {
                    return Delta::NewRegion;
                }
            }
            EventKind::VfioSetIrqs(s) => return self.on_set_irqs(e, s, id),
            EventKind::MsiVector(v) => return self.on_msi_vector(e, v, id),
            EventKind::MsiWrite(w) => {
                let k = DevKey::new(e.node, e.pid, w.device);
                self.msi.dev(k).program(w.vector, w.address, w.data, id);
            }
            EventKind::MsiMask(m) => {
                let k = DevKey::new(e.node, e.pid, m.device);
                self.msi
                    .dev(k)
                    .mask(m.index, m.vector, m.masked, m.can_mask, id);
            }
            EventKind::MsiDoorbellMap(d) => {
                let k = IommuDomainKey {
                    node: e.node,
                    domain: d.domain,
                };
                let dom = self.host.domains.entry(k).or_default();
                dom.doorbells.insert(page(d.iova), (d.doorbell_paddr, id));
                dom.devices.insert(d.device);
            }
            EventKind::MsiCookie(c) => {
                let k = IommuDomainKey {
                    node: e.node,
                    domain: c.domain,
                };
                self.host.domains.entry(k).or_default().cookie = Some((c.base, id));
            }
            EventKind::KvmMemslot(m) => {
                self.host.clear_pending(e.node, e.tid);
                if m.errno == 0 {
                    self.host.memslot(e.node, m, id);
                }
            }
            EventKind::IoasMap(m) => self.on_ioas_map(e, m, id),
            EventKind::IoasUnmap(u) => return self.on_ioas_unmap(e, u, id),
            EventKind::ProbeStatus(_) | EventKind::Drops(_) | EventKind::StreamGap(_) => {
                self.health.fold(e.node, &e.kind);
            }
            // iommufd objects and VFIO-cdev bindings: ids only (engine/iommufd.rs).
            EventKind::IommufdDestroy(_)
            | EventKind::IoasAlloc(_)
            | EventKind::IoasAllowIovas(_)
            | EventKind::IoasCopy(_)
            | EventKind::IoasIovaRanges(_)
            | EventKind::IommufdOption(_)
            | EventKind::HwptAlloc(_)
            | EventKind::IommufdHwInfo(_)
            | EventKind::HwptSetDirtyTracking(_)
            | EventKind::HwptGetDirtyBitmap(_)
            | EventKind::HwptInvalidate(_)
            | EventKind::FaultQueueAlloc(_)
            | EventKind::IoasMapFile(_)
            | EventKind::ViommuAlloc(_)
            | EventKind::VdeviceAlloc(_)
            | EventKind::VeventqAlloc(_)
            | EventKind::VfioBindIommufd(_)
            | EventKind::VfioAttachPt(_)
            | EventKind::VfioDetachPt(_) => self.iommufd.apply(e),
        }
        Delta::None
    }

    fn on_map_dma(&mut self, e: &Event, m: &VfioMapDma, id: EvId, wall: u64) -> Delta {
        let group = self.host.take_pending(e.node, e.tid);
        let key = ContainerKey::vfio(e.node, m.container);
        let range = span(m.iova, m.size);
        if let Some((s, l)) = range {
            self.join_host_map(key, wall, (s, l), m.vaddr, m.errno, id);
        }
        let (0, Some((s, l))) = (m.errno, range) else {
            return Delta::None;
        };
        let c = self.host.containers.entry(key).or_default();
        c.maps
            .insert(s, l, m.vaddr, Meta::new(id, (m.flags & 0xffff) as u16));
        c.mapped_ok = true;
        c.domains.extend(group.maps.iter().map(|(_, im)| im.domain));
        self.host.apply_pins(e.node, key.pid(), &group.pins);
        Delta::MapDma(group)
    }

    fn join_host_map(
        &mut self,
        key: ContainerKey,
        wall: u64,
        (s, l): (u64, u64),
        vaddr: u64,
        errno: i32,
        id: EvId,
    ) {
        // The host side of a virtio-iommu is the VMM emulating it. Once any
        // node shows KVM VMs, VFIO users that are not VMMs (DPDK, or the
        // nested guest's own VFIO driver, whose MAP_DMAs precede the same
        // IOVAs in its host's virtio-iommu) are not candidates.
        if self.host.any_vms() && !self.host.is_vmm(key.node, key.pid()) {
            return;
        }
        let op = HostOp {
            key,
            wall,
            start: s,
            last: l,
            vaddr,
            ev: id,
            errno,
        };
        self.join.host_map(op, &HostJudge(&self.host));
    }

    fn on_unmap_dma(&mut self, e: &Event, u: &VfioUnmapDma, id: EvId, wall: u64) -> Delta {
        self.host.clear_pending(e.node, e.tid);
        let key = ContainerKey::vfio(e.node, u.container);
        let all = u.flags & UNMAP_ALL != 0;
        let range = if all {
            Some((0, u64::MAX))
        } else {
            span(u.iova, u.size)
        };
        self.host_unmap(key, range, (u.unmapped, u.size, u.errno), id, wall)
    }

    /// One UNMAP, shared by VFIO and iommufd: `(unmapped, size, errno)`.
    fn host_unmap(
        &mut self,
        key: ContainerKey,
        range: Option<(u64, u64)>,
        (unmapped, size, errno): (u64, u64, i32),
        id: EvId,
        wall: u64,
    ) -> Delta {
        let Some((s, l)) = range else {
            return Delta::None;
        };
        self.join.host_unmap(HostOp {
            key,
            wall,
            start: s,
            last: l,
            vaddr: 0,
            ev: id,
            errno,
        });
        if errno != 0 {
            return Delta::None;
        }
        let HostState {
            containers, pins, ..
        } = &mut self.host;
        let Some(c) = containers.get_mut(&key) else {
            return Delta::None;
        };
        // The HVAs of what was unmapped are unpinned.
        let mut pinned = pins.get_mut(&(key.node, key.pid()));
        c.maps.remove_contained(s, l, |m| {
            if let Some(p) = pinned.as_deref_mut() {
                let last = m.to.saturating_add(m.last - m.start);
                p.remove_range(m.to, last, |_| {});
            }
        });
        if unmapped >= size {
            return Delta::None;
        }
        left(s, l, c.maps.overlapping(s, l).collect())
    }

    fn on_ioas_map(&mut self, e: &Event, m: &IoasMap, id: EvId) {
        self.host.clear_pending(e.node, e.tid);
        let Some((s, l)) = mapped_span(m.errno, m.iova, m.length) else {
            return;
        };
        let key = ContainerKey {
            node: e.node,
            container: m.iommufd,
            ioas: m.ioas,
        };
        let c = self.host.containers.entry(key).or_default();
        c.maps
            .insert(s, l, m.user_va, Meta::new(id, (m.flags & 0xffff) as u16));
        c.mapped_ok = true;
    }

    fn on_ioas_unmap(&mut self, e: &Event, u: &IoasUnmap, id: EvId) -> Delta {
        self.host.clear_pending(e.node, e.tid);
        let key = ContainerKey {
            node: e.node,
            container: u.iommufd,
            ioas: u.ioas,
        };
        let wall = self.clock.wall(e.node, e.ts_ns);
        // iommufd: iova 0 + length 0 unmaps everything.
        let range = if u.iova == 0 && u.length == 0 {
            Some((0, u64::MAX))
        } else {
            span(u.iova, u.length)
        };
        self.host_unmap(key, range, (u.unmapped, u.length, u.errno), id, wall)
    }

    fn on_iommu_map(&mut self, e: &Event, m: &IommuMap, id: EvId) {
        self.host.push_map(e.node, e.tid, id, m);
        let Some((s, l)) = mapped_span(m.errno, m.iova, m.size) else {
            return;
        };
        let k = IommuDomainKey {
            node: e.node,
            domain: m.domain,
        };
        let prot = (m.prot & 0xffff) as u16;
        self.host
            .domains
            .entry(k)
            .or_default()
            .maps
            .insert(s, l, m.paddr, Meta::new(id, prot));
    }

    fn on_iommu_unmap(&mut self, e: &Event, u: &IommuUnmap) -> Delta {
        let k = IommuDomainKey {
            node: e.node,
            domain: u.domain,
        };
        let Some(dom) = self.host.domains.get_mut(&k) else {
            return Delta::None;
        };
        if let Some((s, l)) = span(u.iova, u.unmapped) {
            dom.maps.remove_range(s, l, |_| {});
        }
        if u.unmapped >= u.size {
            return Delta::None;
        }
        match span(u.iova, u.size) {
            Some((s, l)) => left(s, l, dom.maps.overlapping(s, l).collect()),
            None => Delta::None,
        }
    }

    fn on_viommu(&mut self, e: &Event, r: &ViommuReq, id: EvId, wall: u64) -> Delta {
        let key = GuestDomainKey {
            node: e.node,
            domain: r.domain,
        };
        let (s, l) = (r.virt_start, r.virt_end);
        match r.op {
            ViommuOp::Map if r.status != S_OK || s > l => {}
            ViommuOp::Map => {
                self.guest.apply(e.node, r, id);
                if r.flags & MAP_MMIO == 0 {
                    let m = Mapping {
                        start: s,
                        last: l,
                        to: r.phys_start,
                        meta: Meta::new(id, 0),
                    };
                    self.join.guest_map(key, wall, m, &HostJudge(&self.host));
                }
            }
            ViommuOp::Unmap if s > l => {}
            ViommuOp::Unmap => {
                let (removed_dma, rest) = if r.status == S_OK {
                    let out = self.guest.apply(e.node, r, id);
                    (out.removed_dma, out.left)
                } else {
                    let rest = self
                        .guest
                        .domain(key)
                        .map(|d| d.maps.overlapping(s, l).collect())
                        .unwrap_or_default();
                    (false, rest)
                };
                if removed_dma {
                    self.join.guest_unmap(key, wall, s, l, id);
                }
                return left(s, l, rest);
            }
            ViommuOp::Attach | ViommuOp::Detach | ViommuOp::Probe => {
                if r.status == S_OK {
                    self.guest.apply(e.node, r, id);
                }
            }
        }
        Delta::None
    }

    fn on_set_irqs(&mut self, e: &Event, s: &VfioSetIrqs, id: EvId) -> Delta {
        self.host.clear_pending(e.node, e.tid);
        if s.errno != 0 {
            return Delta::None;
        }
        let k = DevKey::new(e.node, e.pid, s.device);
        let bound_before = self.msi.bound(k, s.index);
        self.msi.set_irqs(k, s, id);
        self.msi.dev(k).owners.insert(e.pid);
        Delta::SetIrqs { bound_before }
    }

    fn on_msi_vector(&mut self, e: &Event, v: &MsiVector, id: EvId) -> Delta {
        let k = DevKey::new(e.node, e.pid, v.device);
        let d = self.msi.dev(k);
        if v.enabled && v.eventfd >= 0 {
            let b = Vector {
                eventfd: v.eventfd,
                ev: id,
            };
            d.vectors.insert((v.index, v.vector), b);
            return Delta::None;
        }
        match d.vectors.remove(&(v.index, v.vector)) {
            // The trigger goes away (de-assigned, or a failed re-bind that
            // tore the old one down).
            Some(b) if !v.enabled => Delta::Unbound(b.ev),
            _ => Delta::None,
        }
    }
}

/// What an UNMAP of `[s, l]` left there, when anything.
fn left(s: u64, l: u64, left: Vec<Mapping>) -> Delta {
    if left.is_empty() {
        return Delta::None;
    }
    Delta::Left {
        start: s,
        last: l,
        left,
    }
}

/// The host state as the join judges HVAs.
struct HostJudge<'a>(&'a HostState);

impl HostView for HostJudge<'_> {
    fn judge_hva(&self, c: ContainerKey) -> bool {
        self.0.node_has_vms(c.node)
    }

    fn expected_hva(&self, c: ContainerKey, gpa: u64) -> Option<(u64, EvId)> {
        self.0
            .gpa_to_hva(c.node, c.pid(), gpa)
            .map(|(h, s)| (h, s.ev))
    }
}
