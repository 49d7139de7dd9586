use std::fmt;

use serde::{Deserialize, Serialize};

use super::{handle, write_errno, write_list, Category, Kind, iommufd_track};
use crate::event::build::Task;
use crate::event::{fd_handle, Event};
use crate::tracefile::codec::fields::{FieldReader, FieldWriter};
use crate::tracefile::varint::DecodeResult;

/// `struct iommu_iova_range`: an inclusive IOVA interval `[start, last]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IovaRange {
    pub start: u64,
    pub last: u64,
}

/// IOMMU_IOAS_IOVA_RANGES: the IOVA ranges an IOAS allows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IoasIovaRanges {
    /// [`fd_handle`] of the iommufd the ioctl was issued on.
    pub iommufd: u64,
    /// `size` as the caller passed it (the struct is read up to min(size, the newest layout)).
    pub size: u32,
    pub ioas_id: u32,
    /// Capacity of the caller's array.
    pub num_iovas: u32,
    /// User pointer to the array.
    pub allowed_iovas: u64,
    /// `num_iovas` read at exit: the IOAS's number of ranges (also on EMSGSIZE).
    pub out_num_iovas: u32,
    /// Read at exit.
    pub out_iova_alignment: u64,
    /// The first ranges of the array read at exit (at most min(num_iovas, 8)).
    pub iovas: Vec<IovaRange>,
    /// 0 on success, else the ioctl's errno.
    pub errno: i32,
}

impl fmt::Display for IoasIovaRanges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "iommufd={} size={} ioas_id={} num_iovas={} allowed_iovas={:#x} out_num_iovas={} out_iova_alignment={}",
            handle(self.iommufd),
            self.size,
            self.ioas_id,
            self.num_iovas,
            self.allowed_iovas,
            self.out_num_iovas,
            self.out_iova_alignment,
        )?;
        write_list(f, "iovas", &self.iovas, |f, r| write!(f, "{:#x}-{:#x}", r.start, r.last), " ")?;
        write_errno(f, self.errno)
    }
}

impl Kind for IoasIovaRanges {
    const CATEGORY: Category = Category::Setup;
    const SUBSYSTEM: &'static str = "iommufd";

    fn encode(&self, w: &mut FieldWriter<'_>) {
        w.d(0, self.iommufd);
        w.v(self.size);
        w.v(self.ioas_id);
        w.v(self.num_iovas);
        w.d(1, self.allowed_iovas);
        w.v(self.out_num_iovas);
        w.v(self.out_iova_alignment);
        w.list(&self.iovas, |w, r| {
            w.v(r.start);
            w.v(r.last);
        });
        w.z(self.errno);
    }

    fn decode(r: &mut FieldReader<'_, '_>) -> DecodeResult<Self> {
        Ok(IoasIovaRanges {
            iommufd: r.d(0)?,
            size: r.v32()?,
            ioas_id: r.v32()?,
            num_iovas: r.v32()?,
            allowed_iovas: r.d(1)?,
            out_num_iovas: r.v32()?,
            out_iova_alignment: r.v()?,
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
            5340,
            IoasIovaRanges {
                iommufd: fd_handle(4300, 3),
                size: 32,
                ioas_id: 2,
                num_iovas: 4,
                allowed_iovas: 0x7f0000002000,
                out_num_iovas: 2,
                out_iova_alignment: 0x1000,
                iovas: vec![IovaRange { start: 0x0, last: 0xfedfffff }, IovaRange { start: 0xfef00000, last: 0xffffffffffff }],
                errno: 0,
            },
        )]
    }
}
