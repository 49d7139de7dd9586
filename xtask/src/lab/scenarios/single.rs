//! One VM level: boot, bind, exercise, power off, then judge. Shared by
//! the x86 and arm64 scenarios.

use std::{path::Path, process::Command};

use anyhow::{anyhow, Result};
use serde_json::json;

use super::{prepare, share_args, Boot};
use crate::{
    lab::{console, init, judge, kfault, oracle, qemu, rules, stage_binaries, Arch, Ctx},
    probecheck::{self, MsiModel, ProbeReport},
    step::step,
};

pub struct SingleLevel {
    pub arch: Arch,
    pub modules: &'static [(&'static str, &'static str)],
    pub body: &'static str,
    pub timeout_s: u64,
    pub sw_msi: Option<(u64, u64)>,
    /// Build and load the fault module (`kfault.c`) in the fault pass.
    pub fault_module: bool,
    /// Fault steps the fault pass must run (see `rules::required_steps`).
    pub required_faults: &'static [&'static str],
    /// Machine-specific QEMU arguments (machine, CPU, devices, kernel
    /// command line); the lab adds accel, memory, console, kernel,
    /// initrd, the 9p share and the trace log.
    pub machine: fn(&Ctx) -> Result<Vec<String>>,
    /// The host's IOMMU: QEMU trace events and the oracle over them.
    pub iommu: &'static super::hostiommu::HostIommu,
}

pub fn run(ctx: &Ctx, s: &SingleLevel) -> Result<()> {
    let (outcome, boot, machine, accel) = boot_vm(ctx, s, &ctx.out, s.body, ctx.name)?;
    let faults_dir = ctx.out.join("faults");
    let fault_outcome = if ctx.fault_pass() {
        let body = s.body.replace("run_exerciser ", "run_faults ");
        let label = format!("{}-faults", ctx.name);
        if s.fault_module {
            std::fs::create_dir_all(&faults_dir)?;
            step("the lab's fault module (kernel bugs on demand)", || {
                kfault::build(s.arch, &faults_dir)
            })?;
        }
        eprintln!("==> fault pass: each fault step under vfio-trace, in a second boot");
        Some(boot_vm(ctx, s, &faults_dir, &body, &label)?.0)
    } else {
        None
    };
    let report = (s.iommu.oracle)(
        &ctx.out,
        oracle::Options {
            strict: true,
            sw_msi: s.sw_msi,
        },
    );
    let mut checks = Vec::new();
    if ctx.tracer().is_some() && !ctx.is_loop() {
        let msi = if s.sw_msi.is_some() {
            MsiModel::Software
        } else {
            MsiModel::Hardware
        };
        checks.extend(probe_check(probecheck::check_iommu(
            &ctx.out,
            msi,
            s.iommu.virtio,
        )));
        match rules::checker(ctx.tracer().as_deref()) {
            Ok(c) => {
                checks.push(rules::clean(
                    &c,
                    &[ctx.out.join("trace.vft")],
                    &ctx.out.join("check.json"),
                ));
                if let Some(fo) = &fault_outcome {
                    checks.push(("fault pass: the VM".into(), boot_line(&faults_dir, fo)));
                    checks.extend(rules::faults(&c, &faults_dir));
                    checks.push(rules::required_steps(&faults_dir, s.required_faults));
                    if s.fault_module {
                        checks.push(kfault::loaded(&faults_dir));
                    }
                }
            }
            Err(e) => checks.push(("vfio-trace check".into(), Err(e))),
        }
    }
    judge::judge(
        ctx,
        judge::Run {
            outcome: &outcome,
            consoles: vec![("guest", "console.log")],
            dmesgs: vec![("guest", "dmesg.txt")],
            journals: vec![("guest", "exerciser.jsonl")],
            oracles: vec![(s.iommu.label, report)],
            checks,
            info: json!({
                "arch": s.arch.deb(), "kernel": boot.kernel.release,
                "kernel_package_version": boot.kernel.version,
                "qemu": qemu::version(s.arch.qemu()), "accel": accel,
                "machine": machine, "tracer": ctx.tracer(),
            }),
        },
    )
}

/// probe-check's lines, named as such.
pub fn probe_check(r: Result<ProbeReport>) -> Vec<rules::Line> {
    match r {
        Ok(r) => r
            .checks
            .into_iter()
            .map(|(n, r)| (format!("probe-check {n}"), r))
            .collect(),
        Err(e) => vec![("probe-check".into(), Err(e))],
    }
}

/// A second boot's own health: its result marker and console problems.
pub fn boot_line(dir: &Path, o: &qemu::Outcome) -> Result<String> {
    let text = std::fs::read_to_string(dir.join("console.log")).unwrap_or_default();
    let problems: Vec<String> = console::problems(&text)
        .iter()
        .map(|p| format!("{} at console.log:{}", p.kind, p.line))
        .collect();
    if o.timed_out {
        return Err(anyhow!("timed out after {:.0}s", o.wall_s));
    }
    if !problems.is_empty() {
        return Err(anyhow!(problems.join("; ")));
    }
    match console::result(&text) {
        Some((true, _)) => Ok(format!("PASS in {:.1}s", o.wall_s)),
        Some((false, why)) => Err(anyhow!("FAIL {why}")),
        None => Err(anyhow!(
            "no LAB-RESULT marker in {}/console.log",
            dir.display()
        )),
    }
}

/// One boot with results in `dir` (the 9p share): binaries staged, the
/// initramfs built with `body`, QEMU run to the end.
fn boot_vm(
    ctx: &Ctx,
    s: &SingleLevel,
    dir: &Path,
    body: &str,
    label: &str,
) -> Result<(qemu::Outcome, Boot, Vec<String>, &'static str)> {
    std::fs::create_dir_all(dir)?;
    stage_binaries(ctx, s.arch, dir)?;
    let boot = prepare(
        ctx,
        s.arch,
        init::Results::NineP,
        vec![],
        "guest",
        "guest",
        s.modules,
        body,
        label,
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
    q.args(share_args(dir));
    q.args(["-msg", "timestamp=on"]);
    for t in s.iommu.trace {
        q.args(["-trace", t]);
    }
    q.arg("-D").arg(dir.join("qemu-trace.log"));
    let outcome = step("boot, exercise, power off", || {
        qemu::run(q, &dir.join("console.log"), ctx.timeout(s.timeout_s), "")
    })?;
    Ok((outcome, boot, machine, accel))
}
