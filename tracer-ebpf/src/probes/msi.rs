//! PCI MSI (drivers/pci/msi/): the message actually written to a device.

use aya_ebpf::{macros::kprobe, programs::ProbeContext};
use tracer_common::{
    kind,
    kprobe::{MsiWriteRecord, DEV_NAME_LEN},
    probe::PCI_WRITE_MSI,
};

use crate::{
    maps::{fill_header, hit, reserve, SUBMIT_FLAGS},
    offsets::{dev_name, msi_desc, msi_msg},
};

/// `void __pci_write_msi_msg(struct msi_desc *entry, struct msi_msg *msg)`
#[kprobe]
pub fn pci_write_msi_msg(ctx: ProbeContext) -> u32 {
    hit(PCI_WRITE_MSI);
    let Some(desc) = msi_desc(ctx.arg::<u64>(0).unwrap_or(0)) else {
        return 0;
    };
    let Some((lo, hi, data)) = msi_msg(ctx.arg::<u64>(1).unwrap_or(0)) else {
        return 0;
    };
    if let Some(mut e) = reserve::<MsiWriteRecord>() {
        let r = e.as_mut_ptr();
        // SAFETY: exclusively owned ring slot; every field written.
        unsafe {
            fill_header(&mut (*r).hdr, kind::MSI_WRITE, PCI_WRITE_MSI);
            (*r).dev = [0; DEV_NAME_LEN];
            dev_name(desc.dev, &mut (*r).dev);
            (*r).index = u32::from(desc.index);
            (*r).address_lo = lo;
            (*r).address_hi = hi;
            (*r).data = data;
        }
        e.submit(SUBMIT_FLAGS);
    }
    0
}
