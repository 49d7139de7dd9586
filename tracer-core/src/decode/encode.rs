//! The inverse of [`super::decode_into`] for the kinds of a map/unmap
//! workload: an [`Event`] → the bytes of the ring-buffer record a probe
//! emits for it, built from the `tracer-common` structs (so a layout change
//! there reaches this encoder). For benchmarks and tests (feature `encode`).
//!
//! Fields a record does not carry are dropped, as on the wire (an UNMAP's
//! flags, the endpoint of a MAP, ...); `decode_into` of the bytes gives the
//! event back whenever the event is one a probe could have produced.

use tracer_common::{
    ioctl::{IoctlHead, IoctlRecord, IOCTL_DATA_MAX},
    kind,
    kprobe::DEV_NAME_LEN,
    EventHeader,
};

use super::WireStruct;
use crate::event::{Device, Event};

/// Appends the record of `ev` to `out`; returns its length. `None` (and
/// nothing appended) for kinds not covered here (MSI, reserved regions,
/// iommufd, GET_INFO, SET_IRQS, health) and values no record can carry (a
/// container of another process, a negative errno).
pub fn encode_into(ev: &Event, out: &mut Vec<u8>) -> Option<usize> {
    let before = out.len();
    // Each kind's record is built in its module (event/kinds/).
    ev.kind.to_wire(ev, out)?;
    Some(out.len() - before)
}

/// The raw bytes of a wire record.
pub(super) fn bytes_of<T: WireStruct>(r: &T) -> &[u8] {
    // SAFETY: wire records are #[repr(C)] integer structs without padding
    // (the decoder's tests check their sizes), so every byte is initialized.
    unsafe { std::slice::from_raw_parts((r as *const T).cast::<u8>(), std::mem::size_of::<T>()) }
}

pub(crate) fn push<T: WireStruct>(r: &T, out: &mut Vec<u8>) {
    out.extend_from_slice(bytes_of(r));
}

/// An ioctl as the probes send it (`kind::IOCTL_VAR`): the head, then only
/// the captured bytes.
pub(crate) fn push_ioctl(r: &IoctlRecord, out: &mut Vec<u8>) {
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
        arr_len: 0,
        _pad: 0,
        dev: r.dev,
    };
    push(&head, out);
    out.extend_from_slice(&r.in_data[..r.in_len as usize]);
    out.extend_from_slice(&r.out_data[..r.out_len as usize]);
}

pub(crate) fn header(ev: &Event, kind: u16) -> EventHeader {
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
pub(crate) fn ret_of(errno: i32) -> Option<i64> {
    (errno >= 0).then(|| -i64::from(errno))
}

/// The ioctl record of `ev` on `handle` (`fd_handle` of the event's own
/// process: the decoder rebuilds it from the header's pid and the fd).
pub(crate) fn ioctl(
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

/// `dev_name()` of a PCI device as the kernel writes it.
pub(crate) fn dev_name(d: Device) -> Option<[u8; DEV_NAME_LEN]> {
    let Device::Pci { .. } = d else {
        return None;
    };
    let s = d.to_string();
    let mut out = [0u8; DEV_NAME_LEN];
    out.get_mut(..s.len())?.copy_from_slice(s.as_bytes());
    Some(out)
}

/// Little-endian struct builder.
#[derive(Clone, Default)]
pub(crate) struct Le(pub Vec<u8>);

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
    use crate::decode::{decode_into, VIOMMU_NOT_QUEUED};
    use crate::event::*;

    fn ev(pid: u32, kind: EventKind) -> Event {
        crate::event::build::event(77, 2, pid, pid + 1, "qemu", kind)
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
