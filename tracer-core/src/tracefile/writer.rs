//! [`TraceWriter`]: appends events, writes them as whole chunks.
//!
//! A write error (a full disk, a quota, EIO) stops the writer for good: the
//! output is cut back to the end of the last complete chunk when it can be
//! ([`TraceWriter::with_truncate`]; files always can), no end marker is
//! written after it, and [`TraceWriter::failure`] says where the file ends
//! and how many events it kept and lost.

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
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

/// Cuts an output back to a length (a partial chunk after a failed write).
pub type Truncate<W> = fn(&mut W, u64) -> io::Result<()>;

/// Why and where a [`TraceWriter`] stopped writing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteFailure {
    /// The output ends here: the end of the last complete chunk (when a
    /// partial chunk could not be cut back, it follows this offset).
    pub offset: u64,
    /// Events in the complete chunks before `offset`: all readable.
    pub kept: u64,
    /// Events appended that are not in the output (the failed chunk's, and
    /// every one appended after the failure).
    pub lost: u64,
    /// Whether the bytes of the failed write were cut back (or none were
    /// written), so that the output ends exactly at `offset`.
    pub clean_cut: bool,
    /// What the failed write returned.
    pub kind: io::ErrorKind,
    pub message: String,
}

impl std::fmt::Display for WriteFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} at byte {}: stopped; kept {} events (every complete chunk up to byte {}), lost {}",
            self.message, self.offset, self.kept, self.offset, self.lost
        )?;
        if !self.clean_cut {
            write!(
                f,
                "; a partial chunk after byte {} could not be cut back",
                self.offset
            )?;
        }
        Ok(())
    }
}

/// Writes a trace file. Events are encoded as they are appended and written
/// as one chunk (frame + payload in a single `write_all`) when the chunk is
/// full or on [`flush`](Self::flush), so a killed recorder leaves at worst a
/// partial last chunk, which a salvaging reader steps over.
///
/// Give it an unbuffered output (a `File`, as [`create`](Self::create) and
/// [`from_file`](Self::from_file) do): each chunk is one write, and after a
/// failed write the output then ends exactly at the last complete chunk.
///
/// Dropping the writer finishes it too, ignoring errors; call
/// [`finish`](Self::finish) to see them. After a write error it writes
/// nothing more, the end marker included: the output must read as cut.
pub struct TraceWriter<W: Write> {
    out: Option<W>,
    enc: ChunkEncoder,
    opts: WriterOptions,
    compressor: zstd::bulk::Compressor<'static>,
    nodes: Vec<NodeInfo>,
    offset: u64,
    events: u64,
    /// Events in chunks written whole.
    kept: u64,
    truncate: Option<Truncate<W>>,
    failure: Option<WriteFailure>,
    /// The end marker is written.
    ended: bool,
}

fn truncate_file(f: &mut File, len: u64) -> io::Result<()> {
    f.set_len(len)?;
    f.seek(SeekFrom::Start(len)).map(drop)
}

impl TraceWriter<File> {
    /// Creates (truncates) `path` and writes the header.
    pub fn create(
        path: impl AsRef<Path>,
        header: &TraceHeader,
        opts: WriterOptions,
    ) -> Result<Self, TraceError> {
        let file = File::create(path).map_err(|source| TraceError::Io { offset: 0, source })?;
        TraceWriter::from_file(file, header, opts)
    }

    /// Writes the header to `file` (new and empty, positioned at its
    /// start); a failed write is cut back with `set_len`.
    pub fn from_file(
        file: File,
        header: &TraceHeader,
        opts: WriterOptions,
    ) -> Result<Self, TraceError> {
        Ok(TraceWriter::new(file, header, opts)?.with_truncate(truncate_file))
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
            kept: 0,
            truncate: None,
            failure: None,
            ended: false,
        })
    }

    /// After a failed write, cut the output back to the last complete chunk
    /// with `truncate` (its length then; it must also leave the output
    /// positioned there).
    pub fn with_truncate(mut self, truncate: Truncate<W>) -> Self {
        self.truncate = Some(truncate);
        self
    }

    /// Why the writer stopped, if a write failed. Every later call fails.
    pub fn failure(&self) -> Option<&WriteFailure> {
        self.failure.as_ref()
    }

    /// Events in chunks written whole (readable even if the process dies now).
    pub fn events_written(&self) -> u64 {
        self.kept
    }

    /// The error every call returns once the writer has failed.
    fn stopped(&self) -> Option<TraceError> {
        self.failure.as_ref().map(|f| TraceError::Io {
            offset: f.offset,
            source: io::Error::new(
                f.kind,
                "the trace writer stopped after an earlier write error",
            ),
        })
    }

    /// Appends one event; writes a chunk when the current one is full.
    pub fn append(&mut self, ev: &Event) -> Result<(), TraceError> {
        if let Some(e) = self.stopped() {
            self.events += 1;
            if let Some(f) = &mut self.failure {
                f.lost += 1;
            }
            return Err(e);
        }
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
        if let Some(e) = self.stopped() {
            return Err(e);
        }
        self.write_chunk()?;
        let r = self.out_mut().flush();
        r.map_err(|source| self.fail(source, 0))
    }

    /// Adds a node to the file's node table (a remote agent that connected
    /// mid-recording) and returns its id. Pending events are written first.
    pub fn add_node(&mut self, node: NodeInfo) -> Result<NodeId, TraceError> {
        if let Some(e) = self.stopped() {
            return Err(e);
        }
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

    /// Events appended so far (written, pending, or lost to a failed write).
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Bytes written to the underlying writer so far (excludes pending events).
    pub fn bytes_written(&self) -> u64 {
        self.offset
    }

    /// Writes the pending chunk and the end marker, flushes, and returns the
    /// underlying writer. A file without the end marker reads as truncated.
    /// After a write error it writes nothing and returns the error.
    pub fn finish(mut self) -> Result<W, TraceError> {
        self.end()?;
        Ok(self.into_inner())
    }

    /// Writes the pending chunk and the end marker (once) and flushes; the
    /// writer then takes nothing more. After a write error it writes
    /// nothing and returns the error: a file cut short must read as cut.
    pub fn end(&mut self) -> Result<(), TraceError> {
        if let Some(e) = self.stopped() {
            return Err(e);
        }
        if self.ended {
            return Ok(());
        }
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
        self.flush()?;
        self.ended = true;
        Ok(())
    }

    /// The underlying writer as it is: nothing more is written to it (no
    /// end marker unless [`end`](Self::end) wrote it).
    pub fn into_inner(mut self) -> W {
        self.out.take().expect("writer present until finish")
    }

    fn out_mut(&mut self) -> &mut W {
        self.out.as_mut().expect("writer present until finish")
    }

    fn write_chunk(&mut self) -> Result<(), TraceError> {
        if self.enc.count == 0 {
            return Ok(());
        }
        if self.ended {
            return Err(TraceError::Io {
                offset: self.offset,
                source: io::Error::other("events appended after the end marker"),
            });
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
        let count = match frame.kind {
            FrameKind::Events => u64::from(frame.count),
            _ => 0,
        };
        let r = self.out_mut().write_all(&buf);
        if let Err(source) = r {
            return Err(self.fail(source, count));
        }
        self.offset += buf.len() as u64;
        self.kept += count;
        Ok(())
    }

    /// A write failed: cut the output back to the last complete chunk if
    /// possible and stop for good. `in_flight`: events of the failed chunk.
    fn fail(&mut self, source: io::Error, in_flight: u64) -> TraceError {
        let offset = self.offset;
        let clean_cut = match (self.truncate, self.out.as_mut()) {
            (Some(cut), Some(out)) => cut(out, offset).is_ok(),
            _ => false,
        };
        let lost = in_flight + u64::from(self.enc.count);
        self.enc.reset();
        self.failure = Some(WriteFailure {
            offset,
            kept: self.kept,
            lost,
            clean_cut,
            kind: source.kind(),
            message: source.to_string(),
        });
        TraceError::Io { offset, source }
    }
}

impl<W: Write> Drop for TraceWriter<W> {
    fn drop(&mut self) {
        if self.out.is_some() && self.failure.is_none() && !self.ended {
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

#[cfg(test)]
mod tests {
    use std::{cell::RefCell, rc::Rc};

    use super::*;
    use crate::tracefile::{synth::MapUnmapTrace, TraceReader};

    const ENOSPC: i32 = 28;

    /// A disk that holds `cap` bytes, then fails with ENOSPC (after a short
    /// write, as a real one does). Its bytes stay readable after the writer
    /// is dropped.
    #[derive(Clone)]
    struct Disk {
        data: Rc<RefCell<Vec<u8>>>,
        cap: usize,
    }

    impl Disk {
        fn new(cap: usize) -> Self {
            Disk {
                data: Rc::default(),
                cap,
            }
        }
        fn bytes(&self) -> Vec<u8> {
            self.data.borrow().clone()
        }
    }

    impl Write for Disk {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let mut d = self.data.borrow_mut();
            let room = self.cap.saturating_sub(d.len());
            if room == 0 {
                return Err(io::Error::from_raw_os_error(ENOSPC));
            }
            let n = buf.len().min(room);
            d.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn cut(d: &mut Disk, len: u64) -> io::Result<()> {
        d.data.borrow_mut().truncate(len as usize);
        Ok(())
    }

    fn small_chunks() -> WriterOptions {
        WriterOptions {
            max_chunk_events: 500,
            ..WriterOptions::default()
        }
    }

    /// Appends until the writer fails; returns how many were appended.
    fn fill(w: &mut TraceWriter<Disk>, gen: &mut MapUnmapTrace) -> u64 {
        for n in 1..=1_000_000u64 {
            let ev = gen.next().expect("endless");
            if w.append(&ev).is_err() {
                return n;
            }
        }
        panic!("the disk never filled");
    }

    /// (events read, whether the file read as complete, the error's offset).
    fn read(bytes: &[u8]) -> (u64, bool, Option<u64>) {
        let mut r = TraceReader::new(bytes).expect("the header is readable");
        let mut n = 0;
        let mut err = None;
        for ev in r.by_ref() {
            match ev {
                Ok(_) => n += 1,
                Err(e) => {
                    err = e.offset();
                    break;
                }
            }
        }
        (n, r.is_complete(), err)
    }

    #[test]
    fn a_full_disk_leaves_the_file_ending_at_its_last_complete_chunk() {
        let disk = Disk::new(64 * 1024);
        let mut w = TraceWriter::new(disk.clone(), &TraceHeader::default(), small_chunks())
            .expect("header fits")
            .with_truncate(cut);
        let mut gen = MapUnmapTrace::new(7);
        let appended = fill(&mut w, &mut gen);
        let f = w.failure().cloned().expect("a failure is recorded");
        assert_eq!(f.kind, io::ErrorKind::StorageFull);
        assert!(f.clean_cut);
        assert!(f.kept > 0 && f.lost > 0, "{f:?}");
        assert_eq!(f.kept + f.lost, appended);
        assert_eq!(f.offset, disk.bytes().len() as u64, "cut back to the chunk");
        assert_eq!(w.events_written(), f.kept);

        // Stopped for good: later events are counted lost, nothing is written,
        // and neither finishing nor dropping writes an end marker.
        assert!(w.append(&gen.next().expect("endless")).is_err());
        let later = w.failure().cloned().expect("failed");
        assert_eq!(later.lost, f.lost + 1);
        assert!(w.flush().is_err());
        assert!(w.end().is_err());
        drop(w);
        let bytes = disk.bytes();
        assert_eq!(bytes.len() as u64, f.offset);
        let (n, complete, err) = read(&bytes);
        assert_eq!(n, f.kept, "every kept event reads");
        assert!(!complete, "a file cut by a full disk never looks complete");
        assert_eq!(err, Some(f.offset), "the reader names where it was cut");
        let msg = later.to_string();
        assert!(
            msg.contains(&format!("byte {}", f.offset))
                && msg.contains(&format!("kept {} events", f.kept))
                && msg.contains(&format!("lost {}", f.lost + 1))
                && msg.matches("os error").count() == 1,
            "{msg}"
        );
    }

    #[test]
    fn without_truncate_the_partial_chunk_stays_and_the_kept_events_still_read() {
        let disk = Disk::new(64 * 1024);
        let mut w = TraceWriter::new(disk.clone(), &TraceHeader::default(), small_chunks())
            .expect("header");
        let appended = fill(&mut w, &mut MapUnmapTrace::new(7));
        let f = w.failure().cloned().expect("failed");
        assert!(!f.clean_cut);
        assert_eq!(f.kept + f.lost, appended);
        drop(w);
        let bytes = disk.bytes();
        assert_eq!(bytes.len(), 64 * 1024, "the partial chunk is still there");
        let (n, complete, err) = read(&bytes);
        assert_eq!(n, f.kept);
        assert!(!complete);
        assert_eq!(err, Some(f.offset));
    }

    #[test]
    fn no_room_for_the_end_marker_keeps_every_event_and_reads_as_incomplete() {
        let events: Vec<Event> = MapUnmapTrace::new(3).take(2000).collect();
        let write = |disk: Disk| {
            let mut w = TraceWriter::new(disk, &TraceHeader::default(), small_chunks())
                .expect("header")
                .with_truncate(cut);
            for e in &events {
                w.append(e).expect("room for the events");
            }
            w
        };
        let whole = Disk::new(usize::MAX);
        write(whole.clone()).finish().expect("finishes");
        let full_len = whole.bytes().len();

        let disk = Disk::new(full_len - FRAME_LEN / 2);
        let mut w = write(disk.clone());
        assert!(w.end().is_err());
        let f = w.failure().cloned().expect("failed");
        assert_eq!((f.kept, f.lost), (2000, 0));
        assert!(f.clean_cut);
        assert_eq!(f.offset, (full_len - FRAME_LEN) as u64);
        drop(w);
        let (n, complete, _) = read(&disk.bytes());
        assert_eq!(n, 2000);
        assert!(!complete, "no end marker after a failed write");
    }
}
