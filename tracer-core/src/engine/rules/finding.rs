//! What a rule reports ([`Finding`]) and where it reports it ([`Findings`],
//! the sink: capped per rule).

use std::collections::BTreeMap;

use serde::Serialize;

use super::RuleId;
use crate::engine::keys::EvId;
use crate::event::{Device, NodeId};

/// Findings kept per rule; more are counted in [`Findings::suppressed`].
pub const MAX_PER_RULE: usize = 256;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub rule: RuleId,
    pub message: String,
    pub node: Option<NodeId>,
    pub device: Option<Device>,
    /// The IOVA range it is about, `(first, last)` inclusive, when it is
    /// about one (a mapping, a window, an MSI address).
    pub address: Option<(u64, u64)>,
    /// Events behind it, in the order they matter.
    pub evidence: Vec<EvId>,
    /// When it was detected (the newest evidence event).
    pub at: EvId,
}

impl Finding {
    pub fn new(rule: RuleId, node: NodeId, message: String, evidence: Vec<EvId>) -> Self {
        let at = evidence.iter().copied().max().unwrap_or(0);
        Finding {
            rule,
            message,
            node: Some(node),
            device: None,
            address: None,
            evidence,
            at,
        }
    }

    pub fn device(mut self, d: Device) -> Self {
        self.device = Some(d);
        self
    }

    /// The IOVA range `[first, last]` (inclusive) the finding is about.
    pub fn address(mut self, first: u64, last: u64) -> Self {
        self.address = Some((first, last.max(first)));
        self
    }

    /// The single address `a` the finding is about.
    pub fn at_address(self, a: u64) -> Self {
        self.address(a, a)
    }

    /// The finding located at `span`, when there is one.
    pub(crate) fn with_span(self, span: Option<(u64, u64)>) -> Self {
        match span {
            Some((s, l)) => self.address(s, l),
            None => self,
        }
    }
}

/// The sink rules write into.
#[derive(Clone, Debug, Default)]
pub struct Findings {
    pub list: Vec<Finding>,
    per_rule: BTreeMap<RuleId, usize>,
    pub suppressed: u64,
}

impl Findings {
    pub fn push(&mut self, f: Finding) {
        let n = self.per_rule.entry(f.rule).or_default();
        if *n >= MAX_PER_RULE {
            self.suppressed += 1;
            return;
        }
        *n += 1;
        self.list.push(f);
    }

    /// The last `n` findings kept, newest first, to amend one (a later
    /// event of the same cause).
    pub(crate) fn recent_mut(&mut self, n: usize) -> impl Iterator<Item = &mut Finding> {
        self.list.iter_mut().rev().take(n)
    }
}

pub(crate) fn hex(a: u64) -> String {
    format!("{a:#x}")
}

pub(crate) fn range(s: u64, l: u64) -> String {
    format!("{s:#x}-{l:#x}")
}
