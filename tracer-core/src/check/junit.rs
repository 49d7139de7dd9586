//! The JUnit XML report for CI, written with quick-xml's writer (which
//! escapes every attribute and text): one test case per rule that ran,
//! failing with its findings (skipped when no node could judge it), plus a `trace-complete` case that errors when
//! the check was incomplete.

use std::io;

use quick_xml::{
    events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event},
    Writer,
};

use super::report::{Report, ReportFinding};
use crate::engine::RuleId;

const SUITE: &str = "vfio-trace check";

/// XML 1.0 cannot carry control characters other than tab, newline and
/// carriage return, not even as character references: each becomes `?`.
fn xml_chars(s: &str) -> String {
    s.chars()
        .map(|c| {
            if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') {
                '?'
            } else {
                c
            }
        })
        .collect()
}

/// A finding's failure body: its message, the missing-data caveat, the
/// evidence, a line each.
fn failure_body(f: &ReportFinding) -> String {
    let mut body = format!("{}\n", f.message);
    if f.possibly_caused_by_missing_data {
        body.push_str("(may have been caused by data missing from the trace)\n");
    }
    for e in &f.evidence_text {
        body.push_str(&format!("  {e}\n"));
    }
    body
}

impl Report {
    /// A rule some node could not judge and that raised no finding: a
    /// skipped test case.
    fn not_judged_only(&self, r: &RuleId) -> bool {
        self.summary.not_judged.iter().any(|n| n.rule == r.id())
            && !self.findings.iter().any(|f| f.rule == r.id())
    }

    /// The report as JUnit XML (see the module docs).
    pub fn to_junit(&self) -> String {
        let mut out = Vec::new();
        // Writing to a Vec cannot fail.
        let _ = self.write_junit(&mut out);
        out.push(b'\n');
        String::from_utf8(out).unwrap_or_default()
    }

    fn write_junit(&self, out: &mut Vec<u8>) -> io::Result<()> {
        let rules: Vec<RuleId> = self
            .summary
            .rules
            .iter()
            .filter_map(|r| RuleId::parse(r))
            .collect();
        let failures = rules
            .iter()
            .filter(|r| self.findings.iter().any(|f| f.rule == r.id()))
            .count()
            .to_string();
        let errors = usize::from(!self.summary.complete).to_string();
        let tests = (rules.len() + 1).to_string();
        // Rules not judged anywhere and without findings are skipped cases;
        // the attribute appears only when there are some.
        let skipped = rules
            .iter()
            .filter(|r| self.not_judged_only(r))
            .count()
            .to_string();
        let mut counts = vec![
            ("name", SUITE),
            ("tests", tests.as_str()),
            ("failures", failures.as_str()),
            ("errors", errors.as_str()),
        ];
        if skipped != "0" {
            counts.push(("skipped", skipped.as_str()));
        }

        let mut w = Writer::new_with_indent(out, b' ', 2);
        w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
        w.write_event(Event::Start(
            BytesStart::new("testsuites").with_attributes(counts.iter().copied()),
        ))?;
        w.write_event(Event::Start(
            BytesStart::new("testsuite").with_attributes(counts.iter().copied()),
        ))?;
        for r in rules {
            let name = format!("{} {}", r.id(), r.name());
            let case = BytesStart::new("testcase")
                .with_attributes([("classname", "vfio-trace.rules"), ("name", name.as_str())]);
            let mine: Vec<_> = self.findings.iter().filter(|f| f.rule == r.id()).collect();
            if self.not_judged_only(&r) {
                let why: Vec<String> = self
                    .summary
                    .not_judged
                    .iter()
                    .filter(|n| n.rule == r.id())
                    .map(|n| format!("{}: {}", n.node.as_deref().unwrap_or("?"), n.reason))
                    .collect();
                let message = xml_chars(&format!("not judged: {}", why.join("; ")));
                w.write_event(Event::Start(case))?;
                w.write_event(Event::Empty(
                    BytesStart::new("skipped").with_attributes([("message", message.as_str())]),
                ))?;
                w.write_event(Event::End(BytesEnd::new("testcase")))?;
                continue;
            }
            if mine.is_empty() {
                w.write_event(Event::Empty(case))?;
                continue;
            }
            w.write_event(Event::Start(case))?;
            for f in mine {
                let severity = f.severity.to_string();
                let message = xml_chars(&f.message);
                w.write_event(Event::Start(BytesStart::new("failure").with_attributes([
                    ("type", severity.as_str()),
                    ("message", message.as_str()),
                ])))?;
                w.write_event(Event::Text(BytesText::new(&xml_chars(&failure_body(f)))))?;
                w.write_event(Event::End(BytesEnd::new("failure")))?;
            }
            w.write_event(Event::End(BytesEnd::new("testcase")))?;
        }
        let health = BytesStart::new("testcase").with_attributes([
            ("classname", "vfio-trace.health"),
            ("name", "trace-complete"),
        ]);
        if self.summary.complete {
            w.write_event(Event::Empty(health))?;
        } else {
            let why = xml_chars(&self.summary.incomplete_reasons.join("; "));
            w.write_event(Event::Start(health))?;
            w.write_event(Event::Empty(
                BytesStart::new("error")
                    .with_attributes([("type", "incomplete"), ("message", why.as_str())]),
            ))?;
            w.write_event(Event::End(BytesEnd::new("testcase")))?;
        }
        w.write_event(Event::End(BytesEnd::new("testsuite")))?;
        w.write_event(Event::End(BytesEnd::new("testsuites")))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use quick_xml::{events::Event, Reader};

    use super::*;
    use crate::{
        check::report::{DropsSummary, ProbeSummary, Summary, Verdict},
        engine::Severity,
    };

    fn report(complete: bool) -> Report {
        Report {
            findings: vec![ReportFinding {
                rule: "VT008".into(),
                name: "map-failed".into(),
                severity: Severity::Warning,
                message: "map <0x1000> & \"x\" 'y'\u{1}z".into(),
                node: Some("l1".into()),
                device: None,
                address: None,
                evidence: vec![],
                possibly_caused_by_missing_data: true,
                evidence_text: vec!["a<b ]]> \u{1b}[31m".into()],
            }],
            summary: Summary {
                events: 3,
                nodes: 1,
                node_names: vec!["l1".into()],
                probes: ProbeSummary::default(),
                drops: DropsSummary::default(),
                rules: vec!["VT001".into(), "VT008".into()],
                not_judged: vec![],
                all_rules_judged: true,
                suppressed: 0,
                pairings: vec![],
                inputs: vec![],
                complete,
                incomplete_reasons: if complete {
                    vec![]
                } else {
                    vec!["drops: 3".into(), "cut <short> & \"odd\"\u{7}".into()]
                },
                verdict: Verdict::Findings,
            },
        }
    }

    /// Byte for byte what the hand-written renderer produced before
    /// (CI systems and users' scripts read it).
    #[test]
    fn layout_is_unchanged() {
        let expected = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="vfio-trace check" tests="3" failures="1" errors="1">
  <testsuite name="vfio-trace check" tests="3" failures="1" errors="1">
    <testcase classname="vfio-trace.rules" name="VT001 dma-map-in-msi-window"/>
    <testcase classname="vfio-trace.rules" name="VT008 map-failed">
      <failure type="warning" message="map &lt;0x1000&gt; &amp; &quot;x&quot; &apos;y&apos;?z">map &lt;0x1000&gt; &amp; &quot;x&quot; &apos;y&apos;?z
(may have been caused by data missing from the trace)
  a&lt;b ]]&gt; ?[31m
</failure>
    </testcase>
    <testcase classname="vfio-trace.health" name="trace-complete">
      <error type="incomplete" message="drops: 3; cut &lt;short&gt; &amp; &quot;odd&quot;?"/>
    </testcase>
  </testsuite>
</testsuites>
"#;
        assert_eq!(report(false).to_junit(), expected);
        let complete = report(true).to_junit();
        assert!(complete.contains(
            "\n    <testcase classname=\"vfio-trace.health\" name=\"trace-complete\"/>\n  </testsuite>\n</testsuites>\n"
        ), "{complete}");
        assert!(complete.contains("errors=\"0\""), "{complete}");
    }

    /// A conforming parser reads back exactly the text given (control
    /// characters, which XML cannot carry, as `?`).
    #[test]
    fn hostile_text_round_trips_through_a_parser() {
        let xml = report(false).to_junit();
        let mut reader = Reader::from_str(&xml);
        let mut messages = vec![];
        let mut body = String::new();
        let mut in_failure = false;
        loop {
            match reader.read_event().expect("well-formed") {
                Event::Start(e) | Event::Empty(e) => {
                    in_failure = e.name().as_ref() == "failure";
                    if let Some(a) = e.try_get_attribute("message").unwrap() {
                        messages.push(
                            a.normalized_value(quick_xml::XmlVersion::Explicit1_0)
                                .unwrap()
                                .into_owned(),
                        );
                    }
                }
                Event::End(_) => in_failure = false,
                Event::Text(t) if in_failure => {
                    body.push_str(&t.xml_content(quick_xml::XmlVersion::Explicit1_0))
                }
                // quick-xml reports entity references apart from the text.
                Event::GeneralRef(r) if in_failure => body.push_str(match &*r {
                    "lt" => "<",
                    "gt" => ">",
                    "amp" => "&",
                    "quot" => "\"",
                    "apos" => "'",
                    other => panic!("unexpected reference {other:?}"),
                }),
                Event::Eof => break,
                _ => {}
            }
        }
        assert_eq!(
            messages,
            [
                "map <0x1000> & \"x\" 'y'?z",
                "drops: 3; cut <short> & \"odd\"?"
            ]
        );
        assert!(body.starts_with("map <0x1000> & \"x\" 'y'?z\n"), "{body:?}");
        assert!(body.contains("  a<b ]]> ?[31m\n"), "{body:?}");
    }
}
