//! The Health pane: probes, drops, per-node event rates.

use tracer_core::{
    event::{Drops, ProbeState},
    tracefile::node_name,
};

use crate::tui::model::Model;

#[derive(Clone, Debug, PartialEq)]
pub struct ProbeLine {
    pub node: String,
    pub probe: String,
    pub attach: String,
    pub state: ProbeState,
    pub required: bool,
    pub reason: String,
    pub hits: u64,
    /// Hits since the previous status report.
    pub new_hits: u64,
    pub ever_attached: bool,
}

/// One input file of a replay: its summary and, when incomplete, why.
#[derive(Clone, Debug, PartialEq)]
pub struct InputLine {
    pub summary: String,
    pub complete: bool,
    pub reasons: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NodeRate {
    pub node: String,
    /// Events per second, oldest first.
    pub series: Vec<u64>,
    pub last: u64,
    pub drops: Option<Drops>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct HealthPane {
    /// Replay: what was read from each input file (complete or not).
    pub inputs: Vec<InputLine>,
    pub probes: Vec<ProbeLine>,
    pub nodes: Vec<NodeRate>,
}

pub fn build(model: &Model) -> HealthPane {
    let nodes = model.nodes();
    let probes = model
        .health
        .probes
        .iter()
        .map(|((n, name), (status, ever))| ProbeLine {
            node: node_name(nodes, *n).into_owned(),
            probe: name.clone(),
            attach: status.attach.clone(),
            state: status.status,
            required: status.required,
            reason: status.reason.clone(),
            hits: status.hits,
            new_hits: model.health.new_hits(*n, name),
            ever_attached: *ever,
        })
        .collect();
    let mut ids: Vec<u16> = model.rates.nodes().collect();
    ids.extend(model.health.drops.keys().copied());
    ids.sort_unstable();
    ids.dedup();
    let nodes = ids
        .into_iter()
        .map(|n| NodeRate {
            node: node_name(nodes, n).into_owned(),
            series: model.rates.series(n),
            last: model.rates.last_rate(n),
            drops: model.health.drops.get(&n).cloned(),
        })
        .collect();
    HealthPane {
        inputs: Vec::new(),
        probes,
        nodes,
    }
}
