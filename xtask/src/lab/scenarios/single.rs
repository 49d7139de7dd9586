//! One VM level: boot, bind, exercise, power off, then judge. Shared by
//! the x86 and arm64 scenarios.

use std::process::Command;

use anyhow::Result;
use serde_json::json;

use super::{oracle_for, prepare, share_args};
use crate::{
    lab::{init, judge, oracle, qemu, stage_binaries, Arch, Ctx},
    step::step,
};

pub struct SingleLevel {
    pub arch: Arch,
    pub modules: &'static [(&'static str, &'static str)],
    pub body: &'static str,
    pub timeout_s: u64,
    pub sw_msi: Option<(u64, u64)>,
    /// Machine-specific QEMU arguments (machine, CPU, devices, kernel
    /// command line); the lab adds accel, memory, console, kernel,
    /// initrd, the 9p share and the trace log.
    pub machine: fn(&Ctx) -> Result<Vec<String>>,
}

pub fn run(ctx: &Ctx, s: &SingleLevel) -> Result<()> {
    stage_binaries(ctx, s.arch, &ctx.out)?;
    let boot = prepare(
        ctx,
        s.arch,
        init::Results::NineP,
        vec![],
        "guest",
        s.modules,
        s.body,
        ctx.name,
    )?;
    let machine = (s.machine)(ctx)?;
    let accel = ctx.accel_or_kvm("tcg", s.arch, &boot)?;
    let mut q = Command::new(s.arch.qemu());
    q.args(["-accel", accel, "-m", "512M", "-smp", "2"]);
    q.args([
        "-display",
        "none",
        "-nic",
        "none",
        "-serial",
        "stdio",
        "-monitor",
        "none",
        "-no-reboot",
    ]);
    q.args(&machine);
    q.arg("-kernel")
        .arg(&boot.kernel.image)
        .arg("-initrd")
        .arg(&boot.initrd);
    q.args(share_args(&ctx.out));
    q.args(["-msg", "timestamp=on", "-trace", "virtio_iommu_*", "-D"])
        .arg(ctx.out.join("qemu-trace.log"));
    let outcome = step("boot, exercise, power off", || {
        qemu::run(
            q,
            &ctx.out.join("console.log"),
            ctx.timeout(s.timeout_s),
            "",
        )
    })?;
    let report = oracle_for(
        &ctx.out,
        "exerciser.jsonl",
        "qemu-trace.log",
        oracle::Options {
            strict: true,
            sw_msi: s.sw_msi,
        },
        true,
        true,
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
                "arch": s.arch.deb(), "kernel": boot.kernel.release,
                "kernel_package_version": boot.kernel.version,
                "qemu": qemu::version(s.arch.qemu()), "accel": accel,
                "machine": machine, "tracer": ctx.tracer(),
            }),
        },
    )
}
