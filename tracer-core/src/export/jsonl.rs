//! JSON Lines: one object per event with `ts_ns`, `node` (the node's name),
//! `pid`, `tid`, `comm`, `kind`, then the kind's fields, as the serde form of
//! [`EventKind`] gives them. Field names are a user contract (see event.rs).

use std::io::{self, Write};

use serde::Serialize;

use crate::event::{Event, EventKind, NodeInfo};
use crate::tracefile::node_name;

#[derive(Serialize)]
struct Line<'a> {
    ts_ns: u64,
    node: &'a str,
    pid: u32,
    tid: u32,
    comm: &'a str,
    #[serde(flatten)]
    kind: &'a EventKind,
}

/// The JSON object of one event, without the newline. `nodes` names the
/// event's node (`node<N>` when the table has no entry).
pub fn to_jsonl_line(ev: &Event, nodes: &[NodeInfo]) -> String {
    let node = node_name(nodes, ev.node);
    let comm = ev.comm.as_str();
    serde_json::to_string(&Line {
        ts_ns: ev.ts_ns,
        node: &node,
        pid: ev.pid,
        tid: ev.tid,
        comm: &comm,
        kind: &ev.kind,
    })
    .expect("an event always serializes")
}

/// Writes events as JSON Lines.
pub struct JsonlWriter<W: Write> {
    out: W,
}

impl<W: Write> JsonlWriter<W> {
    pub fn new(out: W) -> Self {
        JsonlWriter { out }
    }

    pub fn write_event(&mut self, ev: &Event, nodes: &[NodeInfo]) -> io::Result<()> {
        let mut line = to_jsonl_line(ev, nodes);
        line.push('\n');
        self.out.write_all(line.as_bytes())
    }

    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}
