//! The footer: the keys of the current tab, or the open prompt, or a message.

use ratatui::{
    layout::Rect,
    style::{Color, Style},
    text::{Line, Span},
    widgets::Paragraph,
    Frame,
};

use super::style;
use crate::tui::ui_state::{PromptKind, Tab, UiState};

fn keys(ui: &UiState) -> &'static str {
    match (ui.tab, ui.replay) {
        (Tab::Events, false) => "q quit  ? help  1-5 tabs  ↑↓ PgUp/PgDn move  End follow  p pause  f filter  / search  F clear  r record",
        (Tab::Events, true) => "q quit  ? help  1-5 tabs  ↑↓ move  p pause view  f filter  / search  F clear  space play  → step  +/- speed  g jump",
        (Tab::Chains, _) => "q quit  ? help  1-5 tabs  ↑↓ move  Enter/←→ fold  right pane: chain of the selected mapping",
        (Tab::Doorbells, _) => "q quit  ? help  1-5 tabs  ↑↓ device",
        (Tab::Findings, _) => "q quit  ? help  1-5 tabs  ↑↓ move  Enter evidence in Events  c chain of its address",
        (Tab::Health, _) => "q quit  ? help  1-5 tabs  ↑↓ scroll",
    }
}

pub fn draw(ui: &UiState, frame: &mut Frame, area: Rect) {
    let line = if let Some(p) = &ui.prompt {
        let label = match p.kind {
            PromptKind::Filter => "filter (node= dev= kind= pid= iova=A-B): ",
            PromptKind::Search => "search: /",
            PromptKind::JumpTime => "jump to second: ",
        };
        Line::from(vec![
            Span::styled(label, style::title()),
            Span::raw(p.text.clone()),
            Span::styled("█", Style::new().fg(Color::Gray)),
            Span::styled("   Enter apply  Esc cancel", style::dim()),
        ])
    } else if let Some(m) = &ui.message {
        Line::from(Span::styled(m.clone(), style::warn()))
    } else {
        Line::from(Span::styled(keys(ui), style::dim()))
    };
    frame.render_widget(Paragraph::new(line), area);
}
