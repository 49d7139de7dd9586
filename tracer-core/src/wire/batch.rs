//! `Events` frames: a batch of events in the trace file's compact chunk
//! codec (`tracefile/codec`), uncompressed. Each batch is self-contained
//! (fresh delta state), so a batch lost with a connection costs only itself.
//!
//! ```text
//! seq       v   the agent's batch sequence number (1, 2, ...; a gap means
//!               batches were dropped or lost in between)
//! count     v   events in the batch
//! ts_first  v   ts_ns of the first event (the codec's delta base)
//! events        codec bytes, exactly `count` events, nothing after
//! ```

use super::error::WireError;
use super::frame::{put_frame, FrameType};
use crate::event::{Event, NodeId};
use crate::tracefile::codec::{ChunkDecoder, ChunkEncoder};
use crate::tracefile::varint::{put_u64, Cursor};

/// Every encoded event takes at least this many bytes (tag, timestamp), so
/// `count` is checked against the payload before anything is allocated.
pub const MIN_EVENT_BYTES: usize = 2;

/// An `Events` frame's payload, events still encoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventBatch {
    pub seq: u64,
    pub count: u32,
    pub ts_first: u64,
    pub data: Vec<u8>,
}

impl EventBatch {
    /// Encodes `events` as one batch (tests, tools; the agent uses
    /// [`BatchEncoder`] to skip the copy).
    pub fn from_events(seq: u64, events: &[Event]) -> Self {
        let mut enc = ChunkEncoder::new();
        for e in events {
            enc.push(e);
        }
        EventBatch {
            seq,
            count: enc.count,
            ts_first: enc.ts_first,
            data: enc.buf,
        }
    }

    pub(crate) fn encode_payload(&self, out: &mut Vec<u8>) {
        put_u64(out, self.seq);
        put_u64(out, u64::from(self.count));
        put_u64(out, self.ts_first);
        out.extend_from_slice(&self.data);
    }

    pub(crate) fn decode_payload(p: &[u8]) -> Result<Self, WireError> {
        let mut c = Cursor::new(p, 0);
        let head = (|| Ok((c.u64()?, c.u32()?, c.u64()?)))();
        let (seq, count, ts_first) = head.map_err(|e| WireError::malformed("events", e))?;
        let data = &p[c.pos()..];
        if (count as usize).saturating_mul(MIN_EVENT_BYTES) > data.len() {
            return Err(WireError::Malformed {
                frame: "events",
                pos: 0,
                detail: format!("count {count} cannot fit in {} bytes of events", data.len()),
            });
        }
        Ok(EventBatch {
            seq,
            count,
            ts_first,
            data: data.to_vec(),
        })
    }

    /// Decodes the events, appending them to `out`; with `node`, every event
    /// is renumbered to that node (the aggregator's id for the sender).
    /// On error, `out` keeps the events decoded before it.
    pub fn decode_into(self, node: Option<NodeId>, out: &mut Vec<Event>) -> Result<(), WireError> {
        let count = self.count;
        // decode_payload checked count against the bytes; check again for
        // hand-built batches.
        if (count as usize).saturating_mul(MIN_EVENT_BYTES) > self.data.len() {
            return Err(WireError::Malformed {
                frame: "events",
                pos: 0,
                detail: format!("count {count} cannot fit in {} bytes", self.data.len()),
            });
        }
        out.reserve(count as usize);
        let mut dec = ChunkDecoder::new(self.data, self.ts_first, count);
        loop {
            match dec.next_event() {
                Ok(Some(mut ev)) => {
                    if let Some(n) = node {
                        ev.node = n;
                    }
                    out.push(ev);
                }
                Ok(None) => return Ok(()),
                Err(e) => return Err(WireError::malformed("events", e)),
            }
        }
    }

    pub fn decode(self, node: Option<NodeId>) -> Result<Vec<Event>, WireError> {
        let mut out = Vec::new();
        self.decode_into(node, &mut out)?;
        Ok(out)
    }
}

/// Builds `Events` frames straight into an output buffer.
pub struct BatchEncoder {
    enc: ChunkEncoder,
    prefix: Vec<u8>,
}

impl Default for BatchEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl BatchEncoder {
    pub fn new() -> Self {
        BatchEncoder {
            enc: ChunkEncoder::new(),
            prefix: Vec::with_capacity(32),
        }
    }

    /// Adds one event; returns its encoded size.
    pub fn push(&mut self, ev: &Event) -> usize {
        self.enc.push(ev)
    }

    /// Events pending.
    pub fn count(&self) -> u32 {
        self.enc.count
    }

    /// Encoded bytes pending.
    pub fn bytes(&self) -> usize {
        self.enc.buf.len()
    }

    /// Appends the pending events as one `Events` frame with `seq` to `out`
    /// and starts a new batch. Returns the number of events written (0:
    /// nothing pending, nothing written).
    pub fn finish(&mut self, seq: u64, out: &mut Vec<u8>) -> u32 {
        let n = self.enc.count;
        if n == 0 {
            return 0;
        }
        self.prefix.clear();
        put_u64(&mut self.prefix, seq);
        put_u64(&mut self.prefix, u64::from(n));
        put_u64(&mut self.prefix, self.enc.ts_first);
        put_frame(FrameType::Events, &[&self.prefix, &self.enc.buf], out);
        self.enc.reset();
        n
    }

    /// Forgets the pending events (they were dropped); returns how many.
    pub fn discard(&mut self) -> u32 {
        let n = self.enc.count;
        self.enc.reset();
        n
    }
}
