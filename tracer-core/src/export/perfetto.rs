//! Perfetto / Chrome trace-event JSON (the "JSON Object Format" the Perfetto
//! UI and chrome://tracing open).
//!
//! One process per node; one thread (track) per VFIO container, IOMMU
//! domain, device, VM, iommufd IOAS or virtio-iommu domain, plus `health`
//! (probe status, drops) and `findings`. Every event is an instant event
//! whose args are the event's fields (values ≥ 0x10000 as hex strings);
//! successful maps/unmaps also drive a `mapped bytes` counter per container
//! or domain, and a complete slice (`"ph":"X"`) per mapping lifetime on the
//! same track (or, when it would not nest there, on an extra lane track
//! `<track> (mappings N)`): named by its IOVA range, from the map to the unmap that
//! covered it (a partial unmap closes the part it covers; the rest stays
//! open), args `iova`, `size`, the target (`vaddr`/`paddr`), `map_event`,
//! `unmap_event` and `unmapped` (false for a mapping still live at the end
//! of the trace, which ends there). Event ids are the order events are
//! written in (0 for the first), as the engine numbers evidence when the
//! events are written in aligned-time order. Findings are instants on the
//! `findings` track whose evidence is linked by flow arrows (`"ph":"s"` at
//! each evidence event, `"ph":"f"` at the finding). Times are aligned
//! (wall-clock) microseconds relative to a base recorded in
//! `otherData.base_realtime_ns`.

use std::collections::{BTreeMap, HashMap, HashSet};
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
    /// Events behind it, linked by flow arrows.
    pub evidence: Vec<Evidence>,
}

/// One evidence event of a [`Finding`]: where its instant is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evidence {
    /// The event's id (see the module doc).
    pub id: u64,
    /// Monotonic time on `node`, like [`Event::ts_ns`].
    pub ts_ns: u64,
    pub node: NodeId,
    /// Its Perfetto track ([`EventKind::track`]).
    pub track: String,
}

impl Evidence {
    pub fn of(id: u64, ev: &Event) -> Self {
        Evidence {
            id,
            ts_ns: ev.ts_ns,
            node: ev.node,
            track: ev.kind.track(ev.pid),
        }
    }
}

/// A mapping (or what is left of it after partial unmaps) not unmapped yet.
#[derive(Clone, Debug)]
struct Live {
    /// One past the last IOVA.
    end: u64,
    /// Target address of the mapping's first byte (vaddr or paddr).
    target: u64,
    target_name: &'static str,
    map_event: u64,
    /// Aligned time of the map.
    at: i128,
    tid: u32,
}

/// What a map or unmap event does to the live mappings.
enum MapOp {
    Map {
        iova: u64,
        size: u64,
        target: u64,
        target_name: &'static str,
    },
    /// `[first, end)`.
    Unmap { first: u64, end: u64 },
}

fn map_op(kind: &EventKind) -> Option<MapOp> {
    match kind {
        EventKind::VfioMapDma(m) if m.errno == 0 && m.size > 0 => Some(MapOp::Map {
            iova: m.iova,
            size: m.size,
            target: m.vaddr,
            target_name: "vaddr",
        }),
        EventKind::IommuMap(m) if m.errno == 0 && m.size > 0 => Some(MapOp::Map {
            iova: m.iova,
            size: m.size,
            target: m.paddr,
            target_name: "paddr",
        }),
        // VFIO_DMA_UNMAP_FLAG_ALL: everything.
        EventKind::VfioUnmapDma(u) if u.errno == 0 && u.flags & 2 != 0 => Some(MapOp::Unmap {
            first: 0,
            end: u64::MAX,
        }),
        EventKind::VfioUnmapDma(u) if u.errno == 0 && u.unmapped > 0 => Some(MapOp::Unmap {
            first: u.iova,
            end: u.iova.saturating_add(u.size.max(u.unmapped)),
        }),
        EventKind::IommuUnmap(u) if u.unmapped > 0 => Some(MapOp::Unmap {
            first: u.iova,
            end: u.iova.saturating_add(u.size.max(u.unmapped)),
        }),
        _ => None,
    }
}

/// Streams a Perfetto-loadable JSON trace.
pub struct PerfettoWriter<W: Write> {
    out: W,
    base_ns: Option<i128>,
    any: bool,
    procs: HashSet<NodeId>,
    tracks: HashMap<(NodeId, String), u32>,
    mapped: HashMap<(NodeId, String), i128>,
    /// Id of the next event written.
    seq: u64,
    /// Newest aligned time written, where still-live mappings end.
    last_ns: i128,
    /// Live mappings per (node, track), by first IOVA.
    live: BTreeMap<(NodeId, String), BTreeMap<u64, Live>>,
    flows: u64,
    /// Slice lanes per (node, container/domain track tid).
    lanes: HashMap<(NodeId, u32), Vec<Lane>>,
}

/// Most start-forbidding intervals a lane keeps; past it the oldest two
/// are merged (which only sends more slices to other lanes).
const LANE_INTERVALS: usize = 32;

/// A track the mapping slices of one container/domain are laid on. Slices
/// on one track must nest: a slice `[s, e]` emitted at its end may not
/// start strictly inside an earlier one (those end no later, as events
/// come in time order), so a lane keeps the union of its slices' open
/// intervals, capped at [`LANE_INTERVALS`].
struct Lane {
    tid: u32,
    forbidden: Vec<(i128, i128)>,
}

impl Lane {
    fn admits(&self, s: i128) -> bool {
        !self.forbidden.iter().any(|&(a, b)| a < s && s < b)
    }

    fn add(&mut self, s: i128, e: i128) {
        let (mut a, mut b) = (s, e);
        self.forbidden.retain(|&(x, y)| {
            let overlap = x <= b && a <= y;
            if overlap {
                a = a.min(x);
                b = b.max(y);
            }
            !overlap
        });
        let at = self.forbidden.partition_point(|&(x, _)| x < a);
        self.forbidden.insert(at, (a, b));
        if self.forbidden.len() > LANE_INTERVALS {
            let (_, y) = self.forbidden.remove(1);
            self.forbidden[0].1 = y;
        }
    }
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
            seq: 0,
            last_ns: i128::MIN,
            live: BTreeMap::new(),
            flows: 0,
            lanes: HashMap::new(),
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

    /// Adds one event; `nodes` is the node table its `node` indexes. Its id
    /// is the number of events written before it.
    pub fn write_event(&mut self, ev: &Event, nodes: &[NodeInfo]) -> io::Result<()> {
        let id = self.seq;
        self.seq += 1;
        let aligned = aligned_ns(ev, nodes);
        let ts = self.ts_us(aligned);
        self.last_ns = self.last_ns.max(aligned);
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
        match map_op(&ev.kind) {
            Some(MapOp::Map {
                iova,
                size,
                target,
                target_name,
            }) => {
                let live = Live {
                    end: iova.saturating_add(size),
                    target,
                    target_name,
                    map_event: id,
                    at: aligned,
                    tid,
                };
                // A map over a live one at the same IOVA replaces it.
                let old = self
                    .live
                    .entry((ev.node, track.clone()))
                    .or_default()
                    .insert(iova, live);
                if let Some(old) = old {
                    self.slice(ev.node, &track, iova, &old, aligned, None)?;
                }
            }
            Some(MapOp::Unmap { first, end }) => {
                self.unmap(ev.node, track, first, end, aligned, id)?
            }
            None => {}
        }
        Ok(())
    }

    /// Closes the parts of `track`'s live mappings in `[first, end)`; what
    /// is left of a partly covered mapping stays live.
    fn unmap(
        &mut self,
        node: NodeId,
        track: String,
        first: u64,
        end: u64,
        until: i128,
        unmap_event: u64,
    ) -> io::Result<()> {
        let Some(map) = self.live.get_mut(&(node, track.clone())) else {
            return Ok(());
        };
        // Mappings starting before `end` whose end is after `first`.
        let hit: Vec<u64> = map
            .range(..end)
            .filter(|(_, l)| l.end > first)
            .map(|(&s, _)| s)
            .collect();
        let mut closed = Vec::new();
        for start in hit {
            let Some(l) = map.remove(&start) else {
                continue;
            };
            let (a, b) = (start.max(first), l.end.min(end));
            if start < a {
                map.insert(
                    start,
                    Live {
                        end: a,
                        ..l.clone()
                    },
                );
            }
            if b < l.end {
                let target = l.target.wrapping_add(b - start);
                map.insert(
                    b,
                    Live {
                        target,
                        ..l.clone()
                    },
                );
            }
            let target = l.target.wrapping_add(a - start);
            closed.push((
                a,
                Live {
                    end: b,
                    target,
                    ..l
                },
            ));
        }
        for (a, l) in closed {
            self.slice(node, &track, a, &l, until, Some(unmap_event))?;
        }
        Ok(())
    }

    /// A mapping's lifetime `[l.at, until]` (aligned ns) as a complete
    /// slice: on `track` itself when it nests there, else on the first of
    /// `track (mappings N)` where it does.
    fn slice(
        &mut self,
        node: NodeId,
        track: &str,
        iova: u64,
        l: &Live,
        until: i128,
        unmap_event: Option<u64>,
    ) -> io::Result<()> {
        let size = l.end - iova;
        let ts = self.ts_us(l.at);
        let dur = (until - l.at).max(0) as f64 / 1000.0;
        let until = until.max(l.at);
        let lanes = self.lanes.entry((node, l.tid)).or_default();
        let lane = match lanes.iter().position(|ln| ln.admits(l.at)) {
            Some(i) => i,
            None => {
                let n = lanes.len();
                let tid = match n {
                    0 => l.tid,
                    _ => self.track(node, format!("{track} (mappings {})", n + 1), &[])?,
                };
                let lanes = self.lanes.entry((node, l.tid)).or_default();
                lanes.push(Lane {
                    tid,
                    forbidden: Vec::new(),
                });
                n
            }
        };
        let lanes = self.lanes.entry((node, l.tid)).or_default();
        lanes[lane].add(l.at, until);
        let tid = lanes[lane].tid;
        self.emit(&json!({
            "name": format!("{iova:#x}-{:#x}", l.end.wrapping_sub(1)),
            "cat": "mapping", "ph": "X", "ts": ts, "dur": dur,
            "pid": Self::pid(node), "tid": tid,
            "args": {
                "iova": readable(json!(iova)), "size": readable(json!(size)),
                l.target_name: readable(json!(l.target)),
                "map_event": l.map_event, "unmap_event": unmap_event,
                "unmapped": unmap_event.is_some(),
            },
        }))
    }

    /// Adds a rule finding as an instant event on its node's `findings`
    /// track, with a flow arrow from each evidence event to it.
    pub fn add_finding(&mut self, f: &Finding, nodes: &[NodeInfo]) -> io::Result<()> {
        let ts = self.ts_us(crate::event::wall_ns(nodes, f.node, f.ts_ns));
        let tid = self.track(f.node, FINDINGS.into(), nodes)?;
        let ids: Vec<u64> = f.evidence.iter().map(|e| e.id).collect();
        self.emit(&json!({
            // Thread-scoped (it was process-scoped): on the findings
            // track itself, where the flow arrows can end on it.
            "name": f.title, "cat": "finding", "ph": "i", "s": "t",
            "ts": ts, "pid": Self::pid(f.node), "tid": tid,
            "args": {"detail": f.detail, "ts_ns": f.ts_ns, "evidence": ids},
        }))?;
        for e in &f.evidence {
            self.flows += 1;
            let id = self.flows;
            let ets = self.ts_us(crate::event::wall_ns(nodes, e.node, e.ts_ns));
            let etid = self.track(e.node, e.track.clone(), nodes)?;
            self.emit(&json!({
                "name": "evidence", "cat": "finding", "ph": "s", "id": id,
                "ts": ets, "pid": Self::pid(e.node), "tid": etid,
                "args": {"event": e.id},
            }))?;
            self.emit(&json!({
                "name": "evidence", "cat": "finding", "ph": "f", "bp": "e", "id": id,
                "ts": ts, "pid": Self::pid(f.node), "tid": tid,
            }))?;
        }
        Ok(())
    }

    /// Ends the mappings still live at the newest time written.
    fn close_live(&mut self) -> io::Result<()> {
        let live = std::mem::take(&mut self.live);
        let until = self.last_ns;
        for ((node, track), map) in live {
            for (iova, l) in map {
                self.slice(node, &track, iova, &l, until, None)?;
            }
        }
        Ok(())
    }

    /// Closes the JSON document and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.close_live()?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracefile::synth::sample_nodes;

    fn map(ts: u64, iova: u64, size: u64) -> Event {
        sample::vcpu(0).at(
            ts,
            VfioMapDma {
                container: sample::container(),
                iova,
                vaddr: 0x7f00_0000_0000 + iova,
                size,
                flags: 3,
                errno: 0,
            },
        )
    }

    fn unmap(ts: u64, iova: u64, size: u64) -> Event {
        sample::vcpu(0).at(
            ts,
            VfioUnmapDma {
                container: sample::container(),
                iova,
                size,
                unmapped: size,
                flags: 0,
                errno: 0,
            },
        )
    }

    /// The document's events (parsed back), times in µs from monotonic 0.
    fn doc(events: &[Event], findings: &[Finding]) -> Vec<Value> {
        let nodes = sample_nodes();
        let base = i128::from(nodes[0].clock_offset_ns);
        let mut w = PerfettoWriter::new(Vec::new()).unwrap().with_base(base);
        for e in events {
            w.write_event(e, &nodes).unwrap();
        }
        for f in findings {
            w.add_finding(f, &nodes).unwrap();
        }
        let out = w.finish().unwrap();
        let v: Value = serde_json::from_slice(&out).expect("valid JSON");
        v["traceEvents"].as_array().unwrap().clone()
    }

    fn slices(evs: &[Value]) -> Vec<&Value> {
        evs.iter().filter(|e| e["ph"] == "X").collect()
    }

    #[test]
    fn map_then_unmap_is_one_slice() {
        let evs = doc(
            &[
                map(2_000, 0x1000_0000, 0x20_0000),
                unmap(5_000, 0x1000_0000, 0x20_0000),
            ],
            &[],
        );
        let s = slices(&evs);
        assert_eq!(s.len(), 1, "{s:?}");
        let s = s[0];
        assert_eq!(s["name"], "0x10000000-0x101fffff");
        assert_eq!(s["ts"].as_f64(), Some(2.0));
        assert_eq!(s["dur"].as_f64(), Some(3.0));
        assert_eq!(s["args"]["iova"], "0x10000000");
        assert_eq!(s["args"]["size"], "0x200000");
        assert_eq!(s["args"]["vaddr"], "0x7f0010000000");
        assert_eq!(s["args"]["map_event"], 0);
        assert_eq!(s["args"]["unmap_event"], 1);
        assert_eq!(s["args"]["unmapped"], true);
        // Same track as the instants; those are still there.
        let inst: Vec<_> = evs.iter().filter(|e| e["ph"] == "i").collect();
        assert_eq!(inst.len(), 2);
        assert_eq!(inst[0]["tid"], s["tid"]);
        assert_eq!(evs.iter().filter(|e| e["ph"] == "C").count(), 2);
    }

    #[test]
    fn one_unmap_closes_two_maps() {
        let evs = doc(
            &[
                map(1_000, 0x1000, 0x1000),
                map(2_000, 0x2000, 0x1000),
                map(3_000, 0x8000, 0x1000),
                unmap(4_000, 0x1000, 0x2000),
            ],
            &[],
        );
        let s = slices(&evs);
        assert_eq!(s.len(), 3, "{s:?}");
        let closed: Vec<_> = s.iter().filter(|s| s["args"]["unmapped"] == true).collect();
        assert_eq!(closed.len(), 2);
        assert!(closed.iter().all(|s| s["args"]["unmap_event"] == 3));
        assert_eq!(closed[0]["args"]["map_event"], 0);
        assert_eq!(closed[1]["args"]["map_event"], 1);
        assert_eq!(closed[1]["dur"].as_f64(), Some(2.0));
        let open = s.iter().find(|s| s["args"]["unmapped"] == false).unwrap();
        assert_eq!(open["args"]["map_event"], 2);
    }

    #[test]
    fn overlapping_lifetimes_go_to_another_lane() {
        // A [1, 3] and B [2, 4] overlap without nesting; C [5, 6] fits.
        let evs = doc(
            &[
                map(1_000, 0x1000, 0x1000),
                map(2_000, 0x2000, 0x1000),
                unmap(3_000, 0x1000, 0x1000),
                unmap(4_000, 0x2000, 0x1000),
                map(5_000, 0x3000, 0x1000),
                unmap(6_000, 0x3000, 0x1000),
            ],
            &[],
        );
        let s = slices(&evs);
        assert_eq!(s.len(), 3);
        let home = evs.iter().find(|e| e["ph"] == "i").unwrap()["tid"].clone();
        assert_eq!(s[0]["tid"], home);
        assert_ne!(s[1]["tid"], home);
        assert_eq!(s[2]["tid"], home);
        let lane = evs
            .iter()
            .find(|e| e["ph"] == "M" && e["tid"] == s[1]["tid"])
            .unwrap();
        assert_eq!(lane["args"]["name"], "container 4242:17 (mappings 2)");
    }

    #[test]
    fn partial_unmap_splits() {
        let evs = doc(
            &[map(1_000, 0x1000, 0x3000), unmap(2_000, 0x2000, 0x1000)],
            &[],
        );
        let s = slices(&evs);
        assert_eq!(s.len(), 3, "{s:?}");
        assert_eq!(s[0]["name"], "0x2000-0x2fff");
        assert_eq!(s[0]["args"]["unmapped"], true);
        assert_eq!(s[0]["args"]["vaddr"], "0x7f0000002000");
        let rest: Vec<_> = s[1..].iter().map(|s| s["name"].clone()).collect();
        assert_eq!(rest, ["0x1000-0x1fff", "0x3000-0x3fff"]);
        assert!(s[1..].iter().all(|s| s["args"]["unmapped"] == false));
    }

    #[test]
    fn live_at_the_end_ends_with_the_trace() {
        let later = sample::vcpu(1).at(
            9_000,
            VfioMapDma {
                errno: 22,
                ..match map(0, 0, 1).kind {
                    EventKind::VfioMapDma(m) => m,
                    _ => unreachable!(),
                }
            },
        );
        let evs = doc(&[map(2_000, 0x1000_0000, 0x20_0000), later], &[]);
        let s = slices(&evs);
        assert_eq!(s.len(), 1, "{s:?}");
        assert_eq!(s[0]["args"]["unmapped"], false);
        assert_eq!(s[0]["args"]["unmap_event"], Value::Null);
        assert_eq!(s[0]["ts"].as_f64(), Some(2.0));
        assert_eq!(s[0]["dur"].as_f64(), Some(7.0));
    }

    #[test]
    fn finding_evidence_is_linked_by_flows() {
        let events = [map(2_000, 0x1000, 0x1000), unmap(5_000, 0x1000, 0x1000)];
        let f = Finding {
            ts_ns: 5_000,
            node: 0,
            title: "R1 test".into(),
            detail: "d".into(),
            evidence: vec![Evidence::of(0, &events[0]), Evidence::of(1, &events[1])],
        };
        let evs = doc(&events, &[f]);
        let fi = evs
            .iter()
            .find(|e| e["cat"] == "finding" && e["ph"] == "i")
            .unwrap();
        assert_eq!(fi["args"]["evidence"], json!([0, 1]));
        assert_eq!(fi["s"], "t");
        let starts: Vec<_> = evs.iter().filter(|e| e["ph"] == "s").collect();
        let ends: Vec<_> = evs.iter().filter(|e| e["ph"] == "f").collect();
        assert_eq!(starts.len(), 2);
        assert_eq!(ends.len(), 2);
        let ev_tid = evs
            .iter()
            .find(|e| e["ph"] == "i" && e["cat"] != "finding")
            .unwrap()["tid"]
            .clone();
        for (s, (f, t)) in starts.iter().zip(ends.iter().zip([2.0, 5.0])) {
            assert_eq!(s["id"], f["id"]);
            assert_eq!(f["bp"], "e");
            assert_eq!(s["tid"], ev_tid);
            assert_eq!(s["ts"].as_f64(), Some(t));
            assert_eq!(f["tid"], fi["tid"]);
            assert_eq!(f["ts"], fi["ts"]);
        }
        assert_ne!(starts[0]["id"], starts[1]["id"]);
    }
}
