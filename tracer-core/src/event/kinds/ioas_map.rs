use std::fmt;

use serde::{Deserialize, Serialize};

use super::{handle, span, write_errno, Category, Kind, iommufd_object_track};
use crate::event::build::Task;
use crate::event::{fd_handle, Event};
use crate::tracefile::codec::fields::{FieldReader, FieldWriter};
use crate::tracefile::varint::DecodeResult;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IoasMap {
    /// [`fd_handle`] of the iommufd.
    pub iommufd: u64,
    pub ioas: u32,
    /// IOMMU_IOAS_MAP_{FIXED_IOVA 1, WRITEABLE 2, READABLE 4}.
    pub flags: u32,
    pub user_va: u64,
    pub length: u64,
    /// The IOVA used (written back by the kernel when not FIXED_IOVA).
    pub iova: u64,
    pub errno: i32,
}

impl fmt::Display for IoasMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "iommufd={} ioas={} user_va={:#x} length={:#x} iova={:#x} flags={:#x}",
            handle(self.iommufd),
            self.ioas,
            self.user_va,
            self.length,
            self.iova,
            self.flags
        )?;
        write_errno(f, self.errno)
    }
}

impl Kind for IoasMap {
    const CATEGORY: Category = Category::HostMap;
    const SUBSYSTEM: &'static str = "iommufd";

    field_codec!(IoasMap {
        iommufd: d(0),
        ioas: v32,
        flags: v32,
        user_va: d(1),
        length: d(2),
        iova: d(3),
        errno: z,
    });

    fn iova_range(&self) -> Option<(u64, u64)> {
        span(self.iova, self.length)
    }

    fn errno(&self) -> i32 {
        self.errno
    }

    fn track(&self, _pid: u32) -> String {
        iommufd_object_track(self.iommufd, "ioas", self.ioas)
    }

    fn samples() -> Vec<Event> {
        vec![Task::new(0, 4300, 4301, "iommufd-test").at(
            5_000,
            IoasMap {
                iommufd: fd_handle(4300, 3),
                ioas: 1,
                flags: 6,
                user_va: 0x7fff_0000_0000,
                length: 0x1_0000,
                iova: u64::MAX - 0xffff,
                errno: 0,
            },
        )]
    }
}
