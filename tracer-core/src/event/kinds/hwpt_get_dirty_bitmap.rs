use std::fmt;

use serde::{Deserialize, Serialize};

use super::{handle, span, write_errno, Category, Kind, iommufd_object_track};
use crate::event::build::Task;
use crate::event::{fd_handle, Event};
use crate::tracefile::codec::fields::{FieldReader, FieldWriter};
use crate::tracefile::varint::DecodeResult;

/// IOMMU_HWPT_GET_DIRTY_BITMAP: the dirty pages of an IOVA range of a HWPT.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HwptGetDirtyBitmap {
    /// [`fd_handle`] of the iommufd the ioctl was issued on.
    pub iommufd: u64,
    /// `size` as the caller passed it (the struct is read up to min(size, the newest layout)).
    pub size: u32,
    pub hwpt_id: u32,
    /// IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR 1.
    pub flags: u32,
    pub iova: u64,
    pub length: u64,
    pub page_size: u64,
    /// User pointer to the bitmap (not read).
    pub data: u64,
    /// 0 on success, else the ioctl's errno.
    pub errno: i32,
}

impl fmt::Display for HwptGetDirtyBitmap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "iommufd={} size={} hwpt_id={} flags={:#x} iova={:#x} length={} page_size={} data={:#x}",
            handle(self.iommufd),
            self.size,
            self.hwpt_id,
            self.flags,
            self.iova,
            self.length,
            self.page_size,
            self.data,
        )?;
        write_errno(f, self.errno)
    }
}

impl Kind for HwptGetDirtyBitmap {
    const CATEGORY: Category = Category::HostMap;
    const SUBSYSTEM: &'static str = "iommufd";

    fn encode(&self, w: &mut FieldWriter<'_>) {
        w.d(0, self.iommufd);
        w.v(self.size);
        w.v(self.hwpt_id);
        w.v(self.flags);
        w.d(2, self.iova);
        w.v(self.length);
        w.v(self.page_size);
        w.d(1, self.data);
        w.z(self.errno);
    }

    fn decode(r: &mut FieldReader<'_, '_>) -> DecodeResult<Self> {
        Ok(HwptGetDirtyBitmap {
            iommufd: r.d(0)?,
            size: r.v32()?,
            hwpt_id: r.v32()?,
            flags: r.v32()?,
            iova: r.d(2)?,
            length: r.v()?,
            page_size: r.v()?,
            data: r.d(1)?,
            errno: r.z()?,
        })
    }

    fn iova_range(&self) -> Option<(u64, u64)> {
        (self.errno == 0).then(|| span(self.iova, self.length)).flatten()
    }

    fn errno(&self) -> i32 {
        self.errno
    }

    fn track(&self, _pid: u32) -> String {
        iommufd_object_track(self.iommufd, "hwpt", self.hwpt_id)
    }

    fn samples() -> Vec<Event> {
        vec![Task::new(0, 4300, 4301, "iommufd-test").at(
            5390,
            HwptGetDirtyBitmap {
                iommufd: fd_handle(4300, 3),
                size: 48,
                hwpt_id: 5,
                flags: 0,
                iova: 0x10000000,
                length: 0x400000,
                page_size: 0x1000,
                data: 0x7f0000005000,
                errno: 0,
            },
        )]
    }
}
