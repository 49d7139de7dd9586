//! The replay timeline bar: position, play state, speed, and a `◆` on
//! the bar per finding of the whole recording (`[`/`]` jump to them).

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
    if !r.findings_ns.is_empty() {
        spans.push(Span::styled(
            format!("◆ {} findings ([ ]) ", r.findings_ns.len()),
            style::error(),
        ));
    }
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
    if bar.width == 0 || bar.height == 0 {
        return;
    }
    let last = f64::from(bar.width - 1);
    let buf = frame.buffer_mut();
    for &t in r.findings_ns.iter() {
        let f = ((t - r.start_ns).clamp(0, span) as f64 / span as f64).clamp(0.0, 1.0);
        let x = bar.x + (f * last).round() as u16;
        if let Some(cell) = buf.cell_mut((x, bar.y)) {
            cell.set_symbol("◆").set_style(style::error());
        }
    }
}
