use std::fmt;

use serde::{Deserialize, Serialize};

use super::{handle, write_errno, Category, Kind};
use crate::event::build::Task;
use crate::event::{fd_handle, Event};
use crate::tracefile::codec::fields::{FieldReader, FieldWriter};
use crate::tracefile::varint::DecodeResult;

/// VFIO_DEVICE_BIND_IOMMUFD: a VFIO device cdev bound to an iommufd; the kernel returns its dev_id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VfioBindIommufd {
    /// [`fd_handle`] of the VFIO device cdev (`/dev/vfio/devices/vfioN`) the ioctl was issued on.
    pub device: u64,
    /// `argsz` as the caller passed it (the struct is read up to min(argsz, the newest layout)).
    pub argsz: u32,
    /// VFIO_DEVICE_BIND_FLAG_TOKEN 1 (7.x).
    pub flags: u32,
    /// The iommufd's fd in the caller.
    pub iommufd: i32,
    /// Read at exit: the device's dev_id in that iommufd.
    pub out_devid: u32,
    /// 7.x: user pointer to the VF token.
    pub token_uuid_ptr: u64,
    /// 0 on success, else the ioctl's errno.
    pub errno: i32,
}

impl fmt::Display for VfioBindIommufd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "device={} argsz={} flags={:#x} iommufd={} out_devid={} token_uuid_ptr={:#x}",
            handle(self.device),
            self.argsz,
            self.flags,
            self.iommufd,
            self.out_devid,
            self.token_uuid_ptr,
        )?;
        write_errno(f, self.errno)
    }
}

impl Kind for VfioBindIommufd {
    const CATEGORY: Category = Category::Setup;
    const SUBSYSTEM: &'static str = "vfio";

    fn encode(&self, w: &mut FieldWriter<'_>) {
        w.d(0, self.device);
        w.v(self.argsz);
        w.v(self.flags);
        w.z(self.iommufd);
        w.v(self.out_devid);
        w.d(1, self.token_uuid_ptr);
        w.z(self.errno);
    }

    fn decode(r: &mut FieldReader<'_, '_>) -> DecodeResult<Self> {
        Ok(VfioBindIommufd {
            device: r.d(0)?,
            argsz: r.v32()?,
            flags: r.v32()?,
            iommufd: r.z()?,
            out_devid: r.v32()?,
            token_uuid_ptr: r.d(1)?,
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
            5460,
            VfioBindIommufd {
                device: fd_handle(4300, 30),
                argsz: 16,
                flags: 0,
                iommufd: 20,
                out_devid: 1,
                token_uuid_ptr: 0,
                errno: 0,
            },
        )]
    }
}
