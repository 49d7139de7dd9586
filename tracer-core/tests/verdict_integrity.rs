//! A verdict never better than what was read: any truncation or byte damage
//! of a recording, alone or merged with intact files, is never `clean`
//! (unless every event of every file was read), in JSON, text and JUnit
//! alike; and no intact file loses an event to another file's damage.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use tracer_core::check::{self, CheckOptions, Coverage, Report, Verdict};
use tracer_core::event::{Event, NodeInfo};
use tracer_core::tracefile::{read_inputs, OpenError, ReadMode, ReadReport};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name)
}

const HOST: &str = "nested-l1-host.vtrace";
const GUEST: &str = "nested-l2-guest.vtrace";

fn read(paths: &[PathBuf], mode: ReadMode) -> (Vec<Event>, Vec<NodeInfo>, ReadReport) {
    let mut events = Vec::new();
    let mut nodes = Vec::new();
    let read = read_inputs::<_, OpenError>(paths, mode, |ev, n| {
        events.push(ev.clone());
        if n.len() != nodes.len() {
            nodes = n.to_vec();
        }
        Ok(())
    })
    .unwrap();
    (events, nodes, read)
}

fn check(paths: &[PathBuf], mode: ReadMode) -> (Report, ReadReport) {
    let (events, nodes, read) = read(paths, mode);
    let report = check::run_covered(
        &events,
        &nodes,
        &CheckOptions::default(),
        &Coverage::from_read(&read),
    );
    (report, read)
}

/// Every output format says the same about completeness.
fn assert_renderings_agree(r: &Report) {
    let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    let verdict = match r.summary.verdict {
        Verdict::Clean => "clean",
        Verdict::Findings => "findings",
        Verdict::Incomplete => "incomplete",
    };
    assert_eq!(json["summary"]["verdict"], verdict);
    assert_eq!(json["summary"]["complete"], r.summary.complete);
    // The verdict line; rules not judged (a probe missing from the
    // recording) are named on it.
    let text = r.to_text();
    let last = text.lines().last().unwrap_or_default();
    if r.summary.not_judged.is_empty() {
        assert_eq!(last, format!("verdict: {verdict}"));
    } else {
        assert!(
            last.starts_with(&format!("verdict: {verdict} (not judged: ")),
            "{last}"
        );
    }
    let junit = r.to_junit();
    assert_eq!(
        junit.contains("<error type=\"incomplete\""),
        !r.summary.complete,
        "{junit}"
    );
    let code = r.exit_code();
    assert_eq!(code, [0, 1, 2][r.summary.verdict as usize]);
}

fn full_counts() -> (u64, u64) {
    let (_, _, host) = read(&[example(HOST)], ReadMode::Strict);
    let (_, _, guest) = read(&[example(GUEST)], ReadMode::Strict);
    assert!(host.complete() && guest.complete());
    (host.inputs[0].events, guest.inputs[0].events)
}

fn temp(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vfio-trace-verdict-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn the_intact_examples_are_clean_and_complete() {
    let (r, read) = check(&[example(HOST), example(GUEST)], ReadMode::Strict);
    assert!(read.complete(), "{read:?}");
    assert_eq!(r.summary.verdict, Verdict::Clean, "{}", r.to_text());
    assert!(r.summary.complete);
    assert_eq!(r.summary.inputs.len(), 2);
    assert_renderings_agree(&r);
}

#[test]
fn a_recording_cut_short_is_incomplete_not_clean() {
    // The reproduction: 4072 bytes of the host file (44 events).
    let bytes = std::fs::read(example(HOST)).unwrap();
    let cut = temp("cut-4072.vtrace", &bytes[..4072]);
    let (r, read) = check(std::slice::from_ref(&cut), ReadMode::Strict);
    assert_eq!(r.summary.verdict, Verdict::Incomplete, "{}", r.to_text());
    assert_eq!(r.exit_code(), 2);
    let i = &read.inputs[0];
    assert!(i.cut_short && !i.end_marker && !i.complete && i.damage.is_empty());
    assert_eq!(i.bytes_read, 4072);
    assert!(r.summary.incomplete_reasons[0].contains("cut-4072.vtrace"));
    assert!(r.summary.incomplete_reasons[0].contains("byte 4072"));
    assert_renderings_agree(&r);
}

#[test]
fn a_cut_file_merged_with_an_intact_one_keeps_every_intact_event() {
    let (_, guest_events) = full_counts();
    let bytes = std::fs::read(example(HOST)).unwrap();
    let cut = temp("cut-12073.vtrace", &bytes[..12073]);
    let (r, read) = check(&[cut, example(GUEST)], ReadMode::Strict);
    assert_eq!(read.inputs[1].events, guest_events);
    assert!(read.inputs[1].complete);
    assert!(!r.summary.complete);
    assert_ne!(r.summary.verdict, Verdict::Clean);
    assert_renderings_agree(&r);
}

#[test]
fn a_flipped_byte_is_incomplete_in_every_format_strict_or_salvaging() {
    let (host_events, guest_events) = full_counts();
    let mut bytes = std::fs::read(example(HOST)).unwrap();
    bytes[9390] ^= 0xff;
    let bad = temp("flip-9390.vtrace", &bytes);
    for mode in [ReadMode::Strict, ReadMode::Salvage] {
        let (r, read) = check(&[bad.clone(), example(GUEST)], mode);
        assert!(!r.summary.complete, "{mode:?}");
        assert_ne!(r.summary.verdict, Verdict::Clean, "{mode:?}");
        assert!(read.inputs[0].events < host_events);
        assert_eq!(read.inputs[0].damage.len(), 1, "{:?}", read.inputs[0]);
        assert!(read.inputs[0].damage[0].error.contains("byte 8228"));
        assert_eq!(read.inputs[1].events, guest_events, "{mode:?}");
        assert_renderings_agree(&r);
        // Salvaging steps over the chunk and reads on: the findings its
        // missing UNMAPs cause are marked as possibly that.
        if mode == ReadMode::Salvage {
            assert!(!r.findings.is_empty());
            assert!(r.findings.iter().all(|f| f.possibly_caused_by_missing_data));
        }
    }
}

#[test]
fn only_findings_near_or_after_a_gap_are_marked() {
    // Findings from a salvaged host file (a chunk missing in the middle),
    // judged as if the only gap were at the very end of the host file:
    // findings raised more than 2 s before that end are not the gap's
    // doing; with the gap's place unknown, every finding may be.
    let mut bytes = std::fs::read(example(HOST)).unwrap();
    bytes[9390] ^= 0xff;
    let bad = temp("flip-9390-b.vtrace", &bytes);
    let (events, nodes, read) = read(&[bad, example(GUEST)], ReadMode::Salvage);
    let l1 = nodes.iter().position(|n| n.name == "l1").unwrap();
    let last_l1 = events
        .iter()
        .filter(|e| usize::from(e.node) == l1)
        .map(|e| e.ts_ns)
        .max()
        .unwrap();
    let mut at_end = read.inputs.clone();
    at_end[0].damage.clear();
    at_end[0].cut_short = true;
    at_end[0].last_event = Some(tracer_core::tracefile::inputs::LastEvent {
        node: "l1".into(),
        ts_ns: last_l1,
    });
    let cov = Coverage {
        inputs: at_end,
        lost_streams: Vec::new(),
    };
    let r = check::run_covered(&events, &nodes, &CheckOptions::default(), &cov);
    assert!(!r.findings.is_empty());
    assert!(
        r.findings
            .iter()
            .any(|f| !f.possibly_caused_by_missing_data),
        "{}",
        r.to_text()
    );
    assert!(!r.summary.complete);
    let unknown = Coverage {
        inputs: Vec::new(),
        lost_streams: vec!["agent l2 lost mid-stream".into()],
    };
    let r = check::run_covered(&events, &nodes, &CheckOptions::default(), &unknown);
    assert!(r.findings.iter().all(|f| f.possibly_caused_by_missing_data));
    assert_eq!(r.summary.incomplete_reasons, ["agent l2 lost mid-stream"]);
}

#[test]
fn the_verdict_is_decided_in_one_place() {
    let none: Vec<String> = Vec::new();
    let some = vec!["x".to_string()];
    assert_eq!(Verdict::decide(0, &none), Verdict::Clean);
    assert_eq!(Verdict::decide(0, &some), Verdict::Incomplete);
    assert_eq!(Verdict::decide(3, &none), Verdict::Findings);
    assert_eq!(Verdict::decide(3, &some), Verdict::Findings);
}

#[derive(Clone, Debug)]
enum Damage {
    Truncate(usize),
    Flip(usize, u8),
    Zero(usize, usize),
}

fn apply(bytes: &[u8], d: &Damage) -> Vec<u8> {
    let mut b = bytes.to_vec();
    match *d {
        Damage::Truncate(at) => b.truncate(at % b.len()),
        Damage::Flip(at, mask) => {
            let i = at % b.len();
            b[i] ^= mask.max(1);
        }
        Damage::Zero(at, len) => {
            let i = at % b.len();
            let end = (i + len).min(b.len());
            b[i..end].fill(0);
        }
    }
    b
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        any::<usize>().prop_map(Damage::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(a, m)| Damage::Flip(a, m)),
        (any::<usize>(), 1usize..600).prop_map(|(a, l)| Damage::Zero(a, l)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Never `clean` on damaged input; an intact file merged with it loses
    /// nothing; every rendering says the same.
    #[test]
    fn damage_is_never_clean_and_never_costs_an_intact_file(
        d in damage(),
        damage_host in any::<bool>(),
        merged in any::<bool>(),
        salvage in any::<bool>(),
        intact_first in any::<bool>(),
    ) {
        let (host_events, guest_events) = full_counts();
        let (victim, other, other_events) = if damage_host {
            (HOST, GUEST, guest_events)
        } else {
            (GUEST, HOST, host_events)
        };
        let original = std::fs::read(example(victim)).unwrap();
        let bytes = apply(&original, &d);
        prop_assume!(bytes != original);
        let name = format!("prop-{}-{victim}", std::process::id());
        let bad = temp(&name, &bytes);
        let mode = if salvage { ReadMode::Salvage } else { ReadMode::Strict };
        let mut paths = vec![bad.clone()];
        if merged {
            if intact_first {
                paths.insert(0, example(other));
            } else {
                paths.push(example(other));
            }
        }
        let (r, read) = check(&paths, mode);
        let _ = std::fs::remove_file(&bad);
        prop_assert_ne!(r.summary.verdict, Verdict::Clean, "{:?}: {}", d, r.to_text());
        prop_assert!(!r.summary.complete);
        prop_assert!(!read.complete());
        let bad_input = read.inputs.iter().find(|i| i.file == bad.display().to_string()).unwrap();
        prop_assert!(!bad_input.complete);
        if merged {
            let intact = read.inputs.iter().find(|i| i.file != bad.display().to_string()).unwrap();
            prop_assert!(intact.complete, "{:?}", intact);
            prop_assert_eq!(intact.events, other_events);
        }
        assert_renderings_agree(&r);
    }
}

#[test]
fn a_stream_gap_in_a_recording_makes_it_incomplete() {
    // `record --listen` writes a stream_gap event on the node of an agent
    // lost mid-stream: the file is whole, its data is not.
    use tracer_core::event::{build::Task, StreamGap};
    let (mut events, nodes, read) = read(&[example(HOST), example(GUEST)], ReadMode::Strict);
    assert!(read.complete());
    let l2 = nodes.iter().position(|n| n.name == "l2").unwrap() as u16;
    let last = events.iter().map(|e| e.ts_ns).max().unwrap();
    events.push(Task::new(l2, 0, 0, "vfio-trace").at(
        last,
        StreamGap {
            cause: "agent lost mid-stream: connection reset".into(),
            dropped: 0,
            lost: 0,
            missing_batches: 0,
        },
    ));
    let r = check::run_covered(
        &events,
        &nodes,
        &CheckOptions::default(),
        &Coverage::from_read(&read),
    );
    assert_eq!(r.summary.verdict, Verdict::Incomplete, "{}", r.to_text());
    assert!(
        r.summary.incomplete_reasons[0].starts_with("node l2: stream gap: agent lost mid-stream"),
        "{:?}",
        r.summary.incomplete_reasons
    );
    assert_renderings_agree(&r);
}
