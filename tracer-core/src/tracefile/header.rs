//! The file preamble and the self-describing header.
//!
//! ```text
//! magic          8 B   "VFIOTRC\0"
//! version        u16   format version (little-endian)
//! flags          u16   0 (reserved)
//! header_len     u32   length of the JSON header, ≤ MAX_HEADER_LEN
//! header_crc     u32   CRC-32 (IEEE) of bytes 8..16 followed by the JSON
//! header         JSON  a [`TraceHeader`]
//! ```

use std::io::{Read, Write};

use serde::{Deserialize, Serialize};

use super::error::TraceError;
use super::source::Source;
use crate::event::{NodeId, NodeInfo, ProbeStatus};

/// First bytes of every trace file.
pub const MAGIC: [u8; 8] = *b"VFIOTRC\0";
/// The format version this build writes: 2 (the framing), or the version
/// of the newest event kind (each kind says in event/kinds/mod.rs's table
/// the version that added it) when that is later.
pub const FORMAT_VERSION: u16 = if crate::event::KINDS_FORMAT_VERSION > 2 {
    crate::event::KINDS_FORMAT_VERSION
} else {
    2
};
/// The oldest format version this build reads.
pub const MIN_READ_VERSION: u16 = 1;
/// Upper bound on the JSON header, so a hostile length cannot make the reader
/// allocate without limit.
pub const MAX_HEADER_LEN: u32 = 16 << 20;
pub(crate) const PREAMBLE_LEN: u64 = 20;

/// Who recorded what, where and how. Stored as JSON, so fields can be added
/// (with `#[serde(default)]`) without a format version change.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TraceHeader {
    /// Format version the file was written in (a copy of the preamble's).
    pub format_version: u16,
    /// vfio-trace version that wrote the file.
    pub tool_version: String,
    /// `uname -r` of the recording machine.
    pub kernel: String,
    /// `uname -m` of the recording machine.
    pub machine: String,
    /// Nodes whose events the file holds; `Event::node` indexes this. A
    /// writer may add nodes later in the stream (see `TraceWriter::add_node`);
    /// the reader's `nodes()` then grows.
    pub nodes: Vec<NodeInfo>,
    /// Probe table at the start of the recording. Later changes are
    /// `ProbeStatus` events in the stream.
    pub probes: Vec<ProbeStatus>,
    /// The command line that recorded the file.
    pub cmdline: Vec<String>,
    /// CLOCK_REALTIME at the start, nanoseconds since the Unix epoch.
    pub start_realtime_ns: u64,
    /// CLOCK_MONOTONIC of the recording node at the start.
    pub start_monotonic_ns: u64,
}

impl TraceHeader {
    /// The name of node `id`, or `node<id>` when the table has no such node.
    pub fn node_name(&self, id: NodeId) -> std::borrow::Cow<'_, str> {
        node_name(&self.nodes, id)
    }
}

/// The name of node `id` in `nodes`, or `node<id>` when there is none.
pub fn node_name(nodes: &[NodeInfo], id: NodeId) -> std::borrow::Cow<'_, str> {
    match nodes.get(usize::from(id)) {
        Some(n) => std::borrow::Cow::Borrowed(&n.name),
        None => std::borrow::Cow::Owned(format!("node{id}")),
    }
}

/// Writes the preamble and header; returns the bytes written.
pub(crate) fn write_header(
    out: &mut impl Write,
    header: &TraceHeader,
    version: u16,
) -> Result<u64, TraceError> {
    let mut h = header.clone();
    h.format_version = version;
    let json = serde_json::to_vec(&h).expect("a header always serializes");
    let mut buf = Vec::with_capacity(json.len() + PREAMBLE_LEN as usize);
    buf.extend_from_slice(&MAGIC);
    buf.extend_from_slice(&version.to_le_bytes());
    buf.extend_from_slice(&0u16.to_le_bytes());
    buf.extend_from_slice(&(json.len() as u32).to_le_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(&buf[8..16]);
    crc.update(&json);
    buf.extend_from_slice(&crc.finalize().to_le_bytes());
    buf.extend_from_slice(&json);
    out.write_all(&buf)
        .map_err(|source| TraceError::Io { offset: 0, source })?;
    Ok(buf.len() as u64)
}

/// Reads the preamble and the header. Magic and version errors are fatal;
/// a header that is truncated or fails its checksum is reported as
/// `Truncated`/`Corrupt` after the preamble, which a salvaging reader may step
/// over: then the stream is left just after the preamble. The version comes
/// with either.
pub(crate) fn read_header<R: Read>(
    src: &mut Source<R>,
) -> Result<(u16, Result<TraceHeader, TraceError>), TraceError> {
    let mut pre = [0u8; PREAMBLE_LEN as usize];
    let n = src.read_up_to(&mut pre)?;
    if n == 0 {
        return Err(TraceError::Truncated {
            offset: 0,
            what: "file preamble incomplete",
        });
    }
    let magic_len = n.min(8);
    if pre[..magic_len] != MAGIC[..magic_len] {
        return Err(TraceError::BadMagic);
    }
    if n >= 10 {
        check_version(u16::from_le_bytes([pre[8], pre[9]]))?;
    }
    if n < pre.len() {
        return Err(TraceError::Truncated {
            offset: n as u64,
            what: "file preamble incomplete",
        });
    }
    let version = u16::from_le_bytes([pre[8], pre[9]]);
    let len = u32::from_le_bytes(pre[12..16].try_into().expect("4 bytes"));
    let crc = u32::from_le_bytes(pre[16..20].try_into().expect("4 bytes"));
    if len > MAX_HEADER_LEN {
        let e = TraceError::corrupt(
            12,
            "header",
            format!("length {len} exceeds {MAX_HEADER_LEN}"),
        );
        return Ok((version, Err(e)));
    }
    let json = src.read_bounded(len as usize)?;
    if json.len() < len as usize {
        src.unread(&json);
        let e = TraceError::Truncated {
            offset: PREAMBLE_LEN + json.len() as u64,
            what: "header incomplete",
        };
        return Ok((version, Err(e)));
    }
    let mut h = crc32fast::Hasher::new();
    h.update(&pre[8..16]);
    h.update(&json);
    if h.finalize() != crc {
        src.unread(&json);
        let e = TraceError::corrupt(PREAMBLE_LEN, "header", "checksum mismatch");
        return Ok((version, Err(e)));
    }
    let header = serde_json::from_slice::<TraceHeader>(&json)
        .map_err(|e| TraceError::corrupt(PREAMBLE_LEN, "header", e.to_string()));
    Ok((version, header))
}

pub(crate) fn check_version(found: u16) -> Result<(), TraceError> {
    if (MIN_READ_VERSION..=FORMAT_VERSION).contains(&found) {
        Ok(())
    } else {
        Err(TraceError::UnsupportedVersion {
            found,
            min: MIN_READ_VERSION,
            max: FORMAT_VERSION,
        })
    }
}
