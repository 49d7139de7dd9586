//! Event dispatch: each event updates the state of its layer and runs the
//! point-in-time rules that need the state as it was at that moment.

use super::guest::{MAP_MMIO, S_OK};
use super::host::HostState;
use super::host::{PROT_MMIO, UNMAP_ALL};
use super::interval::{span, Mapping, Meta};
use super::join::{HostOp, HostView};
use super::keys::{page, ContainerKey, DevKey, EvId, GuestDomainKey, IommuDomainKey};
use super::msi::Message;
use super::Engine;
use crate::event::{
    Event, EventKind, IoasMap, IoasUnmap, IommuMap, IommuUnmap, MsiVector, ProbeState, VfioMapDma,
    VfioUnmapDma, ViommuOp, ViommuReq,
};

impl Engine {
    pub(super) fn apply_event(&mut self, e: &Event, id: EvId) {
        let wall = self.clock.observe(e.node, e.ts_ns);
        self.join.tick(self.clock.now());
        match &e.kind {
            EventKind::VfioMapDma(m) => self.on_map_dma(e, m, id, wall),
            EventKind::VfioUnmapDma(u) => self.on_unmap_dma(e, u, id, wall),
            EventKind::VfioIommuInfo(i) => {
                self.host.clear_pending(e.node, e.tid);
                if i.errno == 0 {
                    let k = ContainerKey {
                        node: e.node,
                        container: i.container,
                        ioas: 0,
                    };
                    self.host.containers.entry(k).or_default().info = Some((id, i.clone()));
                }
            }
            EventKind::VfioSetIommu(s) => {
                self.host.clear_pending(e.node, e.tid);
                if s.errno == 0 {
                    let k = ContainerKey {
                        node: e.node,
                        container: s.container,
                        ioas: 0,
                    };
                    self.host.containers.entry(k).or_default().set_iommu = Some(id);
                }
            }
            EventKind::VfioPin(p) => self.host.push_pin(e.node, e.tid, id, p),
            EventKind::IommuMap(m) => self.on_iommu_map(e, m, id),
            EventKind::IommuUnmap(u) => self.on_iommu_unmap(e, u, id),
            EventKind::ViommuReq(r) => self.on_viommu(e, r, id, wall),
            EventKind::ResvRegion(r) => {
                if self.msi.add_resv(e.node, r, id) {
                    self.check_resv_vs_mappings(e.node, r, id);
                }
            }
            EventKind::VfioSetIrqs(s) => {
                self.host.clear_pending(e.node, e.tid);
                if s.errno == 0 {
                    let k = DevKey::new(e.node, e.pid, s.device);
                    self.check_irq_signal(k, s, id);
                    let before = self.msi.bound(k, s.index);
                    self.msi.set_irqs(k, s, id);
                    let after = self.msi.bound(k, s.index);
                    for (v, bind) in before {
                        if !after.iter().any(|(w, _)| *w == v) {
                            self.check_unmasked_teardown(k, s.index, v, bind, id);
                        }
                    }
                    self.msi.dev(k).owners.insert(e.pid);
                    self.check_cleared_but_bound(k, s, id);
                }
            }
            EventKind::MsiVector(v) => self.on_msi_vector(e, v, id),
            EventKind::MsiWrite(w) => {
                let k = DevKey::new(e.node, e.pid, w.device);
                // A zeroed message clears the vector: nothing to route.
                if !Message::is_cleared(w.address, w.data) {
                    self.check_msi_write(k, e.pid, w, id);
                }
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
                self.check_cookie_vs_mappings(k, c.base, id);
            }
            EventKind::KvmMemslot(m) => {
                self.host.clear_pending(e.node, e.tid);
                if m.errno == 0 {
                    self.host.memslot(e.node, m, id);
                }
            }
            EventKind::IoasMap(m) => self.on_ioas_map(e, m, id),
            EventKind::IoasUnmap(u) => self.on_ioas_unmap(e, u, id),
            EventKind::ProbeStatus(p) => {
                let ok = p.status == ProbeState::Attached;
                let slot = self
                    .health
                    .probes
                    .entry((e.node, p.probe.clone()))
                    .or_insert_with(|| (p.clone(), ok));
                let ever = slot.1 || ok;
                *slot = (p.clone(), ever);
            }
            EventKind::Drops(d) => {
                self.health.drops.insert(e.node, d.clone());
            }
        }
    }

    fn on_map_dma(&mut self, e: &Event, m: &VfioMapDma, id: EvId, wall: u64) {
        let group = self.host.take_pending(e.node, e.tid);
        let key = ContainerKey {
            node: e.node,
            container: m.container,
            ioas: 0,
        };
        let range = span(m.iova, m.size);
        if let Some((s, l)) = range {
            self.join_host_map(key, wall, (s, l), m.vaddr, m.errno, id);
        }
        if m.errno != 0 {
            self.explain_map_dma_failure(key, m, id);
            return;
        }
        let Some((s, l)) = range else {
            return;
        };
        self.check_host_map_in_msi(key, s, l, id);
        let c = self.host.containers.entry(key).or_default();
        c.maps
            .insert(s, l, m.vaddr, Meta::new(id, (m.flags & 0xffff) as u16));
        c.mapped_ok = true;
        c.domains.extend(group.maps.iter().map(|(_, im)| im.domain));
        self.host.apply_pins(e.node, key.pid(), &group.pins);
        self.check_pins_vs_iommu(key, m, &group, id);
        self.host.recycle_pending(e.node, e.tid, group);
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

    fn on_unmap_dma(&mut self, e: &Event, u: &VfioUnmapDma, id: EvId, wall: u64) {
        self.host.clear_pending(e.node, e.tid);
        let key = ContainerKey {
            node: e.node,
            container: u.container,
            ioas: 0,
        };
        let all = u.flags & UNMAP_ALL != 0;
        let range = if all {
            Some((0, u64::MAX))
        } else {
            span(u.iova, u.size)
        };
        self.host_unmap(key, range, u.unmapped, u.size, u.errno, id, wall);
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "one UNMAP, shared by VFIO and iommufd"
    )]
    fn host_unmap(
        &mut self,
        key: ContainerKey,
        range: Option<(u64, u64)>,
        unmapped: u64,
        size: u64,
        errno: i32,
        id: EvId,
        wall: u64,
    ) {
        let Some((s, l)) = range else {
            return;
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
            return;
        }
        let HostState {
            containers, pins, ..
        } = &mut self.host;
        let Some(c) = containers.get_mut(&key) else {
            return;
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
            return;
        }
        let left: Vec<Mapping> = c.maps.overlapping(s, l).collect();
        if !left.is_empty() {
            self.report_stale_host(key, s, l, unmapped, &left, id);
        }
    }

    fn on_ioas_map(&mut self, e: &Event, m: &IoasMap, id: EvId) {
        self.host.clear_pending(e.node, e.tid);
        if m.errno != 0 {
            return;
        }
        let Some((s, l)) = span(m.iova, m.length) else {
            return;
        };
        let key = ContainerKey {
            node: e.node,
            container: m.iommufd,
            ioas: m.ioas,
        };
        self.check_host_map_in_msi(key, s, l, id);
        let c = self.host.containers.entry(key).or_default();
        c.maps
            .insert(s, l, m.user_va, Meta::new(id, (m.flags & 0xffff) as u16));
        c.mapped_ok = true;
    }

    fn on_ioas_unmap(&mut self, e: &Event, u: &IoasUnmap, id: EvId) {
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
        self.host_unmap(key, range, u.unmapped, u.length, u.errno, id, wall);
    }

    fn on_iommu_map(&mut self, e: &Event, m: &IommuMap, id: EvId) {
        self.host.push_map(e.node, e.tid, id, m);
        if m.errno != 0 {
            return;
        }
        let Some((s, l)) = span(m.iova, m.size) else {
            return;
        };
        let k = IommuDomainKey {
            node: e.node,
            domain: m.domain,
        };
        self.check_iommu_map_in_msi(k, m, s, l, id);
        let prot = (m.prot & 0xffff) as u16;
        self.host
            .domains
            .entry(k)
            .or_default()
            .maps
            .insert(s, l, m.paddr, Meta::new(id, prot));
    }

    fn on_iommu_unmap(&mut self, e: &Event, u: &IommuUnmap, id: EvId) {
        let k = IommuDomainKey {
            node: e.node,
            domain: u.domain,
        };
        let Some(dom) = self.host.domains.get_mut(&k) else {
            return;
        };
        if let Some((s, l)) = span(u.iova, u.unmapped) {
            dom.maps.remove_range(s, l, |_| {});
        }
        if u.unmapped < u.size {
            if let Some((s, l)) = span(u.iova, u.size) {
                let left: Vec<Mapping> = dom.maps.overlapping(s, l).collect();
                if !left.is_empty() {
                    self.report_stale_domain(k, s, l, u.unmapped, &left, id);
                }
            }
        }
    }

    fn on_viommu(&mut self, e: &Event, r: &ViommuReq, id: EvId, wall: u64) {
        let key = GuestDomainKey {
            node: e.node,
            domain: r.domain,
        };
        match r.op {
            ViommuOp::Map if r.status != S_OK => self.explain_guest_map_failure(key, r, id),
            ViommuOp::Map => {
                if r.virt_start > r.virt_end {
                    return;
                }
                self.check_guest_map_in_msi(key, r, id);
                self.guest.apply(e.node, r, id);
                if r.flags & MAP_MMIO == 0 {
                    let m = Mapping {
                        start: r.virt_start,
                        last: r.virt_end,
                        to: r.phys_start,
                        meta: Meta::new(id, 0),
                    };
                    self.join.guest_map(key, wall, m, &HostJudge(&self.host));
                }
            }
            ViommuOp::Unmap => {
                if r.virt_start > r.virt_end {
                    return;
                }
                let (removed_dma, left) = if r.status == S_OK {
                    let out = self.guest.apply(e.node, r, id);
                    (out.removed_dma, out.left)
                } else {
                    let left = self
                        .guest
                        .domain(key)
                        .map(|d| d.maps.overlapping(r.virt_start, r.virt_end).collect())
                        .unwrap_or_default();
                    (false, left)
                };
                if removed_dma {
                    self.join
                        .guest_unmap(key, wall, r.virt_start, r.virt_end, id);
                }
                if !left.is_empty() {
                    self.report_stale_guest(key, r, &left, id);
                }
            }
            ViommuOp::Attach | ViommuOp::Detach | ViommuOp::Probe => {
                if r.status == S_OK {
                    self.guest.apply(e.node, r, id);
                }
            }
        }
    }

    fn on_msi_vector(&mut self, e: &Event, v: &MsiVector, id: EvId) {
        let k = DevKey::new(e.node, e.pid, v.device);
        if v.enabled && v.eventfd < 0 {
            self.report_vector_without_eventfd(k, v, id);
        }
        // The trigger goes away (de-assigned, or a failed re-bind that
        // tore the old one down): the kernel must have masked the vector.
        if !v.enabled {
            let bound = self
                .msi
                .devices
                .get(&k)
                .and_then(|d| d.vectors.get(&(v.index, v.vector)))
                .map(|b| b.ev);
            if let Some(bind) = bound {
                self.check_unmasked_teardown(k, v.index, v.vector, bind, id);
            }
        }
        let d = self.msi.dev(k);
        if v.enabled && v.eventfd >= 0 {
            d.vectors.insert(
                (v.index, v.vector),
                super::msi::Vector {
                    eventfd: v.eventfd,
                    ev: id,
                },
            );
        } else {
            d.vectors.remove(&(v.index, v.vector));
        }
    }
}

/// Is a host IOMMU mapping a doorbell (MMIO) rather than DMA to RAM?
pub(super) fn is_mmio_prot(m: &Mapping) -> bool {
    u32::from(m.meta.flags()) & PROT_MMIO != 0
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

impl Engine {
    /// Prefetches the page slots `e` will look up (a hint, no state change).
    pub(super) fn prefetch(&self, e: &Event) {
        match &e.kind {
            EventKind::ViommuReq(r) if matches!(r.op, ViommuOp::Map | ViommuOp::Unmap) => {
                let k = GuestDomainKey {
                    node: e.node,
                    domain: r.domain,
                };
                if let Some(d) = self.guest.domains.get(&k) {
                    d.maps.prefetch(r.virt_start);
                }
            }
            EventKind::IommuMap(IommuMap { domain, iova, .. })
            | EventKind::IommuUnmap(IommuUnmap { domain, iova, .. }) => {
                let k = IommuDomainKey {
                    node: e.node,
                    domain: *domain,
                };
                if let Some(d) = self.host.domains.get(&k) {
                    d.maps.prefetch(*iova);
                }
            }
            EventKind::VfioMapDma(m) => {
                let k = ContainerKey {
                    node: e.node,
                    container: m.container,
                    ioas: 0,
                };
                if let Some(c) = self.host.containers.get(&k) {
                    c.maps.prefetch(m.iova);
                }
            }
            EventKind::VfioUnmapDma(u) => {
                let k = ContainerKey {
                    node: e.node,
                    container: u.container,
                    ioas: 0,
                };
                if let Some(c) = self.host.containers.get(&k) {
                    c.maps.prefetch(u.iova);
                }
            }
            EventKind::VfioPin(p) => {
                if let Some(m) = self.host.pins.get(&(e.node, e.pid)) {
                    m.prefetch(p.vaddr);
                }
            }
            _ => {}
        }
    }
}
