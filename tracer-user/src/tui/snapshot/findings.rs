//! The Findings pane: rules fired, newest first, with the selected one's
//! explanation and evidence.

use tracer_core::{
    engine::{Finding, Severity},
    event::Device,
    tracefile::node_name,
};

use super::events::EventRow;
use crate::tui::{event_info, model::Model, ui_state::UiState};

#[derive(Clone, Debug, PartialEq)]
pub struct FindingRow {
    /// Index among all findings (0 = newest).
    pub index: usize,
    pub rule: &'static str,
    pub name: &'static str,
    pub severity: Severity,
    pub message: String,
    pub node: Option<String>,
    pub device: Option<Device>,
    pub at: u64,
    pub evidence: Vec<u64>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct FindingsPane {
    pub rows: Vec<FindingRow>,
    /// Index of the cursor in `rows`.
    pub cursor: Option<usize>,
    pub total: usize,
    pub suppressed: u64,
    /// The selected finding's rule explanation.
    pub explanation: &'static str,
    /// Its evidence events (`None`: no longer kept).
    pub evidence: Vec<(u64, Option<EventRow>)>,
    /// Its address range, from the evidence (for the jump to Chains).
    pub address: Option<(u16, u64, u64)>,
}

pub fn row(index: usize, f: &Finding, model: &Model) -> FindingRow {
    FindingRow {
        index,
        rule: f.rule.id(),
        name: f.rule.name(),
        severity: f.rule.severity(),
        message: f.message.clone(),
        node: f.node.map(|n| node_name(model.nodes(), n).into_owned()),
        device: f.device,
        at: f.at,
        evidence: f.evidence.clone(),
    }
}

/// Node and address range a finding is about: the first evidence event
/// with an address.
pub fn address_of(f: &Finding, model: &Model) -> Option<(u16, u64, u64)> {
    if let (Some(node), Some((s, l))) = (f.node, f.address) {
        return Some((node, s, l));
    }
    f.evidence.iter().rev().find_map(|id| {
        let r = model.row(*id)?;
        let (s, l) = event_info::iova_range(&r.event.kind)?;
        Some((r.event.node, s, l))
    })
}

pub fn build(model: &Model, ui: &UiState) -> FindingsPane {
    let all = &model.analysis.findings;
    let mut pane = FindingsPane {
        total: all.len(),
        suppressed: model.engine.suppressed(),
        ..FindingsPane::default()
    };
    if all.is_empty() {
        return pane;
    }
    let pos = ui.findings_cursor.min(all.len() - 1);
    let (from, to) = super::window(all.len(), pos, ui.body_height);
    pane.rows = (from..to).map(|i| row(i, &all[i], model)).collect();
    pane.cursor = Some(pos - from);
    let f = &all[pos];
    pane.explanation = f.rule.explanation();
    pane.evidence = f
        .evidence
        .iter()
        .map(|id| {
            (
                *id,
                model.row(*id).map(|r| EventRow::from_row(r, model.nodes())),
            )
        })
        .collect();
    pane.address = address_of(f, model);
    pane
}
