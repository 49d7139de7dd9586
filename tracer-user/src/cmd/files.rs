//! Reading recorded trace files for the commands that take `FILE...`:
//! several files become one timeline. Damage in one file costs only that
//! file's events from the damage on (or, with `--salvage`, the damaged
//! stretch); the other files are read to their end. What was read from
//! each file is reported by name and offset, and decides whether the
//! result is complete.

use std::path::PathBuf;

use anyhow::{Error, Result};
use tracer_core::{
    event::{Event, NodeInfo},
    tracefile::{node_name, read_inputs, ReadMode, ReadReport},
};

/// Feeds every event of `files`, merged by aligned time, to `f`; returns
/// what was read from each file (already said on stderr when incomplete).
pub fn for_each_event(
    files: &[PathBuf],
    salvage: bool,
    f: impl FnMut(&Event, &[NodeInfo]) -> Result<()>,
) -> Result<ReadReport> {
    let mode = if salvage {
        ReadMode::Salvage
    } else {
        ReadMode::Strict
    };
    let read = read_inputs::<_, Error>(files, mode, f)?;
    say_incomplete(&read, salvage);
    Ok(read)
}

/// Every event of `files` in memory (for commands that need the whole
/// stream), with the final node table and what was read from each file.
pub fn read_all_events(
    files: &[PathBuf],
    salvage: bool,
) -> Result<(Vec<Event>, Vec<NodeInfo>, ReadReport)> {
    let mut events = Vec::new();
    let mut nodes = Vec::new();
    let read = for_each_event(files, salvage, |ev, n| {
        events.push(ev.clone());
        if n.len() != nodes.len() {
            nodes = n.to_vec();
        }
        Ok(())
    })?;
    align(&mut events, &mut nodes);
    Ok((events, nodes, read))
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

/// Says on stderr, per incomplete file, what was read and what was not.
fn say_incomplete(read: &ReadReport, salvage: bool) {
    for input in read.inputs.iter().filter(|i| !i.complete) {
        for d in &input.damage {
            eprintln!("vfio-trace: error: {}: {d}", input.file);
        }
        if input.cut_short {
            eprintln!(
                "vfio-trace: warning: {}: no end marker after byte {}: the recording stops \
                 there (recorder killed, disk full, or still writing); everything before it \
                 was read",
                input.file, input.bytes_read
            );
        }
        eprintln!("vfio-trace: incomplete input {}", input.summary_line());
    }
    // Reading stopped at damage before the end of a file (not just a file
    // cut short): salvage can read on past it.
    let stopped = read
        .inputs
        .iter()
        .any(|i| !i.damage.is_empty() && i.bytes_read < i.size);
    if stopped && !salvage {
        eprintln!("vfio-trace: use --salvage to skip the damage and read on");
    }
}

/// Exit code of a command that only reads (export, replay): 2 when a file
/// is damaged, else 0 (a file cut short, a killed recording, is said on
/// stderr; its events up to the cut are all there). The output holds
/// everything that was read either way.
pub fn read_exit(read: &ReadReport) -> std::process::ExitCode {
    if !read.damaged() {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(super::EXIT_CANNOT)
    }
}
