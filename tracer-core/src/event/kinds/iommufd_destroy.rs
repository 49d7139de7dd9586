use std::fmt;

use serde::{Deserialize, Serialize};

use super::{handle, write_errno, Category, Kind, iommufd_track};
use crate::event::build::Task;
use crate::event::{fd_handle, Event};
use crate::tracefile::codec::fields::{FieldReader, FieldWriter};
use crate::tracefile::varint::DecodeResult;

/// IOMMU_DESTROY: an iommufd object (IOAS, HWPT, vIOMMU, ...) destroyed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IommufdDestroy {
    /// [`fd_handle`] of the iommufd the ioctl was issued on.
    pub iommufd: u64,
    /// `size` as the caller passed it (the struct is read up to min(size, the newest layout)).
    pub size: u32,
    /// The object destroyed.
    pub id: u32,
    /// 0 on success, else the ioctl's errno.
    pub errno: i32,
}

impl fmt::Display for IommufdDestroy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "iommufd={} size={} id={}",
            handle(self.iommufd),
            self.size,
            self.id,
        )?;
        write_errno(f, self.errno)
    }
}

impl Kind for IommufdDestroy {
    const CATEGORY: Category = Category::Setup;
    const SUBSYSTEM: &'static str = "iommufd";

    fn encode(&self, w: &mut FieldWriter<'_>) {
        w.d(0, self.iommufd);
        w.v(self.size);
        w.v(self.id);
        w.z(self.errno);
    }

    fn decode(r: &mut FieldReader<'_, '_>) -> DecodeResult<Self> {
        Ok(IommufdDestroy {
            iommufd: r.d(0)?,
            size: r.v32()?,
            id: r.v32()?,
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
            5300,
            IommufdDestroy {
                iommufd: fd_handle(4300, 3),
                size: 8,
                id: 7,
                errno: 0,
            },
        )]
    }
}
