//! The one way to build an [`Event`] by hand: tests, fixtures, benchmarks,
//! the kinds' samples and the synthetic generator all use it.
//!
//! ```
//! use tracer_core::event::{build::Task, VfioPin};
//! let qemu = Task::new(0, 4242, 4243, "CPU 0/KVM");
//! let ev = qemu.at(2_100, VfioPin { vaddr: 0x7f00_0000_0000, npages: 1, pfn: 0x1234 });
//! assert_eq!(ev.kind.name(), "vfio_pin");
//! ```

use super::{Comm, Event, EventKind, NodeId};

/// Who an event is attributed to: a node and a task on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Task {
    pub node: NodeId,
    pub pid: u32,
    pub tid: u32,
    pub comm: Comm,
}

impl Task {
    pub fn new(node: NodeId, pid: u32, tid: u32, comm: &str) -> Self {
        Task {
            node,
            pid,
            tid,
            comm: Comm::new(comm),
        }
    }

    /// The same task on another node.
    pub fn on(self, node: NodeId) -> Self {
        Task { node, ..self }
    }

    /// The event of `kind` this task produced at `ts_ns`.
    pub fn at(&self, ts_ns: u64, kind: impl Into<EventKind>) -> Event {
        Event {
            ts_ns,
            node: self.node,
            pid: self.pid,
            tid: self.tid,
            comm: self.comm,
            kind: kind.into(),
        }
    }
}

/// One event: `Task::new(node, pid, tid, comm).at(ts_ns, kind)`.
pub fn event(
    ts_ns: u64,
    node: NodeId,
    pid: u32,
    tid: u32,
    comm: &str,
    kind: impl Into<EventKind>,
) -> Event {
    Task::new(node, pid, tid, comm).at(ts_ns, kind)
}
