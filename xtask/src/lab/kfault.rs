//! The lab's fault module (`kfault.c`): kernel bugs on demand for the fault
//! steps no user space program can provoke (a kernel `iommu_map` into an
//! MSI window, an MSI message programmed with an unroutable address). Built
//! here against Debian's headers of the lab kernel (downloaded once into
//! the machine-wide cache), loaded by the fault pass's /init, driven by the
//! exerciser's `fault_kernel_*` steps.

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::{anyhow, Context, Result};

use super::Arch;
use crate::step::{self, cmd};

const SOURCE: &str = include_str!("kfault.c");

/// The module's file name in the VM's `$LAB_BIN`.
pub const MODULE: &str = "vfio-trace-fault.ko";

/// Builds the module for `arch` in `target/lab/kfault-<arch>/` and copies
/// it to `<share>/bin/`.
pub fn build(arch: Arch, share: &Path) -> Result<PathBuf> {
    // The fault module is loaded by the host level (single-level VM, L1).
    let abi = super::kernels::abi_for(super::kernels::Level::Host, arch)?;
    let h = super::kheaders::headers(arch, &abi)?;
    for n in &h.notes {
        eprintln!("    kfault: {n}");
    }
    let kdir = h.dir;
    let dir = crate::step::workspace_root()
        .join("target/lab")
        .join(format!("kfault-{abi}-{}", arch.deb()));
    fs::create_dir_all(&dir)?;
    fs::write(dir.join("vfio-trace-fault.c"), SOURCE)?;
    fs::write(dir.join("Kbuild"), "obj-m := vfio-trace-fault.o\n")?;
    let mut c = cmd("make", ["-s".as_ref(), "-C".as_ref(), kdir.as_os_str()]);
    c.arg(format!("M={}", dir.display()))
        // Module BTF needs pahole; the probes read no type of this module.
        .arg("CONFIG_DEBUG_INFO_BTF_MODULES=")
        .args(&h.make_vars)
        .arg("modules");
    step::run(&mut c).context("building the lab's fault module (make, gcc-12)")?;
    let ko = dir.join(MODULE);
    let bin = share.join("bin");
    fs::create_dir_all(&bin)?;
    fs::copy(&ko, bin.join(MODULE)).with_context(|| format!("copying {}", ko.display()))?;
    Ok(ko)
}

/// The module loaded in the fault pass (its "ready" line in dmesg) and
/// acted (its log lines).
pub fn loaded(dir: &Path) -> super::rules::Line {
    let name = "fault module loaded".to_string();
    let dmesg = fs::read_to_string(dir.join("dmesg.txt")).unwrap_or_default();
    let acts = dmesg
        .lines()
        .filter(|l| l.contains("vfio-trace-fault: ") && !l.contains("ready"))
        .count();
    if dmesg.contains("vfio-trace-fault: ready") {
        (name, Ok(format!("{acts} action lines in dmesg")))
    } else {
        (
            name,
            Err(anyhow!(
                "no \"vfio-trace-fault: ready\" in {}/dmesg.txt",
                dir.display()
            )),
        )
    }
}
