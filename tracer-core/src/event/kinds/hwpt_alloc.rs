use std::fmt;

use serde::{Deserialize, Serialize};

use super::{handle, write_errno, write_list, Category, Kind, iommufd_object_track};
use crate::event::build::Task;
use crate::event::{fd_handle, Event};
use crate::tracefile::codec::fields::{FieldReader, FieldWriter};
use crate::tracefile::varint::DecodeResult;

/// IOMMU_HWPT_ALLOC: a hardware page table (paging, nest parent, or nested with vendor data).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HwptAlloc {
    /// [`fd_handle`] of the iommufd the ioctl was issued on.
    pub iommufd: u64,
    /// `size` as the caller passed it (the struct is read up to min(size, the newest layout)).
    pub size: u32,
    /// IOMMU_HWPT_ALLOC_{NEST_PARENT 1, DIRTY_TRACKING 2, FAULT_ID_VALID 4, PASID 8}.
    pub flags: u32,
    pub dev_id: u32,
    /// The IOAS, parent HWPT or vIOMMU it is allocated on.
    pub pt_id: u32,
    /// Read at exit (meaningful when errno is 0).
    pub out_hwpt_id: u32,
    /// IOMMU_HWPT_DATA_{NONE 0, VTD_S1 1, ARM_SMMUV3 2, AMD_GUEST 3}.
    pub data_type: u32,
    pub data_len: u32,
    pub data_uptr: u64,
    pub fault_id: u32,
    /// The vendor data's first bytes (at most 128), read at exit.
    pub data: Vec<u8>,
    /// ARM_SMMUV3: `ste[0]`, `ste[1]` (from `data`; empty for other types).
    pub ste: Vec<u64>,
    /// VTD_S1: the stage-1 page table (0 for other types).
    pub pgtbl_addr: u64,
    /// VTD_S1: its address width.
    pub addr_width: u32,
    /// VTD_S1: `flags` (SRE 1, EAFE 2, WPE 4).
    pub s1_flags: u64,
    /// 0 on success, else the ioctl's errno.
    pub errno: i32,
}

impl fmt::Display for HwptAlloc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "iommufd={} size={} flags={:#x} dev_id={} pt_id={} out_hwpt_id={} data_type={} data_len={} data_uptr={:#x} fault_id={}",
            handle(self.iommufd),
            self.size,
            self.flags,
            self.dev_id,
            self.pt_id,
            self.out_hwpt_id,
            self.data_type,
            self.data_len,
            self.data_uptr,
            self.fault_id,
        )?;
        // The decoded vendor fields of the data's type, then the raw bytes.
        if self.data_type == DATA_VTD_S1 {
            write!(
                f,
                " s1_flags={:#x} pgtbl_addr={:#x} addr_width={}",
                self.s1_flags, self.pgtbl_addr, self.addr_width
            )?;
        }
        if !self.ste.is_empty() {
            write_list(f, "ste", &self.ste, |f, x| write!(f, "{x:#x}"), " ")?;
        }
        write_list(f, "data", &self.data, |f, b| write!(f, "{b:02x}"), "")?;
        write_errno(f, self.errno)
    }
}

/// `IOMMU_HWPT_DATA_VTD_S1`.
const DATA_VTD_S1: u32 = 1;

impl Kind for HwptAlloc {
    const CATEGORY: Category = Category::Setup;
    const SUBSYSTEM: &'static str = "iommufd";

    fn encode(&self, w: &mut FieldWriter<'_>) {
        w.d(0, self.iommufd);
        w.v(self.size);
        w.v(self.flags);
        w.v(self.dev_id);
        w.v(self.pt_id);
        w.v(self.out_hwpt_id);
        w.v(self.data_type);
        w.v(self.data_len);
        w.d(1, self.data_uptr);
        w.v(self.fault_id);
        w.list(&self.data, |w, b| w.b(*b));
        w.list(&self.ste, |w, x| w.v(*x));
        w.d(2, self.pgtbl_addr);
        w.v(self.addr_width);
        w.v(self.s1_flags);
        w.z(self.errno);
    }

    fn decode(r: &mut FieldReader<'_, '_>) -> DecodeResult<Self> {
        Ok(HwptAlloc {
            iommufd: r.d(0)?,
            size: r.v32()?,
            flags: r.v32()?,
            dev_id: r.v32()?,
            pt_id: r.v32()?,
            out_hwpt_id: r.v32()?,
            data_type: r.v32()?,
            data_len: r.v32()?,
            data_uptr: r.d(1)?,
            fault_id: r.v32()?,
            data: r.list(|r| r.b())?,
            ste: r.list(|r| r.v())?,
            pgtbl_addr: r.d(2)?,
            addr_width: r.v32()?,
            s1_flags: r.v()?,
            errno: r.z()?,
        })
    }

    fn errno(&self) -> i32 {
        self.errno
    }

    fn track(&self, _pid: u32) -> String {
        iommufd_object_track(self.iommufd, "hwpt", self.out_hwpt_id)
    }

    fn samples() -> Vec<Event> {
        vec![Task::new(0, 4300, 4301, "iommufd-test").at(
            5360,
            HwptAlloc {
                iommufd: fd_handle(4300, 3),
                size: 48,
                flags: 0,
                dev_id: 1,
                pt_id: 4,
                out_hwpt_id: 5,
                data_type: 2,
                data_len: 16,
                data_uptr: 0x7f0000003000,
                fault_id: 0,
                data: vec![11, 0, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                ste: vec![0x10000000000b, 0x0],
                pgtbl_addr: 0,
                addr_width: 0,
                s1_flags: 0,
                errno: 0,
            },
        )]
    }
}
