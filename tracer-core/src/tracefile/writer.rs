//! [`TraceWriter`]: appends events, writes them as whole chunks.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use super::codec::ChunkEncoder;
use super::error::TraceError;
use super::frame::{Frame, FrameKind, FRAME_LEN, MAX_CHUNK_RAW};
use super::header::{write_header, TraceHeader, FORMAT_VERSION};
use crate::event::{Event, EventKind, NodeId, NodeInfo};

/// Largest single encoded event (a `ProbeStatus` with a huge reason, say).
pub const MAX_EVENT_BYTES: usize = 1 << 20;

/// How a [`TraceWriter`] cuts and compresses chunks.
#[derive(Clone, Debug)]
pub struct WriterOptions {
    /// A chunk is written when it holds this many events...
    pub max_chunk_events: u32,
    /// ...or this many uncompressed bytes (capped below `MAX_CHUNK_RAW`).
    pub max_chunk_bytes: usize,
    /// zstd level: 1 (the default) is ~1.5x faster to write than 3 for
    /// ~8 % more bytes on map/unmap traces (benches/record.rs).
    pub zstd_level: i32,
    /// Format version to write. Only [`FORMAT_VERSION`] today; kept so a
    /// later build can still write old versions for cross-version tests.
    pub format_version: u16,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            max_chunk_events: 64 * 1024,
            max_chunk_bytes: 1 << 20,
            zstd_level: 1,
            format_version: FORMAT_VERSION,
        }
    }
}

/// Writes a trace file. Events are encoded as they are appended and written
/// as one chunk (frame + payload in a single `write_all`) when the chunk is
/// full or on [`flush`](Self::flush), so a killed recorder leaves at worst a
/// partial last chunk, which a salvaging reader steps over.
///
/// Dropping the writer finishes it too, ignoring errors; call
/// [`finish`](Self::finish) to see them.
pub struct TraceWriter<W: Write> {
    out: Option<W>,
    enc: ChunkEncoder,
    opts: WriterOptions,
    compressor: zstd::bulk::Compressor<'static>,
    nodes: Vec<NodeInfo>,
    offset: u64,
    events: u64,
}

impl TraceWriter<BufWriter<File>> {
    /// Creates (truncates) `path` and writes the header.
    pub fn create(
        path: impl AsRef<Path>,
        header: &TraceHeader,
        opts: WriterOptions,
    ) -> Result<Self, TraceError> {
        let file = File::create(path).map_err(|source| TraceError::Io { offset: 0, source })?;
        TraceWriter::new(BufWriter::with_capacity(1 << 20, file), header, opts)
    }
}

impl<W: Write> TraceWriter<W> {
    /// Writes the header to `out`.
    pub fn new(mut out: W, header: &TraceHeader, opts: WriterOptions) -> Result<Self, TraceError> {
        if opts.format_version != FORMAT_VERSION {
            return Err(TraceError::UnwritableVersion(opts.format_version));
        }
        let offset = write_header(&mut out, header, opts.format_version)?;
        let compressor = zstd::bulk::Compressor::new(opts.zstd_level)
            .map_err(|source| TraceError::Io { offset: 0, source })?;
        Ok(TraceWriter {
            out: Some(out),
            enc: ChunkEncoder::new(),
            opts,
            compressor,
            nodes: header.nodes.clone(),
            offset,
            events: 0,
        })
    }

    /// Appends one event; writes a chunk when the current one is full.
    pub fn append(&mut self, ev: &Event) -> Result<(), TraceError> {
        let size = variable_size(&ev.kind);
        if size > MAX_EVENT_BYTES {
            return Err(TraceError::EventTooLarge {
                size,
                max: MAX_EVENT_BYTES,
            });
        }
        self.enc.push(ev);
        self.events += 1;
        let max_bytes = self
            .opts
            .max_chunk_bytes
            .min(MAX_CHUNK_RAW as usize - MAX_EVENT_BYTES - 64);
        if self.enc.count >= self.opts.max_chunk_events.max(1) || self.enc.buf.len() >= max_bytes {
            self.write_chunk()?;
        }
        Ok(())
    }

    /// Writes the pending events as a chunk (if any) and flushes the
    /// underlying writer. The live recorder calls this at least every second.
    pub fn flush(&mut self) -> Result<(), TraceError> {
        self.write_chunk()?;
        let offset = self.offset;
        self.out_mut()
            .flush()
            .map_err(|source| TraceError::Io { offset, source })
    }

    /// Adds a node to the file's node table (a remote agent that connected
    /// mid-recording) and returns its id. Pending events are written first.
    pub fn add_node(&mut self, node: NodeInfo) -> Result<NodeId, TraceError> {
        let id = NodeId::try_from(self.nodes.len()).map_err(|_| TraceError::Io {
            offset: self.offset,
            source: std::io::Error::other("node table is full"),
        })?;
        self.write_chunk()?;
        let json = serde_json::to_vec(&node).expect("NodeInfo always serializes");
        let frame = Frame {
            kind: FrameKind::Node,
            payload_len: json.len() as u32,
            raw_len: json.len() as u32,
            count: 0,
            ts_first: 0,
            ts_last: 0,
            payload_crc: crc32fast::hash(&json),
        };
        self.write_frame(&frame, &json)?;
        self.nodes.push(node);
        Ok(id)
    }

    /// The node table so far (the header's plus added nodes).
    pub fn nodes(&self) -> &[NodeInfo] {
        &self.nodes
    }

    /// Events appended so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Bytes written to the underlying writer so far (excludes pending events).
    pub fn bytes_written(&self) -> u64 {
        self.offset
    }

    /// Writes the pending chunk and the end marker, flushes, and returns the
    /// underlying writer. A file without the end marker reads as truncated.
    pub fn finish(mut self) -> Result<W, TraceError> {
        self.end()?;
        Ok(self.out.take().expect("writer present until finish"))
    }

    fn end(&mut self) -> Result<(), TraceError> {
        self.write_chunk()?;
        let frame = Frame {
            kind: FrameKind::End,
            payload_len: 0,
            raw_len: 0,
            count: 0,
            ts_first: 0,
            ts_last: 0,
            payload_crc: crc32fast::hash(&[]),
        };
        self.write_frame(&frame, &[])?;
        self.flush()
    }

    fn out_mut(&mut self) -> &mut W {
        self.out.as_mut().expect("writer present until finish")
    }

    fn write_chunk(&mut self) -> Result<(), TraceError> {
        if self.enc.count == 0 {
            return Ok(());
        }
        let payload = self
            .compressor
            .compress(&self.enc.buf)
            .map_err(|source| TraceError::Io {
                offset: self.offset,
                source,
            })?;
        let frame = Frame {
            kind: FrameKind::Events,
            payload_len: payload.len() as u32,
            raw_len: self.enc.buf.len() as u32,
            count: self.enc.count,
            ts_first: self.enc.ts_first,
            ts_last: self.enc.ts_last,
            payload_crc: crc32fast::hash(&payload),
        };
        self.enc.reset();
        self.write_frame(&frame, &payload)
    }

    fn write_frame(&mut self, frame: &Frame, payload: &[u8]) -> Result<(), TraceError> {
        let mut buf = Vec::with_capacity(FRAME_LEN + payload.len());
        buf.extend_from_slice(&frame.encode());
        buf.extend_from_slice(payload);
        let offset = self.offset;
        self.out_mut()
            .write_all(&buf)
            .map_err(|source| TraceError::Io { offset, source })?;
        self.offset += buf.len() as u64;
        Ok(())
    }
}

impl<W: Write> Drop for TraceWriter<W> {
    fn drop(&mut self) {
        if self.out.is_some() {
            let _ = self.end();
        }
    }
}

/// Upper bound on the variable-length part of an event's encoding.
fn variable_size(k: &EventKind) -> usize {
    match k {
        EventKind::ProbeStatus(p) => p.probe.len() + p.attach.len() + p.reason.len(),
        EventKind::VfioIommuInfo(i) => i.iova_ranges.len() * 20,
        EventKind::ViommuReq(r) => r.resv.len() * 21,
        EventKind::VfioSetIrqs(s) => s.eventfds.len() * 5,
        _ => 0,
    }
}
