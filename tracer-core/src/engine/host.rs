//! Host side: VFIO containers / iommufd IOAS (IOVA → HVA), pinned pages
//! (HVA → HPA, per process), IOMMU domains (IOVA → HPA), KVM memslots
//! (GPA → HVA), and the per-thread grouping that ties a MAP_DMA to the pins
//! and `iommu_map`s done inside it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::interval::{IntHash, IntervalMap, Mapping, Meta};
use super::keys::{ContainerKey, EvId, IommuDomainKey, VmKey};
use crate::event::{IommuMap, KvmMemslot, NodeId, VfioIommuInfo, VfioPin};

/// `IOMMU_MMIO`: a doorbell / device-memory mapping, not DMA to RAM.
pub const PROT_MMIO: u32 = 0x10;
/// VFIO_DMA_UNMAP_FLAG_ALL.
pub const UNMAP_ALL: u32 = 2;
/// Pins and maps remembered per thread between two of its ioctls.
const MAX_PENDING: usize = 1 << 18;

#[derive(Clone, Debug, Default)]
pub struct Container {
    /// IOVA → HVA; meta flags are the MAP_DMA flags.
    pub maps: IntervalMap,
    pub set_iommu: Option<EvId>,
    /// Latest successful VFIO_IOMMU_GET_INFO.
    pub info: Option<(EvId, VfioIommuInfo)>,
    /// IOMMU domains this container's MAP_DMAs were seen mapping into.
    pub domains: BTreeSet<u64>,
    /// A MAP_DMA succeeded at least once (so SET_IOMMU happened).
    pub mapped_ok: bool,
}

#[derive(Clone, Debug, Default)]
pub struct IommuDomain {
    /// IOVA → HPA; meta flags are the IOMMU_* prot bits.
    pub maps: IntervalMap,
    /// Software-MSI cookie: window base.
    pub cookie: Option<(u64, EvId)>,
    /// Doorbell pages mapped for MSI: IOVA page → (doorbell paddr, event).
    pub doorbells: BTreeMap<u64, (u64, EvId)>,
    /// Devices seen using this domain (doorbell maps).
    pub devices: BTreeSet<crate::event::Device>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Memslot {
    pub gpa: u64,
    pub size: u64,
    pub hva: u64,
    pub ev: EvId,
}

/// Is a host IOMMU mapping a doorbell (MMIO) rather than DMA to RAM?
pub fn is_mmio_prot(m: &Mapping) -> bool {
    u32::from(m.meta.flags()) & PROT_MMIO != 0
}

/// Pins and `iommu_map`s a thread did since its previous ioctl event.
#[derive(Clone, Debug, Default)]
pub struct Pending {
    pub pins: Vec<(EvId, VfioPin)>,
    pub maps: Vec<(EvId, IommuMap)>,
}

#[derive(Clone, Debug, Default)]
pub struct HostState {
    pub containers: BTreeMap<ContainerKey, Container>,
    pub domains: BTreeMap<IommuDomainKey, IommuDomain>,
    /// (node, pid) → HVA → HPA; meta is the pin event.
    pub pins: BTreeMap<(NodeId, u32), IntervalMap>,
    pub vms: BTreeMap<VmKey, BTreeMap<u32, Memslot>>,
    pub pending: HashMap<(NodeId, u32), Pending, IntHash>,
}

impl HostState {
    pub fn push_pin(&mut self, node: NodeId, tid: u32, ev: EvId, p: &VfioPin) {
        let e = self.pending.entry((node, tid)).or_default();
        if e.pins.len() < MAX_PENDING {
            e.pins.push((ev, p.clone()));
        }
    }

    pub fn push_map(&mut self, node: NodeId, tid: u32, ev: EvId, m: &IommuMap) {
        let e = self.pending.entry((node, tid)).or_default();
        if e.maps.len() < MAX_PENDING {
            e.maps.push((ev, m.clone()));
        }
    }

    /// Ends a thread's group at one of its ioctl events.
    pub fn take_pending(&mut self, node: NodeId, tid: u32) -> Pending {
        self.pending
            .get_mut(&(node, tid))
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Drops a thread's group (an ioctl that is not a MAP_DMA).
    pub fn clear_pending(&mut self, node: NodeId, tid: u32) {
        if let Some(p) = self.pending.get_mut(&(node, tid)) {
            p.pins.clear();
            p.maps.clear();
        }
    }

    /// Gives a taken group's buffers back for the thread's next group.
    pub fn recycle_pending(&mut self, node: NodeId, tid: u32, mut p: Pending) {
        p.pins.clear();
        p.maps.clear();
        if let Some(slot) = self.pending.get_mut(&(node, tid)) {
            if slot.pins.capacity() == 0 && slot.maps.capacity() == 0 {
                *slot = p;
            }
        }
    }

    pub fn memslot(&mut self, node: NodeId, m: &KvmMemslot, ev: EvId) {
        let slots = self.vms.entry(VmKey { node, vm: m.vm }).or_default();
        if m.size == 0 {
            slots.remove(&m.slot);
        } else {
            slots.insert(
                m.slot,
                Memslot {
                    gpa: m.gpa,
                    size: m.size,
                    hva: m.hva,
                    ev,
                },
            );
        }
    }

    /// VMs of a process on a node.
    pub fn vms_of(
        &self,
        node: NodeId,
        pid: u32,
    ) -> impl Iterator<Item = (&VmKey, &BTreeMap<u32, Memslot>)> {
        self.vms
            .iter()
            .filter(move |(k, _)| k.node == node && k.pid() == pid)
    }

    /// Is the process a VMM (owns a KVM VM) on that node?
    pub fn is_vmm(&self, node: NodeId, pid: u32) -> bool {
        self.vms_of(node, pid).next().is_some()
    }

    /// Has any node shown a KVM VM (so VMM-ness can be judged)?
    pub fn any_vms(&self) -> bool {
        !self.vms.is_empty()
    }

    /// Does the node have any VM at all (so VMM-ness can be judged)?
    pub fn node_has_vms(&self, node: NodeId) -> bool {
        self.vms.keys().any(|k| k.node == node)
    }

    /// GPA → (HVA, memslot) through the VMs of `pid` on `node`.
    pub fn gpa_to_hva(&self, node: NodeId, pid: u32, gpa: u64) -> Option<(u64, Memslot)> {
        self.vms_of(node, pid).find_map(|(_, slots)| {
            slots.values().find_map(|s| {
                (gpa >= s.gpa && gpa - s.gpa < s.size)
                    .then(|| (s.hva.wrapping_add(gpa - s.gpa), *s))
            })
        })
    }

    /// Inserts pins for a process: HVA → HPA.
    pub fn apply_pins(&mut self, node: NodeId, pid: u32, pins: &[(EvId, VfioPin)]) {
        if pins.is_empty() {
            return;
        }
        let map = self.pins.entry((node, pid)).or_default();
        for (ev, p) in pins {
            let Some(bytes) = p.npages.checked_mul(4096) else {
                continue;
            };
            if let Some((s, l)) = super::interval::span(p.vaddr, bytes) {
                map.insert(s, l, p.pfn.wrapping_shl(12), Meta::new(*ev, 0));
            }
        }
    }

    /// Drops pins of an HVA range (its MAP_DMA was unmapped).
    pub fn unpin(&mut self, node: NodeId, pid: u32, hva: u64, last: u64) {
        if let Some(map) = self.pins.get_mut(&(node, pid)) {
            map.remove_range(hva, last, |_| {});
        }
    }

    /// IOMMU domains on a node.
    pub fn domains_on(
        &self,
        node: NodeId,
    ) -> impl Iterator<Item = (&IommuDomainKey, &IommuDomain)> {
        let lo = IommuDomainKey { node, domain: 0 };
        let hi = IommuDomainKey {
            node,
            domain: u64::MAX,
        };
        self.domains.range(lo..=hi)
    }

    /// Host containers on a node.
    pub fn containers_on(&self, node: NodeId) -> impl Iterator<Item = (&ContainerKey, &Container)> {
        let lo = ContainerKey {
            node,
            container: 0,
            ioas: 0,
        };
        let hi = ContainerKey {
            node,
            container: u64::MAX,
            ioas: u32::MAX,
        };
        self.containers.range(lo..=hi)
    }
}
