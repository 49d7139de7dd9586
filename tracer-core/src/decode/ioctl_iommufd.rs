//! The iommufd and VFIO-cdev ioctls beyond IOAS_MAP/UNMAP: the structs of
//! include/uapi/linux/iommufd.h and vfio.h (6.12 through 7.3), as the probe
//! copied them.
//!
//! Every struct is extensible: the probe reads min(`size`, newest layout)
//! bytes at enter (inputs) and at exit (what the kernel wrote back), so a
//! field the caller's older, shorter struct does not reach reads as 0, as
//! the kernel sees it. `out_*` fields are the struct's bytes at exit: the
//! kernel's answer when `errno` is 0 (on failure it wrote nothing back and
//! they are what the caller left there). Arrays behind a pointer field
//! (IOVA ranges, invalidation entries, vendor data) come from `data_arr`,
//! at most `ARRAY_DATA_MAX` bytes, read at exit.

use tracer_common::ioctl as cmds;

use super::Bytes;
use crate::event::{
    EventKind, FaultQueueAlloc, HwptAlloc, HwptGetDirtyBitmap, HwptInvalidate,
    HwptSetDirtyTracking, IoasAlloc, IoasAllowIovas, IoasCopy, IoasIovaRanges, IoasMapFile,
    IommufdDestroy, IommufdHwInfo, IommufdOption, IovaRange, VdeviceAlloc, VeventqAlloc,
    VfioAttachPt, VfioBindIommufd, VfioDetachPt, ViommuAlloc,
};

/// `enum iommu_hwpt_data_type`.
const HWPT_DATA_VTD_S1: u32 = 1;
const HWPT_DATA_ARM_SMMUV3: u32 = 2;
/// `struct iommu_iova_range`.
const RANGE_LEN: usize = 16;
/// Bound on the invalidation entries recorded (besides `ARRAY_DATA_MAX`).
const MAX_ENTRIES: usize = 8;

/// One captured ioctl, as the generic decoder hands it over.
pub(super) struct Io<'a> {
    /// `fd_handle` of the fd the ioctl was issued on.
    pub handle: u64,
    pub data_in: Bytes<'a>,
    pub data_out: Bytes<'a>,
    pub data_arr: Bytes<'a>,
    pub errno: i32,
}

/// The event of `cmd`, or `None` for a command this module does not know.
pub(super) fn decode(cmd: u32, io: &Io<'_>) -> Option<EventKind> {
    let (i, o, errno, h) = (io.data_in, io.data_out, io.errno, io.handle);
    Some(match cmd {
        cmds::IOMMU_DESTROY => IommufdDestroy {
            iommufd: h,
            size: i.u32(0),
            id: i.u32(4),
            errno,
        }
        .into(),
        cmds::IOMMU_IOAS_ALLOC => IoasAlloc {
            iommufd: h,
            size: i.u32(0),
            flags: i.u32(4),
            out_ioas_id: o.u32(8),
            errno,
        }
        .into(),
        cmds::IOMMU_IOAS_ALLOW_IOVAS => IoasAllowIovas {
            iommufd: h,
            size: i.u32(0),
            ioas_id: i.u32(4),
            num_iovas: i.u32(8),
            allowed_iovas: i.u64(16),
            iovas: ranges(io.data_arr, i.u32(8)),
            errno,
        }
        .into(),
        cmds::IOMMU_IOAS_COPY => IoasCopy {
            iommufd: h,
            size: i.u32(0),
            flags: i.u32(4),
            dst_ioas_id: i.u32(8),
            src_ioas_id: i.u32(12),
            length: i.u64(16),
            dst_iova: i.u64(24),
            src_iova: i.u64(32),
            out_dst_iova: o.u64(24),
            errno,
        }
        .into(),
        cmds::IOMMU_IOAS_IOVA_RANGES => IoasIovaRanges {
            iommufd: h,
            size: i.u32(0),
            ioas_id: i.u32(4),
            num_iovas: i.u32(8),
            allowed_iovas: i.u64(16),
            out_num_iovas: o.u32(8),
            out_iova_alignment: o.u64(24),
            // The kernel fills min(caller's capacity, ranges it has).
            iovas: ranges(io.data_arr, i.u32(8).min(o.u32(8))),
            errno,
        }
        .into(),
        cmds::IOMMU_OPTION => IommufdOption {
            iommufd: h,
            size: i.u32(0),
            option_id: i.u32(4),
            op: i.u16(8),
            object_id: i.u32(12),
            val64: i.u64(16),
            out_val64: o.u64(16),
            errno,
        }
        .into(),
        cmds::IOMMU_HWPT_ALLOC => hwpt_alloc(io),
        cmds::IOMMU_GET_HW_INFO => IommufdHwInfo {
            iommufd: h,
            size: i.u32(0),
            flags: i.u32(4),
            dev_id: i.u32(8),
            data_len: i.u32(12),
            data_uptr: i.u64(16),
            in_data_type: i.u32(24),
            out_data_len: o.u32(12),
            out_data_type: o.u32(24),
            out_max_pasid_log2: o.0.get(28).copied().unwrap_or(0),
            out_capabilities: o.u64(32),
            data: io.data_arr.0.to_vec(),
            errno,
        }
        .into(),
        cmds::IOMMU_HWPT_SET_DIRTY_TRACKING => HwptSetDirtyTracking {
            iommufd: h,
            size: i.u32(0),
            flags: i.u32(4),
            hwpt_id: i.u32(8),
            errno,
        }
        .into(),
        cmds::IOMMU_HWPT_GET_DIRTY_BITMAP => HwptGetDirtyBitmap {
            iommufd: h,
            size: i.u32(0),
            hwpt_id: i.u32(4),
            flags: i.u32(8),
            iova: i.u64(16),
            length: i.u64(24),
            page_size: i.u64(32),
            data: i.u64(40),
            errno,
        }
        .into(),
        cmds::IOMMU_HWPT_INVALIDATE => HwptInvalidate {
            iommufd: h,
            size: i.u32(0),
            hwpt_id: i.u32(4),
            data_uptr: i.u64(8),
            data_type: i.u32(16),
            entry_len: i.u32(20),
            entry_num: i.u32(24),
            out_entry_num: o.u32(24),
            entries: entries(io.data_arr, i.u32(20), i.u32(24)),
            errno,
        }
        .into(),
        cmds::IOMMU_FAULT_QUEUE_ALLOC => FaultQueueAlloc {
            iommufd: h,
            size: i.u32(0),
            flags: i.u32(4),
            out_fault_id: o.u32(8),
            out_fault_fd: o.u32(12),
            errno,
        }
        .into(),
        cmds::IOMMU_IOAS_MAP_FILE => IoasMapFile {
            iommufd: h,
            size: i.u32(0),
            flags: i.u32(4),
            ioas_id: i.u32(8),
            fd: i.i32(12),
            start: i.u64(16),
            length: i.u64(24),
            iova: i.u64(32),
            out_iova: o.u64(32),
            errno,
        }
        .into(),
        cmds::IOMMU_VIOMMU_ALLOC => ViommuAlloc {
            iommufd: h,
            size: i.u32(0),
            flags: i.u32(4),
            r#type: i.u32(8),
            dev_id: i.u32(12),
            hwpt_id: i.u32(16),
            out_viommu_id: o.u32(20),
            data_len: i.u32(24),
            data_uptr: i.u64(32),
            data: io.data_arr.0.to_vec(),
            errno,
        }
        .into(),
        cmds::IOMMU_VDEVICE_ALLOC => VdeviceAlloc {
            iommufd: h,
            size: i.u32(0),
            viommu_id: i.u32(4),
            dev_id: i.u32(8),
            out_vdevice_id: o.u32(12),
            virt_id: i.u64(16),
            errno,
        }
        .into(),
        cmds::IOMMU_VEVENTQ_ALLOC => VeventqAlloc {
            iommufd: h,
            size: i.u32(0),
            flags: i.u32(4),
            viommu_id: i.u32(8),
            r#type: i.u32(12),
            veventq_depth: i.u32(16),
            out_veventq_id: o.u32(20),
            out_veventq_fd: o.u32(24),
            errno,
        }
        .into(),
        cmds::VFIO_DEVICE_BIND_IOMMUFD => VfioBindIommufd {
            device: h,
            argsz: i.u32(0),
            flags: i.u32(4),
            iommufd: i.i32(8),
            out_devid: o.u32(12),
            token_uuid_ptr: i.u64(16),
            errno,
        }
        .into(),
        cmds::VFIO_DEVICE_ATTACH_IOMMUFD_PT => VfioAttachPt {
            device: h,
            argsz: i.u32(0),
            flags: i.u32(4),
            pt_id: i.u32(8),
            out_pt_id: o.u32(8),
            pasid: i.u32(12),
            errno,
        }
        .into(),
        cmds::VFIO_DEVICE_DETACH_IOMMUFD_PT => VfioDetachPt {
            device: h,
            argsz: i.u32(0),
            flags: i.u32(4),
            pasid: i.u32(8),
            errno,
        }
        .into(),
        _ => return None,
    })
}

/// `struct iommu_hwpt_alloc` and its vendor data: VT-d S1 `{u64 flags; u64
/// pgtbl_addr; u32 addr_width}`, SMMUv3 `{le64 ste[2]}`.
fn hwpt_alloc(io: &Io<'_>) -> EventKind {
    let (i, o, a) = (io.data_in, io.data_out, io.data_arr);
    let data_type = i.u32(24);
    let vtd = data_type == HWPT_DATA_VTD_S1;
    let ste = if data_type == HWPT_DATA_ARM_SMMUV3 {
        (0..2)
            .filter(|k| a.has(8 * k, 8))
            .map(|k| a.u64(8 * k))
            .collect()
    } else {
        Vec::new()
    };
    HwptAlloc {
        iommufd: io.handle,
        size: i.u32(0),
        flags: i.u32(4),
        dev_id: i.u32(8),
        pt_id: i.u32(12),
        out_hwpt_id: o.u32(16),
        data_type,
        data_len: i.u32(28),
        data_uptr: i.u64(32),
        fault_id: i.u32(40),
        data: a.0.to_vec(),
        ste,
        pgtbl_addr: if vtd { a.u64(8) } else { 0 },
        addr_width: if vtd { a.u32(16) } else { 0 },
        s1_flags: if vtd { a.u64(0) } else { 0 },
        errno: io.errno,
    }
    .into()
}

/// The first `count` `iommu_iova_range`s that were captured.
fn ranges(a: Bytes<'_>, count: u32) -> Vec<IovaRange> {
    (0..count as usize)
        .map(|k| k * RANGE_LEN)
        .take_while(|&at| a.has(at, RANGE_LEN))
        .map(|at| IovaRange {
            start: a.u64(at),
            last: a.u64(at + 8),
        })
        .collect()
}

/// The first of `num` entries of `len` bytes that were captured whole, each
/// as its little-endian u64 words (a trailing partial word is dropped).
fn entries(a: Bytes<'_>, len: u32, num: u32) -> Vec<Vec<u64>> {
    let len = len as usize;
    if len == 0 {
        return Vec::new();
    }
    (0..num as usize)
        .take(MAX_ENTRIES)
        .map(|k| k * len)
        .take_while(|&at| a.has(at, len))
        .map(|at| (0..len / 8).map(|w| a.u64(at + 8 * w)).collect())
        .collect()
}
