//! IOMMU core (drivers/iommu/iommu.c, dma-iommu.c): what each domain maps,
//! the reserved regions of each group, and the software-MSI doorbells.

use aya_ebpf::{
    helpers::bpf_get_current_pid_tgid,
    macros::{fexit, kprobe, kretprobe, map},
    maps::HashMap,
    programs::{FExitContext, ProbeContext, RetProbeContext},
};
use tracer_common::{
    kind,
    kprobe::{
        DoorbellMapRecord, IommuMapRecord, IommuUnmapRecord, MsiCookieRecord, ResvRecord,
        DEV_NAME_LEN, MAX_RESV,
    },
    probe::*,
};

use crate::{
    emit::{done, emit, OrMissing, Outcome},
    maps::{hit, save_args, take_args, wanted},
    offsets::{dev_name, iommu_group_id, msi_desc, read, resv_code, resv_layout},
};

/// A thread inside `iommu_dma_prepare_msi()`: the device and doorbell address.
#[repr(C)]
#[derive(Clone, Copy)]
struct PrepareMsi {
    dev: [u8; DEV_NAME_LEN],
    msi_addr: u64,
}

#[map]
static PREPARE_MSI: HashMap<u32, PrepareMsi> = HashMap::with_max_entries(1024, 0);

/// `int iommu_map(struct iommu_domain *domain, unsigned long iova,
/// phys_addr_t paddr, size_t size, int prot, gfp_t gfp)`
#[kprobe]
pub fn iommu_map_entry(ctx: ProbeContext) -> u32 {
    done(try_iommu_map_entry(&ctx))
}

#[inline(always)]
fn try_iommu_map_entry(ctx: &ProbeContext) -> Outcome {
    if wanted(bpf_get_current_pid_tgid()) {
        hit(IOMMU_MAP_ENTRY);
        save_args(ctx, IOMMU_MAP_ENTRY, 5);
    }
    Ok(())
}

#[kretprobe]
pub fn iommu_map_return(ctx: RetProbeContext) -> u32 {
    done(try_iommu_map_return(&ctx))
}

#[inline(always)]
fn try_iommu_map_return(ctx: &RetProbeContext) -> Outcome {
    let a = take_args(IOMMU_MAP_ENTRY).or_missing()?;
    hit(IOMMU_MAP_RETURN);
    map_done(&a.args, ctx.ret())
}

/// `iommu_map()` as one fexit program: arguments and return value together,
/// no entry program, no hash map pairing, no return trampoline. Preferred
/// over the kprobe pair when the kernel has BPF trampolines; counts the hits
/// of both. (Its name shares the kernel's 15-byte program-name prefix with
/// `iommu_map_return`, which `probes --leftovers` looks for.)
#[fexit(function = "iommu_map")]
pub fn iommu_map_return_fexit(ctx: FExitContext) -> u32 {
    done(try_iommu_map_return_fexit(&ctx))
}

#[inline(always)]
fn try_iommu_map_return_fexit(ctx: &FExitContext) -> Outcome {
    if !wanted(bpf_get_current_pid_tgid()) {
        return Ok(());
    }
    hit(IOMMU_MAP_ENTRY);
    hit(IOMMU_MAP_RETURN);
    let mut args = [0u64; 6];
    let mut i = 0;
    while i < 5 {
        args[i] = ctx.arg::<u64>(i);
        i += 1;
    }
    let ret = ctx.ret::<i64>().unwrap_or(0) as i32;
    map_done(&args, i64::from(ret))
}

/// Sends the `iommu_map()` record, and the doorbell record when the map was
/// made inside `iommu_dma_prepare_msi()`.
#[inline(always)]
fn map_done(args: &[u64; 6], ret: i64) -> Outcome {
    let a = *args;
    let sent = emit::<IommuMapRecord>(kind::IOMMU_MAP, IOMMU_MAP_RETURN, |r| {
        // SAFETY: the slot `emit` reserved; every field written.
        unsafe {
            (*r).domain = a[0];
            (*r).iova = a[1];
            (*r).paddr = a[2];
            (*r).size = a[3];
            (*r).prot = a[4] as u32;
            (*r).ret = ret as i32;
        }
    });
    // A map made inside iommu_dma_prepare_msi() is the doorbell page (sent
    // even when the ring had no room for the map record).
    let tid = bpf_get_current_pid_tgid() as u32;
    // SAFETY: copied out of the map value at once.
    if let Some(p) = unsafe { PREPARE_MSI.get(&tid) }.copied() {
        if ret == 0 {
            emit::<DoorbellMapRecord>(kind::DOORBELL_MAP, IOMMU_MAP_RETURN, |r| {
                // SAFETY: the slot `emit` reserved; every field written.
                unsafe {
                    (*r).dev = p.dev;
                    (*r).domain = a[0];
                    (*r).iova = a[1];
                    (*r).paddr = a[2];
                    (*r).msi_addr = p.msi_addr;
                }
            })?;
        }
    }
    sent
}

/// `size_t __iommu_unmap(struct iommu_domain *domain, unsigned long iova,
/// size_t size, struct iommu_iotlb_gather *iotlb_gather)`
#[kprobe]
pub fn iommu_unmap_entry(ctx: ProbeContext) -> u32 {
    done(try_iommu_unmap_entry(&ctx))
}

#[inline(always)]
fn try_iommu_unmap_entry(ctx: &ProbeContext) -> Outcome {
    if wanted(bpf_get_current_pid_tgid()) {
        hit(IOMMU_UNMAP_ENTRY);
        save_args(ctx, IOMMU_UNMAP_ENTRY, 3);
    }
    Ok(())
}

#[kretprobe]
pub fn iommu_unmap_return(ctx: RetProbeContext) -> u32 {
    done(try_iommu_unmap_return(&ctx))
}

#[inline(always)]
fn try_iommu_unmap_return(ctx: &RetProbeContext) -> Outcome {
    let a = take_args(IOMMU_UNMAP_ENTRY).or_missing()?;
    hit(IOMMU_UNMAP_RETURN);
    unmap_done(&a.args, ctx.ret())
}

/// `__iommu_unmap()` as one fexit program (see `iommu_map_return_fexit`).
#[fexit(function = "__iommu_unmap")]
pub fn iommu_unmap_return_fexit(ctx: FExitContext) -> u32 {
    done(try_iommu_unmap_return_fexit(&ctx))
}

#[inline(always)]
fn try_iommu_unmap_return_fexit(ctx: &FExitContext) -> Outcome {
    if !wanted(bpf_get_current_pid_tgid()) {
        return Ok(());
    }
    hit(IOMMU_UNMAP_ENTRY);
    hit(IOMMU_UNMAP_RETURN);
    let mut args = [0u64; 6];
    let mut i = 0;
    while i < 3 {
        args[i] = ctx.arg::<u64>(i);
        i += 1;
    }
    unmap_done(&args, ctx.ret::<u64>().unwrap_or(0))
}

#[inline(always)]
fn unmap_done(args: &[u64; 6], unmapped: u64) -> Outcome {
    let a = *args;
    emit::<IommuUnmapRecord>(kind::IOMMU_UNMAP, IOMMU_UNMAP_RETURN, |r| {
        // SAFETY: the slot `emit` reserved; every field written.
        unsafe {
            (*r).domain = a[0];
            (*r).iova = a[1];
            (*r).size = a[2];
            (*r).unmapped = unmapped;
        }
    })
}

/// `int iommu_get_msi_cookie(struct iommu_domain *domain, dma_addr_t base)`
#[kprobe]
pub fn iommu_get_msi_cookie(ctx: ProbeContext) -> u32 {
    done(try_iommu_get_msi_cookie(&ctx))
}

#[inline(always)]
fn try_iommu_get_msi_cookie(ctx: &ProbeContext) -> Outcome {
    hit(MSI_COOKIE);
    emit::<MsiCookieRecord>(kind::MSI_COOKIE, MSI_COOKIE, |r| {
        // SAFETY: the slot `emit` reserved; every field written.
        unsafe {
            (*r).domain = ctx.arg::<u64>(0).unwrap_or(0);
            (*r).base = ctx.arg::<u64>(1).unwrap_or(0);
        }
    })
}

/// `int iommu_dma_prepare_msi(struct msi_desc *desc, phys_addr_t msi_addr)`:
/// maps the doorbell page (if not yet mapped) through `iommu_map()`.
#[kprobe]
pub fn iommu_dma_prepare_msi_entry(ctx: ProbeContext) -> u32 {
    done(try_iommu_dma_prepare_msi_entry(&ctx))
}

#[inline(always)]
fn try_iommu_dma_prepare_msi_entry(ctx: &ProbeContext) -> Outcome {
    hit(PREPARE_MSI_ENTRY);
    let mut p = PrepareMsi {
        dev: [0; DEV_NAME_LEN],
        msi_addr: ctx.arg::<u64>(1).unwrap_or(0),
    };
    if let Some(desc) = msi_desc(ctx.arg::<u64>(0).unwrap_or(0)) {
        dev_name(desc.dev, &mut p.dev);
    }
    let tid = bpf_get_current_pid_tgid() as u32;
    PREPARE_MSI.insert(&tid, &p, 0).map_err(i64::from)
}

#[kretprobe]
pub fn iommu_dma_prepare_msi_return(_ctx: RetProbeContext) -> u32 {
    done(try_iommu_dma_prepare_msi_return())
}

#[inline(always)]
fn try_iommu_dma_prepare_msi_return() -> Outcome {
    hit(PREPARE_MSI_RETURN);
    let tid = bpf_get_current_pid_tgid() as u32;
    PREPARE_MSI.remove(&tid).map_err(i64::from)
}

/// `int iommu_get_group_resv_regions(struct iommu_group *group,
/// struct list_head *head)`: at return `head` lists the group's regions.
#[kprobe]
pub fn resv_regions_entry(ctx: ProbeContext) -> u32 {
    done(try_resv_regions_entry(&ctx))
}

#[inline(always)]
fn try_resv_regions_entry(ctx: &ProbeContext) -> Outcome {
    hit(RESV_REGIONS_ENTRY);
    save_args(ctx, RESV_REGIONS_ENTRY, 2);
    Ok(())
}

#[kretprobe]
pub fn resv_regions_return(_ctx: RetProbeContext) -> u32 {
    done(try_resv_regions_return())
}

#[inline(always)]
fn try_resv_regions_return() -> Outcome {
    let a = take_args(RESV_REGIONS_ENTRY).or_missing()?;
    hit(RESV_REGIONS_RETURN);
    let l = resv_layout().or_missing()?;
    let head = a.args[1];
    emit::<ResvRecord>(kind::RESV_REGIONS, RESV_REGIONS_RETURN, |r| {
        // SAFETY: the slot `emit` reserved; group and count written,
        // entries written up to count.
        unsafe {
            (*r).group = iommu_group_id(a.args[0]).unwrap_or(u32::MAX);
            let mut node = read::<u64>(head).unwrap_or(head);
            let mut n = 0u32;
            for i in 0..MAX_RESV {
                if node == head || node == 0 {
                    break;
                }
                let region = node - l.list;
                let ent = &mut (*r).entries[i];
                ent.start = read::<u64>(region + l.start).unwrap_or(0);
                ent.length = read::<u64>(region + l.length).unwrap_or(0);
                ent.prot = read::<u32>(region + l.prot).unwrap_or(0);
                ent.rtype = resv_code(read::<u32>(region + l.rtype).unwrap_or(u32::MAX));
                n += 1;
                node = read::<u64>(node).unwrap_or(head);
            }
            (*r).count = n;
        }
    })
}
