//! The check report: findings with their evidence events, and a summary of
//! how complete the trace was.

use serde::Serialize;

use super::coverage::Coverage;
use crate::engine::rules::needs::{self, NotJudged, ProbeView, Reported};
use crate::engine::{Engine, Finding, RuleId, Severity};
use crate::event::{Event, EventKind, NodeId, NodeInfo, ProbeState, ResvType};
use crate::export::jsonl::to_jsonl_line;
use crate::export::text::format_event;
use crate::tracefile::{aligned_ns, node_name, InputReport};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Clean,
    Findings,
    Incomplete,
}

impl Verdict {
    /// The one place the verdict is decided; every output (text, JSON,
    /// JUnit, the exit code) renders this. Findings win (they are real
    /// whatever else is missing); otherwise anything not seen makes it
    /// incomplete; clean only when every event was read and nothing fired.
    pub fn decide(findings: usize, incomplete_reasons: &[String]) -> Verdict {
        if findings > 0 {
            Verdict::Findings
        } else if !incomplete_reasons.is_empty() {
            Verdict::Incomplete
        } else {
            Verdict::Clean
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReportFinding {
    /// `VT001`…
    pub rule: String,
    pub name: String,
    pub severity: Severity,
    pub message: String,
    /// Node name.
    pub node: Option<String>,
    pub device: Option<String>,
    /// The IOVA range the finding is about, `[first, last]` inclusive.
    pub address: Option<(u64, u64)>,
    /// Evidence events as JSON Lines objects (the event contract).
    pub evidence: Vec<serde_json::Value>,
    /// Raised at or after a gap in the data (a damaged or cut-short file, a
    /// lost stream, ring drops), less a 2 s margin: the missing events
    /// (an UNMAP, a MAP_DMA) may be what caused it.
    pub possibly_caused_by_missing_data: bool,
    /// The same events as text lines.
    #[serde(skip)]
    pub evidence_text: Vec<String>,
}

impl ReportFinding {
    /// The report's form of `f`: `evidence` are its evidence events found
    /// (those not found are left out), `suspect` whether missing data may
    /// have caused it.
    pub fn new(f: Finding, evidence: &[&Event], nodes: &[NodeInfo], suspect: bool) -> Self {
        ReportFinding {
            rule: f.rule.id().to_string(),
            name: f.rule.name().to_string(),
            severity: f.rule.severity(),
            message: f.message,
            node: f.node.map(|n| node_name(nodes, n).into_owned()),
            device: f.device.map(|d| d.to_string()),
            address: f.address,
            possibly_caused_by_missing_data: suspect,
            evidence: evidence
                .iter()
                .map(|e| {
                    serde_json::from_str(&to_jsonl_line(e, nodes))
                        .unwrap_or(serde_json::Value::Null)
                })
                .collect(),
            evidence_text: evidence.iter().map(|e| format_event(e, nodes)).collect(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MissingProbe {
    pub node: String,
    pub probe: String,
    pub attach: String,
    pub status: ProbeState,
    pub required: bool,
    pub reason: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ProbeSummary {
    /// Probes that attached at some point.
    pub attached: usize,
    /// Probes that never attached.
    pub missing: Vec<MissingProbe>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DropsSummary {
    /// Sum over nodes of the latest cumulative counters.
    pub total: u64,
    pub ring_full: u64,
    pub pending_full: u64,
    pub read_failed: u64,
    pub undecodable: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub events: u64,
    pub nodes: usize,
    pub node_names: Vec<String>,
    pub probes: ProbeSummary,
    pub drops: DropsSummary,
    /// Rules that ran (after `--rule` / `--allow`).
    pub rules: Vec<String>,
    /// Rules that ran but could not be judged on a node, because a kernel
    /// hook they need was missing there (one entry per rule and node).
    pub not_judged: Vec<NotJudged>,
    /// False when `not_judged` is not empty: a clean verdict then covers
    /// only the rules that were judged.
    pub all_rules_judged: bool,
    /// Findings not kept beyond the per-rule cap.
    pub suppressed: u64,
    /// Guest domains paired with the host containers serving them.
    pub pairings: Vec<super::ReportPairing>,
    /// What was read from each input file: bytes, events, end marker,
    /// damage (empty for a live check).
    pub inputs: Vec<InputReport>,
    /// False when anything was not seen: a damaged or cut-short input, a
    /// lost stream, drops, a missing required probe, no events;
    /// `incomplete_reasons` says why.
    pub complete: bool,
    pub incomplete_reasons: Vec<String>,
    pub verdict: Verdict,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    pub findings: Vec<ReportFinding>,
    pub summary: Summary,
}

impl Report {
    pub(super) fn build(
        engine: &Engine,
        events: &[&Event],
        nodes: &[NodeInfo],
        findings: Vec<Finding>,
        rules: Vec<RuleId>,
        coverage: &Coverage,
        require_all_rules: bool,
    ) -> Report {
        let suspect_from = coverage.suspect_from(events, nodes);
        let findings: Vec<ReportFinding> = findings
            .into_iter()
            .map(|f| {
                let evs: Vec<&Event> = f
                    .evidence
                    .iter()
                    .filter_map(|&id| {
                        usize::try_from(id)
                            .ok()
                            .and_then(|i| events.get(i).copied())
                    })
                    .collect();
                let suspect = suspect_from.is_some_and(|from| {
                    let at = usize::try_from(f.at).ok().and_then(|i| events.get(i));
                    at.is_none_or(|e| aligned_ns(e, nodes) >= from)
                });
                ReportFinding::new(f, &evs, nodes, suspect)
            })
            .collect();
        let health = engine.health();
        let mut probes = ProbeSummary::default();
        for ((node, _), (st, ever)) in &health.probes {
            if *ever {
                probes.attached += 1;
            } else {
                probes.missing.push(MissingProbe {
                    node: node_name(nodes, *node).into_owned(),
                    probe: st.probe.clone(),
                    attach: st.attach.clone(),
                    status: st.status,
                    required: st.required,
                    reason: st.reason.clone(),
                });
            }
        }
        let mut drops = DropsSummary::default();
        for d in health.drops.values() {
            drops.ring_full += d.ring_full;
            drops.pending_full += d.pending_full;
            drops.read_failed += d.read_failed;
            drops.undecodable += d.undecodable;
            drops.total += d.total();
        }
        let mut reasons = coverage.reasons();
        reasons.extend(
            super::coverage::stream_gaps(events, nodes)
                .into_iter()
                .map(|(why, _)| why),
        );
        if engine.events_seen() == 0 {
            reasons.push("no events".to_string());
        }
        if drops.total > 0 {
            reasons.push(format!("{} records dropped or damaged", drops.total));
        }
        for m in probes.missing.iter().filter(|m| m.required) {
            reasons.push(format!(
                "required probe {} on {} never attached ({:?})",
                m.probe, m.node, m.status
            ));
        }
        let not_judged = not_judged(engine, events, nodes, &rules);
        if require_all_rules {
            reasons.extend(not_judged.iter().map(|n| {
                format!(
                    "rule {} not judged on {} (--require-all-rules): {}",
                    n.rule,
                    n.node.as_deref().unwrap_or("?"),
                    n.reason
                )
            }));
        }
        let verdict = Verdict::decide(findings.len(), &reasons);
        let summary = Summary {
            events: engine.events_seen(),
            nodes: nodes.len(),
            node_names: nodes.iter().map(|n| n.name.clone()).collect(),
            probes,
            drops,
            rules: rules.iter().map(|r| r.id().to_string()).collect(),
            all_rules_judged: not_judged.is_empty(),
            not_judged,
            suppressed: engine.suppressed(),
            pairings: super::pairings::report_pairings(&engine.pairings(), nodes),
            inputs: coverage.inputs.clone(),
            complete: reasons.is_empty(),
            incomplete_reasons: reasons,
            verdict,
        };
        Report { findings, summary }
    }

    /// 0 clean, 1 findings, 2 could not check / incomplete.
    pub fn exit_code(&self) -> i32 {
        match self.summary.verdict {
            Verdict::Clean => 0,
            Verdict::Findings => 1,
            Verdict::Incomplete => 2,
        }
    }
}

/// The rules that ran but could not be judged, per node that reported its
/// probes (a node without probe statuses, e.g. synthetic events, says
/// nothing about its hooks).
fn not_judged(
    engine: &Engine,
    events: &[&Event],
    nodes: &[NodeInfo],
    rules: &[RuleId],
) -> Vec<NotJudged> {
    let health = engine.health();
    let mut node_ids: Vec<NodeId> = health.probes.keys().map(|(n, _)| *n).collect();
    node_ids.dedup();
    let mut out = Vec::new();
    for node in node_ids {
        let sw_msi = events.iter().any(|e| {
            e.node == node
                && matches!(&e.kind, EventKind::ResvRegion(r) if r.rtype == ResvType::SwMsi)
        });
        let lookup = |p: &str| {
            health
                .probes
                .get(&(node, p.to_string()))
                .map(|(st, ever)| ProbeView {
                    status: st.status,
                    ever_attached: *ever,
                    attach: &st.attach,
                    reason: &st.reason,
                })
        };
        let reported = Reported {
            sw_msi_window: Some(sw_msi),
            kernel_probes: health
                .probes
                .iter()
                .any(|((n, _), (st, _))| *n == node && needs::is_kernel_function(&st.attach)),
        };
        let name = node_name(nodes, node);
        out.extend(
            rules
                .iter()
                .filter_map(|r| needs::judge(*r, Some(&name), lookup, reported)),
        );
    }
    out
}
