//! Reading several trace files as one timeline while accounting, per file,
//! for what was read: bytes, events, the end marker, and every stretch of
//! damage with the last event read before it. Damage in one file stops (or,
//! salvaging, skips within) that file only; the others are read to their
//! end. The resulting [`ReadReport`] is what makes a result "complete".

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::error::TraceError;
use super::header::node_name;
use super::merge::{EventSource, Timeline};
use super::reader::{ReadMode, TraceReader};
use crate::event::{Event, NodeInfo};

/// The last event an input delivered before a gap: where the gap begins in
/// that node's time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LastEvent {
    /// Node name (as in the file's node table).
    pub node: String,
    /// The event's `ts_ns` (CLOCK_MONOTONIC of that node).
    pub ts_ns: u64,
}

/// One stretch of a file that was not read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Damage {
    /// Byte offset where the damage starts.
    pub offset: u64,
    /// Bytes stepped over (salvage); `None` when reading stopped there.
    pub skipped: Option<u64>,
    /// What was wrong, with its offset.
    pub error: String,
    /// The last event read before the damage; `None`: before any event.
    pub after: Option<LastEvent>,
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The error names its offset.
        match self.skipped {
            Some(n) => write!(f, "skipped {n} bytes: {}", self.error),
            None => write!(f, "reading stopped: {}", self.error),
        }
    }
}

/// What was read from one input file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InputReport {
    /// The path as given.
    pub file: String,
    /// The file's size when it was opened.
    pub size: u64,
    /// Where reading ended (the whole file when it was read to its end).
    pub bytes_read: u64,
    /// Events delivered from this file.
    pub events: u64,
    /// The file ends with the writer's end marker (false: the recorder was
    /// killed, the disk filled, or reading stopped before the end).
    pub end_marker: bool,
    /// The file ends early (no end marker, maybe half a chunk): a recorder
    /// killed or stopped by a full disk. Everything before was read.
    pub cut_short: bool,
    /// Every damaged stretch (not read, or stepped over with `--salvage`),
    /// in file order.
    pub damage: Vec<Damage>,
    /// The last event read from the file.
    pub last_event: Option<LastEvent>,
    /// Every event of the file was read.
    pub complete: bool,
}

impl InputReport {
    /// Why this input is incomplete, one line per cause, naming the file.
    pub fn reasons(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .damage
            .iter()
            .map(|d| format!("{}: {d}", self.file))
            .collect();
        if self.cut_short {
            out.push(format!(
                "{}: no end marker after byte {}: the recording stops there (recorder killed, \
                 disk full or still writing); {} events before it were read",
                self.file, self.bytes_read, self.events
            ));
        }
        out
    }

    /// Where each gap in this file begins: the last event read before it,
    /// or `None` for a gap before the file's first event (the gap may be
    /// anywhere in time). A file cut short has its gap after its last event.
    pub fn gaps(&self) -> impl Iterator<Item = Option<&LastEvent>> {
        let cut = self.cut_short.then_some(self.last_event.as_ref());
        self.damage.iter().map(|d| d.after.as_ref()).chain(cut)
    }

    /// One line for people: `host.vtrace: 44 events, 4072 of 4072 bytes, ...`.
    pub fn summary_line(&self) -> String {
        let state = if self.complete {
            "complete"
        } else if self.damage.iter().any(|d| d.skipped.is_some()) {
            "INCOMPLETE (damage skipped)"
        } else if self.damage.is_empty() {
            "INCOMPLETE (cut short)"
        } else {
            "INCOMPLETE (damaged)"
        };
        format!(
            "{}: {} events, {} of {} bytes read, {}: {state}",
            self.file,
            self.events,
            self.bytes_read,
            self.size,
            if self.end_marker {
                "end marker"
            } else {
                "no end marker"
            }
        )
    }
}

/// What was read from every input.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ReadReport {
    pub inputs: Vec<InputReport>,
}

impl ReadReport {
    /// Every event of every file was read.
    pub fn complete(&self) -> bool {
        self.inputs.iter().all(|i| i.complete)
    }

    /// Some file is damaged (not merely cut short).
    pub fn damaged(&self) -> bool {
        self.inputs.iter().any(|i| !i.damage.is_empty())
    }

    /// Why the read is incomplete (empty when complete).
    pub fn reasons(&self) -> Vec<String> {
        self.inputs.iter().flat_map(InputReport::reasons).collect()
    }
}

/// One input file being read: the reader (none when its header could not
/// be read) and its accounting. An error ends this input only.
pub struct TracedInput {
    path: PathBuf,
    size: u64,
    reader: Option<TraceReader<BufReader<File>>>,
    events: u64,
    last: Option<LastEvent>,
    /// Warnings of the reader already turned into damage.
    warnings_seen: usize,
    damage: Vec<Damage>,
    cut_short: bool,
}

/// Opening an input failed before its content could be looked at.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct OpenError {
    pub path: String,
    #[source]
    pub source: std::io::Error,
}

impl TracedInput {
    /// Opens `path`. A file that cannot be opened is an error; a file whose
    /// header is bad is an input with no events and its damage.
    pub fn open(path: &Path, mode: ReadMode) -> Result<Self, OpenError> {
        let open_err = |source| OpenError {
            path: path.display().to_string(),
            source,
        };
        let file = File::open(path).map_err(open_err)?;
        let meta = file.metadata().map_err(open_err)?;
        if meta.is_dir() {
            return Err(open_err(std::io::Error::new(
                std::io::ErrorKind::IsADirectory,
                "is a directory",
            )));
        }
        let mut input = TracedInput {
            path: path.to_path_buf(),
            size: meta.len(),
            reader: None,
            events: 0,
            last: None,
            warnings_seen: 0,
            damage: Vec::new(),
            cut_short: false,
        };
        match TraceReader::with_mode(BufReader::with_capacity(1 << 20, file), mode) {
            Ok(r) => input.reader = Some(r),
            Err(e) => input.damage.push(Damage {
                offset: e.offset().unwrap_or(0),
                skipped: None,
                error: e.to_string(),
                after: None,
            }),
        }
        Ok(input)
    }

    /// Turns reader warnings (salvage) that appeared since the last call
    /// into damage. They appeared while reading the next event, so the
    /// damage lies after the last event delivered so far.
    fn take_warnings(&mut self) {
        let Some(r) = &self.reader else { return };
        for w in &r.warnings()[self.warnings_seen..] {
            // The end of the file came early (half a chunk, no end
            // marker): cut short, not damaged.
            if matches!(w.error, TraceError::Truncated { .. }) {
                self.cut_short = true;
                continue;
            }
            self.damage.push(Damage {
                offset: w.offset,
                skipped: Some(w.skipped),
                error: w.error.to_string(),
                after: self.last.clone(),
            });
        }
        self.warnings_seen = r.warnings().len();
    }

    /// The accounting once reading is over.
    pub fn report(&self) -> InputReport {
        let (bytes_read, end_marker) = self
            .reader
            .as_ref()
            .map_or((0, false), |r| (r.offset(), r.is_complete()));
        let complete =
            end_marker && !self.cut_short && self.damage.is_empty() && bytes_read == self.size;
        InputReport {
            file: self.path.display().to_string(),
            size: self.size,
            bytes_read,
            events: self.events,
            end_marker,
            cut_short: self.cut_short || (!end_marker && self.damage.is_empty()),
            damage: self.damage.clone(),
            last_event: self.last.clone(),
            complete,
        }
    }
}

impl EventSource for TracedInput {
    fn nodes(&self) -> &[NodeInfo] {
        self.reader.as_ref().map_or(&[], |r| r.nodes())
    }

    fn next_event(&mut self) -> Option<Result<Event, TraceError>> {
        let item = self.reader.as_mut()?.next();
        self.take_warnings();
        match item {
            Some(Ok(ev)) => {
                self.events += 1;
                self.last = Some(LastEvent {
                    node: node_name(self.nodes(), ev.node).into_owned(),
                    ts_ns: ev.ts_ns,
                });
                Some(Ok(ev))
            }
            Some(Err(TraceError::Truncated { .. })) => {
                // The file ends early: everything before was read.
                self.cut_short = true;
                None
            }
            Some(Err(e)) => {
                // Strict: the reader stops at its first error. Salvage:
                // only an I/O error ends it. Either way this input is over;
                // the others go on.
                self.damage.push(Damage {
                    offset: e.offset().unwrap_or(0),
                    skipped: None,
                    error: e.to_string(),
                    after: self.last.clone(),
                });
                None
            }
            None => None,
        }
    }
}

/// Opens every path (an unopenable one is an error before anything is
/// read) and merges them.
pub fn open_inputs<P: AsRef<Path>>(
    paths: &[P],
    mode: ReadMode,
) -> Result<Timeline<TracedInput>, OpenError> {
    let inputs = paths
        .iter()
        .map(|p| TracedInput::open(p.as_ref(), mode))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Timeline::new(inputs))
}

/// Feeds every event of `paths`, merged by aligned time, to `f` with the
/// node table as it is then; returns what was read from each file. `f`'s
/// error stops reading and is returned.
pub fn read_inputs<P: AsRef<Path>, E: From<OpenError>>(
    paths: &[P],
    mode: ReadMode,
    mut f: impl FnMut(&Event, &[NodeInfo]) -> Result<(), E>,
) -> Result<ReadReport, E> {
    let mut timeline = open_inputs(paths, mode)?;
    while let Some(item) = timeline.next() {
        // Inputs never yield errors: they end and keep the damage.
        if let Ok(ev) = item {
            f(&ev, timeline.nodes())?;
        }
    }
    Ok(ReadReport {
        inputs: timeline.sources().map(TracedInput::report).collect(),
    })
}
