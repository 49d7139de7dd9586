//! `r` in the live view: records every event the ingest side receives to
//! `vfio-trace-<unix time>.vtrace` in `$VFIO_TRACE_RECORD_DIR` (default: the
//! current directory), flushed at least every [`FLUSH_EVERY`] like
//! `vfio-trace record`. The [`Recorder`] lives on the ingest side, never in
//! the draw path; `r` again (or quitting) finishes the file.

use std::{
    fs::{File, OpenOptions},
    io::BufWriter,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use tracer_core::{
    event::{Event, NodeInfo, ProbeStatus},
    tracefile::{TraceHeader, TraceWriter, WriterOptions},
};

/// Pending events are written at least this often.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// What the live view needs to start a recording.
#[derive(Clone, Debug)]
pub struct RecordConfig {
    /// Where the files go.
    pub dir: PathBuf,
    /// Probe statuses at attach time (the file header's probe table).
    pub probes: Vec<ProbeStatus>,
}

impl RecordConfig {
    /// `$VFIO_TRACE_RECORD_DIR`, else the current directory.
    pub fn from_env(probes: Vec<ProbeStatus>) -> Self {
        let dir = std::env::var_os("VFIO_TRACE_RECORD_DIR")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."));
        RecordConfig { dir, probes }
    }
}

/// A recording in progress.
pub struct Recorder {
    writer: TraceWriter<BufWriter<File>>,
    path: PathBuf,
    last_flush: Instant,
}

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    u64::try_from(ts.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(ts.tv_nsec).unwrap_or(0)
}

/// Creates `vfio-trace-<secs>.vtrace` in `dir`, or `-1`, `-2`, ... when
/// that exists (never overwrites a recording).
fn create_unique(dir: &Path, secs: u64) -> Result<(File, PathBuf)> {
    for n in 0..1000u32 {
        let name = if n == 0 {
            format!("vfio-trace-{secs}.vtrace")
        } else {
            format!("vfio-trace-{secs}-{n}.vtrace")
        };
        let path = dir.join(name);
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(f) => return Ok((f, path)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
        }
    }
    anyhow::bail!("{}: too many recordings this second", dir.display())
}

impl Recorder {
    /// Creates the file and writes its header (`nodes`: the node table so
    /// far; later nodes are added with [`sync_nodes`](Self::sync_nodes)).
    pub fn start(cfg: &RecordConfig, nodes: &[NodeInfo]) -> Result<Self> {
        let realtime = clock_ns(libc::CLOCK_REALTIME);
        let local = nodes.first();
        let header = TraceHeader {
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            kernel: local.map(|n| n.kernel.clone()).unwrap_or_default(),
            machine: local.map(|n| n.machine.clone()).unwrap_or_default(),
            nodes: nodes.to_vec(),
            probes: cfg.probes.clone(),
            cmdline: std::env::args().collect(),
            start_realtime_ns: realtime,
            start_monotonic_ns: clock_ns(libc::CLOCK_MONOTONIC),
            ..TraceHeader::default()
        };
        let (file, path) = create_unique(&cfg.dir, realtime / 1_000_000_000)?;
        let writer = TraceWriter::new(
            BufWriter::with_capacity(1 << 20, file),
            &header,
            WriterOptions::default(),
        )
        .with_context(|| format!("writing {}", path.display()))?;
        Ok(Recorder {
            writer,
            path,
            last_flush: Instant::now(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's name (for the header line).
    pub fn file_name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.path.display().to_string())
    }

    /// Events recorded so far.
    pub fn events(&self) -> u64 {
        self.writer.events()
    }

    /// Nodes that joined since the file was created go into its node table
    /// (same ids as live: the table only grows).
    pub fn sync_nodes(&mut self, nodes: &[NodeInfo]) -> Result<()> {
        for n in nodes.iter().skip(self.writer.nodes().len()) {
            self.writer
                .add_node(n.clone())
                .with_context(|| format!("writing {}", self.path.display()))?;
        }
        Ok(())
    }

    pub fn append(&mut self, batch: &[Event]) -> Result<()> {
        for e in batch {
            self.writer
                .append(e)
                .with_context(|| format!("writing {}", self.path.display()))?;
        }
        Ok(())
    }

    /// Flushes when the last flush is [`FLUSH_EVERY`] old.
    pub fn flush_if_due(&mut self) -> Result<()> {
        if self.last_flush.elapsed() >= FLUSH_EVERY {
            self.last_flush = Instant::now();
            self.writer
                .flush()
                .with_context(|| format!("writing {}", self.path.display()))?;
        }
        Ok(())
    }

    /// Writes the end marker. Returns the path and the number of events.
    pub fn finish(self) -> Result<(PathBuf, u64)> {
        let events = self.writer.events();
        let Recorder { writer, path, .. } = self;
        writer
            .finish()
            .with_context(|| format!("finishing {}", path.display()))?;
        Ok((path, events))
    }
}
