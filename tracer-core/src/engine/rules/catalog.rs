//! The rule catalog: stable ids, names, severities and explanations.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::needs::{Need, When};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Error,
    Warning,
    Info,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        })
    }
}

/// A rule. `id()` (`VT001`…) and `name()` are stable user-facing names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RuleId {
    MapInMsiWindow,
    ResvMismatch,
    MsiUnroutable,
    SwMsiUnbacked,
    SwMsiCollision,
    ChainBreak,
    StaleMapping,
    MapFailed,
    WidthGranule,
    IrqOrdering,
}

impl RuleId {
    pub const ALL: [RuleId; 10] = [
        RuleId::MapInMsiWindow,
        RuleId::ResvMismatch,
        RuleId::MsiUnroutable,
        RuleId::SwMsiUnbacked,
        RuleId::SwMsiCollision,
        RuleId::ChainBreak,
        RuleId::StaleMapping,
        RuleId::MapFailed,
        RuleId::WidthGranule,
        RuleId::IrqOrdering,
    ];

    pub fn id(self) -> &'static str {
        match self {
            RuleId::MapInMsiWindow => "VT001",
            RuleId::ResvMismatch => "VT002",
            RuleId::MsiUnroutable => "VT003",
            RuleId::SwMsiUnbacked => "VT004",
            RuleId::SwMsiCollision => "VT005",
            RuleId::ChainBreak => "VT006",
            RuleId::StaleMapping => "VT007",
            RuleId::MapFailed => "VT008",
            RuleId::WidthGranule => "VT009",
            RuleId::IrqOrdering => "VT010",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            RuleId::MapInMsiWindow => "dma-map-in-msi-window",
            RuleId::ResvMismatch => "resv-region-mismatch",
            RuleId::MsiUnroutable => "msi-address-unroutable",
            RuleId::SwMsiUnbacked => "sw-msi-doorbell-unbacked",
            RuleId::SwMsiCollision => "sw-msi-window-collision",
            RuleId::ChainBreak => "chain-break",
            RuleId::StaleMapping => "stale-mapping",
            RuleId::MapFailed => "map-failed",
            RuleId::WidthGranule => "iova-width-granule-mismatch",
            RuleId::IrqOrdering => "irq-ordering",
        }
    }

    pub fn severity(self) -> Severity {
        match self {
            RuleId::StaleMapping | RuleId::MapFailed | RuleId::IrqOrdering => Severity::Warning,
            _ => Severity::Error,
        }
    }

    /// Accepts `VT001`, `vt001` or the name.
    pub fn parse(s: &str) -> Option<RuleId> {
        RuleId::ALL
            .into_iter()
            .find(|r| r.id().eq_ignore_ascii_case(s) || r.name() == s)
    }

    pub fn explanation(self) -> &'static str {
        match self {
            RuleId::MapInMsiWindow => {
                "A DMA mapping (guest virtio-iommu MAP, host VFIO MAP_DMA or IOAS_MAP) overlaps a \
                 reserved MSI window of the device's IOMMU domain. A hardware window \
                 (IOMMU_RESV_MSI, virtio-iommu RESV_MEM subtype MSI) is never translated, so the \
                 mapping is dead and DMA to it hits the interrupt controller; a software window \
                 (IOMMU_RESV_SW_MSI) belongs to the MSI cookie, so the mapping collides with the \
                 doorbell page the kernel maps there and either the map fails or MSIs land in \
                 memory. Doorbell maps themselves (MMIO flag inside the driver's own SW_MSI \
                 window) are expected and not reported."
            }
            RuleId::ResvMismatch => {
                "The guest and the host disagree on reserved regions of a passed-through device. \
                 The VMM must report a host hardware MSI window (IOMMU_RESV_MSI) as \
                 VIRTIO_IOMMU_RESV_MEM_T_MSI (subtype 1) and a host software-MSI window \
                 (IOMMU_RESV_SW_MSI) as RESV_MEM_T_RESERVED (subtype 0), and an x86 guest must be \
                 told 0xfee00000-0xfeefffff is MSI. Otherwise the guest may allocate IOVAs there \
                 (the host MAP_DMA then fails with EINVAL) or translate its MSI writes (they fault)."
            }
            RuleId::MsiUnroutable => {
                "The device was programmed (__pci_write_msi_msg) with an MSI address that is \
                 neither inside a bypass MSI window of its domain nor mapped in its domain to a \
                 doorbell (an MMIO mapping). The write will be translated like DMA: it faults, or \
                 lands in whatever buffer is mapped there, and the interrupt never arrives."
            }
            RuleId::SwMsiUnbacked => {
                "Software MSI: a doorbell IOVA inside a software-MSI window is not backed by a \
                 mapping to the physical doorbell, or the doorbell mapping recorded by \
                 iommu_dma_prepare_msi differs from the IOMMU's mapping. The device writes its MSI \
                 to an IOVA that does not reach the interrupt translation service, so no \
                 interrupt is delivered (the nested case of the seed thread: the host cannot know \
                 the guest's doorbell IOVA)."
            }
            RuleId::SwMsiCollision => {
                "The host software-MSI window (MSI_IOVA_BASE, 1 MiB) overlaps guest RAM (a KVM \
                 memslot of a VMM using VFIO) or an existing DMA mapping. With identity IOVA = GPA \
                 (boot bypass) the VMM cannot map that RAM (EINVAL), and attaching a group whose \
                 window overlaps an existing mapping is refused."
            }
            RuleId::ChainBreak => {
                "The IOVA→GPA→HVA→HPA chain breaks between layers: a guest MAP that the VMM never \
                 propagated as a host MAP_DMA, a host MAP_DMA whose HVA is not what the KVM \
                 memslot gives for the guest's GPA, or an iommu_map whose physical address is not \
                 the page VFIO pinned for that HVA. The device then DMAs to the wrong memory or \
                 faults."
            }
            RuleId::StaleMapping => {
                "A mapping outlived its UNMAP: the UNMAP removed less than requested while \
                 mappings still overlap the range (VFIO returns 0 bytes when the range does not \
                 match the original map; virtio-iommu leaves partially covered mappings), or the \
                 VMM never propagated a guest UNMAP to the host. Later maps fail with EEXIST or \
                 the device keeps DMA access to memory the guest reused."
            }
            RuleId::MapFailed => {
                "A MAP failed; the engine explains why from state: EEXIST with the existing \
                 overlapping mapping, EINVAL with the reserved window, the invalid IOVA range or \
                 granule, or the missing VFIO_SET_IOMMU behind it; a failed virtio-iommu MAP with \
                 the overlapping mapping or reserved region."
            }
            RuleId::WidthGranule => {
                "The guest maps IOVAs the host IOMMU cannot accept: beyond the container's valid \
                 IOVA ranges (address width, e.g. guest told 64 bits, host has 39/48), or not \
                 aligned to the host's smallest IOMMU page size (4K vs 64K granule). The VMM's \
                 MAP_DMA fails and the device loses DMA. One finding per guest domain: the \
                 VMM's refused (or never made) MAP_DMAs for those IOVAs are its evidence, not \
                 separate VT008 / VT006 findings."
            }
            RuleId::IrqOrdering => {
                "Interrupt setup out of order: an MSI/MSI-X vector enabled with no eventfd bound, \
                 a vector signalled (SET_IRQS DATA_NONE/DATA_BOOL trigger) with no trigger \
                 eventfd, or a vector still bound to an eventfd after the kernel cleared its \
                 MSI message (the all-zero message written when a vector is deactivated or \
                 freed). Interrupts raised then are lost. A cleared message is a teardown, \
                 never judged as a doorbell address. Also a vector disabled without masking: \
                 its trigger eventfd went away (SET_IRQS de-assign, MSI/MSI-X disable, device \
                 close) while the kernel's last change of its mask bit was an unmask. \
                 free_irq() shuts the interrupt down through the irq chip's irq_mask \
                 (pci_irq_mask_msix and friends) before the vector is deactivated, so the \
                 device cannot raise it while its message is rewritten (the PCI spec leaves \
                 an MSI-X entry changed while unmasked undefined) or after it is cleared (an \
                 all-zero message makes the device write to address 0, i.e. DMA to IOVA 0 \
                 behind an IOMMU); without the mask the device can still fire the vector and \
                 the write goes nowhere or corrupts memory. Vectors whose device has no mask \
                 bit (MSI without per-vector masking, virtual MSI-X entries: can_mask false) \
                 are not judged: masking them is a no-op in the kernel too, and clearing MSI \
                 Enable is their only off switch."
            }
        }
    }
}

const RESV: Need = Need {
    purpose: "the IOMMU's reserved regions",
    any_of: &[&["resv_regions", "resv_regions_ret"]],
    when: When::Always,
};
const HOST_MAP: Need = Need {
    purpose: "the host's IOMMU mappings (iommu_map)",
    any_of: &[&["iommu_map", "iommu_map_ret"]],
    when: When::Always,
};
const HOST_UNMAP: Need = Need {
    purpose: "the host's IOMMU unmappings (__iommu_unmap)",
    any_of: &[&["iommu_unmap", "iommu_unmap_ret"]],
    when: When::Always,
};
const GUEST_REQ: Need = Need {
    purpose: "the guest's virtio-iommu requests",
    any_of: &[&["viommu_req", "viommu_req_ret"]],
    when: When::Always,
};
const MSI_WRITE: Need = Need {
    purpose: "the MSI messages written to devices",
    any_of: &[&["msi_write"]],
    when: When::Always,
};
const DOORBELL: Need = Need {
    purpose: "the software-MSI doorbell mappings (iommu_dma_prepare_msi)",
    any_of: &[&["msi_prepare", "msi_prepare_ret"]],
    when: When::SwMsiWindow,
};
const COOKIE: Need = Need {
    purpose: "the software-MSI window's base (iommu_get_msi_cookie)",
    any_of: &[&["msi_cookie"]],
    when: When::SwMsiWindow,
};
const PINS: Need = Need {
    purpose: "the pages VFIO pinned (vfio_pin_pages_remote)",
    any_of: &[&["vfio_pin", "vfio_pin_ret"]],
    when: When::Always,
};
const SET_IRQS: Need = Need {
    purpose: "VFIO's interrupt setup (vfio_pci_set_irqs_ioctl, vfio_msi_set_vector_signal)",
    any_of: &[&["vfio_set_irqs", "msi_vector", "msi_vector_ret"]],
    when: When::Always,
};
/// The mask bit when a vector is torn down (free_irq) and set up: 7.x's
/// device domains shut down/start up through their own callbacks, 6.2+
/// masked through the device domain's irq_mask, older kernels (and global
/// PCI/MSI domains) through pci_msi_mask_irq.
const MSIX_MASK: Need = Need {
    purpose: "the MSI-X mask bit at vector teardown (vectors disabled without masking)",
    any_of: &[
        &["msix_shutdown", "msix_startup"],
        &["msix_mask", "msix_unmask"],
        &["pci_msi_mask", "pci_msi_unmask"],
    ],
    when: When::Always,
};
const MSI_MASK: Need = Need {
    purpose: "the MSI mask bit at vector teardown (vectors disabled without masking)",
    any_of: &[
        &["msi_shutdown", "msi_startup"],
        &["msi_mask", "msi_unmask"],
        &["pci_msi_mask", "pci_msi_unmask"],
    ],
    when: When::Always,
};

impl RuleId {
    /// The kernel hooks the rule judges with (see [`super::needs`]): the
    /// ioctl tracepoints every rule reads are required probes, so only
    /// kernel-function probes are listed.
    pub fn needs(self) -> &'static [Need] {
        match self {
            RuleId::MapInMsiWindow => &[RESV, HOST_MAP, GUEST_REQ],
            RuleId::ResvMismatch => &[RESV, GUEST_REQ],
            RuleId::MsiUnroutable => &[MSI_WRITE, RESV, HOST_MAP],
            RuleId::SwMsiUnbacked => &[MSI_WRITE, HOST_MAP, DOORBELL],
            RuleId::SwMsiCollision => &[RESV, COOKIE],
            RuleId::ChainBreak => &[PINS, HOST_MAP],
            RuleId::StaleMapping => &[HOST_UNMAP, GUEST_REQ],
            RuleId::MapFailed => &[RESV, GUEST_REQ],
            RuleId::WidthGranule => &[],
            RuleId::IrqOrdering => &[SET_IRQS, MSI_WRITE, MSIX_MASK, MSI_MASK],
        }
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

impl Serialize for RuleId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.id())
    }
}
