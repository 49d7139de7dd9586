//! The Chains pane: devices → domains → mappings as a tree, and the chain
//! IOVA→GPA→HVA→HPA of the selected mapping with the event behind each hop.

use std::collections::BTreeSet;

use tracer_core::engine::{
    chain::ChainStart,
    snapshot::{DomainRef, DomainView, NodeView},
    Chain, ChainQuery, ContainerKey, GuestDomainKey, IommuDomainKey,
};

use super::events::EventRow;
use crate::tui::{
    model::Model,
    ui_state::{ChainKey, UiState},
};

#[derive(Clone, Debug, PartialEq)]
pub enum ChainRowKind {
    Device {
        node: String,
        device: tracer_core::event::Device,
        pid: u32,
        domains: usize,
    },
    Loose {
        node: String,
    },
    Domain {
        domain: DomainRef,
        bypass: bool,
        count: usize,
    },
    Mapping {
        domain: DomainRef,
        iova: u64,
        last: u64,
        to: u64,
        flags: u16,
        ev: u64,
    },
    /// Mappings counted but not listed.
    More {
        hidden: usize,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct ChainRow {
    pub key: Option<ChainKey>,
    pub depth: u8,
    pub kind: ChainRowKind,
    pub collapsed: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SelectedChain {
    pub node: String,
    pub domain: DomainRef,
    pub iova: u64,
    pub last: u64,
    pub chains: Vec<Chain>,
    /// The event behind each hop that has one.
    pub events: Vec<(u64, EventRow)>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChainsPane {
    pub rows: Vec<ChainRow>,
    /// Index of the cursor in `rows`.
    pub cursor: Option<usize>,
    pub total_rows: usize,
    pub selected: Option<SelectedChain>,
    /// Node names by id, for the hop lines.
    pub node_names: Vec<String>,
    /// Events applied so far (kept in the UI's history): with no rows, tells
    /// "nothing mapped yet" from "everything unmapped by now".
    pub events_seen: usize,
    /// Whether any mapping is live now (in the whole tree, not only the
    /// rows on screen).
    pub any_mapping: bool,
    /// History mode: every mapping of the recording (instead of `rows`).
    pub history: Option<HistoryPane>,
}

/// One mapping of the history list.
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryRow {
    pub node: String,
    pub life: crate::tui::model::lifetimes::Lifetime,
    /// Mapped / unmapped, in ns from the start of the recording.
    pub mapped_at: i128,
    pub unmapped_at: Option<i128>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct HistoryPane {
    /// The rows around the cursor.
    pub rows: Vec<HistoryRow>,
    /// Index of the cursor in `rows`.
    pub cursor: usize,
    /// Mappings in the list, and dropped for its cap.
    pub total: usize,
    pub dropped: u64,
    /// The node the list is narrowed to (`n`), by name.
    pub node: Option<String>,
    /// Nodes in the recording (for `n` to cycle through).
    pub nodes: usize,
}

impl HistoryRow {
    /// Where a jump shows this mapping live with its chain: the middle of
    /// its life (a guest MAP's host side is mapped just after it), or
    /// 1 ms after the MAP when it was never unmapped; ns from the start.
    pub fn jump_ns(&self) -> i128 {
        match self.unmapped_at {
            Some(u) => self.mapped_at + (u - self.mapped_at) / 2,
            None => self.mapped_at + 1_000_000,
        }
    }
}

fn history(model: &Model, ui: &UiState, start_ns: i128) -> HistoryPane {
    let l = &model.lifetimes;
    let only = ui.chains.history_node;
    let listed: Vec<usize> = match only {
        None => (0..l.len()).collect(),
        Some(n) => (0..l.len())
            .filter(|&i| l.get(i).is_some_and(|x| x.node == n))
            .collect(),
    };
    let total = listed.len();
    let pos = ui.chains.history_cursor.min(total.saturating_sub(1));
    let (from, to) = super::window(total, pos, ui.body_height);
    let rows = listed[from..to]
        .iter()
        .filter_map(|&i| l.get(i))
        .map(|life| HistoryRow {
            node: tracer_core::tracefile::node_name(model.nodes(), life.node).into_owned(),
            life: *life,
            mapped_at: life.map_ns - start_ns,
            unmapped_at: life.unmap.map(|(_, t)| t - start_ns),
        })
        .collect();
    HistoryPane {
        rows,
        cursor: pos - from,
        total,
        dropped: l.dropped,
        node: only.map(|n| tracer_core::tracefile::node_name(model.nodes(), n).into_owned()),
        nodes: model.nodes().len(),
    }
}

fn domain_rows(
    out: &mut Vec<ChainRow>,
    node: &NodeView,
    d: &DomainView,
    depth: u8,
    collapsed: &BTreeSet<ChainKey>,
) {
    let key = ChainKey::Domain {
        node: node.node,
        domain: d.id,
    };
    let closed = collapsed.contains(&key);
    out.push(ChainRow {
        key: Some(key),
        depth,
        kind: ChainRowKind::Domain {
            domain: d.id,
            bypass: d.bypass,
            count: d.count,
        },
        collapsed: closed,
    });
    if closed {
        return;
    }
    for m in &d.mappings {
        out.push(ChainRow {
            key: Some(ChainKey::Mapping {
                node: node.node,
                domain: d.id,
                iova: m.iova,
            }),
            depth: depth + 1,
            kind: ChainRowKind::Mapping {
                domain: d.id,
                iova: m.iova,
                last: m.last,
                to: m.to,
                flags: m.flags,
                ev: m.ev,
            },
            collapsed: false,
        });
    }
    if d.count > d.mappings.len() {
        out.push(ChainRow {
            key: None,
            depth: depth + 1,
            kind: ChainRowKind::More {
                hidden: d.count - d.mappings.len(),
            },
            collapsed: false,
        });
    }
}

/// The flattened tree, honouring collapsed rows.
pub fn rows(model: &Model, collapsed: &BTreeSet<ChainKey>) -> Vec<ChainRow> {
    let mut out = Vec::new();
    for n in &model.analysis.nodes {
        let mut used = BTreeSet::new();
        for dev in n.devices.iter().filter(|d| !d.domains.is_empty()) {
            let key = ChainKey::Device {
                node: n.node,
                pid: dev.pid,
                device: dev.device,
            };
            let closed = collapsed.contains(&key);
            out.push(ChainRow {
                key: Some(key),
                depth: 0,
                kind: ChainRowKind::Device {
                    node: n.name.clone(),
                    device: dev.device,
                    pid: dev.pid,
                    domains: dev.domains.len(),
                },
                collapsed: closed,
            });
            for r in &dev.domains {
                used.insert(*r);
                if closed {
                    continue;
                }
                if let Some(d) = n.domains.iter().find(|d| d.id == *r) {
                    domain_rows(&mut out, n, d, 1, collapsed);
                }
            }
        }
        let loose: Vec<&DomainView> = n.domains.iter().filter(|d| !used.contains(&d.id)).collect();
        if loose.is_empty() {
            continue;
        }
        let key = ChainKey::Loose { node: n.node };
        let closed = collapsed.contains(&key);
        out.push(ChainRow {
            key: Some(key),
            depth: 0,
            kind: ChainRowKind::Loose {
                node: n.name.clone(),
            },
            collapsed: closed,
        });
        if !closed {
            for d in loose {
                domain_rows(&mut out, n, d, 1, collapsed);
            }
        }
    }
    out
}

fn start(node: u16, d: DomainRef) -> ChainStart {
    match d {
        DomainRef::Guest(domain) => ChainStart::GuestDomain(GuestDomainKey { node, domain }),
        DomainRef::Iommu(domain) => ChainStart::IommuDomain(IommuDomainKey { node, domain }),
        DomainRef::Container { container, ioas } => ChainStart::Container(ContainerKey {
            node,
            container,
            ioas,
        }),
    }
}

/// The chain of one mapping row.
pub fn selected(model: &Model, row: &ChainRow) -> Option<SelectedChain> {
    let (
        Some(ChainKey::Mapping { node, .. }),
        ChainRowKind::Mapping {
            domain, iova, last, ..
        },
    ) = (row.key, &row.kind)
    else {
        return None;
    };
    let size = last.wrapping_sub(*iova).wrapping_add(1).max(1);
    let chains = model.engine.chain(&ChainQuery {
        start: start(node, *domain),
        iova: *iova,
        size,
    });
    let mut events = Vec::new();
    for h in chains.iter().flat_map(|c| c.hops.iter()) {
        if let Some(id) = h.ev {
            if !events.iter().any(|(e, _)| *e == id) {
                if let Some(r) = model.row(id) {
                    events.push((id, EventRow::from_row(r, model.nodes())));
                }
            }
        }
    }
    Some(SelectedChain {
        node: tracer_core::tracefile::node_name(model.nodes(), node).into_owned(),
        domain: *domain,
        iova: *iova,
        last: *last,
        chains,
        events,
    })
}

/// Index of the mapping row holding `addr` on `node` (guest domains first:
/// their chains cover every layer).
pub fn find_address(rows: &[ChainRow], node: u16, addr: u64) -> Option<usize> {
    let hit = |r: &ChainRow, guest: bool| match (r.key, &r.kind) {
        (
            Some(ChainKey::Mapping { node: n, .. }),
            ChainRowKind::Mapping {
                domain, iova, last, ..
            },
        ) => {
            n == node
                && *iova <= addr
                && addr <= *last
                && matches!(domain, DomainRef::Guest(_)) == guest
        }
        _ => false,
    };
    rows.iter()
        .position(|r| hit(r, true))
        .or_else(|| rows.iter().position(|r| hit(r, false)))
}

/// `replay_start_ns`: the recording's first event (aligned), in a replay.
pub fn build(model: &Model, ui: &UiState, replay_start_ns: Option<i128>) -> ChainsPane {
    let node_names = model.nodes().iter().map(|n| n.name.clone()).collect();
    let events_seen = model.history.len();
    if let (true, Some(start)) = (ui.chains.history, replay_start_ns) {
        return ChainsPane {
            node_names,
            events_seen,
            history: Some(history(model, ui, start)),
            ..ChainsPane::default()
        };
    }
    let all = rows(model, &ui.chains.collapsed);
    if all.is_empty() {
        return ChainsPane {
            node_names,
            events_seen,
            ..ChainsPane::default()
        };
    }
    let pos = match (ui.chains.focus, ui.chains.cursor) {
        (Some((node, addr)), _) => find_address(&all, node, addr).unwrap_or(0),
        (None, Some(key)) => all.iter().position(|r| r.key == Some(key)).unwrap_or(0),
        // Start on the first mapping: its chain is what the view is for.
        (None, None) => all
            .iter()
            .position(|r| matches!(r.kind, ChainRowKind::Mapping { .. }))
            .unwrap_or(0),
    };
    let selected = selected(model, &all[pos]);
    let any_mapping = all.iter().any(|r| {
        matches!(
            r.kind,
            ChainRowKind::Mapping { .. } | ChainRowKind::More { .. }
        )
    });
    let (from, to) = super::window(all.len(), pos, ui.body_height);
    ChainsPane {
        total_rows: all.len(),
        rows: all[from..to].to_vec(),
        cursor: Some(pos - from),
        selected,
        node_names,
        events_seen,
        any_mapping,
        history: None,
    }
}
