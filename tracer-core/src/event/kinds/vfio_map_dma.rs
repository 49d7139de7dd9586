use std::fmt;

use serde::{Deserialize, Serialize};

use super::{handle, sample, span, write_errno, Category, Kind};
use crate::event::Event;
use crate::tracefile::codec::fields::{FieldReader, FieldWriter};
use crate::tracefile::varint::DecodeResult;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VfioMapDma {
    /// [`fd_handle`](crate::event::fd_handle) of the container fd.
    pub container: u64,
    pub iova: u64,
    pub vaddr: u64,
    pub size: u64,
    /// VFIO_DMA_MAP_FLAG_{READ 1, WRITE 2, VADDR 4}.
    pub flags: u32,
    /// 0 on success, else the positive errno.
    pub errno: i32,
}

impl fmt::Display for VfioMapDma {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "container={} iova={:#x} vaddr={:#x} size={:#x} flags={:#x}",
            handle(self.container),
            self.iova,
            self.vaddr,
            self.size,
            self.flags
        )?;
        write_errno(f, self.errno)
    }
}

impl Kind for VfioMapDma {
    const CATEGORY: Category = Category::HostMap;
    const SUBSYSTEM: &'static str = "vfio";

    field_codec!(VfioMapDma {
        container: d(0),
        iova: d(1),
        vaddr: d(2),
        size: d(3),
        flags: v32,
        errno: z,
    });

    fn iova_range(&self) -> Option<(u64, u64)> {
        span(self.iova, self.size)
    }

    fn errno(&self) -> i32 {
        self.errno
    }

    fn track(&self, _pid: u32) -> String {
        format!("container {}", handle(self.container))
    }

    fn mapped_delta(&self) -> Option<i128> {
        (self.errno == 0).then(|| i128::from(self.size))
    }

    fn samples() -> Vec<Event> {
        let m = |iova, vaddr, size, errno| VfioMapDma {
            container: sample::container(),
            iova,
            vaddr,
            size,
            flags: 3,
            errno,
        };
        vec![
            sample::vcpu(0).at(2_000, m(0x1000_0000, 0x7f12_3456_7000, 0x20_0000, 0)),
            // Out of order, as per-CPU ring buffers deliver.
            sample::vcpu(1).at(2_150, m(0xfee0_0000, 0x7f12_0000_0000, 0x1000, 22)),
        ]
    }

    #[cfg(any(test, feature = "encode"))]
    fn to_wire(&self, ev: &Event, out: &mut Vec<u8>) -> Option<()> {
        use crate::decode::encode::{ioctl, push_ioctl, Le};
        use tracer_common::ioctl::VFIO_IOMMU_MAP_DMA;
        let d = Le::default()
            .u32(32)
            .u32(self.flags)
            .u64(self.vaddr)
            .u64(self.iova)
            .u64(self.size);
        let r = ioctl(ev, self.container, VFIO_IOMMU_MAP_DMA, 0, self.errno, &d.0, &[])?;
        push_ioctl(&r, out);
        Some(())
    }
}
