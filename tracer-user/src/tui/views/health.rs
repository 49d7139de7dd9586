//! The Health view: probes (attached or why not, hits), per-node event
//! rates as sparklines, drop counters (red whenever non-zero).

use ratatui::{
    layout::{Constraint, Layout, Rect},
    text::{Line, Span},
    widgets::{Block, Paragraph, Sparkline},
    Frame,
};
use tracer_core::event::ProbeState;

use super::style;
use crate::tui::{snapshot::HealthPane, ui_state::UiState};

fn state(s: ProbeState) -> (&'static str, ratatui::style::Style) {
    match s {
        ProbeState::Attached => ("attached", style::ok()),
        ProbeState::MissingSymbol => ("missing symbol", style::warn()),
        ProbeState::Unsupported => ("unsupported", style::warn()),
        ProbeState::Failed => ("failed", style::error()),
        ProbeState::Detached => ("detached", style::dim()),
    }
}

pub fn draw(p: &HealthPane, ui: &UiState, frame: &mut Frame, area: Rect) {
    let rate_rows = u16::try_from(p.nodes.len() * 3).unwrap_or(u16::MAX);
    let input_rows = p.inputs.iter().map(|i| 1 + i.reasons.len()).sum::<usize>();
    let input_rows = if input_rows == 0 {
        0
    } else {
        u16::try_from(input_rows)
            .unwrap_or(u16::MAX)
            .saturating_add(2)
    };
    let [inputs, probes, rates] = Layout::vertical([
        Constraint::Length(input_rows),
        Constraint::Min(3),
        Constraint::Length(rate_rows.max(1) + 2),
    ])
    .areas(area);
    if input_rows > 0 {
        draw_inputs(p, frame, inputs);
    }
    draw_probes(p, ui, frame, probes);
    draw_rates(p, frame, rates);
}

/// Replay: what was read from each file; an incomplete one in red with
/// every stretch that was not read.
fn draw_inputs(p: &HealthPane, frame: &mut Frame, area: Rect) {
    let all = p.inputs.iter().all(|i| i.complete);
    let block = Block::bordered()
        .title(if all {
            " input files: every event read "
        } else {
            " input files: INCOMPLETE, not every event was read "
        })
        .title_style(if all { style::title() } else { style::error() });
    let mut lines = Vec::new();
    for i in &p.inputs {
        let st = if i.complete {
            style::ok()
        } else {
            style::error()
        };
        lines.push(Line::styled(i.summary.clone(), st));
        for r in &i.reasons {
            lines.push(Line::styled(format!("  {r}"), style::error()));
        }
    }
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

fn draw_probes(p: &HealthPane, ui: &UiState, frame: &mut Frame, area: Rect) {
    let up = p
        .probes
        .iter()
        .filter(|l| l.state == ProbeState::Attached)
        .count();
    let block = Block::bordered()
        .title(format!(
            " probes: {up} attached, {} not ",
            p.probes.len() - up
        ))
        .title_style(style::title());
    let mut lines = vec![Line::styled(
        format!(
            "{:<8} {:<24} {:<15} {:>10} {:>8}  {:<40} reason",
            "node", "probe", "status", "hits", "new", "attach"
        ),
        style::dim(),
    )];
    if p.probes.is_empty() {
        lines.push(Line::styled(
            "no probe_status events yet (they come every second)",
            style::dim(),
        ));
    }
    for l in p.probes.iter().skip(ui.health_scroll) {
        let (s, st) = state(l.state);
        let s = if l.required && l.state != ProbeState::Attached {
            format!("{s} (required)")
        } else {
            s.to_string()
        };
        lines.push(Line::from(vec![
            Span::raw(format!("{:<8} {:<24} ", l.node, l.probe)),
            Span::styled(format!("{s:<15}"), st),
            Span::raw(format!(" {:>10} {:>8}  ", l.hits, l.new_hits)),
            Span::styled(format!("{:<40} ", l.attach), style::dim()),
            Span::raw(l.reason.clone()),
        ]));
    }
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

fn draw_rates(p: &HealthPane, frame: &mut Frame, area: Rect) {
    let block = Block::bordered()
        .title(" event rate per node (events/s, last 2 min) and drops ")
        .title_style(style::title());
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if p.nodes.is_empty() {
        frame.render_widget(
            Paragraph::new(Line::styled("no events yet", style::dim())),
            inner,
        );
        return;
    }
    let rows = Layout::vertical(p.nodes.iter().map(|_| Constraint::Length(3))).split(inner);
    for (n, row) in p.nodes.iter().zip(rows.iter()) {
        let [label, spark] =
            Layout::horizontal([Constraint::Length(56), Constraint::Min(10)]).areas(*row);
        let mut lines = vec![Line::from(vec![
            Span::styled(format!("{} ", n.node), style::title()),
            Span::raw(format!("{} ev/s", n.last)),
        ])];
        match &n.drops {
            Some(d) if d.total() > 0 => lines.push(Line::styled(
                format!(
                    "DROPS {}: ring {} pending {} read {} undecodable {}",
                    d.total(),
                    d.ring_full,
                    d.pending_full,
                    d.read_failed,
                    d.undecodable
                ),
                style::error(),
            )),
            Some(_) => lines.push(Line::styled("drops 0", style::ok())),
            None => lines.push(Line::styled("no drop report yet", style::dim())),
        }
        frame.render_widget(Paragraph::new(lines), label);
        let width = usize::from(spark.width);
        let data: Vec<u64> = n.series.iter().rev().take(width).rev().copied().collect();
        frame.render_widget(Sparkline::default().data(&data).style(style::ok()), spark);
    }
}
