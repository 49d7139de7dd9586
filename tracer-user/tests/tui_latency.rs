//! Key-to-screen latency of the live UI while the ingest side takes about
//! 1 M events/s. Prints figures, never fails. Run:
//!
//! ```sh
//! cargo test --release -p tracer-user --test tui_latency -- --ignored --nocapture
//! ```
//!
//! A feeder sends MAP_DMA/UNMAP_DMA batches at a fixed rate into the real
//! `Ingest::run`; every 50 ms the "terminal" switches tab (a `UiState`
//! change, as a key press makes) and the time until a snapshot built for
//! that state is published is measured. Drawing it costs a further
//! 0.3–2.4 ms (`tui_bench`). The achieved ingest rate is printed too: a
//! slow UI must drop frames, never events.

#[allow(dead_code, reason = "shared with the binary; only the UI's uses here")]
#[path = "../src/node.rs"]
mod node;
#[allow(dead_code, reason = "shared with the binary; only the UI's uses here")]
#[path = "../src/sudo_owner.rs"]
mod sudo_owner;
#[allow(dead_code, reason = "the bench uses part of the UI module")]
#[path = "../src/tui/mod.rs"]
mod tui;

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use tokio::sync::{mpsc, watch};
use tracer_core::event::*;
use tui::{
    ingest::Ingest,
    snapshot::Snapshot,
    ui_state::{Tab, UiState},
};

const RATE: u64 = 1_000_000;
const BATCH: u64 = 1000;
const PRESSES: usize = 60;

fn batch(seq: u64) -> Vec<Event> {
    (0..BATCH)
        .map(|i| {
            let n = seq * BATCH + i;
            let page = (n / 2) % 65_536;
            let kind = if n.is_multiple_of(2) {
                EventKind::VfioMapDma(VfioMapDma {
                    container: fd_handle(100, 4),
                    iova: 0x10_0000 + page * 0x1000,
                    vaddr: 0x7f00_0000_0000 + page * 0x1000,
                    size: 0x1000,
                    flags: 3,
                    errno: 0,
                })
            } else {
                EventKind::VfioUnmapDma(VfioUnmapDma {
                    container: fd_handle(100, 4),
                    iova: 0x10_0000 + page * 0x1000,
                    size: 0x1000,
                    unmapped: 0x1000,
                    flags: 0,
                    errno: 0,
                })
            };
            Event {
                ts_ns: 1_000_000 + n * 1000,
                node: 0,
                pid: 100,
                tid: 100,
                comm: Comm::new("qemu"),
                kind,
            }
        })
        .collect()
}

fn nodes() -> Vec<NodeInfo> {
    vec![NodeInfo {
        name: "host".into(),
        role: NodeRole::Host,
        kernel: "6.12.95+deb12-amd64".into(),
        machine: "x86_64".into(),
        clock_offset_ns: 0,
    }]
}

#[test]
#[ignore = "benchmark: prints figures"]
fn key_to_screen_latency_while_ingesting_1m_events_per_second() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let (ui_tx, ui_rx) = watch::channel(UiState::new(false));
        let (snap_tx, mut snap_rx) = watch::channel(Arc::new(Snapshot::default()));
        let (ev_tx, mut ev_rx) = mpsc::channel::<Vec<Event>>(64);
        let sent = Arc::new(AtomicU64::new(0));
        let ingest = tokio::spawn(async move {
            let mut ingest = Ingest::new(nodes(), 200_000);
            ingest
                .run(
                    ui_rx,
                    snap_tx,
                    Some(&mut ev_rx),
                    None,
                    std::future::pending(),
                )
                .await;
        });
        let feeder_sent = sent.clone();
        let feeder = tokio::spawn(async move {
            let every = Duration::from_nanos(BATCH * 1_000_000_000 / RATE);
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            for seq in 0.. {
                tick.tick().await;
                if ev_tx.send(batch(seq)).await.is_err() {
                    break;
                }
                feeder_sent.fetch_add(BATCH, Ordering::Relaxed);
            }
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
        let start = Instant::now();
        let sent_at_start = sent.load(Ordering::Relaxed);
        let tabs = [
            Tab::Events,
            Tab::Chains,
            Tab::Doorbells,
            Tab::Findings,
            Tab::Health,
        ];
        let mut lat = Vec::with_capacity(PRESSES);
        for i in 0..PRESSES {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let t = Instant::now();
            let mut generation = 0;
            ui_tx.send_modify(|u| {
                u.tab = tabs[i % tabs.len()];
                u.generation += 1;
                generation = u.generation;
            });
            loop {
                if snap_rx.borrow_and_update().generation >= generation {
                    break;
                }
                if tokio::time::timeout(Duration::from_secs(5), snap_rx.changed())
                    .await
                    .is_err()
                {
                    panic!("no snapshot for key {i} within 5 s");
                }
            }
            lat.push(t.elapsed());
        }
        let secs = start.elapsed().as_secs_f64();
        let rate = (sent.load(Ordering::Relaxed) - sent_at_start) as f64 / secs;
        lat.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "key→snapshot over {PRESSES} tab switches while feeding {:.2} M events/s \
             (target rate {:.1} M/s): p50 {:.2} ms, p90 {:.2} ms, max {:.2} ms",
            rate / 1e6,
            RATE as f64 / 1e6,
            ms(lat[lat.len() / 2]),
            ms(lat[lat.len() * 9 / 10]),
            ms(lat[lat.len() - 1]),
        );
        feeder.abort();
        ingest.abort();
    });
}

/// Event to screen: every batch is stamped, as the kernel stamps `ts_ns`
/// (CLOCK_MONOTONIC), when it is handed to the ingest side, at about 1 M
/// events/s; the latency of a batch is the time until the first published
/// snapshot whose Events pane shows it (its newest row has that `ts_ns` or
/// a later one). Not included: the kernel-to-decoder part of `live` (the
/// ring is drained every 10 ms, `source/live.rs`) and drawing the frame
/// (0.3–2.4 ms, `tui_bench`). Run:
///
/// ```sh
/// cargo test --release -p tracer-user --test tui_latency event_to_screen -- --ignored --nocapture
/// ```
#[test]
#[ignore = "benchmark: prints figures"]
fn event_to_screen_latency_while_ingesting_1m_events_per_second() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let (_ui_tx, ui_rx) = watch::channel(UiState::new(false));
        let (snap_tx, mut snap_rx) = watch::channel(Arc::new(Snapshot::default()));
        let (ev_tx, mut ev_rx) = mpsc::channel::<Vec<Event>>(64);
        let base = Instant::now();
        let now_ns = move || base.elapsed().as_nanos() as u64 + 1_000_000_000;
        let ingest = tokio::spawn(async move {
            let mut ingest = Ingest::new(nodes(), 200_000);
            ingest
                .run(
                    ui_rx,
                    snap_tx,
                    Some(&mut ev_rx),
                    None,
                    std::future::pending(),
                )
                .await;
        });
        // (stamp of the batch's last event) per batch, in order.
        let stamps = Arc::new(std::sync::Mutex::new(Vec::<u64>::new()));
        let feeder_stamps = stamps.clone();
        let feeder = tokio::spawn(async move {
            let every = Duration::from_nanos(BATCH * 1_000_000_000 / RATE);
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            for seq in 0.. {
                tick.tick().await;
                let mut b = batch(seq);
                let t = now_ns();
                for e in &mut b {
                    e.ts_ns = t;
                }
                feeder_stamps.lock().unwrap().push(t);
                if ev_tx.send(b).await.is_err() {
                    break;
                }
            }
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
        let measure_from = now_ns();
        let until = Instant::now() + Duration::from_secs(4);
        // (newest ts_ns shown, when) for every snapshot published.
        let mut shown: Vec<(u64, u64)> = Vec::new();
        while Instant::now() < until {
            if tokio::time::timeout(Duration::from_secs(5), snap_rx.changed())
                .await
                .is_err()
            {
                panic!("no snapshot within 5 s");
            }
            let t = now_ns();
            let newest = snap_rx
                .borrow_and_update()
                .events
                .rows
                .iter()
                .map(|r| r.ts_ns)
                .max();
            if let Some(n) = newest {
                shown.push((n, t));
            }
        }
        let stamps = stamps.lock().unwrap().clone();
        let last_shown = shown.last().map_or(0, |s| s.0);
        let mut lat: Vec<u64> = Vec::new();
        let mut i = 0;
        for &s in stamps
            .iter()
            .filter(|&&s| s >= measure_from && s <= last_shown)
        {
            while i < shown.len() && shown[i].0 < s {
                i += 1;
            }
            if let Some(&(_, t)) = shown.get(i) {
                lat.push(t - s);
            }
        }
        assert!(!lat.is_empty(), "no batch was shown on a snapshot");
        lat.sort_unstable();
        let ms = |ns: u64| ns as f64 / 1e6;
        let secs = 4.0;
        let fed = stamps.iter().filter(|&&s| s >= measure_from).count() as f64 * BATCH as f64;
        println!(
            "event→screen (stamp at hand-off → first snapshot showing it) over {} batches \
             while feeding {:.2} M events/s, {} snapshots: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms \
             (target p99 ≤ 50 ms)",
            lat.len(),
            fed / secs / 1e6,
            shown.len(),
            ms(lat[lat.len() / 2]),
            ms(lat[lat.len() * 99 / 100]),
            ms(lat[lat.len() - 1]),
        );
        feeder.abort();
        ingest.abort();
    });
}
