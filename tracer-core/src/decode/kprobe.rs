//! Decoding of the kernel-function probes' records.

use tracer_common::kprobe::{
    resv_type, DoorbellMapRecord, IommuMapRecord, IommuUnmapRecord, MsiCookieRecord, MsiMaskRecord,
    MsiVectorRecord, MsiWriteRecord, PinRecord, ResvRecord, ViommuReqRecord, DEV_NAME_LEN,
    MAX_RESV,
};

use super::{errno_of, Bytes, DecodeError};
use crate::event::{
    Device, EventKind, IommuMap, IommuUnmap, MsiCookie, MsiDoorbellMap, MsiMask, MsiVector,
    MsiWrite, ResvMem, ResvRegion, ResvType, VfioPin, ViommuOp, ViommuReq,
};

/// VFIO_PCI_MSI_IRQ_INDEX / VFIO_PCI_MSIX_IRQ_INDEX.
const MSI_INDEX: u32 = 1;
const MSIX_INDEX: u32 = 2;
/// `ViommuReq::status` of a request the driver could not queue.
pub const VIOMMU_NOT_QUEUED: u8 = 0xff;
/// VIRTIO_IOMMU_PROBE_T_RESV_MEM, and the mask of the property type field.
const PROBE_T_RESV_MEM: u16 = 1;
const PROBE_T_MASK: u16 = 0xfff;

/// A device from its kernel name (`dev_name()`); non-PCI names are unknown.
pub fn device_from_name(name: &[u8; DEV_NAME_LEN]) -> Device {
    let end = name.iter().position(|&c| c == 0).unwrap_or(DEV_NAME_LEN);
    std::str::from_utf8(&name[..end])
        .ok()
        .and_then(Device::parse)
        .unwrap_or(Device::Unknown)
}

pub(super) fn iommu_map(r: &IommuMapRecord) -> EventKind {
    EventKind::IommuMap(IommuMap {
        domain: r.domain,
        iova: r.iova,
        paddr: r.paddr,
        size: r.size,
        prot: r.prot,
        errno: errno_of(i64::from(r.ret)),
    })
}

pub(super) fn iommu_unmap(r: &IommuUnmapRecord) -> EventKind {
    EventKind::IommuUnmap(IommuUnmap {
        domain: r.domain,
        iova: r.iova,
        size: r.size,
        unmapped: r.unmapped,
    })
}

pub(super) fn pin(r: &PinRecord) -> EventKind {
    EventKind::VfioPin(VfioPin {
        vaddr: r.vaddr,
        // A negative return is an error: nothing pinned.
        npages: u64::try_from(r.pinned).unwrap_or(0),
        pfn: r.pfn,
    })
}

pub(super) fn msi_vector(r: &MsiVectorRecord) -> EventKind {
    EventKind::MsiVector(MsiVector {
        device: device_from_name(&r.dev),
        index: if r.msix != 0 { MSIX_INDEX } else { MSI_INDEX },
        vector: r.vector,
        eventfd: r.fd,
        enabled: r.fd >= 0 && r.ret == 0,
    })
}

pub(super) fn msi_write(r: &MsiWriteRecord) -> EventKind {
    EventKind::MsiWrite(MsiWrite {
        device: device_from_name(&r.dev),
        vector: r.index,
        address: (u64::from(r.address_hi) << 32) | u64::from(r.address_lo),
        data: r.data,
    })
}

/// Which MSI kind a mask probe's function is for (the per-device domain
/// callbacks are one per kind; `pci_msi_*_irq` serve both).
fn mask_probe_index(probe: u16) -> Option<u32> {
    use tracer_common::probe::*;
    match probe {
        PCI_IRQ_MASK_MSI | PCI_IRQ_UNMASK_MSI => Some(MSI_INDEX),
        PCI_IRQ_MASK_MSIX | PCI_IRQ_UNMASK_MSIX => Some(MSIX_INDEX),
        _ => None,
    }
}

pub(super) fn msi_mask(r: &MsiMaskRecord) -> EventKind {
    let known = r.attrs_known & 1 != 0;
    let index = match (mask_probe_index(r.hdr.probe), known) {
        (Some(i), _) => i,
        (None, true) if r.is_msix != 0 => MSIX_INDEX,
        (None, true) => MSI_INDEX,
        (None, false) => 0,
    };
    EventKind::MsiMask(MsiMask {
        device: device_from_name(&r.dev),
        index,
        vector: r.vector,
        masked: r.masked != 0,
        can_mask: known.then_some(r.can_mask != 0),
        is_virtual: known && r.is_virtual != 0,
    })
}

pub(super) fn msi_cookie(r: &MsiCookieRecord) -> EventKind {
    EventKind::MsiCookie(MsiCookie {
        domain: r.domain,
        base: r.base,
    })
}

pub(super) fn doorbell_map(r: &DoorbellMapRecord) -> EventKind {
    EventKind::MsiDoorbellMap(MsiDoorbellMap {
        device: device_from_name(&r.dev),
        domain: r.domain,
        iova: r.iova,
        doorbell_paddr: r.paddr,
    })
}

/// One `resv_region` event per region of the group.
pub(super) fn resv_regions(
    r: &ResvRecord,
    mut push: impl FnMut(EventKind),
) -> Result<(), DecodeError> {
    let n = r.count as usize;
    if n > MAX_RESV {
        return Err(DecodeError::BadCount {
            what: "reserved regions",
            value: u64::from(r.count),
            max: MAX_RESV as u64,
        });
    }
    for e in &r.entries[..n] {
        let rtype = match e.rtype {
            resv_type::DIRECT => ResvType::Direct,
            resv_type::DIRECT_RELAXABLE => ResvType::DirectRelaxable,
            resv_type::RESERVED => ResvType::Reserved,
            resv_type::MSI => ResvType::Msi,
            resv_type::SW_MSI => ResvType::SwMsi,
            _ => ResvType::Reserved,
        };
        push(EventKind::ResvRegion(ResvRegion {
            group: r.group,
            device: Device::Unknown,
            start: e.start,
            end: e.start.saturating_add(e.length).saturating_sub(1),
            rtype,
        }));
    }
    Ok(())
}

/// The wire request (include/uapi/linux/virtio_iommu.h) and its status.
pub(super) fn viommu_req(r: &ViommuReqRecord) -> Result<EventKind, DecodeError> {
    let q = Bytes(&r.req);
    let op = match r.req[0] {
        1 => ViommuOp::Attach,
        2 => ViommuOp::Detach,
        3 => ViommuOp::Map,
        4 => ViommuOp::Unmap,
        5 => ViommuOp::Probe,
        other => return Err(DecodeError::UnknownViommuOp(other)),
    };
    let mut req = ViommuReq {
        op,
        domain: 0,
        endpoint: 0,
        virt_start: 0,
        virt_end: 0,
        phys_start: 0,
        flags: 0,
        status: if r.add_ret != 0 {
            VIOMMU_NOT_QUEUED
        } else {
            r.status as u8
        },
        resv: Vec::new(),
    };
    match op {
        ViommuOp::Attach | ViommuOp::Detach => {
            req.domain = q.u32(4);
            req.endpoint = q.u32(8);
            req.flags = q.u32(12);
        }
        ViommuOp::Map => {
            req.domain = q.u32(4);
            req.virt_start = q.u64(8);
            req.virt_end = q.u64(16);
            req.phys_start = q.u64(24);
            req.flags = q.u32(32);
        }
        ViommuOp::Unmap => {
            req.domain = q.u32(4);
            req.virt_start = q.u64(8);
            req.virt_end = q.u64(16);
        }
        ViommuOp::Probe => {
            req.endpoint = q.u32(4);
            let n = (r.props_len as usize).min(r.props.len());
            req.resv = probe_resv_mem(Bytes(&r.props[..n]));
        }
    }
    Ok(EventKind::ViommuReq(req))
}

/// RESV_MEM properties of a PROBE reply: `{u16 type; u16 length}` headers,
/// then `{u8 subtype; u8 reserved[3]; u64 start; u64 end}`.
fn probe_resv_mem(p: Bytes<'_>) -> Vec<ResvMem> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while p.has(at, 4) {
        let ptype = p.u16(at) & PROBE_T_MASK;
        let len = usize::from(p.u16(at + 2));
        if ptype == 0 {
            break;
        }
        if ptype == PROBE_T_RESV_MEM && len >= 20 && p.has(at + 4, 20) {
            out.push(ResvMem {
                subtype: p.0[at + 4],
                start: p.u64(at + 8),
                end: p.u64(at + 16),
            });
        }
        at += 4 + len;
    }
    out
}
