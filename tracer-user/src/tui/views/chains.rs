//! The Chains view: devices → domains → mappings on the left; on the right
//! the selected mapping's chain IOVA→GPA→HVA→HPA, one hop per line with the
//! event behind it, broken hops in red.

use ratatui::{
    layout::{Constraint, Layout, Rect},
    text::{Line, Span},
    widgets::{Block, Paragraph, Wrap},
    Frame,
};
use tracer_core::engine::{snapshot::DomainRef, HopKind, HopStatus};

use super::{list, style};
use crate::tui::{
    snapshot::{ChainRow, ChainRowKind, ChainsPane, HistoryPane, HistoryRow, SelectedChain},
    ui_state::UiState,
};

pub fn domain_label(d: DomainRef) -> String {
    match d {
        DomainRef::Guest(id) => format!("guest domain {id}"),
        DomainRef::Container {
            container: c,
            ioas: 0,
        } => {
            format!("container {}:{}", c >> 32, c & 0xffff_ffff)
        }
        DomainRef::Container { container: c, ioas } => {
            format!("iommufd {}:{} ioas {ioas}", c >> 32, c & 0xffff_ffff)
        }
        DomainRef::Iommu(a) => format!("iommu domain {a:#x}"),
    }
}

/// What a domain's mappings lead to.
fn target(d: DomainRef) -> &'static str {
    match d {
        DomainRef::Guest(_) => "gpa",
        DomainRef::Container { .. } => "hva",
        DomainRef::Iommu(_) => "hpa",
    }
}

pub fn hop_label(k: HopKind) -> &'static str {
    match k {
        HopKind::GuestIovaToGpa => "IOVA→GPA  guest MAP   ",
        HopKind::GpaToHva => "GPA→HVA   KVM memslot ",
        HopKind::HostIovaToHva => "IOVA→HVA  MAP_DMA     ",
        HopKind::HvaToHpa => "HVA→HPA   VFIO pin    ",
        HopKind::IovaToHpa => "IOVA→HPA  iommu_map   ",
    }
}

fn row_line(r: &ChainRow) -> Line<'static> {
    let indent = "  ".repeat(usize::from(r.depth));
    let fold = if r.collapsed { "▸ " } else { "▾ " };
    match &r.kind {
        ChainRowKind::Device {
            node,
            device,
            pid,
            domains,
        } => Line::from(vec![
            Span::raw(format!("{indent}{fold}")),
            Span::styled(format!("{node} "), style::title()),
            Span::styled(device.to_string(), style::title()),
            Span::styled(
                if *pid != 0 {
                    format!(" pid {pid} ({domains} domains)")
                } else {
                    format!(" ({domains} domains)")
                },
                style::dim(),
            ),
        ]),
        ChainRowKind::Loose { node } => Line::from(vec![
            Span::raw(format!("{indent}{fold}")),
            Span::styled(format!("{node} "), style::title()),
            Span::styled("domains without a known device", style::dim()),
        ]),
        ChainRowKind::Domain {
            domain,
            bypass,
            count,
        } => Line::from(vec![
            Span::raw(format!("{indent}{fold}{} ", domain_label(*domain))),
            Span::styled(
                format!(
                    "{count} mapping{}{}",
                    if *count == 1 { "" } else { "s" },
                    if *bypass { ", bypass" } else { "" }
                ),
                style::dim(),
            ),
        ]),
        ChainRowKind::Mapping {
            domain,
            iova,
            last,
            to,
            ..
        } => Line::raw(format!(
            "{indent}{iova:#x}-{last:#x} → {} {to:#x}",
            target(*domain)
        )),
        ChainRowKind::More { hidden } => Line::styled(
            format!("{indent}… {hidden} more (not listed)"),
            style::dim(),
        ),
    }
}

/// In a replay where no mapping is live at this point (a bug report's
/// recording usually ends with everything unmapped), the chain pane says
/// why it is empty and how to see the mappings as they were.
fn no_live_mapping_hint(p: &ChainsPane, ui: &UiState) -> Option<Vec<Line<'static>>> {
    if !(ui.replay && p.events_seen > 0 && !p.any_mapping) {
        return None;
    }
    Some(
        [
            "no live mapping at this point of the replay: every mapping seen so far",
            "was unmapped (a recording usually ends so).",
            "",
            "Press h for the history: every mapping of the recording with its",
            "lifetime; Enter on one shows it as it was, with its chain. (Or press g",
            "and a time in seconds from the start, as the header's \"up\" clock counts.)",
        ]
        .into_iter()
        .map(|t| Line::styled(t, style::warn()))
        .collect(),
    )
}

/// Seconds from the start of the recording, as the header's clock says.
fn secs(ns: i128) -> String {
    format!("{:.3}s", ns as f64 / 1e9)
}

fn history_line(r: &HistoryRow) -> Line<'static> {
    let l = &r.life;
    let end = match (l.unmap, r.unmapped_at) {
        (Some((ev, _)), Some(t)) => format!("unmapped {} #{ev}", secs(t)),
        _ => "live at the end".to_string(),
    };
    Line::from(vec![
        Span::styled(format!("{} ", r.node), style::title()),
        Span::raw(format!(
            "{} {:#x}-{:#x} → {} {:#x}  ",
            domain_label(l.domain),
            l.iova,
            l.last,
            target(l.domain),
            l.to
        )),
        Span::styled(
            format!("mapped {} #{}  {end}", secs(r.mapped_at), l.map_ev),
            style::dim(),
        ),
    ])
}

/// History mode: every mapping of the recording, oldest first; the right
/// side says what Enter does.
fn draw_history(h: &HistoryPane, ui: &UiState, frame: &mut Frame, area: Rect) {
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(70), Constraint::Percentage(30)]).areas(area);
    let dropped = if h.dropped > 0 {
        format!(", {} oldest not kept", h.dropped)
    } else {
        String::new()
    };
    let whose = match &h.node {
        Some(n) => format!("of {n}"),
        None => "of the recording".to_string(),
    };
    let block = Block::bordered()
        .title(format!(
            " history: every mapping {whose} ({}{dropped}) · n: node · h: back to the tree ",
            h.total
        ))
        .title_style(style::title());
    let inner = block.inner(left);
    frame.render_widget(block, left);
    if h.rows.is_empty() {
        frame.render_widget(
            Paragraph::new(Line::styled("no mapping here", style::dim())),
            inner,
        );
    } else {
        let height = usize::from(inner.height);
        let lines: Vec<Line> = list::window(&h.rows, Some(h.cursor), ui.chains.screen_row, height)
            .map(|(i, r)| {
                let l = history_line(r);
                if i == h.cursor {
                    l.style(style::selected())
                } else {
                    l
                }
            })
            .collect();
        frame.render_widget(Paragraph::new(lines), inner);
    }
    let mut lines = vec![Line::styled(
        "Enter: go to the middle of this mapping's life; the tree then shows it live, with its chain IOVA→GPA→HVA→HPA as it was.",
        style::dim(),
    )];
    if let Some(r) = h.rows.get(h.cursor) {
        lines.push(Line::raw(""));
        lines.push(Line::raw(format!(
            "mapped by event #{} at {}",
            r.life.map_ev,
            secs(r.mapped_at)
        )));
        lines.push(Line::raw(match (r.life.unmap, r.unmapped_at) {
            (Some((ev, _)), Some(t)) => format!("unmapped by event #{ev} at {}", secs(t)),
            _ => "never unmapped".to_string(),
        }));
        lines.push(Line::raw(format!("Enter goes to {}", secs(r.jump_ns()))));
    }
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::bordered()
                .title(" lifetime ")
                .title_style(style::title()),
        ),
        right,
    );
}

pub fn draw(p: &ChainsPane, ui: &UiState, frame: &mut Frame, area: Rect) {
    if let Some(h) = &p.history {
        draw_history(h, ui, frame, area);
        return;
    }
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(42), Constraint::Percentage(58)]).areas(area);
    let block = Block::bordered()
        .title(format!(
            " devices → domains → mappings ({} rows) ",
            p.total_rows
        ))
        .title_style(style::title());
    let inner = block.inner(left);
    frame.render_widget(block, left);
    if p.rows.is_empty() {
        frame.render_widget(
            Paragraph::new(Line::styled("no mappings seen yet", style::dim())),
            inner,
        );
    } else {
        let height = usize::from(inner.height);
        let lines: Vec<Line> = list::window(&p.rows, p.cursor, ui.chains.screen_row, height)
            .map(|(i, r)| {
                let l = row_line(r);
                if Some(i) == p.cursor {
                    l.style(style::selected())
                } else {
                    l
                }
            })
            .collect();
        frame.render_widget(Paragraph::new(lines), inner);
    }
    draw_chain(p, ui, frame, right);
}

fn draw_chain(p: &ChainsPane, ui: &UiState, frame: &mut Frame, area: Rect) {
    let Some(s) = &p.selected else {
        let block = Block::bordered()
            .title(" chain ")
            .title_style(style::title());
        let lines = no_live_mapping_hint(p, ui).unwrap_or_else(|| {
            vec![Line::styled(
                "select a mapping to see its chain IOVA→GPA→HVA→HPA",
                style::dim(),
            )]
        });
        frame.render_widget(Paragraph::new(lines).block(block), area);
        return;
    };
    let block = Block::bordered()
        .title(format!(
            " chain: {} {} {:#x}-{:#x} ",
            s.node,
            domain_label(s.domain),
            s.iova,
            s.last
        ))
        .title_style(style::title());
    frame.render_widget(
        Paragraph::new(chain_lines(s, &p.node_names))
            .block(block)
            .wrap(Wrap { trim: false }),
        area,
    );
}

pub fn chain_lines(s: &SelectedChain, node_names: &[String]) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    for c in &s.chains {
        let verdict = match c.broken_at {
            None => Span::styled("complete", style::ok()),
            Some(i) => Span::styled(format!("BROKEN at hop {}", i + 1), style::error()),
        };
        lines.push(Line::from(vec![
            Span::styled(format!("{:#x}-{:#x}: ", c.iova, c.last), style::title()),
            verdict,
        ]));
        for h in &c.hops {
            let node = node_names
                .get(usize::from(h.node))
                .cloned()
                .unwrap_or_else(|| format!("node{}", h.node));
            let to = h.to.map_or("?".to_string(), |t| format!("{t:#x}"));
            let (mark, st, why) = match &h.status {
                HopStatus::Ok => ("✓", style::ok(), String::new()),
                HopStatus::Missing { why } => ("✗", style::error(), format!("  missing: {why}")),
                HopStatus::Disagree { expected } => (
                    "✗",
                    style::error(),
                    format!("  disagrees: expected {expected:#x}"),
                ),
                HopStatus::Unknown { why } => ("?", style::warn(), format!("  unknown: {why}")),
            };
            lines.push(Line::from(vec![
                Span::styled(format!(" {mark} "), st),
                Span::styled(hop_label(h.kind), st),
                Span::raw(format!("{:#x} → {to} ", h.from)),
                Span::styled(format!("({node})"), style::dim()),
                Span::styled(why, st),
            ]));
            match h.ev.and_then(|id| s.events.iter().find(|(e, _)| *e == id)) {
                Some((id, row)) => lines.push(Line::from(vec![
                    Span::styled(format!("     #{id} {} ", row.node_name), style::dim()),
                    Span::styled(row.details.clone(), style::category(row.category)),
                ])),
                None if h.ev.is_some() => lines.push(Line::styled(
                    format!("     #{} (event no longer kept)", h.ev.unwrap_or_default()),
                    style::dim(),
                )),
                None => {}
            }
        }
    }
    if lines.is_empty() {
        lines.push(Line::styled("no chain for this range", style::dim()));
    }
    lines
}
