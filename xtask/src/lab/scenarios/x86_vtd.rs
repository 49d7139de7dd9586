//! `x86-vtd`: q35 + QEMU's intel-iommu with interrupt remapping and
//! caching mode (the intel-iommu driver, DMAR, remapped MSIs), edu through
//! VFIO. Interrupt remapping makes MSIs isolated: no
//! `allow_unsafe_interrupts`. The MSI doorbell is hardware (0xfee00000):
//! never mapped, never translated.

use anyhow::Result;

use super::{
    hostiommu::{self, args},
    single::{self, SingleLevel},
    Scenario,
};
use crate::lab::{qemu, Arch, Ctx};

pub const SCENARIO: Scenario = Scenario {
    name: "x86-vtd",
    about: "q35 + intel-iommu (VT-d, interrupt remapping, caching mode), edu through VFIO; oracle: QEMU's vtd_* invalidations and translations; ~1-3 min",
    run,
};

const MODULES: &[(&str, &str)] = &[
    // Built in from 6.12 on; a module on 6.1 (the 9p share rides on it).
    ("virtio_pci", ""),
    ("vfio", ""),
    ("vfio_iommu_type1", ""),
    ("vfio-pci", ""),
    ("9pnet_virtio", ""),
    ("9p", ""),
];

fn machine(_: &Ctx) -> Result<Vec<String>> {
    let mut a = args(&["-cpu", "max", "-M", "q35", "-vga", "none", "-append"]);
    a.push(qemu::X86_HW_IOMMU_CMDLINE.to_string() + " intel_iommu=on");
    a.extend(qemu::intel_iommu());
    a.extend(args(&["-device", "edu"]));
    Ok(a)
}

fn run(ctx: &Ctx) -> Result<()> {
    single::run(
        ctx,
        &SingleLevel {
            arch: Arch::X86_64,
            modules: MODULES,
            body: hostiommu::EDU_BODY,
            timeout_s: 240,
            sw_msi: None,
            fault_module: true,
            required_faults: &[
                "fault_kernel_iommu_map_msi_window",
                "fault_kernel_msi_unroutable",
            ],
            machine,
            iommu: &hostiommu::VTD,
        },
    )
}
