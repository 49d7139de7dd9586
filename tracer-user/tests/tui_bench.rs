//! Frame cost of the terminal UI at scale: 1 M live mappings and 100 k
//! findings. Prints figures, never fails (target: a frame ≤ 5 ms). Run:
//!
//! ```sh
//! cargo test --release -p tracer-user --test tui_bench -- --ignored --nocapture
//! ```
//!
//! A frame is the ingest side's `snapshot::build` (only the active tab,
//! only the rows around the cursor) plus `views::draw` into a 200×50
//! `TestBackend`. The engine's own snapshot (`Model::refresh`, at most
//! 4×/s while events flow) is timed separately.

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
    sync::Arc,
    time::{Duration, Instant},
};

use ratatui::{backend::TestBackend, Terminal};
use tracer_core::{
    engine::{Finding, RuleId},
    event::*,
};
use tui::{
    filter::Filter,
    model::Model,
    snapshot,
    ui_state::{Tab, UiState},
    views,
};

/// Puts the UI on a view for frame `i`.
type Setup = dyn Fn(&mut UiState, usize);

const MAPPINGS: u64 = 1_000_000;
const FINDINGS: u64 = 100_000;

fn node() -> NodeInfo {
    NodeInfo {
        name: "host".into(),
        role: NodeRole::Host,
        kernel: "6.12".into(),
        machine: "x86_64".into(),
        clock_offset_ns: 0,
    }
}

fn map(i: u64) -> Event {
    Event {
        ts_ns: 1_000_000_000 + i * 1_000,
        node: 0,
        pid: 4242,
        tid: 4243,
        comm: Comm::new("qemu-system-x86"),
        kind: EventKind::VfioMapDma(VfioMapDma {
            container: fd_handle(4242, 17),
            iova: i << 12,
            vaddr: 0x7f00_0000_0000 + (i << 12),
            size: 0x1000,
            flags: 3,
            errno: 0,
        }),
    }
}

fn time<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let t = Instant::now();
    let r = f();
    (r, t.elapsed())
}

#[test]
#[ignore = "benchmark: run with --release --ignored --nocapture"]
fn frame_time_with_1m_mappings_and_100k_findings() {
    let mut m = Model::new(vec![node()], tui::model::history::DEFAULT_CAPACITY);
    let ((), t) = time(|| (0..MAPPINGS).for_each(|i| m.apply(&map(i))));
    println!(
        "ingest: {MAPPINGS} MAP_DMA events in {t:.2?} ({:.0} events/s, engine + history + rates)",
        MAPPINGS as f64 / t.as_secs_f64()
    );
    let ((), t) = time(|| m.refresh());
    println!("engine snapshot (Model::refresh, ≤4/s): {t:.2?}");
    let mut a = (*m.analysis).clone();
    a.findings = (0..FINDINGS)
        .rev()
        .map(|i| {
            Finding::new(
                RuleId::MapFailed,
                0,
                format!("synthetic finding {i}: MAP_DMA failed with EEXIST"),
                vec![i],
            )
        })
        .collect();
    m.analysis = Arc::new(a);
    let live: usize = m
        .analysis
        .nodes
        .iter()
        .flat_map(|n| n.domains.iter())
        .map(|d| d.count)
        .sum();
    println!(
        "live mappings: {live}, findings: {}",
        m.analysis.findings.len()
    );

    let mut term = Terminal::new(TestBackend::new(200, 50)).expect("terminal");
    let mut ui = UiState::new(false);
    ui.body_height = views::body_height(50, &ui);
    let frames = 50;
    let cases: Vec<(&str, Box<Setup>)> = vec![
        ("events (following)", Box::new(|u, _| u.tab = Tab::Events)),
        (
            "events (search over 200k kept)",
            Box::new(|u, _| {
                u.tab = Tab::Events;
                u.events.filter = Filter::parse("kind=map", Some("0x7f00000ff".into())).expect("f");
            }),
        ),
        (
            "chains (scrolling, chain of selection)",
            Box::new(|u, i| {
                u.tab = Tab::Chains;
                u.events.filter = Filter::default();
                u.chains.focus = Some((0, (i as u64 * 7) << 12));
            }),
        ),
        ("doorbells", Box::new(|u, _| u.tab = Tab::Doorbells)),
        (
            "findings (scrolling 100k)",
            Box::new(|u, i| {
                u.tab = Tab::Findings;
                u.findings_cursor = i * 1999;
            }),
        ),
        ("health", Box::new(|u, _| u.tab = Tab::Health)),
    ];
    println!(
        "{:<40} {:>12} {:>12} {:>12}",
        "view", "build avg", "draw avg", "frame max"
    );
    for (name, setup) in cases {
        let (mut build, mut draw, mut worst) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
        for i in 0..frames {
            setup(&mut ui, i);
            let (snap, b) = time(|| snapshot::build(&m, &ui, 0, None));
            let (_, d) = time(|| term.draw(|f| views::draw(&snap, &ui, f)).expect("draw"));
            build += b;
            draw += d;
            worst = worst.max(b + d);
        }
        println!(
            "{name:<40} {:>12.2?} {:>12.2?} {:>12.2?}",
            build / frames as u32,
            draw / frames as u32,
            worst
        );
    }
    println!("target: a frame (build + draw) ≤ 5 ms");
}
