//! Ring-buffer records → typed [`Event`]s.
//!
//! Records come from the kernel: every length is checked before it is used,
//! and anything unexpected is a [`DecodeError`] naming the offending value,
//! never a panic.

mod bytes;
mod ioctl;

use thiserror::Error;
use tracer_common::{ioctl::IoctlRecord, kind, EventHeader};

use crate::event::{Comm, Event, NodeId};
pub use bytes::Bytes;

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
    #[error("ioctl command {0:#x} is not one vfio-trace decodes")]
    UnknownIoctl(u32),
}

/// Decodes one ring-buffer record produced on `node`.
pub fn decode_record(bytes: &[u8], node: NodeId) -> Result<Event, DecodeError> {
    let hdr: EventHeader = read_struct(bytes, EventHeader::SIZE)?;
    let kind = match hdr.kind {
        kind::IOCTL => {
            if bytes.len() != IoctlRecord::SIZE {
                return Err(DecodeError::SizeMismatch {
                    kind: hdr.kind,
                    expected: IoctlRecord::SIZE,
                    got: bytes.len(),
                });
            }
            let rec: IoctlRecord = read_struct(bytes, IoctlRecord::SIZE)?;
            ioctl::decode(&rec)?
        }
        other => return Err(DecodeError::UnknownKind(other)),
    };
    Ok(Event {
        ts_ns: hdr.ts_ns,
        node,
        pid: hdr.pid,
        tid: hdr.tid,
        comm: Comm(hdr.comm),
        kind,
    })
}

/// Reads a plain-old-data wire struct from the start of `bytes`.
fn read_struct<T: Copy + WireStruct>(bytes: &[u8], size: usize) -> Result<T, DecodeError> {
    debug_assert_eq!(size, core::mem::size_of::<T>());
    if bytes.len() < size {
        return Err(DecodeError::NotEnoughBytes {
            need: size,
            got: bytes.len(),
        });
    }
    // SAFETY: `T` is a `#[repr(C)]` wire struct of integers and integer arrays
    // (sealed by `WireStruct`), so every bit pattern is valid; the length was
    // checked above and the read is unaligned.
    Ok(unsafe { core::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
}

/// Wire structs that may be read from raw bytes: every bit pattern valid.
trait WireStruct {}
impl WireStruct for EventHeader {}
impl WireStruct for IoctlRecord {}

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
