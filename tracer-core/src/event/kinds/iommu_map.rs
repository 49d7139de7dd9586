use std::fmt;

use serde::{Deserialize, Serialize};

use super::{sample, span, write_errno, Category, Kind};
use crate::event::Event;
use crate::tracefile::codec::fields::{FieldReader, FieldWriter};
use crate::tracefile::varint::DecodeResult;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IommuMap {
    /// Kernel address of the `struct iommu_domain`.
    pub domain: u64,
    pub iova: u64,
    pub paddr: u64,
    pub size: u64,
    /// IOMMU_{READ 1, WRITE 2, CACHE 4, NOEXEC 8, MMIO 0x10, PRIV 0x20}.
    pub prot: u32,
    pub errno: i32,
}

impl fmt::Display for IommuMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "domain={:#x} iova={:#x} paddr={:#x} size={:#x} prot={:#x}",
            self.domain, self.iova, self.paddr, self.size, self.prot
        )?;
        write_errno(f, self.errno)
    }
}

impl Kind for IommuMap {
    const CATEGORY: Category = Category::HostMap;
    const SUBSYSTEM: &'static str = "iommu";

    field_codec!(IommuMap {
        domain: d(0),
        iova: d(1),
        paddr: d(2),
        size: d(3),
        prot: v32,
        errno: z,
    });

    fn iova_range(&self) -> Option<(u64, u64)> {
        span(self.iova, self.size)
    }

    fn errno(&self) -> i32 {
        self.errno
    }

    fn track(&self, _pid: u32) -> String {
        format!("domain {:#x}", self.domain)
    }

    fn mapped_delta(&self) -> Option<i128> {
        (self.errno == 0).then(|| i128::from(self.size))
    }

    fn samples() -> Vec<Event> {
        vec![sample::vcpu(0).at(
            2_200,
            IommuMap {
                domain: sample::DOMAIN,
                iova: 0x1000_0000,
                paddr: 0x1_2345_6000,
                size: 0x20_0000,
                prot: 0x3,
                errno: 0,
            },
        )]
    }

    #[cfg(any(test, feature = "encode"))]
    fn to_wire(&self, ev: &Event, out: &mut Vec<u8>) -> Option<()> {
        use crate::decode::encode::{header, push, ret_of};
        use tracer_common::{kind, kprobe::IommuMapRecord};
        push(
            &IommuMapRecord {
                hdr: header(ev, kind::IOMMU_MAP),
                domain: self.domain,
                iova: self.iova,
                paddr: self.paddr,
                size: self.size,
                prot: self.prot,
                ret: i32::try_from(ret_of(self.errno)?).ok()?,
            },
            out,
        );
        Some(())
    }
}
