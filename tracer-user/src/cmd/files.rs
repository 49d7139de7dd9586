//! Reading recorded trace files for the commands that take `FILE...`:
//! several files become one timeline; damage is reported with its byte
//! offset, and everything before it is still delivered.

use std::path::PathBuf;

use anyhow::{Context, Result};
use tracer_core::{
    event::{Event, NodeInfo},
    tracefile::{node_name, ReadMode, Timeline, TraceError},
};

/// How reading ended.
pub enum ReadEnd {
    /// Every file read to its end (salvage warnings, if any, were printed).
    Complete,
    /// Reading stopped at damage; everything before it was delivered.
    Damaged(TraceError),
}

/// Feeds every event of `files`, merged by aligned time, to `f`.
pub fn for_each_event(
    files: &[PathBuf],
    salvage: bool,
    mut f: impl FnMut(&Event, &[NodeInfo]) -> Result<()>,
) -> Result<ReadEnd> {
    let mode = if salvage {
        ReadMode::Salvage
    } else {
        ReadMode::Strict
    };
    let mut timeline = Timeline::open(files, mode).with_context(|| {
        format!(
            "opening {}",
            files
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })?;
    let mut end = ReadEnd::Complete;
    while let Some(item) = timeline.next() {
        match item {
            Ok(ev) => f(&ev, timeline.nodes())?,
            Err(e) => {
                end = ReadEnd::Damaged(e);
                break;
            }
        }
    }
    for src in timeline.sources() {
        for w in src.warnings() {
            eprintln!("vfio-trace: warning: {w}");
        }
    }
    Ok(end)
}

/// Every event of `files` in memory (for commands that need the whole
/// stream), with the final node table and how reading ended.
pub fn read_all_events(
    files: &[PathBuf],
    salvage: bool,
) -> Result<(Vec<Event>, Vec<NodeInfo>, ReadEnd)> {
    let mut events = Vec::new();
    let mut nodes = Vec::new();
    let end = for_each_event(files, salvage, |ev, n| {
        events.push(ev.clone());
        if n.len() != nodes.len() {
            nodes = n.to_vec();
        }
        Ok(())
    })?;
    align(&mut events, &mut nodes);
    Ok((events, nodes, end))
}

/// Separately recorded nodes whose wall clocks disagree (a VM's RTC) are
/// aligned from the events (a guest MAP followed by the host's MAP_DMA,
/// `tracefile::align`), said on stderr, and the timeline re-sorted.
pub fn align(events: &mut [Event], nodes: &mut [NodeInfo]) {
    let shifts = tracer_core::tracefile::align::align_nodes(events, nodes);
    for a in &shifts {
        eprintln!(
            "vfio-trace: node {} aligned to {}: {a}",
            node_name(nodes, a.guest),
            node_name(nodes, a.host)
        );
    }
    if !shifts.is_empty() {
        events.sort_by_key(|e| tracer_core::tracefile::aligned_ns(e, nodes));
    }
}

/// Reports damage; returns whether it is fatal for the exit code. A file
/// that merely ends mid-chunk (a killed recorder) is a warning: everything
/// up to its last complete chunk was read.
pub fn report_damage(end: &ReadEnd, salvage: bool) -> bool {
    match end {
        ReadEnd::Complete => false,
        ReadEnd::Damaged(e @ TraceError::Truncated { .. }) => {
            eprintln!(
                "vfio-trace: warning: {e}; the recording stopped there (recorder killed?), \
                 everything before it was read"
            );
            false
        }
        ReadEnd::Damaged(e) => {
            eprintln!("vfio-trace: error: {e}; everything before it was read");
            if !salvage {
                eprintln!("vfio-trace: use --salvage to skip the damage and read on");
            }
            true
        }
    }
}
