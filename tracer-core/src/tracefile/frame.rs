//! The frame in front of every chunk.
//!
//! ```text
//! magic        4 B   "VTCK"
//! kind         u8    1 = events (zstd payload), 2 = node added (JSON NodeInfo),
//!                    3 = end of recording (written by finish; empty payload)
//! reserved     3 B   0
//! payload_len  u32   bytes of payload after this frame, ≤ MAX_CHUNK_PAYLOAD
//! raw_len      u32   uncompressed payload bytes, ≤ MAX_CHUNK_RAW
//! count        u32   events in the chunk
//! ts_first     u64   ts_ns of the first event (the delta base)
//! ts_last      u64   ts_ns of the last event
//! payload_crc  u32   CRC-32 (IEEE) of the payload as stored
//! frame_crc    u32   CRC-32 of bytes 0..40 of this frame
//! ```
//! All integers little-endian. The frame's own checksum lets a reader trust
//! the lengths before it reads the payload, and lets a salvaging reader tell
//! a real frame from payload bytes that happen to spell the magic.

use super::error::TraceError;

pub(crate) const FRAME_MAGIC: [u8; 4] = *b"VTCK";
pub(crate) const FRAME_LEN: usize = 44;
/// Largest uncompressed chunk a reader accepts (and so allocates).
pub const MAX_CHUNK_RAW: u32 = 16 << 20;
/// Largest stored payload a reader accepts (zstd's bound for MAX_CHUNK_RAW).
pub const MAX_CHUNK_PAYLOAD: u32 = MAX_CHUNK_RAW + (1 << 20);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum FrameKind {
    Events = 1,
    Node = 2,
    End = 3,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Frame {
    pub kind: FrameKind,
    pub payload_len: u32,
    pub raw_len: u32,
    pub count: u32,
    pub ts_first: u64,
    pub ts_last: u64,
    pub payload_crc: u32,
}

impl Frame {
    pub fn encode(&self) -> [u8; FRAME_LEN] {
        let mut b = [0u8; FRAME_LEN];
        b[0..4].copy_from_slice(&FRAME_MAGIC);
        b[4] = self.kind as u8;
        b[8..12].copy_from_slice(&self.payload_len.to_le_bytes());
        b[12..16].copy_from_slice(&self.raw_len.to_le_bytes());
        b[16..20].copy_from_slice(&self.count.to_le_bytes());
        b[20..28].copy_from_slice(&self.ts_first.to_le_bytes());
        b[28..36].copy_from_slice(&self.ts_last.to_le_bytes());
        b[36..40].copy_from_slice(&self.payload_crc.to_le_bytes());
        let crc = crc32fast::hash(&b[0..40]);
        b[40..44].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Checks and parses a frame read at file offset `offset`.
    pub fn parse(b: &[u8; FRAME_LEN], offset: u64) -> Result<Frame, TraceError> {
        let bad = |detail: String| TraceError::corrupt(offset, "chunk frame", detail);
        let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"));
        let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        if b[0..4] != FRAME_MAGIC {
            return Err(bad(format!("bad magic {:02x?}", &b[0..4])));
        }
        if crc32fast::hash(&b[0..40]) != u32_at(40) {
            return Err(bad("frame checksum mismatch".into()));
        }
        let kind = match b[4] {
            1 => FrameKind::Events,
            2 => FrameKind::Node,
            3 => FrameKind::End,
            k => return Err(bad(format!("unknown chunk kind {k}"))),
        };
        let f = Frame {
            kind,
            payload_len: u32_at(8),
            raw_len: u32_at(12),
            count: u32_at(16),
            ts_first: u64_at(20),
            ts_last: u64_at(28),
            payload_crc: u32_at(36),
        };
        if f.payload_len > MAX_CHUNK_PAYLOAD || f.raw_len > MAX_CHUNK_RAW {
            return Err(bad(format!(
                "lengths {}/{} exceed the limits",
                f.payload_len, f.raw_len
            )));
        }
        // Every event takes at least two bytes (tag, timestamp).
        if u64::from(f.count) * 2 > u64::from(f.raw_len) {
            return Err(bad(format!(
                "{} events cannot fit {} bytes",
                f.count, f.raw_len
            )));
        }
        Ok(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_round_trip_and_checks() {
        let f = Frame {
            kind: FrameKind::Events,
            payload_len: 100,
            raw_len: 300,
            count: 20,
            ts_first: 5,
            ts_last: 9,
            payload_crc: 0xdead_beef,
        };
        let b = f.encode();
        assert_eq!(Frame::parse(&b, 0).unwrap(), f);
        for i in 0..FRAME_LEN {
            let mut c = b;
            c[i] ^= 0x10;
            assert!(Frame::parse(&c, 7).is_err(), "flip at {i} accepted");
        }
    }
}
