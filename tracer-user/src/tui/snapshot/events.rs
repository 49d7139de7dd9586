//! The Events pane: the filtered event list around the cursor.

use tracer_core::tracefile::node_name;

use crate::tui::{
    event_info::{self, Category},
    model::{history::Row, Model},
    ui_state::UiState,
};

#[derive(Clone, Debug, PartialEq)]
pub struct EventRow {
    pub id: u64,
    pub ts_ns: u64,
    pub node: u16,
    pub node_name: String,
    pub pid: u32,
    pub tid: u32,
    pub comm: String,
    pub kind: &'static str,
    pub category: Category,
    pub failed: bool,
    pub details: String,
}

impl EventRow {
    pub fn from_row(r: &Row, nodes: &[tracer_core::event::NodeInfo]) -> Self {
        let e = &r.event;
        EventRow {
            id: r.id,
            ts_ns: e.ts_ns,
            node: e.node,
            node_name: node_name(nodes, e.node).into_owned(),
            pid: e.pid,
            tid: e.tid,
            comm: e.comm.as_str().into_owned(),
            kind: event_info::kind_name(&e.kind),
            category: event_info::category(&e.kind),
            failed: event_info::failed(&e.kind),
            details: r.details.clone(),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct EventsPane {
    /// Rows around the cursor, oldest first.
    pub rows: Vec<EventRow>,
    /// Index of the cursor in `rows`.
    pub cursor: Option<usize>,
    /// Events passing the filter, and kept in the history.
    pub matching: usize,
    pub kept: usize,
    /// Position of the cursor among the matching events (0 = oldest).
    pub position: usize,
}

/// ASCII case-insensitive substring test without allocating.
fn contains_nocase(hay: &str, needle: &str) -> bool {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    n.is_empty() || h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

pub fn build(model: &Model, ui: &UiState) -> EventsPane {
    let f = &ui.events.filter;
    let nodes = model.nodes();
    let upto = ui.events.paused_at.unwrap_or(u64::MAX);
    let search = f.search.as_deref().unwrap_or("");
    let plain = f.is_empty();
    let mut matching: Vec<&Row> = Vec::new();
    for r in model.history.iter() {
        if r.id > upto {
            break;
        }
        if plain
            || (f.matches(&r.event, nodes)
                && (contains_nocase(&r.details, search)
                    || contains_nocase(&r.event.comm.as_str(), search)))
        {
            matching.push(r);
        }
    }
    let kept = model.history.len();
    if matching.is_empty() {
        return EventsPane {
            kept,
            ..EventsPane::default()
        };
    }
    let pos = match ui.events.cursor {
        None => matching.len() - 1,
        Some(id) => matching.partition_point(|r| r.id <= id).saturating_sub(1),
    };
    let (from, to) = super::window(matching.len(), pos, ui.body_height);
    EventsPane {
        rows: matching[from..to]
            .iter()
            .map(|r| EventRow::from_row(r, nodes))
            .collect(),
        cursor: Some(pos - from),
        matching: matching.len(),
        kept,
        position: pos,
    }
}

#[cfg(test)]
mod tests {
    use super::contains_nocase;

    #[test]
    fn finds_text_ignoring_ascii_case() {
        assert!(contains_nocase("CPU 0/KVM", "kvm"));
        assert!(contains_nocase("x", ""));
        assert!(!contains_nocase("abc", "abcd"));
    }
}
