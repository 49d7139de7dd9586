//! Ring-buffer records → typed [`Event`]s.
//!
//! Records come from the kernel: every length is checked before it is used,
//! and anything unexpected is a [`DecodeError`] naming the offending value,
//! never a panic.

mod bytes;
#[cfg(any(test, feature = "encode"))]
pub mod encode;
mod ioctl;
mod ioctl_iommufd;
mod kprobe;

use thiserror::Error;
/// Wire structs that may be read from raw bytes (every bit pattern valid):
/// the one list is tracer-common's `wire_structs!`.
use tracer_common::Wire as WireStruct;
use tracer_common::{
    ioctl::{IoctlHead, IoctlRecord},
    kind,
    kprobe::{
        DoorbellMapRecord, IommuMapRecord, IommuUnmapRecord, MsiCookieRecord, MsiMaskRecord,
        MsiVectorRecord, MsiWriteRecord, PinRecord, ResvRecord, ViommuReqRecord,
    },
    EventHeader,
};

use crate::event::{Comm, Event, NodeId};
pub use bytes::Bytes;
pub use kprobe::{device_from_name, VIOMMU_NOT_QUEUED};

#[derive(Debug, Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("record of {got} bytes is shorter than the {need} bytes its kind needs")]
    NotEnoughBytes { need: usize, got: usize },
    #[error("record kind {kind} must be {expected} bytes, got {got}")]
    SizeMismatch {
        kind: u16,
        expected: usize,
        got: usize,
    },
    #[error("unknown record kind {0}")]
    UnknownKind(u16),
    #[error("ioctl {cmd:#x}: field `{field}` claims {value} bytes, at most {max} were captured")]
    BadLength {
        cmd: u32,
        field: &'static str,
        value: u64,
        max: u64,
    },
    #[error(
        "ioctl {cmd:#x}: variable-length record of {got} bytes, but its head \
         ({head} bytes) says in_len {in_len} + out_len {out_len} + arr_len {arr_len}"
    )]
    VarLength {
        cmd: u32,
        head: usize,
        in_len: u32,
        out_len: u32,
        arr_len: u32,
        got: usize,
    },
    #[error("ioctl command {0:#x} is not one vfio-trace decodes")]
    UnknownIoctl(u32),
    #[error("{what}: count {value} exceeds the maximum {max}")]
    BadCount {
        what: &'static str,
        value: u64,
        max: u64,
    },
    #[error("virtio-iommu request type {0} is not one of ATTACH..PROBE (1..5)")]
    UnknownViommuOp(u8),
}

/// Decodes one ring-buffer record produced on `node` into `out` (most
/// records are one event; a group's reserved regions are several). Returns
/// how many events were added.
pub fn decode_into(bytes: &[u8], node: NodeId, out: &mut Vec<Event>) -> Result<usize, DecodeError> {
    let hdr: EventHeader = read_struct(bytes)?;
    let mk = |kind| Event {
        ts_ns: hdr.ts_ns,
        node,
        pid: hdr.pid,
        tid: hdr.tid,
        comm: Comm(hdr.comm),
        kind,
    };
    let one = match hdr.kind {
        kind::IOCTL => ioctl::decode(&exact::<IoctlRecord>(bytes, hdr.kind)?)?,
        kind::IOCTL_VAR => ioctl::decode_var(&read_struct::<IoctlHead>(bytes)?, bytes)?,
        kind::IOMMU_MAP => kprobe::iommu_map(&exact::<IommuMapRecord>(bytes, hdr.kind)?),
        kind::IOMMU_UNMAP => kprobe::iommu_unmap(&exact::<IommuUnmapRecord>(bytes, hdr.kind)?),
        kind::VFIO_PIN => kprobe::pin(&exact::<PinRecord>(bytes, hdr.kind)?),
        kind::MSI_VECTOR => kprobe::msi_vector(&exact::<MsiVectorRecord>(bytes, hdr.kind)?),
        kind::MSI_WRITE => kprobe::msi_write(&exact::<MsiWriteRecord>(bytes, hdr.kind)?),
        kind::MSI_MASK => kprobe::msi_mask(&exact::<MsiMaskRecord>(bytes, hdr.kind)?),
        kind::MSI_COOKIE => kprobe::msi_cookie(&exact::<MsiCookieRecord>(bytes, hdr.kind)?),
        kind::DOORBELL_MAP => kprobe::doorbell_map(&exact::<DoorbellMapRecord>(bytes, hdr.kind)?),
        kind::VIOMMU_REQ => kprobe::viommu_req(&exact::<ViommuReqRecord>(bytes, hdr.kind)?)?,
        kind::RESV_REGIONS => {
            let rec = exact::<ResvRecord>(bytes, hdr.kind)?;
            let before = out.len();
            kprobe::resv_regions(&rec, |k| out.push(mk(k)))?;
            return Ok(out.len() - before);
        }
        other => return Err(DecodeError::UnknownKind(other)),
    };
    out.push(mk(one));
    Ok(1)
}

/// Decodes a record that yields exactly one event.
pub fn decode_record(bytes: &[u8], node: NodeId) -> Result<Event, DecodeError> {
    let mut out = Vec::with_capacity(1);
    decode_into(bytes, node, &mut out)?;
    out.into_iter().next().ok_or(DecodeError::BadCount {
        what: "events in record",
        value: 0,
        max: 1,
    })
}

/// Reads record type `T`, which must be exactly `bytes.len()` long.
fn exact<T: Copy + WireStruct>(bytes: &[u8], kind: u16) -> Result<T, DecodeError> {
    let size = core::mem::size_of::<T>();
    if bytes.len() != size {
        return Err(DecodeError::SizeMismatch {
            kind,
            expected: size,
            got: bytes.len(),
        });
    }
    read_struct(bytes)
}

/// Reads a plain-old-data wire struct from the start of `bytes`.
fn read_struct<T: Copy + WireStruct>(bytes: &[u8]) -> Result<T, DecodeError> {
    let size = core::mem::size_of::<T>();
    if bytes.len() < size {
        return Err(DecodeError::NotEnoughBytes {
            need: size,
            got: bytes.len(),
        });
    }
    // SAFETY: `T` is a `#[repr(C)]` wire struct of integers and integer arrays
    // (`tracer_common::Wire`), so every bit pattern is valid; the length was
    // checked above and the read is unaligned.
    Ok(unsafe { core::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
}

/// `ret` of a syscall → the errno field convention (0 = success).
fn errno_of(ret: i64) -> i32 {
    if ret < 0 {
        i32::try_from(-ret).unwrap_or(i32::MAX)
    } else {
        0
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_iommufd;
