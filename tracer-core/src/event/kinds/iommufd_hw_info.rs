use std::fmt;

use serde::{Deserialize, Serialize};

use super::{handle, write_errno, write_list, Category, Kind, iommufd_track};
use crate::event::build::Task;
use crate::event::{fd_handle, Event};
use crate::tracefile::codec::fields::{FieldReader, FieldWriter};
use crate::tracefile::varint::DecodeResult;

/// IOMMU_GET_HW_INFO: what the IOMMU behind a bound device supports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IommufdHwInfo {
    /// [`fd_handle`] of the iommufd the ioctl was issued on.
    pub iommufd: u64,
    /// `size` as the caller passed it (the struct is read up to min(size, the newest layout)).
    pub size: u32,
    /// IOMMU_HW_INFO_FLAG_INPUT_TYPE 1 (7.x).
    pub flags: u32,
    pub dev_id: u32,
    /// The caller's buffer length.
    pub data_len: u32,
    pub data_uptr: u64,
    /// As passed (an input with FLAG_INPUT_TYPE).
    pub in_data_type: u32,
    /// `data_len` read at exit: the length the kernel supports.
    pub out_data_len: u32,
    /// Read at exit: IOMMU_HW_INFO_TYPE_{NONE 0, INTEL_VTD 1, ARM_SMMUV3 2, TEGRA241_CMDQV 3, ...}.
    pub out_data_type: u32,
    /// Read at exit.
    pub out_max_pasid_log2: u8,
    /// Read at exit: IOMMU_HW_CAP_{DIRTY_TRACKING 1, PCI_PASID_EXEC 2, PCI_PASID_PRIV 4}.
    pub out_capabilities: u64,
    /// The info data's first bytes (at most min(data_len, 128)), read at exit.
    pub data: Vec<u8>,
    /// 0 on success, else the ioctl's errno.
    pub errno: i32,
}

impl fmt::Display for IommufdHwInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "iommufd={} size={} flags={:#x} dev_id={} data_len={} data_uptr={:#x} in_data_type={} out_data_len={} out_data_type={} out_max_pasid_log2={} out_capabilities={:#x}",
            handle(self.iommufd),
            self.size,
            self.flags,
            self.dev_id,
            self.data_len,
            self.data_uptr,
            self.in_data_type,
            self.out_data_len,
            self.out_data_type,
            self.out_max_pasid_log2,
            self.out_capabilities,
        )?;
        write_list(f, "data", &self.data, |f, b| write!(f, "{b:02x}"), "")?;
        write_errno(f, self.errno)
    }
}

impl Kind for IommufdHwInfo {
    const CATEGORY: Category = Category::Setup;
    const SUBSYSTEM: &'static str = "iommufd";

    fn encode(&self, w: &mut FieldWriter<'_>) {
        w.d(0, self.iommufd);
        w.v(self.size);
        w.v(self.flags);
        w.v(self.dev_id);
        w.v(self.data_len);
        w.d(1, self.data_uptr);
        w.v(self.in_data_type);
        w.v(self.out_data_len);
        w.v(self.out_data_type);
        w.b(self.out_max_pasid_log2);
        w.v(self.out_capabilities);
        w.list(&self.data, |w, b| w.b(*b));
        w.z(self.errno);
    }

    fn decode(r: &mut FieldReader<'_, '_>) -> DecodeResult<Self> {
        Ok(IommufdHwInfo {
            iommufd: r.d(0)?,
            size: r.v32()?,
            flags: r.v32()?,
            dev_id: r.v32()?,
            data_len: r.v32()?,
            data_uptr: r.d(1)?,
            in_data_type: r.v32()?,
            out_data_len: r.v32()?,
            out_data_type: r.v32()?,
            out_max_pasid_log2: r.b()?,
            out_capabilities: r.v()?,
            data: r.list(|r| r.b())?,
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
            5370,
            IommufdHwInfo {
                iommufd: fd_handle(4300, 3),
                size: 40,
                flags: 0,
                dev_id: 1,
                data_len: 40,
                data_uptr: 0x7f0000004000,
                in_data_type: 0,
                out_data_len: 24,
                out_data_type: 1,
                out_max_pasid_log2: 20,
                out_capabilities: 1,
                data: vec![0, 0, 0, 0, 0, 0, 0, 0, 102, 4, 210, 0, 0, 0, 0, 0],
                errno: 0,
            },
        )]
    }
}
