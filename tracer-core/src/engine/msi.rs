//! Interrupt side: host reserved regions per group/device, per-device MSI
//! vectors (eventfds) and the messages programmed into the device.

use std::collections::{BTreeMap, BTreeSet};

use super::keys::{DevKey, EvId};
use crate::event::{Device, NodeId, ResvRegion, ResvType, VfioSetIrqs};

/// x86's hardware MSI window.
pub const X86_MSI: (u64, u64) = (0xfee0_0000, 0xfeef_ffff);
/// Size of a software-MSI window (MSI_IOVA_LENGTH).
pub const SW_MSI_LEN: u64 = 0x10_0000;

/// The software-MSI window of an MSI cookie at `base`: `(first, last)`.
pub fn sw_msi_window(base: u64) -> (u64, u64) {
    (base, base.saturating_add(SW_MSI_LEN - 1))
}

/// VFIO_IRQ_SET_* bits.
pub const DATA_NONE: u32 = 1;
pub const DATA_BOOL: u32 = 2;
pub const DATA_EVENTFD: u32 = 4;
pub const ACTION_TRIGGER: u32 = 0x20;
/// VFIO_PCI_MSI_IRQ_INDEX, VFIO_PCI_MSIX_IRQ_INDEX.
pub const INDEX_MSI: u32 = 1;
pub const INDEX_MSIX: u32 = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vector {
    /// -1 when unbound.
    pub eventfd: i32,
    pub ev: EvId,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message {
    pub address: u64,
    pub data: u32,
    pub ev: EvId,
}

impl Message {
    /// The kernel writes an all-zero message when it deactivates or frees a
    /// vector (`msi_domain_deactivate()` composes a zeroed `msi_msg`): a
    /// teardown, not a doorbell address.
    pub fn is_cleared(address: u64, data: u32) -> bool {
        address == 0 && data == 0
    }
}

/// The kernel's last mask or unmask of one vector (`msi_mask` events).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaskState {
    pub masked: bool,
    /// The device has a mask bit for the vector (None: not known).
    pub can_mask: Option<bool>,
    /// The `msi_mask` event that set this state.
    pub ev: EvId,
}

#[derive(Clone, Debug, Default)]
pub struct DeviceIrq {
    /// (index, vector) → trigger.
    pub vectors: BTreeMap<(u32, u32), Vector>,
    /// vector → last message programmed (a cleared vector has none).
    pub messages: BTreeMap<u32, Message>,
    /// vector → the zeroed write that cleared it, while it stays cleared.
    pub cleared: BTreeMap<u32, EvId>,
    /// (index, vector) → the kernel's last mask/unmask of it. Index 0: the
    /// probe could not tell MSI from MSI-X.
    pub masks: BTreeMap<(u32, u32), MaskState>,
    /// Processes that configured its interrupts (VFIO_DEVICE_SET_IRQS): the
    /// VMM owning the device, which ties it to that process's container.
    pub owners: BTreeSet<u32>,
}

impl DeviceIrq {
    /// Applies an `msi_write`: a real message programs the vector, a zeroed
    /// one clears it.
    pub fn program(&mut self, vector: u32, address: u64, data: u32, ev: EvId) {
        if Message::is_cleared(address, data) {
            self.messages.remove(&vector);
            self.cleared.insert(vector, ev);
        } else {
            self.cleared.remove(&vector);
            self.messages.insert(vector, Message { address, data, ev });
        }
    }
}

impl DeviceIrq {
    /// Applies an `msi_mask`.
    pub fn mask(
        &mut self,
        index: u32,
        vector: u32,
        masked: bool,
        can_mask: Option<bool>,
        ev: EvId,
    ) {
        self.masks.insert(
            (index, vector),
            MaskState {
                masked,
                can_mask,
                ev,
            },
        );
    }

    /// The mask state of a vector as VFIO numbers it.
    pub fn mask_of(&self, index: u32, vector: u32) -> Option<&MaskState> {
        self.masks
            .get(&(index, vector))
            .or_else(|| self.masks.get(&(0, vector)))
    }
}

#[derive(Clone, Debug, Default)]
pub struct MsiState {
    /// Host reserved regions per node (deduplicated), with the event that
    /// first reported each.
    pub resv: BTreeMap<NodeId, Vec<(ResvRegion, EvId)>>,
    pub devices: BTreeMap<DevKey, DeviceIrq>,
}

impl MsiState {
    /// Records a region; returns false when it was already known.
    pub fn add_resv(&mut self, node: NodeId, r: &ResvRegion, ev: EvId) -> bool {
        let v = self.resv.entry(node).or_default();
        if v.iter().any(|(x, _)| x == r) {
            return false;
        }
        v.push((r.clone(), ev));
        true
    }

    /// Reserved regions that apply to a device: its own, else (device not
    /// named by any region) every region of the node.
    pub fn regions_for(&self, node: NodeId, dev: Device) -> Vec<&(ResvRegion, EvId)> {
        let all = self.resv.get(&node).map(Vec::as_slice).unwrap_or(&[]);
        let own: Vec<_> = all.iter().filter(|(r, _)| r.device == dev).collect();
        if own.is_empty() {
            all.iter().collect()
        } else {
            own
        }
    }

    /// Every reserved region of a node.
    pub fn node_regions(&self, node: NodeId) -> &[(ResvRegion, EvId)] {
        self.resv.get(&node).map(Vec::as_slice).unwrap_or(&[])
    }

    /// MSI-type regions (hardware or software doorbell windows) of a node
    /// that overlap `[s, l]`.
    pub fn msi_overlap(&self, node: NodeId, s: u64, l: u64) -> Option<&(ResvRegion, EvId)> {
        self.node_regions(node).iter().find(|(r, _)| {
            matches!(r.rtype, ResvType::Msi | ResvType::SwMsi)
                && super::interval::overlaps(s, l, r.start, r.end)
        })
    }

    pub fn dev(&mut self, k: DevKey) -> &mut DeviceIrq {
        self.devices.entry(k).or_default()
    }

    /// Vectors of `index` with a trigger bound: (vector, binding event).
    pub fn bound(&self, k: DevKey, index: u32) -> Vec<(u32, EvId)> {
        self.devices.get(&k).map_or_else(Vec::new, |d| {
            d.vectors
                .iter()
                .filter(|((i, _), _)| *i == index)
                .map(|((_, v), b)| (*v, b.ev))
                .collect()
        })
    }

    /// Applies a successful SET_IRQS with ACTION_TRIGGER.
    pub fn set_irqs(&mut self, k: DevKey, s: &VfioSetIrqs, ev: EvId) {
        if s.flags & ACTION_TRIGGER == 0 {
            return;
        }
        let d = self.dev(k);
        if s.flags & DATA_NONE != 0 && s.count == 0 {
            d.vectors.retain(|(i, _), _| *i != s.index);
            return;
        }
        if s.flags & DATA_EVENTFD == 0 {
            return;
        }
        for i in 0..s.count {
            let Some(fd) = s.eventfds.get(i as usize).copied() else {
                break;
            };
            let v = s.start.saturating_add(i);
            if fd < 0 {
                d.vectors.remove(&(s.index, v));
            } else {
                d.vectors.insert((s.index, v), Vector { eventfd: fd, ev });
            }
        }
    }
}
