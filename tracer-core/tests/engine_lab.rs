//! The engine on real lab recordings (`tests/fixtures/lab/`): every finding
//! is one a kernel engineer agrees with, nothing else fires.

use std::path::Path;

use tracer_core::check::{self, CheckOptions, Report};
use tracer_core::engine::snapshot::SnapshotOptions;
use tracer_core::engine::{Engine, EngineConfig, RuleId};
use tracer_core::event::{Event, EventKind, NodeInfo, NodeRole};
use tracer_core::tracefile::TraceReader;

fn load(name: &str) -> (Vec<Event>, Vec<NodeInfo>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/lab")
        .join(name);
    let mut r = TraceReader::open(&path).expect("open recording");
    let events: Vec<Event> = r.by_ref().map(|e| e.expect("read")).collect();
    assert!(r.is_complete(), "{name} ends cleanly");
    (events, r.nodes().to_vec())
}

fn report(name: &str) -> Report {
    let (events, nodes) = load(name);
    check::run(&events, &nodes, &CheckOptions::default())
}

/// The exerciser's fault steps, each explained (VT008), and nothing else.
fn assert_only_fault_steps(r: &Report, want: &[&str]) {
    let got: Vec<(&str, &str)> = r
        .findings
        .iter()
        .map(|f| (f.rule.as_str(), f.message.as_str()))
        .collect();
    assert!(
        r.findings.iter().all(|f| f.rule == "VT008"),
        "only the fault steps may fire: {got:#?}"
    );
    assert_eq!(r.findings.len(), want.len(), "{got:#?}");
    for w in want {
        assert!(
            r.findings.iter().any(|f| f.message.contains(w)),
            "no finding says {w:?}: {got:#?}"
        );
    }
    assert!(r.summary.complete, "{:?}", r.summary.incomplete_reasons);
}

#[test]
fn arm64_swmsi_recording_has_only_the_fault_steps() {
    let r = report("arm64-swmsi.vft");
    assert_only_fault_steps(
        &r,
        &[
            "no successful VFIO_SET_IOMMU on this container before it",
            "MAP_DMA iova 0x8000000 size 0x1000 in container 0xb200000004 failed with EINVAL: inside the reserved SwMsi window 0x8000000-0x80fffff",
            "MAP_DMA iova 0x8040000 size 0x1000 in container 0xb200000004 failed with EINVAL: inside the reserved SwMsi window 0x8000000-0x80fffff",
            "EEXIST: overlaps the live mapping 0x100000-0x10ffff",
            "EINVAL: not aligned to the IOMMU's smallest page size 0x1000",
        ],
    );
}

#[test]
fn x86_recording_has_only_the_fault_steps() {
    let r = report("x86.vft");
    assert_only_fault_steps(
        &r,
        &[
            "no successful VFIO_SET_IOMMU on this container before it",
            "EINVAL: inside the reserved Msi window 0xfee00000-0xfeefffff",
            "EEXIST: overlaps the live mapping 0x100000-0x10ffff",
            "EINVAL: not aligned to the IOMMU's smallest page size 0x1000",
        ],
    );
}

/// Regression: MSI teardown writes `address=0x0 data=0x0`
/// (msi_domain_deactivate); it once fired VT003 as an unroutable doorbell.
/// It clears the vector instead.
#[test]
fn zeroed_msi_message_is_a_cleared_vector_not_an_unroutable_address() {
    let (events, nodes) = load("arm64-swmsi.vft");
    let zero =
        |e: &Event| matches!(&e.kind, EventKind::MsiWrite(w) if w.address == 0 && w.data == 0);
    assert!(
        events.iter().filter(|e| zero(e)).count() >= 6,
        "the recording has the teardown writes"
    );
    let mut engine = Engine::new(nodes, EngineConfig::default());
    let mut seen_zero = false;
    for e in &events {
        engine.apply(e);
        if zero(e) && !seen_zero {
            seen_zero = true;
            // Right after the first zeroed write, before the vector is unbound:
            // the vector shows no message and is marked cleared.
            let snap = engine.snapshot(SnapshotOptions::default());
            let v = snap
                .nodes
                .iter()
                .flat_map(|n| &n.devices)
                .flat_map(|d| &d.vectors)
                .find(|v| v.cleared)
                .expect("a cleared vector");
            assert_eq!(v.message, None);
        }
    }
    let f = engine.findings();
    assert!(
        f.iter()
            .all(|f| f.rule != RuleId::MsiUnroutable && f.rule != RuleId::SwMsiUnbacked),
        "{f:#?}"
    );
    // The programmed doorbell 0x8000040 is backed by the doorbell page the
    // kernel mapped at 0x8000000 → ITS 0x8090000, for both devices (00:01.0
    // through its own doorbell map, 00:02.0 through its owner's container).
    let snap = engine.snapshot(SnapshotOptions::default());
    let devs: Vec<_> = snap.nodes.iter().flat_map(|n| &n.devices).collect();
    for name in ["0000:00:01.0", "0000:00:02.0"] {
        let d = devs
            .iter()
            .find(|d| d.device.to_string() == name)
            .unwrap_or_else(|| panic!("{name}: {devs:#?}"));
        assert!(!d.domains.is_empty(), "{name} tied to its container/domain");
    }
}

/// The nested lab: L2's virtio-iommu domain pairs with the L1 QEMU's
/// container on HVA-checked evidence, and nothing else pairs: L1's own
/// virtio-iommu domain sees the same IOVAs right after L2's exerciser
/// MAP_DMAs them, but that exerciser is no VMM (L1 has KVM VMs), so it is
/// not a host candidate.
#[test]
fn nested_recordings_pair_the_l2_domain_with_the_l1_vmm_only() {
    let mut nodes = Vec::new();
    let mut events = Vec::new();
    for (i, (file, name, role)) in [
        ("nested-l1.vft", "l1", NodeRole::Host),
        ("nested-l2.vft", "l2", NodeRole::Guest),
    ]
    .into_iter()
    .enumerate()
    {
        let (evs, n) = load(file);
        let mut info = n[0].clone();
        info.name = name.into();
        info.role = role;
        nodes.push(info);
        events.extend(evs.into_iter().map(|mut e| {
            e.node = i as u16;
            e
        }));
    }
    let r = check::run(&events, &nodes, &CheckOptions::default());
    assert_only_fault_steps(
        &r,
        &[
            "no successful VFIO_SET_IOMMU on this container before it",
            "EINVAL: inside the reserved Msi window 0xfee00000-0xfeefffff",
            "EEXIST: overlaps the live mapping 0x100000-0x10ffff",
            "EINVAL: not aligned to the IOMMU's smallest page size 0x1000",
        ],
    );
    events.sort_by_key(|e| tracer_core::tracefile::aligned_ns(e, &nodes));
    let mut engine = Engine::new(nodes, EngineConfig::default());
    for e in &events {
        engine.apply(e);
    }
    let p = engine.pairings();
    assert_eq!(p.len(), 1, "{p:#?}");
    assert_eq!((p[0].guest_node, p[0].host_node), (1, 0));
    assert_eq!(p[0].evidence.matches, p[0].evidence.hva_agree);
    assert!(p[0].evidence.matches >= 30, "{:?}", p[0].evidence);
    assert_eq!(
        p[0].host_devices
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>(),
        vec!["0000:00:02.0"]
    );
}

/// `apply_all` (which prefetches ahead) is `apply` on each event.
#[test]
fn apply_all_is_apply_on_each_event() {
    for file in ["arm64-swmsi.vft", "x86.vft", "nested-l1.vft"] {
        let (events, nodes) = load(file);
        let mut one = Engine::new(nodes.clone(), EngineConfig::default());
        for e in &events {
            one.apply(e);
        }
        let mut all = Engine::new(nodes, EngineConfig::default());
        assert_eq!(all.apply_all(&events), 0);
        assert_eq!(one.findings(), all.findings(), "{file}");
        assert_eq!(one.pairings(), all.pairings(), "{file}");
        assert_eq!(
            one.snapshot(SnapshotOptions::default()),
            all.snapshot(SnapshotOptions::default()),
            "{file}"
        );
    }
}
