use std::fmt;

use serde::{Deserialize, Serialize};

use super::{handle, write_errno, u16_field, Category, Kind, iommufd_track};
use crate::event::build::Task;
use crate::event::{fd_handle, Event};
use crate::tracefile::codec::fields::{FieldReader, FieldWriter};
use crate::tracefile::varint::DecodeResult;

/// IOMMU_OPTION: an option of iommufd or of an IOAS set or read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IommufdOption {
    /// [`fd_handle`] of the iommufd the ioctl was issued on.
    pub iommufd: u64,
    /// `size` as the caller passed it (the struct is read up to min(size, the newest layout)).
    pub size: u32,
    /// IOMMU_OPTION_{RLIMIT_MODE 0, HUGE_PAGES 1}.
    pub option_id: u32,
    /// IOMMU_OPTION_OP_{SET 0, GET 1}.
    pub op: u16,
    pub object_id: u32,
    /// As passed.
    pub val64: u64,
    /// `val64` read at exit (the value for GET).
    pub out_val64: u64,
    /// 0 on success, else the ioctl's errno.
    pub errno: i32,
}

impl fmt::Display for IommufdOption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "iommufd={} size={} option_id={} op={} object_id={} val64={} out_val64={}",
            handle(self.iommufd),
            self.size,
            self.option_id,
            self.op,
            self.object_id,
            self.val64,
            self.out_val64,
        )?;
        write_errno(f, self.errno)
    }
}

impl Kind for IommufdOption {
    const CATEGORY: Category = Category::Setup;
    const SUBSYSTEM: &'static str = "iommufd";

    fn encode(&self, w: &mut FieldWriter<'_>) {
        w.d(0, self.iommufd);
        w.v(self.size);
        w.v(self.option_id);
        w.v(self.op);
        w.v(self.object_id);
        w.v(self.val64);
        w.v(self.out_val64);
        w.z(self.errno);
    }

    fn decode(r: &mut FieldReader<'_, '_>) -> DecodeResult<Self> {
        Ok(IommufdOption {
            iommufd: r.d(0)?,
            size: r.v32()?,
            option_id: r.v32()?,
            op: u16_field(r)?,
            object_id: r.v32()?,
            val64: r.v()?,
            out_val64: r.v()?,
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
            5350,
            IommufdOption {
                iommufd: fd_handle(4300, 3),
                size: 24,
                option_id: 1,
                op: 1,
                object_id: 2,
                val64: 0,
                out_val64: 1,
                errno: 0,
            },
        )]
    }
}
