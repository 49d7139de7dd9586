use std::fmt;

use serde::{Deserialize, Serialize};

use super::{handle, sample, span, write_errno, Category, Kind};
use crate::event::Event;
use crate::tracefile::codec::fields::{FieldReader, FieldWriter};
use crate::tracefile::varint::DecodeResult;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VfioUnmapDma {
    pub container: u64,
    pub iova: u64,
    /// Requested size.
    pub size: u64,
    /// Bytes the kernel reports it unmapped (the `size` it wrote back).
    pub unmapped: u64,
    /// VFIO_DMA_UNMAP_FLAG_{GET_DIRTY_BITMAP 1, ALL 2, VADDR 4}.
    pub flags: u32,
    pub errno: i32,
}

impl fmt::Display for VfioUnmapDma {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "container={} iova={:#x} size={:#x} unmapped={:#x} flags={:#x}",
            handle(self.container),
            self.iova,
            self.size,
            self.unmapped,
            self.flags
        )?;
        write_errno(f, self.errno)
    }
}

impl Kind for VfioUnmapDma {
    const CATEGORY: Category = Category::HostMap;
    const SUBSYSTEM: &'static str = "vfio";

    field_codec!(VfioUnmapDma {
        container: d(0),
        iova: d(1),
        size: d(2),
        unmapped: d(3),
        flags: v32,
        errno: z,
    });

    fn iova_range(&self) -> Option<(u64, u64)> {
        span(self.iova, self.size)
    }

    fn errno(&self) -> i32 {
        self.errno
    }

    fn failed(&self) -> bool {
        self.errno != 0 || self.unmapped < self.size
    }

    fn track(&self, _pid: u32) -> String {
        format!("container {}", handle(self.container))
    }

    fn mapped_delta(&self) -> Option<i128> {
        (self.errno == 0).then(|| -i128::from(self.unmapped))
    }

    fn samples() -> Vec<Event> {
        vec![sample::vcpu(0).at(
            3_000,
            VfioUnmapDma {
                container: sample::container(),
                iova: 0x1000_0000,
                size: 0x20_0000,
                unmapped: 0,
                flags: 0,
                errno: 0,
            },
        )]
    }

    #[cfg(any(test, feature = "encode"))]
    fn to_wire(&self, ev: &Event, out: &mut Vec<u8>) -> Option<()> {
        use crate::decode::encode::{ioctl, push_ioctl, Le};
        use tracer_common::ioctl::VFIO_IOMMU_UNMAP_DMA;
        let d = Le::default().u32(24).u32(self.flags).u64(self.iova);
        // The kernel writes the bytes it unmapped back into `size`.
        let back = d.clone().u64(self.unmapped);
        let d = d.u64(self.size);
        let cmd = VFIO_IOMMU_UNMAP_DMA;
        push_ioctl(
            &ioctl(ev, self.container, cmd, 0, self.errno, &d.0, &back.0)?,
            out,
        );
        Some(())
    }
}
