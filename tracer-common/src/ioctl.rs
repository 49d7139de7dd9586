//! The ioctls decoded at `syscalls:sys_enter_ioctl` / `sys_exit_ioctl`, and
//! how many bytes of their argument struct the probe copies from user memory
//! on enter and on exit.
//!
//! Command numbers are from include/uapi/linux/{vfio,kvm,iommufd}.h.

use crate::EventHeader;

pub const VFIO_DEVICE_SET_IRQS: u32 = 0x3B6E;
pub const VFIO_IOMMU_GET_INFO: u32 = 0x3B70;
pub const VFIO_IOMMU_MAP_DMA: u32 = 0x3B71;
pub const VFIO_IOMMU_UNMAP_DMA: u32 = 0x3B72;
/// `VFIO_SET_IOMMU` (`_IO(';', 102)`), so a MAP_DMA before it can be explained.
pub const VFIO_SET_IOMMU: u32 = 0x3B66;
pub const IOMMU_IOAS_MAP: u32 = 0x3B85;
pub const IOMMU_IOAS_UNMAP: u32 = 0x3B86;
// The rest of iommufd (`_IO(';', 0x80 + n)`, include/uapi/linux/iommufd.h).
pub const IOMMU_DESTROY: u32 = 0x3B80;
pub const IOMMU_IOAS_ALLOC: u32 = 0x3B81;
pub const IOMMU_IOAS_ALLOW_IOVAS: u32 = 0x3B82;
pub const IOMMU_IOAS_COPY: u32 = 0x3B83;
pub const IOMMU_IOAS_IOVA_RANGES: u32 = 0x3B84;
pub const IOMMU_OPTION: u32 = 0x3B87;
pub const IOMMU_HWPT_ALLOC: u32 = 0x3B89;
pub const IOMMU_GET_HW_INFO: u32 = 0x3B8A;
pub const IOMMU_HWPT_SET_DIRTY_TRACKING: u32 = 0x3B8B;
pub const IOMMU_HWPT_GET_DIRTY_BITMAP: u32 = 0x3B8C;
pub const IOMMU_HWPT_INVALIDATE: u32 = 0x3B8D;
pub const IOMMU_FAULT_QUEUE_ALLOC: u32 = 0x3B8E;
pub const IOMMU_IOAS_MAP_FILE: u32 = 0x3B8F;
pub const IOMMU_VIOMMU_ALLOC: u32 = 0x3B90;
pub const IOMMU_VDEVICE_ALLOC: u32 = 0x3B91;
pub const IOMMU_VEVENTQ_ALLOC: u32 = 0x3B93;
// VFIO device cdev (`_IO(';', 100 + n)`, include/uapi/linux/vfio.h).
pub const VFIO_DEVICE_BIND_IOMMUFD: u32 = 0x3B76;
pub const VFIO_DEVICE_ATTACH_IOMMUFD_PT: u32 = 0x3B77;
pub const VFIO_DEVICE_DETACH_IOMMUFD_PT: u32 = 0x3B78;
pub const KVM_SET_USER_MEMORY_REGION: u32 = 0x4020_AE46;
pub const KVM_SET_USER_MEMORY_REGION2: u32 = 0x40A0_AE49;

/// Most bytes copied from user memory per direction. Enough for a
/// `vfio_irq_set` with 123 eventfds, a `vfio_iommu_type1_info` with its IOVA
/// range capability, and `kvm_userspace_memory_region2` (160 B).
pub const IOCTL_DATA_MAX: usize = 512;

/// How many bytes the probe reads at one side of the syscall.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadLen {
    /// Nothing.
    None,
    /// Exactly this many bytes (a fixed-size UAPI struct).
    Fixed(u32),
    /// `argsz` (the struct's first u32) bytes, at most [`IOCTL_DATA_MAX`];
    /// if that read faults, the first `min` bytes.
    Argsz { min: u32 },
    /// iommufd / VFIO-cdev extensible structs: the caller's `size` / `argsz`
    /// (the first u32) bytes, but at most `known` (the newest layout this
    /// build decodes) and at least the 4 bytes of `size` itself (the kernel
    /// reads those too). Never more than the caller declared beyond that:
    /// an older caller's shorter struct is read short, a newer caller's
    /// longer one is read up to `known`.
    Size { known: u32 },
}

/// Most bytes of a user array read per ioctl (the second-level read of
/// [`array_plan`]): 8 IOVA ranges, 4 VT-d or 8 SMMUv3 invalidation
/// entries, or 128 bytes of vendor data.
pub const ARRAY_DATA_MAX: usize = 128;

/// How many bytes of the array an ioctl's struct points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArrayLen {
    /// `u32 at count_off` × this many bytes per entry.
    Entries(u32),
    /// `u32 at count_off` × `u32 at this offset` (HWPT_INVALIDATE's
    /// `entry_num` × `entry_len`).
    EntriesOf(u32),
}

/// A user array behind a pointer field of an ioctl's struct, read once at
/// exit (after the kernel filled output arrays; input arrays are only read
/// by the kernel), its pointer and length taken from the bytes read at
/// enter (what the caller declared), at most [`ARRAY_DATA_MAX`] bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArrayPlan {
    /// Offset of the `__aligned_u64` user pointer in the struct.
    pub ptr_off: u32,
    /// Offset of the u32 count (entries or bytes).
    pub count_off: u32,
    pub len: ArrayLen,
}

/// The user array to read for `cmd`, if any.
#[inline(always)]
pub fn array_plan(cmd: u32) -> Option<ArrayPlan> {
    let (ptr_off, count_off, len) = match cmd {
        // allowed_iovas (u64 @16) of num_iovas (u32 @8) iommu_iova_range
        IOMMU_IOAS_IOVA_RANGES | IOMMU_IOAS_ALLOW_IOVAS => (16, 8, ArrayLen::Entries(16)),
        // data_uptr (@32) of data_len (@28) bytes: the vendor page-table data
        IOMMU_HWPT_ALLOC => (32, 28, ArrayLen::Entries(1)),
        // data_uptr (@16) of data_len (@12) bytes, filled by the kernel
        IOMMU_GET_HW_INFO => (16, 12, ArrayLen::Entries(1)),
        // data_uptr (@8) of entry_num (@24) entries of entry_len (@20) bytes
        IOMMU_HWPT_INVALIDATE => (8, 24, ArrayLen::EntriesOf(20)),
        // data_uptr (@32) of data_len (@24) bytes (7.x's vendor vIOMMU data)
        IOMMU_VIOMMU_ALLOC => (32, 24, ArrayLen::Entries(1)),
        _ => return None,
    };
    Some(ArrayPlan {
        ptr_off,
        count_off,
        len,
    })
}

/// What to copy on enter and on exit for `cmd`, or `None` when the command is
/// not traced (the in-kernel filter).
#[inline(always)]
pub fn copy_plan(cmd: u32) -> Option<(ReadLen, ReadLen)> {
    match cmd {
        // vfio_iommu_type1_dma_map: argsz, flags, vaddr, iova, size
        VFIO_IOMMU_MAP_DMA => Some((ReadLen::Fixed(32), ReadLen::None)),
        // vfio_iommu_type1_dma_unmap: the kernel writes back `size` = bytes unmapped
        VFIO_IOMMU_UNMAP_DMA => Some((ReadLen::Fixed(24), ReadLen::Fixed(24))),
        // vfio_irq_set header (20 B) + `count` s32 eventfds for DATA_EVENTFD
        VFIO_DEVICE_SET_IRQS => Some((ReadLen::Argsz { min: 20 }, ReadLen::None)),
        // vfio_iommu_type1_info is filled in by the kernel, with its capability chain
        VFIO_IOMMU_GET_INFO => Some((ReadLen::None, ReadLen::Argsz { min: 24 })),
        VFIO_SET_IOMMU => Some((ReadLen::None, ReadLen::None)),
        // kvm_userspace_memory_region / _region2
        KVM_SET_USER_MEMORY_REGION => Some((ReadLen::Fixed(32), ReadLen::None)),
        KVM_SET_USER_MEMORY_REGION2 => Some((ReadLen::Fixed(160), ReadLen::None)),
        // iommu_ioas_map: the kernel writes back the allocated iova
        IOMMU_IOAS_MAP => Some(both(40)),
        // iommu_ioas_unmap: the kernel writes back `length` = bytes unmapped
        IOMMU_IOAS_UNMAP => Some(both(24)),
        // The rest of iommufd: every struct is read at enter (inputs) and
        // at exit (the `out_*` and in/out fields the kernel wrote back),
        // `size` bytes up to the newest layout (bytes in the comments).
        IOMMU_DESTROY => Some(enter(8)),
        IOMMU_IOAS_ALLOC => Some(both(12)),
        IOMMU_IOAS_ALLOW_IOVAS => Some(enter(24)),
        IOMMU_IOAS_COPY => Some(both(40)),
        IOMMU_IOAS_IOVA_RANGES => Some(both(32)),
        IOMMU_OPTION => Some(both(24)),
        IOMMU_HWPT_ALLOC => Some(both(48)),
        IOMMU_GET_HW_INFO => Some(both(40)),
        IOMMU_HWPT_SET_DIRTY_TRACKING => Some(enter(16)),
        IOMMU_HWPT_GET_DIRTY_BITMAP => Some(enter(48)),
        IOMMU_HWPT_INVALIDATE => Some(both(32)),
        IOMMU_FAULT_QUEUE_ALLOC => Some(both(16)),
        IOMMU_IOAS_MAP_FILE => Some(both(40)),
        IOMMU_VIOMMU_ALLOC => Some(both(40)),
        IOMMU_VDEVICE_ALLOC => Some(both(24)),
        IOMMU_VEVENTQ_ALLOC => Some(both(32)),
        // vfio_device_bind_iommufd (7.x adds token_uuid_ptr: 24 B)
        VFIO_DEVICE_BIND_IOMMUFD => Some(both(24)),
        // vfio_device_attach_iommufd_pt: the kernel writes back pt_id
        VFIO_DEVICE_ATTACH_IOMMUFD_PT => Some(both(16)),
        VFIO_DEVICE_DETACH_IOMMUFD_PT => Some(enter(12)),
        _ => None,
    }
}

/// An extensible struct of at most `known` bytes, read at enter and at exit.
#[inline(always)]
const fn both(known: u32) -> (ReadLen, ReadLen) {
    (ReadLen::Size { known }, ReadLen::Size { known })
}

/// An extensible struct of at most `known` bytes, read at enter only.
#[inline(always)]
const fn enter(known: u32) -> (ReadLen, ReadLen) {
    (ReadLen::Size { known }, ReadLen::None)
}

/// One traced ioctl: the enter and exit of the same thread, paired in the kernel.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct IoctlRecord {
    /// `ts_ns` is the exit time.
    pub hdr: EventHeader,
    /// Monotonic time of sys_enter_ioctl.
    pub enter_ns: u64,
    /// The user pointer passed as the third argument.
    pub arg: u64,
    /// The syscall's return value (negative errno on failure).
    pub ret: i64,
    pub fd: u32,
    pub cmd: u32,
    /// Bytes of `in_data` read at enter (0: nothing read or the read faulted).
    pub in_len: u32,
    /// Bytes of `out_data` read at exit.
    pub out_len: u32,
    /// The device's name when a kernel probe inside the ioctl saw it
    /// (`vfio_pci_set_irqs_ioctl`), NUL padded; empty otherwise.
    pub dev: [u8; crate::kprobe::DEV_NAME_LEN],
    pub in_data: [u8; IOCTL_DATA_MAX],
    pub out_data: [u8; IOCTL_DATA_MAX],
}

impl IoctlRecord {
    pub const SIZE: usize = core::mem::size_of::<Self>();
}

/// The fixed part of a [`crate::kind::IOCTL_VAR`] record: the same fields as
/// [`IoctlRecord`] without its two 512-byte arrays. The record is exactly
/// `IoctlHead::SIZE + in_len + out_len + arr_len` bytes: the head, then the
/// `in_len` bytes read at enter, the `out_len` bytes read at exit, then the
/// `arr_len` bytes of the user array ([`array_plan`]). The probes
/// send this form (a MAP_DMA is 144 bytes instead of 1136).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct IoctlHead {
    /// `ts_ns` is the exit time.
    pub hdr: EventHeader,
    /// Monotonic time of sys_enter_ioctl.
    pub enter_ns: u64,
    /// The user pointer passed as the third argument.
    pub arg: u64,
    /// The syscall's return value (negative errno on failure).
    pub ret: i64,
    pub fd: u32,
    pub cmd: u32,
    /// Bytes read at enter (at most [`IOCTL_DATA_MAX`]; 0: nothing read or the read faulted).
    pub in_len: u32,
    /// Bytes read at exit (at most [`IOCTL_DATA_MAX`]).
    pub out_len: u32,
    /// Bytes of the user array of [`array_plan`] read at exit (at most
    /// [`ARRAY_DATA_MAX`]; 0: none, or the read faulted).
    pub arr_len: u32,
    pub _pad: u32,
    /// The device's name when a kernel probe inside the ioctl saw it
    /// (`vfio_pci_set_irqs_ioctl`), NUL padded; empty otherwise.
    pub dev: [u8; crate::kprobe::DEV_NAME_LEN],
}

impl IoctlHead {
    pub const SIZE: usize = core::mem::size_of::<Self>();
}

/// Room to build the longest [`crate::kind::IOCTL_VAR`] record (the probe's
/// per-CPU scratch); only the used prefix is sent.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct IoctlVarBuf {
    pub head: IoctlHead,
    pub data: [u8; 2 * IOCTL_DATA_MAX + ARRAY_DATA_MAX],
}

/// What the enter probe keeps per thread until the exit probe pairs it.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct PendingIoctl {
    pub enter_ns: u64,
    pub arg: u64,
    pub fd: u32,
    pub cmd: u32,
    pub in_len: u32,
    pub _pad: u32,
    pub in_data: [u8; IOCTL_DATA_MAX],
}
