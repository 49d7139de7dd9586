use std::fmt;

use serde::{Deserialize, Serialize};

use super::{handle, write_errno, Category, Kind};
use crate::event::build::Task;
use crate::event::{fd_handle, Event};
use crate::tracefile::codec::fields::{FieldReader, FieldWriter};
use crate::tracefile::varint::DecodeResult;

/// VFIO_DEVICE_ATTACH_IOMMUFD_PT: a bound device attached to an IOAS or HWPT (optionally a PASID).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VfioAttachPt {
    /// [`fd_handle`] of the VFIO device cdev (`/dev/vfio/devices/vfioN`) the ioctl was issued on.
    pub device: u64,
    /// `argsz` as the caller passed it (the struct is read up to min(argsz, the newest layout)).
    pub argsz: u32,
    /// VFIO_DEVICE_ATTACH_PASID 1.
    pub flags: u32,
    /// The IOAS or HWPT asked for.
    pub pt_id: u32,
    /// `pt_id` read at exit: the HWPT attached (the one the kernel created for an IOAS).
    pub out_pt_id: u32,
    pub pasid: u32,
    /// 0 on success, else the ioctl's errno.
    pub errno: i32,
}

impl fmt::Display for VfioAttachPt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "device={} argsz={} flags={:#x} pt_id={} out_pt_id={} pasid={}",
            handle(self.device),
            self.argsz,
            self.flags,
            self.pt_id,
            self.out_pt_id,
            self.pasid,
        )?;
        write_errno(f, self.errno)
    }
}

impl Kind for VfioAttachPt {
    const CATEGORY: Category = Category::Setup;
    const SUBSYSTEM: &'static str = "vfio";

    fn encode(&self, w: &mut FieldWriter<'_>) {
        w.d(0, self.device);
        w.v(self.argsz);
        w.v(self.flags);
        w.v(self.pt_id);
        w.v(self.out_pt_id);
        w.v(self.pasid);
        w.z(self.errno);
    }

    fn decode(r: &mut FieldReader<'_, '_>) -> DecodeResult<Self> {
        Ok(VfioAttachPt {
            device: r.d(0)?,
            argsz: r.v32()?,
            flags: r.v32()?,
            pt_id: r.v32()?,
            out_pt_id: r.v32()?,
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
            5470,
            VfioAttachPt {
                device: fd_handle(4300, 30),
                argsz: 16,
                flags: 0,
                pt_id: 2,
                out_pt_id: 3,
                pasid: 0,
                errno: 0,
            },
        )]
    }
}
