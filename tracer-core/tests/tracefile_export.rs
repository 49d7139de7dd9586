//! The text printer and the Perfetto / Chrome trace-event exporter.

use serde_json::Value;
use tracer_core::export::{format_event, Evidence, Finding, PerfettoWriter, TextWriter};
use tracer_core::tracefile::synth::{all_kinds, sample_nodes};

#[test]
fn text_is_one_line_per_event() {
    let nodes = sample_nodes();
    let mut w = TextWriter::new(Vec::new());
    for e in all_kinds() {
        let line = format_event(&e, &nodes);
        assert!(!line.contains('\n'), "{line}");
        w.write_event(&e, &nodes).unwrap();
    }
    let out = String::from_utf8(w.finish().unwrap()).unwrap();
    assert_eq!(out.lines().count(), all_kinds().len());
    let map = format_event(&all_kinds()[2], &nodes);
    assert_eq!(
        map,
        "0.000002000 host CPU 0/KVM[4242/4243] vfio_map_dma container=4242:17 \
         iova=0x10000000 vaddr=0x7f1234567000 size=0x200000 flags=0x3"
    );
    let failed = format_event(&all_kinds()[5], &nodes);
    assert!(failed.ends_with(" errno=22"), "{failed}");
    let guest = format_event(&all_kinds()[9], &nodes);
    assert!(guest.starts_with("0.000000600 guest0 kworker/u8:2[211/211] viommu_req op=Map domain=1 virt=0xfffff000-0xffffffff"), "{guest}");
}

fn perfetto_doc() -> Value {
    let nodes = sample_nodes();
    let mut w = PerfettoWriter::new(Vec::new())
        .unwrap()
        .with_base(1_700_000_000_000_000_000);
    for e in all_kinds().iter().filter(|e| e.ts_ns != u64::MAX) {
        w.write_event(e, &nodes).unwrap();
    }
    w.add_finding(
        &Finding {
            ts_ns: 2_150,
            node: 0,
            title: "MAP_DMA into the MSI window".into(),
            detail: "iova 0xfee00000 is in the host's reserved MSI region".into(),
            evidence: vec![Evidence::of(5, &all_kinds()[5])],
        },
        &nodes,
    )
    .unwrap();
    let out = w.finish().unwrap();
    serde_json::from_slice(&out).expect("valid JSON")
}

#[test]
fn perfetto_json_has_processes_tracks_and_findings() {
    let doc = perfetto_doc();
    let evs = doc["traceEvents"].as_array().unwrap();
    let named = |ph: &str, name: &str| {
        evs.iter()
            .filter(|e| e["ph"] == ph && e["name"] == name)
            .map(|e| e["args"]["name"].as_str().unwrap_or_default().to_owned())
            .collect::<Vec<_>>()
    };
    let procs = named("M", "process_name");
    assert_eq!(procs.len(), 2, "{procs:?}");
    assert!(procs[0].starts_with("host"), "{procs:?}");
    let threads = named("M", "thread_name");
    for t in [
        "container 4242:17",
        "domain 0xffff888001234000",
        "device 0000:01:00.0",
        "health",
        "findings",
    ] {
        assert!(
            threads.iter().any(|x| x == t),
            "no track {t} in {threads:?}"
        );
    }
    for e in evs.iter().filter(|e| e["ph"] != "M") {
        assert!(e["ts"].as_f64().unwrap() >= 0.0, "{e}");
        assert!(e["pid"].as_u64().unwrap() >= 1, "{e}");
        assert!(
            ["i", "C", "X", "s", "f"].contains(&e["ph"].as_str().unwrap()),
            "{e}"
        );
    }
    let map = evs.iter().find(|e| e["name"] == "vfio_map_dma").unwrap();
    assert_eq!(map["args"]["iova"], "0x10000000");
    assert_eq!(map["args"]["flags"], 3);
    assert_eq!(map["ts"], 2.0); // µs after the host's base
    assert!(evs.iter().any(|e| e["name"] == "vfio_map_dma (errno 22)"));
    let finding = evs.iter().find(|e| e["cat"] == "finding").unwrap();
    assert_eq!(finding["name"], "MAP_DMA into the MSI window");
    assert_eq!(finding["ts"], 2.15);
    assert_eq!(finding["args"]["evidence"], serde_json::json!([5]));
    // Its evidence: an arrow from the failed MAP_DMA's instant.
    let start = evs.iter().find(|e| e["ph"] == "s").unwrap();
    let end = evs.iter().find(|e| e["ph"] == "f").unwrap();
    assert_eq!(
        (&start["id"], start["ts"].as_f64()),
        (&end["id"], Some(2.15))
    );
    assert_eq!(end["tid"], finding["tid"]);
    // Mapping lifetimes are slices on the container/domain tracks.
    let slice = evs
        .iter()
        .find(|e| e["ph"] == "X" && e["args"]["vaddr"] == "0x7f1234567000")
        .unwrap();
    assert_eq!(slice["name"], "0x10000000-0x101fffff");
    assert_eq!(slice["ts"], 2.0);
    assert_eq!(slice["tid"], map["tid"]);
    let counters: Vec<_> = evs.iter().filter(|e| e["ph"] == "C").collect();
    assert!(!counters.is_empty());
    assert_eq!(doc["otherData"]["base_realtime_ns"], "1700000000000000000");
    // The guest's events sit 5 s later on the shared time axis.
    let probe = evs
        .iter()
        .find(|e| e["name"] == "viommu_req probe")
        .unwrap();
    assert_eq!(probe["ts"], 5_000_000.5);
    assert_eq!(probe["pid"], 2);
}
