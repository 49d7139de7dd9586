//! What can be wrong with a frame. Each variant names the offending value.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WireError {
    #[error("bad magic {found:02x?} (expected \"VTAW\"): not a vfio-trace agent stream")]
    BadMagic { found: [u8; 4] },
    #[error("protocol version {found} is not supported (this build speaks version {supported})")]
    UnsupportedVersion { found: u8, supported: u8 },
    #[error("unknown frame type {0}")]
    UnknownFrameType(u8),
    #[error("reserved header flags {0:#06x} are set")]
    ReservedFlags(u16),
    #[error("{frame} frame of {len} bytes exceeds the limit of {max} bytes")]
    Oversize {
        frame: &'static str,
        len: u32,
        max: u32,
    },
    #[error("truncated {what}: {have} of {need} bytes")]
    Truncated {
        what: &'static str,
        need: usize,
        have: usize,
    },
    #[error(
        "{frame} frame checksum mismatch: header says {expected:#010x}, payload has {found:#010x}"
    )]
    BadChecksum {
        frame: &'static str,
        expected: u32,
        found: u32,
    },
    #[error("malformed {frame} frame at payload byte {pos}: {detail}")]
    Malformed {
        frame: &'static str,
        pos: usize,
        detail: String,
    },
}

impl WireError {
    pub(crate) fn malformed(frame: &'static str, e: crate::tracefile::varint::DecodeError) -> Self {
        WireError::Malformed {
            frame,
            pos: e.pos,
            detail: e.detail,
        }
    }
}
