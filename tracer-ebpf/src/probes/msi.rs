//! PCI MSI (drivers/pci/msi/): the message actually written to a device.

use aya_ebpf::{macros::kprobe, programs::ProbeContext};
use tracer_common::{
    kind,
    kprobe::{MsiMaskRecord, MsiWriteRecord, DEV_NAME_LEN},
    probe::{
        PCI_IRQ_MASK_MSI, PCI_IRQ_MASK_MSIX, PCI_IRQ_SHUTDOWN_MSI, PCI_IRQ_SHUTDOWN_MSIX,
        PCI_IRQ_STARTUP_MSI, PCI_IRQ_STARTUP_MSIX, PCI_IRQ_UNMASK_MSI, PCI_IRQ_UNMASK_MSIX,
        PCI_MSI_MASK_IRQ, PCI_MSI_UNMASK_IRQ, PCI_WRITE_MSI,
    },
};

use crate::{
    emit::{done, emit, OrMissing, Outcome},
    maps::hit,
    offsets::{dev_name, irq_msi, msi_desc, msi_msg},
};

/// `void __pci_write_msi_msg(struct msi_desc *entry, struct msi_msg *msg)`
#[kprobe]
pub fn pci_write_msi_msg(ctx: ProbeContext) -> u32 {
    done(try_pci_write_msi_msg(&ctx))
}

#[inline(always)]
fn try_pci_write_msi_msg(ctx: &ProbeContext) -> Outcome {
    hit(PCI_WRITE_MSI);
    let desc = msi_desc(ctx.arg::<u64>(0).unwrap_or(0)).or_missing()?;
    let (lo, hi, data) = msi_msg(ctx.arg::<u64>(1).unwrap_or(0)).or_missing()?;
    emit::<MsiWriteRecord>(kind::MSI_WRITE, PCI_WRITE_MSI, |r| {
        // SAFETY: the slot `emit` reserved; every field written.
        unsafe {
            (*r).dev = [0; DEV_NAME_LEN];
            dev_name(desc.dev, &mut (*r).dev);
            (*r).index = u32::from(desc.index);
            (*r).address_lo = lo;
            (*r).address_hi = hi;
            (*r).data = data;
        }
    })
}

/// Body of every mask/unmask probe: `void f(struct irq_data *data)`.
#[inline(always)]
fn try_mask(ctx: &ProbeContext, probe: u16, masked: u8) -> Outcome {
    hit(probe);
    let m = irq_msi(ctx.arg::<u64>(0).unwrap_or(0)).or_missing()?;
    let (is_msix, can_mask, is_virtual, known) = match m.attrs {
        Some((x, c, v)) => (x, c, v, 1),
        None => (0, 0, 0, 0),
    };
    emit::<MsiMaskRecord>(kind::MSI_MASK, probe, |r| {
        // SAFETY: the slot `emit` reserved; every field written.
        unsafe {
            (*r).dev = [0; DEV_NAME_LEN];
            dev_name(m.dev, &mut (*r).dev);
            (*r).vector = m.vector;
            (*r).masked = masked;
            (*r).is_msix = is_msix;
            (*r).can_mask = can_mask;
            (*r).is_virtual = is_virtual;
            (*r).attrs_known = known;
        }
    })
}

/// `static void pci_irq_mask_msi(struct irq_data *data)` (per-device
/// PCI-MSI domain chip).
#[kprobe]
pub fn pci_irq_mask_msi(ctx: ProbeContext) -> u32 {
    done(try_mask(&ctx, PCI_IRQ_MASK_MSI, 1))
}

#[kprobe]
pub fn pci_irq_unmask_msi(ctx: ProbeContext) -> u32 {
    done(try_mask(&ctx, PCI_IRQ_UNMASK_MSI, 0))
}

/// `static void pci_irq_mask_msix(struct irq_data *data)` (per-device
/// PCI-MSIX domain chip).
#[kprobe]
pub fn pci_irq_mask_msix(ctx: ProbeContext) -> u32 {
    done(try_mask(&ctx, PCI_IRQ_MASK_MSIX, 1))
}

#[kprobe]
pub fn pci_irq_unmask_msix(ctx: ProbeContext) -> u32 {
    done(try_mask(&ctx, PCI_IRQ_UNMASK_MSIX, 0))
}

/// `void pci_msi_mask_irq(struct irq_data *data)` (exported; the chip
/// callback of global PCI/MSI domains; silent on 6.12 x86 and arm64).
#[kprobe]
pub fn pci_msi_mask_irq(ctx: ProbeContext) -> u32 {
    done(try_mask(&ctx, PCI_MSI_MASK_IRQ, 1))
}

#[kprobe]
pub fn pci_msi_unmask_irq(ctx: ProbeContext) -> u32 {
    done(try_mask(&ctx, PCI_MSI_UNMASK_IRQ, 0))
}

/// `static void pci_irq_shutdown_msi(struct irq_data *data)`: 7.x's per-device
/// PCI-MSI chip masks here on free_irq() (irq_shutdown no longer calls
/// irq_mask when the chip has irq_shutdown). Same record as a mask.
#[kprobe]
pub fn pci_irq_shutdown_msi(ctx: ProbeContext) -> u32 {
    done(try_mask(&ctx, PCI_IRQ_SHUTDOWN_MSI, 1))
}

/// `static unsigned int pci_irq_startup_msi(struct irq_data *data)`: the
/// unmask on request_irq() (7.x).
#[kprobe]
pub fn pci_irq_startup_msi(ctx: ProbeContext) -> u32 {
    done(try_mask(&ctx, PCI_IRQ_STARTUP_MSI, 0))
}

/// `static void pci_irq_shutdown_msix(struct irq_data *data)` (7.x).
#[kprobe]
pub fn pci_irq_shutdown_msix(ctx: ProbeContext) -> u32 {
    done(try_mask(&ctx, PCI_IRQ_SHUTDOWN_MSIX, 1))
}

/// `static unsigned int pci_irq_startup_msix(struct irq_data *data)` (7.x).
#[kprobe]
pub fn pci_irq_startup_msix(ctx: ProbeContext) -> u32 {
    done(try_mask(&ctx, PCI_IRQ_STARTUP_MSIX, 0))
}
