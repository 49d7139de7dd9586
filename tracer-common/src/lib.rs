//! Wire types shared by the probes (`tracer-ebpf`) and the user side.
//!
//! Every record in the ring buffer starts with an [`EventHeader`]; its `kind`
//! says which record follows. Records are `#[repr(C)]`, `Copy`, made of fixed
//! arrays and integers only, with explicit padding, so the same bytes mean the
//! same thing on both sides of the ring and the user side can decode them
//! with a size check and an unaligned read.
#![no_std]

pub mod ioctl;
pub mod kprobe;
pub mod probe;

/// Size of the events ring buffer (power of two, page multiple).
pub const RING_BYTES: u32 = 16 << 20;

/// `EventHeader::kind` values. A fixed numeric range: new kinds get new numbers,
/// numbers are never reused.
pub mod kind {
    /// [`crate::ioctl::IoctlRecord`]: one VFIO/KVM/iommufd ioctl, enter and exit paired.
    pub const IOCTL: u16 = 1;
    /// [`crate::kprobe::IommuMapRecord`].
    pub const IOMMU_MAP: u16 = 2;
    /// [`crate::kprobe::IommuUnmapRecord`].
    pub const IOMMU_UNMAP: u16 = 3;
    /// [`crate::kprobe::PinRecord`].
    pub const VFIO_PIN: u16 = 4;
    /// [`crate::kprobe::MsiVectorRecord`].
    pub const MSI_VECTOR: u16 = 5;
    /// [`crate::kprobe::MsiWriteRecord`].
    pub const MSI_WRITE: u16 = 6;
    /// [`crate::kprobe::MsiCookieRecord`].
    pub const MSI_COOKIE: u16 = 7;
    /// [`crate::kprobe::DoorbellMapRecord`].
    pub const DOORBELL_MAP: u16 = 8;
    /// [`crate::kprobe::ResvRecord`].
    pub const RESV_REGIONS: u16 = 9;
    /// [`crate::kprobe::ViommuReqRecord`].
    pub const VIOMMU_REQ: u16 = 10;
    /// [`crate::ioctl::IoctlHead`] then the bytes read at enter and at exit:
    /// the same content as [`IOCTL`] without the unused parts of its arrays
    /// (what the probes send; [`IOCTL`] is still decoded).
    pub const IOCTL_VAR: u16 = 11;
    /// [`crate::kprobe::MsiMaskRecord`].
    pub const MSI_MASK: u16 = 12;
}

/// Common prefix of every ring-buffer record.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventHeader {
    /// One of [`kind`].
    pub kind: u16,
    /// The [`probe::ProbeId`] that produced the record.
    pub probe: u16,
    /// CPU the record was produced on.
    pub cpu: u32,
    /// `bpf_ktime_get_ns()`: CLOCK_MONOTONIC, nanoseconds.
    pub ts_ns: u64,
    /// Thread group id (the process id users see).
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// `bpf_get_current_comm()`, NUL padded.
    pub comm: [u8; 16],
}

impl EventHeader {
    pub const SIZE: usize = core::mem::size_of::<Self>();
}

/// Indexes of the per-CPU `DROPS` counters.
pub mod drop_reason {
    /// The ring buffer had no room for a record.
    pub const RING_FULL: u32 = 0;
    /// The per-thread table pairing syscall enter and exit was full.
    pub const PENDING_FULL: u32 = 1;
    /// A user-memory read failed (the record is still sent, with length 0).
    pub const READ_FAILED: u32 = 2;
    pub const COUNT: u32 = 3;
}

/// A ring-buffer record type the user side may read from raw bytes:
/// `#[repr(C)]`, `Copy`, integers and integer arrays only, no padding holes,
/// so every bit pattern is a valid value and every byte is initialized.
///
/// # Safety
///
/// Implement it only through [`wire_structs!`], for types with the layout
/// above (the user crate's tests check the sizes).
pub unsafe trait Wire: Copy {}

/// Declares the wire structs, once: each gets [`Wire`] and, with the `user`
/// feature, `aya::Pod` (reading them out of BPF maps).
macro_rules! wire_structs {
    ($($t:path),* $(,)?) => {
        $(
            // SAFETY: see `Wire`: every listed type is `#[repr(C)]` integers
            // and integer arrays without padding holes.
            unsafe impl Wire for $t {}
            #[cfg(feature = "user")]
            // SAFETY: as above.
            unsafe impl aya::Pod for $t {}
        )*
    };
}

// The one list of wire structs.
wire_structs!(
    EventHeader,
    ioctl::IoctlRecord,
    ioctl::IoctlHead,
    kprobe::IommuMapRecord,
    kprobe::IommuUnmapRecord,
    kprobe::PinRecord,
    kprobe::MsiVectorRecord,
    kprobe::MsiWriteRecord,
    kprobe::MsiCookieRecord,
    kprobe::DoorbellMapRecord,
    kprobe::ResvRecord,
    kprobe::ViommuReqRecord,
    kprobe::MsiMaskRecord,
);
