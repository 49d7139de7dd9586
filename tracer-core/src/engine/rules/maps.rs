//! Point-in-time map rules: VT001 (DMA map in an MSI window), VT007 (stale
//! mapping after an UNMAP), VT008 (failed MAP explained).

use std::collections::BTreeSet;

use super::{hex, range, Finding, RuleId};
use crate::engine::guest::MAP_MMIO;
use crate::engine::host::PROT_MMIO;
use crate::engine::interval::{overlaps, span, Mapping};
use crate::engine::keys::{ContainerKey, EvId, GuestDomainKey, IommuDomainKey};
use crate::engine::Engine;
use crate::event::{Device, IommuMap, ResvRegion, ResvType, VfioMapDma, ViommuReq};

const EEXIST: i32 = 17;
const EINVAL: i32 = 22;

fn layer(key: ContainerKey) -> &'static str {
    if key.ioas == 0 {
        "VFIO MAP_DMA"
    } else {
        "IOMMU_IOAS_MAP"
    }
}

impl Engine {
    /// VT001, host: a successful MAP_DMA / IOAS_MAP inside an MSI window.
    pub(crate) fn check_host_map_in_msi(&mut self, key: ContainerKey, s: u64, l: u64, id: EvId) {
        let Some((r, rev)) = self.msi.msi_overlap(key.node, s, l) else {
            return;
        };
        let msg = format!(
            "{} {} in container {:#x} overlaps the {:?} window {} of group {}",
            layer(key),
            range(s, l),
            key.container,
            r.rtype,
            range(r.start, r.end),
            r.group
        );
        let (device, rev) = (r.device, *rev);
        // The MAP_DMA's own iommu_map was reported a moment ago at the IOMMU
        // layer: one cause, one finding (the MAP_DMA's, with both events).
        if let Some(f) = self.found.list.iter_mut().rev().take(8).find(|f| {
            f.rule == RuleId::MapInMsiWindow
                && f.node == Some(key.node)
                && f.address.is_some_and(|(a, b)| s <= a && b <= l)
        }) {
            f.message = msg;
            f.evidence.push(id);
            f.at = f.at.max(id);
            f.address = Some((s, l));
            return;
        }
        let f = Finding::new(RuleId::MapInMsiWindow, key.node, msg, vec![rev, id])
            .device(device)
            .address(s, l);
        self.found.push(f);
    }

    /// VT001, IOMMU layer: an `iommu_map` into an MSI window of the node,
    /// whoever called it (VFIO refuses such MAP_DMAs, so this is a kernel
    /// caller: a driver, a VFIO bug). DMA there is never translated (a
    /// hardware window bypasses the IOMMU) or hits the doorbells (software
    /// window); only the MMIO doorbell mappings `iommu_dma_prepare_msi`
    /// makes inside a software window belong there.
    pub(crate) fn check_iommu_map_in_msi(
        &mut self,
        k: IommuDomainKey,
        m: &IommuMap,
        s: u64,
        l: u64,
        id: EvId,
    ) {
        let mmio = m.prot & PROT_MMIO != 0;
        let hit = |r: &ResvRegion| {
            (r.rtype == ResvType::Msi || (r.rtype == ResvType::SwMsi && !mmio))
                && overlaps(s, l, r.start, r.end)
        };
        let mut regions: Vec<&(ResvRegion, EvId)> = self
            .msi
            .node_regions(k.node)
            .iter()
            .filter(|(r, _)| hit(r))
            .collect();
        // The domain's own devices when known (doorbell maps name them);
        // else every group with that window (x86: all of them).
        if let Some(devs) = self.host.domains.get(&k).map(|d| &d.devices) {
            if regions.iter().any(|(r, _)| devs.contains(&r.device)) {
                regions.retain(|(r, _)| devs.contains(&r.device));
            }
        }
        let Some((r, rev)) = regions.first().map(|(r, e)| (r.clone(), *e)) else {
            return;
        };
        let groups: BTreeSet<u32> = regions.iter().map(|(r, _)| r.group).collect();
        let devices: BTreeSet<Device> = regions.iter().map(|(r, _)| r.device).collect();
        let groups: Vec<String> = groups.iter().map(u32::to_string).collect();
        let msg = format!(
            "iommu_map {} → {} (prot {:#x}) in IOMMU domain {:#x} overlaps the {:?} window {} of group{} {}: no VFIO MAP_DMA asked for it (a kernel caller mapped it)",
            range(s, l),
            hex(m.paddr),
            m.prot,
            k.domain,
            r.rtype,
            range(r.start, r.end),
            if groups.len() > 1 { "s" } else { "" },
            groups.join(", ")
        );
        let mut f = Finding::new(RuleId::MapInMsiWindow, k.node, msg, vec![rev, id]).address(s, l);
        if devices.len() == 1 {
            f = f.device(r.device);
        }
        self.found.push(f);
    }

    /// VT001, guest: a MAP inside a reserved region an attached endpoint's
    /// PROBE reported, or (non-doorbell) inside the driver's own SW_MSI window.
    pub(crate) fn check_guest_map_in_msi(&mut self, key: GuestDomainKey, r: &ViommuReq, id: EvId) {
        let (s, l) = (r.virt_start, r.virt_end);
        let mmio = r.flags & MAP_MMIO != 0;
        let mut hits = Vec::new();
        for (ep, e) in self.guest.attached(key) {
            if let Some((w0, w1)) = e.implicit_sw_msi() {
                let inside = s >= w0 && l <= w1;
                if overlaps(s, l, w0, w1) && !(mmio && inside) {
                    let probe_ev = e.probe.as_ref().map_or(id, |p| p.0);
                    hits.push((
                        ep,
                        format!("the driver's own SW_MSI window {}", range(w0, w1)),
                        probe_ev,
                    ));
                }
            }
            let Some((pev, resv)) = &e.probe else {
                continue;
            };
            for m in resv.iter().filter(|m| overlaps(s, l, m.start, m.end)) {
                if mmio
                    && e.implicit_sw_msi()
                        .is_some_and(|(w0, w1)| s >= w0 && l <= w1)
                {
                    continue;
                }
                let what = if m.subtype == 1 { "MSI" } else { "RESERVED" };
                hits.push((
                    ep,
                    format!(
                        "the {what} region {} reported by PROBE",
                        range(m.start, m.end)
                    ),
                    *pev,
                ));
            }
        }
        for (ep, what, pev) in hits {
            let msg = format!(
                "guest MAP {} → {} in domain {} overlaps {what} of endpoint {ep:#x}",
                range(s, l),
                hex(r.phys_start),
                key.domain
            );
            let f = Finding::new(RuleId::MapInMsiWindow, key.node, msg, vec![pev, id])
                .device(crate::event::Device::from_rid(0, ep))
                .address(s, l);
            self.found.push(f);
        }
    }

    fn stale(&mut self, node: u16, what: String, left: &[Mapping], id: EvId) {
        let Some(first) = left.first() else {
            return;
        };
        let msg = format!(
            "{what}; {} still mapped ({} piece(s), first mapped by event {})",
            range(first.start, first.last),
            left.len(),
            first.meta.ev()
        );
        self.found.push(
            Finding::new(RuleId::StaleMapping, node, msg, vec![first.meta.ev(), id])
                .address(first.start, first.last),
        );
    }

    /// VT007: host UNMAP that removed less than asked while mappings remain.
    pub(crate) fn report_stale_host(
        &mut self,
        key: ContainerKey,
        s: u64,
        l: u64,
        unmapped: u64,
        left: &[Mapping],
        id: EvId,
    ) {
        let what = format!(
            "{} of {} in container {:#x} removed {} bytes",
            if key.ioas == 0 {
                "VFIO UNMAP_DMA"
            } else {
                "IOMMU_IOAS_UNMAP"
            },
            range(s, l),
            key.container,
            hex(unmapped)
        );
        self.stale(key.node, what, left, id);
    }

    /// VT007: `iommu_unmap` that removed less than asked while mappings remain.
    pub(crate) fn report_stale_domain(
        &mut self,
        k: IommuDomainKey,
        s: u64,
        l: u64,
        unmapped: u64,
        left: &[Mapping],
        id: EvId,
    ) {
        let what = format!(
            "iommu_unmap of {} in domain {:#x} removed {} bytes",
            range(s, l),
            k.domain,
            hex(unmapped)
        );
        self.stale(k.node, what, left, id);
    }

    /// VT007: guest UNMAP that left (partially covered) mappings.
    pub(crate) fn report_stale_guest(
        &mut self,
        key: GuestDomainKey,
        r: &ViommuReq,
        left: &[Mapping],
        id: EvId,
    ) {
        let what = format!(
            "guest UNMAP {} in domain {} (status {}) did not remove partially covered mappings",
            range(r.virt_start, r.virt_end),
            key.domain,
            r.status
        );
        self.stale(key.node, what, left, id);
    }

    /// VT008: why a VFIO MAP_DMA failed with EEXIST or EINVAL.
    pub(crate) fn explain_map_dma_failure(&mut self, key: ContainerKey, m: &VfioMapDma, id: EvId) {
        let c = self.host.containers.get(&key);
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
            (EINVAL, Some((s, l))) => self.einval_cause(key, m, s, l),
            _ => return,
        };
        evidence.push(id);
        let (s, l) = span(m.iova, m.size).unwrap_or((m.iova, m.iova));
        self.found.push(
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
        &self,
        key: ContainerKey,
        m: &VfioMapDma,
        s: u64,
        l: u64,
    ) -> (String, Vec<EvId>) {
        let c = self.host.containers.get(&key);
        if c.is_none_or(|c| c.set_iommu.is_none() && !c.mapped_ok && c.info.is_none()) {
            return (
                "EINVAL: no successful VFIO_SET_IOMMU on this container before it".to_string(),
                vec![],
            );
        }
        if let Some((r, rev)) =
            self.msi.node_regions(key.node).iter().find(|(r, _)| {
                overlaps(s, l, r.start, r.end) && r.rtype != ResvType::DirectRelaxable
            })
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

    /// VT008: why a guest virtio-iommu MAP failed.
    pub(crate) fn explain_guest_map_failure(
        &mut self,
        key: GuestDomainKey,
        r: &ViommuReq,
        id: EvId,
    ) {
        let (s, l) = (r.virt_start, r.virt_end);
        let head = format!(
            "guest MAP {} → {} in domain {} failed with status {}",
            range(s, l),
            hex(r.phys_start),
            key.domain,
            r.status
        );
        let dom = self.guest.domain(key);
        let overlap = dom.and_then(|d| d.maps.overlapping(s, l).next());
        let resv = self.guest.attached(key).find_map(|(ep, e)| {
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
        self.found.push(
            Finding::new(
                RuleId::MapFailed,
                key.node,
                format!("{head}: {why}"),
                evidence,
            )
            .address(s, l),
        );
    }
}
