//! Every view of the terminal UI rendered into a `TestBackend` from a
//! deterministic trace and compared with insta snapshots
//! (`tests/snapshots/`). Review changes with `cargo insta review` or by
//! reading the `.snap.new` files.

#[allow(dead_code, reason = "shared with the binary; only the UI's uses here")]
#[path = "../src/node.rs"]
mod node;
#[allow(dead_code, reason = "shared with the binary; only the UI's uses here")]
#[path = "../src/sudo_owner.rs"]
mod sudo_owner;
#[allow(dead_code, reason = "the tests use part of the UI module")]
#[path = "../src/tui/mod.rs"]
mod tui;
mod tui_fixture;

use ratatui::{backend::TestBackend, buffer::Buffer, Terminal};
use tui::{
    model::Model,
    snapshot::{self, ReplayStatus, Snapshot},
    ui_state::{Tab, UiState},
    views,
};

const W: u16 = 160;
const H: u16 = 40;

fn model() -> Model {
    let mut m = Model::new(tui_fixture::nodes(), 1000);
    for e in tui_fixture::events() {
        m.apply(&e);
    }
    m.refresh();
    m
}

fn ui(tab: Tab, replay: bool) -> UiState {
    let mut ui = UiState::new(replay);
    ui.tab = tab;
    ui.body_height = views::body_height(H, &ui);
    ui
}

fn render(snap: &Snapshot, ui: &UiState) -> Buffer {
    let mut t = Terminal::new(TestBackend::new(W, H)).expect("terminal");
    t.draw(|f| views::draw(snap, ui, f)).expect("draw");
    t.backend().buffer().clone()
}

fn text(b: &Buffer) -> String {
    let area = b.area;
    let mut out = String::new();
    for y in 0..area.height {
        let mut line = String::new();
        for x in 0..area.width {
            line.push_str(b[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn screen(m: &Model, ui: &UiState) -> String {
    text(&render(&snapshot::build(m, ui, 4_200_000_000, None), ui))
}

fn replay_status() -> ReplayStatus {
    ReplayStatus {
        start_ns: 0,
        end_ns: 10_000_000_000,
        now_ns: 2_500_000_000,
        playing: false,
        speed: 2.0,
        applied: 12,
        total: 20,
        note: None,
        findings_ns: vec![1_000_000_000, 7_500_000_000].into(),
    }
}

#[test]
fn events_view_follows_the_stream() {
    insta::assert_snapshot!(screen(&model(), &ui(Tab::Events, false)));
}

#[test]
fn events_view_filtered_paused_with_cursor() {
    let m = model();
    let mut u = ui(Tab::Events, false);
    u.events.filter =
        tui::filter::Filter::parse("node=host kind=map", Some("0x100000".into())).expect("filter");
    u.events.paused_at = Some(12);
    u.events.cursor = Some(7);
    insta::assert_snapshot!(screen(&m, &u));
}

#[test]
fn chains_view_shows_the_broken_hop_of_the_selected_mapping() {
    let m = model();
    let mut u = ui(Tab::Chains, false);
    u.chains.focus = Some((0, 0x20_0000));
    let snap = snapshot::build(&m, &u, 4_200_000_000, None);
    let buf = render(&snap, &u);
    insta::assert_snapshot!(text(&buf));
    // The disagreeing hop is drawn in red.
    let t = text(&buf);
    let y = t
        .lines()
        .position(|l| l.contains("disagrees"))
        .expect("broken hop");
    let x = t.lines().nth(y).and_then(|l| l.find("✗")).expect("mark");
    let col = t.lines().nth(y).expect("line")[..x].chars().count();
    let cell = &buf[(
        u16::try_from(col).expect("col"),
        u16::try_from(y).expect("row"),
    )];
    assert_eq!(cell.fg, ratatui::style::Color::Red);
}

#[test]
fn doorbells_view() {
    insta::assert_snapshot!(screen(&model(), &ui(Tab::Doorbells, false)));
}

#[test]
fn findings_view_newest_first_with_explanation() {
    insta::assert_snapshot!(screen(&model(), &ui(Tab::Findings, false)));
}

#[test]
fn health_view_shows_missing_probes_and_drops() {
    insta::assert_snapshot!(screen(&model(), &ui(Tab::Health, false)));
}

#[test]
fn help_overlay_in_replay_mode() {
    let m = model();
    let mut u = ui(Tab::Events, true);
    u.help = true;
    let snap = snapshot::build(&m, &u, 2_500_000_000, Some(replay_status()));
    insta::assert_snapshot!(text(&render(&snap, &u)));
}

#[test]
fn replay_timeline_bar() {
    let m = model();
    let u = ui(Tab::Findings, true);
    let snap = snapshot::build(&m, &u, 2_500_000_000, Some(replay_status()));
    insta::assert_snapshot!(text(&render(&snap, &u)));
}

#[test]
fn empty_model_renders_every_view() {
    let m = Model::new(tui_fixture::nodes(), 10);
    for t in Tab::ALL {
        let s = screen(&m, &ui(t, false));
        assert!(s.contains("vfio-trace"), "{s}");
    }
}

#[test]
fn recording_shows_in_the_header_and_r_in_the_live_help() {
    let m = model();
    let mut u = ui(Tab::Events, false);
    let mut snap = snapshot::build(&m, &u, 4_200_000_000, None);
    snap.header.recording = Some(snapshot::Recording {
        file: "vfio-trace-1700000000.vtrace".into(),
        events: 1234,
    });
    let b = render(&snap, &u);
    let head = text(&b).lines().next().unwrap_or_default().to_string();
    assert!(
        head.contains("● REC vfio-trace-1700000000.vtrace 1234"),
        "{head}"
    );
    let x = head.chars().position(|c| c == '●').expect("dot");
    let x = u16::try_from(x).expect("x");
    assert_eq!(b[(x, 0)].fg, ratatui::style::Color::Red);
    u.help = true;
    let s = text(&render(&snap, &u));
    assert!(s.contains("r again or q stops"), "{s}");
    let mut r = ui(Tab::Events, true);
    r.help = true;
    let s = text(&render(&snapshot::build(&m, &r, 0, None), &r));
    assert!(!s.contains("record to"), "no recording in replay: {s}");
}
