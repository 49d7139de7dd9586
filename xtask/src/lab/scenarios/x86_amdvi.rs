//! `x86-amdvi`: q35 + QEMU's amd-iommu (AMD-Vi), edu through VFIO.
//!
//! QEMU 10's AMD-Vi with interrupt remapping panics the guest at boot
//! ("timer doesn't work through Interrupt-remapped IO-APIC"), so the guest
//! boots with `noapic` and runs without interrupt remapping: VFIO then
//! needs `vfio_iommu_type1 allow_unsafe_interrupts=1`. `pt=off`: with
//! QEMU's default passthrough edu's DMA is not translated.

use anyhow::Result;

use super::{
    hostiommu::{self, args},
    single::{self, SingleLevel},
    Scenario,
};
use crate::lab::{qemu, Arch, Ctx};

pub const SCENARIO: Scenario = Scenario {
    name: "x86-amdvi",
    about: "q35 + amd-iommu (AMD-Vi, pt=off, guest noapic: no interrupt remapping), edu through VFIO; oracle: QEMU's amdvi_* translations; ~1-3 min",
    run,
};

const MODULES: &[(&str, &str)] = &[
    // Built in from 6.12 on; a module on 6.1 (the 9p share rides on it).
    ("virtio_pci", ""),
    ("vfio", ""),
    ("vfio_iommu_type1", "allow_unsafe_interrupts=1"),
    ("vfio-pci", ""),
    ("9pnet_virtio", ""),
    ("9p", ""),
];

/// edu only. `fault_map_beyond_iova_ranges` cannot be provoked here: the
/// AMD-Vi domain's IOVA ranges reach 2^64-1 (VFIO_IOMMU_GET_INFO:
/// `0x10000000000-0xffffffffffffffff`), nothing lies beyond; VT008 is
/// still fired by the other four map faults.
const BODY: &str = r#"EDU=$(find_pci 0x1234 0x11e8) || fail "no edu device (1234:11e8)"
bind_vfio $EDU
run_exerciser --edu $EDU --skip-faults fault_map_beyond_iova_ranges
finish PASS
"#;

fn machine(_: &Ctx) -> Result<Vec<String>> {
    let mut a = args(&["-cpu", "max", "-M", "q35", "-vga", "none", "-append"]);
    a.push(qemu::X86_HW_IOMMU_CMDLINE.to_string() + " amd_iommu=on noapic");
    a.extend(qemu::amd_iommu());
    a.extend(args(&["-device", "edu"]));
    Ok(a)
}

fn run(ctx: &Ctx) -> Result<()> {
    single::run(
        ctx,
        &SingleLevel {
            arch: Arch::X86_64,
            modules: MODULES,
            body: BODY,
            timeout_s: 240,
            sw_msi: None,
            fault_module: true,
            required_faults: &[
                "fault_kernel_iommu_map_msi_window",
                "fault_kernel_msi_unroutable",
            ],
            machine,
            iommu: &hostiommu::AMDVI,
        },
    )
}
