//! Cross-version reading: `tests/fixtures/v<N>-*.vtrace` are files written by
//! format version N, each with the JSON Lines of its events beside it
//! (`.jsonl`). Every build must read every fixture to the same events (new
//! fields may appear in the output; none may change or go).
//!
//! When the format version is bumped, write the new version's fixture with
//! `VTRACE_WRITE_FIXTURE=1 cargo test -p tracer-core --test tracefile_fixture`
//! and commit it; keep the old ones.

use std::path::{Path, PathBuf};

use tracer_core::export::to_jsonl_line;
use tracer_core::tracefile::synth::{all_kinds, sample_nodes, MapUnmapTrace};
use tracer_core::tracefile::*;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn current() -> PathBuf {
    fixtures().join(format!("v{FORMAT_VERSION}-all-kinds.vtrace"))
}

fn write_fixture(path: &Path) {
    let mut nodes = sample_nodes();
    let late = nodes.pop().unwrap();
    let header = TraceHeader {
        tool_version: "fixture".into(),
        kernel: "6.12.95+deb12-amd64".into(),
        machine: "x86_64".into(),
        nodes,
        cmdline: vec!["vfio-trace".into(), "record".into()],
        start_realtime_ns: 1_700_000_000_000_000_000,
        start_monotonic_ns: 1,
        ..Default::default()
    };
    let opts = WriterOptions {
        max_chunk_events: 100,
        ..Default::default()
    };
    let mut w = TraceWriter::create(path, &header, opts).unwrap();
    let mut events = all_kinds();
    let guest: Vec<_> = events.iter().filter(|e| e.node == 1).cloned().collect();
    events.retain(|e| e.node == 0);
    for e in &events {
        w.append(e).unwrap();
    }
    w.add_node(late).unwrap();
    for e in guest
        .iter()
        .chain(MapUnmapTrace::new(1).take(250).collect::<Vec<_>>().iter())
    {
        w.append(e).unwrap();
    }
    let nodes = w.nodes().to_vec();
    w.finish().unwrap();
    let (_, back) = read_all(path).unwrap();
    let jsonl: String = back
        .iter()
        .map(|e| to_jsonl_line(e, &nodes) + "\n")
        .collect();
    std::fs::write(path.with_extension("jsonl"), jsonl).unwrap();
}

#[test]
fn current_version_has_a_fixture() {
    if std::env::var_os("VTRACE_WRITE_FIXTURE").is_some() {
        write_fixture(&current());
    }
    assert!(
        current().exists(),
        "no fixture for format version {FORMAT_VERSION}: see this file's doc"
    );
}

#[test]
fn every_fixture_reads_to_its_events() {
    let mut seen = 0;
    for entry in std::fs::read_dir(fixtures()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|x| x != "vtrace") {
            continue;
        }
        seen += 1;
        let expected = std::fs::read_to_string(path.with_extension("jsonl")).unwrap();
        let mut r = TraceReader::open(&path).unwrap();
        let events = r.by_ref().collect::<Result<Vec<_>, _>>().unwrap();
        assert!(r.is_complete());
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let version: u16 = name[1..name.find('-').unwrap()].parse().unwrap();
        assert_eq!(r.format_version(), version, "{name}");
        let lines: Vec<&str> = expected.lines().collect();
        assert_eq!(events.len(), lines.len(), "{name}");
        for (e, want) in events.iter().zip(lines) {
            let got: serde_json::Value =
                serde_json::from_str(&to_jsonl_line(e, r.nodes())).unwrap();
            let want: serde_json::Value = serde_json::from_str(want).unwrap();
            for (k, v) in want.as_object().unwrap() {
                assert_eq!(got.get(k), Some(v), "{name}: field {k} of {want}");
            }
        }
    }
    assert!(seen >= 1);
}
