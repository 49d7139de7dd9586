use std::fmt;

use serde::{Deserialize, Serialize};

use super::{handle, write_errno, Category, Kind, iommufd_object_track};
use crate::event::build::Task;
use crate::event::{fd_handle, Event};
use crate::tracefile::codec::fields::{FieldReader, FieldWriter};
use crate::tracefile::varint::DecodeResult;

/// IOMMU_VDEVICE_ALLOC: a device's virtual id (e.g. its guest stream id) on a vIOMMU.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VdeviceAlloc {
    /// [`fd_handle`] of the iommufd the ioctl was issued on.
    pub iommufd: u64,
    /// `size` as the caller passed it (the struct is read up to min(size, the newest layout)).
    pub size: u32,
    pub viommu_id: u32,
    pub dev_id: u32,
    /// Read at exit.
    pub out_vdevice_id: u32,
    /// The device's id in the guest.
    pub virt_id: u64,
    /// 0 on success, else the ioctl's errno.
    pub errno: i32,
}

impl fmt::Display for VdeviceAlloc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "iommufd={} size={} viommu_id={} dev_id={} out_vdevice_id={} virt_id={}",
            handle(self.iommufd),
            self.size,
            self.viommu_id,
            self.dev_id,
            self.out_vdevice_id,
            self.virt_id,
        )?;
        write_errno(f, self.errno)
    }
}

impl Kind for VdeviceAlloc {
    const CATEGORY: Category = Category::Setup;
    const SUBSYSTEM: &'static str = "iommufd";

    fn encode(&self, w: &mut FieldWriter<'_>) {
        w.d(0, self.iommufd);
        w.v(self.size);
        w.v(self.viommu_id);
        w.v(self.dev_id);
        w.v(self.out_vdevice_id);
        w.v(self.virt_id);
        w.z(self.errno);
    }

    fn decode(r: &mut FieldReader<'_, '_>) -> DecodeResult<Self> {
        Ok(VdeviceAlloc {
            iommufd: r.d(0)?,
            size: r.v32()?,
            viommu_id: r.v32()?,
            dev_id: r.v32()?,
            out_vdevice_id: r.v32()?,
            virt_id: r.v()?,
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
            5440,
            VdeviceAlloc {
                iommufd: fd_handle(4300, 3),
                size: 24,
                viommu_id: 9,
                dev_id: 1,
                out_vdevice_id: 10,
                virt_id: 8,
                errno: 0,
            },
        )]
    }
}
