//! [`TraceReader`]: a streaming iterator over a trace file's events.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use super::codec::ChunkDecoder;
use super::error::{TraceError, TraceWarning};
use super::frame::{Frame, FrameKind, FRAME_LEN, FRAME_MAGIC};
use super::header::{read_header, TraceHeader, PREAMBLE_LEN};
use super::source::Source;
use crate::event::{Event, NodeInfo};

/// What a reader does about damage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReadMode {
    /// Yield events up to the damage, then one error naming its offset, then
    /// end.
    #[default]
    Strict,
    /// Step over damage: skip to the next chunk whose frame checks out and go
    /// on; each skipped stretch is recorded as a [`TraceWarning`].
    Salvage,
}

/// Reads a trace file chunk by chunk; memory use is one chunk, whatever the
/// file's size or content.
pub struct TraceReader<R> {
    src: Source<R>,
    version: u16,
    header: TraceHeader,
    mode: ReadMode,
    /// The chunk being decoded and the file offset of its frame.
    chunk: Option<(ChunkDecoder, u64)>,
    decompressor: zstd::bulk::Decompressor<'static>,
    warnings: Vec<TraceWarning>,
    /// Salvage: where the current damaged stretch began, and why.
    damage: Option<(u64, TraceError)>,
    /// The last frame read was the end marker.
    complete: bool,
    done: bool,
}

impl TraceReader<BufReader<File>> {
    /// Opens `path` in strict mode.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, TraceError> {
        Self::open_with_mode(path, ReadMode::Strict)
    }

    pub fn open_with_mode(path: impl AsRef<Path>, mode: ReadMode) -> Result<Self, TraceError> {
        let file = File::open(path).map_err(|source| TraceError::Io { offset: 0, source })?;
        TraceReader::with_mode(BufReader::with_capacity(1 << 20, file), mode)
    }
}

impl<R: Read> TraceReader<R> {
    /// Reads the header from `r`, strict mode.
    pub fn new(r: R) -> Result<Self, TraceError> {
        Self::with_mode(r, ReadMode::Strict)
    }

    /// Reads the header from `r`. Bad magic or an unsupported version fail in
    /// both modes; a damaged header fails in strict mode and is replaced by
    /// an empty one (with a warning) in salvage mode.
    pub fn with_mode(r: R, mode: ReadMode) -> Result<Self, TraceError> {
        let mut src = Source::new(r);
        let (version, header) = read_header(&mut src)?;
        let mut reader = TraceReader {
            src,
            version,
            header: TraceHeader::default(),
            mode,
            chunk: None,
            decompressor: zstd::bulk::Decompressor::new()
                .map_err(|source| TraceError::Io { offset: 0, source })?,
            warnings: Vec::new(),
            damage: None,
            complete: false,
            done: false,
        };
        match header {
            Ok(h) => reader.header = h,
            Err(e) if mode == ReadMode::Salvage => {
                reader.header.format_version = version;
                reader.damage = Some((PREAMBLE_LEN, e));
            }
            Err(e) => return Err(e),
        }
        Ok(reader)
    }

    pub fn header(&self) -> &TraceHeader {
        &self.header
    }

    /// The node table: the header's plus nodes added in the stream so far.
    pub fn nodes(&self) -> &[NodeInfo] {
        &self.header.nodes
    }

    /// Format version of the file.
    pub fn format_version(&self) -> u16 {
        self.version
    }

    /// Damage stepped over so far (salvage mode). Complete once the iterator
    /// has ended.
    pub fn warnings(&self) -> &[TraceWarning] {
        &self.warnings
    }

    /// Whether the file ended with the writer's end marker (known once the
    /// iterator has ended): false for a recording that was killed.
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// File offset of the next byte the reader will consume.
    pub fn offset(&self) -> u64 {
        self.src.offset()
    }

    /// Reads the next frame and its payload. `Ok(None)` at a clean end.
    fn next_frame(&mut self) -> Result<Option<(Frame, Vec<u8>, u64)>, TraceError> {
        let at = self.src.offset();
        let mut fb = [0u8; FRAME_LEN];
        let n = self.src.read_up_to(&mut fb)?;
        if n == 0 {
            return Ok(None);
        }
        if n < FRAME_LEN {
            self.src.unread(&fb[..n]);
            return Err(TraceError::Truncated {
                offset: at,
                what: "chunk frame incomplete",
            });
        }
        let frame = match Frame::parse(&fb, at) {
            Ok(f) => f,
            Err(e) => {
                self.src.unread(&fb);
                return Err(e);
            }
        };
        let payload = self.src.read_bounded(frame.payload_len as usize)?;
        if payload.len() < frame.payload_len as usize {
            return Err(TraceError::Truncated {
                offset: at,
                what: "chunk payload incomplete",
            });
        }
        if crc32fast::hash(&payload) != frame.payload_crc {
            return Err(TraceError::corrupt(
                at,
                "chunk payload",
                "checksum mismatch",
            ));
        }
        Ok(Some((frame, payload, at)))
    }

    /// Handles one good frame: starts decoding an event chunk or applies a
    /// node frame.
    fn take_frame(&mut self, frame: Frame, payload: Vec<u8>, at: u64) -> Result<(), TraceError> {
        self.complete = false;
        match frame.kind {
            FrameKind::Events => {
                let raw = self
                    .decompressor
                    .decompress(&payload, frame.raw_len as usize)
                    .map_err(|e| TraceError::corrupt(at, "chunk payload", e.to_string()))?;
                if raw.len() != frame.raw_len as usize {
                    return Err(TraceError::corrupt(
                        at,
                        "chunk payload",
                        format!(
                            "{} bytes decompressed, {} announced",
                            raw.len(),
                            frame.raw_len
                        ),
                    ));
                }
                self.chunk = Some((ChunkDecoder::new(raw, frame.ts_first, frame.count), at));
            }
            FrameKind::End => self.complete = true,
            FrameKind::Node => {
                let node: NodeInfo = serde_json::from_slice(&payload)
                    .map_err(|e| TraceError::corrupt(at, "node frame", e.to_string()))?;
                self.header.nodes.push(node);
            }
        }
        Ok(())
    }

    /// Salvage: skips ahead to the next frame whose own checksum holds,
    /// leaving the stream positioned at it. False at the end of the file.
    fn resync(&mut self) -> Result<bool, TraceError> {
        // Step over the first byte of the bad spot so it is not found again.
        let mut b = [0u8; 1];
        if self.src.read_up_to(&mut b)? == 0 {
            return Ok(false);
        }
        let mut win = [0u8; 4];
        let mut have = 0usize;
        loop {
            if self.src.read_up_to(&mut b)? == 0 {
                return Ok(false);
            }
            win = [win[1], win[2], win[3], b[0]];
            have += 1;
            if have >= 4 && win == FRAME_MAGIC {
                let start = self.src.offset() - 4;
                let mut fb = [0u8; FRAME_LEN];
                fb[..4].copy_from_slice(&FRAME_MAGIC);
                let n = self.src.read_up_to(&mut fb[4..])?;
                if n == FRAME_LEN - 4 && Frame::parse(&fb, start).is_ok() {
                    self.src.unread(&fb);
                    return Ok(true);
                }
                self.src.unread(&fb[1..4 + n]);
                have = 0;
                win = [0; 4];
            }
        }
    }

    /// Strict: end with `e`. Salvage: remember the damage and go on.
    fn fail(&mut self, e: TraceError, resync: bool) -> Option<Result<Event, TraceError>> {
        self.chunk = None;
        if self.mode == ReadMode::Strict {
            self.done = true;
            return Some(Err(e));
        }
        let at = e.offset().unwrap_or(self.src.offset());
        if self.damage.is_none() {
            self.damage = Some((at, e));
        }
        if resync {
            match self.resync() {
                Ok(true) => {}
                Ok(false) => self.end_damage(),
                Err(io) => {
                    self.done = true;
                    return Some(Err(io));
                }
            }
        }
        None
    }

    /// Salvage: the damaged stretch ends at the current offset.
    fn end_damage(&mut self) {
        if let Some((offset, error)) = self.damage.take() {
            self.warnings.push(TraceWarning {
                offset,
                skipped: self.src.offset().saturating_sub(offset),
                error,
            });
        }
    }
}

impl<R: Read> Iterator for TraceReader<R> {
    type Item = Result<Event, TraceError>;

    fn next(&mut self) -> Option<Self::Item> {
        // A damaged header: look for the first chunk.
        if self.damage.is_some()
            && self.chunk.is_none()
            && !self.done
            && self.src.offset() <= PREAMBLE_LEN
        {
            match self.resync() {
                Ok(true) => {}
                Ok(false) => self.end_damage(),
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        loop {
            if self.done {
                return None;
            }
            if let Some((dec, at)) = &mut self.chunk {
                let at = *at;
                match dec.next_event() {
                    Ok(Some(ev)) => return Some(Ok(ev)),
                    Ok(None) => self.chunk = None,
                    Err(d) => {
                        let e = TraceError::corrupt(
                            at,
                            "chunk events",
                            format!("at decoded byte {}: {}", d.pos, d.detail),
                        );
                        // The frame was sound: the next chunk follows it.
                        if let Some(r) = self.fail(e, false) {
                            return Some(r);
                        }
                        self.end_damage();
                    }
                }
                continue;
            }
            match self.next_frame() {
                Ok(None) => {
                    self.end_damage();
                    self.done = true;
                    if !self.complete {
                        let e = TraceError::Truncated {
                            offset: self.src.offset(),
                            what: "no end marker (the recorder was killed or is still writing)",
                        };
                        if self.mode == ReadMode::Strict {
                            return Some(Err(e));
                        }
                        self.warnings.push(TraceWarning {
                            offset: self.src.offset(),
                            skipped: 0,
                            error: e,
                        });
                    }
                }
                Ok(Some((frame, payload, at))) => {
                    // Report a damaged stretch up to this good frame.
                    if let Some((offset, error)) = self.damage.take() {
                        self.warnings.push(TraceWarning {
                            offset,
                            skipped: at.saturating_sub(offset),
                            error,
                        });
                    }
                    if let Err(e) = self.take_frame(frame, payload, at) {
                        if let Some(r) = self.fail(e, false) {
                            return Some(r);
                        }
                        self.end_damage();
                    }
                }
                Err(e @ TraceError::Io { .. }) => {
                    self.done = true;
                    return Some(Err(e));
                }
                Err(e) => {
                    // A frame that fails its own checks: rescan from its
                    // second byte. A sound frame (its lengths are checked)
                    // whose payload is bad or cut: the stream is already past
                    // the payload, where the next frame starts.
                    let resync = !matches!(
                        e,
                        TraceError::Truncated {
                            what: "chunk payload incomplete",
                            ..
                        } | TraceError::Corrupt {
                            what: "chunk payload",
                            ..
                        }
                    );
                    if let Some(r) = self.fail(e, resync) {
                        return Some(r);
                    }
                }
            }
        }
    }
}

/// Reads a whole file strictly: its header and all its events.
pub fn read_all(path: impl AsRef<Path>) -> Result<(TraceHeader, Vec<Event>), TraceError> {
    let mut r = TraceReader::open(path)?;
    let events = r.by_ref().collect::<Result<Vec<_>, _>>()?;
    Ok((r.header, events))
}
