//! Agents → aggregator throughput over loopback TCP, with the real client
//! and listener code (`src/net`, included by path): two agents and the
//! aggregator in one process on a 2-worker runtime, each agent fed
//! synthetic map/unmap events. Prints figures; never fails on them.
//!
//! - baselines (one core): encoding events into `Events` frames, and
//!   decoding frames back to events (the aggregator's share of the work);
//! - bulk: N events per agent (`VTRACE_BENCH_EVENTS`, default 3 M), the
//!   agents' buffers large enough that nothing is dropped: delivered
//!   events per second until the aggregator's consumer has them all;
//! - paced: both agents at a fixed total rate (default 2 M events/s, 3 s,
//!   `VTRACE_BENCH_RATE`), default 64 MiB buffers: drops (should be 0).
//!
//! Target: ≥ 2 M events/s from two agents on 2 cores with zero drops.
//!
//!   cargo bench -p tracer-user --bench agent

#[allow(
    dead_code,
    unused_imports,
    reason = "shared with the binary; tests and some items unused here"
)]
#[path = "../src/net/mod.rs"]
mod net;
#[allow(
    dead_code,
    unused_imports,
    reason = "shared with the binary; tests and some items unused here"
)]
#[path = "../src/node.rs"]
mod node;

use std::{
    hint::black_box,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use net::{
    agent::{AgentConfig, AgentReport},
    aggregator::{Aggregator, AggregatorConfig},
    Addr,
};
use tokio::sync::{mpsc, watch};
use tracer_core::{
    event::{Event, NodeRole},
    tracefile::synth::MapUnmapTrace,
    wire::{decode_frame, BatchEncoder, Message, MAX_PAYLOAD},
};

const BATCH: usize = 4096;
const POOL: usize = 64;

fn env_u64(k: &str, d: u64) -> u64 {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

fn pool(seed: u64) -> Vec<Vec<Event>> {
    let mut g = MapUnmapTrace::new(seed);
    (0..POOL)
        .map(|_| g.by_ref().take(BATCH).collect())
        .collect()
}

fn mrate(n: u64, d: Duration) -> String {
    format!("{:>6.2} M events/s", n as f64 / d.as_secs_f64() / 1e6)
}

fn baselines(n: u64) {
    let pool = pool(1);
    let mut enc = BatchEncoder::new();
    let mut frames = Vec::new();
    let mut bytes = 0usize;
    let t = Instant::now();
    let mut done = 0u64;
    let mut seq = 0;
    while done < n {
        let b = &pool[(seq as usize) % POOL];
        for e in b {
            enc.push(e);
        }
        seq += 1;
        let mut f = Vec::with_capacity(enc.bytes() + 48);
        done += u64::from(enc.finish(seq, &mut f));
        bytes += f.len();
        if frames.len() < POOL {
            frames.push(f);
        } else {
            black_box(&f);
        }
    }
    let enc_t = t.elapsed();
    println!(
        "baseline encode (1 core):      {}  {:.2} B/event on the wire",
        mrate(done, enc_t),
        bytes as f64 / done as f64
    );
    let t = Instant::now();
    let mut got = 0u64;
    let mut out = Vec::with_capacity(BATCH);
    while got < n {
        for f in &frames {
            let Ok(Some((Message::Events(b), _))) = decode_frame(f, MAX_PAYLOAD) else {
                panic!("bad frame")
            };
            out.clear();
            b.decode_into(Some(1), &mut out).unwrap();
            got += out.len() as u64;
            black_box(&out);
        }
    }
    println!("baseline decode (1 core):      {}", mrate(got, t.elapsed()));
}

struct Run {
    delivered: u64,
    elapsed: Duration,
    reports: Vec<AgentReport>,
}

/// Two agents → one aggregator over loopback TCP. `rate`: total events/s
/// (0: as fast as possible); stops after `per_agent` events each.
async fn run(per_agent: u64, rate: u64, buffer_bytes: usize) -> Run {
    let token = "bench".to_string();
    let local = node::local(Some("bench-host"), NodeRole::Host);
    let (tx, mut rx) = mpsc::channel::<Vec<Event>>(256);
    let (stop_tx, stop_rx) = watch::channel(false);
    let agg = Aggregator::start(
        AggregatorConfig {
            listen: vec![Addr::parse_listen("tcp:0").unwrap()],
            token: Some(token.clone()),
            local,
            ping_every: Duration::from_secs(1),
            limits: Default::default(),
        },
        tx,
        stop_rx,
    )
    .unwrap();
    let addr = agg.bound[0].clone();
    let total = per_agent * 2;
    let counted = Arc::new(AtomicU64::new(0));
    let c2 = counted.clone();
    let (all_tx, all_rx) = tokio::sync::oneshot::channel::<Instant>();
    let consumer = tokio::spawn(async move {
        let mut all_tx = Some(all_tx);
        while let Some(b) = rx.recv().await {
            let n = c2.fetch_add(b.len() as u64, Ordering::Relaxed) + b.len() as u64;
            black_box(&b);
            if n >= total {
                if let Some(t) = all_tx.take() {
                    let _ = t.send(Instant::now());
                }
            }
        }
    });
    let start = Instant::now();
    let mut agents = Vec::new();
    for i in 0..2u64 {
        let (etx, erx) = mpsc::channel::<Vec<Event>>(256);
        let node = node::local(Some(&format!("agent{i}")), NodeRole::Guest);
        let mut cfg = AgentConfig::new(addr.clone(), node, vec![], token.clone());
        cfg.buffer_bytes = buffer_bytes;
        cfg.drain_timeout = Duration::from_secs(30);
        agents.push(tokio::spawn(net::agent::run(cfg, erx)));
        let pool = pool(10 + i);
        let per_rate = rate / 2;
        tokio::spawn(async move {
            let t0 = Instant::now();
            let mut sent = 0u64;
            let mut k = 0usize;
            while sent < per_agent {
                if per_rate > 0 {
                    let due = (t0.elapsed().as_secs_f64() * per_rate as f64) as u64;
                    if sent >= due {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        continue;
                    }
                }
                let n = (per_agent - sent).min(BATCH as u64) as usize;
                let mut b = pool[k % POOL].clone();
                b.truncate(n);
                k += 1;
                sent += n as u64;
                if etx.send(b).await.is_err() {
                    break;
                }
            }
        });
    }
    let mut reports = Vec::new();
    for a in agents {
        reports.push(a.await.unwrap().unwrap());
    }
    let end = tokio::time::timeout(Duration::from_secs(30), all_rx)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_else(Instant::now);
    let _ = stop_tx.send(true);
    agg.finish().await;
    consumer.await.unwrap();
    Run {
        delivered: counted.load(Ordering::Relaxed),
        elapsed: end - start,
        reports,
    }
}

fn show(what: &str, r: &Run) {
    let dropped: u64 = r
        .reports
        .iter()
        .map(|a| a.dropped + a.lost + a.unsent)
        .sum();
    let sent: u64 = r.reports.iter().map(|a| a.sent).sum();
    println!(
        "{what} {}  ({} delivered of {} sent in {:.2} s; dropped/lost {})",
        mrate(r.delivered, r.elapsed),
        r.delivered,
        sent,
        r.elapsed.as_secs_f64(),
        dropped
    );
}

fn main() {
    let n = env_u64("VTRACE_BENCH_EVENTS", 3_000_000);
    let rate = env_u64("VTRACE_BENCH_RATE", 2_000_000);
    println!("agent → aggregator, loopback TCP, 2 agents, {BATCH}-event source batches");
    baselines(n);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let bulk = rt.block_on(run(n, 0, 1 << 30));
    show("bulk, 2 agents (2 workers):   ", &bulk);
    let secs = 3;
    let paced = rt.block_on(run(rate * secs / 2, rate, 64 << 20));
    show(
        &format!("paced {:.1} M/s, 64 MiB buffers:", rate as f64 / 1e6),
        &paced,
    );
}
