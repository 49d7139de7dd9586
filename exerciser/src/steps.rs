//! The named steps. The clean set (run when no `--steps` are given) is what
//! a correct VMM does: vfio-trace's rules must find nothing in it. Each
//! fault step provokes one failure users report, passes when the kernel
//! answers as documented, and names the rule (`VT0xx`) vfio-trace must
//! report for it, and only that rule. The lab runs each fault step in its
//! own exerciser process (`--list-faults` prints the ones that apply here).

use crate::{
    session::{errno_str, Session, StepResult},
    setup::{BUF_A_IOVA, BUF_LEN},
};
use anyhow::{anyhow, Context, Result};

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Part of the clean set, in this order.
    Clean,
    /// A fault step and the rule it must fire.
    Fault(&'static str),
}

/// Where a step applies.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Only {
    Any,
    Arm64,
    /// x86_64 only: there the virtio-iommu reports a bounded input range
    /// (39 bits with QEMU 10); the arm64 lab's reports all 64 bits, so no
    /// IOVA lies beyond it.
    X86_64,
    /// Needs the e1000e (MSI-X).
    E1000e,
    /// Needs the lab's fault module (a kernel bug on demand, `kfault.rs`).
    FaultModule,
    /// The fault module on arm64 (a software-MSI doorbell window).
    FaultModuleArm64,
    /// arm64 (a software-MSI window) with /dev/kvm.
    Arm64Kvm,
    /// Never listed by `--list-faults`: run only when named with `--steps`
    /// where the lab set up what it needs (a buggy VMM).
    Named,
    /// The fault module and the e1000e (MSI-X: per-vector mask bits).
    FaultModuleE1000e,
}

pub struct Step {
    pub name: &'static str,
    pub about: &'static str,
    pub kind: Kind,
    pub only: Only,
    pub run: fn(&mut Session, &str) -> StepResult,
}

impl Step {
    pub fn applies(&self, have_e1000e: bool) -> bool {
        match self.only {
            Only::Any => true,
            Only::Arm64 => ARM64,
            Only::X86_64 => !ARM64,
            Only::E1000e => have_e1000e,
            Only::FaultModule => crate::kfault::loaded(),
            Only::FaultModuleArm64 => ARM64 && crate::kfault::loaded(),
            Only::Arm64Kvm => ARM64 && crate::kvm::available(),
            Only::Named => false,
            Only::FaultModuleE1000e => have_e1000e && crate::kfault::loaded(),
        }
    }
    pub fn rule(&self) -> Option<&'static str> {
        match self.kind {
            Kind::Clean => None,
            Kind::Fault(r) => Some(r),
        }
    }
}

const ARM64: bool = cfg!(target_arch = "aarch64");

pub const STEPS: &[Step] = &[
    Step {
        name: "fault_map_before_set_iommu",
        about: "MAP_DMA on a container with a group but no IOMMU backend: EINVAL",
        kind: Kind::Fault("VT008"),
        only: Only::Any,
        run: fault_map_before_set_iommu,
    },
    Step {
        name: "setup",
        about: "container, groups, SET_IOMMU type1v2",
        kind: Kind::Clean,
        only: Only::Any,
        run: |s, _| s.ensure_iommu().map(|_| "container ready".into()),
    },
    Step {
        name: "get_info",
        about: "IOMMU_GET_INFO with the IOVA-ranges capability",
        kind: Kind::Clean,
        only: Only::Any,
        run: |s, n| s.get_info(n),
    },
    Step {
        name: "map_dma",
        about: "MAP_DMA two 64 KiB buffers at 0x100000 and 0x200000",
        kind: Kind::Clean,
        only: Only::Any,
        run: |s, _| s.ensure_mapped(),
    },
    Step {
        name: "edu_dma",
        about: "edu DMA RAM→device→RAM through the IOMMU, data verified",
        kind: Kind::Clean,
        only: Only::Any,
        run: crate::devices::edu_dma,
    },
    Step {
        name: "edu_msi",
        about: "edu MSI via SET_IRQS + eventfd: raise, read the eventfd, ack",
        kind: Kind::Clean,
        only: Only::Any,
        run: crate::devices::edu_msi,
    },
    Step {
        name: "e1000e_msix",
        about: "e1000e MSI-X with every vector: one interrupt cause per vector",
        kind: Kind::Clean,
        only: Only::E1000e,
        run: crate::devices::e1000e_msix,
    },
    Step {
        name: "fault_map_msi_window",
        about: "MAP_DMA at the group's reserved MSI window: EINVAL",
        kind: Kind::Fault("VT008"),
        only: Only::Any,
        run: fault_map_msi_window,
    },
    Step {
        name: "fault_map_swmsi_window",
        about: "MAP_DMA inside the arm64 software-MSI window 0x8000000: EINVAL",
        kind: Kind::Fault("VT008"),
        only: Only::Arm64,
        run: fault_map_swmsi_window,
    },
    Step {
        name: "fault_map_overlap",
        about: "MAP_DMA overlapping buffer A: EEXIST",
        kind: Kind::Fault("VT008"),
        only: Only::Any,
        run: fault_map_overlap,
    },
    Step {
        name: "fault_map_unaligned",
        about: "MAP_DMA of 0x800 bytes: EINVAL",
        kind: Kind::Fault("VT008"),
        only: Only::Any,
        run: fault_map_unaligned,
    },
    Step {
        name: "fault_map_beyond_iova_ranges",
        about: "MAP_DMA above the last valid IOVA range GET_INFO reported (address width): EINVAL",
        kind: Kind::Fault("VT008"),
        only: Only::X86_64,
        run: fault_map_beyond_iova_ranges,
    },
    Step {
        name: "fault_unmap_bisect_v1",
        about: "type1 (v1) container: UNMAP_DMA of one page inside a 64 KiB map returns 0 bytes, the map stays",
        kind: Kind::Fault("VT007"),
        only: Only::Any,
        run: fault_unmap_bisect_v1,
    },
    Step {
        name: "fault_irq_signal_unbound",
        about: "edu MSI enabled, its eventfd de-assigned, then SET_IRQS DATA_NONE trigger: signals nothing",
        kind: Kind::Fault("VT010"),
        only: Only::Any,
        run: fault_irq_signal_unbound,
    },
    Step {
        name: "fault_kernel_iommu_map_msi_window",
        about: "a kernel caller (the lab's fault module) iommu_maps a page at the MSI window in edu's VFIO domain",
        kind: Kind::Fault("VT001"),
        only: Only::FaultModule,
        run: crate::kfault::iommu_map_msi_window,
    },
    Step {
        name: "fault_kernel_msi_unroutable",
        about: "the kernel (the lab's fault module) programs edu's MSI vector with an address past the MSI window",
        kind: Kind::Fault("VT003"),
        only: Only::FaultModule,
        run: crate::kfault::msi_unroutable,
    },
    Step {
        name: "fault_kernel_msi_doorbell_unbacked",
        about: "the kernel (the lab's fault module) programs edu's MSI vector with a doorbell IOVA in the SW-MSI window where no doorbell is mapped",
        kind: Kind::Fault("VT004"),
        only: Only::FaultModuleArm64,
        run: crate::kfault::msi_doorbell_unbacked,
    },
    Step {
        name: "fault_vm_ram_in_sw_msi_window",
        about: "a KVM VM whose RAM at GPA 0-256 MiB covers the SW-MSI window, in the process using VFIO",
        kind: Kind::Fault("VT005"),
        only: Only::Arm64Kvm,
        run: crate::kvm::ram_in_sw_msi_window,
    },
    Step {
        name: "fault_kernel_vector_freed_unmasked",
        about: "e1000e MSI-X vector 0 de-assigned after the kernel lost its mask state (the lab's fault module): torn down unmasked",
        kind: Kind::Fault("VT010"),
        only: Only::FaultModuleE1000e,
        run: crate::kfault::vector_freed_unmasked,
    },
    Step {
        name: "unmap_nothing",
        about: "UNMAP_DMA of a range where nothing is mapped: returns 0, size 0 (not stale)",
        kind: Kind::Clean,
        only: Only::Any,
        run: unmap_nothing,
    },
    Step {
        name: "unmap_dma",
        about: "UNMAP_DMA both buffers; the written-back size equals the mapped size",
        kind: Kind::Clean,
        only: Only::Any,
        run: unmap_dma,
    },
    Step {
        name: "fault_guest_iova_beyond_host",
        about: "nested fault pass (buggy VMM: host IOVA limits hidden, wider aw-bits): map one page at 1 << 40, which this guest's IOMMU accepts and the host's cannot",
        kind: Kind::Fault("VT009"),
        only: Only::Named,
        run: fault_guest_iova_beyond_host,
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
        Err(anyhow!(
            "{what}: expected {}, got {}",
            crate::journal::errno_name(errno),
            errno_str(t)
        ))
    }
}

/// A scratch page for fault maps (never expected to map).
fn scratch(s: &mut Session) -> Result<u64> {
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
        return Err(anyhow!(
            "the IOMMU backend is already set (run this step first)"
        ));
    }
    s.ensure_groups()?;
    let v = scratch(s)?;
    let t = s.map_dma(step, v, 0x30_0000, 0x1000);
    expect_errno(s, "MAP_DMA before SET_IOMMU", &t, libc::EINVAL)
}

/// The first `msi` line of the edu group's reserved_regions.
pub fn msi_window(s: &Session) -> Result<(u64, u64)> {
    let (g, _) = s.groups.first().context("no group open")?;
    let path = format!("/sys/kernel/iommu_groups/{g}/reserved_regions");
    let text = std::fs::read_to_string(&path).with_context(|| path.clone())?;
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() >= 3 && f[2] == "msi" {
            let p = |x: &str| u64::from_str_radix(x.trim_start_matches("0x"), 16);
            if let (Ok(a), Ok(b)) = (p(f[0]), p(f[1])) {
                return Ok((a, b));
            }
        }
    }
    Err(anyhow!("no msi region in {path}: {text:?}"))
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

fn unmap_nothing(s: &mut Session, step: &str) -> StepResult {
    s.ensure_iommu()?;
    let (t, size) = s.unmap_dma(step, 0x300_0000, 0x1000);
    if t.ok() && size == 0 {
        Ok("UNMAP_DMA of nothing: returned 0 and size 0 (silent)".into())
    } else {
        Err(anyhow!(
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
            return Err(anyhow!(
                "UNMAP_DMA {iova:#x}: {} size {size:#x}",
                errno_str(&t)
            ));
        }
        s.bufs[i].mapped = false;
        done.push(format!("{iova:#x}+{len:#x}"));
    }
    if done.is_empty() {
        return Err(anyhow!("nothing was mapped"));
    }
    Ok(format!("unmapped {}", done.join(" ")))
}

/// MAP_DMA one page just above the highest valid IOVA range GET_INFO
/// reported: the IOMMU's input address width, as a VMM that believed a
/// wider guest IOMMU would ask for.
fn fault_map_beyond_iova_ranges(s: &mut Session, step: &str) -> StepResult {
    if s.iova_ranges.is_empty() {
        s.get_info(step)?;
    }
    let top = s
        .iova_ranges
        .iter()
        .map(|r| r.1)
        .max()
        .context("GET_INFO reported no IOVA range")?;
    let iova = top
        .checked_add(1)
        .with_context(|| format!("the IOVA ranges end at {top:#x}: nothing lies beyond"))?;
    let v = scratch(s)?;
    let t = s.map_dma(step, v, iova, 0x1000);
    undo_if_mapped(s, step, &t, iova, 0x1000);
    expect_errno(
        s,
        &format!("MAP_DMA at {iova:#x} (beyond the last valid IOVA {top:#x})"),
        &t,
        libc::EINVAL,
    )
}

/// Type1 v1 keeps the old coalescing semantics: an UNMAP that starts inside
/// a mapping succeeds with 0 bytes unmapped and leaves the mapping in place
/// (v2 refuses it with EINVAL). A VMM that trusts the return code keeps a
/// stale mapping. Needs a fresh process (the container's type is set once).
fn fault_unmap_bisect_v1(s: &mut Session, step: &str) -> StepResult {
    if s.iommu_set {
        return Err(anyhow!(
            "the IOMMU backend is already set (run this step in its own process)"
        ));
    }
    s.iommu_type = crate::vfio::VFIO_TYPE1_IOMMU;
    s.ensure_iommu()?;
    if s.bufs.is_empty() {
        s.alloc_buf(BUF_LEN, BUF_A_IOVA)?;
    }
    let (v, len) = (s.bufs[0].ptr as u64, s.bufs[0].len as u64);
    let t = s.map_dma(step, v, BUF_A_IOVA, len);
    if !t.ok() {
        return Err(anyhow!("MAP_DMA {BUF_A_IOVA:#x}: {}", errno_str(&t)));
    }
    let inner = BUF_A_IOVA + 0x1000;
    let (t, size) = s.unmap_dma(step, inner, 0x1000);
    // Clean up for real: the whole original range.
    let (t2, size2) = s.unmap_dma(step, BUF_A_IOVA, len);
    if !t2.ok() || size2 != len {
        return Err(anyhow!(
            "cleanup UNMAP_DMA {BUF_A_IOVA:#x}+{len:#x}: {} size {size2:#x}",
            errno_str(&t2)
        ));
    }
    if t.ok() && size == 0 {
        Ok(format!(
            "UNMAP_DMA {inner:#x}+0x1000 inside {BUF_A_IOVA:#x}+{len:#x}: returned 0 and size 0, mapping left in place"
        ))
    } else {
        Err(anyhow!(
            "UNMAP_DMA {inner:#x}+0x1000 on type1 v1: {} size {size:#x} (expected success with size 0)",
            errno_str(&t)
        ))
    }
}

/// MSI on edu with an eventfd, the eventfd de-assigned (fd -1: MSI stays
/// enabled, the vector has no trigger), then a loopback trigger
/// (DATA_NONE, count 1): VFIO signals nothing and returns success.
fn fault_irq_signal_unbound(s: &mut Session, step: &str) -> StepResult {
    use crate::vfio::VFIO_PCI_MSI_IRQ_INDEX;
    s.ensure_edu()?;
    let dev = s.edu.as_ref().map(|d| d.fd).context("no edu")?;
    s.with_irqs(step, dev, VFIO_PCI_MSI_IRQ_INDEX, 1, |s, fds| {
        let t = s.set_irqs(step, dev, VFIO_PCI_MSI_IRQ_INDEX, &[-1]);
        if !t.ok() {
            return Err(anyhow!("SET_IRQS MSI de-assign (fd -1): {}", errno_str(&t)));
        }
        s.loopback_trigger(step, dev, VFIO_PCI_MSI_IRQ_INDEX, 0)?;
        let n = s.wait_eventfd(step, fds[0], 200);
        if n != 0 {
            return Err(anyhow!("the de-assigned eventfd still counted {n}"));
        }
        Ok("loopback trigger on a vector with no eventfd: success, nothing signalled".to_string())
    })
}

/// The IOVA `fault_guest_iova_beyond_host` maps: above a 39-bit host
/// IOMMU's last IOVA, below the 48-bit input range the buggy VMM gives L2.
pub const BEYOND_HOST_IOVA: u64 = 1 << 40;

/// In the nested lab's fault pass the inner QEMU hides the host's IOVA
/// ranges from its virtio-iommu, which reports a 48-bit input range: this
/// guest's VFIO accepts a MAP at 1 << 40 (the guest MAP succeeds), the
/// VMM's MAP_DMA of it on the host, whose IOMMU has 39 bits, fails. The
/// step passes when the guest side accepts it (and unmaps it again).
fn fault_guest_iova_beyond_host(s: &mut Session, step: &str) -> StepResult {
    s.ensure_iommu()?;
    if s.iova_ranges.is_empty() {
        s.get_info(step)?;
    }
    let iova = BEYOND_HOST_IOVA;
    let last = iova + 0xfff;
    if !s.iova_ranges.iter().any(|r| r.0 <= iova && last <= r.1) {
        return Err(anyhow!(
            "this guest's valid IOVA ranges {:x?} do not hold {iova:#x}: the VMM told the guest its host's limits (no fault to provoke)",
            s.iova_ranges
        ));
    }
    let v = scratch(s)?;
    let t = s.map_dma(step, v, iova, 0x1000);
    if !t.ok() {
        return Err(anyhow!("MAP_DMA at {iova:#x}: {}", errno_str(&t)));
    }
    let (t, size) = s.unmap_dma(step, iova, 0x1000);
    if !t.ok() || size != 0x1000 {
        return Err(anyhow!(
            "UNMAP_DMA at {iova:#x}: {} size {size:#x}",
            errno_str(&t)
        ));
    }
    Ok(format!(
        "MAP_DMA at {iova:#x} accepted by this guest's IOMMU (valid IOVAs up to {:#x}), unmapped again",
        s.iova_ranges.iter().map(|r| r.1).max().unwrap_or(0)
    ))
}
