//! Perfetto / Chrome trace-event JSON (the "JSON Object Format" the Perfetto
//! UI and chrome://tracing open).
//!
//! One process per node; one thread (track) per VFIO container, IOMMU
//! domain, device, VM, iommufd IOAS or virtio-iommu domain, plus `health`
//! (probe status, drops) and `findings`. Every event is an instant event
//! whose args are the event's fields (values ≥ 0x10000 as hex strings);
//! successful maps/unmaps also drive a `mapped bytes` counter per container
//! or domain. Times are aligned (wall-clock) microseconds relative to a base
//! recorded in `otherData.base_realtime_ns`.

use std::collections::{HashMap, HashSet};
use std::io::{self, Write};

use serde_json::{json, Map, Value};

use crate::event::*;
use crate::tracefile::merge::aligned_ns;

/// A rule's verdict to show on the timeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// Monotonic time on `node`, like [`Event::ts_ns`].
    pub ts_ns: u64,
    pub node: NodeId,
    pub title: String,
    pub detail: String,
}

/// Streams a Perfetto-loadable JSON trace.
pub struct PerfettoWriter<W: Write> {
    out: W,
    base_ns: Option<i128>,
    any: bool,
    procs: HashSet<NodeId>,
    tracks: HashMap<(NodeId, String), u32>,
    mapped: HashMap<(NodeId, String), i128>,
}

const FINDINGS: &str = "findings";

impl<W: Write> PerfettoWriter<W> {
    /// Starts the JSON document. Times are relative to the first event's
    /// aligned time minus one second, unless [`with_base`](Self::with_base).
    pub fn new(mut out: W) -> io::Result<Self> {
        out.write_all(b"{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n")?;
        Ok(PerfettoWriter {
            out,
            base_ns: None,
            any: false,
            procs: HashSet::new(),
            tracks: HashMap::new(),
            mapped: HashMap::new(),
        })
    }

    /// Sets the wall-clock nanosecond that becomes time 0.
    pub fn with_base(mut self, base_realtime_ns: i128) -> Self {
        self.base_ns = Some(base_realtime_ns);
        self
    }

    fn emit(&mut self, v: &Value) -> io::Result<()> {
        if self.any {
            self.out.write_all(b",\n")?;
        }
        self.any = true;
        serde_json::to_writer(&mut self.out, v)?;
        Ok(())
    }

    fn ts_us(&mut self, aligned: i128) -> f64 {
        let base = *self.base_ns.get_or_insert(aligned - 1_000_000_000);
        (aligned - base) as f64 / 1000.0
    }

    fn pid(node: NodeId) -> u32 {
        u32::from(node) + 1
    }

    /// Track id of `name` in `node`'s process, announcing process and
    /// thread names the first time.
    fn track(&mut self, node: NodeId, name: String, nodes: &[NodeInfo]) -> io::Result<u32> {
        let pid = Self::pid(node);
        if self.procs.insert(node) {
            let pname = match nodes.get(usize::from(node)) {
                Some(n) => format!("{} ({:?}, {})", n.name, n.role, n.kernel),
                None => format!("node{node}"),
            };
            self.emit(
                &json!({"ph":"M","name":"process_name","pid":pid,"tid":0,"args":{"name":pname}}),
            )?;
            self.emit(&json!({"ph":"M","name":"process_sort_index","pid":pid,"tid":0,"args":{"sort_index":node}}))?;
        }
        let next = self.tracks.len() as u32 + 1;
        let key = (node, name);
        if let Some(&tid) = self.tracks.get(&key) {
            return Ok(tid);
        }
        self.tracks.insert(key.clone(), next);
        self.emit(
            &json!({"ph":"M","name":"thread_name","pid":pid,"tid":next,"args":{"name":key.1}}),
        )?;
        Ok(next)
    }

    /// Adds one event; `nodes` is the node table its `node` indexes.
    pub fn write_event(&mut self, ev: &Event, nodes: &[NodeInfo]) -> io::Result<()> {
        let aligned = aligned_ns(ev, nodes);
        let ts = self.ts_us(aligned);
        let (track, name) = track_of(ev);
        let tid = self.track(ev.node, track.clone(), nodes)?;
        let Value::Object(fields) = serde_json::to_value(&ev.kind)? else {
            return Ok(());
        };
        let mut args = Map::new();
        for (k, v) in fields {
            if k != "kind" {
                args.insert(k, readable(v));
            }
        }
        args.insert(
            "task".into(),
            json!(format!("{}[{}/{}]", ev.comm.as_str(), ev.pid, ev.tid)),
        );
        args.insert("ts_ns".into(), json!(ev.ts_ns));
        self.emit(&json!({
            "name": name, "cat": ev.kind.subsystem(), "ph": "i", "s": "t",
            "ts": ts, "pid": Self::pid(ev.node), "tid": tid, "args": args,
        }))?;
        if let Some(delta) = ev.kind.mapped_delta() {
            let total = {
                let t = self.mapped.entry((ev.node, track.clone())).or_insert(0);
                *t += delta;
                *t
            };
            self.emit(&json!({
                "name": format!("mapped bytes: {track}"), "ph": "C", "ts": ts,
                "pid": Self::pid(ev.node), "args": {"bytes": total},
            }))?;
        }
        Ok(())
    }

    /// Adds a rule finding as an instant event on its node's `findings` track.
    pub fn add_finding(&mut self, f: &Finding, nodes: &[NodeInfo]) -> io::Result<()> {
        let ts = self.ts_us(crate::event::wall_ns(nodes, f.node, f.ts_ns));
        let tid = self.track(f.node, FINDINGS.into(), nodes)?;
        self.emit(&json!({
            "name": f.title, "cat": "finding", "ph": "i", "s": "p",
            "ts": ts, "pid": Self::pid(f.node), "tid": tid,
            "args": {"detail": f.detail, "ts_ns": f.ts_ns},
        }))
    }

    /// Closes the JSON document and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        let base = self.base_ns.unwrap_or(0).to_string();
        write!(
            self.out,
            "\n],\"otherData\":{{\"base_realtime_ns\":\"{base}\",\"tool\":\"vfio-trace\"}}}}\n"
        )?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Large numbers (addresses, sizes) as hex strings, recursively.
fn readable(v: Value) -> Value {
    match v {
        Value::Number(n) => match n.as_u64() {
            Some(u) if u >= 0x10000 => Value::String(format!("{u:#x}")),
            _ => Value::Number(n),
        },
        Value::Array(a) => Value::Array(a.into_iter().map(readable).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, readable(v))).collect()),
        v => v,
    }
}

/// (track name, event name) of an event: its kind's (event/kinds/).
fn track_of(ev: &Event) -> (String, String) {
    (ev.kind.track(ev.pid), ev.kind.title())
}
