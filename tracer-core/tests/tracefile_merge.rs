//! Several files (host + guest) as one timeline: node tables merged by name,
//! node ids remapped, events ordered by aligned (wall-clock) time.

use std::io::Cursor;

use tracer_core::event::*;
use tracer_core::tracefile::merge::MemorySource;
use tracer_core::tracefile::synth::all_kinds;
use tracer_core::tracefile::*;

fn node(name: &str, role: NodeRole, clock_offset_ns: i64) -> NodeInfo {
    NodeInfo {
        name: name.into(),
        role,
        kernel: "6.12".into(),
        machine: "x86_64".into(),
        clock_offset_ns,
    }
}

fn at(ts_ns: u64, node: NodeId, tid: u32) -> Event {
    let mut e = all_kinds()[0].clone();
    e.ts_ns = ts_ns;
    e.node = node;
    e.tid = tid;
    e
}

fn file(nodes: Vec<NodeInfo>, events: &[Event]) -> Vec<u8> {
    let h = TraceHeader {
        nodes,
        ..Default::default()
    };
    let mut w = TraceWriter::new(Vec::new(), &h, WriterOptions::default()).unwrap();
    for e in events {
        w.append(e).unwrap();
    }
    w.finish().unwrap()
}

#[test]
fn host_and_guest_files_interleave_by_wall_clock() {
    // Host monotonic 0 = wall 1000; guest monotonic 0 = wall 1500.
    let host = file(
        vec![node("host", NodeRole::Host, 1000)],
        &[at(0, 0, 1), at(100, 0, 2), at(600, 0, 3), at(900, 0, 4)],
    );
    // The guest file also knows the host (as node 1) — merged by name.
    let guest = file(
        vec![
            node("guest0", NodeRole::Guest, 1500),
            node("host", NodeRole::Host, 1000),
        ],
        &[at(0, 0, 10), at(50, 1, 11), at(200, 0, 12)],
    );
    let readers = vec![
        TraceReader::new(Cursor::new(host)).unwrap(),
        TraceReader::new(Cursor::new(guest)).unwrap(),
    ];
    let mut t = Timeline::new(readers);
    let evs: Vec<Event> = t.by_ref().collect::<Result<_, _>>().unwrap();
    let names: Vec<&str> = t.nodes().iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["host", "guest0"]);
    let order: Vec<(u32, NodeId)> = evs.iter().map(|e| (e.tid, e.node)).collect();
    // Wall: h1 1000, h2 1100, g11 1050 (host node of guest file), g10 1500,
    // h3 1600, g12 1700, h4 1900.
    assert_eq!(
        order,
        [(1, 0), (11, 0), (2, 0), (10, 1), (3, 0), (12, 1), (4, 0)]
    );
    let aligned: Vec<i128> = evs.iter().map(|e| aligned_ns(e, t.nodes())).collect();
    assert!(aligned.windows(2).all(|w| w[0] <= w[1]), "{aligned:?}");
}

#[test]
fn ties_keep_input_then_file_order() {
    let n = vec![node("a", NodeRole::Host, 0)];
    let m = vec![node("b", NodeRole::Guest, 0)];
    let t = Timeline::new(vec![
        MemorySource::new(n, vec![at(5, 0, 1), at(5, 0, 2)]),
        MemorySource::new(m, vec![at(5, 0, 3), at(4, 0, 4)]),
    ]);
    let tids: Vec<u32> = t.map(|e| e.unwrap().tid).collect();
    assert_eq!(tids, [4, 1, 2, 3]);
}

#[test]
fn unknown_node_ids_get_placeholders_and_errors_pass_through() {
    let good = file(
        vec![node("host", NodeRole::Host, 0)],
        &[at(1, 0, 1), at(3, 7, 2)],
    );
    let mut bad = file(vec![node("g", NodeRole::Guest, 0)], &[at(2, 0, 9)]);
    let n = bad.len();
    bad.truncate(n - 30); // into the end marker
    let mut t = Timeline::new(vec![
        TraceReader::new(Cursor::new(good)).unwrap(),
        TraceReader::new(Cursor::new(bad)).unwrap(),
    ]);
    let items: Vec<_> = t.by_ref().collect();
    // The cut file's error comes after its own events, in time order.
    let shape: Vec<Option<u32>> = items
        .iter()
        .map(|i| i.as_ref().ok().map(|e| e.tid))
        .collect();
    assert_eq!(shape, [Some(1), Some(9), None, Some(2)]);
    let evs: Vec<Event> = items.into_iter().filter_map(Result::ok).collect();
    assert_eq!(evs.iter().map(|e| e.tid).collect::<Vec<_>>(), [1, 9, 2]);
    let ev7 = &evs[2];
    assert_eq!(t.nodes()[usize::from(ev7.node)].name, "node7@input0");
    assert!(t.sources().all(|s| s.nodes().len() == 1));
}

#[test]
fn files_on_disk() {
    let dir = std::env::temp_dir().join(format!("vtrace-merge-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let a = dir.join("host.vtrace");
    let b = dir.join("guest.vtrace");
    std::fs::write(
        &a,
        file(vec![node("host", NodeRole::Host, 0)], &[at(10, 0, 1)]),
    )
    .unwrap();
    std::fs::write(
        &b,
        file(vec![node("guest", NodeRole::Guest, 0)], &[at(5, 0, 2)]),
    )
    .unwrap();
    let t = Timeline::open(&[&a, &b], ReadMode::Strict).unwrap();
    let tids: Vec<u32> = t.map(|e| e.unwrap().tid).collect();
    assert_eq!(tids, [2, 1]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn window_and_buffer_bound_the_reordering() {
    let n = vec![node("a", NodeRole::Host, 0)];
    let evs = vec![at(100, 0, 1), at(50, 0, 2), at(10, 0, 3)];
    let sorted: Vec<u32> = Timeline::new(vec![MemorySource::new(n.clone(), evs.clone())])
        .map(|e| e.unwrap().tid)
        .collect();
    assert_eq!(sorted, [3, 2, 1]);
    let as_is: Vec<u32> = Timeline::new(vec![MemorySource::new(n.clone(), evs.clone())])
        .with_window(0)
        .map(|e| e.unwrap().tid)
        .collect();
    assert_eq!(as_is, [1, 2, 3]);
    let capped: Vec<u32> = Timeline::new(vec![MemorySource::new(n, evs)])
        .with_max_buffered(2)
        .map(|e| e.unwrap().tid)
        .collect();
    assert_eq!(capped, [2, 3, 1]);
}
