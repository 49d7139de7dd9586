//! Report renderers: text for people, JSON for scripts, JUnit XML for CI.

use std::fmt::Write as _;

use super::report::{Report, Verdict};
use crate::engine::{RuleId, Severity};

fn xml(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => o.push('?'),
            c => o.push(c),
        }
    }
    o
}

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

    /// One test case per rule that ran (failing with its findings, skipped
    /// when it could not be judged), plus a
    /// `trace-complete` case that errors when the check was incomplete.
    pub fn to_junit(&self) -> String {
        let rules: Vec<RuleId> = self
            .summary
            .rules
            .iter()
            .filter_map(|r| RuleId::parse(r))
            .collect();
        let failures = rules
            .iter()
            .filter(|r| self.findings.iter().any(|f| f.rule == r.id()))
            .count();
        let errors = usize::from(!self.summary.complete);
        let tests = rules.len() + 1;
        // Rules not judged anywhere and without findings are skipped cases.
        let skipped = rules
            .iter()
            .filter(|r| {
                self.summary.not_judged.iter().any(|n| n.rule == r.id())
                    && !self.findings.iter().any(|f| f.rule == r.id())
            })
            .count();
        let skipped = if skipped > 0 {
            format!(" skipped=\"{skipped}\"")
        } else {
            String::new()
        };
        let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            s,
            "<testsuites name=\"vfio-trace check\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\"{skipped}>"
        );
        let _ = writeln!(
            s,
            "  <testsuite name=\"vfio-trace check\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\"{skipped}>"
        );
        for r in rules {
            let _ = write!(
                s,
                "    <testcase classname=\"vfio-trace.rules\" name=\"{} {}\"",
                r.id(),
                r.name()
            );
            let mine: Vec<_> = self.findings.iter().filter(|f| f.rule == r.id()).collect();
            let unjudged: Vec<String> = self
                .summary
                .not_judged
                .iter()
                .filter(|n| n.rule == r.id())
                .map(|n| format!("{}: {}", n.node.as_deref().unwrap_or("?"), n.reason))
                .collect();
            if mine.is_empty() && !unjudged.is_empty() {
                let _ = writeln!(
                    s,
                    ">\n      <skipped message=\"not judged: {}\"/>\n    </testcase>",
                    xml(&unjudged.join("; "))
                );
                continue;
            }
            if mine.is_empty() {
                s.push_str("/>\n");
                continue;
            }
            s.push_str(">\n");
            for f in mine {
                let mut body = String::new();
                let _ = writeln!(body, "{}", f.message);
                if f.possibly_caused_by_missing_data {
                    let _ = writeln!(
                        body,
                        "(may have been caused by data missing from the trace)"
                    );
                }
                for e in &f.evidence_text {
                    let _ = writeln!(body, "  {e}");
                }
                let _ = writeln!(
                    s,
                    "      <failure type=\"{}\" message=\"{}\">{}</failure>",
                    f.severity,
                    xml(&f.message),
                    xml(&body)
                );
            }
            s.push_str("    </testcase>\n");
        }
        s.push_str("    <testcase classname=\"vfio-trace.health\" name=\"trace-complete\"");
        if self.summary.complete {
            s.push_str("/>\n");
        } else {
            let why = self.summary.incomplete_reasons.join("; ");
            let _ = writeln!(
                s,
                ">\n      <error type=\"incomplete\" message=\"{}\"/>\n    </testcase>",
                xml(&why)
            );
        }
        s.push_str("  </testsuite>\n</testsuites>\n");
        s
    }
}
