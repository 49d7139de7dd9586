use std::fmt;

use serde::{Deserialize, Serialize};

use super::{handle, write_errno, Category, Kind};
use crate::event::build::Task;
use crate::event::{fd_handle, Event};
use crate::tracefile::codec::fields::{FieldReader, FieldWriter};
use crate::tracefile::varint::DecodeResult;

/// VFIO_DEVICE_DETACH_IOMMUFD_PT: a device (or a PASID of it) detached from its IOAS/HWPT.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VfioDetachPt {
    /// [`fd_handle`] of the VFIO device cdev (`/dev/vfio/devices/vfioN`) the ioctl was issued on.
    pub device: u64,
    /// `argsz` as the caller passed it (the struct is read up to min(argsz, the newest layout)).
    pub argsz: u32,
    /// VFIO_DEVICE_DETACH_PASID 1.
    pub flags: u32,
    pub pasid: u32,
    /// 0 on success, else the ioctl's errno.
    pub errno: i32,
}

impl fmt::Display for VfioDetachPt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "device={} argsz={} flags={:#x} pasid={}",
            handle(self.device),
            self.argsz,
            self.flags,
            self.pasid,
        )?;
        write_errno(f, self.errno)
    }
}

impl Kind for VfioDetachPt {
    const CATEGORY: Category = Category::Setup;
    const SUBSYSTEM: &'static str = "vfio";

    fn encode(&self, w: &mut FieldWriter<'_>) {
        w.d(0, self.device);
        w.v(self.argsz);
        w.v(self.flags);
        w.v(self.pasid);
        w.z(self.errno);
    }

    fn decode(r: &mut FieldReader<'_, '_>) -> DecodeResult<Self> {
        Ok(VfioDetachPt {
            device: r.d(0)?,
            argsz: r.v32()?,
            flags: r.v32()?,
            pasid: r.v32()?,
            errno: r.z()?,
        })
    }

    fn errno(&self) -> i32 {
        self.errno
    }

    fn track(&self, _pid: u32) -> String {
        format!("vfio device {}", handle(self.device))
    }

    fn samples() -> Vec<Event> {
        vec![Task::new(0, 4300, 4301, "iommufd-test").at(
            5480,
            VfioDetachPt {
                device: fd_handle(4300, 30),
                argsz: 12,
                flags: 0,
                pasid: 0,
                errno: 0,
            },
        )]
    }
}
