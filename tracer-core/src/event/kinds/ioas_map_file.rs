use std::fmt;

use serde::{Deserialize, Serialize};

use super::{handle, span, write_errno, Category, Kind, iommufd_track};
use crate::event::build::Task;
use crate::event::{fd_handle, Event};
use crate::tracefile::codec::fields::{FieldReader, FieldWriter};
use crate::tracefile::varint::DecodeResult;

/// IOMMU_IOAS_MAP_FILE: IOVA → a file (memfd) range.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IoasMapFile {
    /// [`fd_handle`] of the iommufd the ioctl was issued on.
    pub iommufd: u64,
    /// `size` as the caller passed it (the struct is read up to min(size, the newest layout)).
    pub size: u32,
    /// IOMMU_IOAS_MAP_{FIXED_IOVA 1, WRITEABLE 2, READABLE 4}.
    pub flags: u32,
    pub ioas_id: u32,
    /// The file's fd in the caller.
    pub fd: i32,
    /// Offset in the file.
    pub start: u64,
    pub length: u64,
    /// As passed.
    pub iova: u64,
    /// `iova` read at exit: where the kernel placed it (meaningful when errno is 0).
    pub out_iova: u64,
    /// 0 on success, else the ioctl's errno.
    pub errno: i32,
}

impl fmt::Display for IoasMapFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "iommufd={} size={} flags={:#x} ioas_id={} fd={} start={} length={} iova={:#x} out_iova={:#x}",
            handle(self.iommufd),
            self.size,
            self.flags,
            self.ioas_id,
            self.fd,
            self.start,
            self.length,
            self.iova,
            self.out_iova,
        )?;
        write_errno(f, self.errno)
    }
}

impl Kind for IoasMapFile {
    const CATEGORY: Category = Category::HostMap;
    const SUBSYSTEM: &'static str = "iommufd";

    fn encode(&self, w: &mut FieldWriter<'_>) {
        w.d(0, self.iommufd);
        w.v(self.size);
        w.v(self.flags);
        w.v(self.ioas_id);
        w.z(self.fd);
        w.v(self.start);
        w.v(self.length);
        w.d(2, self.iova);
        w.d(2, self.out_iova);
        w.z(self.errno);
    }

    fn decode(r: &mut FieldReader<'_, '_>) -> DecodeResult<Self> {
        Ok(IoasMapFile {
            iommufd: r.d(0)?,
            size: r.v32()?,
            flags: r.v32()?,
            ioas_id: r.v32()?,
            fd: r.z()?,
            start: r.v()?,
            length: r.v()?,
            iova: r.d(2)?,
            out_iova: r.d(2)?,
            errno: r.z()?,
        })
    }

    fn iova_range(&self) -> Option<(u64, u64)> {
        (self.errno == 0).then(|| span(self.out_iova, self.length)).flatten()
    }

    fn errno(&self) -> i32 {
        self.errno
    }

    fn track(&self, _pid: u32) -> String {
        iommufd_track(self.iommufd)
    }

    fn samples() -> Vec<Event> {
        vec![Task::new(0, 4300, 4301, "iommufd-test").at(
            5420,
            IoasMapFile {
                iommufd: fd_handle(4300, 3),
                size: 40,
                flags: 6,
                ioas_id: 2,
                fd: 9,
                start: 0,
                length: 0x40000000,
                iova: 0,
                out_iova: 0x80000000,
                errno: 0,
            },
        )]
    }
}
