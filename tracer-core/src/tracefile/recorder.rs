//! [`Recorder`]: a trace file being written live. `vfio-trace record` and
//! the terminal UI's `r` both record through it: the same flush cadence,
//! node-table updates, failure handling and final size.
//!
//! - Chunks are written at least every [`FLUSH_EVERY`] (the caller calls
//!   [`Recorder::flush_if_due`] more often than that), and the header is
//!   written before [`Recorder::new`] returns, so a recorder killed with
//!   SIGKILL loses at most the events of the last second or so.
//! - A write error (a full disk, a quota, EIO) stops the recording: the file
//!   is cut back to its last complete chunk, gets no end marker (it reads
//!   as incomplete, which it is), and every later call returns
//!   [`RecordError::Stopped`], which names the file, the byte offset where
//!   it ends and how many events it kept and lost.

use std::{
    fs::File,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use thiserror::Error;

use super::{
    error::TraceError,
    header::TraceHeader,
    writer::{TraceWriter, WriteFailure, WriterOptions},
};
use crate::event::{Event, NodeId, NodeInfo};

/// Pending events are written at least this often (when the caller calls
/// [`Recorder::flush_if_due`] at least every [`FLUSH_TICK`]).
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// How often a caller should call [`Recorder::flush_if_due`]: the loss
/// window after a SIGKILL is at most `FLUSH_EVERY + FLUSH_TICK` plus the
/// time events take to reach the recorder.
pub const FLUSH_TICK: Duration = Duration::from_millis(100);

#[derive(Debug, Error)]
pub enum RecordError {
    /// The file could not be created or its header written.
    #[error("creating {}: {error}", path.display())]
    Create { path: PathBuf, error: TraceError },
    /// A write failed and the recording stopped; the file keeps every
    /// complete chunk before `failure.offset` and has no end marker.
    #[error(
        "writing {}: {failure}; the file reads as incomplete (no end marker)",
        path.display()
    )]
    Stopped {
        path: PathBuf,
        failure: WriteFailure,
    },
    /// Anything else about the file (an event too large for a chunk...).
    #[error("writing {}: {error}", path.display())]
    Write { path: PathBuf, error: TraceError },
}

/// A finished recording.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    pub path: PathBuf,
    pub events: u64,
    /// The file's size after it was closed.
    pub bytes: u64,
}

/// A recording in progress.
pub struct Recorder {
    writer: TraceWriter<File>,
    path: PathBuf,
    last_flush: Instant,
}

impl Recorder {
    /// Writes `header` to `file` (new and empty, created at `path`, which
    /// errors name).
    pub fn new(
        file: File,
        path: impl Into<PathBuf>,
        header: &TraceHeader,
    ) -> Result<Self, RecordError> {
        let path = path.into();
        match TraceWriter::from_file(file, header, WriterOptions::default()) {
            Ok(writer) => Ok(Recorder {
                writer,
                path,
                last_flush: Instant::now(),
            }),
            Err(error) => Err(RecordError::Create { path, error }),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's name (for a status line).
    pub fn file_name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.path.display().to_string())
    }

    /// Events recorded so far (written or pending; after a failure, the
    /// ones appended, kept or not).
    pub fn events(&self) -> u64 {
        self.writer.events()
    }

    /// Bytes written to the file so far.
    pub fn bytes_written(&self) -> u64 {
        self.writer.bytes_written()
    }

    /// Why the recording stopped, if a write failed.
    pub fn failure(&self) -> Option<&WriteFailure> {
        self.writer.failure()
    }

    fn error(&self, error: TraceError) -> RecordError {
        match self.writer.failure() {
            Some(f) => RecordError::Stopped {
                path: self.path.clone(),
                failure: f.clone(),
            },
            None => RecordError::Write {
                path: self.path.clone(),
                error,
            },
        }
    }

    /// Adds a node (an agent that joined) to the file's node table.
    pub fn add_node(&mut self, node: NodeInfo) -> Result<NodeId, RecordError> {
        self.writer.add_node(node).map_err(|e| self.error(e))
    }

    /// Nodes of `nodes` not in the file's table yet go into it (a live node
    /// table only grows, so ids stay the same).
    pub fn nodes(&self) -> &[NodeInfo] {
        self.writer.nodes()
    }

    pub fn sync_nodes(&mut self, nodes: &[NodeInfo]) -> Result<(), RecordError> {
        for n in nodes.iter().skip(self.writer.nodes().len()) {
            self.add_node(n.clone())?;
        }
        Ok(())
    }

    /// Appends a batch. After a failure every event is counted as lost (so
    /// a caller may keep handing over what drains after it stopped).
    pub fn append(&mut self, batch: &[Event]) -> Result<(), RecordError> {
        let mut first = None;
        for ev in batch {
            if let Err(e) = self.writer.append(ev) {
                if self.writer.failure().is_none() {
                    return Err(self.error(e));
                }
                first.get_or_insert(e);
            }
        }
        match first {
            Some(e) => Err(self.error(e)),
            None => Ok(()),
        }
    }

    /// Writes the pending events as a chunk now.
    pub fn flush(&mut self) -> Result<(), RecordError> {
        self.last_flush = Instant::now();
        self.writer.flush().map_err(|e| self.error(e))
    }

    /// Flushes when the last flush is [`FLUSH_EVERY`] old; true if it did.
    pub fn flush_if_due(&mut self) -> Result<bool, RecordError> {
        if self.last_flush.elapsed() < FLUSH_EVERY {
            return Ok(false);
        }
        self.flush().map(|()| true)
    }

    /// Writes the end marker and closes the file; the size reported is the
    /// file's own. After a failure: closes the file as it is (no end marker)
    /// and returns [`RecordError::Stopped`] with the final counts.
    pub fn finish(mut self) -> Result<Recorded, RecordError> {
        let ended = self.writer.end();
        let failure = self.writer.failure().cloned();
        let events = self.writer.events();
        let Recorder { writer, path, .. } = self;
        drop(writer.into_inner());
        if let Some(failure) = failure {
            return Err(RecordError::Stopped { path, failure });
        }
        if let Err(error) = ended {
            return Err(RecordError::Write { path, error });
        }
        match std::fs::metadata(&path) {
            Ok(m) => Ok(Recorded {
                bytes: m.len(),
                path,
                events,
            }),
            Err(source) => Err(RecordError::Write {
                path,
                error: TraceError::Io { offset: 0, source },
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracefile::{synth::MapUnmapTrace, TraceReader};

    fn temp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("vt-recorder-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("temp dir");
        d.join("r.vtrace")
    }

    #[test]
    fn the_header_is_in_the_file_at_once_and_the_size_reported_is_the_files() {
        let path = temp("size");
        let header = TraceHeader {
            nodes: crate::tracefile::synth::sample_nodes(),
            ..TraceHeader::default()
        };
        let mut rec =
            Recorder::new(File::create(&path).expect("create"), &path, &header).expect("start");
        let r = TraceReader::open(&path).expect("the header is on disk before any flush");
        assert_eq!(r.nodes(), header.nodes.as_slice());
        let evs: Vec<Event> = MapUnmapTrace::new(1).take(5000).collect();
        rec.append(&evs).expect("append");
        rec.flush().expect("flush");
        let on_disk = TraceReader::open(&path)
            .expect("open")
            .take_while(Result::is_ok)
            .count();
        assert_eq!(on_disk, evs.len(), "a flush writes the pending chunk");
        let done = rec.finish().expect("finish");
        assert_eq!(done.events, 5000);
        assert_eq!(done.bytes, std::fs::metadata(&path).expect("stat").len());
        let mut r = TraceReader::open(&path).expect("open");
        assert_eq!(r.by_ref().filter(Result::is_ok).count(), 5000);
        assert!(r.is_complete());
        let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
    }
}
