//! The replay timeline bar: position, play state, speed.

use ratatui::{
    layout::{Constraint, Layout, Rect},
    text::{Line, Span},
    widgets::{Gauge, Paragraph},
    Frame,
};

use super::style;
use crate::tui::snapshot::ReplayStatus;

pub fn draw(r: Option<&ReplayStatus>, frame: &mut Frame, area: Rect) {
    let Some(r) = r else {
        return;
    };
    let [info, bar] = Layout::vertical([Constraint::Length(1), Constraint::Length(1)]).areas(area);
    let span = (r.end_ns - r.start_ns).max(1);
    let at = (r.now_ns - r.start_ns).clamp(0, span);
    let secs = |ns: i128| style::duration(u64::try_from(ns.max(0)).unwrap_or(u64::MAX));
    let mut spans = vec![
        Span::styled(
            if r.playing {
                " ▶ playing "
            } else {
                " ⏸ paused "
            },
            if r.playing {
                style::ok()
            } else {
                style::warn()
            },
        ),
        Span::raw(format!(
            " {} / {}  speed {}x  event {}/{} ",
            secs(at),
            secs(span),
            r.speed,
            r.applied,
            r.total
        )),
    ];
    if let Some(n) = &r.note {
        spans.push(Span::styled(n.clone(), style::warn()));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), info);
    let ratio = (at as f64 / span as f64).clamp(0.0, 1.0);
    frame.render_widget(
        Gauge::default()
            .ratio(ratio)
            .label("")
            .gauge_style(style::ok()),
        bar,
    );
}
