//! The inverse of [`super::decode_into`] for the kinds of a map/unmap
//! workload: an [`Event`] → the bytes of the ring-buffer record a probe
//! emits for it, built from the `tracer-common` structs (so a layout change
//! there reaches this encoder). For benchmarks and tests (feature `encode`).
//!
//! Fields a record does not carry are dropped, as on the wire (an UNMAP's
//! flags, the endpoint of a MAP, ...); `decode_into` of the bytes gives the
//! event back whenever the event is one a probe could have produced.

use tracer_common::{
    ioctl::{self as cmds, IoctlHead, IoctlRecord, IOCTL_DATA_MAX},
    kind,
    kprobe::{
        IommuMapRecord, IommuUnmapRecord, MsiMaskRecord, PinRecord, ViommuReqRecord, DEV_NAME_LEN,
        VIOMMU_PROPS_MAX, VIOMMU_REQ_MAX,
    },
    EventHeader,
};

use super::{WireStruct, VIOMMU_NOT_QUEUED};
use crate::event::{Device, Event, EventKind, MsiMask, ViommuOp, ViommuReq};

/// Appends the record of `ev` to `out`; returns its length. `None` (and
/// nothing appended) for kinds not covered here (MSI, reserved regions,
/// iommufd, GET_INFO, SET_IRQS, health) and values no record can carry (a
/// container of another process, a negative errno).
pub fn encode_into(ev: &Event, out: &mut Vec<u8>) -> Option<usize> {
    let before = out.len();
    match &ev.kind {
        EventKind::VfioMapDma(m) => {
            let d = Le::default()
                .u32(32)
                .u32(m.flags)
                .u64(m.vaddr)
                .u64(m.iova)
                .u64(m.size);
            let r = ioctl(
                ev,
                m.container,
                cmds::VFIO_IOMMU_MAP_DMA,
                0,
                m.errno,
                &d.0,
                &[],
            )?;
            push_ioctl(&r, out);
        }
        EventKind::VfioUnmapDma(u) => {
            let d = Le::default().u32(24).u32(u.flags).u64(u.iova);
            // The kernel writes the bytes it unmapped back into `size`.
            let back = d.clone().u64(u.unmapped);
            let d = d.u64(u.size);
            let cmd = cmds::VFIO_IOMMU_UNMAP_DMA;
            push_ioctl(
                &ioctl(ev, u.container, cmd, 0, u.errno, &d.0, &back.0)?,
                out,
            );
        }
        EventKind::VfioSetIommu(s) => {
            // The argument is the IOMMU type itself.
            let cmd = cmds::VFIO_SET_IOMMU;
            push_ioctl(
                &ioctl(ev, s.container, cmd, s.iommu_type, s.errno, &[], &[])?,
                out,
            );
        }
        EventKind::KvmMemslot(m) => {
            let d = Le::default()
                .u32(m.slot)
                .u32(m.flags)
                .u64(m.gpa)
                .u64(m.size)
                .u64(m.hva);
            let cmd = cmds::KVM_SET_USER_MEMORY_REGION;
            push_ioctl(&ioctl(ev, m.vm, cmd, 0, m.errno, &d.0, &[])?, out);
        }
        EventKind::VfioPin(p) => push(
            &PinRecord {
                hdr: header(ev, kind::VFIO_PIN),
                vaddr: p.vaddr,
                npage: p.npages,
                pfn: p.pfn,
                pinned: i64::try_from(p.npages).ok()?,
            },
            out,
        ),
        EventKind::IommuMap(m) => push(
            &IommuMapRecord {
                hdr: header(ev, kind::IOMMU_MAP),
                domain: m.domain,
                iova: m.iova,
                paddr: m.paddr,
                size: m.size,
                prot: m.prot,
                ret: i32::try_from(ret_of(m.errno)?).ok()?,
            },
            out,
        ),
        EventKind::IommuUnmap(u) => push(
            &IommuUnmapRecord {
                hdr: header(ev, kind::IOMMU_UNMAP),
                domain: u.domain,
                iova: u.iova,
                size: u.size,
                unmapped: u.unmapped,
            },
            out,
        ),
        EventKind::ViommuReq(r) => push(&viommu(ev, r)?, out),
        EventKind::MsiMask(m) => push(&msi_mask(ev, m)?, out),
        _ => return None,
    }
    Some(out.len() - before)
}

/// The raw bytes of a wire record.
pub(super) fn bytes_of<T: WireStruct>(r: &T) -> &[u8] {
    // SAFETY: wire records are #[repr(C)] integer structs without padding
    // (the decoder's tests check their sizes), so every byte is initialized.
    unsafe { std::slice::from_raw_parts((r as *const T).cast::<u8>(), std::mem::size_of::<T>()) }
}

fn push<T: WireStruct>(r: &T, out: &mut Vec<u8>) {
    out.extend_from_slice(bytes_of(r));
}

/// An ioctl as the probes send it (`kind::IOCTL_VAR`): the head, then only
/// the captured bytes.
fn push_ioctl(r: &IoctlRecord, out: &mut Vec<u8>) {
    let mut hdr = r.hdr;
    hdr.kind = kind::IOCTL_VAR;
    let head = IoctlHead {
        hdr,
        enter_ns: r.enter_ns,
        arg: r.arg,
        ret: r.ret,
        fd: r.fd,
        cmd: r.cmd,
        in_len: r.in_len,
        out_len: r.out_len,
        dev: r.dev,
    };
    push(&head, out);
    out.extend_from_slice(&r.in_data[..r.in_len as usize]);
    out.extend_from_slice(&r.out_data[..r.out_len as usize]);
}

fn header(ev: &Event, kind: u16) -> EventHeader {
    EventHeader {
        kind,
        probe: 0,
        cpu: 0,
        ts_ns: ev.ts_ns,
        pid: ev.pid,
        tid: ev.tid,
        comm: ev.comm.0,
    }
}

/// A syscall's return for an errno field (0 = success).
fn ret_of(errno: i32) -> Option<i64> {
    (errno >= 0).then(|| -i64::from(errno))
}

/// The ioctl record of `ev` on `handle` (`fd_handle` of the event's own
/// process: the decoder rebuilds it from the header's pid and the fd).
fn ioctl(
    ev: &Event,
    handle: u64,
    cmd: u32,
    arg: u64,
    errno: i32,
    data_in: &[u8],
    data_out: &[u8],
) -> Option<IoctlRecord> {
    if (handle >> 32) as u32 != ev.pid {
        return None;
    }
    let hdr = header(ev, kind::IOCTL);
    ioctl_record(
        hdr,
        handle as u32,
        cmd,
        arg,
        ret_of(errno)?,
        data_in,
        data_out,
    )
}

/// An ioctl record as the enter and exit probes fill it.
pub(super) fn ioctl_record(
    hdr: EventHeader,
    fd: u32,
    cmd: u32,
    arg: u64,
    ret: i64,
    data_in: &[u8],
    data_out: &[u8],
) -> Option<IoctlRecord> {
    let mut rec = IoctlRecord {
        hdr,
        enter_ns: hdr.ts_ns,
        arg,
        ret,
        fd,
        cmd,
        in_len: u32::try_from(data_in.len()).ok()?,
        out_len: u32::try_from(data_out.len()).ok()?,
        dev: [0; DEV_NAME_LEN],
        in_data: [0; IOCTL_DATA_MAX],
        out_data: [0; IOCTL_DATA_MAX],
    };
    rec.in_data
        .get_mut(..data_in.len())?
        .copy_from_slice(data_in);
    rec.out_data
        .get_mut(..data_out.len())?
        .copy_from_slice(data_out);
    Some(rec)
}

/// The request as the driver queues it (include/uapi/linux/virtio_iommu.h:
/// a `{u8 type; u8 reserved[3]}` head, then the body), with its status.
/// The mask probe's record: the per-kind callback's probe id when the
/// event's index says which kind, else `pci_msi_(un)mask_irq`'s.
fn msi_mask(ev: &Event, m: &MsiMask) -> Option<MsiMaskRecord> {
    use tracer_common::probe::*;
    let probe = match (m.index, m.masked) {
        (1, true) => PCI_IRQ_MASK_MSI,
        (1, false) => PCI_IRQ_UNMASK_MSI,
        (2, true) => PCI_IRQ_MASK_MSIX,
        (2, false) => PCI_IRQ_UNMASK_MSIX,
        // Index 0 (unknown) only comes from the generic callbacks without
        // the flags; other indexes no probe produces.
        (0, true) if m.can_mask.is_none() => PCI_MSI_MASK_IRQ,
        (0, false) if m.can_mask.is_none() => PCI_MSI_UNMASK_IRQ,
        _ => return None,
    };
    if m.is_virtual && m.can_mask.is_none() {
        return None;
    }
    let mut hdr = header(ev, kind::MSI_MASK);
    hdr.probe = probe;
    Some(MsiMaskRecord {
        hdr,
        dev: dev_name(m.device)?,
        vector: m.vector,
        masked: u8::from(m.masked),
        is_msix: u8::from(m.index == 2),
        can_mask: u8::from(m.can_mask == Some(true)),
        is_virtual: u8::from(m.is_virtual),
        attrs_known: u32::from(m.can_mask.is_some()),
    })
}

/// `dev_name()` of a PCI device as the kernel writes it.
fn dev_name(d: Device) -> Option<[u8; DEV_NAME_LEN]> {
    let Device::Pci { .. } = d else {
        return None;
    };
    let s = d.to_string();
    let mut out = [0u8; DEV_NAME_LEN];
    out.get_mut(..s.len())?.copy_from_slice(s.as_bytes());
    Some(out)
}

fn viommu(ev: &Event, r: &ViommuReq) -> Option<ViommuReqRecord> {
    let req = match r.op {
        ViommuOp::Attach => Le::default()
            .u32(1)
            .u32(r.domain)
            .u32(r.endpoint)
            .u32(r.flags),
        ViommuOp::Detach => Le::default()
            .u32(2)
            .u32(r.domain)
            .u32(r.endpoint)
            .u32(r.flags),
        ViommuOp::Map => Le::default()
            .u32(3)
            .u32(r.domain)
            .u64(r.virt_start)
            .u64(r.virt_end)
            .u64(r.phys_start)
            .u32(r.flags),
        ViommuOp::Unmap => Le::default()
            .u32(4)
            .u32(r.domain)
            .u64(r.virt_start)
            .u64(r.virt_end)
            .u32(0),
        ViommuOp::Probe => Le::default().u32(5).u32(r.endpoint),
    };
    // PROBE's RESV_MEM properties: {u16 type 1; u16 length 20} + body.
    let mut props = Le::default();
    for m in &r.resv {
        props = props
            .u16(1)
            .u16(20)
            .u32(u32::from(m.subtype))
            .u64(m.start)
            .u64(m.end);
    }
    let not_queued = r.status == VIOMMU_NOT_QUEUED;
    let mut rec = ViommuReqRecord {
        hdr: header(ev, kind::VIOMMU_REQ),
        add_ns: ev.ts_ns,
        // The whole request: head, body and the 4-byte tail.
        len: req.0.len() as u32 + 4,
        add_ret: if not_queued { -12 } else { 0 },
        status: if not_queued { 0 } else { u32::from(r.status) },
        props_len: props.0.len() as u32,
        req: [0; VIOMMU_REQ_MAX],
        props: [0; VIOMMU_PROPS_MAX],
    };
    rec.req[..req.0.len()].copy_from_slice(&req.0);
    rec.props
        .get_mut(..props.0.len())?
        .copy_from_slice(&props.0);
    Some(rec)
}

/// Little-endian struct builder.
#[derive(Clone, Default)]
pub(super) struct Le(pub Vec<u8>);

impl Le {
    pub fn u16(mut self, v: u16) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    #[cfg(test)]
    pub fn i32(mut self, v: i32) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::decode_into;
    use crate::event::*;

    fn ev(pid: u32, kind: EventKind) -> Event {
        Event {
            ts_ns: 77,
            node: 2,
            pid,
            tid: pid + 1,
            comm: Comm::new("qemu"),
            kind,
        }
    }

    fn round_trip(e: &Event) -> Vec<Event> {
        let mut bytes = Vec::new();
        let n = encode_into(e, &mut bytes).expect("encodable");
        assert_eq!(n, bytes.len());
        let mut out = Vec::new();
        decode_into(&bytes, e.node, &mut out).expect("decodes");
        out
    }

    #[test]
    fn decoding_gives_the_event_back() {
        let c = fd_handle(9, 20);
        // Only the fields each op's request carries.
        let none = ViommuReq {
            op: ViommuOp::Probe,
            domain: 0,
            endpoint: 0,
            virt_start: 0,
            virt_end: 0,
            phys_start: 0,
            flags: 0,
            status: 0,
            resv: vec![],
        };
        let map = ViommuReq {
            op: ViommuOp::Map,
            domain: 3,
            virt_start: 0x1000,
            virt_end: 0x1fff,
            phys_start: 0x9000,
            flags: 1,
            ..none.clone()
        };
        let unmap = ViommuReq {
            op: ViommuOp::Unmap,
            domain: 3,
            virt_start: 0x1000,
            virt_end: 0x1fff,
            status: 4,
            ..none.clone()
        };
        let attach = ViommuReq {
            op: ViommuOp::Attach,
            domain: 3,
            endpoint: 8,
            flags: 1,
            status: VIOMMU_NOT_QUEUED,
            ..none.clone()
        };
        let detach = ViommuReq {
            op: ViommuOp::Detach,
            status: 0,
            ..attach.clone()
        };
        let msi = ResvMem {
            subtype: 1,
            start: 0xfee0_0000,
            end: 0xfeef_ffff,
        };
        let kinds = [
            EventKind::VfioMapDma(VfioMapDma {
                container: c,
                iova: 0x1000,
                vaddr: 0x7f00_0000_0000,
                size: 0x2000,
                flags: 3,
                errno: 0,
            }),
            EventKind::VfioUnmapDma(VfioUnmapDma {
                container: c,
                iova: 0x1000,
                size: 0x2000,
                unmapped: 0x1000,
                flags: 0,
                errno: 0,
            }),
            EventKind::VfioSetIommu(VfioSetIommu {
                container: c,
                iommu_type: 3,
                errno: 16,
            }),
            EventKind::KvmMemslot(KvmMemslot {
                vm: fd_handle(9, 12),
                slot: 1,
                gpa: 0x4000_0000,
                size: 1 << 30,
                hva: 0x7f00_0000_0000,
                flags: 2,
                errno: 0,
            }),
            EventKind::VfioPin(VfioPin {
                vaddr: 0x7f00_0000_0000,
                npages: 4,
                pfn: 0x1234,
            }),
            EventKind::IommuMap(IommuMap {
                domain: 0xffff_8880_0a00_0000,
                iova: 0x1000,
                paddr: 0x1234_0000,
                size: 0x1000,
                prot: 3,
                errno: 22,
            }),
            EventKind::IommuUnmap(IommuUnmap {
                domain: 0xffff_8880_0a00_0000,
                iova: 0x1000,
                size: 0x2000,
                unmapped: 0x1000,
            }),
            EventKind::MsiMask(MsiMask {
                device: Device::Pci {
                    seg: 0,
                    bus: 0,
                    dev: 3,
                    func: 0,
                },
                index: 2,
                vector: 4,
                masked: true,
                can_mask: Some(true),
                is_virtual: false,
            }),
            EventKind::MsiMask(MsiMask {
                device: Device::Pci {
                    seg: 0,
                    bus: 0,
                    dev: 2,
                    func: 0,
                },
                index: 1,
                vector: 0,
                masked: false,
                can_mask: Some(false),
                is_virtual: false,
            }),
            EventKind::MsiMask(MsiMask {
                device: Device::Pci {
                    seg: 0,
                    bus: 0,
                    dev: 3,
                    func: 0,
                },
                index: 0,
                vector: 2,
                masked: true,
                can_mask: None,
                is_virtual: false,
            }),
            EventKind::MsiMask(MsiMask {
                device: Device::Pci {
                    seg: 0,
                    bus: 0,
                    dev: 3,
                    func: 0,
                },
                index: 2,
                vector: 9,
                masked: false,
                can_mask: Some(false),
                is_virtual: true,
            }),
            EventKind::ViommuReq(map),
            EventKind::ViommuReq(unmap),
            EventKind::ViommuReq(attach),
            EventKind::ViommuReq(detach),
            EventKind::ViommuReq(ViommuReq {
                endpoint: 8,
                resv: vec![msi, msi],
                ..none
            }),
        ];
        for k in kinds {
            let e = ev(9, k);
            assert_eq!(round_trip(&e), vec![e.clone()]);
        }
    }

    #[test]
    fn what_no_record_carries_is_refused() {
        let mut out = Vec::new();
        let other_process = ev(
            9,
            EventKind::VfioSetIommu(VfioSetIommu {
                container: fd_handle(10, 20),
                iommu_type: 3,
                errno: 0,
            }),
        );
        assert_eq!(encode_into(&other_process, &mut out), None);
        let health = ev(
            9,
            EventKind::Drops(Drops {
                ring_full: 1,
                pending_full: 0,
                read_failed: 0,
                undecodable: 0,
            }),
        );
        assert_eq!(encode_into(&health, &mut out), None);
        assert!(out.is_empty());
    }
}
