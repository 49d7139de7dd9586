//! `nested`: the production chain on one machine. An outer TCG QEMU boots
//! L1, the *host*: its IOMMU is a virtio-iommu, TCG's `-cpu max` gives it
//! AMD SVM so kvm_amd loads and L1 has a working /dev/kvm. L1 binds edu to
//! vfio-pci and runs the machine's own QEMU (the root fs over 9p, under
//! chroot) with `-accel kvm`, passing edu to L2, the *guest*, which has its
//! own virtio-iommu and runs the exerciser.
//!
//! Oracles: the inner QEMU's trace (`virtio_iommu_*`: L2's requests;
//! `vfio_*`: what it forwards to L1's VFIO) and the outer QEMU's trace
//! (L1's virtio-iommu requests for the same IOVAs).

use std::fs;

use anyhow::Result;
use serde_json::json;

use super::{oracle_for, prepare, share_args, Boot, Scenario};
use crate::{
    lab::{
        console,
        init::{Results, RESULTS_PORT},
        judge, kfault, oracle, qemu, rules, stage_binaries, vmm_fault, vsock, Arch, Ctx,
    },
    probecheck,
    step::{self, cmd, step},
};

pub const SCENARIO: Scenario = Scenario {
    name: "nested",
    about: "L1 host (KVM in TCG) passes edu to an L2 guest with its own virtio-iommu; exerciser in L2; ~30-45 s",
    run,
};

/// L1 has one vCPU. Measured with QEMU 10: with `-smp 2` under round-robin
/// TCG (`thread=single`) L2 made no visible progress in 150-240 s (the
/// vCPU running L2 starves); with `-smp 1` single-threaded TCG runs the
/// whole chain in ~35 s, like multi-threaded TCG with `-smp 2`, and avoids
/// MTTCG's cross-vCPU code-patching race (shared/lab.md).
const ACCEL: &str = "tcg";
const L1_SMP: &str = "1";

const L1_MODULES: &[(&str, &str)] = &[
    ("virtio-iommu", ""),
    ("vfio", ""),
    ("vfio_iommu_type1", "allow_unsafe_interrupts=1"),
    ("vfio-pci", ""),
    ("9pnet_virtio", ""),
    ("9p", ""),
    ("kvm", ""),
    ("kvm-amd", ""),
    // vsock:1:PORT inside L1 (the vsock transport check).
    ("vsock_loopback", ""),
];

/// No 9p in L2: every 9p request would cross both virtualization levels
/// (measured: ~50 s to exec the exerciser). Binaries ride in L2's
/// initramfs; results leave as a tar stream on a virtio-serial port.
const L2_MODULES: &[(&str, &str)] = &[
    ("virtio-iommu", ""),
    ("vfio", ""),
    ("vfio_iommu_type1", "allow_unsafe_interrupts=1"),
    ("vfio-pci", ""),
];

const L2_BODY: &str = r#"EDU=$(find_pci 0x1234 0x11e8) || fail "no edu device (1234:11e8) in L2"
bind_vfio $EDU
run_exerciser --edu $EDU
finish PASS
"#;

/// L2 in the fault pass: the clean steps, then (same process, same
/// recording) a map beyond the host's IOVA width, which the buggy VMM let
/// L2 believe it may make.
const FAULT_L2_BODY: &str = r#"EDU=$(find_pci 0x1234 0x11e8) || fail "no edu device (1234:11e8) in L2"
bind_vfio $EDU
run_exerciser --edu $EDU --steps clean,@WIDE_STEP@
finish PASS
"#;

/// L1: bind edu, enter the machine's root fs, run the inner QEMU with L2.
/// Its console is relayed with an `L2| ` prefix and kept in l2/console.log.
const L1_BODY: &str = r#"[ -e /dev/kvm ] || fail "no /dev/kvm in L1 (kvm_amd did not load: no SVM?)"
@L1_SETUP@
EDU=$(find_pci 0x1234 0x11e8) || fail "no edu device (1234:11e8) in L1"
bind_vfio $EDU
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,ro hostroot /host || fail "mounting the host root"
for d in dev proc sys; do mount --bind /$d /host/$d || fail "bind /$d"; done
mount -t tmpfs tmpfs /host/run
mount -t tmpfs tmpfs /host/tmp
mount --bind /lab /host/mnt || fail "bind /lab"
tracer_start
say "starting L2 at $(up)s"
chroot /host @INNER_ENV@ @QEMU@ -accel kvm -cpu max -M q35 -m 256M -smp 1 \
  -display none -vga none -nic none -serial stdio -monitor none -no-reboot \
  -kernel @KERNEL@ -initrd @INITRD@ -append "console=ttyS0 panic=-1 loglevel=5" \
  -device virtio-iommu-pci -device vfio-pci,host=$EDU \
  -device virtio-serial-pci -chardev file,id=results,path=/mnt/l2/results.tar \
  -device virtserialport,chardev=results,name=@PORT@ @INNER_EXTRA@ \
  -msg timestamp=on -trace 'virtio_iommu_*' -trace 'vfio_*' -D /mnt/inner-qemu-trace.log \
  < /dev/null 2>/lab/inner-qemu.stderr | tee /lab/l2/console.log | sed 's/^/L2| /'
say "L2 QEMU exited at $(up)s"
tracer_stop
vsock_check
grep -q '^LAB-RESULT: PASS' /lab/l2/console.log || fail "L2: $(grep LAB-RESULT /lab/l2/console.log || echo no result marker)"
finish PASS
"#;

/// The nested lab's L1 (and inside it L2): binaries staged, both
/// initramfs images built.
/// `l2_body` is what L2 runs; `inner_extra` is added to the inner QEMU's
/// command line, `inner_env` put before it (`env VAR=...`).
pub(super) struct Levels {
    pub l1: Boot,
    pub qemu_bin: &'static str,
}

pub(super) fn levels(
    ctx: &Ctx,
    l2_body: &str,
    inner_extra: &str,
    inner_env: &str,
    l1_setup: &str,
) -> Result<Levels> {
    let arch = Arch::X86_64;
    let l2_dir = ctx.out.join("l2");
    fs::create_dir_all(&l2_dir)?;
    stage_binaries(ctx, arch, &ctx.out)?;
    stage_binaries(ctx, arch, &l2_dir)?;
    let mut l2_bins = vec![("bin/exerciser".to_string(), l2_dir.join("bin/exerciser"))];
    if l2_dir.join("bin/vfio-trace").exists() {
        l2_bins.push(("bin/vfio-trace".to_string(), l2_dir.join("bin/vfio-trace")));
    }
    let label = |l: &str| {
        if ctx.args.live {
            format!("{l}-live")
        } else {
            l.to_string()
        }
    };
    let l2 = prepare(
        ctx,
        arch,
        Results::SerialTar,
        l2_bins,
        "L2 guest",
        "l2",
        L2_MODULES,
        l2_body,
        &label("nested-l2"),
    )?;
    let qemu_bin = "/usr/bin/qemu-system-x86_64";
    let l1_body = vsock::L1_SCRIPT.to_string()
        + &L1_BODY
            .replace("@QEMU@", qemu_bin)
            .replace("@KERNEL@", &l2.kernel.image.display().to_string())
            .replace("@INITRD@", &l2.initrd.display().to_string())
            .replace("@PORT@", RESULTS_PORT)
            .replace("@INNER_EXTRA@", inner_extra)
            .replace("@INNER_ENV@", inner_env)
            .replace("@L1_SETUP@", l1_setup);
    let l1 = prepare(
        ctx,
        arch,
        Results::NineP,
        vec![],
        "L1 host",
        "l1",
        L1_MODULES,
        &l1_body,
        &label("nested-l1"),
    )?;
    Ok(Levels { l1, qemu_bin })
}

/// The outer QEMU running L1: its results share and its virtio-iommu trace
/// log (the oracle for L1's requests).
pub(super) fn outer_qemu(ctx: &Ctx, l1: &Boot) -> Result<std::process::Command> {
    let mut q = qemu::x86_host_vm(
        ctx.accel(ACCEL)?,
        "2G",
        L1_SMP,
        &l1.kernel.image,
        &l1.initrd,
    );
    q.args(share_args(&ctx.out));
    q.args(["-msg", "timestamp=on", "-trace", "virtio_iommu_*", "-D"])
        .arg(ctx.out.join("qemu-trace.log"));
    Ok(q)
}

/// One nested boot with results in `ctx.out` (L2's unpacked into l2/):
/// the outcome, L1's boot files and the inner QEMU's path.
fn boot(
    ctx: &Ctx,
    l2_body: &str,
    inner_extra: &str,
    inner_env: &str,
    l1_setup: &str,
    what: &str,
) -> Result<(qemu::Outcome, Boot, &'static str)> {
    let Levels { l1, qemu_bin } = levels(ctx, l2_body, inner_extra, inner_env, l1_setup)?;
    let q = outer_qemu(ctx, &l1)?;
    let outcome = step(what, || {
        qemu::run(q, &ctx.out.join("console.log"), ctx.timeout(180), "")
    })?;
    let l2_dir = ctx.out.join("l2");
    let tar = l2_dir.join("results.tar");
    if tar.exists() {
        step("unpack L2's results", || {
            step::run(&mut cmd(
                "tar",
                [
                    "-xf".as_ref(),
                    tar.as_os_str(),
                    "-C".as_ref(),
                    l2_dir.as_os_str(),
                ],
            ))
        })?;
    }
    Ok((outcome, l1, qemu_bin))
}

fn run(ctx: &Ctx) -> Result<()> {
    if ctx.args.live {
        return super::nested_live::run(ctx);
    }
    let arch = Arch::X86_64;
    let l2_dir = ctx.out.join("l2");
    let (outcome, l1, qemu_bin) = boot(ctx, L2_BODY, "", "", "", "boot L1, run L2, power off")?;
    // The fault pass: the same run under a buggy inner QEMU (vmm_fault.c).
    let faults = if ctx.fault_pass() {
        let fctx = Ctx {
            args: ctx.args,
            name: ctx.name,
            out: ctx.out.join("faults"),
            started: ctx.started,
        };
        step("the VMM fault shim (gcc)", || vmm_fault::build(&fctx.out))?;
        step(
            "the lab's fault module for L1 (a second hardware MSI window)",
            || kfault::build(arch, &fctx.out),
        )?;
        let (o, ..) = boot(
            &fctx,
            &FAULT_L2_BODY.replace("@WIDE_STEP@", vmm_fault::L2_STEP),
            vmm_fault::INNER_EXTRA,
            vmm_fault::INNER_ENV,
            &vmm_fault::l1_setup(),
            "fault pass: L2's clean steps and a map beyond the host's IOVA width under a buggy inner QEMU",
        )?;
        Some((fctx.out, o))
    } else {
        None
    };
    let inner = oracle_for(
        &ctx.out,
        "l2/exerciser.jsonl",
        "inner-qemu-trace.log",
        oracle::Options {
            strict: true,
            sw_msi: None,
        },
        true,
        false,
    );
    let forwarded = {
        let ops = oracle::exerciser_ops(
            &fs::read_to_string(l2_dir.join("exerciser.jsonl")).unwrap_or_default(),
        );
        let text = fs::read_to_string(ctx.out.join("inner-qemu-trace.log")).unwrap_or_default();
        oracle::compare(
            &ops,
            &oracle::vfio_notifies(&text),
            oracle::Options {
                strict: false,
                sw_msi: None,
            },
        )
    };
    let outer = oracle_for(
        &ctx.out,
        "l2/exerciser.jsonl",
        "qemu-trace.log",
        oracle::Options {
            strict: false,
            sw_msi: None,
        },
        false,
        true,
    );
    let mut checks = Vec::new();
    if ctx.tracer().is_some() && !ctx.is_loop() {
        checks.extend(super::single::probe_check(probecheck::check_nested(
            &ctx.out,
        )));
        checks.push(vsock::check(&ctx.out));
        // Host and guest together: the cross-layer rules pair them.
        match rules::checker(ctx.tracer().as_deref()) {
            Ok(c) => {
                checks.push(rules::clean(
                    &c,
                    &[ctx.out.join("trace.vft"), l2_dir.join("trace.vft")],
                    &ctx.out.join("check.json"),
                ));
                let l1_edu = fs::read_to_string(ctx.out.join("console.log"))
                    .ok()
                    .and_then(|c| bound_bdf(&c));
                checks.push(rules::paired(
                    &ctx.out.join("check.json"),
                    l1_edu.as_deref(),
                ));
                if let Some((dir, o)) = &faults {
                    checks.push((
                        "fault pass: the VMs".into(),
                        super::single::boot_line(dir, o),
                    ));
                    checks.extend(vmm_fault::judge(&c, dir));
                }
            }
            Err(e) => checks.push(("vfio-trace check".into(), Err(e))),
        }
    }
    judge::judge(
        ctx,
        judge::Run {
            outcome: &outcome,
            consoles: vec![("L1", "console.log"), ("L2", "l2/console.log")],
            dmesgs: vec![("L1", "dmesg.txt"), ("L2", "l2/dmesg.txt")],
            journals: vec![("L2", "l2/exerciser.jsonl")],
            oracles: vec![
                ("inner qemu virtio-iommu (L2's requests)", inner),
                ("inner qemu vfio notifies (forwarded to L1 VFIO)", forwarded),
                ("outer qemu virtio-iommu (L1's requests)", outer),
            ],
            checks,
            info: json!({
                "arch": arch.deb(), "kernel": l1.kernel.release,
                "kernel_package_version": l1.kernel.version,
                "qemu": qemu::version(arch.qemu()), "inner_qemu": qemu_bin,
                "accel": ctx.accel(ACCEL)?, "tracer": ctx.tracer(),
            }),
        },
    )
}

/// The device L1 bound to vfio-pci (`LAB: 0000:00:02.0 bound to vfio-pci`
/// on L1's own console lines, not the relayed `L2| ` ones).
fn bound_bdf(console: &str) -> Option<String> {
    console
        .lines()
        .map(console::strip)
        .find_map(|l| l.strip_prefix("LAB: ")?.split_once(" bound to vfio-pci"))
        .map(|(bdf, _)| bdf.to_string())
}
