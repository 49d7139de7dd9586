//! VFIO type1 and vfio-pci (drivers/vfio/): page pinning (HVA → HPA), the
//! device behind SET_IRQS, and each MSI vector's trigger.

use aya_ebpf::{
    helpers::bpf_get_current_pid_tgid,
    macros::{kprobe, kretprobe, map},
    maps::HashMap,
    programs::{ProbeContext, RetProbeContext},
};
use tracer_common::{
    kind,
    kprobe::{MsiVectorRecord, PinRecord, DEV_NAME_LEN},
    probe::*,
};

use crate::{
    emit::{done, emit, OrMissing, Outcome},
    maps::{hit, save_args, take_args, wanted},
    offsets::{dev_name, pci_dev_device, read, vfio_pci_core_pdev},
};

/// The device of a SET_IRQS in flight, by thread: the ioctl exit probe puts
/// it into the ioctl record.
#[map]
pub static IRQS_DEVICE: HashMap<u32, [u8; DEV_NAME_LEN]> = HashMap::with_max_entries(1024, 0);

/// Name of the PCI device behind a `vfio_pci_core_device *`.
#[inline(always)]
fn vdev_name(vdev: u64, out: &mut [u8; DEV_NAME_LEN]) {
    if let Some(dev) = vfio_pci_core_pdev(vdev).and_then(pci_dev_device) {
        dev_name(dev, out);
    }
}

/// `long vfio_pin_pages_remote(struct vfio_dma *dma, unsigned long vaddr,
/// long npage, unsigned long *pfn_base, unsigned long limit, struct vfio_batch *batch)`
#[kprobe]
pub fn vfio_pin_entry(ctx: ProbeContext) -> u32 {
    done(try_vfio_pin_entry(&ctx))
}

#[inline(always)]
fn try_vfio_pin_entry(ctx: &ProbeContext) -> Outcome {
    if wanted(bpf_get_current_pid_tgid()) {
        hit(VFIO_PIN_ENTRY);
        save_args(ctx, VFIO_PIN_ENTRY, 4);
    }
    Ok(())
}

#[kretprobe]
pub fn vfio_pin_return(ctx: RetProbeContext) -> u32 {
    done(try_vfio_pin_return(&ctx))
}

#[inline(always)]
fn try_vfio_pin_return(ctx: &RetProbeContext) -> Outcome {
    let a = take_args(VFIO_PIN_ENTRY).or_missing()?;
    hit(VFIO_PIN_RETURN);
    let pinned: i64 = ctx.ret();
    emit::<PinRecord>(kind::VFIO_PIN, VFIO_PIN_RETURN, |r| {
        // SAFETY: the slot `emit` reserved; every field written.
        unsafe {
            (*r).vaddr = a.args[1];
            (*r).npage = a.args[2];
            (*r).pfn = if pinned > 0 {
                read::<u64>(a.args[3]).unwrap_or(0)
            } else {
                0
            };
            (*r).pinned = pinned;
        }
    })
}

/// `int vfio_pci_set_irqs_ioctl(struct vfio_pci_core_device *vdev, uint32_t
/// flags, unsigned index, unsigned start, unsigned count, void *data)`
#[kprobe]
pub fn vfio_set_irqs_entry(ctx: ProbeContext) -> u32 {
    done(try_vfio_set_irqs_entry(&ctx))
}

#[inline(always)]
fn try_vfio_set_irqs_entry(ctx: &ProbeContext) -> Outcome {
    // Only threads whose ioctl exit is traced take the name back out.
    if !wanted(bpf_get_current_pid_tgid()) {
        return Ok(());
    }
    hit(VFIO_SET_IRQS_ENTRY);
    let mut name = [0u8; DEV_NAME_LEN];
    vdev_name(ctx.arg::<u64>(0).unwrap_or(0), &mut name);
    let tid = bpf_get_current_pid_tgid() as u32;
    IRQS_DEVICE.insert(&tid, &name, 0).map_err(i64::from)
}

/// `int vfio_msi_set_vector_signal(struct vfio_pci_core_device *vdev,
/// unsigned int vector, int fd, bool msix)`
#[kprobe]
pub fn msi_vector_entry(ctx: ProbeContext) -> u32 {
    done(try_msi_vector_entry(&ctx))
}

#[inline(always)]
fn try_msi_vector_entry(ctx: &ProbeContext) -> Outcome {
    hit(MSI_VECTOR_ENTRY);
    save_args(ctx, MSI_VECTOR_ENTRY, 4);
    Ok(())
}

#[kretprobe]
pub fn msi_vector_return(ctx: RetProbeContext) -> u32 {
    done(try_msi_vector_return(&ctx))
}

#[inline(always)]
fn try_msi_vector_return(ctx: &RetProbeContext) -> Outcome {
    let a = take_args(MSI_VECTOR_ENTRY).or_missing()?;
    hit(MSI_VECTOR_RETURN);
    let ret: i64 = ctx.ret();
    emit::<MsiVectorRecord>(kind::MSI_VECTOR, MSI_VECTOR_RETURN, |r| {
        // SAFETY: the slot `emit` reserved; every field written.
        unsafe {
            (*r).dev = [0; DEV_NAME_LEN];
            vdev_name(a.args[0], &mut (*r).dev);
            (*r).vector = a.args[1] as u32;
            (*r).fd = a.args[2] as i32;
            (*r).msix = (a.args[3] & 0xff) as u32;
            (*r).ret = ret as i32;
        }
    })
}
