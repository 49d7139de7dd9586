//! The lab scenarios and the pieces they share.

mod arm64;
mod arm64_smmuv3;
pub mod hostiommu;
mod nested;
mod nested_live;
pub mod single;
mod x86;
mod x86_amdvi;
mod x86_vtd;

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::Result;

use super::{debs, init, initramfs, oracle, Arch, Ctx};
use crate::step::step;

pub struct Scenario {
    pub name: &'static str,
    pub about: &'static str,
    pub run: fn(&Ctx) -> Result<()>,
}

pub use nested_live::AGENT_ARGS as LIVE_AGENT_ARGS;
pub use x86::MODULES as X86_MODULES;

pub const ALL: &[Scenario] = &[
    x86::SCENARIO,
    arm64::SCENARIO,
    nested::SCENARIO,
    x86_vtd::SCENARIO,
    x86_amdvi::SCENARIO,
    arm64_smmuv3::SCENARIO,
];

/// A kernel, a busybox and an initramfs for one VM level.
pub struct Boot {
    pub kernel: debs::Kernel,
    pub busybox: PathBuf,
    pub initrd: PathBuf,
}

/// Downloads/reuses the kernel and busybox and builds the initramfs with
/// `modules` (name, params; dependencies are added) and the /init `body`.
#[expect(clippy::too_many_arguments, reason = "one VM level's whole recipe")]
pub fn prepare(
    ctx: &Ctx,
    arch: Arch,
    results: init::Results,
    extra: Vec<(String, PathBuf)>,
    level: &str,
    node: &str,
    modules: &[(&str, &str)],
    body: &str,
    label: &str,
) -> Result<Boot> {
    let kernel = step(
        &format!("{} kernel, {node} level (cached)", arch.deb()),
        || debs::kernel_at(super::kernels::Level::of(node), arch),
    )?;
    eprintln!("    {} {}", kernel.release, kernel.image.display());
    let busybox = step(&format!("{} busybox (cached)", arch.deb()), || {
        debs::busybox(arch)
    })?;
    let names: Vec<&str> = modules.iter().map(|(m, _)| *m).collect();
    // A module this kernel lacks: the scenario does not apply (evidence
    // from the kernel's config), not a failure.
    super::applies::check(&kernel, &names)?;
    let order = initramfs::module_order(&kernel.modules, &names)?;
    let loads = initramfs::stems(&order)
        .into_iter()
        .map(|m| {
            let norm = m.replace('-', "_");
            let p = modules
                .iter()
                .find(|(w, _)| w.replace('-', "_") == norm)
                .map_or("", |(_, p)| *p);
            (m, p.to_string())
        })
        .collect();
    let exerciser_args = ctx.exerciser_args();
    let script = init::script(&init::InitSpec {
        results,
        level,
        node,
        modules: loads,
        tracer_args: &ctx.args.tracer_args,
        tracer_settle_s: ctx.args.tracer_settle,
        exerciser_args: &exerciser_args,
        body,
    });
    fs::write(ctx.out.join(format!("init-{label}.sh")), &script)?;
    let initrd = step(&format!("initramfs ({label})"), || {
        initramfs::build(
            &initramfs::Spec {
                busybox: &busybox,
                modules_dir: &kernel.modules,
                modules: &names,
                init: &script,
                extra,
            },
            &debs::cache_root().join("initramfs"),
            label,
        )
    })?;
    Ok(Boot {
        kernel,
        busybox,
        initrd,
    })
}

/// Compares a journal with a QEMU trace log (both in the artifact dir).
/// `edu_is_local`: the journal's edu BDF is a device of this QEMU (not of a
/// guest nested inside it), so the attach is checked for its endpoint.
/// `device_here`: this QEMU emulates edu, so it translated edu's DMA (an
/// inner QEMU passing edu through with vfio-pci does not).
pub fn oracle_for(
    dir: &Path,
    journal: &str,
    trace: &str,
    opt: oracle::Options,
    edu_is_local: bool,
    device_here: bool,
) -> oracle::Report {
    let jsonl = fs::read_to_string(dir.join(journal)).unwrap_or_default();
    let ops = oracle::exerciser_ops(&jsonl);
    let text = fs::read_to_string(dir.join(trace)).unwrap_or_default();
    let events = oracle::parse_trace(&text);
    let reqs = oracle::iommu_requests(&events, "virtio_iommu_map", "virtio_iommu_unmap");
    let mut r = oracle::compare(&ops, &reqs, opt);
    // The endpoint is known where the journal's BDF is this QEMU's device.
    let ep = if edu_is_local {
        oracle::journal_edu(&jsonl).and_then(|b| oracle::endpoint_of(&b))
    } else {
        None
    };
    let attach = oracle::check_attach(&r, &oracle::attaches(&events), ep);
    r.checks.push(attach);
    if device_here {
        let dma = oracle::check_dma(&r, &reqs, &events, &oracle::journal_dma_iovas(&jsonl));
        r.checks.push(dma);
        if let Some(w) = opt.sw_msi {
            let msi = oracle::check_msi_doorbell(&r, &reqs, &events, w);
            r.checks.push(msi);
        }
    }
    r.checks.insert(
        0,
        oracle::Check {
            name: "trace file ends cleanly",
            ok: !text.is_empty() && text.ends_with('\n'),
            detail: format!("{trace}: {} bytes", text.len()),
        },
    );
    r
}

/// `-virtfs` for the artifact directory, mounted at /lab in the guest.
pub fn share_args(dir: &Path) -> Vec<String> {
    vec![
        "-virtfs".into(),
        format!(
            "local,path={},mount_tag=lab,security_model=none",
            dir.display()
        ),
    ]
}
