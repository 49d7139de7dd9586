//! The Doorbells view: per device, MSI/MSI-X vectors with the programmed
//! address and data, the window type (hardware bypass or software mapped),
//! the doorbell mapping at each stage, the eventfd bound, and a status.

use ratatui::{
    layout::Rect,
    text::{Line, Span},
    widgets::{Block, Paragraph},
    Frame,
};

use super::{chains::domain_label, style};
use crate::tui::snapshot::{DeviceDoorbells, DoorbellsPane, VectorRow, WindowKind};

fn window(w: WindowKind) -> (&'static str, ratatui::style::Style) {
    match w {
        WindowKind::HardwareBypass => ("hw bypass", style::ok()),
        WindowKind::SoftwareMapped => ("sw mapped", style::ok()),
        WindowKind::X86Implicit => ("x86 bypass", style::ok()),
        WindowKind::None => ("no window", style::warn()),
    }
}

/// At most `n` characters, with `…` when cut.
fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_string();
    }
    let mut out: String = s.chars().take(n - 1).collect();
    out.push('…');
    out
}

fn index(i: u32) -> &'static str {
    match i {
        0 => "INTx",
        1 => "MSI",
        2 => "MSI-X",
        3 => "ERR",
        4 => "REQ",
        _ => "?",
    }
}

fn stages(v: &VectorRow) -> Vec<Span<'static>> {
    let mut out = Vec::new();
    match v.window {
        WindowKind::HardwareBypass | WindowKind::X86Implicit => {
            out.push(Span::styled("not translated (bypass)", style::dim()));
        }
        _ if v.stages.is_empty() && v.message.is_some() => {
            out.push(Span::styled("no stage maps it", style::error()));
        }
        _ => {}
    }
    for s in &v.stages {
        let label = super::chains::hop_label(s.hop)
            .split_whitespace()
            .next()
            .unwrap_or("");
        if s.ok {
            let to = s.to.map_or("?".into(), |t| format!("{t:#x}"));
            out.push(Span::styled(format!("{label} ✓ {to}  "), style::ok()));
        } else {
            let why = s.why.clone().unwrap_or_default();
            out.push(Span::styled(format!("{label} ✗ {why}  "), style::error()));
        }
    }
    if let Some(d) = &v.doorbell {
        out.push(Span::styled(
            format!("doorbell page {:#x}→{:#x}", d.iova, d.paddr),
            style::dim(),
        ));
    }
    out
}

fn device_lines(d: &DeviceDoorbells, selected: bool, out: &mut Vec<Line<'static>>) {
    let head = format!(
        "{} {} {}{}",
        if selected { "▶" } else { " " },
        d.node,
        d.device,
        if d.pid != 0 {
            format!(" pid {}", d.pid)
        } else {
            String::new()
        }
    );
    let doms: Vec<String> = d.domains.iter().map(|x| domain_label(*x)).collect();
    out.push(Line::from(vec![
        Span::styled(
            head,
            if selected {
                style::selected()
            } else {
                style::title()
            },
        ),
        Span::styled(
            format!(
                "  domains: {}",
                if doms.is_empty() {
                    "-".into()
                } else {
                    doms.join(", ")
                }
            ),
            style::dim(),
        ),
    ]));
    let windows: Vec<String> = d
        .windows
        .iter()
        .map(|w| format!("{} {:#x}-{:#x}", w.kind, w.start, w.end))
        .collect();
    out.push(Line::raw(format!(
        "    windows: {}",
        if windows.is_empty() {
            "none reported".into()
        } else {
            windows.join(", ")
        }
    )));
    for b in &d.doorbells {
        out.push(Line::raw(format!(
            "    doorbell mapped: iommu domain {:#x} iova {:#x} → {:#x}  #{}",
            b.domain, b.iova, b.paddr, b.ev
        )));
    }
    if d.vectors.is_empty() {
        out.push(Line::styled("    no vectors set up", style::dim()));
    } else {
        out.push(Line::styled(
            format!(
                "    {:<6}{:<4}{:<20}{:<12}{:<12}{:<8}{:<28} stages",
                "type", "vec", "address", "data", "window", "eventfd", "status"
            ),
            style::dim(),
        ));
    }
    for v in &d.vectors {
        let (w, ws) = window(v.window);
        let (addr, data) = match v.message {
            Some((a, dt)) => (format!("{a:#x}"), format!("{dt:#x}")),
            None => ("-".into(), "-".into()),
        };
        let fd = if v.eventfd < 0 {
            "none".into()
        } else {
            v.eventfd.to_string()
        };
        let mut spans = vec![
            Span::raw(format!(
                "    {:<6}{:<4}{addr:<20}{data:<12}",
                index(v.index),
                v.vector
            )),
            Span::styled(format!("{w:<12}"), ws),
            Span::styled(
                format!("{fd:<8}"),
                if v.eventfd < 0 {
                    style::warn()
                } else {
                    style::ok()
                },
            ),
            Span::styled(
                format!("{:<28} ", clip(&v.status, 28)),
                if v.ok { style::ok() } else { style::error() },
            ),
        ];
        spans.extend(stages(v));
        out.push(Line::from(spans));
    }
    for f in &d.findings {
        out.push(Line::styled(format!("    ! {f}"), style::error()));
    }
    out.push(Line::raw(""));
}

pub fn draw(p: &DoorbellsPane, frame: &mut Frame, area: Rect) {
    let block = Block::bordered()
        .title(format!(" doorbells: {} devices ", p.devices.len()))
        .title_style(style::title());
    let mut lines = Vec::new();
    if p.devices.is_empty() {
        lines.push(Line::styled(
            "no MSI vectors, doorbells or reserved windows seen yet",
            style::dim(),
        ));
    }
    for (i, d) in p.devices.iter().enumerate().skip(p.cursor) {
        device_lines(d, i == p.cursor, &mut lines);
    }
    frame.render_widget(Paragraph::new(lines).block(block), area);
}
