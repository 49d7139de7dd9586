//! The Events view: the stream, colour-coded by node and kind.

use ratatui::{
    layout::Rect,
    style::Style,
    text::{Line, Span},
    widgets::{Block, Paragraph},
    Frame,
};

use super::{list, style};
use crate::tui::{
    snapshot::{EventRow, EventsPane},
    ui_state::UiState,
};

/// One event as a line: time, node, comm[pid], kind, fields.
pub fn line(r: &EventRow) -> Line<'static> {
    let kind_style = if r.failed {
        style::error()
    } else {
        style::category(r.category)
    };
    Line::from(vec![
        Span::styled(format!("{:>17} ", style::ts(r.ts_ns)), style::dim()),
        Span::styled(format!("{:<8} ", r.node_name), style::node(r.node)),
        Span::raw(format!("{:<22} ", format!("{}[{}]", r.comm, r.pid))),
        Span::styled(r.details.clone(), kind_style),
    ])
}

pub fn draw(p: &EventsPane, ui: &UiState, frame: &mut Frame, area: Rect) {
    let title = if p.matching == 0 {
        format!(" events: none matching ({} kept) ", p.kept)
    } else {
        format!(
            " events {}/{} matching, {} kept{} ",
            p.position + 1,
            p.matching,
            p.kept,
            if ui.events.cursor.is_none() && ui.events.paused_at.is_none() {
                " · following"
            } else {
                ""
            }
        )
    };
    let block = Block::bordered().title(title).title_style(style::title());
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let height = usize::from(inner.height);
    let lines: Vec<Line> = list::window(&p.rows, p.cursor, ui.events.screen_row, height)
        .map(|(i, r)| {
            let l = line(r);
            if Some(i) == p.cursor && ui.events.cursor.is_some() {
                l.style(style::selected())
            } else if ui.events.highlight.contains(&r.id) {
                l.style(style::highlight())
            } else {
                l.style(Style::new())
            }
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), inner);
}
