//! Report renderers: text for people, JSON for scripts (JUnit XML for CI
//! is in `junit.rs`).

use std::fmt::Write as _;

use super::report::{Report, Verdict};
use crate::engine::Severity;

fn verdict_name(v: Verdict) -> &'static str {
    match v {
        Verdict::Clean => "clean",
        Verdict::Findings => "findings",
        Verdict::Incomplete => "incomplete",
    }
}

impl Report {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    pub fn to_text(&self) -> String {
        let mut s = String::new();
        for f in &self.findings {
            let _ = write!(s, "{} {} {}", f.rule, f.severity, f.name);
            if let Some(n) = &f.node {
                let _ = write!(s, " node={n}");
            }
            if let Some(d) = &f.device {
                let _ = write!(s, " device={d}");
            }
            match f.address {
                Some((a, b)) if a == b => {
                    let _ = write!(s, " address={a:#x}");
                }
                Some((a, b)) => {
                    let _ = write!(s, " address={a:#x}-{b:#x}");
                }
                None => {}
            }
            let _ = writeln!(s, "\n  {}", f.message);
            if f.possibly_caused_by_missing_data {
                let _ = writeln!(s, "  (may have been caused by the missing data below)");
            }
            for e in &f.evidence_text {
                let _ = writeln!(s, "    {e}");
            }
        }
        let m = &self.summary;
        let errors = self
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count();
        let _ = writeln!(
            s,
            "{} finding(s) ({errors} error(s)); {} events from {} node(s); probes: {} attached, {} missing; drops: {}",
            self.findings.len(),
            m.events,
            m.nodes,
            m.probes.attached,
            m.probes.missing.len(),
            m.drops.total
        );
        for p in &m.probes.missing {
            let _ = writeln!(
                s,
                "  missing probe {} on {} ({:?}{}): {}",
                p.probe,
                p.node,
                p.status,
                if p.required { ", required" } else { "" },
                p.reason
            );
        }
        for n in &m.not_judged {
            let _ = writeln!(
                s,
                "  not judged: {} {} on {} (missing {}): {}",
                n.rule,
                n.name,
                n.node.as_deref().unwrap_or("?"),
                n.missing_probes.join(", "),
                n.reason
            );
        }
        for p in &m.pairings {
            let _ = writeln!(s, "  paired: {p}");
        }
        for i in &m.inputs {
            let _ = writeln!(s, "  read {}", i.summary_line());
        }
        for r in &m.incomplete_reasons {
            let _ = writeln!(s, "  incomplete: {r}");
        }
        if m.suppressed > 0 {
            let _ = writeln!(s, "  {} more finding(s) not listed", m.suppressed);
        }
        if m.not_judged.is_empty() {
            let _ = writeln!(s, "verdict: {}", verdict_name(m.verdict));
        } else {
            let mut ids: Vec<&str> = m.not_judged.iter().map(|n| n.rule.as_str()).collect();
            ids.dedup();
            let _ = writeln!(
                s,
                "verdict: {} (not judged: {})",
                verdict_name(m.verdict),
                ids.join(", ")
            );
        }
        s
    }
}
