//! The named steps, in the order they run. The clean path exercises what a
//! VMM does; each `fault_*` step provokes one failure users report and
//! passes when the kernel answers as documented.

use crate::{
    session::{errno_str, Session, StepResult},
    setup::{BUF_A_IOVA, BUF_LEN},
};

pub struct Step {
    pub name: &'static str,
    pub about: &'static str,
    /// Run when no `--steps` are given.
    pub default: bool,
    pub run: fn(&mut Session, &str) -> StepResult,
}

const ARM64: bool = cfg!(target_arch = "aarch64");

pub const STEPS: &[Step] = &[
    Step {
        name: "fault_map_before_set_iommu",
        about: "MAP_DMA on a container with a group but no IOMMU backend: EINVAL",
        default: true,
        run: fault_map_before_set_iommu,
    },
    Step {
        name: "setup",
        about: "container, groups, SET_IOMMU type1v2",
        default: true,
        run: |s, _| s.ensure_iommu().map(|_| "container ready".into()),
    },
    Step {
        name: "get_info",
        about: "IOMMU_GET_INFO with the IOVA-ranges capability",
        default: true,
        run: |s, n| s.get_info(n),
    },
    Step {
        name: "map_dma",
        about: "MAP_DMA two 64 KiB buffers at 0x100000 and 0x200000",
        default: true,
        run: |s, _| s.ensure_mapped(),
    },
    Step {
        name: "edu_dma",
        about: "edu DMA RAM→device→RAM through the IOMMU, data verified",
        default: true,
        run: crate::devices::edu_dma,
    },
    Step {
        name: "edu_msi",
        about: "edu MSI via SET_IRQS + eventfd: raise, read the eventfd, ack",
        default: true,
        run: crate::devices::edu_msi,
    },
    Step {
        name: "e1000e_msix",
        about: "e1000e MSI-X with every vector: one interrupt cause per vector",
        default: true,
        run: crate::devices::e1000e_msix,
    },
    Step {
        name: "fault_map_msi_window",
        about: "MAP_DMA at the group's reserved MSI window: EINVAL",
        default: true,
        run: fault_map_msi_window,
    },
    Step {
        name: "fault_map_swmsi_window",
        about: "MAP_DMA inside the arm64 software-MSI window 0x8000000: EINVAL",
        default: ARM64,
        run: fault_map_swmsi_window,
    },
    Step {
        name: "fault_map_overlap",
        about: "MAP_DMA overlapping buffer A: EEXIST",
        default: true,
        run: fault_map_overlap,
    },
    Step {
        name: "fault_map_unaligned",
        about: "MAP_DMA of 0x800 bytes: EINVAL",
        default: true,
        run: fault_map_unaligned,
    },
    Step {
        name: "fault_unmap_mismatch",
        about: "UNMAP_DMA of a range no mapping matches: returns 0, size 0",
        default: true,
        run: fault_unmap_mismatch,
    },
    Step {
        name: "unmap_dma",
        about: "UNMAP_DMA both buffers; the written-back size equals the mapped size",
        default: true,
        run: unmap_dma,
    },
];

fn expect_errno(s: &Session, what: &str, t: &crate::journal::Timed, errno: i32) -> StepResult {
    let _ = s;
    if !t.ok() && t.errno == errno {
        Ok(format!(
            "{what}: {} as expected",
            crate::journal::errno_name(errno)
        ))
    } else {
        Err(format!(
            "{what}: expected {}, got {}",
            crate::journal::errno_name(errno),
            errno_str(t)
        ))
    }
}

/// A scratch page for fault maps (never expected to map).
fn scratch(s: &mut Session) -> Result<u64, String> {
    if s.bufs.is_empty() {
        s.alloc_buf(BUF_LEN, BUF_A_IOVA)?;
        s.alloc_buf(BUF_LEN, crate::setup::BUF_B_IOVA)?;
    }
    Ok(s.bufs[0].ptr as u64)
}

/// An unexpected successful fault map is undone so later steps still run.
fn undo_if_mapped(s: &mut Session, step: &str, t: &crate::journal::Timed, iova: u64, size: u64) {
    if t.ok() {
        s.unmap_dma(step, iova, size);
    }
}

fn fault_map_before_set_iommu(s: &mut Session, step: &str) -> StepResult {
    if s.iommu_set {
        return Err("the IOMMU backend is already set (run this step first)".into());
    }
    s.ensure_groups()?;
    let v = scratch(s)?;
    let t = s.map_dma(step, v, 0x30_0000, 0x1000);
    expect_errno(s, "MAP_DMA before SET_IOMMU", &t, libc::EINVAL)
}

/// The first `msi` line of the edu group's reserved_regions.
fn msi_window(s: &Session) -> Result<(u64, u64), String> {
    let (g, _) = s.groups.first().ok_or("no group open")?;
    let path = format!("/sys/kernel/iommu_groups/{g}/reserved_regions");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() >= 3 && f[2] == "msi" {
            let p = |x: &str| u64::from_str_radix(x.trim_start_matches("0x"), 16);
            if let (Ok(a), Ok(b)) = (p(f[0]), p(f[1])) {
                return Ok((a, b));
            }
        }
    }
    Err(format!("no msi region in {path}: {text:?}"))
}

fn fault_map_msi_window(s: &mut Session, step: &str) -> StepResult {
    s.ensure_iommu()?;
    let (start, end) = msi_window(s)?;
    let v = scratch(s)?;
    let t = s.map_dma(step, v, start, 0x1000);
    undo_if_mapped(s, step, &t, start, 0x1000);
    expect_errno(
        s,
        &format!("MAP_DMA at msi window {start:#x}-{end:#x}"),
        &t,
        libc::EINVAL,
    )
}

fn fault_map_swmsi_window(s: &mut Session, step: &str) -> StepResult {
    s.ensure_iommu()?;
    let iova = 0x800_0000 + 0x4_0000;
    let v = scratch(s)?;
    let t = s.map_dma(step, v, iova, 0x1000);
    undo_if_mapped(s, step, &t, iova, 0x1000);
    expect_errno(
        s,
        &format!("MAP_DMA at {iova:#x} (SW-MSI window)"),
        &t,
        libc::EINVAL,
    )
}

fn fault_map_overlap(s: &mut Session, step: &str) -> StepResult {
    s.ensure_mapped()?;
    let (v, iova) = (s.bufs[1].ptr as u64, BUF_A_IOVA + 0x1000);
    let t = s.map_dma(step, v, iova, 0x2000);
    undo_if_mapped(s, step, &t, iova, 0x2000);
    expect_errno(s, "MAP_DMA overlapping buffer A", &t, libc::EEXIST)
}

fn fault_map_unaligned(s: &mut Session, step: &str) -> StepResult {
    s.ensure_iommu()?;
    let v = scratch(s)?;
    let t = s.map_dma(step, v, 0x40_0000, 0x800);
    undo_if_mapped(s, step, &t, 0x40_0000, 0x1000);
    expect_errno(s, "MAP_DMA of 0x800 bytes", &t, libc::EINVAL)
}

fn fault_unmap_mismatch(s: &mut Session, step: &str) -> StepResult {
    s.ensure_iommu()?;
    let (t, size) = s.unmap_dma(step, 0x300_0000, 0x1000);
    if t.ok() && size == 0 {
        Ok("UNMAP_DMA of nothing: returned 0 and size 0 (silent)".into())
    } else {
        Err(format!(
            "UNMAP_DMA of nothing: {} size {size:#x}",
            errno_str(&t)
        ))
    }
}

fn unmap_dma(s: &mut Session, step: &str) -> StepResult {
    s.ensure_iommu()?;
    let mut done = Vec::new();
    for i in 0..s.bufs.len() {
        if !s.bufs[i].mapped {
            continue;
        }
        let (iova, len) = (s.bufs[i].iova, s.bufs[i].len as u64);
        let (t, size) = s.unmap_dma(step, iova, len);
        if !t.ok() || size != len {
            return Err(format!(
                "UNMAP_DMA {iova:#x}: {} size {size:#x}",
                errno_str(&t)
            ));
        }
        s.bufs[i].mapped = false;
        done.push(format!("{iova:#x}+{len:#x}"));
    }
    if done.is_empty() {
        return Err("nothing was mapped".into());
    }
    Ok(format!("unmapped {}", done.join(" ")))
}
