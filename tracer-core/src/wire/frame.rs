//! The 16-byte frame header, its validation and the frame checksum.

use super::error::WireError;
use super::message::Message;

pub const MAGIC: [u8; 4] = *b"VTAW";
/// The version this build speaks. The header layout itself never changes,
/// so any version can read the version byte and answer with a `Goodbye`.
pub const PROTOCOL_VERSION: u8 = 1;
pub const HEADER_LEN: usize = 16;
/// Largest payload any frame may carry (an event batch): 4 MiB.
pub const MAX_PAYLOAD: u32 = 4 << 20;
/// Limit before the peer is known (until its `Hello` is accepted): an
/// unauthenticated peer cannot make the aggregator allocate more than this.
pub const MAX_HELLO_PAYLOAD: u32 = 64 << 10;

/// Frame types (a contract: append, never renumber).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FrameType {
    Hello = 1,
    Welcome = 2,
    Events = 3,
    Health = 4,
    Ping = 5,
    Pong = 6,
    Goodbye = 7,
}

impl FrameType {
    pub fn from_u8(b: u8) -> Option<Self> {
        Some(match b {
            1 => FrameType::Hello,
            2 => FrameType::Welcome,
            3 => FrameType::Events,
            4 => FrameType::Health,
            5 => FrameType::Ping,
            6 => FrameType::Pong,
            7 => FrameType::Goodbye,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            FrameType::Hello => "hello",
            FrameType::Welcome => "welcome",
            FrameType::Events => "events",
            FrameType::Health => "health",
            FrameType::Ping => "ping",
            FrameType::Pong => "pong",
            FrameType::Goodbye => "goodbye",
        }
    }
}

/// A validated frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    pub ftype: FrameType,
    /// Payload bytes that follow (already checked against the limit).
    pub len: u32,
    pub crc: u32,
    /// Header bytes 0..12, the start of the checksummed range.
    raw: [u8; 12],
}

impl FrameHeader {
    /// Checks the payload against the header's checksum.
    pub fn verify(&self, payload: &[u8]) -> Result<(), WireError> {
        if payload.len() != self.len as usize {
            return Err(WireError::Truncated {
                what: "payload",
                need: self.len as usize,
                have: payload.len(),
            });
        }
        let found = crc(&self.raw, &[payload]);
        if found != self.crc {
            return Err(WireError::BadChecksum {
                frame: self.ftype.name(),
                expected: self.crc,
                found,
            });
        }
        Ok(())
    }
}

fn crc(head: &[u8], parts: &[&[u8]]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(head);
    for p in parts {
        h.update(p);
    }
    h.finalize()
}

/// Validates a header. `max_len` is the reader's current payload limit (at
/// most [`MAX_PAYLOAD`]; [`MAX_HELLO_PAYLOAD`] before the hello).
pub fn parse_header(b: &[u8; HEADER_LEN], max_len: u32) -> Result<FrameHeader, WireError> {
    let magic = [b[0], b[1], b[2], b[3]];
    if magic != MAGIC {
        return Err(WireError::BadMagic { found: magic });
    }
    if b[4] != PROTOCOL_VERSION {
        return Err(WireError::UnsupportedVersion {
            found: b[4],
            supported: PROTOCOL_VERSION,
        });
    }
    let ftype = FrameType::from_u8(b[5]).ok_or(WireError::UnknownFrameType(b[5]))?;
    let flags = u16::from_le_bytes([b[6], b[7]]);
    if flags != 0 {
        return Err(WireError::ReservedFlags(flags));
    }
    let len = u32::from_le_bytes([b[8], b[9], b[10], b[11]]);
    let max = max_len.min(MAX_PAYLOAD);
    if len > max {
        return Err(WireError::Oversize {
            frame: ftype.name(),
            len,
            max,
        });
    }
    let mut raw = [0u8; 12];
    raw.copy_from_slice(&b[..12]);
    Ok(FrameHeader {
        ftype,
        len,
        crc: u32::from_le_bytes([b[12], b[13], b[14], b[15]]),
        raw,
    })
}

/// Appends a frame whose payload is the concatenation of `parts`.
pub(crate) fn put_frame(ftype: FrameType, parts: &[&[u8]], out: &mut Vec<u8>) {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let mut head = [0u8; HEADER_LEN];
    head[..4].copy_from_slice(&MAGIC);
    head[4] = PROTOCOL_VERSION;
    head[5] = ftype as u8;
    head[8..12].copy_from_slice(&(len as u32).to_le_bytes());
    let c = crc(&head[..12], parts);
    head[12..16].copy_from_slice(&c.to_le_bytes());
    out.reserve(HEADER_LEN + len);
    out.extend_from_slice(&head);
    for p in parts {
        out.extend_from_slice(p);
    }
}

/// Appends `msg` as one frame to `out`.
pub fn encode_frame(msg: &Message, out: &mut Vec<u8>) {
    let mut payload = Vec::new();
    msg.encode_payload(&mut payload);
    put_frame(msg.frame_type(), &[&payload], out);
}

/// Decodes the first frame of `buf`: `Ok(None)` when `buf` holds only a
/// valid prefix of one (read more), else the message and the bytes it took.
/// Garbage is detected as soon as the magic or header disagree.
pub fn decode_frame(buf: &[u8], max_len: u32) -> Result<Option<(Message, usize)>, WireError> {
    let n = buf.len().min(4);
    if buf[..n] != MAGIC[..n] {
        let mut found = [0u8; 4];
        found[..n].copy_from_slice(&buf[..n]);
        return Err(WireError::BadMagic { found });
    }
    let Some(head) = buf.first_chunk::<HEADER_LEN>() else {
        return Ok(None);
    };
    let h = parse_header(head, max_len)?;
    let end = HEADER_LEN + h.len as usize;
    let Some(payload) = buf.get(HEADER_LEN..end) else {
        return Ok(None);
    };
    h.verify(payload)?;
    Ok(Some((Message::decode_payload(h.ftype, payload)?, end)))
}
