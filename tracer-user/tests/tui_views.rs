//! Every view of the terminal UI rendered into a `TestBackend` from a
//! deterministic trace and compared with insta snapshots
//! (`tests/snapshots/`). Review changes with `cargo insta review` or by
//! reading the `.snap.new` files.

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

#[test]
fn debug_dump() {
    let m = model();
    for f in &m.analysis.findings {
        println!("{:?} {} {:?}", f.rule, f.message, f.evidence);
    }
    for t in [Tab::Chains, Tab::Doorbells] {
        println!("{}", screen(&m, &ui(t, false)));
    }
    let mut u = ui(Tab::Chains, false);
    u.chains.focus = Some((0, 0x200000));
    println!("{}", screen(&m, &u));
}
