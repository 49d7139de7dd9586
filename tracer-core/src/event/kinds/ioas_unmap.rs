use std::fmt;

use serde::{Deserialize, Serialize};

use super::{handle, span, write_errno, Category, Kind, iommufd_object_track};
use crate::event::build::Task;
use crate::event::{fd_handle, Event};
use crate::tracefile::codec::fields::{FieldReader, FieldWriter};
use crate::tracefile::varint::DecodeResult;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IoasUnmap {
    pub iommufd: u64,
    pub ioas: u32,
    pub iova: u64,
    pub length: u64,
    pub unmapped: u64,
    pub errno: i32,
}

impl fmt::Display for IoasUnmap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "iommufd={} ioas={} iova={:#x} length={:#x} unmapped={:#x}",
            handle(self.iommufd),
            self.ioas,
            self.iova,
            self.length,
            self.unmapped
        )?;
        write_errno(f, self.errno)
    }
}

impl Kind for IoasUnmap {
    const CATEGORY: Category = Category::HostMap;
    const SUBSYSTEM: &'static str = "iommufd";

    field_codec!(IoasUnmap {
        iommufd: d(0),
        ioas: v32,
        iova: d(1),
        length: d(2),
        unmapped: d(3),
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
            5_100,
            IoasUnmap {
                iommufd: fd_handle(4300, 3),
                ioas: 1,
                iova: u64::MAX - 0xffff,
                length: 0x1_0000,
                unmapped: 0x1_0000,
                errno: 0,
            },
        )]
    }
}
