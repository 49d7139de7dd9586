use std::fmt;

use serde::{Deserialize, Serialize};

use super::{handle, write_errno, write_list, Category, Kind, iommufd_track};
use crate::event::build::Task;
use super::IovaRange;
use crate::event::{fd_handle, Event};
use crate::tracefile::codec::fields::{FieldReader, FieldWriter};
use crate::tracefile::varint::DecodeResult;

/// IOMMU_IOAS_ALLOW_IOVAS: IOVA ranges the IOAS must keep allocatable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IoasAllowIovas {
    /// [`fd_handle`] of the iommufd the ioctl was issued on.
    pub iommufd: u64,
    /// `size` as the caller passed it (the struct is read up to min(size, the newest layout)).
    pub size: u32,
    pub ioas_id: u32,
    /// Entries the caller passed.
    pub num_iovas: u32,
    /// User pointer to the array.
    pub allowed_iovas: u64,
    /// The first entries of the array (at most 8: 128 bytes), read at exit.
    pub iovas: Vec<IovaRange>,
    /// 0 on success, else the ioctl's errno.
    pub errno: i32,
}

impl fmt::Display for IoasAllowIovas {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "iommufd={} size={} ioas_id={} num_iovas={} allowed_iovas={:#x}",
            handle(self.iommufd),
            self.size,
            self.ioas_id,
            self.num_iovas,
            self.allowed_iovas,
        )?;
        write_list(f, "iovas", &self.iovas, |f, r| write!(f, "{:#x}-{:#x}", r.start, r.last), " ")?;
        write_errno(f, self.errno)
    }
}

impl Kind for IoasAllowIovas {
    const CATEGORY: Category = Category::Setup;
    const SUBSYSTEM: &'static str = "iommufd";

    fn encode(&self, w: &mut FieldWriter<'_>) {
        w.d(0, self.iommufd);
        w.v(self.size);
        w.v(self.ioas_id);
        w.v(self.num_iovas);
        w.d(1, self.allowed_iovas);
        w.list(&self.iovas, |w, r| {
            w.v(r.start);
            w.v(r.last);
        });
        w.z(self.errno);
    }

    fn decode(r: &mut FieldReader<'_, '_>) -> DecodeResult<Self> {
        Ok(IoasAllowIovas {
            iommufd: r.d(0)?,
            size: r.v32()?,
            ioas_id: r.v32()?,
            num_iovas: r.v32()?,
            allowed_iovas: r.d(1)?,
            iovas: r.list(|r| {
                Ok(IovaRange {
                    start: r.v()?,
                    last: r.v()?,
                })
            })?,
            errno: r.z()?,
        })
    }

    fn errno(&self) -> i32 {
        self.errno
    }

    fn track(&self, _pid: u32) -> String {
        iommufd_track(self.iommufd)
    }

    fn samples() -> Vec<Event> {
        vec![Task::new(0, 4300, 4301, "iommufd-test").at(
            5320,
            IoasAllowIovas {
                iommufd: fd_handle(4300, 3),
                size: 24,
                ioas_id: 2,
                num_iovas: 2,
                allowed_iovas: 0x7f0000001000,
                iovas: vec![IovaRange { start: 0x1000, last: 0xffffffff }, IovaRange { start: 0x100000000, last: 0xffffffffffffffff }],
                errno: 0,
            },
        )]
    }
}
