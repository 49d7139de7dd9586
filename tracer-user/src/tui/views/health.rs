//! The Health view: rules that cannot be judged (a kernel hook they need is
//! missing), probes (attached or why not, hits), per-node event rates as
//! sparklines, drop counters (red whenever non-zero).

use ratatui::{
    layout::{Constraint, Layout, Rect},
    text::{Line, Span},
    widgets::{Block, Paragraph, Sparkline},
    Frame,
};
use tracer_core::{
    engine::rules::needs::{self, NotJudged, ProbeView, Reported},
    engine::RuleId,
    event::ProbeState,
};

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
    let unjudged = not_judged(p);
    let unjudged_rows = if unjudged.is_empty() {
        0
    } else {
        u16::try_from(unjudged.len().min(MAX_UNJUDGED_ROWS))
            .unwrap_or(u16::MAX)
            .saturating_add(2)
    };
    let [inputs, rules, probes, rates] = Layout::vertical([
        Constraint::Length(input_rows),
        Constraint::Length(unjudged_rows),
        Constraint::Min(3),
        Constraint::Length(rate_rows.max(1) + 2),
    ])
    .areas(area);
    if input_rows > 0 {
        draw_inputs(p, frame, inputs);
    }
    if unjudged_rows > 0 {
        draw_not_judged(&unjudged, frame, rules);
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

/// At most this many lines of unjudged rules (the probes stay in view).
const MAX_UNJUDGED_ROWS: usize = 5;

/// Rules a node's probes cannot serve (the same judge as `check`'s
/// `not_judged`; whether a node uses software MSI is not known here, so
/// doorbell needs count as if it did).
pub fn not_judged(p: &HealthPane) -> Vec<NotJudged> {
    let mut nodes: Vec<&str> = p.probes.iter().map(|l| l.node.as_str()).collect();
    nodes.dedup();
    let mut out = Vec::new();
    for node in nodes {
        let lookup = |name: &str| {
            p.probes
                .iter()
                .find(|l| l.node == node && l.probe == name)
                .map(|l| ProbeView {
                    status: l.state,
                    ever_attached: l.ever_attached,
                    attach: &l.attach,
                    reason: &l.reason,
                })
        };
        let reported = Reported {
            sw_msi_window: None,
            kernel_probes: p
                .probes
                .iter()
                .any(|l| l.node == node && needs::is_kernel_function(&l.attach)),
        };
        out.extend(
            RuleId::ALL
                .into_iter()
                .filter_map(|r| needs::judge(r, Some(node), lookup, reported)),
        );
    }
    out
}

fn draw_not_judged(list: &[NotJudged], frame: &mut Frame, area: Rect) {
    let block = Block::bordered()
        .title(format!(
            " rules NOT JUDGED: {} (a kernel hook they need is missing) ",
            list.len()
        ))
        .title_style(style::error());
    let shown = if list.len() > MAX_UNJUDGED_ROWS {
        MAX_UNJUDGED_ROWS - 1
    } else {
        list.len()
    };
    let mut lines: Vec<Line> = list[..shown]
        .iter()
        .map(|n| {
            Line::from(vec![
                Span::styled(format!("{} {} ", n.rule, n.name), style::warn()),
                Span::raw(format!(
                    "on {}: {}",
                    n.node.as_deref().unwrap_or("?"),
                    n.reason
                )),
            ])
        })
        .collect();
    if shown < list.len() {
        let rest: Vec<&str> = list[shown..].iter().map(|n| n.rule.as_str()).collect();
        lines.push(Line::styled(
            format!("… and {} more: {}", list.len() - shown, rest.join(", ")),
            style::warn(),
        ));
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

#[cfg(test)]
mod tests {
    use ratatui::{backend::TestBackend, Terminal};

    use super::*;
    use crate::tui::snapshot::ProbeLine;

    fn line(probe: &str, state: ProbeState, ever: bool, reason: &str) -> ProbeLine {
        ProbeLine {
            node: "host".into(),
            probe: probe.into(),
            attach: format!("kprobe:{probe}"),
            state,
            required: false,
            reason: reason.into(),
            hits: 0,
            new_hits: 0,
            ever_attached: ever,
        }
    }

    /// Every probe a rule needs attached, the MSI-X shutdown hook in
    /// `msix_teardown`.
    fn pane(msix_teardown: ProbeState) -> HealthPane {
        let mut probes: Vec<ProbeLine> = Vec::new();
        for r in RuleId::ALL {
            for n in r.needs() {
                for p in n.any_of.iter().flat_map(|a| a.iter()) {
                    if *p != "msix_shutdown" && !probes.iter().any(|l| l.probe == *p) {
                        probes.push(line(p, ProbeState::Attached, true, ""));
                    }
                }
            }
        }
        probes.push(line(
            "msix_shutdown",
            msix_teardown,
            msix_teardown == ProbeState::Attached,
            "EBUSY",
        ));
        HealthPane {
            probes,
            ..Default::default()
        }
    }

    fn screen(p: &HealthPane) -> String {
        let mut t = Terminal::new(TestBackend::new(160, 30)).expect("terminal");
        let ui = UiState::new(false);
        t.draw(|f| draw(p, &ui, f, f.area())).expect("draw");
        let b = t.backend().buffer().clone();
        (0..b.area.height)
            .map(|y| {
                (0..b.area.width)
                    .map(|x| b[(x, y)].symbol().to_string())
                    .collect::<String>()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn a_missing_hook_lists_the_rule_it_leaves_unjudged() {
        let p = pane(ProbeState::Failed);
        let nj = not_judged(&p);
        assert_eq!(nj.len(), 1, "{nj:?}");
        assert_eq!(nj[0].rule, "VT010");
        let s = screen(&p);
        assert!(s.contains("rules NOT JUDGED: 1"), "{s}");
        assert!(s.contains("VT010 irq-ordering on host:"), "{s}");
    }

    #[test]
    fn every_hook_attached_shows_no_unjudged_block() {
        let p = pane(ProbeState::Attached);
        assert!(not_judged(&p).is_empty());
        assert!(!screen(&p).contains("NOT JUDGED"));
    }
}
