//! The `?` overlay.

use ratatui::{
    layout::{Constraint, Flex, Layout, Rect},
    text::Line,
    widgets::{Block, Clear, Paragraph},
    Frame,
};

use super::style;
use crate::tui::ui_state::UiState;

const GLOBAL: &[&str] = &[
    "q, Ctrl-C     quit (restores the terminal)",
    "Ctrl-L        repaint the whole screen",
    "?, Esc        this help / close it",
    "1-5, Tab      switch view: Events Chains Doorbells Findings Health",
    "↑↓ j k        move;  PgUp PgDn  a page;  Home End  first / last",
    "mouse wheel   scroll",
    "",
    "Events",
    "  p           pause the view (events are still ingested)",
    "  End         follow the newest events again",
    "  f           filter: node=NAME dev=0000:01:00.0 kind=map pid=N iova=0x1000-0x1fff",
    "  /           search text;  F clears filter and search",
    "Chains",
    "  Enter ← →   fold / unfold a device or domain",
    "Findings",
    "  Enter       jump to the evidence in Events",
    "  c           jump to the chain of the finding's address",
];

const LIVE: &[&str] = &[
    "",
    "Live",
    "  r           record to vfio-trace-<unix time>.vtrace (in $VFIO_TRACE_RECORD_DIR",
    "              or here); r again or q stops and finishes the file",
];

const REPLAY: &[&str] = &[
    "",
    "Replay",
    "  space       play / pause",
    "  →  (or .)   step one event",
    "  + -         faster / slower",
    "  g           jump to a time (seconds from the start)",
    "  [ ]         jump to the previous / next finding (◆ on the bar)",
    "  h  (Chains) history: every mapping of the recording with its lifetime;",
    "              Enter shows one as it was, with its chain; n: one node's only;",
    "              Esc or h: back to the tree",
];

pub fn draw(ui: &UiState, frame: &mut Frame, area: Rect) {
    let mut lines: Vec<Line> = GLOBAL.iter().map(|l| Line::raw(*l)).collect();
    let mode = if ui.replay { REPLAY } else { LIVE };
    lines.extend(mode.iter().map(|l| Line::raw(*l)));
    let h = u16::try_from(lines.len() + 2).unwrap_or(u16::MAX);
    let [v] = Layout::vertical([Constraint::Length(h)])
        .flex(Flex::Center)
        .areas(area);
    let [r] = Layout::horizontal([Constraint::Length(84)])
        .flex(Flex::Center)
        .areas(v);
    frame.render_widget(Clear, r);
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::bordered()
                .title(" keys ")
                .title_style(style::title()),
        ),
        r,
    );
}
