//! The Events pane: the filtered event list around the cursor.

use tracer_core::tracefile::node_name;

use crate::tui::{
    event_info::{self, Category},
    filter::Filter,
    model::{history::Row, FilterCache, Model},
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

fn passes(f: &Filter, r: &Row, nodes: &[tracer_core::event::NodeInfo]) -> bool {
    let search = f.search.as_deref().unwrap_or("");
    f.matches(&r.event, nodes)
        && (contains_nocase(&r.details, search) || contains_nocase(&r.event.comm.as_str(), search))
}

/// Brings the model's filter cache up to date; returns the matching ids.
fn filtered<'m>(model: &'m Model, f: &Filter) -> std::cell::Ref<'m, FilterCache> {
    {
        let mut c = model.filtered.borrow_mut();
        if c.filter != *f {
            *c = FilterCache {
                filter: f.clone(),
                ..FilterCache::default()
            };
        }
        let first = model.history.iter().next().map_or(0, |r| r.id);
        while c.ids.front().is_some_and(|id| *id < first) {
            c.ids.pop_front();
        }
        let from = c.scanned.map_or(0, |s| s + 1);
        let nodes = model.nodes();
        let mut newest = c.scanned;
        let start = usize::try_from(from.saturating_sub(first)).unwrap_or(usize::MAX);
        for r in model
            .history
            .iter()
            .skip(if from < first { 0 } else { start })
        {
            if passes(f, r, nodes) {
                c.ids.push_back(r.id);
            }
            newest = Some(r.id);
        }
        c.scanned = newest;
    }
    model.filtered.borrow()
}

pub fn build(model: &Model, ui: &UiState) -> EventsPane {
    let f = &ui.events.filter;
    let nodes = model.nodes();
    let upto = ui.events.paused_at.unwrap_or(u64::MAX);
    let kept = model.history.len();
    let rows_of = |ids: &mut dyn Iterator<Item = u64>| -> Vec<EventRow> {
        ids.filter_map(|id| model.history.get(id))
            .map(|r| EventRow::from_row(r, nodes))
            .collect()
    };
    // (matching, cursor position among them, window start, window rows).
    let (len, pos, from, rows) = if f.is_empty() {
        let first = model.history.iter().next().map_or(0, |r| r.id);
        let last = model
            .history
            .iter()
            .next_back()
            .map_or(0, |r| r.id)
            .min(upto);
        if kept == 0 || last < first {
            (0, 0, 0, Vec::new())
        } else {
            let len = usize::try_from(last - first + 1).unwrap_or(usize::MAX);
            let pos = match ui.events.cursor {
                None => len - 1,
                Some(id) => usize::try_from(id.clamp(first, last) - first).unwrap_or(0),
            };
            let (a, b) = super::window(len, pos, ui.body_height);
            let rows = rows_of(&mut (a..b).map(|i| first + i as u64));
            (len, pos, a, rows)
        }
    } else {
        let cache = filtered(model, f);
        let len = cache.ids.partition_point(|id| *id <= upto);
        if len == 0 {
            (0, 0, 0, Vec::new())
        } else {
            let pos = match ui.events.cursor {
                None => len - 1,
                Some(id) => cache.ids.partition_point(|x| *x <= id).clamp(1, len) - 1,
            };
            let (a, b) = super::window(len, pos, ui.body_height);
            let rows = rows_of(&mut cache.ids.range(a..b).copied());
            (len, pos, a, rows)
        }
    };
    if rows.is_empty() {
        return EventsPane {
            kept,
            ..EventsPane::default()
        };
    }
    EventsPane {
        cursor: Some(pos - from),
        matching: len,
        kept,
        position: pos,
        rows,
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
