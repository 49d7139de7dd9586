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

use anyhow::{anyhow, bail, Context, Result};

use super::{debs, Arch};
use crate::step::{self, cmd};

const SOURCE: &str = include_str!("kfault.c");

/// The module's file name in the VM's `$LAB_BIN`.
pub const MODULE: &str = "vfio-trace-fault.ko";

/// Debian's headers for the lab kernel, unpacked into one tree whose
/// arch Makefile includes the common one by its path in that tree (the
/// package names /usr/src/... absolutely).
fn headers(arch: Arch) -> Result<PathBuf> {
    // The fault module is loaded by the host level (single-level VM, L1).
    let abi = super::kernels::abi_for(super::kernels::Level::Host, arch)?;
    let release = format!("{abi}-{}", arch.deb());
    let arch_dir = format!("usr/src/linux-headers-{release}");
    let makefile = format!("{arch_dir}/Makefile");
    let pkgs = [
        (format!("linux-headers-{release}"), arch.deb()),
        // Architecture `all`: apt names it with this machine's architecture.
        (format!("linux-headers-{abi}-common"), Arch::host().deb()),
        // Host tools (fixdep, modpost): this machine's architecture.
        (format!("linux-kbuild-{abi}"), Arch::host().deb()),
    ];
    let pkgs: Vec<(&str, &str)> = pkgs.iter().map(|(p, a)| (p.as_str(), *a)).collect();
    let h = debs::ensure_unpacked_set(
        &format!("kheaders_{release}"),
        &pkgs,
        &[makefile.as_str()],
        |root| {
            let mk = root.join(&makefile);
            let text = fs::read_to_string(&mk).with_context(|| format!("{}", mk.display()))?;
            let fixed = text.replace(
                "include /usr/src/",
                &format!("include {}/usr/src/", final_root(root)?.display()),
            );
            if fixed == text {
                bail!("{} does not include /usr/src/...: {text:?}", mk.display());
            }
            fs::write(&mk, fixed)?;
            Ok(())
        },
    )?;
    Ok(h.root.join(arch_dir))
}

/// Where `ensure_unpacked_set` renames its `<name>.tmp` tree when done.
fn final_root(tmp: &Path) -> Result<PathBuf> {
    let name = tmp
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".tmp"))
        .context("unexpected unpack dir")?;
    Ok(tmp.with_file_name(name))
}

/// Builds the module for `arch` in `target/lab/kfault-<arch>/` and copies
/// it to `<share>/bin/`.
pub fn build(arch: Arch, share: &Path) -> Result<PathBuf> {
    let kdir = headers(arch)?;
    let dir = crate::step::workspace_root()
        .join("target/lab")
        .join(format!("kfault-{}", arch.deb()));
    fs::create_dir_all(&dir)?;
    fs::write(dir.join("vfio-trace-fault.c"), SOURCE)?;
    fs::write(dir.join("Kbuild"), "obj-m := vfio-trace-fault.o\n")?;
    let mut c = cmd("make", ["-s".as_ref(), "-C".as_ref(), kdir.as_os_str()]);
    c.arg(format!("M={}", dir.display()))
        // Module BTF needs pahole; the probes read no type of this module.
        .arg("CONFIG_DEBUG_INFO_BTF_MODULES=")
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
