//! Identities of the objects the engine keeps state for.

use serde::Serialize;

use crate::event::{Device, NodeId};

/// Index of an event in the order it was given to [`super::Engine::apply`]
/// (0-based). `check` resolves it against its event slice; a live view keeps
/// its own history or turns on [`super::EngineConfig::retain_events`].
pub type EvId = u64;

/// A guest virtio-iommu domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct GuestDomainKey {
    pub node: NodeId,
    pub domain: u32,
}

/// A VFIO container (`fd_handle(pid, fd)`), or an iommufd IOAS (`ioas` ≠ 0,
/// `container` is then the iommufd's handle).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ContainerKey {
    pub node: NodeId,
    pub container: u64,
    pub ioas: u32,
}

impl ContainerKey {
    /// A VFIO container (no IOAS).
    pub fn vfio(node: NodeId, container: u64) -> Self {
        ContainerKey {
            node,
            container,
            ioas: 0,
        }
    }

    /// Process owning the fd.
    pub fn pid(&self) -> u32 {
        (self.container >> 32) as u32
    }
}

/// A host kernel `struct iommu_domain`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct IommuDomainKey {
    pub node: NodeId,
    pub domain: u64,
}

/// A KVM VM (`fd_handle(pid, fd)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct VmKey {
    pub node: NodeId,
    pub vm: u64,
}

impl VmKey {
    pub fn pid(&self) -> u32 {
        (self.vm >> 32) as u32
    }
}

/// A device on a node. `pid` is set only for [`Device::Fd`] names, which are
/// per process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct DevKey {
    pub node: NodeId,
    pub pid: u32,
    pub device: Device,
}

impl DevKey {
    pub fn new(node: NodeId, pid: u32, device: Device) -> Self {
        let pid = if matches!(device, Device::Fd(_)) {
            pid
        } else {
            0
        };
        DevKey { node, pid, device }
    }
}

/// PCI requester id (virtio-iommu endpoint id on PCI) of a device.
pub fn rid(d: Device) -> Option<u32> {
    match d {
        Device::Pci { bus, dev, func, .. } => {
            Some((u32::from(bus) << 8) | (u32::from(dev) << 3) | u32::from(func))
        }
        _ => None,
    }
}

/// Page of an address for a 4 KiB granule.
pub fn page(a: u64) -> u64 {
    a & !0xfff
}
