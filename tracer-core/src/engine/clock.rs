//! Node table and wall-clock arithmetic: events carry node-local
//! CLOCK_MONOTONIC; `ts + clock_offset_ns` puts nodes on one time line.

use crate::event::{NodeId, NodeInfo, NodeRole};

#[derive(Clone, Debug, Default)]
pub struct Clock {
    nodes: Vec<NodeInfo>,
    /// Latest wall time seen on any node.
    now: u64,
}

impl Clock {
    pub fn new(nodes: Vec<NodeInfo>) -> Self {
        Clock { nodes, now: 0 }
    }

    pub fn nodes(&self) -> &[NodeInfo] {
        &self.nodes
    }

    /// Replaces the node table (nodes joined, clock offsets refined).
    pub fn set_nodes(&mut self, nodes: Vec<NodeInfo>) {
        self.nodes = nodes;
    }

    pub fn info(&self, node: NodeId) -> Option<&NodeInfo> {
        self.nodes.get(usize::from(node))
    }

    /// Wall-clock nanoseconds of a node-local timestamp (saturating).
    pub fn wall(&self, node: NodeId, ts_ns: u64) -> u64 {
        crate::event::wall_ns_u64(&self.nodes, node, ts_ns)
    }

    /// Records an event's time; returns its wall time.
    pub fn observe(&mut self, node: NodeId, ts_ns: u64) -> u64 {
        let w = self.wall(node, ts_ns);
        self.now = self.now.max(w);
        w
    }

    pub fn now(&self) -> u64 {
        self.now
    }

    pub fn name(&self, node: NodeId) -> String {
        self.info(node)
            .map_or_else(|| format!("node{node}"), |n| n.name.clone())
    }

    pub fn id_of(&self, name: &str) -> Option<NodeId> {
        let i = self.nodes.iter().position(|n| n.name == name)?;
        NodeId::try_from(i).ok()
    }

    pub fn role(&self, node: NodeId) -> Option<NodeRole> {
        self.info(node).map(|n| n.role)
    }

    /// x86 machines have the hardware MSI window 0xfee00000-0xfeefffff.
    pub fn is_x86(&self, node: NodeId) -> bool {
        self.info(node).is_some_and(|n| {
            matches!(
                n.machine.as_str(),
                "x86_64" | "amd64" | "i386" | "i486" | "i586" | "i686"
            )
        })
    }
}
