//! The compact binary event encoding inside a chunk (format version 1).
//!
//! Each chunk is self-contained: the encoder's state (previous timestamp,
//! node, task table, per-field previous values) starts fresh in every chunk,
//! so a chunk decodes without the ones before it (salvage, resync).
//!
//! One event is:
//!
//! ```text
//! tag      u8      low 5 bits: kind id (see kinds.rs), 31: the id is 31 +
//!                  the varint after the tag (format 4: ids 31 and up);
//!                  0x20: node follows; 0x40: task ref follows; 0x80:
//!                  reserved, must be 0
//! [id]     varint  kind id - 31, when the tag's low bits are 31
//! ts       varint  zigzag(ts_ns - previous ts_ns); the first event's base is
//!                  the frame's ts_first
//! [node]   varint  node id (else: previous event's node; 0 at chunk start)
//! [task]   varint  index in the chunk's task table; index == table length
//!                  adds an entry: pid varint, tid varint, comm len u8 (≤16),
//!                  comm bytes (trailing NULs dropped). Else: previous task;
//!                  (0, 0, "") at chunk start.
//! fields           the kind's layout (kinds.rs)
//! ```

pub(crate) mod fields;
mod kinds;

use std::collections::HashMap;

use super::varint::{put_i64, put_u64, Cursor, DecodeResult};
use crate::event::{Comm, Event};

const NODE_FLAG: u8 = 0x20;
const TASK_FLAG: u8 = 0x40;
const RESERVED_FLAG: u8 = 0x80;
const KIND_MASK: u8 = 0x1f;
/// Tag kind bits saying "the kind id is this plus the varint that follows".
const KIND_EXT: u8 = KIND_MASK;

/// Per-field "previous value" slots of one kind, for delta-coded fields.
const SLOTS: usize = 4;

type Task = (u32, u32, Comm);

/// Delta state shared by the encoder and decoder.
#[derive(Clone)]
struct Deltas([[u64; SLOTS]; kinds::KIND_COUNT]);

impl Deltas {
    fn new() -> Self {
        Deltas([[0; SLOTS]; kinds::KIND_COUNT])
    }
}

/// Builds one chunk's uncompressed payload.
pub(crate) struct ChunkEncoder {
    pub buf: Vec<u8>,
    pub count: u32,
    /// `ts_ns` of the chunk's first event: the delta base.
    pub ts_first: u64,
    pub ts_last: u64,
    prev_ts: u64,
    node: u16,
    task: Task,
    tasks: HashMap<Task, u32>,
    deltas: Deltas,
}

impl ChunkEncoder {
    pub fn new() -> Self {
        ChunkEncoder {
            buf: Vec::new(),
            count: 0,
            ts_first: 0,
            ts_last: 0,
            prev_ts: 0,
            node: 0,
            task: (0, 0, Comm::default()),
            tasks: HashMap::new(),
            deltas: Deltas::new(),
        }
    }

    /// Forgets the chunk (after it was written).
    pub fn reset(&mut self) {
        self.buf.clear();
        self.count = 0;
        self.ts_first = 0;
        self.ts_last = 0;
        self.prev_ts = 0;
        self.node = 0;
        self.task = (0, 0, Comm::default());
        self.tasks.clear();
        self.deltas = Deltas::new();
    }

    /// Appends one event; returns its encoded size.
    pub fn push(&mut self, ev: &Event) -> usize {
        let start = self.buf.len();
        if self.count == 0 {
            self.prev_ts = ev.ts_ns;
            self.ts_first = ev.ts_ns;
        }
        let kind_id = kinds::kind_id(&ev.kind);
        let mut tag = kind_id.min(KIND_EXT);
        if ev.node != self.node {
            tag |= NODE_FLAG;
        }
        let task = (ev.pid, ev.tid, ev.comm);
        if task != self.task {
            tag |= TASK_FLAG;
        }
        self.buf.push(tag);
        if kind_id >= KIND_EXT {
            put_u64(&mut self.buf, u64::from(kind_id - KIND_EXT));
        }
        put_i64(&mut self.buf, ev.ts_ns.wrapping_sub(self.prev_ts) as i64);
        self.prev_ts = ev.ts_ns;
        if tag & NODE_FLAG != 0 {
            put_u64(&mut self.buf, u64::from(ev.node));
            self.node = ev.node;
        }
        if tag & TASK_FLAG != 0 {
            let next = self.tasks.len() as u32;
            let idx = *self.tasks.entry(task).or_insert(next);
            put_u64(&mut self.buf, u64::from(idx));
            if idx == next {
                put_u64(&mut self.buf, u64::from(ev.pid));
                put_u64(&mut self.buf, u64::from(ev.tid));
                let len = ev.comm.0.iter().rposition(|&c| c != 0).map_or(0, |p| p + 1);
                self.buf.push(len as u8);
                self.buf.extend_from_slice(&ev.comm.0[..len]);
            }
            self.task = task;
        }
        kinds::encode(&ev.kind, &mut self.buf, &mut self.deltas);
        self.count += 1;
        self.ts_last = ev.ts_ns;
        self.buf.len() - start
    }
}

/// Decodes events one at a time from one chunk's uncompressed payload.
pub(crate) struct ChunkDecoder {
    buf: Vec<u8>,
    pos: usize,
    remaining: u32,
    prev_ts: u64,
    node: u16,
    task: Task,
    tasks: Vec<Task>,
    deltas: Deltas,
}

impl ChunkDecoder {
    /// `ts_first` is the first event's timestamp (the frame's base), `count`
    /// the number of events the frame announces.
    pub fn new(buf: Vec<u8>, ts_first: u64, count: u32) -> Self {
        ChunkDecoder {
            buf,
            pos: 0,
            remaining: count,
            prev_ts: ts_first,
            node: 0,
            task: (0, 0, Comm::default()),
            tasks: Vec::new(),
            deltas: Deltas::new(),
        }
    }

    /// The next event; `Ok(None)` once all announced events were decoded and
    /// the payload was consumed exactly.
    pub fn next_event(&mut self) -> DecodeResult<Option<Event>> {
        let mut c = Cursor::new(&self.buf, self.pos);
        if self.remaining == 0 {
            if c.remaining() != 0 {
                return c.err(format!("{} bytes after the last event", c.remaining()));
            }
            return Ok(None);
        }
        let tag = c.u8()?;
        if tag & RESERVED_FLAG != 0 {
            return c.err(format!("reserved tag bit set in {tag:#x}"));
        }
        let kind_id = match tag & KIND_MASK {
            KIND_EXT => match u8::try_from(c.u64()?)
                .ok()
                .and_then(|x| x.checked_add(KIND_EXT))
            {
                Some(id) => id,
                None => return c.err("kind id beyond 255".to_string()),
            },
            id => id,
        };
        let ts_ns = self.prev_ts.wrapping_add(c.i64()? as u64);
        if tag & NODE_FLAG != 0 {
            self.node = c.u16()?;
        }
        if tag & TASK_FLAG != 0 {
            let idx = c.u64()?;
            if idx == self.tasks.len() as u64 {
                let pid = c.u32()?;
                let tid = c.u32()?;
                let len = c.u8()? as usize;
                if len > 16 {
                    return c.err(format!("comm length {len} > 16"));
                }
                let mut comm = Comm::default();
                comm.0[..len].copy_from_slice(c.bytes(len)?);
                self.tasks.push((pid, tid, comm));
            }
            match self.tasks.get(idx as usize) {
                Some(t) => self.task = *t,
                None => return c.err(format!("task index {idx} beyond table")),
            }
        }
        let kind = kinds::decode(kind_id, &mut c, &mut self.deltas)?;
        self.pos = c.pos();
        self.prev_ts = ts_ns;
        self.remaining -= 1;
        Ok(Some(Event {
            ts_ns,
            node: self.node,
            pid: self.task.0,
            tid: self.task.1,
            comm: self.task.2,
            kind,
        }))
    }
}
