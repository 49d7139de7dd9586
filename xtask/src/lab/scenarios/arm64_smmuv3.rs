//! `arm64-smmuv3`: virt with QEMU's SMMUv3 and a GICv3 ITS, edu through
//! VFIO, DT boot. The arm-smmu-v3 driver has no MSI bypass: the kernel
//! maps the ITS doorbell into the VFIO domain at its software-MSI window
//! (0x8000000, 1 MiB) and edu's MSI writes are translated by the SMMU.
//! With DT boot edu gets its IOMMU group only when a driver binds.

use anyhow::Result;

use super::{
    hostiommu::{self, args},
    single::{self, SingleLevel},
    Scenario,
};
use crate::lab::{qemu, Arch, Ctx};

pub const SCENARIO: Scenario = Scenario {
    name: "arm64-smmuv3",
    about: "arm64 virt + SMMUv3 + GICv3 ITS, edu through VFIO, MSIs via the SW-MSI doorbell 0x8000000; oracle: QEMU's smmuv3_* events; ~1-3 min",
    run,
};

const MODULES: &[(&str, &str)] = &[
    // Built in from 6.12 on; a module on 6.1 (the 9p share rides on it).
    ("virtio_pci", ""),
    ("arm_smmu_v3", ""),
    ("vfio", ""),
    ("vfio_iommu_type1", ""),
    ("vfio-pci", ""),
    ("9pnet_virtio", ""),
    ("9p", ""),
];

const SW_MSI: (u64, u64) = (0x800_0000, 0x80f_ffff);

fn machine(_: &Ctx) -> Result<Vec<String>> {
    let mut a = args(&["-M", qemu::SMMUV3_MACHINE, "-cpu", "max,pauth-impdef=on"]);
    a.extend(args(&[
        "-append",
        "console=ttyAMA0 panic=-1 loglevel=5",
        "-device",
        "edu",
    ]));
    Ok(a)
}

fn run(ctx: &Ctx) -> Result<()> {
    single::run(
        ctx,
        &SingleLevel {
            arch: Arch::Arm64,
            modules: MODULES,
            body: hostiommu::EDU_BODY,
            timeout_s: 300,
            sw_msi: Some(SW_MSI),
            fault_module: true,
            required_faults: &[
                "fault_kernel_iommu_map_msi_window",
                "fault_kernel_msi_unroutable",
                "fault_kernel_msi_doorbell_unbacked",
                "fault_vm_ram_in_sw_msi_window",
            ],
            machine,
            iommu: &hostiommu::SMMUV3,
        },
    )
}
