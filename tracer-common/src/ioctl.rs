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
        IOMMU_IOAS_MAP => Some((ReadLen::Fixed(40), ReadLen::Fixed(40))),
        // iommu_ioas_unmap: the kernel writes back `length` = bytes unmapped
        IOMMU_IOAS_UNMAP => Some((ReadLen::Fixed(24), ReadLen::Fixed(24))),
        _ => None,
    }
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
/// `IoctlHead::SIZE + in_len + out_len` bytes: the head, then the `in_len`
/// bytes read at enter, then the `out_len` bytes read at exit. The probes
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
    pub data: [u8; 2 * IOCTL_DATA_MAX],
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
