//! Per-kind field layouts (format version 2; version 1 is the same without
//! kind 19). Kind ids are part of the file
//! format: append new kinds at the end, never renumber.
//!
//! Field codings: `d` = zigzag varint of the difference to the same field of
//! the previous event of this kind in the chunk (addresses, handles, sizes:
//! repeated or nearby values cost one or two bytes); `v` = varint; `z` =
//! zigzag varint (errno, eventfds); `b` = one byte (bools, small enums);
//! `s` = varint length + UTF-8 bytes; `dev` = [`Device`] (b tag 0 PCI: v seg,
//! b bus, b dev, b func; 1 fd: v; 2 unknown); lists = v length + elements.

use super::{Deltas, SLOTS};
use crate::event::*;
use crate::tracefile::varint::{put_i64, put_u64, Cursor, DecodeResult};

pub(super) const KIND_COUNT: usize = 20;

pub(super) fn kind_id(k: &EventKind) -> u8 {
    match k {
        EventKind::VfioMapDma(_) => 0,
        EventKind::VfioUnmapDma(_) => 1,
        EventKind::VfioIommuInfo(_) => 2,
        EventKind::VfioSetIommu(_) => 3,
        EventKind::VfioPin(_) => 4,
        EventKind::IommuMap(_) => 5,
        EventKind::IommuUnmap(_) => 6,
        EventKind::ViommuReq(_) => 7,
        EventKind::ResvRegion(_) => 8,
        EventKind::VfioSetIrqs(_) => 9,
        EventKind::MsiVector(_) => 10,
        EventKind::MsiWrite(_) => 11,
        EventKind::MsiDoorbellMap(_) => 12,
        EventKind::MsiCookie(_) => 13,
        EventKind::KvmMemslot(_) => 14,
        EventKind::IoasMap(_) => 15,
        EventKind::IoasUnmap(_) => 16,
        EventKind::ProbeStatus(_) => 17,
        EventKind::Drops(_) => 18,
        EventKind::MsiMask(_) => 19,
    }
}

/// Writes fields of one kind.
struct W<'a> {
    out: &'a mut Vec<u8>,
    prev: &'a mut [u64; SLOTS],
}

impl W<'_> {
    fn d(&mut self, slot: usize, v: u64) {
        put_i64(self.out, v.wrapping_sub(self.prev[slot]) as i64);
        self.prev[slot] = v;
    }
    fn v(&mut self, v: impl Into<u64>) {
        put_u64(self.out, v.into());
    }
    fn z(&mut self, v: i32) {
        put_i64(self.out, i64::from(v));
    }
    fn b(&mut self, v: u8) {
        self.out.push(v);
    }
    fn s(&mut self, s: &str) {
        put_u64(self.out, s.len() as u64);
        self.out.extend_from_slice(s.as_bytes());
    }
    fn dev(&mut self, d: Device) {
        match d {
            Device::Pci {
                seg,
                bus,
                dev,
                func,
            } => {
                self.b(0);
                self.v(seg);
                self.out.extend_from_slice(&[bus, dev, func]);
            }
            Device::Fd(fd) => {
                self.b(1);
                self.v(fd);
            }
            Device::Unknown => self.b(2),
        }
    }
}

/// Reads fields of one kind.
struct R<'c, 'a> {
    c: &'c mut Cursor<'a>,
    prev: &'c mut [u64; SLOTS],
}

impl R<'_, '_> {
    fn d(&mut self, slot: usize) -> DecodeResult<u64> {
        let v = self.prev[slot].wrapping_add(self.c.i64()? as u64);
        self.prev[slot] = v;
        Ok(v)
    }
    fn v(&mut self) -> DecodeResult<u64> {
        self.c.u64()
    }
    fn v32(&mut self) -> DecodeResult<u32> {
        self.c.u32()
    }
    fn z(&mut self) -> DecodeResult<i32> {
        self.c.i32()
    }
    fn b(&mut self) -> DecodeResult<u8> {
        self.c.u8()
    }
    fn bool(&mut self) -> DecodeResult<bool> {
        self.c.bool()
    }
    fn s(&mut self) -> DecodeResult<String> {
        self.c.string()
    }
    fn len(&mut self) -> DecodeResult<usize> {
        self.c.len()
    }
    fn dev(&mut self) -> DecodeResult<Device> {
        Ok(match self.b()? {
            0 => {
                let seg = self.c.u16()?;
                let b = self.c.bytes(3)?;
                Device::Pci {
                    seg,
                    bus: b[0],
                    dev: b[1],
                    func: b[2],
                }
            }
            1 => Device::Fd(self.v32()?),
            2 => Device::Unknown,
            t => return self.c.err(format!("bad device tag {t}")),
        })
    }
    /// A small enum stored as its index in `all`.
    fn pick<T: Copy>(&mut self, all: &[T], what: &str) -> DecodeResult<T> {
        let i = self.b()?;
        match all.get(usize::from(i)) {
            Some(v) => Ok(*v),
            None => self.c.err(format!("bad {what} {i}")),
        }
    }
}

const VIOMMU_OPS: [ViommuOp; 5] = [
    ViommuOp::Attach,
    ViommuOp::Detach,
    ViommuOp::Map,
    ViommuOp::Unmap,
    ViommuOp::Probe,
];
const RESV_TYPES: [ResvType; 5] = [
    ResvType::Msi,
    ResvType::SwMsi,
    ResvType::Reserved,
    ResvType::Direct,
    ResvType::DirectRelaxable,
];
const PROBE_STATES: [ProbeState; 5] = [
    ProbeState::Attached,
    ProbeState::MissingSymbol,
    ProbeState::Unsupported,
    ProbeState::Failed,
    ProbeState::Detached,
];

// Exhaustive matches (not a search in the arrays above) so that a new enum
// variant fails to compile here instead of being written as another one.
fn viommu_op_id(v: ViommuOp) -> u8 {
    match v {
        ViommuOp::Attach => 0,
        ViommuOp::Detach => 1,
        ViommuOp::Map => 2,
        ViommuOp::Unmap => 3,
        ViommuOp::Probe => 4,
    }
}

fn resv_type_id(v: ResvType) -> u8 {
    match v {
        ResvType::Msi => 0,
        ResvType::SwMsi => 1,
        ResvType::Reserved => 2,
        ResvType::Direct => 3,
        ResvType::DirectRelaxable => 4,
    }
}

fn probe_state_id(v: ProbeState) -> u8 {
    match v {
        ProbeState::Attached => 0,
        ProbeState::MissingSymbol => 1,
        ProbeState::Unsupported => 2,
        ProbeState::Failed => 3,
        ProbeState::Detached => 4,
    }
}

pub(super) fn encode(k: &EventKind, out: &mut Vec<u8>, deltas: &mut Deltas) {
    let id = usize::from(kind_id(k));
    let mut w = W {
        out,
        prev: &mut deltas.0[id],
    };
    match k {
        EventKind::VfioMapDma(e) => {
            w.d(0, e.container);
            w.d(1, e.iova);
            w.d(2, e.vaddr);
            w.d(3, e.size);
            w.v(e.flags);
            w.z(e.errno);
        }
        EventKind::VfioUnmapDma(e) => {
            w.d(0, e.container);
            w.d(1, e.iova);
            w.d(2, e.size);
            w.d(3, e.unmapped);
            w.v(e.flags);
            w.z(e.errno);
        }
        EventKind::VfioIommuInfo(e) => {
            w.d(0, e.container);
            w.v(e.flags);
            w.v(e.iova_pgsizes);
            w.v(e.iova_ranges.len() as u64);
            for r in &e.iova_ranges {
                w.v(r.start);
                w.v(r.end);
            }
            w.z(e.errno);
        }
        EventKind::VfioSetIommu(e) => {
            w.d(0, e.container);
            w.v(e.iommu_type);
            w.z(e.errno);
        }
        EventKind::VfioPin(e) => {
            w.d(0, e.vaddr);
            w.d(1, e.npages);
            w.d(2, e.pfn);
        }
        EventKind::IommuMap(e) => {
            w.d(0, e.domain);
            w.d(1, e.iova);
            w.d(2, e.paddr);
            w.d(3, e.size);
            w.v(e.prot);
            w.z(e.errno);
        }
        EventKind::IommuUnmap(e) => {
            w.d(0, e.domain);
            w.d(1, e.iova);
            w.d(2, e.size);
            w.d(3, e.unmapped);
        }
        EventKind::ViommuReq(e) => {
            w.b(viommu_op_id(e.op));
            w.v(e.domain);
            w.v(e.endpoint);
            w.d(0, e.virt_start);
            w.d(1, e.virt_end.wrapping_sub(e.virt_start));
            w.d(2, e.phys_start);
            w.v(e.flags);
            w.b(e.status);
            w.v(e.resv.len() as u64);
            for r in &e.resv {
                w.b(r.subtype);
                w.v(r.start);
                w.v(r.end);
            }
        }
        EventKind::ResvRegion(e) => {
            w.v(e.group);
            w.dev(e.device);
            w.v(e.start);
            w.v(e.end);
            w.b(resv_type_id(e.rtype));
        }
        EventKind::VfioSetIrqs(e) => {
            w.dev(e.device);
            w.v(e.index);
            w.v(e.start);
            w.v(e.count);
            w.v(e.flags);
            w.v(e.eventfds.len() as u64);
            for &fd in &e.eventfds {
                w.z(fd);
            }
            w.b(u8::from(e.eventfds_truncated));
            w.z(e.errno);
        }
        EventKind::MsiVector(e) => {
            w.dev(e.device);
            w.v(e.index);
            w.v(e.vector);
            w.z(e.eventfd);
            w.b(u8::from(e.enabled));
        }
        EventKind::MsiWrite(e) => {
            w.dev(e.device);
            w.v(e.vector);
            w.v(e.address);
            w.v(e.data);
        }
        EventKind::MsiDoorbellMap(e) => {
            w.dev(e.device);
            w.v(e.domain);
            w.v(e.iova);
            w.v(e.doorbell_paddr);
        }
        EventKind::MsiCookie(e) => {
            w.v(e.domain);
            w.v(e.base);
        }
        EventKind::MsiMask(e) => {
            w.dev(e.device);
            w.v(e.index);
            w.v(e.vector);
            w.b(u8::from(e.masked));
            w.b(match e.can_mask {
                Some(false) => 0,
                Some(true) => 1,
                None => 2,
            });
            w.b(u8::from(e.is_virtual));
        }
        EventKind::KvmMemslot(e) => {
            w.d(0, e.vm);
            w.v(e.slot);
            w.v(e.gpa);
            w.v(e.size);
            w.v(e.hva);
            w.v(e.flags);
            w.z(e.errno);
        }
        EventKind::IoasMap(e) => {
            w.d(0, e.iommufd);
            w.v(e.ioas);
            w.v(e.flags);
            w.d(1, e.user_va);
            w.d(2, e.length);
            w.d(3, e.iova);
            w.z(e.errno);
        }
        EventKind::IoasUnmap(e) => {
            w.d(0, e.iommufd);
            w.v(e.ioas);
            w.d(1, e.iova);
            w.d(2, e.length);
            w.d(3, e.unmapped);
            w.z(e.errno);
        }
        EventKind::ProbeStatus(e) => {
            w.s(&e.probe);
            w.s(&e.attach);
            w.b(probe_state_id(e.status));
            w.b(u8::from(e.required));
            w.s(&e.reason);
            w.v(e.hits);
        }
        EventKind::Drops(e) => {
            w.v(e.ring_full);
            w.v(e.pending_full);
            w.v(e.read_failed);
            w.v(e.undecodable);
        }
    }
}

pub(super) fn decode(id: u8, c: &mut Cursor<'_>, deltas: &mut Deltas) -> DecodeResult<EventKind> {
    let Some(prev) = deltas.0.get_mut(usize::from(id)) else {
        return c.err(format!("unknown event kind id {id}"));
    };
    let mut r = R { c, prev };
    Ok(match id {
        0 => EventKind::VfioMapDma(VfioMapDma {
            container: r.d(0)?,
            iova: r.d(1)?,
            vaddr: r.d(2)?,
            size: r.d(3)?,
            flags: r.v32()?,
            errno: r.z()?,
        }),
        1 => EventKind::VfioUnmapDma(VfioUnmapDma {
            container: r.d(0)?,
            iova: r.d(1)?,
            size: r.d(2)?,
            unmapped: r.d(3)?,
            flags: r.v32()?,
            errno: r.z()?,
        }),
        2 => {
            let container = r.d(0)?;
            let flags = r.v32()?;
            let iova_pgsizes = r.v()?;
            let n = r.len()?;
            let mut iova_ranges = Vec::with_capacity(n);
            for _ in 0..n {
                iova_ranges.push(Range {
                    start: r.v()?,
                    end: r.v()?,
                });
            }
            EventKind::VfioIommuInfo(VfioIommuInfo {
                container,
                flags,
                iova_pgsizes,
                iova_ranges,
                errno: r.z()?,
            })
        }
        3 => EventKind::VfioSetIommu(VfioSetIommu {
            container: r.d(0)?,
            iommu_type: r.v()?,
            errno: r.z()?,
        }),
        4 => EventKind::VfioPin(VfioPin {
            vaddr: r.d(0)?,
            npages: r.d(1)?,
            pfn: r.d(2)?,
        }),
        5 => EventKind::IommuMap(IommuMap {
            domain: r.d(0)?,
            iova: r.d(1)?,
            paddr: r.d(2)?,
            size: r.d(3)?,
            prot: r.v32()?,
            errno: r.z()?,
        }),
        6 => EventKind::IommuUnmap(IommuUnmap {
            domain: r.d(0)?,
            iova: r.d(1)?,
            size: r.d(2)?,
            unmapped: r.d(3)?,
        }),
        7 => {
            let op = r.pick(&VIOMMU_OPS, "virtio-iommu op")?;
            let domain = r.v32()?;
            let endpoint = r.v32()?;
            let virt_start = r.d(0)?;
            let virt_end = virt_start.wrapping_add(r.d(1)?);
            let phys_start = r.d(2)?;
            let flags = r.v32()?;
            let status = r.b()?;
            let n = r.len()?;
            let mut resv = Vec::with_capacity(n);
            for _ in 0..n {
                resv.push(ResvMem {
                    subtype: r.b()?,
                    start: r.v()?,
                    end: r.v()?,
                });
            }
            EventKind::ViommuReq(ViommuReq {
                op,
                domain,
                endpoint,
                virt_start,
                virt_end,
                phys_start,
                flags,
                status,
                resv,
            })
        }
        8 => EventKind::ResvRegion(ResvRegion {
            group: r.v32()?,
            device: r.dev()?,
            start: r.v()?,
            end: r.v()?,
            rtype: r.pick(&RESV_TYPES, "reserved region type")?,
        }),
        9 => {
            let device = r.dev()?;
            let index = r.v32()?;
            let start = r.v32()?;
            let count = r.v32()?;
            let flags = r.v32()?;
            let n = r.len()?;
            let mut eventfds = Vec::with_capacity(n);
            for _ in 0..n {
                eventfds.push(r.z()?);
            }
            EventKind::VfioSetIrqs(VfioSetIrqs {
                device,
                index,
                start,
                count,
                flags,
                eventfds,
                eventfds_truncated: r.bool()?,
                errno: r.z()?,
            })
        }
        10 => EventKind::MsiVector(MsiVector {
            device: r.dev()?,
            index: r.v32()?,
            vector: r.v32()?,
            eventfd: r.z()?,
            enabled: r.bool()?,
        }),
        11 => EventKind::MsiWrite(MsiWrite {
            device: r.dev()?,
            vector: r.v32()?,
            address: r.v()?,
            data: r.v32()?,
        }),
        12 => EventKind::MsiDoorbellMap(MsiDoorbellMap {
            device: r.dev()?,
            domain: r.v()?,
            iova: r.v()?,
            doorbell_paddr: r.v()?,
        }),
        13 => EventKind::MsiCookie(MsiCookie {
            domain: r.v()?,
            base: r.v()?,
        }),
        14 => EventKind::KvmMemslot(KvmMemslot {
            vm: r.d(0)?,
            slot: r.v32()?,
            gpa: r.v()?,
            size: r.v()?,
            hva: r.v()?,
            flags: r.v32()?,
            errno: r.z()?,
        }),
        15 => EventKind::IoasMap(IoasMap {
            iommufd: r.d(0)?,
            ioas: r.v32()?,
            flags: r.v32()?,
            user_va: r.d(1)?,
            length: r.d(2)?,
            iova: r.d(3)?,
            errno: r.z()?,
        }),
        16 => EventKind::IoasUnmap(IoasUnmap {
            iommufd: r.d(0)?,
            ioas: r.v32()?,
            iova: r.d(1)?,
            length: r.d(2)?,
            unmapped: r.d(3)?,
            errno: r.z()?,
        }),
        17 => EventKind::ProbeStatus(ProbeStatus {
            probe: r.s()?,
            attach: r.s()?,
            status: r.pick(&PROBE_STATES, "probe state")?,
            required: r.bool()?,
            reason: r.s()?,
            hits: r.v()?,
        }),
        18 => EventKind::Drops(Drops {
            ring_full: r.v()?,
            pending_full: r.v()?,
            read_failed: r.v()?,
            undecodable: r.v()?,
        }),
        19 => EventKind::MsiMask(MsiMask {
            device: r.dev()?,
            index: r.v32()?,
            vector: r.v32()?,
            masked: r.bool()?,
            can_mask: r.pick(&[Some(false), Some(true), None], "can_mask")?,
            is_virtual: r.bool()?,
        }),
        _ => return r.c.err(format!("unknown event kind id {id}")),
    })
}
