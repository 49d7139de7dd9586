//! The lab's clean nested run: no findings, the right pairing, full chains.

mod engine_support;

use engine_support::*;
use tracer_core::check::{self, CheckOptions, Verdict};
use tracer_core::engine::chain::ChainStart;
use tracer_core::engine::{ChainQuery, Engine, EngineConfig, GuestDomainKey, HopKind, HopStatus};

fn engine_for(s: &Seq) -> Engine {
    let mut e = Engine::new(nodes(), EngineConfig::default());
    for ev in &s.events {
        e.apply(ev);
    }
    e
}

#[test]
fn clean_run_has_no_findings() {
    let mut s = Seq::new();
    clean_run(&mut s);
    let e = engine_for(&s);
    assert_eq!(e.findings(), vec![], "clean run must be silent");
    let r = check::run(&s.events, &nodes(), &CheckOptions::default());
    assert_eq!(r.summary.verdict, Verdict::Clean, "{}", r.to_text());
    assert_eq!(r.exit_code(), 0);
}

#[test]
fn clean_run_pairs_guest_domain_with_qemu_container() {
    let mut s = Seq::new();
    clean_run(&mut s);
    let e = engine_for(&s);
    let p = e.pairings();
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].guest_node, GUEST);
    assert_eq!(p[0].guest_domain, Some(GDOMAIN));
    assert_eq!(p[0].guest_endpoints, vec![EP]);
    assert_eq!(p[0].host.map(|c| c.container), Some(container()));
    assert_eq!(p[0].evidence.matches, 3);
    assert_eq!(p[0].evidence.hva_agree, 3);
    assert!(!p[0].forced);
}

#[test]
fn chain_of_the_lab_page_agrees_at_every_hop() {
    let mut s = Seq::new();
    clean_run(&mut s);
    let e = engine_for(&s);
    let q = ChainQuery {
        start: ChainStart::GuestDomain(GuestDomainKey {
            node: GUEST,
            domain: GDOMAIN,
        }),
        iova: GIOVA,
        size: 0x1000,
    };
    let chains = e.chain(&q);
    assert_eq!(chains.len(), 1);
    let c = &chains[0];
    assert_eq!(c.broken_at, None, "{c:#?}");
    let hops: Vec<(HopKind, u64, Option<u64>)> =
        c.hops.iter().map(|h| (h.kind, h.from, h.to)).collect();
    assert_eq!(
        hops,
        vec![
            (HopKind::GuestIovaToGpa, GIOVA, Some(GPA)),
            (HopKind::GpaToHva, GPA, Some(HVA)),
            (HopKind::HostIovaToHva, GIOVA, Some(HVA)),
            (HopKind::HvaToHpa, HVA, Some(HPA)),
            (HopKind::IovaToHpa, GIOVA, Some(HPA)),
        ]
    );
    assert!(c.hops.iter().all(|h| h.ev.is_some()));
    // The unmapped third page breaks at the first hop.
    let q3 = ChainQuery {
        iova: GIOVA + 0x2000,
        ..q
    };
    let c3 = e.chain(&q3);
    assert_eq!(c3[0].broken_at, Some(0));
    assert!(matches!(c3[0].hops[0].status, HopStatus::Missing { .. }));
}

#[test]
fn chain_shows_the_disagreeing_hop() {
    let mut s = Seq::new();
    clean_run(&mut s);
    // A guest page whose host MAP_DMA uses the wrong HVA.
    s.step(5 * MS).gmap(0x200000, 0x1000, GPA + 0x10000);
    s.step(MS).host_page(0x200000, HVA + 0x99000, HPA + 0x10000);
    let e = engine_for(&s);
    let q = ChainQuery {
        start: ChainStart::GuestDomain(GuestDomainKey {
            node: GUEST,
            domain: GDOMAIN,
        }),
        iova: 0x200000,
        size: 0x1000,
    };
    let c = &e.chain(&q)[0];
    assert_eq!(c.broken_at, Some(2), "{c:#?}");
    assert_eq!(
        c.hops[2].status,
        HopStatus::Disagree {
            expected: HVA + 0x10000
        }
    );
}

#[test]
fn deterministic() {
    let mut s = Seq::new();
    clean_run(&mut s);
    s.step(5 * MS).gmap(0x200000, 0x1000, GPA + 0x10000);
    s.step(MS).host_page(0x200000, HVA + 0x99000, HPA + 0x10000);
    let a = check::run(&s.events, &nodes(), &CheckOptions::default());
    let b = check::run(&s.events, &nodes(), &CheckOptions::default());
    assert_eq!(a.to_json(), b.to_json());
    // Input order does not matter: the check sorts by wall-clock time.
    let mut rev = s.events.clone();
    rev.reverse();
    let c = check::run(&rev, &nodes(), &CheckOptions::default());
    assert_eq!(a.findings.len(), c.findings.len());
    assert_eq!(
        a.findings.iter().map(|f| &f.message).collect::<Vec<_>>(),
        c.findings.iter().map(|f| &f.message).collect::<Vec<_>>()
    );
}
