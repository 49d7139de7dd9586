use std::fmt;

use serde::{Deserialize, Serialize};

use super::{sample, span, Category, Kind};
use crate::event::Event;
use crate::tracefile::codec::fields::{FieldReader, FieldWriter};
use crate::tracefile::varint::DecodeResult;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IommuUnmap {
    pub domain: u64,
    pub iova: u64,
    pub size: u64,
    pub unmapped: u64,
}

impl fmt::Display for IommuUnmap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "domain={:#x} iova={:#x} size={:#x} unmapped={:#x}",
            self.domain, self.iova, self.size, self.unmapped
        )
    }
}

impl Kind for IommuUnmap {
    const CATEGORY: Category = Category::HostMap;
    const SUBSYSTEM: &'static str = "iommu";

    field_codec!(IommuUnmap {
        domain: d(0),
        iova: d(1),
        size: d(2),
        unmapped: d(3),
    });

    fn iova_range(&self) -> Option<(u64, u64)> {
        span(self.iova, self.size)
    }

    fn failed(&self) -> bool {
        self.unmapped < self.size
    }

    fn track(&self, _pid: u32) -> String {
        format!("domain {:#x}", self.domain)
    }

    fn mapped_delta(&self) -> Option<i128> {
        Some(-i128::from(self.unmapped))
    }

    fn samples() -> Vec<Event> {
        vec![sample::vcpu(0).at(
            3_100,
            IommuUnmap {
                domain: sample::DOMAIN,
                iova: 0x1000_0000,
                size: 0x20_0000,
                unmapped: 0x20_0000,
            },
        )]
    }

    #[cfg(any(test, feature = "encode"))]
    fn to_wire(&self, ev: &Event, out: &mut Vec<u8>) -> Option<()> {
        use crate::decode::encode::{header, push};
        use tracer_common::{kind, kprobe::IommuUnmapRecord};
        push(
            &IommuUnmapRecord {
                hdr: header(ev, kind::IOMMU_UNMAP),
                domain: self.domain,
                iova: self.iova,
                size: self.size,
                unmapped: self.unmapped,
            },
            out,
        );
        Some(())
    }
}
