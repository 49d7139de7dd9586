use std::fmt;

use serde::{Deserialize, Serialize};

use super::{sample, Category, Kind};
use crate::event::Event;
use crate::tracefile::codec::fields::{FieldReader, FieldWriter};
use crate::tracefile::varint::DecodeResult;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VfioPin {
    pub vaddr: u64,
    pub npages: u64,
    /// First page frame number pinned (HPA = pfn << 12).
    pub pfn: u64,
}

impl fmt::Display for VfioPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "vaddr={:#x} npages={} pfn={:#x}",
            self.vaddr, self.npages, self.pfn
        )
    }
}

impl Kind for VfioPin {
    const CATEGORY: Category = Category::HostMap;
    const SUBSYSTEM: &'static str = "vfio";

    field_codec!(VfioPin {
        vaddr: d(0),
        npages: d(1),
        pfn: d(2),
    });

    fn track(&self, pid: u32) -> String {
        format!("pins of pid {pid}")
    }

    fn samples() -> Vec<Event> {
        vec![sample::vcpu(0).at(
            2_100,
            VfioPin {
                vaddr: 0x7f12_3456_7000,
                npages: 512,
                pfn: 0x12_3456,
            },
        )]
    }

    #[cfg(any(test, feature = "encode"))]
    fn to_wire(&self, ev: &Event, out: &mut Vec<u8>) -> Option<()> {
        use crate::decode::encode::{header, push};
        use tracer_common::{kind, kprobe::PinRecord};
        push(
            &PinRecord {
                hdr: header(ev, kind::VFIO_PIN),
                vaddr: self.vaddr,
                npage: self.npages,
                pfn: self.pfn,
                pinned: i64::try_from(self.npages).ok()?,
            },
            out,
        );
        Some(())
    }
}
