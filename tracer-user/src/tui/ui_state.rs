//! Everything the user chose: tab, filters, cursors, overlays. Input
//! handlers mutate it; `draw` and the snapshot builder only read it.

use std::collections::BTreeSet;

use tracer_core::event::NodeId;

use super::filter::Filter;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Tab {
    #[default]
    Events,
    Chains,
    Doorbells,
    Findings,
    Health,
}

impl Tab {
    pub const ALL: [Tab; 5] = [
        Tab::Events,
        Tab::Chains,
        Tab::Doorbells,
        Tab::Findings,
        Tab::Health,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Tab::Events => "Events",
            Tab::Chains => "Chains",
            Tab::Doorbells => "Doorbells",
            Tab::Findings => "Findings",
            Tab::Health => "Health",
        }
    }

    pub fn index(self) -> usize {
        Tab::ALL.iter().position(|t| *t == self).unwrap_or(0)
    }
}

/// A row of the Chains tree, by identity (stays selected while rows move).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChainKey {
    Device {
        node: NodeId,
        pid: u32,
        device: tracer_core::event::Device,
    },
    /// A domain without a device (containers, unattached domains).
    Loose { node: NodeId },
    Domain {
        node: NodeId,
        domain: tracer_core::engine::snapshot::DomainRef,
    },
    Mapping {
        node: NodeId,
        domain: tracer_core::engine::snapshot::DomainRef,
        iova: u64,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PromptKind {
    /// `f`: the Events filter.
    Filter,
    /// `/`: search text.
    Search,
    /// `g`: replay jump-to-time (seconds from the start).
    JumpTime,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prompt {
    pub kind: PromptKind,
    pub text: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventsUi {
    pub filter: Filter,
    /// Paused: show nothing newer than this event id (ingestion goes on).
    pub paused_at: Option<u64>,
    /// Selected event id; `None` follows the newest.
    pub cursor: Option<u64>,
    /// Screen line of the cursor within the list (kept while scrolling).
    pub screen_row: usize,
    /// Evidence of the finding we jumped from.
    pub highlight: Vec<u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChainsUi {
    pub cursor: Option<ChainKey>,
    pub collapsed: BTreeSet<ChainKey>,
    pub screen_row: usize,
    /// Jump target (node, address) from a finding; the next snapshot
    /// resolves it to a mapping row, which then becomes the cursor.
    pub focus: Option<(NodeId, u64)>,
    /// History mode (`h`, replay): every mapping of the recording with its
    /// lifetime, instead of the live tree.
    pub history: bool,
    /// Index of the history cursor in the (filtered) lifetimes list.
    pub history_cursor: usize,
    /// History of this node only (`n` cycles through the nodes).
    pub history_node: Option<NodeId>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UiState {
    pub tab: Tab,
    pub help: bool,
    pub prompt: Option<Prompt>,
    /// One line of feedback (bad filter, jump target gone, ...).
    pub message: Option<String>,
    pub events: EventsUi,
    pub chains: ChainsUi,
    /// Selected device row in Doorbells.
    pub doorbells_cursor: usize,
    /// Selected finding (0 = newest).
    pub findings_cursor: usize,
    pub health_scroll: usize,
    /// Lines of the body (tab content) the terminal has; the builder sends
    /// enough rows to fill it.
    pub body_height: usize,
    /// The replay controls are shown (replay mode).
    pub replay: bool,
    /// `r` presses (live): the ingest side starts or stops recording once
    /// per press it has not seen yet.
    pub record_toggles: u64,
    /// Bumped on every change; a snapshot says which generation it was
    /// built for, so keys are never resolved against a stale one.
    pub generation: u64,
}

impl UiState {
    pub fn new(replay: bool) -> Self {
        UiState {
            replay,
            body_height: 40,
            ..UiState::default()
        }
    }
}
