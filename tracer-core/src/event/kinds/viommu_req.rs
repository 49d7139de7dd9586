use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Category, Kind, KindId};
use crate::event::build::Task;
use crate::event::Event;
use crate::tracefile::codec::fields::{FieldReader, FieldWriter};
use crate::tracefile::varint::DecodeResult;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ViommuOp {
    Attach,
    Detach,
    Map,
    Unmap,
    Probe,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViommuReq {
    pub op: ViommuOp,
    /// virtio-iommu domain id (0 for PROBE).
    pub domain: u32,
    /// Endpoint id (ATTACH, DETACH, PROBE; 0 otherwise).
    pub endpoint: u32,
    /// MAP/UNMAP range, inclusive end (0 otherwise).
    pub virt_start: u64,
    pub virt_end: u64,
    pub phys_start: u64,
    /// MAP: READ 1, WRITE 2, MMIO 4; ATTACH: BYPASS 1.
    pub flags: u32,
    /// VIRTIO_IOMMU_S_*: OK 0, IOERR 1, UNSUPP 2, DEVERR 3, INVAL 4, RANGE 5,
    /// NOENT 6, FAULT 7, NOMEM 8.
    pub status: u8,
    /// PROBE: the RESV_MEM properties the device returned.
    pub resv: Vec<ResvMem>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResvMem {
    /// VIRTIO_IOMMU_RESV_MEM_T_RESERVED 0, _MSI 1.
    pub subtype: u8,
    pub start: u64,
    /// Inclusive.
    pub end: u64,
}

/// Trace-file ids of the ops: their index.
const VIOMMU_OPS: [ViommuOp; 5] = [
    ViommuOp::Attach,
    ViommuOp::Detach,
    ViommuOp::Map,
    ViommuOp::Unmap,
    ViommuOp::Probe,
];

// An exhaustive match (not a search in the array above) so that a new op
// fails to compile here instead of being written as another one.
fn op_id(v: ViommuOp) -> u8 {
    match v {
        ViommuOp::Attach => 0,
        ViommuOp::Detach => 1,
        ViommuOp::Map => 2,
        ViommuOp::Unmap => 3,
        ViommuOp::Probe => 4,
    }
}

impl fmt::Display for ViommuReq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "op={:?} domain={}", self.op, self.domain)?;
        match self.op {
            ViommuOp::Map | ViommuOp::Unmap => write!(
                f,
                " virt={:#x}-{:#x} phys={:#x} flags={:#x}",
                self.virt_start, self.virt_end, self.phys_start, self.flags
            )?,
            _ => write!(f, " endpoint={} flags={:#x}", self.endpoint, self.flags)?,
        }
        for r in &self.resv {
            write!(f, " resv[{}]={:#x}-{:#x}", r.subtype, r.start, r.end)?;
        }
        write!(f, " status={}", self.status)
    }
}

impl Kind for ViommuReq {
    const CATEGORY: Category = Category::Guest;
    const SUBSYSTEM: &'static str = "viommu";

    fn encode(&self, w: &mut FieldWriter<'_>) {
        w.b(op_id(self.op));
        w.v(self.domain);
        w.v(self.endpoint);
        w.d(0, self.virt_start);
        w.d(1, self.virt_end.wrapping_sub(self.virt_start));
        w.d(2, self.phys_start);
        w.v(self.flags);
        w.b(self.status);
        w.list(&self.resv, |w, r| {
            w.b(r.subtype);
            w.v(r.start);
            w.v(r.end);
        });
    }

    fn decode(r: &mut FieldReader<'_, '_>) -> DecodeResult<Self> {
        let op = r.pick(&VIOMMU_OPS, "virtio-iommu op")?;
        let domain = r.v32()?;
        let endpoint = r.v32()?;
        let virt_start = r.d(0)?;
        let virt_end = virt_start.wrapping_add(r.d(1)?);
        Ok(ViommuReq {
            op,
            domain,
            endpoint,
            virt_start,
            virt_end,
            phys_start: r.d(2)?,
            flags: r.v32()?,
            status: r.b()?,
            resv: r.list(|r| {
                Ok(ResvMem {
                    subtype: r.b()?,
                    start: r.v()?,
                    end: r.v()?,
                })
            })?,
        })
    }

    fn iova_range(&self) -> Option<(u64, u64)> {
        (self.virt_end >= self.virt_start && self.virt_end != 0)
            .then_some((self.virt_start, self.virt_end))
    }

    fn failed(&self) -> bool {
        self.status != 0
    }

    fn track(&self, _pid: u32) -> String {
        match self.op {
            ViommuOp::Probe => format!("viommu endpoint {}", self.endpoint),
            _ => format!("viommu domain {}", self.domain),
        }
    }

    fn title(&self) -> String {
        format!("{} {:?}", Self::NAME, self.op).to_lowercase()
    }

    fn samples() -> Vec<Event> {
        vec![
            Task::new(1, 1, 1, "swapper/0").at(
                500,
                ViommuReq {
                    op: ViommuOp::Probe,
                    domain: 0,
                    endpoint: 8,
                    virt_start: 0,
                    virt_end: 0,
                    phys_start: 0,
                    flags: 0,
                    status: 0,
                    resv: vec![
                        ResvMem {
                            subtype: 1,
                            start: 0xfee0_0000,
                            end: 0xfeef_ffff,
                        },
                        ResvMem {
                            subtype: 0,
                            start: 0x800_0000,
                            end: 0x80f_ffff,
                        },
                    ],
                },
            ),
            Task::new(1, 211, 211, "kworker/u8:2").at(
                600,
                ViommuReq {
                    op: ViommuOp::Map,
                    domain: 1,
                    endpoint: 0,
                    virt_start: 0xffff_f000,
                    virt_end: 0xffff_ffff,
                    phys_start: 0x4_5678_9000,
                    flags: 3,
                    status: 4,
                    resv: vec![],
                },
            ),
        ]
    }

    /// The request as the driver queues it (include/uapi/linux/virtio_iommu.h:
    /// a `{u8 type; u8 reserved[3]}` head, then the body), with its status.
    #[cfg(any(test, feature = "encode"))]
    fn to_wire(&self, ev: &Event, out: &mut Vec<u8>) -> Option<()> {
        use crate::decode::encode::{header, push, Le};
        use crate::decode::VIOMMU_NOT_QUEUED;
        use tracer_common::kind;
        use tracer_common::kprobe::{ViommuReqRecord, VIOMMU_PROPS_MAX, VIOMMU_REQ_MAX};
        let r = self;
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
        push(&rec, out);
        Some(())
    }
}
