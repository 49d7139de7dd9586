//! Trace file costs on a synthetic map/unmap trace (10 M events by default;
//! `VTRACE_BENCH_EVENTS=N` to change): bytes per event and write/read
//! throughput on one core, each beside a baseline measured in the same run.
//! Prints figures; never fails on them.
//!
//! Targets: ≤ 16 B/event, ≥ 5 M events/s written.

use std::hint::black_box;
use std::io::Cursor;
use std::time::{Duration, Instant};

use tracer_core::event::Event;
use tracer_core::export::to_jsonl_line;
use tracer_core::tracefile::synth::{sample_nodes, MapUnmapTrace};
use tracer_core::tracefile::{TraceHeader, TraceReader, TraceWriter, WriterOptions};

const BATCH: usize = 1_000_000;

fn rate(n: u64, d: Duration) -> String {
    format!("{:>6.2} M events/s", n as f64 / d.as_secs_f64() / 1e6)
}

/// Writes `n` events with `opts`; returns the file and the time spent in
/// `append`/`finish` only (event generation excluded).
fn write(n: u64, opts: &WriterOptions) -> (Vec<u8>, Duration) {
    let header = TraceHeader {
        nodes: sample_nodes(),
        ..Default::default()
    };
    let mut w =
        TraceWriter::new(Vec::with_capacity(n as usize * 12), &header, opts.clone()).unwrap();
    let mut gen = MapUnmapTrace::new(42);
    let mut spent = Duration::ZERO;
    let mut left = n;
    let mut batch: Vec<Event> = Vec::with_capacity(BATCH);
    while left > 0 {
        let k = left.min(BATCH as u64);
        batch.clear();
        batch.extend(gen.by_ref().take(k as usize));
        let t = Instant::now();
        for e in &batch {
            w.append(e).unwrap();
        }
        spent += t.elapsed();
        left -= k;
    }
    let t = Instant::now();
    let file = w.finish().unwrap();
    spent += t.elapsed();
    (file, spent)
}

fn read(file: &[u8]) -> (u64, Duration) {
    let t = Instant::now();
    let mut n = 0u64;
    for e in TraceReader::new(Cursor::new(file)).unwrap() {
        black_box(e.unwrap());
        n += 1;
    }
    (n, t.elapsed())
}

/// Baseline: copying each event as a 64-byte ring-buffer record (what the
/// probes hand over) into a growing buffer, and cloning typed events.
fn baselines(n: u64) {
    let mut gen = MapUnmapTrace::new(42);
    let batch: Vec<Event> = gen.by_ref().take(BATCH.min(n as usize)).collect();
    let reps = (n as usize).div_ceil(batch.len());

    let rec = [0x5au8; 64];
    let mut out = Vec::with_capacity(batch.len() * 64);
    let t = Instant::now();
    for _ in 0..reps {
        out.clear();
        for _ in 0..batch.len() {
            out.extend_from_slice(black_box(&rec));
        }
        black_box(&out);
    }
    let memcpy = t.elapsed();

    let mut copy: Vec<Event> = Vec::with_capacity(batch.len());
    let t = Instant::now();
    for _ in 0..reps {
        copy.clear();
        copy.extend(batch.iter().cloned());
        black_box(&copy);
    }
    let clone = t.elapsed();
    let total = (reps * batch.len()) as u64;
    println!(
        "baseline  raw 64 B records memcpy   {}",
        rate(total, memcpy)
    );
    println!("baseline  Vec<Event> clone          {}", rate(total, clone));

    // JSON Lines of 1 M events (the export format) for size and speed.
    let nodes = sample_nodes();
    let t = Instant::now();
    let bytes: usize = batch
        .iter()
        .map(|e| to_jsonl_line(e, &nodes).len() + 1)
        .sum();
    let d = t.elapsed();
    println!(
        "baseline  JSON Lines                {}  {:>6.1} B/event",
        rate(batch.len() as u64, d),
        bytes as f64 / batch.len() as f64
    );
    println!(
        "baseline  in-memory Event           {:>6} B/event (size_of)",
        std::mem::size_of::<Event>()
    );
}

fn main() {
    // `cargo bench` passes --bench; anything else (e.g. a filter) is ignored.
    let n: u64 = std::env::var("VTRACE_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    println!("trace file benchmark: {n} synthetic map/unmap events, one core");
    baselines(n);
    for (label, level) in [("zstd 1 (default)", 1), ("zstd 3", 3)] {
        let opts = WriterOptions {
            zstd_level: level,
            ..Default::default()
        };
        let (file, wt) = write(n, &opts);
        let (m, rt) = read(&file);
        assert_eq!(m, n);
        println!(
            "{label:<17} {:>6.2} B/event ({:.1} MB)  write {}  read {}",
            file.len() as f64 / n as f64,
            file.len() as f64 / 1e6,
            rate(n, wt),
            rate(n, rt)
        );
    }
    println!("targets: <= 16 B/event, >= 5 M events/s written");
}
