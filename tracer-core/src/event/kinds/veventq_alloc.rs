use std::fmt;

use serde::{Deserialize, Serialize};

use super::{handle, write_errno, Category, Kind, iommufd_object_track};
use crate::event::build::Task;
use crate::event::{fd_handle, Event};
use crate::tracefile::codec::fields::{FieldReader, FieldWriter};
use crate::tracefile::varint::DecodeResult;

/// IOMMU_VEVENTQ_ALLOC: a vIOMMU event queue (events are then read from its fd).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VeventqAlloc {
    /// [`fd_handle`] of the iommufd the ioctl was issued on.
    pub iommufd: u64,
    /// `size` as the caller passed it (the struct is read up to min(size, the newest layout)).
    pub size: u32,
    /// Must be 0.
    pub flags: u32,
    pub viommu_id: u32,
    /// IOMMU_VEVENTQ_TYPE_{DEFAULT 0, ARM_SMMUV3 1, ...}.
    pub r#type: u32,
    pub veventq_depth: u32,
    /// Read at exit.
    pub out_veventq_id: u32,
    /// Read at exit.
    pub out_veventq_fd: u32,
    /// 0 on success, else the ioctl's errno.
    pub errno: i32,
}

impl fmt::Display for VeventqAlloc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "iommufd={} size={} flags={:#x} viommu_id={} type={} veventq_depth={} out_veventq_id={} out_veventq_fd={}",
            handle(self.iommufd),
            self.size,
            self.flags,
            self.viommu_id,
            self.r#type,
            self.veventq_depth,
            self.out_veventq_id,
            self.out_veventq_fd,
        )?;
        write_errno(f, self.errno)
    }
}

impl Kind for VeventqAlloc {
    const CATEGORY: Category = Category::Setup;
    const SUBSYSTEM: &'static str = "iommufd";

    fn encode(&self, w: &mut FieldWriter<'_>) {
        w.d(0, self.iommufd);
        w.v(self.size);
        w.v(self.flags);
        w.v(self.viommu_id);
        w.v(self.r#type);
        w.v(self.veventq_depth);
        w.v(self.out_veventq_id);
        w.v(self.out_veventq_fd);
        w.z(self.errno);
    }

    fn decode(r: &mut FieldReader<'_, '_>) -> DecodeResult<Self> {
        Ok(VeventqAlloc {
            iommufd: r.d(0)?,
            size: r.v32()?,
            flags: r.v32()?,
            viommu_id: r.v32()?,
            r#type: r.v32()?,
            veventq_depth: r.v32()?,
            out_veventq_id: r.v32()?,
            out_veventq_fd: r.v32()?,
            errno: r.z()?,
        })
    }

    fn errno(&self) -> i32 {
        self.errno
    }

    fn track(&self, _pid: u32) -> String {
        iommufd_object_track(self.iommufd, "viommu", self.viommu_id)
    }

    fn samples() -> Vec<Event> {
        vec![Task::new(0, 4300, 4301, "iommufd-test").at(
            5450,
            VeventqAlloc {
                iommufd: fd_handle(4300, 3),
                size: 32,
                flags: 0,
                viommu_id: 9,
                r#type: 1,
                veventq_depth: 64,
                out_veventq_id: 11,
                out_veventq_fd: 22,
                errno: 0,
            },
        )]
    }
}
