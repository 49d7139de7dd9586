//! `vfio-trace check`: replay events through the [`crate::engine`] and turn
//! its findings and the trace's health into a [`Report`].
//!
//! API for the CLI glue:
//!
//! ```
//! use tracer_core::check::{self, CheckOptions};
//! # let events = vec![]; let nodes = vec![];
//! let opts = CheckOptions {
//!     // --rule VT001 --rule chain-break (empty: every rule)
//!     rules: CheckOptions::parse_rules(&["VT001", "chain-break"])?,
//!     // --allow VT008
//!     allow: CheckOptions::parse_rules(&["VT008"])?,
//!     // --pair l2:00:03.0=0000:00:02.0
//!     forced_pairs: CheckOptions::parse_pairs(&["l2:00:03.0=0000:00:02.0"])?,
//!     ..Default::default()
//! };
//! let report = check::run(&events, &nodes, &opts);
//! print!("{}", report.to_text()); // or to_json() / to_junit()
//! let code = report.exit_code(); // 0 clean, 1 findings, 2 incomplete
//! # assert_eq!(code, 2); // no events: could not check
//! # Ok::<(), check::CheckError>(())
//! ```
//!
//! Events may come in any order: `run` sorts them by wall-clock time
//! (`ts_ns + clock_offset_ns` of their node, ties in input order) before
//! replaying. Evidence events are rendered in the JSON Lines event contract
//! (`export::jsonl`).
//!
//! Verdict ([`Verdict::decide`], the one place it is decided): any finding
//! (after `--rule` / `--allow`) → `findings` (exit 1); otherwise anything
//! not seen — an input file damaged or cut short ([`Coverage`]), a live
//! stream lost, ring drops, a required probe that never attached, no events
//! at all → `incomplete` (exit 2); otherwise `clean` (exit 0). Rules that
//! ran but could not be judged (a kernel hook they need was missing on a
//! node: `summary.not_judged`) leave a clean verdict clean but say so
//! (`all_rules_judged: false`, "verdict: clean (not judged: VT010)");
//! with `require_all_rules` they are incomplete reasons. A report with
//! findings still says whether it was complete (`summary.complete`), and
//! marks the findings the missing data may have caused.

mod coverage;
mod junit;
mod pairings;
mod render;
mod report;

pub use coverage::{Coverage, GAP_MARGIN_NS};
pub use pairings::ReportPairing;
pub use report::{
    DropsSummary, MissingProbe, ProbeSummary, Report, ReportFinding, Summary, Verdict,
};

use crate::engine::{Engine, EngineConfig, ForcedPair, PairParseError, RuleId};
use crate::event::{Event, NodeInfo};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    #[error("unknown rule {0:?} (expected an id like VT001 or a rule name)")]
    UnknownRule(String),
    #[error(transparent)]
    BadPair(#[from] PairParseError),
}

#[derive(Clone, Debug, Default)]
pub struct CheckOptions {
    /// Rules to run; empty runs all.
    pub rules: Vec<RuleId>,
    /// Rules whose findings are dropped.
    pub allow: Vec<RuleId>,
    pub forced_pairs: Vec<ForcedPair>,
    /// Guest→host propagation window; `None` keeps the engine's default (1 s).
    pub join_window_ns: Option<u64>,
    /// `--require-all-rules`: a rule that could not be judged (a kernel
    /// hook it needs was missing) makes the verdict incomplete (exit 2)
    /// instead of a clean verdict that lists it as not judged.
    pub require_all_rules: bool,
}

impl CheckOptions {
    pub fn parse_rules<S: AsRef<str>>(list: &[S]) -> Result<Vec<RuleId>, CheckError> {
        list.iter()
            .flat_map(|s| s.as_ref().split(','))
            .filter(|s| !s.trim().is_empty())
            .map(|s| RuleId::parse(s.trim()).ok_or_else(|| CheckError::UnknownRule(s.to_string())))
            .collect()
    }

    pub fn parse_pairs<S: AsRef<str>>(list: &[S]) -> Result<Vec<ForcedPair>, CheckError> {
        Ok(list
            .iter()
            .map(|s| s.as_ref().parse())
            .collect::<Result<_, PairParseError>>()?)
    }

    fn selected(&self, r: RuleId) -> bool {
        (self.rules.is_empty() || self.rules.contains(&r)) && !self.allow.contains(&r)
    }
}

/// Replays `events`, all there is (nothing missing), and builds the report.
pub fn run(events: &[Event], nodes: &[NodeInfo], opts: &CheckOptions) -> Report {
    run_covered(events, nodes, opts, &Coverage::default())
}

/// Replays `events`, which cover what `coverage` says (damaged files, lost
/// streams make the verdict incomplete), and builds the report.
pub fn run_covered(
    events: &[Event],
    nodes: &[NodeInfo],
    opts: &CheckOptions,
    coverage: &Coverage,
) -> Report {
    let mut cfg = EngineConfig {
        forced_pairs: opts.forced_pairs.clone(),
        ..Default::default()
    };
    if let Some(w) = opts.join_window_ns {
        cfg.join_window_ns = w;
    }
    let mut engine = Engine::new(nodes.to_vec(), cfg);
    let wall = |e: &Event| crate::event::wall_ns_u64(nodes, e.node, e.ts_ns);
    let mut order: Vec<usize> = (0..events.len()).collect();
    order.sort_by_key(|&i| (wall(&events[i]), i));
    let sorted: Vec<&Event> = order.iter().map(|&i| &events[i]).collect();
    engine.apply_all(&sorted);
    let findings = engine
        .findings()
        .into_iter()
        .filter(|f| opts.selected(f.rule))
        .collect::<Vec<_>>();
    let rules_run: Vec<RuleId> = RuleId::ALL
        .into_iter()
        .filter(|r| opts.selected(*r))
        .collect();
    Report::build(
        &engine,
        &sorted,
        nodes,
        findings,
        rules_run,
        coverage,
        opts.require_all_rules,
    )
}
