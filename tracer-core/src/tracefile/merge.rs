//! Several trace files (a host's and its guests') as one timeline.
//!
//! Each input has its own node table; the timeline has one, where nodes are
//! identified by name (the first input naming a node provides its info), and
//! events get their node id remapped into it. Events come out ordered by
//! aligned time, `ts_ns + clock_offset_ns` of their node (wall-clock time);
//! ties go to the earlier input, then to file order. Events out of order
//! inside one file (per-CPU buffers; a file holding several nodes whose
//! events arrived late) are put in order within a reorder window
//! ([`Timeline::with_window`], 1 s by default, at most
//! [`Timeline::with_max_buffered`] events held, 256 Ki by default).

use std::cmp::Ordering;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use super::error::TraceError;
use super::reader::{ReadMode, TraceReader};
use crate::event::{Event, NodeId, NodeInfo, NodeRole};

/// Wall-clock (CLOCK_REALTIME) nanoseconds of `ev`: its monotonic `ts_ns`
/// plus its node's clock offset (0 when the node is unknown).
pub fn aligned_ns(ev: &Event, nodes: &[NodeInfo]) -> i128 {
    crate::event::wall_ns(nodes, ev.node, ev.ts_ns)
}

/// Anything that yields events against a node table that may grow.
pub trait EventSource {
    fn nodes(&self) -> &[NodeInfo];
    fn next_event(&mut self) -> Option<Result<Event, TraceError>>;
}

impl<R: Read> EventSource for TraceReader<R> {
    fn nodes(&self) -> &[NodeInfo] {
        TraceReader::nodes(self)
    }
    fn next_event(&mut self) -> Option<Result<Event, TraceError>> {
        self.next()
    }
}

/// Events already in memory (tests, remote agents).
pub struct MemorySource {
    pub nodes: Vec<NodeInfo>,
    pub events: std::vec::IntoIter<Event>,
}

impl MemorySource {
    pub fn new(nodes: Vec<NodeInfo>, events: Vec<Event>) -> Self {
        MemorySource {
            nodes,
            events: events.into_iter(),
        }
    }
}

impl EventSource for MemorySource {
    fn nodes(&self) -> &[NodeInfo] {
        &self.nodes
    }
    fn next_event(&mut self) -> Option<Result<Event, TraceError>> {
        self.events.next().map(Ok)
    }
}

struct Input<S> {
    src: S,
    /// Input node id → timeline node id.
    remap: Vec<NodeId>,
    /// Highest aligned time pulled so far.
    watermark: Option<i128>,
    exhausted: bool,
}

/// A buffered event (or an input's error, placed after every event that
/// input delivered before it), ordered by (aligned time, input, sequence).
struct Pending {
    key: (i128, usize, u64),
    item: Result<Event, TraceError>,
}

impl PartialEq for Pending {
    fn eq(&self, o: &Self) -> bool {
        self.key == o.key
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Pending {
    fn cmp(&self, o: &Self) -> Ordering {
        self.key.cmp(&o.key)
    }
}

/// The merged stream: an iterator of `Result<Event, TraceError>` whose node
/// ids index [`Timeline::nodes`]. An input's error comes out in time order,
/// after every event that input delivered before it; the other inputs go
/// on after it.
pub struct Timeline<S> {
    inputs: Vec<Input<S>>,
    nodes: Vec<NodeInfo>,
    by_name: HashMap<String, NodeId>,
    heap: BinaryHeap<Reverse<Pending>>,
    seq: u64,
    window_ns: i128,
    max_buffered: usize,
}

/// Default reorder window.
pub const DEFAULT_WINDOW_NS: u64 = 1_000_000_000;
/// Default bound on events held for reordering.
pub const DEFAULT_MAX_BUFFERED: usize = 256 * 1024;

impl Timeline<TraceReader<BufReader<File>>> {
    /// Opens every path with `mode` and merges them.
    pub fn open<P: AsRef<Path>>(paths: &[P], mode: ReadMode) -> Result<Self, TraceError> {
        let readers = paths
            .iter()
            .map(|p| TraceReader::open_with_mode(p, mode))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Timeline::new(readers))
    }
}

impl<S: EventSource> Timeline<S> {
    pub fn new(sources: Vec<S>) -> Self {
        let mut t = Timeline {
            inputs: sources
                .into_iter()
                .map(|src| Input {
                    src,
                    remap: Vec::new(),
                    watermark: None,
                    exhausted: false,
                })
                .collect(),
            nodes: Vec::new(),
            by_name: HashMap::new(),
            heap: BinaryHeap::new(),
            seq: 0,
            window_ns: i128::from(DEFAULT_WINDOW_NS),
            max_buffered: DEFAULT_MAX_BUFFERED,
        };
        for i in 0..t.inputs.len() {
            t.learn_nodes(i);
        }
        t
    }

    /// How far out of order (in aligned time) events may be and still come
    /// out sorted. 0 merges the inputs as they are.
    pub fn with_window(mut self, window_ns: u64) -> Self {
        self.window_ns = i128::from(window_ns);
        self
    }

    /// Most events held for reordering (memory bound); past it the earliest
    /// is released even if the window is not covered.
    pub fn with_max_buffered(mut self, n: usize) -> Self {
        self.max_buffered = n.max(1);
        self
    }

    /// The merged node table. It can grow while iterating (nodes added in a
    /// file's stream).
    pub fn nodes(&self) -> &[NodeInfo] {
        &self.nodes
    }

    /// The inputs, e.g. for their salvage warnings.
    pub fn sources(&self) -> impl Iterator<Item = &S> {
        self.inputs.iter().map(|i| &i.src)
    }

    /// Extends input `i`'s remap table to the nodes its source knows now.
    fn learn_nodes(&mut self, i: usize) {
        let input = &mut self.inputs[i];
        let known = input.src.nodes();
        for n in known.iter().skip(input.remap.len()) {
            let id = match self.by_name.get(&n.name) {
                Some(&id) => id,
                None => {
                    let id = self.nodes.len() as NodeId;
                    self.nodes.push(n.clone());
                    self.by_name.insert(n.name.clone(), id);
                    id
                }
            };
            input.remap.push(id);
        }
    }

    /// Timeline id of input `i`'s node `node`; an unknown node gets a
    /// placeholder entry.
    fn map_node(&mut self, i: usize, node: NodeId) -> NodeId {
        if usize::from(node) >= self.inputs[i].remap.len() {
            self.learn_nodes(i);
        }
        while usize::from(node) >= self.inputs[i].remap.len() {
            let k = self.inputs[i].remap.len();
            let name = format!("node{k}@input{i}");
            let id = match self.by_name.get(&name) {
                Some(&id) => id,
                None => {
                    let id = self.nodes.len() as NodeId;
                    self.nodes.push(NodeInfo {
                        name: name.clone(),
                        role: NodeRole::Mixed,
                        kernel: String::new(),
                        machine: String::new(),
                        clock_offset_ns: 0,
                    });
                    self.by_name.insert(name, id);
                    id
                }
            };
            self.inputs[i].remap.push(id);
        }
        self.inputs[i].remap[usize::from(node)]
    }

    /// Pulls one item from input `i` into the heap.
    fn pull(&mut self, i: usize) {
        match self.inputs[i].src.next_event() {
            None => self.inputs[i].exhausted = true,
            Some(Err(e)) => {
                self.seq += 1;
                let at = self.inputs[i].watermark.unwrap_or(i128::MIN);
                self.heap.push(Reverse(Pending {
                    key: (at, i, self.seq),
                    item: Err(e),
                }));
            }
            Some(Ok(mut ev)) => {
                ev.node = self.map_node(i, ev.node);
                let key = aligned_ns(&ev, &self.nodes);
                let input = &mut self.inputs[i];
                input.watermark = Some(input.watermark.map_or(key, |w| w.max(key)));
                self.seq += 1;
                self.heap.push(Reverse(Pending {
                    key: (key, i, self.seq),
                    item: Ok(ev),
                }));
            }
        }
    }

    /// The input that must be read before the earliest buffered event can
    /// go out, if any.
    fn lagging_input(&self) -> Option<usize> {
        let min = self.heap.peek().map(|p| p.0.key.0);
        self.inputs
            .iter()
            .enumerate()
            .filter(|(_, inp)| !inp.exhausted)
            .filter(|(_, inp)| match (inp.watermark, min) {
                (None, _) | (_, None) => true,
                (Some(w), Some(m)) => w < m + self.window_ns,
            })
            .min_by_key(|(_, inp)| inp.watermark)
            .map(|(i, _)| i)
    }
}

impl<S: EventSource> Iterator for Timeline<S> {
    type Item = Result<Event, TraceError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.heap.len() >= self.max_buffered {
                break;
            }
            match self.lagging_input() {
                Some(i) => self.pull(i),
                None => break,
            }
        }
        self.heap.pop().map(|Reverse(p)| p.item)
    }
}
