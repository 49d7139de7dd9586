//! `r` in the live view: records every event the ingest side receives to
//! `vfio-trace-<unix time>.vtrace` in `$VFIO_TRACE_RECORD_DIR` (default: the
//! current directory) through the same [`Recorder`] as `vfio-trace record`
//! (flushed at least every second, cut back to its last complete
//! chunk if the disk fills). The recorder lives on the ingest side, never
//! in the draw path; `r` again (or quitting) finishes the file.

use std::{
    fs::{File, OpenOptions},
    path::{Path, PathBuf},
};

use anyhow::{Context, Result};
pub use tracer_core::tracefile::Recorder;
use tracer_core::{
    event::{NodeInfo, ProbeStatus},
    tracefile::TraceHeader,
};

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
            Ok(f) => {
                crate::sudo_owner::give(&f, &path);
                return Ok((f, path));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
        }
    }
    anyhow::bail!("{}: too many recordings this second", dir.display())
}

/// Creates the file and writes its header (`nodes`: the node table so
/// far; later nodes are added with [`Recorder::sync_nodes`]).
pub fn start(cfg: &RecordConfig, nodes: &[NodeInfo]) -> Result<Recorder> {
    let realtime = crate::node::realtime_ns();
    let local = nodes.first();
    let header = TraceHeader {
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        kernel: local.map(|n| n.kernel.clone()).unwrap_or_default(),
        machine: local.map(|n| n.machine.clone()).unwrap_or_default(),
        nodes: nodes.to_vec(),
        probes: cfg.probes.clone(),
        cmdline: std::env::args().collect(),
        start_realtime_ns: realtime,
        start_monotonic_ns: crate::node::monotonic_ns(),
        ..TraceHeader::default()
    };
    let (file, path) = create_unique(&cfg.dir, realtime / 1_000_000_000)?;
    Ok(Recorder::new(file, path, &header)?)
}
