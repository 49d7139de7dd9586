//! `arm64-swmsi`: virt + GICv3 ITS, virtio-iommu on virtio-mmio (patched
//! DTB) so MSIs go through the software-MSI window at 0x8000000.
//!
//! `-device virtio-iommu-pci` on `virt` reports the ITS page as a bypass
//! MSI region (no SW MSI). With virtio-iommu on virtio-mmio the DTB needs
//! the IOMMU wiring QEMU only writes for the PCI variant: a phandle and
//! `#iommu-cells` on the transport QEMU plugs it into, and `iommu-map` on
//! the PCIe host bridge. The guest then falls back to its own SW_MSI
//! region at 0x8000000 (1 MiB).

use std::{fs, process::Command};

use anyhow::{bail, Context, Result};

use super::{
    single::{self, SingleLevel},
    Scenario,
};
use crate::{
    lab::{Arch, Ctx},
    step::{self, cmd, step},
};

pub const SCENARIO: Scenario = Scenario {
    name: "arm64-swmsi",
    about: "arm64 virt + GICv3 ITS, virtio-iommu on virtio-mmio, MSIs via the SW-MSI window 0x8000000; ~15-30 s",
    run,
};

const MODULES: &[(&str, &str)] = &[
    ("virtio_mmio", ""),
    ("virtio-iommu", ""),
    ("vfio", ""),
    ("vfio_iommu_type1", ""),
    ("vfio-pci", ""),
    ("9pnet_virtio", ""),
    ("9p", ""),
];

/// `virtualization=on`: EL2, so the guest kernel has KVM (the VT005 fault
/// step runs a VM's memslot next to VFIO).
const MACHINE: &str = "virt,gic-version=3,its=on,virtualization=on";
/// The virtio-mmio transport QEMU plugs the first virtio device into.
const IOMMU_NODE: &str = "virtio_mmio@a003e00 {";
const PCIE_NODE: &str = "pcie@10000000 {";
const SW_MSI: (u64, u64) = (0x800_0000, 0x80f_ffff);

/// Adds the virtio-iommu wiring to a `dtc -O dts` dump of the machine.
pub fn patch_dts(dts: &str) -> Result<String> {
    let used: Vec<u32> = dts
        .match_indices("phandle = <")
        .filter_map(|(i, m)| {
            let rest = &dts[i + m.len()..];
            let v = rest.split('>').next()?;
            u32::from_str_radix(v.trim().trim_start_matches("0x"), 16).ok()
        })
        .collect();
    let ph = used.iter().max().copied().unwrap_or(0x8000).max(0x8000) + 0x100;
    if !dts.contains(IOMMU_NODE) || !dts.contains(PCIE_NODE) {
        bail!("the DTB lacks `{IOMMU_NODE}` or `{PCIE_NODE}`");
    }
    Ok(dts
        .replacen(
            IOMMU_NODE,
            &format!("{IOMMU_NODE}\n\t\tphandle = <{ph:#x}>;\n\t\t#iommu-cells = <0x01>;"),
            1,
        )
        .replacen(
            PCIE_NODE,
            &format!("{PCIE_NODE}\n\t\tiommu-map = <0x00 {ph:#x} 0x00 0x10000>;"),
            1,
        ))
}

fn devices() -> Vec<String> {
    [
        "-global",
        "virtio-mmio.force-legacy=false",
        "-device",
        "virtio-iommu-device,primary-bus=pcie.0",
        "-device",
        "edu",
        "-device",
        "e1000e",
    ]
    .map(String::from)
    .to_vec()
}

fn machine(ctx: &Ctx) -> Result<Vec<String>> {
    let dtb = ctx.out.join("virt-viommu.dtb");
    step("DTB with virtio-iommu on virtio-mmio", || {
        let raw = ctx.out.join("virt.dtb");
        let mut q = Command::new(Arch::Arm64.qemu());
        q.args(["-M", &format!("{MACHINE},dumpdtb={}", raw.display())]);
        q.args([
            "-cpu", "max", "-m", "512M", "-smp", "2", "-display", "none", "-nic", "none",
        ]);
        q.args(devices());
        step::output(&mut q)?;
        let dts = step::output(&mut cmd(
            "dtc",
            [
                "-q".as_ref(),
                "-I".as_ref(),
                "dtb".as_ref(),
                "-O".as_ref(),
                "dts".as_ref(),
                raw.as_os_str(),
            ],
        ))?;
        let patched = patch_dts(&dts)?;
        let src = ctx.out.join("virt-viommu.dts");
        fs::write(&src, patched)?;
        step::output(&mut cmd(
            "dtc",
            [
                "-q".as_ref(),
                "-I".as_ref(),
                "dts".as_ref(),
                "-O".as_ref(),
                "dtb".as_ref(),
                "-o".as_ref(),
                dtb.as_os_str(),
                src.as_os_str(),
            ],
        ))
        .context("compiling the patched DTS")?;
        Ok(())
    })?;
    let mut a: Vec<String> = [
        "-M",
        MACHINE,
        "-cpu",
        "max",
        "-append",
        "console=ttyAMA0 panic=-1 loglevel=5",
        "-dtb",
    ]
    .map(String::from)
    .to_vec();
    a.push(dtb.display().to_string());
    a.extend(devices());
    Ok(a)
}

fn run(ctx: &Ctx) -> Result<()> {
    single::run(
        ctx,
        &SingleLevel {
            arch: Arch::Arm64,
            modules: MODULES,
            body: super::x86::BODY,
            timeout_s: 120,
            sw_msi: Some(SW_MSI),
            fault_module: true,
            required_faults: &[
                "fault_kernel_iommu_map_msi_window",
                "fault_kernel_msi_unroutable",
                "fault_kernel_vector_freed_unmasked",
                "fault_kernel_msi_doorbell_unbacked",
                "fault_vm_ram_in_sw_msi_window",
            ],
            machine,
            iommu: &super::hostiommu::VIRTIO,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dts_gets_iommu_wiring() {
        let dts = "/ {\n\tintc { phandle = <0x8004>; };\n\tvirtio_mmio@a003e00 {\n\t\tcompatible = \"virtio,mmio\";\n\t};\n\tpcie@10000000 {\n\t\tmsi-map = <0x00 0x8004 0x00 0x10000>;\n\t};\n};\n";
        let p = patch_dts(dts).unwrap();
        assert!(p.contains(
            "virtio_mmio@a003e00 {\n\t\tphandle = <0x8104>;\n\t\t#iommu-cells = <0x01>;"
        ));
        assert!(p.contains("pcie@10000000 {\n\t\tiommu-map = <0x00 0x8104 0x00 0x10000>;"));
        assert!(patch_dts("/ { };").is_err());
    }
}
