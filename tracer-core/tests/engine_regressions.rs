//! Regressions found on real data and by the TUI's fixture.

#[path = "../../tracer-user/tests/tui_fixture/mod.rs"]
mod tui_fixture;

use tracer_core::engine::snapshot::{DomainRef, SnapshotOptions};
use tracer_core::engine::{Engine, EngineConfig, RuleId};
use tracer_core::event::*;

fn replay(events: &[Event], nodes: Vec<NodeInfo>) -> Engine {
    let mut e = Engine::new(nodes, EngineConfig::default());
    for ev in events {
        e.apply(ev);
    }
    e
}

#[test]
fn tui_fixture_pairs_guest_domain_with_container() {
    let e = replay(&tui_fixture::events(), tui_fixture::nodes());
    for f in e.findings() {
        eprintln!("{} {}", f.rule, f.message);
    }
    eprintln!("{:#?}", e.pairings());
    assert_eq!(e.pairings().len(), 1);
}

#[test]
fn tui_fixture_flags_unroutable_msix_message() {
    let e = replay(&tui_fixture::events(), tui_fixture::nodes());
    assert!(e.findings().iter().any(|f| f.rule == RuleId::MsiUnroutable));
}

#[test]
fn tui_fixture_findings_carry_the_address_they_are_about() {
    let e = replay(&tui_fixture::events(), tui_fixture::nodes());
    let f = e.findings();
    let of = |r: RuleId| f.iter().find(|f| f.rule == r).and_then(|f| f.address);
    assert_eq!(of(RuleId::MsiUnroutable), Some((0x800_0040, 0x800_0040)));
    assert_eq!(of(RuleId::MapFailed), Some((0x10_0000, 0x10_0fff)));
    assert_eq!(of(RuleId::ChainBreak), Some((0x20_0000, 0x20_ffff)));
}

#[test]
fn host_device_is_tied_to_its_container_and_iommu_domain() {
    let e = replay(&tui_fixture::events(), tui_fixture::nodes());
    let snap = e.snapshot(SnapshotOptions::default());
    let host = &snap.nodes[0];
    let dev = host
        .devices
        .iter()
        .find(|d| d.device == tui_fixture::dev())
        .expect("the passed-through device");
    assert_eq!(
        dev.domains,
        vec![
            DomainRef::Container {
                container: fd_handle(tui_fixture::QEMU, 17),
                ioas: 0
            },
            DomainRef::Iommu(0xffff_8880_1234_5000),
        ]
    );
}

#[test]
fn mappings_page_through_every_domain_kind() {
    let mut events = tui_fixture::events();
    // An iommufd IOAS of the same VMM, next to the VFIO container.
    let last = events.last().expect("events").ts_ns;
    for (i, iova) in [0x1000_0000u64, 0x1001_0000, 0x1002_0000]
        .into_iter()
        .enumerate()
    {
        events.push(Event {
            ts_ns: last + 1000 * (i as u64 + 1),
            node: 0,
            pid: tui_fixture::QEMU,
            tid: tui_fixture::QEMU,
            comm: Comm::new("qemu-system-x86"),
            kind: EventKind::IoasMap(IoasMap {
                iommufd: fd_handle(tui_fixture::QEMU, 40),
                ioas: 2,
                flags: 7,
                user_va: 0x7f10_0000_0000 + iova,
                length: 0x1000,
                iova,
                errno: 0,
            }),
        });
    }
    let e = replay(&events, tui_fixture::nodes());
    let container = DomainRef::Container {
        container: fd_handle(tui_fixture::QEMU, 17),
        ioas: 0,
    };
    let iovas = |node, d, from, n| -> Vec<u64> {
        e.mappings(node, d, from, n)
            .iter()
            .map(|m| m.iova)
            .collect()
    };
    assert_eq!(iovas(0, container, 0, 10), vec![0x10_0000, 0x20_0000]);
    // From inside a mapping: that mapping first; from a gap: the next one.
    assert_eq!(iovas(0, container, 0x10_0800, 1), vec![0x10_0000]);
    assert_eq!(iovas(0, container, 0x15_0000, 10), vec![0x20_0000]);
    assert_eq!(iovas(0, container, 0x30_0000, 10), Vec::<u64>::new());
    assert_eq!(
        iovas(0, DomainRef::Iommu(0xffff_8880_1234_5000), 0, 1),
        vec![0x10_0000]
    );
    assert_eq!(iovas(1, DomainRef::Guest(1), 0x20_0000, 5), vec![0x20_0000]);
    let ioas = DomainRef::Container {
        container: fd_handle(tui_fixture::QEMU, 40),
        ioas: 2,
    };
    assert_eq!(
        iovas(0, ioas, 0x1000_1000, 5),
        vec![0x1001_0000, 0x1002_0000]
    );
    assert_eq!(
        e.mappings(0, ioas, 0, 1)[0].to,
        0x7f10_0000_0000 + 0x1000_0000
    );
    // The IOAS is its own domain in the snapshot, with its id.
    let snap = e.snapshot(SnapshotOptions::default());
    assert!(snap.nodes[0]
        .domains
        .iter()
        .any(|d| d.id == ioas && d.count == 3));
    // Unknown domain or node: empty.
    assert!(e.mappings(1, container, 0, 10).is_empty());
    assert!(e.mappings(0, DomainRef::Guest(9), 0, 10).is_empty());
}
