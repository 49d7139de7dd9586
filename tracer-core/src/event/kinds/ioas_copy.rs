use std::fmt;

use serde::{Deserialize, Serialize};

use super::{handle, span, write_errno, Category, Kind, iommufd_track};
use crate::event::build::Task;
use crate::event::{fd_handle, Event};
use crate::tracefile::codec::fields::{FieldReader, FieldWriter};
use crate::tracefile::varint::DecodeResult;

/// IOMMU_IOAS_COPY: a mapping of one IOAS established in another (same pinned pages).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IoasCopy {
    /// [`fd_handle`] of the iommufd the ioctl was issued on.
    pub iommufd: u64,
    /// `size` as the caller passed it (the struct is read up to min(size, the newest layout)).
    pub size: u32,
    /// IOMMU_IOAS_MAP_{FIXED_IOVA 1, WRITEABLE 2, READABLE 4}.
    pub flags: u32,
    pub dst_ioas_id: u32,
    pub src_ioas_id: u32,
    pub length: u64,
    /// As passed (the input when FIXED_IOVA).
    pub dst_iova: u64,
    pub src_iova: u64,
    /// `dst_iova` read at exit: the IOVA the kernel placed the copy at (meaningful when errno is 0).
    pub out_dst_iova: u64,
    /// 0 on success, else the ioctl's errno.
    pub errno: i32,
}

impl fmt::Display for IoasCopy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "iommufd={} size={} flags={:#x} dst_ioas_id={} src_ioas_id={} length={} dst_iova={:#x} src_iova={:#x} out_dst_iova={:#x}",
            handle(self.iommufd),
            self.size,
            self.flags,
            self.dst_ioas_id,
            self.src_ioas_id,
            self.length,
            self.dst_iova,
            self.src_iova,
            self.out_dst_iova,
        )?;
        write_errno(f, self.errno)
    }
}

impl Kind for IoasCopy {
    const CATEGORY: Category = Category::HostMap;
    const SUBSYSTEM: &'static str = "iommufd";

    fn encode(&self, w: &mut FieldWriter<'_>) {
        w.d(0, self.iommufd);
        w.v(self.size);
        w.v(self.flags);
        w.v(self.dst_ioas_id);
        w.v(self.src_ioas_id);
        w.v(self.length);
        w.d(2, self.dst_iova);
        w.d(2, self.src_iova);
        w.d(2, self.out_dst_iova);
        w.z(self.errno);
    }

    fn decode(r: &mut FieldReader<'_, '_>) -> DecodeResult<Self> {
        Ok(IoasCopy {
            iommufd: r.d(0)?,
            size: r.v32()?,
            flags: r.v32()?,
            dst_ioas_id: r.v32()?,
            src_ioas_id: r.v32()?,
            length: r.v()?,
            dst_iova: r.d(2)?,
            src_iova: r.d(2)?,
            out_dst_iova: r.d(2)?,
            errno: r.z()?,
        })
    }

    fn iova_range(&self) -> Option<(u64, u64)> {
        (self.errno == 0).then(|| span(self.out_dst_iova, self.length)).flatten()
    }

    fn errno(&self) -> i32 {
        self.errno
    }

    fn track(&self, _pid: u32) -> String {
        iommufd_track(self.iommufd)
    }

    fn samples() -> Vec<Event> {
        vec![Task::new(0, 4300, 4301, "iommufd-test").at(
            5330,
            IoasCopy {
                iommufd: fd_handle(4300, 3),
                size: 40,
                flags: 7,
                dst_ioas_id: 3,
                src_ioas_id: 2,
                length: 0x200000,
                dst_iova: 0x40000000,
                src_iova: 0x10000000,
                out_dst_iova: 0x40000000,
                errno: 0,
            },
        )]
    }
}
