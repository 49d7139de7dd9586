//! Write → read gives back identical events and header, for every kind,
//! across chunk boundaries, flushes and added nodes.

use std::io::Cursor;

use tracer_core::event::*;
use tracer_core::tracefile::synth::{all_kinds, sample_nodes, MapUnmapTrace};
use tracer_core::tracefile::*;

fn header() -> TraceHeader {
    TraceHeader {
        format_version: FORMAT_VERSION,
        tool_version: "0.1.0-test".into(),
        kernel: "6.12.95+deb12-amd64".into(),
        machine: "x86_64".into(),
        nodes: sample_nodes(),
        probes: vec![ProbeStatus {
            probe: "ioctl_enter".into(),
            attach: "tracepoint:syscalls:sys_enter_ioctl".into(),
            status: ProbeState::Attached,
            required: true,
            reason: String::new(),
            hits: 0,
        }],
        cmdline: vec![
            "vfio-trace".into(),
            "record".into(),
            "-o".into(),
            "x.vtrace".into(),
        ],
        start_realtime_ns: 1_700_000_001_000_000_000,
        start_monotonic_ns: 1_000_000_000,
    }
}

fn write(events: &[Event], opts: WriterOptions) -> Vec<u8> {
    let mut w = TraceWriter::new(Vec::new(), &header(), opts).unwrap();
    for e in events {
        w.append(e).unwrap();
    }
    w.finish().unwrap()
}

fn read(bytes: &[u8]) -> (TraceHeader, Vec<Event>) {
    let mut r = TraceReader::new(Cursor::new(bytes)).unwrap();
    let evs = r.by_ref().collect::<Result<Vec<_>, _>>().unwrap();
    (r.header().clone(), evs)
}

#[test]
fn every_kind_round_trips() {
    let events = all_kinds();
    // Make sure the sample really covers every kind (by serde tag).
    let kinds: std::collections::BTreeSet<String> = events
        .iter()
        .map(|e| {
            serde_json::to_value(&e.kind).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(kinds.len(), 40, "{kinds:?}");
    let bytes = write(&events, WriterOptions::default());
    let (h, back) = read(&bytes);
    assert_eq!(h, header());
    assert_eq!(back, events);
}

#[test]
fn round_trips_across_many_small_chunks() {
    let mut events = all_kinds();
    events.extend(MapUnmapTrace::new(7).take(5_000));
    events.extend(all_kinds());
    for max in [1, 2, 3, 7, 1000] {
        let opts = WriterOptions {
            max_chunk_events: max,
            ..Default::default()
        };
        assert_eq!(read(&write(&events, opts)).1, events, "chunks of {max}");
    }
    let opts = WriterOptions {
        max_chunk_bytes: 100,
        ..Default::default()
    };
    assert_eq!(read(&write(&events, opts)).1, events, "chunks of 100 bytes");
}

#[test]
fn flush_writes_whole_chunks_and_empty_files_read() {
    let events = all_kinds();
    let mut w = TraceWriter::new(Vec::new(), &header(), WriterOptions::default()).unwrap();
    for (i, e) in events.iter().enumerate() {
        w.append(e).unwrap();
        if i % 4 == 0 {
            w.flush().unwrap();
        }
    }
    w.flush().unwrap();
    w.flush().unwrap(); // nothing pending: no empty chunk
    let bytes = w.finish().unwrap();
    assert_eq!(read(&bytes).1, events);

    let empty = TraceWriter::new(Vec::new(), &header(), WriterOptions::default())
        .unwrap()
        .finish()
        .unwrap();
    assert!(read(&empty).1.is_empty());
}

#[test]
fn nodes_added_mid_stream_reach_the_reader() {
    let mut h = header();
    h.nodes.truncate(1);
    let mut w = TraceWriter::new(Vec::new(), &h, WriterOptions::default()).unwrap();
    let mut events = all_kinds();
    events.retain(|e| e.node == 0);
    w.append(&events[0]).unwrap();
    let id = w.add_node(sample_nodes()[1].clone()).unwrap();
    assert_eq!(id, 1);
    let mut late = events[1].clone();
    late.node = id;
    w.append(&late).unwrap();
    let bytes = w.finish().unwrap();
    let mut r = TraceReader::new(Cursor::new(&bytes)).unwrap();
    assert_eq!(r.nodes().len(), 1);
    let back = r.by_ref().collect::<Result<Vec<_>, _>>().unwrap();
    assert_eq!(back, vec![events[0].clone(), late]);
    assert_eq!(r.nodes(), &sample_nodes()[..]);
}

#[test]
fn files_on_disk_and_dropped_writers() {
    let dir = std::env::temp_dir().join(format!("vtrace-rt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("a.vtrace");
    {
        let mut w = TraceWriter::create(&path, &header(), WriterOptions::default()).unwrap();
        for e in all_kinds() {
            w.append(&e).unwrap();
        }
        // Dropped without finish(): the pending chunk is still written.
    }
    let (h, back) = read_all(&path).unwrap();
    assert_eq!(h.tool_version, "0.1.0-test");
    assert_eq!(back, all_kinds());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn unwritable_versions_are_refused() {
    let opts = WriterOptions {
        format_version: FORMAT_VERSION + 1,
        ..Default::default()
    };
    assert!(matches!(
        TraceWriter::new(Vec::new(), &header(), opts),
        Err(TraceError::UnwritableVersion(_))
    ));
}

#[test]
fn newer_versions_are_named() {
    let mut bytes = write(&all_kinds(), WriterOptions::default());
    bytes[8..10].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
    let err = TraceReader::new(Cursor::new(&bytes)).err().unwrap();
    assert!(
        matches!(err, TraceError::UnsupportedVersion { found, .. } if found == FORMAT_VERSION + 1)
    );
    assert!(
        err.to_string()
            .contains(&format!("version {}", FORMAT_VERSION + 1)),
        "{err}"
    );
}

#[test]
fn oversized_events_are_refused_not_written() {
    let mut e = all_kinds().pop().unwrap();
    e.kind = EventKind::ProbeStatus(ProbeStatus {
        probe: "x".into(),
        attach: "y".into(),
        status: ProbeState::Failed,
        required: false,
        reason: "r".repeat(MAX_EVENT_BYTES + 1),
        hits: 0,
    });
    let mut w = TraceWriter::new(Vec::new(), &header(), WriterOptions::default()).unwrap();
    assert!(matches!(
        w.append(&e),
        Err(TraceError::EventTooLarge { .. })
    ));
    w.append(&all_kinds()[0]).unwrap();
    let bytes = w.finish().unwrap();
    assert_eq!(read(&bytes).1, vec![all_kinds()[0].clone()]);
}

/// Random values in every numeric field of every kind (extremes included),
/// random timestamps (backwards too), nodes, tasks and raw comm bytes.
fn random_events(seed: u64, n: usize) -> Vec<Event> {
    use tracer_core::tracefile::synth::Rng;
    let mut rng = Rng::new(seed);
    let templates = all_kinds();
    let mut out = Vec::with_capacity(n);
    let mut ts = 0u64;
    for i in 0..n {
        let mut e = templates[i % templates.len()].clone();
        let mut v = serde_json::to_value(&e.kind).unwrap();
        let keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        for k in keys {
            if !v[&k].is_number() {
                continue;
            }
            let r = rng.next_u64();
            let candidates = [
                serde_json::json!(r),
                serde_json::json!(u64::MAX),
                serde_json::json!(r as u32),
                serde_json::json!(r as i32),
                serde_json::json!(i32::MIN),
                serde_json::json!(r as u8),
                serde_json::json!(0),
            ];
            let pick = rng.below(candidates.len() as u64) as usize;
            for c in candidates[pick..].iter().chain(&candidates[..pick]) {
                let mut t = v.clone();
                t[&k] = c.clone();
                if serde_json::from_value::<EventKind>(t.clone()).is_ok() {
                    v = t;
                    break;
                }
            }
        }
        e.kind = serde_json::from_value(v).unwrap();
        ts = match rng.below(4) {
            0 => rng.next_u64(),
            1 => ts.wrapping_sub(rng.below(1000)),
            _ => ts.wrapping_add(rng.below(100_000)),
        };
        e.ts_ns = ts;
        e.node = rng.below(3) as NodeId;
        e.pid = rng.below(4) as u32;
        e.tid = if rng.below(2) == 0 {
            e.pid
        } else {
            rng.next_u64() as u32
        };
        if rng.below(8) == 0 {
            for b in e.comm.0.iter_mut() {
                *b = rng.next_u64() as u8;
            }
        }
        out.push(e);
    }
    out
}

#[test]
fn random_values_round_trip() {
    for seed in 1..=5 {
        let events = random_events(seed, 3000);
        let templates = all_kinds();
        let changed = events
            .iter()
            .enumerate()
            .filter(|(i, e)| e.kind != templates[i % templates.len()].kind)
            .count();
        assert!(changed > 2700, "only {changed} events randomized");
        let opts = WriterOptions {
            max_chunk_events: 500,
            ..Default::default()
        };
        let back = read(&write(&events, opts)).1;
        assert_eq!(back.len(), events.len());
        for (a, b) in back.iter().zip(&events) {
            assert_eq!(a, b, "seed {seed}");
        }
    }
}
