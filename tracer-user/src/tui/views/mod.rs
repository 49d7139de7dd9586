//! Drawing: `draw(&Snapshot, &UiState, frame)` is a pure function of its
//! arguments. One file per section.

mod chains;
mod doorbells;
mod events;
mod findings;
mod footer;
mod header;
mod health;
mod help;
pub mod list;
pub mod style;
mod timeline;

use ratatui::{
    layout::{Constraint, Layout, Rect},
    Frame,
};

use super::{
    snapshot::Snapshot,
    ui_state::{Tab, UiState},
};

/// Lines around the body: header, tabs, footer (+ the replay bar).
pub fn chrome_height(ui: &UiState) -> u16 {
    3 + if ui.replay { 2 } else { 0 }
}

/// Height of the tab body for a terminal of `rows` lines.
pub fn body_height(rows: u16, ui: &UiState) -> usize {
    usize::from(rows.saturating_sub(chrome_height(ui)))
}

pub fn draw(snap: &Snapshot, ui: &UiState, frame: &mut Frame) {
    let area = frame.area();
    let replay = if ui.replay { 2 } else { 0 };
    let [head, tabs, body, bar, foot] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(replay),
        Constraint::Length(1),
    ])
    .areas(area);
    header::draw(&snap.header, ui, frame, head);
    header::draw_tabs(snap, ui, frame, tabs);
    draw_body(snap, ui, frame, body);
    if ui.replay {
        timeline::draw(snap.replay.as_ref(), frame, bar);
    }
    footer::draw(ui, frame, foot);
    if ui.help {
        help::draw(ui, frame, area);
    }
}

fn draw_body(snap: &Snapshot, ui: &UiState, frame: &mut Frame, area: Rect) {
    match ui.tab {
        Tab::Events => events::draw(&snap.events, ui, frame, area),
        Tab::Chains => chains::draw(&snap.chains, ui, frame, area),
        Tab::Doorbells => doorbells::draw(&snap.doorbells, frame, area),
        Tab::Findings => findings::draw(&snap.findings, frame, area),
        Tab::Health => health::draw(&snap.health, ui, frame, area),
    }
}
