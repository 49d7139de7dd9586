use std::fmt;

use serde::{Deserialize, Serialize};

use super::{handle, write_errno, write_list, Category, Kind, iommufd_object_track};
use crate::event::build::Task;
use crate::event::{fd_handle, Event};
use crate::tracefile::codec::fields::{FieldReader, FieldWriter};
use crate::tracefile::varint::DecodeResult;

/// IOMMU_HWPT_INVALIDATE: cache invalidation requests for a nested HWPT or a vIOMMU.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HwptInvalidate {
    /// [`fd_handle`] of the iommufd the ioctl was issued on.
    pub iommufd: u64,
    /// `size` as the caller passed it (the struct is read up to min(size, the newest layout)).
    pub size: u32,
    /// The nested HWPT or vIOMMU.
    pub hwpt_id: u32,
    pub data_uptr: u64,
    /// IOMMU_HWPT_INVALIDATE_DATA_VTD_S1 0, IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3 1.
    pub data_type: u32,
    pub entry_len: u32,
    /// Entries the caller passed.
    pub entry_num: u32,
    /// `entry_num` read at exit: the entries the kernel handled.
    pub out_entry_num: u32,
    /// The first entries (at most 128 bytes: 4 VT-d or 8 SMMUv3 ones), each as its little-endian u64 words: VT-d `[addr, npages, flags]`, SMMUv3 `[cmd0, cmd1]`.
    pub entries: Vec<Vec<u64>>,
    /// 0 on success, else the ioctl's errno.
    pub errno: i32,
}

impl fmt::Display for HwptInvalidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "iommufd={} size={} hwpt_id={} data_uptr={:#x} data_type={} entry_len={} entry_num={} out_entry_num={}",
            handle(self.iommufd),
            self.size,
            self.hwpt_id,
            self.data_uptr,
            self.data_type,
            self.entry_len,
            self.entry_num,
            self.out_entry_num,
        )?;
        write_list(f, "entries", &self.entries, |f, e| write_list(f, "", e, |f, x| write!(f, "{x:#x}"), " "), " ")?;
        write_errno(f, self.errno)
    }
}

impl Kind for HwptInvalidate {
    const CATEGORY: Category = Category::Guest;
    const SUBSYSTEM: &'static str = "iommufd";

    fn encode(&self, w: &mut FieldWriter<'_>) {
        w.d(0, self.iommufd);
        w.v(self.size);
        w.v(self.hwpt_id);
        w.d(1, self.data_uptr);
        w.v(self.data_type);
        w.v(self.entry_len);
        w.v(self.entry_num);
        w.v(self.out_entry_num);
        w.list(&self.entries, |w, e| w.list(e, |w, x| w.v(*x)));
        w.z(self.errno);
    }

    fn decode(r: &mut FieldReader<'_, '_>) -> DecodeResult<Self> {
        Ok(HwptInvalidate {
            iommufd: r.d(0)?,
            size: r.v32()?,
            hwpt_id: r.v32()?,
            data_uptr: r.d(1)?,
            data_type: r.v32()?,
            entry_len: r.v32()?,
            entry_num: r.v32()?,
            out_entry_num: r.v32()?,
            entries: r.list(|r| r.list(|r| r.v()))?,
            errno: r.z()?,
        })
    }

    fn errno(&self) -> i32 {
        self.errno
    }

    fn track(&self, _pid: u32) -> String {
        iommufd_object_track(self.iommufd, "hwpt", self.hwpt_id)
    }

    fn samples() -> Vec<Event> {
        vec![Task::new(0, 4300, 4301, "iommufd-test").at(
            5400,
            HwptInvalidate {
                iommufd: fd_handle(4300, 3),
                size: 32,
                hwpt_id: 6,
                data_uptr: 0x7f0000006000,
                data_type: 0,
                entry_len: 24,
                entry_num: 1,
                out_entry_num: 1,
                entries: vec![vec![0x80000000, 0x10, 0x1]],
                errno: 0,
            },
        )]
    }
}
