//! The header line (recording, nodes, kernels, uptime, rate, drops,
//! findings) and the tab bar.

use ratatui::{
    layout::Rect,
    style::{Color, Style},
    text::{Line, Span},
    widgets::Paragraph,
    Frame,
};

use super::style;
use crate::tui::{
    snapshot::{Header, Snapshot},
    ui_state::{Tab, UiState},
};

pub fn draw(h: &Header, _ui: &UiState, frame: &mut Frame, area: Rect) {
    let mut spans = vec![
        Span::styled(
            " vfio-trace ",
            style::title().fg(Color::Black).bg(Color::Cyan),
        ),
        Span::raw(if h.replay { " replay " } else { " live " }),
    ];
    if let Some(r) = &h.recording {
        spans.push(Span::styled(
            format!("● REC {} {}", r.file, r.events),
            style::error(),
        ));
        spans.push(Span::raw(" │ "));
    } else if let Some((note, failed)) = &h.record_note {
        spans.push(Span::styled(
            note.clone(),
            if *failed {
                style::error()
            } else {
                style::dim()
            },
        ));
        spans.push(Span::raw(" │ "));
    }
    if let Some(why) = &h.incomplete {
        spans.push(Span::styled(why.clone(), style::error()));
        spans.push(Span::raw(" │ "));
    }
    for (i, n) in h.nodes.iter().enumerate() {
        let id = u16::try_from(i).unwrap_or(u16::MAX);
        spans.push(Span::styled(n.name.clone(), style::node(id)));
        spans.push(Span::styled(format!(" ({}) ", n.kernel), style::dim()));
    }
    spans.push(Span::raw(format!(
        "│ up {} │ {} ev/s │ {} events │ ",
        style::duration(h.uptime_ns),
        h.rate,
        h.events
    )));
    let drops = format!("drops {}", h.drops);
    spans.push(if h.drops > 0 {
        Span::styled(drops, style::error())
    } else {
        Span::raw(drops)
    });
    spans.push(Span::raw(" │ "));
    let findings = format!("findings {}", h.findings);
    spans.push(if h.findings > 0 {
        Span::styled(findings, style::error())
    } else {
        Span::styled(findings, style::ok())
    });
    if h.probes_up + h.probes_down > 0 {
        spans.push(Span::raw(" │ probes "));
        let s = format!("{}/{}", h.probes_up, h.probes_up + h.probes_down);
        spans.push(if h.probes_down > 0 {
            Span::styled(s, style::warn())
        } else {
            Span::raw(s)
        });
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

pub fn draw_tabs(snap: &Snapshot, ui: &UiState, frame: &mut Frame, area: Rect) {
    let mut spans = Vec::new();
    for (i, t) in Tab::ALL.iter().enumerate() {
        let mut label = format!(" {} {} ", i + 1, t.title());
        if *t == Tab::Findings && snap.header.findings > 0 {
            label = format!(" {} {} ({}) ", i + 1, t.title(), snap.header.findings);
        }
        let st = if *t == ui.tab {
            style::selected().add_modifier(ratatui::style::Modifier::BOLD)
        } else if (*t == Tab::Findings && snap.header.findings > 0)
            || (*t == Tab::Health && (snap.header.drops > 0 || snap.header.incomplete.is_some()))
        {
            style::error()
        } else {
            Style::new()
        };
        spans.push(Span::styled(label, st));
        spans.push(Span::raw(" "));
    }
    if ui.events.paused_at.is_some() {
        spans.push(Span::styled(" PAUSED ", style::warn().bg(Color::DarkGray)));
        spans.push(Span::raw(" "));
    }
    let f = ui.events.filter.to_string();
    if !f.is_empty() {
        spans.push(Span::styled(format!("filter: {f} "), style::warn()));
    }
    if let Some(s) = &ui.events.filter.search {
        spans.push(Span::styled(format!("/{s} "), style::warn()));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}
