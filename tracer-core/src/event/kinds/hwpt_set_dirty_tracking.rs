use std::fmt;

use serde::{Deserialize, Serialize};

use super::{handle, write_errno, Category, Kind, iommufd_object_track};
use crate::event::build::Task;
use crate::event::{fd_handle, Event};
use crate::tracefile::codec::fields::{FieldReader, FieldWriter};
use crate::tracefile::varint::DecodeResult;

/// IOMMU_HWPT_SET_DIRTY_TRACKING: dirty tracking of a HWPT turned on or off.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HwptSetDirtyTracking {
    /// [`fd_handle`] of the iommufd the ioctl was issued on.
    pub iommufd: u64,
    /// `size` as the caller passed it (the struct is read up to min(size, the newest layout)).
    pub size: u32,
    /// IOMMU_HWPT_DIRTY_TRACKING_ENABLE 1.
    pub flags: u32,
    pub hwpt_id: u32,
    /// 0 on success, else the ioctl's errno.
    pub errno: i32,
}

impl fmt::Display for HwptSetDirtyTracking {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "iommufd={} size={} flags={:#x} hwpt_id={}",
            handle(self.iommufd),
            self.size,
            self.flags,
            self.hwpt_id,
        )?;
        write_errno(f, self.errno)
    }
}

impl Kind for HwptSetDirtyTracking {
    const CATEGORY: Category = Category::Setup;
    const SUBSYSTEM: &'static str = "iommufd";

    fn encode(&self, w: &mut FieldWriter<'_>) {
        w.d(0, self.iommufd);
        w.v(self.size);
        w.v(self.flags);
        w.v(self.hwpt_id);
        w.z(self.errno);
    }

    fn decode(r: &mut FieldReader<'_, '_>) -> DecodeResult<Self> {
        Ok(HwptSetDirtyTracking {
            iommufd: r.d(0)?,
            size: r.v32()?,
            flags: r.v32()?,
            hwpt_id: r.v32()?,
            errno: r.z()?,
        })
    }

    fn errno(&self) -> i32 {
        self.errno
    }

    fn track(&self, _pid: u32) -> String {
        iommufd_object_track(self.iommufd, "hwpt", self.hwpt_id)
    }

    fn samples() -> Vec<Event> {
        vec![Task::new(0, 4300, 4301, "iommufd-test").at(
            5380,
            HwptSetDirtyTracking {
                iommufd: fd_handle(4300, 3),
                size: 16,
                flags: 1,
                hwpt_id: 5,
                errno: 0,
            },
        )]
    }
}
