use std::fmt;

use serde::{Deserialize, Serialize};

use super::{handle, write_errno, Category, Kind, iommufd_track};
use crate::event::build::Task;
use crate::event::{fd_handle, Event};
use crate::tracefile::codec::fields::{FieldReader, FieldWriter};
use crate::tracefile::varint::DecodeResult;

/// IOMMU_FAULT_QUEUE_ALLOC: a queue (and fd) for I/O page faults.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultQueueAlloc {
    /// [`fd_handle`] of the iommufd the ioctl was issued on.
    pub iommufd: u64,
    /// `size` as the caller passed it (the struct is read up to min(size, the newest layout)).
    pub size: u32,
    /// Must be 0.
    pub flags: u32,
    /// Read at exit.
    pub out_fault_id: u32,
    /// Read at exit.
    pub out_fault_fd: u32,
    /// 0 on success, else the ioctl's errno.
    pub errno: i32,
}

impl fmt::Display for FaultQueueAlloc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "iommufd={} size={} flags={:#x} out_fault_id={} out_fault_fd={}",
            handle(self.iommufd),
            self.size,
            self.flags,
            self.out_fault_id,
            self.out_fault_fd,
        )?;
        write_errno(f, self.errno)
    }
}

impl Kind for FaultQueueAlloc {
    const CATEGORY: Category = Category::Setup;
    const SUBSYSTEM: &'static str = "iommufd";

    fn encode(&self, w: &mut FieldWriter<'_>) {
        w.d(0, self.iommufd);
        w.v(self.size);
        w.v(self.flags);
        w.v(self.out_fault_id);
        w.v(self.out_fault_fd);
        w.z(self.errno);
    }

    fn decode(r: &mut FieldReader<'_, '_>) -> DecodeResult<Self> {
        Ok(FaultQueueAlloc {
            iommufd: r.d(0)?,
            size: r.v32()?,
            flags: r.v32()?,
            out_fault_id: r.v32()?,
            out_fault_fd: r.v32()?,
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
            5410,
            FaultQueueAlloc {
                iommufd: fd_handle(4300, 3),
                size: 16,
                flags: 0,
                out_fault_id: 8,
                out_fault_fd: 21,
                errno: 0,
            },
        )]
    }
}
