//! Fault steps that need a kernel bug: the lab's fault module
//! (`xtask/src/lab/kfault.c`, `/proc/vfio-trace-fault`) makes the mistake
//! through the kernel interfaces a buggy driver would use, in this
//! process's context, and undoes it. These steps apply only where the
//! module is loaded.

use anyhow::{anyhow, Context, Result};
use std::ffi::CString;

use serde_json::json;

use crate::{
    journal::timed,
    session::{errno_str, Session, StepResult},
    vfio::VFIO_PCI_MSI_IRQ_INDEX,
};

pub const CONTROL: &str = "/proc/vfio-trace-fault";

pub fn loaded() -> bool {
    std::path::Path::new(CONTROL).exists()
}

/// Writes one command to the module, journaled as a `write` call.
fn command(s: &mut Session, step: &str, text: &str) -> Result<()> {
    let path = CString::new(CONTROL).expect("no NUL");
    // SAFETY: plain syscalls on a path and buffer we own.
    let t = timed(|| unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return -1;
        }
        let n = libc::write(fd, text.as_ptr().cast(), text.len());
        let e = *libc::__errno_location();
        libc::close(fd);
        *libc::__errno_location() = e;
        n as i64
    });
    s.j.call(
        step,
        "write",
        None,
        -1,
        json!({ "path": CONTROL, "command": text }),
        &t,
        serde_json::Value::Null,
    );
    if t.ok() {
        Ok(())
    } else {
        Err(anyhow!("{CONTROL} `{text}`: {}", errno_str(&t)))
    }
}

fn edu_bdf(s: &mut Session) -> Result<String> {
    s.ensure_edu()?;
    s.edu.as_ref().map(|d| d.bdf.clone()).context("no edu")
}

/// VT001: a kernel caller maps a page at the start of edu's reserved MSI
/// window in the VFIO container's IOMMU domain (VFIO itself refuses that
/// MAP_DMA: `fault_map_msi_window`).
pub fn iommu_map_msi_window(s: &mut Session, step: &str) -> StepResult {
    s.ensure_iommu()?;
    let bdf = edu_bdf(s)?;
    let (start, end) = crate::steps::msi_window(s)?;
    command(s, step, &format!("iommu_map {bdf} {start:x}"))?;
    Ok(format!(
        "the kernel mapped (and unmapped) {start:#x} in edu's domain, inside the MSI window {start:#x}-{end:#x}"
    ))
}

/// Enables edu's MSI with an eventfd, has the module program vector 0 with
/// `addr` (and restore it), disables MSI.
fn program_msi(s: &mut Session, step: &str, bdf: &str, addr: u64) -> Result<()> {
    let dev = s.edu.as_ref().map(|d| d.fd).context("no edu")?;
    s.with_irqs(step, dev, VFIO_PCI_MSI_IRQ_INDEX, 1, |s, _| {
        command(s, step, &format!("msi_addr {bdf} 0 {addr:x}"))
    })
}

/// VT003: edu's MSI vector programmed with the first address past its
/// reserved MSI window (neither bypassed nor mapped), then restored.
pub fn msi_unroutable(s: &mut Session, step: &str) -> StepResult {
    s.ensure_iommu()?;
    let bdf = edu_bdf(s)?;
    let (_, end) = crate::steps::msi_window(s)?;
    let addr = end + 1;
    program_msi(s, step, &bdf, addr)?;
    Ok(format!(
        "the kernel programmed edu's MSI vector 0 with {addr:#x} (past the MSI window), then restored it"
    ))
}

/// VT004: on a software-MSI system, edu's vector programmed with a doorbell
/// IOVA in the window's last page, where `iommu_dma_prepare_msi` mapped no
/// doorbell (it maps from the window's base), then restored.
pub fn msi_doorbell_unbacked(s: &mut Session, step: &str) -> StepResult {
    s.ensure_iommu()?;
    let bdf = edu_bdf(s)?;
    let (_, end) = crate::steps::msi_window(s)?;
    let addr = (end & !0xfff) | 0x40;
    program_msi(s, step, &bdf, addr)?;
    Ok(format!(
        "the kernel programmed edu's MSI vector 0 with doorbell IOVA {addr:#x} (last page of the SW-MSI window, unmapped), then restored it"
    ))
}

/// VT010 (vector torn down unmasked): e1000e MSI-X with two vectors, the
/// kernel's mask state of vector 0 corrupted (marked masked, device left
/// unmasked: `mask_lie`), then vector 0's eventfd de-assigned: `free_irq()`
/// believes it masked and skips the device's mask bit, so the vector is
/// torn down unmasked. Then MSI-X is disabled.
pub fn vector_freed_unmasked(s: &mut Session, step: &str) -> StepResult {
    use crate::vfio::VFIO_PCI_MSIX_IRQ_INDEX;
    s.ensure_e1000e()?;
    let (bdf, dev) = s
        .e1000e
        .as_ref()
        .map(|d| (d.bdf.clone(), d.fd))
        .context("no e1000e")?;
    s.with_irqs(step, dev, VFIO_PCI_MSIX_IRQ_INDEX, 2, |s, _| {
        command(s, step, &format!("mask_lie {bdf} 0"))?;
        let t = s.set_irqs(step, dev, VFIO_PCI_MSIX_IRQ_INDEX, &[-1]);
        if !t.ok() {
            return Err(anyhow!(
                "SET_IRQS MSI-X vector 0 de-assign: {}",
                errno_str(&t)
            ));
        }
        Ok("MSI-X vector 0 de-assigned after the kernel lost its mask state".to_string())
    })
}
