//! `x86`: q35 + virtio-iommu-pci + edu + e1000e, the exerciser in the guest.

use anyhow::Result;

use super::{
    single::{self, SingleLevel},
    Scenario,
};
use crate::lab::{Arch, Ctx};

pub const SCENARIO: Scenario = Scenario {
    name: "x86",
    about:
        "q35 + virtio-iommu-pci, edu and e1000e through VFIO (HW MSI window 0xfee00000); ~10-15 s",
    run,
};

/// Module names; dependencies come from modules.dep. x86 + virtio-iommu
/// has no interrupt remapping, hence allow_unsafe_interrupts.
pub const MODULES: &[(&str, &str)] = &[
    ("virtio-iommu", ""),
    ("vfio", ""),
    ("vfio_iommu_type1", "allow_unsafe_interrupts=1"),
    ("vfio-pci", ""),
    ("9pnet_virtio", ""),
    ("9p", ""),
];

/// Finds edu and e1000e, binds both to vfio-pci and runs the exerciser.
pub const BODY: &str = r#"EDU=$(find_pci 0x1234 0x11e8) || fail "no edu device (1234:11e8)"
NIC=$(find_pci 0x8086 0x10d3) || fail "no e1000e device (8086:10d3)"
bind_vfio $EDU
bind_vfio $NIC
run_exerciser --edu $EDU --e1000e $NIC
finish PASS
"#;

fn machine(_: &Ctx) -> Result<Vec<String>> {
    Ok([
        "-cpu",
        "max",
        "-M",
        "q35",
        "-vga",
        "none",
        "-append",
        "console=ttyS0 panic=-1 loglevel=5",
        "-device",
        "virtio-iommu-pci",
        "-device",
        "edu",
        "-device",
        "e1000e",
    ]
    .map(String::from)
    .to_vec())
}

fn run(ctx: &Ctx) -> Result<()> {
    single::run(
        ctx,
        &SingleLevel {
            arch: Arch::X86_64,
            modules: MODULES,
            body: BODY,
            timeout_s: 60,
            sw_msi: None,
            fault_module: true,
            required_faults: &[
                "fault_kernel_iommu_map_msi_window",
                "fault_kernel_msi_unroutable",
                "fault_kernel_vector_freed_unmasked",
            ],
            machine,
            iommu: &super::hostiommu::VIRTIO,
        },
    )
}
