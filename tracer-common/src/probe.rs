//! Probe ids: index of each BPF program in the per-CPU `HITS` counters and the
//! value of `EventHeader::probe`. The user side's attach table maps them to
//! names and attach points.

pub type ProbeId = u16;

pub const SYS_ENTER_IOCTL: ProbeId = 0;
pub const SYS_EXIT_IOCTL: ProbeId = 1;

/// Number of slots in the `HITS` array (room to grow without a layout change).
pub const MAX_PROBES: u32 = 64;

// Host: VFIO, IOMMU core, PCI MSI, dma-iommu.
pub const IOMMU_MAP_ENTRY: ProbeId = 2;
pub const IOMMU_MAP_RETURN: ProbeId = 3;
pub const IOMMU_UNMAP_ENTRY: ProbeId = 4;
pub const IOMMU_UNMAP_RETURN: ProbeId = 5;
pub const VFIO_PIN_ENTRY: ProbeId = 6;
pub const VFIO_PIN_RETURN: ProbeId = 7;
pub const VFIO_SET_IRQS_ENTRY: ProbeId = 8;
pub const MSI_VECTOR_ENTRY: ProbeId = 9;
pub const MSI_VECTOR_RETURN: ProbeId = 10;
pub const PCI_WRITE_MSI: ProbeId = 11;
pub const MSI_COOKIE: ProbeId = 12;
pub const PREPARE_MSI_ENTRY: ProbeId = 13;
pub const PREPARE_MSI_RETURN: ProbeId = 14;
pub const RESV_REGIONS_ENTRY: ProbeId = 15;
pub const RESV_REGIONS_RETURN: ProbeId = 16;
// Guest: virtio-iommu driver.
pub const VIOMMU_ADD_REQ_ENTRY: ProbeId = 17;
pub const VIOMMU_ADD_REQ_RETURN: ProbeId = 18;
pub const VIRTQUEUE_GET_BUF_RETURN: ProbeId = 19;
pub const VIRTQUEUE_GET_BUF_CTX_RETURN: ProbeId = 20;
// Host: PCI MSI/MSI-X per-vector mask and unmask (the irq chip callbacks).
pub const PCI_IRQ_MASK_MSI: ProbeId = 21;
pub const PCI_IRQ_UNMASK_MSI: ProbeId = 22;
pub const PCI_IRQ_MASK_MSIX: ProbeId = 23;
pub const PCI_IRQ_UNMASK_MSIX: ProbeId = 24;
pub const PCI_MSI_MASK_IRQ: ProbeId = 25;
pub const PCI_MSI_UNMASK_IRQ: ProbeId = 26;
// Host: the same mask bit on the per-device domains' irq_startup /
// irq_shutdown callbacks (7.x: request_irq/free_irq no longer go through
// irq_unmask/irq_mask there).
pub const PCI_IRQ_SHUTDOWN_MSI: ProbeId = 27;
pub const PCI_IRQ_STARTUP_MSI: ProbeId = 28;
pub const PCI_IRQ_SHUTDOWN_MSIX: ProbeId = 29;
pub const PCI_IRQ_STARTUP_MSIX: ProbeId = 30;
