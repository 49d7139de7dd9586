//! Every event kind's outputs are byte-identical to fixtures generated
//! before the event kinds were restructured (issue 14): its text line, its
//! JSON line, its Perfetto events and its trace-file encoding (and a file in
//! that encoding still reads back). `synth::all_kinds()` covers every kind;
//! a slice of the map/unmap stream covers the delta coding.
//!
//! To regenerate after an intended change:
//! `VFIO_TRACE_GOLDEN_UPDATE=1 cargo test -p tracer-core --test golden_kinds`.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use tracer_core::event::*;
use tracer_core::export::{jsonl::JsonlWriter, perfetto::PerfettoWriter, text::TextWriter};
use tracer_core::tracefile::synth::{all_kinds, sample_nodes, MapUnmapTrace};
use tracer_core::tracefile::*;

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

fn check(name: &str, got: &[u8]) {
    let path = golden(name);
    if std::env::var_os("VFIO_TRACE_GOLDEN_UPDATE").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if want != got {
        let (w, g) = (String::from_utf8_lossy(&want), String::from_utf8_lossy(got));
        for (i, (a, b)) in w.lines().zip(g.lines()).enumerate() {
            assert_eq!(a, b, "{name} line {}", i + 1);
        }
        panic!("{name} differs from {} (length)", path.display());
    }
}

fn events() -> Vec<Event> {
    let mut v = all_kinds();
    v.extend(MapUnmapTrace::new(7).take(500));
    v
}

fn header() -> TraceHeader {
    TraceHeader {
        format_version: FORMAT_VERSION,
        tool_version: "0.1.0-golden".into(),
        kernel: "6.12.95+deb12-amd64".into(),
        machine: "x86_64".into(),
        nodes: sample_nodes(),
        probes: vec![],
        cmdline: vec!["vfio-trace".into(), "record".into()],
        start_realtime_ns: 1_700_000_001_000_000_000,
        start_monotonic_ns: 1_000_000_000,
    }
}

#[test]
fn text_lines_are_unchanged() {
    let mut w = TextWriter::new(Vec::new());
    for e in events() {
        w.write_event(&e, &sample_nodes()).unwrap();
    }
    check("kinds.txt", &w.finish().unwrap());
}

#[test]
fn json_lines_are_unchanged() {
    let mut w = JsonlWriter::new(Vec::new());
    for e in events() {
        w.write_event(&e, &sample_nodes()).unwrap();
    }
    check("kinds.jsonl", &w.finish().unwrap());
}

#[test]
fn perfetto_export_is_unchanged() {
    let mut w = PerfettoWriter::new(Vec::new()).unwrap();
    for e in events() {
        w.write_event(&e, &sample_nodes()).unwrap();
    }
    check("kinds.perfetto.json", &w.finish().unwrap());
}

#[test]
fn trace_file_encoding_is_unchanged_and_reads_back() {
    let opts = WriterOptions {
        max_chunk_events: 200,
        ..WriterOptions::default()
    };
    let mut w = TraceWriter::new(Vec::new(), &header(), opts).unwrap();
    for e in events() {
        w.append(&e).unwrap();
    }
    let bytes = w.finish().unwrap();
    check("kinds.vtrace", &bytes);
    let mut r =
        TraceReader::new(Cursor::new(std::fs::read(golden("kinds.vtrace")).unwrap())).unwrap();
    let back = r.by_ref().collect::<Result<Vec<_>, _>>().unwrap();
    assert_eq!(back, events());
}
