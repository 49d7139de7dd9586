//! What can go wrong reading or writing a trace file. Every error about the
//! file's content names the byte offset where it was found.

use std::io;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum TraceError {
    #[error("I/O error at byte {offset}: {source}")]
    Io {
        offset: u64,
        #[source]
        source: io::Error,
    },
    #[error("not a vfio-trace file: bad magic at byte 0")]
    BadMagic,
    #[error(
        "trace format version {found} cannot be read by this build \
         (it reads versions {min} to {max}); use a newer vfio-trace"
    )]
    UnsupportedVersion { found: u16, min: u16, max: u16 },
    #[error("this build cannot write trace format version {0}")]
    UnwritableVersion(u16),
    #[error("file truncated at byte {offset}: {what}")]
    Truncated { offset: u64, what: &'static str },
    #[error("corrupt {what} at byte {offset}: {detail}")]
    Corrupt {
        offset: u64,
        what: &'static str,
        detail: String,
    },
    #[error("event of {size} bytes is larger than a chunk may hold ({max})")]
    EventTooLarge { size: usize, max: usize },
}

impl TraceError {
    /// Byte offset in the file the error is about, when it is about content.
    pub fn offset(&self) -> Option<u64> {
        match self {
            TraceError::Io { offset, .. }
            | TraceError::Truncated { offset, .. }
            | TraceError::Corrupt { offset, .. } => Some(*offset),
            TraceError::BadMagic => Some(0),
            TraceError::UnsupportedVersion { .. } => Some(8),
            TraceError::UnwritableVersion(_) | TraceError::EventTooLarge { .. } => None,
        }
    }

    pub(crate) fn corrupt(offset: u64, what: &'static str, detail: impl Into<String>) -> Self {
        TraceError::Corrupt {
            offset,
            what,
            detail: detail.into(),
        }
    }
}

/// Damage a salvaging reader stepped over.
#[derive(Debug)]
pub struct TraceWarning {
    /// Where the damage starts.
    pub offset: u64,
    /// Bytes skipped before the next good chunk (or the end of the file).
    pub skipped: u64,
    pub error: TraceError,
}

impl std::fmt::Display for TraceWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "skipped {} bytes from byte {}: {}",
            self.skipped, self.offset, self.error
        )
    }
}
