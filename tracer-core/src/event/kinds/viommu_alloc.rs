use std::fmt;

use serde::{Deserialize, Serialize};

use super::{handle, write_errno, write_list, Category, Kind, iommufd_object_track};
use crate::event::build::Task;
use crate::event::{fd_handle, Event};
use crate::tracefile::codec::fields::{FieldReader, FieldWriter};
use crate::tracefile::varint::DecodeResult;

/// IOMMU_VIOMMU_ALLOC: a virtual IOMMU on a nesting parent HWPT.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViommuAlloc {
    /// [`fd_handle`] of the iommufd the ioctl was issued on.
    pub iommufd: u64,
    /// `size` as the caller passed it (the struct is read up to min(size, the newest layout)).
    pub size: u32,
    /// Must be 0.
    pub flags: u32,
    /// IOMMU_VIOMMU_TYPE_{DEFAULT 0, ARM_SMMUV3 1, TEGRA241_CMDQV 2, ...}.
    pub r#type: u32,
    pub dev_id: u32,
    /// The nesting parent.
    pub hwpt_id: u32,
    /// Read at exit.
    pub out_viommu_id: u32,
    /// 7.x: vendor data length (0 with the 24-byte 6.12 struct).
    pub data_len: u32,
    pub data_uptr: u64,
    /// The vendor data's first bytes (at most 128), read at exit.
    pub data: Vec<u8>,
    /// 0 on success, else the ioctl's errno.
    pub errno: i32,
}

impl fmt::Display for ViommuAlloc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "iommufd={} size={} flags={:#x} type={} dev_id={} hwpt_id={} out_viommu_id={} data_len={} data_uptr={:#x}",
            handle(self.iommufd),
            self.size,
            self.flags,
            self.r#type,
            self.dev_id,
            self.hwpt_id,
            self.out_viommu_id,
            self.data_len,
            self.data_uptr,
        )?;
        write_list(f, "data", &self.data, |f, b| write!(f, "{b:02x}"), "")?;
        write_errno(f, self.errno)
    }
}

impl Kind for ViommuAlloc {
    const CATEGORY: Category = Category::Setup;
    const SUBSYSTEM: &'static str = "iommufd";

    fn encode(&self, w: &mut FieldWriter<'_>) {
        w.d(0, self.iommufd);
        w.v(self.size);
        w.v(self.flags);
        w.v(self.r#type);
        w.v(self.dev_id);
        w.v(self.hwpt_id);
        w.v(self.out_viommu_id);
        w.v(self.data_len);
        w.d(1, self.data_uptr);
        w.list(&self.data, |w, b| w.b(*b));
        w.z(self.errno);
    }

    fn decode(r: &mut FieldReader<'_, '_>) -> DecodeResult<Self> {
        Ok(ViommuAlloc {
            iommufd: r.d(0)?,
            size: r.v32()?,
            flags: r.v32()?,
            r#type: r.v32()?,
            dev_id: r.v32()?,
            hwpt_id: r.v32()?,
            out_viommu_id: r.v32()?,
            data_len: r.v32()?,
            data_uptr: r.d(1)?,
            data: r.list(|r| r.b())?,
            errno: r.z()?,
        })
    }

    fn errno(&self) -> i32 {
        self.errno
    }

    fn track(&self, _pid: u32) -> String {
        iommufd_object_track(self.iommufd, "viommu", self.out_viommu_id)
    }

    fn samples() -> Vec<Event> {
        vec![Task::new(0, 4300, 4301, "iommufd-test").at(
            5430,
            ViommuAlloc {
                iommufd: fd_handle(4300, 3),
                size: 40,
                flags: 0,
                r#type: 1,
                dev_id: 1,
                hwpt_id: 4,
                out_viommu_id: 9,
                data_len: 0,
                data_uptr: 0,
                data: vec![],
                errno: 0,
            },
        )]
    }
}
