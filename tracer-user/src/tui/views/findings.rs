//! The Findings view: rules fired, newest first; below, the selected one's
//! explanation and evidence.

use ratatui::{
    layout::{Constraint, Layout, Rect},
    text::{Line, Span},
    widgets::{Block, Paragraph, Wrap},
    Frame,
};
use tracer_core::engine::Severity;

use super::{events, list, style};
use crate::tui::snapshot::FindingsPane;

fn severity(s: Severity) -> ratatui::style::Style {
    match s {
        Severity::Error => style::error(),
        Severity::Warning => style::warn(),
        Severity::Info => style::dim(),
    }
}

pub fn draw(p: &FindingsPane, frame: &mut Frame, area: Rect) {
    let [top, bottom] =
        Layout::vertical([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(area);
    let mut title = format!(" findings: {} (newest first) ", p.total);
    if p.suppressed > 0 {
        title = format!(
            " findings: {} (newest first), {} more suppressed ",
            p.total, p.suppressed
        );
    }
    let block = Block::bordered().title(title).title_style(style::title());
    let inner = block.inner(top);
    frame.render_widget(block, top);
    if p.rows.is_empty() {
        frame.render_widget(
            Paragraph::new(Line::styled("no rule has fired", style::ok())),
            inner,
        );
        return;
    }
    let height = usize::from(inner.height);
    let cursor = p.cursor.unwrap_or(0);
    let first = list::top(p.rows.len(), cursor, height / 2, height);
    let lines: Vec<Line> = p
        .rows
        .iter()
        .enumerate()
        .skip(first)
        .take(height)
        .map(|(i, r)| {
            let l = Line::from(vec![
                Span::styled(
                    format!("{} {:<7} ", r.rule, r.severity.to_string()),
                    severity(r.severity),
                ),
                Span::styled(format!("{:<28} ", r.name), style::title()),
                Span::raw(format!(
                    "{:<8} {:<13} ",
                    r.node.as_deref().unwrap_or("-"),
                    r.device
                        .map(|d| d.to_string())
                        .unwrap_or_else(|| "-".into())
                )),
                Span::raw(r.message.clone()),
            ]);
            if Some(i) == p.cursor {
                l.style(style::selected())
            } else {
                l
            }
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), inner);
    draw_detail(p, frame, bottom);
}

fn draw_detail(p: &FindingsPane, frame: &mut Frame, area: Rect) {
    let Some(r) = p.cursor.and_then(|c| p.rows.get(c)) else {
        return;
    };
    let block = Block::bordered()
        .title(format!(" {} {} ", r.rule, r.name))
        .title_style(style::title());
    let mut lines = vec![
        Line::styled(r.message.clone(), severity(r.severity)),
        Line::raw(""),
        Line::raw(p.explanation),
        Line::raw(""),
        Line::styled(
            "evidence (Enter: show in Events, c: show the chain):",
            style::title(),
        ),
    ];
    for (id, row) in &p.evidence {
        lines.push(match row {
            Some(row) => {
                let mut l = events::line(row);
                l.spans
                    .insert(0, Span::styled(format!("#{id:<6} "), style::dim()));
                l
            }
            None => Line::styled(format!("#{id:<6} (no longer kept)"), style::dim()),
        });
    }
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false }),
        area,
    );
}
