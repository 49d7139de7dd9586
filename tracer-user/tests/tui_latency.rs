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
