//! `x86`: q35 + virtio-iommu-pci + edu + e1000e, the exerciser in the guest.

use std::process::Command;

use anyhow::Result;
use serde_json::json;

use super::{oracle_for, prepare, share_args, Scenario};
use crate::{
    lab::{judge, oracle, qemu, stage_binaries, Arch, Ctx},
    step::step,
};

pub const SCENARIO: Scenario = Scenario {
    name: "x86",
    about: "q35 + virtio-iommu-pci, edu and e1000e through VFIO (HW MSI window 0xfee00000); ~10 s",
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

const BODY: &str = r#"EDU=$(find_pci 0x1234 0x11e8) || fail "no edu device (1234:11e8)"
NIC=$(find_pci 0x8086 0x10d3) || fail "no e1000e device (8086:10d3)"
bind_vfio $EDU
bind_vfio $NIC
run_exerciser --edu $EDU --e1000e $NIC
finish PASS
"#;

fn run(ctx: &Ctx) -> Result<()> {
    let arch = Arch::X86_64;
    stage_binaries(ctx, arch, &ctx.out)?;
    let boot = prepare(ctx, arch, "guest", MODULES, BODY, "x86")?;
    let mut q = Command::new(arch.qemu());
    q.args([
        "-accel",
        ctx.accel()?,
        "-cpu",
        "max",
        "-M",
        "q35",
        "-m",
        "512M",
        "-smp",
        "2",
    ]);
    q.args([
        "-display",
        "none",
        "-vga",
        "none",
        "-nic",
        "none",
        "-serial",
        "stdio",
        "-monitor",
        "none",
        "-no-reboot",
    ]);
    q.arg("-kernel")
        .arg(&boot.kernel.image)
        .arg("-initrd")
        .arg(&boot.initrd);
    q.args(["-append", "console=ttyS0 panic=-1 loglevel=5"]);
    q.args([
        "-device",
        "virtio-iommu-pci",
        "-device",
        "edu",
        "-device",
        "e1000e",
    ]);
    q.args(share_args(&ctx.out));
    q.args(["-msg", "timestamp=on", "-trace", "virtio_iommu_*", "-D"])
        .arg(ctx.out.join("qemu-trace.log"));
    let outcome = step("boot, exercise, power off", || {
        qemu::run(q, &ctx.out.join("console.log"), ctx.timeout(60), "")
    })?;
    let report = oracle_for(
        &ctx.out,
        "exerciser.jsonl",
        "qemu-trace.log",
        oracle::Options {
            strict: true,
            sw_msi: None,
        },
    );
    judge::judge(
        ctx,
        judge::Run {
            outcome: &outcome,
            consoles: vec![("guest", "console.log")],
            dmesgs: vec![("guest", "dmesg.txt")],
            journals: vec![("guest", "exerciser.jsonl")],
            oracles: vec![("qemu virtio-iommu", report)],
            info: json!({
                "arch": arch.deb(), "kernel": boot.kernel.release, "kernel_package_version": boot.kernel.version,
                "qemu": qemu::version(arch.qemu()), "accel": ctx.accel()?,
                "tracer": ctx.tracer(),
            }),
        },
    )
}
