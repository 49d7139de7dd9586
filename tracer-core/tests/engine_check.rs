//! `check::run`: verdicts, exit codes, rule selection, renderers.

mod engine_support;

use engine_support::*;
use tracer_core::check::{self, CheckError, CheckOptions, Verdict};
use tracer_core::engine::RuleId;
use tracer_core::event::*;

fn with_finding() -> Seq {
    let mut s = Seq::new();
    clean_run(&mut s);
    s.map_dma(GIOVA, HVA, 0x1000, 17); // EEXIST on the live page
    s
}

#[test]
fn verdicts_and_exit_codes() {
    let r = check::run(&[], &nodes(), &CheckOptions::default());
    assert_eq!((r.summary.verdict, r.exit_code()), (Verdict::Incomplete, 2));
    let s = with_finding();
    let r = check::run(&s.events, &nodes(), &CheckOptions::default());
    assert_eq!((r.summary.verdict, r.exit_code()), (Verdict::Findings, 1));
    assert!(r.summary.complete);
    let f = &r.findings[0];
    assert_eq!((f.rule.as_str(), f.name.as_str()), ("VT008", "map-failed"));
    assert_eq!(f.node.as_deref(), Some("l1"));
    // Evidence in the JSON Lines event contract.
    let ev = &f.evidence[0];
    assert_eq!(ev["kind"], "vfio_map_dma");
    assert_eq!(ev["node"], "l1");
    assert_eq!(ev["iova"], GIOVA);
    assert!(ev.get("ts_ns").is_some() && ev.get("comm").is_some());
}

#[test]
fn drops_or_missing_required_probe_are_never_clean() {
    let mut s = Seq::new();
    clean_run(&mut s);
    s.at(
        HOST,
        0,
        0,
        EventKind::Drops(Drops {
            ring_full: 3,
            pending_full: 0,
            read_failed: 0,
            undecodable: 0,
        }),
    );
    let r = check::run(&s.events, &nodes(), &CheckOptions::default());
    assert_eq!(r.summary.verdict, Verdict::Incomplete);
    assert_eq!(r.summary.drops.total, 3);
    let mut s = Seq::new();
    clean_run(&mut s);
    s.at(
        GUEST,
        0,
        0,
        EventKind::ProbeStatus(ProbeStatus {
            probe: "viommu_add_req".into(),
            attach: "kprobe:__viommu_add_req".into(),
            status: ProbeState::MissingSymbol,
            required: true,
            reason: "virtio_iommu not loaded".into(),
            hits: 0,
        }),
    );
    s.at(
        GUEST,
        0,
        0,
        EventKind::ProbeStatus(ProbeStatus {
            probe: "optional".into(),
            attach: "kprobe:x".into(),
            status: ProbeState::Unsupported,
            required: false,
            reason: String::new(),
            hits: 0,
        }),
    );
    let r = check::run(&s.events, &nodes(), &CheckOptions::default());
    assert_eq!(r.summary.verdict, Verdict::Incomplete);
    assert_eq!(r.summary.probes.missing.len(), 2);
    assert_eq!(r.summary.probes.attached, 2);
    assert_eq!(
        r.summary.incomplete_reasons.len(),
        1,
        "{:?}",
        r.summary.incomplete_reasons
    );
    // An optional probe alone does not make it incomplete.
    let mut s = Seq::new();
    clean_run(&mut s);
    s.at(
        GUEST,
        0,
        0,
        EventKind::ProbeStatus(ProbeStatus {
            probe: "optional".into(),
            attach: "kprobe:x".into(),
            status: ProbeState::Unsupported,
            required: false,
            reason: String::new(),
            hits: 0,
        }),
    );
    assert_eq!(
        check::run(&s.events, &nodes(), &CheckOptions::default()).exit_code(),
        0
    );
}

#[test]
fn rule_selection_and_allow() {
    let s = with_finding();
    let only = CheckOptions {
        rules: CheckOptions::parse_rules(&["VT001,chain-break"]).unwrap(),
        ..Default::default()
    };
    let r = check::run(&s.events, &nodes(), &only);
    assert_eq!(r.exit_code(), 0);
    assert_eq!(r.summary.rules, vec!["VT001", "VT006"]);
    let allow = CheckOptions {
        allow: vec![RuleId::MapFailed],
        ..Default::default()
    };
    assert_eq!(check::run(&s.events, &nodes(), &allow).exit_code(), 0);
    assert_eq!(
        CheckOptions::parse_rules(&["VT999"]),
        Err(CheckError::UnknownRule("VT999".into()))
    );
    assert!(CheckOptions::parse_pairs(&["nonsense"]).is_err());
}

#[test]
fn renderers() {
    let s = with_finding();
    let r = check::run(&s.events, &nodes(), &CheckOptions::default());
    let text = r.to_text();
    assert!(text.contains("VT008 warning map-failed node=l1"), "{text}");
    assert!(text.contains("vfio_map_dma"), "{text}");
    assert!(text.ends_with("verdict: findings\n"), "{text}");
    let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(json["summary"]["verdict"], "findings");
    assert_eq!(json["findings"][0]["rule"], "VT008");
    assert_eq!(json["findings"][0]["severity"], "warning");
    let junit = r.to_junit();
    assert!(junit.starts_with("<?xml"));
    assert!(
        junit.contains("tests=\"11\" failures=\"1\" errors=\"0\""),
        "{junit}"
    );
    assert!(junit.contains("<testcase classname=\"vfio-trace.rules\" name=\"VT008 map-failed\">"));
    assert!(junit.contains("<failure type=\"warning\""));
    assert_eq!(junit.matches("<testcase").count(), 11);
    let empty = check::run(&[], &nodes(), &CheckOptions::default());
    assert!(empty
        .to_junit()
        .contains("<error type=\"incomplete\" message=\"no events\"/>"));
}
