//! Guest↔host pairing with the noise real runs produce, and forced pairs.

mod engine_support;

use engine_support::*;
use tracer_core::check::{self, CheckOptions};
use tracer_core::engine::{Engine, EngineConfig, ForcedPair, RuleId};
use tracer_core::event::*;

fn engine(s: &Seq, cfg: EngineConfig) -> Engine {
    let mut e = Engine::new(nodes(), cfg);
    for ev in &s.events {
        e.apply(ev);
    }
    e
}

/// A second VMM (pid 200, its own VM and container) and a non-VMM process
/// (pid 300, e.g. a DPDK app) on the host.
fn other_map(s: &mut Seq, pid: u32, iova: u64) {
    s.at(
        HOST,
        pid,
        pid + 1,
        EventKind::VfioMapDma(VfioMapDma {
            container: fd_handle(pid, 9),
            iova,
            vaddr: 0x7f00_0000_0000 + iova,
            size: 0x1000,
            flags: 3,
            errno: 0,
        }),
    );
}

#[test]
fn pairs_through_interleaved_noise() {
    let mut s = Seq::new();
    clean_run(&mut s);
    s.at(
        HOST,
        200,
        201,
        EventKind::KvmMemslot(KvmMemslot {
            vm: fd_handle(200, 5),
            slot: 0,
            gpa: 0,
            size: 0x8000000,
            hva: 0x7e00_0000_0000,
            flags: 0,
            errno: 0,
        }),
    );
    // An emulated device in another guest domain: maps never reach VFIO.
    s.vreq(ViommuOp::Attach, 7, 0, 0, 0, 0, 0);
    for i in 0..20u64 {
        let iova = 0x400000 + i * 0x1000;
        // Guest map in the VFIO domain, followed by QEMU...
        s.step(3 * MS)
            .gmap(iova, 0x1000, GPA + 0x100000 + i * 0x1000);
        // ...with noise in between: kernel-thread DMA API maps, the other
        // VMM and a non-VMM process mapping the same IOVA, and the emulated
        // device's domain mapping.
        s.at(
            HOST,
            0,
            77,
            EventKind::IommuMap(IommuMap {
                domain: 0xdead_0000,
                iova,
                paddr: 0x9000_0000,
                size: 0x1000,
                prot: 3,
                errno: 0,
            }),
        );
        if i % 5 == 0 {
            other_map(&mut s, 200, iova);
        }
        other_map(&mut s, 300, iova);
        s.vreq(
            ViommuOp::Map,
            7,
            0x900000 + i * 0x1000,
            0x900fff + i * 0x1000,
            0x1000,
            3,
            0,
        );
        s.step(MS).host_page(
            iova,
            HVA + 0x100000 + i * 0x1000,
            HPA + 0x100000 + i * 0x1000,
        );
    }
    s.step(3000 * MS);
    s.probes_ok();
    let e = engine(&s, EngineConfig::default());
    let p = e.pairings();
    assert_eq!(p.len(), 1, "{p:#?}");
    assert_eq!(p[0].guest_domain, Some(GDOMAIN));
    assert_eq!(p[0].host.map(|c| c.container), Some(container()));
    assert_eq!(p[0].evidence.matches, 23);
    assert_eq!(p[0].evidence.hva_disagree, 0);
    assert_eq!(e.findings(), vec![], "noise must not produce findings");
}

#[test]
fn unpaired_guest_is_not_judged_against_any_host() {
    // Guest maps, host never does anything: no pairing, no chain-break claims.
    let mut s = Seq::new();
    s.probe(vec![x86_msi()]).attach(GDOMAIN, false);
    for i in 0..5u64 {
        s.step(MS).gmap(GIOVA + i * 0x1000, 0x1000, GPA);
    }
    s.step(5000 * MS).probes_ok();
    let e = engine(&s, EngineConfig::default());
    assert!(e.pairings().is_empty());
    assert_eq!(e.findings(), vec![]);
}

#[test]
fn forced_pair_enables_cross_checks_without_map_evidence() {
    let mut s = Seq::new();
    s.resv(0xfee00000, 0xfeefffff, ResvType::Msi)
        .resv(0x8000000, 0x80fffff, ResvType::SwMsi)
        .set_iommu()
        .probe(vec![x86_msi()])
        .attach(GDOMAIN, false);
    let auto = engine(&s, EngineConfig::default());
    assert!(auto.pairings().is_empty());
    assert!(auto
        .findings()
        .iter()
        .all(|f| f.rule != RuleId::ResvMismatch));
    let fp: ForcedPair = "l2:00:02.0=0000:00:02.0".parse().unwrap();
    let cfg = EngineConfig {
        forced_pairs: vec![fp],
        ..Default::default()
    };
    let forced = engine(&s, cfg);
    let p = forced.pairings();
    assert_eq!(p.len(), 1);
    assert!(p[0].forced);
    assert_eq!(p[0].guest_domain, Some(GDOMAIN));
    assert_eq!(p[0].host_node, HOST);
    assert_eq!(p[0].host.map(|c| c.container), Some(container()));
    let f: Vec<_> = forced
        .findings()
        .into_iter()
        .filter(|f| f.rule == RuleId::ResvMismatch)
        .collect();
    assert_eq!(f.len(), 1, "{f:#?}");
    assert!(f[0].message.contains("RESERVED"));
    // Same through check's option parsing.
    let opts = CheckOptions {
        forced_pairs: CheckOptions::parse_pairs(&["l2:0000:00:02.0=l1:0000:00:02.0"]).unwrap(),
        ..Default::default()
    };
    let r = check::run(&s.events, &nodes(), &opts);
    assert!(r.findings.iter().any(|f| f.rule == "VT002"));
}

#[test]
fn clock_offsets_put_nodes_on_one_timeline() {
    // The guest's monotonic clock is 7 s behind: without offsets the host
    // MAP_DMA would look 7 s late and never match.
    let mut s = Seq::new();
    clean_run(&mut s);
    let mut flat = nodes();
    for n in &mut flat {
        n.clock_offset_ns = 0;
    }
    let mut e = Engine::new(flat, EngineConfig::default());
    for ev in &s.events {
        e.apply(ev);
    }
    assert!(e.pairings().is_empty());
    let ok = engine(&s, EngineConfig::default());
    assert_eq!(ok.pairings().len(), 1);
}

/// The guest probe stamps a request when the device completes it, and QEMU
/// issues MAP_DMA / UNMAP_DMA while handling it: on real runs the host call
/// comes first, by the completion latency (30 µs here).
#[test]
fn pairs_when_host_calls_come_before_the_guest_completion() {
    let mut s = Seq::new();
    s.probes_ok();
    s.resv(0xfee00000, 0xfeefffff, ResvType::Msi);
    s.memslot(4, 0x100000, 0xff00000, SLOT_HVA);
    s.set_iommu();
    s.probe(vec![x86_msi()]).attach(GDOMAIN, false);
    for i in 0..4u64 {
        let (iova, gpa) = (GIOVA + i * 0x1000, GPA + i * 0x1000);
        s.step(5 * MS)
            .host_page(iova, HVA + i * 0x1000, HPA + i * 0x1000);
        s.step(30_000).gmap(iova, 0x1000, gpa);
    }
    s.step(5 * MS).host_unpage(GIOVA + 0x1000);
    s.step(30_000).gunmap(GIOVA + 0x1000, 0x1000);
    s.step(3000 * MS).probes_ok();
    let e = engine(&s, EngineConfig::default());
    let p = e.pairings();
    assert_eq!(p.len(), 1, "{p:#?}");
    assert_eq!(p[0].host.map(|c| c.container), Some(container()));
    assert_eq!(p[0].evidence.matches, 4);
    assert_eq!(p[0].evidence.hva_agree, 4);
    assert_eq!(e.findings(), vec![], "nothing was lost");

    // A host call older than the skew does not match a later guest MAP.
    let mut late = Seq::new();
    late.memslot(4, 0x100000, 0xff00000, SLOT_HVA).set_iommu();
    late.probe(vec![x86_msi()]).attach(GDOMAIN, false);
    late.step(MS).host_page(GIOVA, HVA, HPA);
    late.step(500 * MS).gmap(GIOVA, 0x1000, GPA);
    late.step(3000 * MS);
    let e = engine(&late, EngineConfig::default());
    assert!(e.pairings().is_empty());
}
