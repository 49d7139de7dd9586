//! Records of the kernel-function probes (kprobes/kretprobes), host and guest.
//! Kernel-internal struct fields are read at offsets resolved from the
//! running kernel's BTF at load time (see [`offsets`]); nothing here assumes
//! one kernel's layout.

use crate::EventHeader;

/// Room for a device name (`dev_name()`, e.g. "0000:00:02.0").
pub const DEV_NAME_LEN: usize = 32;

/// `iommu_map()` returned: one IOVA → physical range in a domain.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct IommuMapRecord {
    pub hdr: EventHeader,
    pub domain: u64,
    pub iova: u64,
    pub paddr: u64,
    pub size: u64,
    pub prot: u32,
    pub ret: i32,
}

/// `__iommu_unmap()` returned.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct IommuUnmapRecord {
    pub hdr: EventHeader,
    pub domain: u64,
    pub iova: u64,
    pub size: u64,
    pub unmapped: u64,
}

/// `vfio_pin_pages_remote()` returned: `pinned` pages from `vaddr`, the first
/// at page frame `pfn`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct PinRecord {
    pub hdr: EventHeader,
    pub vaddr: u64,
    pub npage: u64,
    pub pfn: u64,
    pub pinned: i64,
}

/// `vfio_msi_set_vector_signal()` returned.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct MsiVectorRecord {
    pub hdr: EventHeader,
    pub dev: [u8; DEV_NAME_LEN],
    pub vector: u32,
    pub fd: i32,
    pub msix: u32,
    pub ret: i32,
}

/// `__pci_write_msi_msg()`: the message written to a device.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct MsiWriteRecord {
    pub hdr: EventHeader,
    pub dev: [u8; DEV_NAME_LEN],
    pub index: u32,
    pub address_lo: u32,
    pub address_hi: u32,
    pub data: u32,
}

/// An MSI/MSI-X vector masked or unmasked by the kernel's irq chip:
/// `pci_irq_mask_msi`/`pci_irq_unmask_msi`/`pci_irq_mask_msix`/
/// `pci_irq_unmask_msix` (per-device MSI domains) or the exported
/// `pci_msi_mask_irq`/`pci_msi_unmask_irq` (global PCI/MSI domains:
/// older kernels, other irqchips), at entry. Which one is the header's probe id.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct MsiMaskRecord {
    pub hdr: EventHeader,
    pub dev: [u8; DEV_NAME_LEN],
    /// `msi_desc.msi_index` + (`irq_data.irq` − `msi_desc.irq`): the MSI-X
    /// table entry, or the vector of a multi-vector MSI.
    pub vector: u32,
    /// 1 mask, 0 unmask.
    pub masked: u8,
    /// `msi_desc.pci.msi_attrib.is_msix`.
    pub is_msix: u8,
    /// `msi_attrib.can_mask`: the hardware has a mask bit for this vector
    /// (MSI: the capability's per-vector mask; MSI-X: a real table entry).
    /// 0 means the call changes nothing on the device.
    pub can_mask: u8,
    /// `msi_attrib.is_virtual`: an MSI-X entry beyond the table.
    pub is_virtual: u8,
    /// Bit 0: `can_mask`/`is_msix`/`is_virtual` were read (their BTF bit
    /// offsets resolved); otherwise they are 0 and unknown.
    pub attrs_known: u32,
}

/// `iommu_get_msi_cookie()`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct MsiCookieRecord {
    pub hdr: EventHeader,
    pub domain: u64,
    pub base: u64,
}

/// An `iommu_map()` made inside `iommu_dma_prepare_msi()`: the software-MSI
/// doorbell page of a device mapped in its domain.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct DoorbellMapRecord {
    pub hdr: EventHeader,
    pub dev: [u8; DEV_NAME_LEN],
    pub domain: u64,
    pub iova: u64,
    pub paddr: u64,
    /// The doorbell address the MSI targets (`msi_addr`).
    pub msi_addr: u64,
}

/// Most reserved regions reported per group.
pub const MAX_RESV: usize = 16;

#[repr(C)]
#[derive(Clone, Copy)]
pub struct ResvEntry {
    pub start: u64,
    pub length: u64,
    /// One of [`resv_type`].
    pub rtype: u32,
    pub prot: u32,
}

/// `iommu_get_group_resv_regions()` returned: a group's reserved regions as
/// the kernel computed them.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ResvRecord {
    pub hdr: EventHeader,
    pub group: u32,
    pub count: u32,
    pub entries: [ResvEntry; MAX_RESV],
}

/// Stable codes for `enum iommu_resv_type` (the kernel's values changed over
/// time; the probe translates them with values resolved from BTF).
pub mod resv_type {
    pub const DIRECT: u32 = 0;
    pub const DIRECT_RELAXABLE: u32 = 1;
    pub const RESERVED: u32 = 2;
    pub const MSI: u32 = 3;
    pub const SW_MSI: u32 = 4;
    pub const UNKNOWN: u32 = 0xff;
}

/// Bytes of a virtio-iommu request head/body kept (MAP is the largest: 40).
pub const VIOMMU_REQ_MAX: usize = 64;
/// Bytes of PROBE properties kept (QEMU's probe_size is 512).
pub const VIOMMU_PROPS_MAX: usize = 512;

/// A guest virtio-iommu request, from `__viommu_add_req()`, joined with its
/// completion (`virtqueue_get_buf_ctx()` returning it).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ViommuReqRecord {
    /// `ts_ns` is the completion time (or the add time when not queued).
    pub hdr: EventHeader,
    pub add_ns: u64,
    /// Whole request length, tail included.
    pub len: u32,
    /// `__viommu_add_req()`'s return: non-zero means never queued.
    pub add_ret: i32,
    /// Tail status written by the device (VIRTIO_IOMMU_S_*).
    pub status: u32,
    /// Bytes of `props` captured (PROBE only).
    pub props_len: u32,
    pub req: [u8; VIOMMU_REQ_MAX],
    pub props: [u8; VIOMMU_PROPS_MAX],
}

/// Indexes of the module-struct offsets in the `MOD_OFFSETS` array map. Module
/// BTF exists only once the module is loaded, after the object's read-only
/// globals are frozen, so these live in a map the loader fills when the
/// module appears (and before attaching that module's probes).
pub mod mod_offset {
    /// `vfio_pci_core_device.pdev` (vfio_pci_core).
    pub const VFIO_PCI_CORE_PDEV: u32 = 0;
    /// `viommu_dev.requests` (virtio_iommu).
    pub const VIOMMU_DEV_REQUESTS: u32 = 1;
    /// `viommu_request.len`.
    pub const VIOMMU_REQ_LEN: u32 = 2;
    /// `viommu_request.buf`.
    pub const VIOMMU_REQ_BUF: u32 = 3;
    /// `viommu_request.list`.
    pub const VIOMMU_REQ_LIST: u32 = 4;
    pub const COUNT: u32 = 8;
}
