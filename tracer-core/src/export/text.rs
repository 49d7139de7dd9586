//! One line per event, for `replay --print` and `live --no-tui`:
//!
//! ```text
//! 12.000002000 host CPU 0/KVM[4242/4243] vfio_map_dma container=4242:17 iova=0x10000000 ...
//! ```
//!
//! Time is the node's monotonic clock in seconds; addresses and sizes are
//! hex. Meant for people; scripts should use JSON Lines.

use std::fmt::Write as _;
use std::io::{self, Write};

use crate::event::{Event, NodeInfo};
use crate::tracefile::node_name;

/// The text line of one event, without the newline.
pub fn format_event(ev: &Event, nodes: &[NodeInfo]) -> String {
    let mut s = String::with_capacity(128);
    let _ = write!(
        s,
        "{}.{:09} {} {}[{}/{}] ",
        ev.ts_ns / 1_000_000_000,
        ev.ts_ns % 1_000_000_000,
        node_name(nodes, ev.node),
        ev.comm.as_str(),
        ev.pid,
        ev.tid
    );
    // The kind's name and fields: its `Display` (event/kinds/).
    let _ = write!(s, "{}", ev.kind);
    s
}

/// Prints events, one line each.
pub struct TextWriter<W: Write> {
    out: W,
}

impl<W: Write> TextWriter<W> {
    pub fn new(out: W) -> Self {
        TextWriter { out }
    }

    pub fn write_event(&mut self, ev: &Event, nodes: &[NodeInfo]) -> io::Result<()> {
        let mut line = format_event(ev, nodes);
        line.push('\n');
        self.out.write_all(line.as_bytes())
    }

    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}
