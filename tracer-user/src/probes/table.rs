//! The attach table: every probe vfio-trace knows, where it attaches, what it
//! yields and whether the tool is useless without it. A probe that cannot
//! attach is reported with its reason and skipped, unless it is required or
//! the user asked for it by name.

use tracer_common::{
    kprobe::mod_offset,
    probe::{self, ProbeId},
};

/// Where a program attaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attach {
    Tracepoint {
        category: &'static str,
        name: &'static str,
    },
    /// A kernel function's entry.
    Kprobe { function: &'static str },
    /// A kernel function's return.
    Kretprobe { function: &'static str },
}

impl Attach {
    /// `tracepoint:syscalls:sys_enter_ioctl` style, as shown to users.
    pub fn describe(&self) -> String {
        match self {
            Attach::Tracepoint { category, name } => format!("tracepoint:{category}:{name}"),
            Attach::Kprobe { function } => format!("kprobe:{function}"),
            Attach::Kretprobe { function } => format!("kretprobe:{function}"),
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct ProbeSpec {
    /// User-facing name (`--probe NAME`).
    pub name: &'static str,
    /// Program symbol in the eBPF object.
    pub program: &'static str,
    pub id: ProbeId,
    pub attach: Attach,
    /// Event kinds it contributes to.
    pub yields: &'static [&'static str],
    /// Without it the tool cannot do its job: failing to attach is fatal.
    pub required: bool,
    /// Attach only once this module is loaded (its functions, or the
    /// functions it makes meaningful, exist from then on).
    pub module: Option<&'static str>,
    /// An fexit program on the same kernel function that does this probe's
    /// work (for an entry/return pair: both halves, sharing one program).
    /// Tried first; when the kernel cannot load or attach it (no BPF
    /// trampolines, no BTF for the function) the kprobe is used. Its name
    /// shares its first 15 bytes (what the kernel keeps) with `program`.
    pub fexit: Option<&'static str>,
    /// What it means when the kernel has no such function: the kernel
    /// feature or version it belongs to (shown with a missing symbol).
    pub absent_means: Option<&'static str>,
}

impl ProbeSpec {
    const fn with_fexit(mut self, program: &'static str) -> Self {
        self.fexit = Some(program);
        self
    }

    const fn absent_means(mut self, why: &'static str) -> Self {
        self.absent_means = Some(why);
        self
    }

    /// The kernel function a kprobe or fexit attaches to.
    pub fn function(&self) -> Option<&'static str> {
        match self.attach {
            Attach::Kprobe { function } | Attach::Kretprobe { function } => Some(function),
            Attach::Tracepoint { .. } => None,
        }
    }
}

/// Offsets inside a module's structs, resolved from its BTF when it loads
/// (index in the `MOD_OFFSETS` map, struct, field path).
pub struct ModuleOffsets {
    pub module: &'static str,
    pub fields: &'static [(u32, &'static str, &'static [&'static str])],
}

pub const MODULE_OFFSETS: &[ModuleOffsets] = &[
    ModuleOffsets {
        module: "vfio_pci_core",
        fields: &[(
            mod_offset::VFIO_PCI_CORE_PDEV,
            "vfio_pci_core_device",
            &["pdev"],
        )],
    },
    ModuleOffsets {
        module: "virtio_iommu",
        fields: &[
            (mod_offset::VIOMMU_DEV_REQUESTS, "viommu_dev", &["requests"]),
            (mod_offset::VIOMMU_REQ_LEN, "viommu_request", &["len"]),
            (mod_offset::VIOMMU_REQ_BUF, "viommu_request", &["buf"]),
            (mod_offset::VIOMMU_REQ_LIST, "viommu_request", &["list"]),
        ],
    },
];

/// The read-only global the loader sets to the traced process (0: all).
pub const TARGET_TGID: &str = "TARGET_TGID";

/// Maps the loader opens by name: the events ring, the per-probe hit
/// counters, the drop counters and the module offsets.
pub const MAP_EVENTS: &str = "EVENTS";
pub const MAP_HITS: &str = "HITS";
pub const MAP_DROPS: &str = "DROPS";
pub const MAP_MOD_OFFSETS: &str = "MOD_OFFSETS";

/// vmlinux offsets injected as read-only globals: (global, struct, path).
pub const VMLINUX_OFFSETS: &[(&str, &str, &[&str])] = &[
    ("OFF_DEVICE_NAME", "device", &["kobj", "name"]),
    ("OFF_PCI_DEV_DEV", "pci_dev", &["dev"]),
    ("OFF_MSI_DESC_DEV", "msi_desc", &["dev"]),
    ("OFF_MSI_DESC_INDEX", "msi_desc", &["msi_index"]),
    ("OFF_MSI_DESC_IRQ", "msi_desc", &["irq"]),
    ("OFF_IRQ_DATA_IRQ", "irq_data", &["irq"]),
    ("OFF_IRQ_DATA_COMMON", "irq_data", &["common"]),
    ("OFF_IRQ_COMMON_MSI_DESC", "irq_common_data", &["msi_desc"]),
    ("OFF_MSI_MSG_ADDR_LO", "msi_msg", &["address_lo"]),
    ("OFF_MSI_MSG_ADDR_HI", "msi_msg", &["address_hi"]),
    ("OFF_MSI_MSG_DATA", "msi_msg", &["data"]),
    ("OFF_IOMMU_GROUP_ID", "iommu_group", &["id"]),
    ("OFF_RESV_LIST", "iommu_resv_region", &["list"]),
    ("OFF_RESV_START", "iommu_resv_region", &["start"]),
    ("OFF_RESV_LENGTH", "iommu_resv_region", &["length"]),
    ("OFF_RESV_PROT", "iommu_resv_region", &["prot"]),
    ("OFF_RESV_TYPE", "iommu_resv_region", &["type"]),
];

/// vmlinux bit offsets (one-bit flags) injected as read-only globals:
/// (global, struct, path).
pub const VMLINUX_BITS: &[(&str, &str, &[&str])] = &[
    (
        "BIT_MSI_DESC_IS_MSIX",
        "msi_desc",
        &["pci", "msi_attrib", "is_msix"],
    ),
    (
        "BIT_MSI_DESC_CAN_MASK",
        "msi_desc",
        &["pci", "msi_attrib", "can_mask"],
    ),
    (
        "BIT_MSI_DESC_IS_VIRTUAL",
        "msi_desc",
        &["pci", "msi_attrib", "is_virtual"],
    ),
];

/// `enum iommu_resv_type` values injected as globals: (global, enumerator).
pub const VMLINUX_ENUMS: &[(&str, &str)] = &[
    ("KRESV_DIRECT", "IOMMU_RESV_DIRECT"),
    ("KRESV_DIRECT_RELAXABLE", "IOMMU_RESV_DIRECT_RELAXABLE"),
    ("KRESV_RESERVED", "IOMMU_RESV_RESERVED"),
    ("KRESV_MSI", "IOMMU_RESV_MSI"),
    ("KRESV_SW_MSI", "IOMMU_RESV_SW_MSI"),
];

const IOCTL_KINDS: &[&str] = &[
    "vfio_map_dma",
    "vfio_unmap_dma",
    "vfio_iommu_info",
    "vfio_set_iommu",
    "vfio_set_irqs",
    "kvm_memslot",
    "ioas_map",
    "ioas_unmap",
    "iommufd_destroy",
    "ioas_alloc",
    "ioas_allow_iovas",
    "ioas_copy",
    "ioas_iova_ranges",
    "iommufd_option",
    "hwpt_alloc",
    "iommufd_hw_info",
    "hwpt_set_dirty_tracking",
    "hwpt_get_dirty_bitmap",
    "hwpt_invalidate",
    "fault_queue_alloc",
    "ioas_map_file",
    "viommu_alloc",
    "vdevice_alloc",
    "veventq_alloc",
    "vfio_bind_iommufd",
    "vfio_attach_pt",
    "vfio_detach_pt",
];

pub const PROBES: &[ProbeSpec] = &[
    ProbeSpec {
        name: "ioctl_enter",
        program: "sys_enter_ioctl",
        id: probe::SYS_ENTER_IOCTL,
        attach: Attach::Tracepoint {
            category: "syscalls",
            name: "sys_enter_ioctl",
        },
        yields: IOCTL_KINDS,
        required: true,
        module: None,
        fexit: None,
        absent_means: None,
    },
    ProbeSpec {
        name: "ioctl_exit",
        program: "sys_exit_ioctl",
        id: probe::SYS_EXIT_IOCTL,
        attach: Attach::Tracepoint {
            category: "syscalls",
            name: "sys_exit_ioctl",
        },
        yields: IOCTL_KINDS,
        required: true,
        module: None,
        fexit: None,
        absent_means: None,
    },
];

/// A kernel-function probe; optional unless named by the user.
const fn kfn(
    name: &'static str,
    program: &'static str,
    id: ProbeId,
    attach: Attach,
    yields: &'static [&'static str],
    module: Option<&'static str>,
) -> ProbeSpec {
    ProbeSpec {
        name,
        program,
        id,
        attach,
        yields,
        required: false,
        module,
        fexit: None,
        absent_means: None,
    }
}

/// Why a kernel lacks a per-device PCI/MSI domain chip callback.
const NO_DEVICE_MSI_DOMAIN: &str = "no per-device PCI/MSI irq domains on this kernel/irqchip \
     (before 6.2, or a global PCI/MSI domain): pci_msi_mask/pci_msi_unmask serve instead";
/// Why a kernel lacks the startup/shutdown chip callbacks.
const NO_MSI_STARTUP_SHUTDOWN: &str = "the PCI/MSI device domain has no irq_startup/irq_shutdown \
     callbacks on this kernel (6.x): request_irq/free_irq unmask and mask through \
     irq_unmask/irq_mask, which msi(x)_mask/msi(x)_unmask see";
/// Why a kernel lacks iommu_dma_prepare_msi.
const NO_IRQ_MSI_IOMMU: &str = "CONFIG_IRQ_MSI_IOMMU is off: this architecture's MSIs are not \
     translated by the IOMMU (x86: the APIC range is bypassed or interrupt-remapped), so no \
     software-MSI doorbell is ever mapped (7.x builds iommu_dma_prepare_msi only then; 6.x \
     had it in dma-iommu.c, never called on x86)";

use Attach::{Kprobe, Kretprobe};

pub const KERNEL_PROBES: &[ProbeSpec] = &[
    kfn(
        "iommu_map",
        "iommu_map_entry",
        probe::IOMMU_MAP_ENTRY,
        Kprobe {
            function: "iommu_map",
        },
        &["iommu_map"],
        None,
    )
    .with_fexit("iommu_map_return_fexit"),
    kfn(
        "iommu_map_ret",
        "iommu_map_return",
        probe::IOMMU_MAP_RETURN,
        Kretprobe {
            function: "iommu_map",
        },
        &["iommu_map", "msi_doorbell_map"],
        None,
    )
    .with_fexit("iommu_map_return_fexit"),
    kfn(
        "iommu_unmap",
        "iommu_unmap_entry",
        probe::IOMMU_UNMAP_ENTRY,
        Kprobe {
            function: "__iommu_unmap",
        },
        &["iommu_unmap"],
        None,
    )
    .with_fexit("iommu_unmap_return_fexit"),
    kfn(
        "iommu_unmap_ret",
        "iommu_unmap_return",
        probe::IOMMU_UNMAP_RETURN,
        Kretprobe {
            function: "__iommu_unmap",
        },
        &["iommu_unmap"],
        None,
    )
    .with_fexit("iommu_unmap_return_fexit"),
    kfn(
        "resv_regions",
        "resv_regions_entry",
        probe::RESV_REGIONS_ENTRY,
        Kprobe {
            function: "iommu_get_group_resv_regions",
        },
        &["resv_region"],
        None,
    ),
    kfn(
        "resv_regions_ret",
        "resv_regions_return",
        probe::RESV_REGIONS_RETURN,
        Kretprobe {
            function: "iommu_get_group_resv_regions",
        },
        &["resv_region"],
        None,
    ),
    kfn(
        "msi_write",
        "pci_write_msi_msg",
        probe::PCI_WRITE_MSI,
        Kprobe {
            function: "__pci_write_msi_msg",
        },
        &["msi_write"],
        None,
    ),
    // Per-vector MSI/MSI-X mask state: the irq chip callbacks. Per-device
    // MSI domains (x86 and the arm64 GICv3 ITS on 6.12) use the static
    // pci_irq_*; global PCI/MSI domains (older kernels, other irqchips) the
    // exported pci_msi_*_irq.
    kfn(
        "msi_mask",
        "pci_irq_mask_msi",
        probe::PCI_IRQ_MASK_MSI,
        Kprobe {
            function: "pci_irq_mask_msi",
        },
        &["msi_mask"],
        None,
    )
    .absent_means(NO_DEVICE_MSI_DOMAIN),
    kfn(
        "msi_unmask",
        "pci_irq_unmask_msi",
        probe::PCI_IRQ_UNMASK_MSI,
        Kprobe {
            function: "pci_irq_unmask_msi",
        },
        &["msi_mask"],
        None,
    )
    .absent_means(NO_DEVICE_MSI_DOMAIN),
    kfn(
        "msix_mask",
        "pci_irq_mask_msix",
        probe::PCI_IRQ_MASK_MSIX,
        Kprobe {
            function: "pci_irq_mask_msix",
        },
        &["msi_mask"],
        None,
    )
    .absent_means(NO_DEVICE_MSI_DOMAIN),
    kfn(
        "msix_unmask",
        "pci_irq_unmask_msix",
        probe::PCI_IRQ_UNMASK_MSIX,
        Kprobe {
            function: "pci_irq_unmask_msix",
        },
        &["msi_mask"],
        None,
    )
    .absent_means(NO_DEVICE_MSI_DOMAIN),
    kfn(
        "pci_msi_mask",
        "pci_msi_mask_irq",
        probe::PCI_MSI_MASK_IRQ,
        Kprobe {
            function: "pci_msi_mask_irq",
        },
        &["msi_mask"],
        None,
    ),
    kfn(
        "pci_msi_unmask",
        "pci_msi_unmask_irq",
        probe::PCI_MSI_UNMASK_IRQ,
        Kprobe {
            function: "pci_msi_unmask_irq",
        },
        &["msi_mask"],
        None,
    ),
    kfn(
        "msi_shutdown",
        "pci_irq_shutdown_msi",
        probe::PCI_IRQ_SHUTDOWN_MSI,
        Kprobe {
            function: "pci_irq_shutdown_msi",
        },
        &["msi_mask"],
        None,
    )
    .absent_means(NO_MSI_STARTUP_SHUTDOWN),
    kfn(
        "msi_startup",
        "pci_irq_startup_msi",
        probe::PCI_IRQ_STARTUP_MSI,
        Kprobe {
            function: "pci_irq_startup_msi",
        },
        &["msi_mask"],
        None,
    )
    .absent_means(NO_MSI_STARTUP_SHUTDOWN),
    kfn(
        "msix_shutdown",
        "pci_irq_shutdown_msix",
        probe::PCI_IRQ_SHUTDOWN_MSIX,
        Kprobe {
            function: "pci_irq_shutdown_msix",
        },
        &["msi_mask"],
        None,
    )
    .absent_means(NO_MSI_STARTUP_SHUTDOWN),
    kfn(
        "msix_startup",
        "pci_irq_startup_msix",
        probe::PCI_IRQ_STARTUP_MSIX,
        Kprobe {
            function: "pci_irq_startup_msix",
        },
        &["msi_mask"],
        None,
    )
    .absent_means(NO_MSI_STARTUP_SHUTDOWN),
    kfn(
        "msi_cookie",
        "iommu_get_msi_cookie",
        probe::MSI_COOKIE,
        Kprobe {
            function: "iommu_get_msi_cookie",
        },
        &["msi_cookie"],
        None,
    ),
    kfn(
        "msi_prepare",
        "iommu_dma_prepare_msi_entry",
        probe::PREPARE_MSI_ENTRY,
        Kprobe {
            function: "iommu_dma_prepare_msi",
        },
        &["msi_doorbell_map"],
        None,
    )
    .absent_means(NO_IRQ_MSI_IOMMU),
    kfn(
        "msi_prepare_ret",
        "iommu_dma_prepare_msi_return",
        probe::PREPARE_MSI_RETURN,
        Kretprobe {
            function: "iommu_dma_prepare_msi",
        },
        &["msi_doorbell_map"],
        None,
    )
    .absent_means(NO_IRQ_MSI_IOMMU),
    kfn(
        "vfio_pin",
        "vfio_pin_entry",
        probe::VFIO_PIN_ENTRY,
        Kprobe {
            function: "vfio_pin_pages_remote",
        },
        &["vfio_pin"],
        Some("vfio_iommu_type1"),
    ),
    kfn(
        "vfio_pin_ret",
        "vfio_pin_return",
        probe::VFIO_PIN_RETURN,
        Kretprobe {
            function: "vfio_pin_pages_remote",
        },
        &["vfio_pin"],
        Some("vfio_iommu_type1"),
    ),
    kfn(
        "vfio_set_irqs",
        "vfio_set_irqs_entry",
        probe::VFIO_SET_IRQS_ENTRY,
        Kprobe {
            function: "vfio_pci_set_irqs_ioctl",
        },
        &["vfio_set_irqs"],
        Some("vfio_pci_core"),
    ),
    kfn(
        "msi_vector",
        "msi_vector_entry",
        probe::MSI_VECTOR_ENTRY,
        Kprobe {
            function: "vfio_msi_set_vector_signal",
        },
        &["msi_vector"],
        Some("vfio_pci_core"),
    ),
    kfn(
        "msi_vector_ret",
        "msi_vector_return",
        probe::MSI_VECTOR_RETURN,
        Kretprobe {
            function: "vfio_msi_set_vector_signal",
        },
        &["msi_vector"],
        Some("vfio_pci_core"),
    ),
    kfn(
        "viommu_req",
        "viommu_add_req_entry",
        probe::VIOMMU_ADD_REQ_ENTRY,
        Kprobe {
            function: "__viommu_add_req",
        },
        &["viommu_req"],
        Some("virtio_iommu"),
    ),
    kfn(
        "viommu_req_ret",
        "viommu_add_req_return",
        probe::VIOMMU_ADD_REQ_RETURN,
        Kretprobe {
            function: "__viommu_add_req",
        },
        &["viommu_req"],
        Some("virtio_iommu"),
    ),
    // In vmlinux, but only meaningful (and only worth its cost on every
    // virtio completion) once virtio_iommu is loaded.
    kfn(
        "viommu_done",
        "virtqueue_get_buf_return",
        probe::VIRTQUEUE_GET_BUF_RETURN,
        Kretprobe {
            function: "virtqueue_get_buf",
        },
        &["viommu_req"],
        Some("virtio_iommu"),
    )
    .with_fexit("virtqueue_get_buf_exit"),
    kfn(
        "viommu_done_ctx",
        "virtqueue_get_buf_ctx_return",
        probe::VIRTQUEUE_GET_BUF_CTX_RETURN,
        Kretprobe {
            function: "virtqueue_get_buf_ctx",
        },
        &["viommu_req"],
        Some("virtio_iommu"),
    )
    .with_fexit("virtqueue_get_buf_ctx_exit"),
];

/// Every probe: the syscall tracepoints, then the kernel-function probes.
pub fn all() -> impl Iterator<Item = &'static ProbeSpec> {
    PROBES.iter().chain(KERNEL_PROBES)
}

pub fn by_name(name: &str) -> Option<&'static ProbeSpec> {
    all().find(|p| p.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_programs_and_ids_are_unique() {
        let all: Vec<_> = all().collect();
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a.name, b.name);
                assert_ne!(a.program, b.program);
                assert_ne!(a.id, b.id);
            }
            assert!(u32::from(a.id) < probe::MAX_PROBES);
            if let Some(fx) = a.fexit {
                assert!(a.function().is_some(), "{}: fexit needs a function", a.name);
                // `probes --leftovers` recognises programs by the 15 bytes
                // of name the kernel keeps.
                assert!(
                    all.iter()
                        .any(|b| b.program.len() >= 15 && fx[..15] == b.program[..15]),
                    "{fx}: no table program shares its first 15 bytes"
                );
                assert!(all.iter().all(|b| b.program != fx));
            }
        }
    }

    /// The rules' needs name probes of this table (a seam of strings held
    /// by a test).
    #[test]
    fn every_probe_a_rule_needs_is_in_the_table() {
        for r in tracer_core::engine::RuleId::ALL {
            for n in r.needs() {
                for p in n.any_of.iter().flat_map(|a| a.iter()) {
                    assert!(by_name(p).is_some(), "{r} needs unknown probe {p}");
                }
            }
        }
    }
}
