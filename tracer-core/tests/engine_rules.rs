//! Each rule fires on its minimal event sequence and stays silent on the
//! near miss.

mod engine_support;

use engine_support::*;
use tracer_core::engine::{Engine, EngineConfig, Finding, RuleId};
use tracer_core::event::*;

fn run(s: &Seq) -> Vec<Finding> {
    let mut e = Engine::new(nodes(), EngineConfig::default());
    for ev in &s.events {
        e.apply(ev);
    }
    e.findings()
}

fn count(s: &Seq, rule: RuleId) -> usize {
    run(s).iter().filter(|f| f.rule == rule).count()
}

/// The findings of one rule.
fn of(f: &[Finding], rule: RuleId) -> Vec<&Finding> {
    f.iter().filter(|f| f.rule == rule).collect()
}

/// Host and guest set up like the lab, nothing mapped yet.
fn base() -> Seq {
    let mut s = Seq::new();
    s.probes_ok()
        .resv(0xfee00000, 0xfeefffff, ResvType::Msi)
        .memslot(4, 0x100000, 0xff00000, SLOT_HVA)
        .set_iommu()
        .info(
            &[(0, 0xfedfffff), (0xfef00000, 0x7f_ffff_ffff)],
            0x4020_1000,
        )
        .probe(vec![x86_msi()])
        .attach(GDOMAIN, false);
    s
}

/// One guest page propagated, so guest domain 3 pairs with the container.
fn paired() -> Seq {
    let mut s = base();
    s.step(MS).gmap(GIOVA, 0x1000, GPA);
    s.step(MS).host_page(GIOVA, HVA, HPA);
    s
}

fn settle(s: &mut Seq) {
    s.step(3000 * MS).at(
        HOST,
        0,
        0,
        EventKind::Drops(Drops {
            ring_full: 0,
            pending_full: 0,
            read_failed: 0,
            undecodable: 0,
        }),
    );
}

#[test]
fn baselines_are_silent() {
    let mut s = paired();
    settle(&mut s);
    assert_eq!(run(&s), vec![]);
}

// ---- VT001 ----
#[test]
fn vt001_host_map_dma_in_hw_msi_window() {
    let mut s = base();
    s.map_dma(0xfee00000, HVA, 0x1000, 0);
    assert_eq!(count(&s, RuleId::MapInMsiWindow), 1);
    let mut near = base();
    near.map_dma(0xfed00000, HVA, 0x100000, 0); // ends at 0xfedfffff
    assert_eq!(count(&near, RuleId::MapInMsiWindow), 0);
}

#[test]
fn vt001_kernel_iommu_map_in_hw_msi_window() {
    // A kernel caller (no MAP_DMA) maps a page at the x86 MSI window.
    let mut s = base();
    s.iommu_map(0xfee00000, HPA, 0x1000, 3);
    let f = run(&s);
    let hits = of(&f, RuleId::MapInMsiWindow);
    assert_eq!(hits.len(), 1, "{f:#?}");
    assert_eq!(hits[0].address, Some((0xfee00000, 0xfee00fff)));
    assert!(hits[0].message.contains("iommu_map"), "{}", hits[0].message);
    let mut near = base();
    near.iommu_map(0xfef00000, HPA, 0x1000, 3);
    assert_eq!(count(&near, RuleId::MapInMsiWindow), 0);
}

#[test]
fn vt001_map_dma_in_window_is_one_finding_with_its_iommu_map() {
    let mut s = base();
    s.pin(HVA, 1, HPA)
        .iommu_map(0xfee00000, HPA, 0x1000, 3)
        .map_dma(0xfee00000, HVA, 0x1000, 0);
    let f = run(&s);
    let hits = of(&f, RuleId::MapInMsiWindow);
    assert_eq!(hits.len(), 1, "{f:#?}");
    assert!(hits[0].message.contains("MAP_DMA"), "{}", hits[0].message);
    assert_eq!(hits[0].evidence.len(), 3, "window, iommu_map, MAP_DMA");
}

#[test]
fn vt001_sw_msi_doorbell_iommu_map_is_fine() {
    let mut near = Seq::new();
    near.resv(0x8000000, 0x80fffff, ResvType::SwMsi)
        .iommu_map(0x8000000, 0x8090000, 0x1000, 0x1a);
    assert_eq!(count(&near, RuleId::MapInMsiWindow), 0);
    let mut s = Seq::new();
    s.resv(0x8000000, 0x80fffff, ResvType::SwMsi)
        .iommu_map(0x8010000, HPA, 0x1000, 3);
    assert_eq!(count(&s, RuleId::MapInMsiWindow), 1);
}

#[test]
fn vt001_guest_map_in_reported_msi_region() {
    let mut s = base();
    s.gmap(0xfee00000, 0x1000, GPA);
    let f = run(&s);
    assert_eq!(
        f.iter()
            .filter(|f| f.rule == RuleId::MapInMsiWindow)
            .count(),
        1,
        "{f:#?}"
    );
    let mut near = base();
    near.gmap(0xfef00000, 0x1000, GPA);
    assert_eq!(count(&near, RuleId::MapInMsiWindow), 0);
}

#[test]
fn vt001_doorbell_map_in_drivers_own_sw_msi_window_is_fine() {
    // Endpoint reported no MSI region: the driver adds SW_MSI at 0x8000000
    // and maps its doorbell there with the MMIO flag.
    let mut near = Seq::new();
    near.probe(vec![]).attach(GDOMAIN, false);
    near.vreq(
        ViommuOp::Map,
        GDOMAIN,
        0x8000000,
        0x8000fff,
        0x8090000,
        3 | 4,
        0,
    );
    assert_eq!(count(&near, RuleId::MapInMsiWindow), 0);
    let mut s = Seq::new();
    s.probe(vec![]).attach(GDOMAIN, false);
    s.vreq(ViommuOp::Map, GDOMAIN, 0x8000000, 0x8000fff, GPA, 3, 0);
    assert_eq!(count(&s, RuleId::MapInMsiWindow), 1);
}

// ---- VT002 ----
#[test]
fn vt002_x86_guest_not_told_msi_window() {
    let mut s = Seq::new();
    s.probe(vec![]).attach(GDOMAIN, false);
    assert_eq!(count(&s, RuleId::ResvMismatch), 1);
    let mut near = Seq::new();
    near.probe(vec![x86_msi()]).attach(GDOMAIN, false);
    assert_eq!(count(&near, RuleId::ResvMismatch), 0);
}

/// The nested lab's shape: vfio-trace started after the guest probed its
/// endpoints (no PROBE recorded: the guest kernel's reserved regions, read
/// at start, are the guest's view), and the guest domain was destroyed
/// when its VFIO user exited (the pairing keeps its endpoint).
fn paired_without_probe(host_extra: Option<(u64, u64)>) -> Seq {
    let mut s = Seq::new();
    s.probes_ok().resv(0xfee00000, 0xfeefffff, ResvType::Msi);
    if let Some((a, b)) = host_extra {
        s.resv(a, b, ResvType::Msi);
    }
    s.at(
        GUEST,
        0,
        0,
        EventKind::ResvRegion(ResvRegion {
            group: 2,
            device: edu(),
            start: 0xfee00000,
            end: 0xfeefffff,
            rtype: ResvType::Msi,
        }),
    );
    s.memslot(4, 0x100000, 0xff00000, SLOT_HVA)
        .set_iommu()
        .info(
            &[(0, 0xfedfffff), (0xfef00000, 0x7f_ffff_ffff)],
            0x4020_1000,
        )
        .attach(GDOMAIN, false);
    s.step(MS).gmap(GIOVA, 0x1000, GPA);
    s.step(MS).host_page(GIOVA, HVA, HPA);
    s.step(MS).gunmap(GIOVA, 0x1000);
    s.step(MS).host_unpage(GIOVA);
    s.step(MS).attach(GDOMAIN + 1, false); // back to the default domain
    s
}

#[test]
fn vt002_host_hw_msi_window_the_guest_kernel_never_got() {
    let s = paired_without_probe(Some((0xfd000000, 0xfd0fffff)));
    let f = run(&s);
    let hits = of(&f, RuleId::ResvMismatch);
    assert_eq!(hits.len(), 1, "{f:#?}");
    assert_eq!(hits[0].address, Some((0xfd000000, 0xfd0fffff)));
    let near = paired_without_probe(None);
    assert_eq!(count(&near, RuleId::ResvMismatch), 0);
}

#[test]
fn vt002_host_sw_msi_not_reported_as_reserved() {
    let mut s = paired();
    s.resv(0x8000000, 0x80fffff, ResvType::SwMsi);
    assert_eq!(count(&s, RuleId::ResvMismatch), 1);
    // Near miss: the guest's PROBE carried it as RESERVED (subtype 0).
    let mut near = Seq::new();
    near.probes_ok()
        .resv(0xfee00000, 0xfeefffff, ResvType::Msi)
        .resv(0x8000000, 0x80fffff, ResvType::SwMsi)
        .memslot(4, 0x100000, 0xff00000, SLOT_HVA)
        .set_iommu()
        .probe(vec![
            x86_msi(),
            ResvMem {
                subtype: 0,
                start: 0x8000000,
                end: 0x80fffff,
            },
        ])
        .attach(GDOMAIN, false);
    near.step(MS).gmap(GIOVA, 0x1000, GPA);
    near.step(MS).host_page(GIOVA, HVA, HPA);
    assert_eq!(count(&near, RuleId::ResvMismatch), 0);
}

// ---- VT003 ----
#[test]
fn vt003_guest_msi_address_outside_window_and_unmapped() {
    let mut s = base();
    s.msi_write(GUEST, 0xfed00000);
    assert_eq!(count(&s, RuleId::MsiUnroutable), 1);
    let mut near = base();
    near.msi_write(GUEST, 0xfee01000);
    assert_eq!(count(&near, RuleId::MsiUnroutable), 0);
}

#[test]
fn vt003_guest_msi_address_lands_in_a_dma_buffer() {
    let mut s = base();
    s.gmap(0x300000, 0x1000, GPA).msi_write(GUEST, 0x300040);
    let f = run(&s);
    let f: Vec<_> = f
        .iter()
        .filter(|f| f.rule == RuleId::MsiUnroutable)
        .collect();
    assert_eq!(f.len(), 1);
    assert!(f[0].message.contains("buffer"), "{}", f[0].message);
}

#[test]
fn vt003_names_the_writing_process_containers_not_earlier_owners() {
    // Two exerciser processes in turn: each opens a container, maps, and
    // enables edu's MSI; the second's vector is programmed off the window.
    let mut s = base();
    for pid in [200u32, 300] {
        s.step(MS).at(
            HOST,
            pid,
            pid,
            EventKind::VfioMapDma(VfioMapDma {
                container: (u64::from(pid) << 32) | 4,
                iova: 0x100000,
                vaddr: HVA,
                size: 0x1000,
                flags: 3,
                errno: 0,
            }),
        );
        s.at(
            HOST,
            pid,
            pid,
            EventKind::VfioSetIrqs(VfioSetIrqs {
                device: edu(),
                index: 1,
                start: 0,
                count: 1,
                flags: 0x24,
                eventfds: vec![7],
                eventfds_truncated: false,
                errno: 0,
            }),
        );
    }
    s.at(
        HOST,
        300,
        300,
        EventKind::MsiWrite(MsiWrite {
            device: edu(),
            vector: 0,
            address: 0xfef00000,
            data: 0x23,
        }),
    );
    let f = run(&s);
    let hits = of(&f, RuleId::MsiUnroutable);
    assert_eq!(hits.len(), 1, "{f:#?}");
    assert!(
        hits[0].message.contains("container 300:4"),
        "{}",
        hits[0].message
    );
    assert!(!hits[0].message.contains("200:4"), "{}", hits[0].message);
}

fn doorbell(s: &mut Seq, iova: u64, paddr: u64) {
    s.at(
        HOST,
        QEMU,
        QEMU_TID,
        EventKind::MsiDoorbellMap(MsiDoorbellMap {
            device: edu(),
            domain: DOMAIN,
            iova,
            doorbell_paddr: paddr,
        }),
    );
}

fn cookie(s: &mut Seq) {
    s.host(EventKind::MsiCookie(MsiCookie {
        domain: DOMAIN,
        base: 0x8000000,
    }));
}

#[test]
fn vt003_host_device_programmed_with_unmapped_address() {
    let mut s = Seq::new();
    doorbell(&mut s, 0x8000000, 0x8090000);
    s.msi_write(HOST, 0x9000040);
    assert_eq!(count(&s, RuleId::MsiUnroutable), 1);
    let mut near = Seq::new();
    doorbell(&mut near, 0x8000000, 0x8090000);
    near.msi_write(HOST, 0x8000040);
    assert_eq!(count(&near, RuleId::MsiUnroutable), 0);
}

// ---- VT004 ----
#[test]
fn vt004_sw_msi_address_without_doorbell_page() {
    // Measured arm64 sequence, but the device got an IOVA one page off.
    let mut s = Seq::new();
    cookie(&mut s);
    doorbell(&mut s, 0x8000000, 0x8090000);
    s.iommu_map(0x8000000, 0x8090000, 0x1000, 0x1a);
    s.msi_write(HOST, 0x8001040);
    assert_eq!(count(&s, RuleId::SwMsiUnbacked), 1);
    let mut near = Seq::new();
    cookie(&mut near);
    doorbell(&mut near, 0x8000000, 0x8090000);
    near.iommu_map(0x8000000, 0x8090000, 0x1000, 0x1a);
    near.msi_write(HOST, 0x8000040);
    assert_eq!(run(&near), vec![]);
}

#[test]
fn vt004_doorbell_mapping_differs_from_prepare_msi() {
    let mut s = Seq::new();
    cookie(&mut s);
    doorbell(&mut s, 0x8000000, 0x8090000);
    s.iommu_map(0x8000000, 0x8095000, 0x1000, 0x1a);
    assert_eq!(count(&s, RuleId::SwMsiUnbacked), 1);
}

#[test]
fn vt004_guest_doorbell_iova_not_mapped() {
    let mut s = Seq::new();
    s.probe(vec![])
        .attach(GDOMAIN, false)
        .msi_write(GUEST, 0x8000040);
    assert_eq!(count(&s, RuleId::SwMsiUnbacked), 1);
    let mut near = Seq::new();
    near.probe(vec![]).attach(GDOMAIN, false);
    near.vreq(
        ViommuOp::Map,
        GDOMAIN,
        0x8000000,
        0x8000fff,
        0x8090000,
        2 | 4,
        0,
    );
    near.msi_write(GUEST, 0x8000040);
    assert_eq!(count(&near, RuleId::SwMsiUnbacked), 0);
    assert_eq!(count(&near, RuleId::MsiUnroutable), 0);
}

// ---- VT005 ----
#[test]
fn vt005_sw_msi_window_overlaps_vm_ram() {
    let mut s = Seq::new();
    s.resv(0x8000000, 0x80fffff, ResvType::SwMsi)
        .memslot(1, 0x4000000, 0x8000000, SLOT_HVA)
        .set_iommu();
    assert_eq!(count(&s, RuleId::SwMsiCollision), 1);
    let mut near = Seq::new();
    near.resv(0x8000000, 0x80fffff, ResvType::SwMsi)
        .memslot(1, 0x40000000, 0x8000000, SLOT_HVA)
        .memslot(0, 0, 0x8000000, SLOT_HVA - 0x8000000) // flash ends at 0x7ffffff
        .set_iommu();
    assert_eq!(count(&near, RuleId::SwMsiCollision), 0);
}

#[test]
fn vt005_one_finding_per_window_however_many_groups_report_it() {
    // arm64 lab: every group and the VFIO domain's cookie name the same
    // window; the VM's RAM at GPA 0 collides with it once.
    let mut s = Seq::new();
    s.resv(0x8000000, 0x80fffff, ResvType::SwMsi);
    s.host(EventKind::ResvRegion(ResvRegion {
        group: 6,
        device: Device::from_rid(0, 0x18),
        start: 0x8000000,
        end: 0x80fffff,
        rtype: ResvType::SwMsi,
    }));
    cookie(&mut s);
    s.memslot(0, 0, 0x10000000, SLOT_HVA).set_iommu();
    let f = run(&s);
    let hits = of(&f, RuleId::SwMsiCollision);
    assert_eq!(hits.len(), 1, "{f:#?}");
    assert_eq!(hits[0].address, Some((0x8000000, 0x80fffff)));
    assert!(hits[0].message.contains("group 6"), "{}", hits[0].message);
}

#[test]
fn vt005_cookie_over_existing_dma_mapping() {
    let mut s = Seq::new();
    s.iommu_map(0x8000000, HPA, 0x1000, 3);
    cookie(&mut s);
    assert_eq!(count(&s, RuleId::SwMsiCollision), 1);
    let mut near = Seq::new();
    near.iommu_map(0x8100000, HPA, 0x1000, 3);
    cookie(&mut near);
    assert_eq!(count(&near, RuleId::SwMsiCollision), 0);
}

// ---- VT006 ----
#[test]
fn vt006_guest_map_not_propagated() {
    let mut s = paired();
    s.step(MS).gmap(GIOVA + 0x1000, 0x1000, GPA + 0x1000);
    settle(&mut s);
    assert_eq!(count(&s, RuleId::ChainBreak), 1);
    let mut near = paired();
    near.step(MS).gmap(GIOVA + 0x1000, 0x1000, GPA + 0x1000);
    near.step(900 * MS)
        .host_page(GIOVA + 0x1000, HVA + 0x1000, HPA + 0x1000);
    settle(&mut near);
    assert_eq!(count(&near, RuleId::ChainBreak), 0);
    // The trace ending inside the window proves nothing yet.
    let mut early = paired();
    early.step(MS).gmap(GIOVA + 0x1000, 0x1000, GPA + 0x1000);
    assert_eq!(count(&early, RuleId::ChainBreak), 0);
}

#[test]
fn vt006_host_hva_not_memslot_of_gpa() {
    let mut s = base();
    s.step(MS).gmap(GIOVA, 0x1000, GPA);
    s.step(MS).host_page(GIOVA, HVA + 0x5000, HPA);
    assert_eq!(count(&s, RuleId::ChainBreak), 1);
}

#[test]
fn vt006_iommu_map_not_the_pinned_page() {
    let mut s = base();
    s.pin(HVA, 1, HPA)
        .iommu_map(GIOVA, HPA + 0x1000, 0x1000, 3)
        .map_dma(GIOVA, HVA, 0x1000, 0);
    assert_eq!(count(&s, RuleId::ChainBreak), 1);
    // Another thread's iommu_map is not part of this MAP_DMA.
    let mut near = base();
    near.pin(HVA, 1, HPA);
    near.at(
        HOST,
        QEMU,
        999,
        EventKind::IommuMap(IommuMap {
            domain: DOMAIN,
            iova: GIOVA,
            paddr: HPA + 0x1000,
            size: 0x1000,
            prot: 3,
            errno: 0,
        }),
    );
    near.map_dma(GIOVA, HVA, 0x1000, 0);
    assert_eq!(count(&near, RuleId::ChainBreak), 0);
}

// ---- VT007 ----
#[test]
fn vt007_unmap_dma_returned_less_and_mapping_stays() {
    let mut s = base();
    s.host_page(GIOVA, HVA, HPA).unmap_dma(GIOVA, 0x800, 0);
    assert_eq!(count(&s, RuleId::StaleMapping), 1);
    // Lab: UNMAP of nothing returns 0 with size 0 — nothing stays, silent.
    let mut near = base();
    near.unmap_dma(0x500000, 0x1000, 0);
    assert_eq!(count(&near, RuleId::StaleMapping), 0);
}

#[test]
fn vt007_guest_unmap_not_propagated() {
    let mut s = paired();
    s.step(MS).gunmap(GIOVA, 0x1000);
    settle(&mut s);
    assert_eq!(count(&s, RuleId::StaleMapping), 1);
    let mut near = paired();
    near.step(MS).gunmap(GIOVA, 0x1000);
    near.step(MS).host_unpage(GIOVA);
    settle(&mut near);
    assert_eq!(count(&near, RuleId::StaleMapping), 0);
}

/// Lab (nested fault pass): the VMM drops one page's UNMAP_DMA and only
/// its reset, 260 ms later, unmaps the whole space: the page stayed mapped
/// meanwhile, so the teardown is not the guest UNMAP's propagation.
#[test]
fn vt007_guest_unmap_not_propagated_until_a_teardown() {
    let mut s = paired();
    s.step(MS).gunmap(GIOVA, 0x1000);
    s.step(260 * MS).unmap_dma(0, 1 << 63, 0x1000);
    settle(&mut s);
    assert_eq!(count(&s, RuleId::StaleMapping), 1);
    let f = run(&s);
    let stale = f.iter().find(|f| f.rule == RuleId::StaleMapping).unwrap();
    assert_eq!(
        stale.address,
        Some((GIOVA, GIOVA + 0xfff)),
        "located at the page"
    );
    // Near miss: each page's own UNMAP_DMA, then the teardown.
    let mut near = paired();
    near.step(MS).gunmap(GIOVA, 0x1000);
    near.step(MS).host_unpage(GIOVA);
    near.step(260 * MS).unmap_dma(0, 1 << 63, 0);
    settle(&mut near);
    assert_eq!(count(&near, RuleId::StaleMapping), 0);
}

/// Lab (nested fault pass): a two-page guest MAP/UNMAP reaches the host
/// page by page (QEMU's notifier splits it); the UNMAP of one page dropped
/// leaves it mapped.
#[test]
fn vt007_two_page_guest_unmap_with_one_page_not_propagated() {
    let two_pages = || {
        let mut s = base();
        s.step(MS).gmap(GIOVA, 0x2000, GPA);
        s.step(MS).host_page(GIOVA, HVA, HPA);
        s.step(MS)
            .host_page(GIOVA + 0x1000, HVA + 0x1000, HPA + 0x1000);
        s.step(MS).gunmap(GIOVA, 0x2000);
        s.step(MS).host_unpage(GIOVA);
        s
    };
    let mut s = two_pages();
    settle(&mut s);
    assert_eq!(count(&s, RuleId::StaleMapping), 1);
    assert_eq!(count(&s, RuleId::ChainBreak), 0, "the MAP was propagated");
    let mut near = two_pages();
    near.step(MS).host_unpage(GIOVA + 0x1000);
    settle(&mut near);
    assert_eq!(count(&near, RuleId::StaleMapping), 0);
}

#[test]
fn vt007_guest_unmap_leaving_partially_covered_mapping() {
    let mut s = base();
    s.gmap(GIOVA, 0x2000, GPA);
    s.vreq(ViommuOp::Unmap, GDOMAIN, GIOVA, GIOVA + 0xfff, 0, 0, 5);
    assert_eq!(count(&s, RuleId::StaleMapping), 1);
}

// ---- VT008 ----
#[test]
fn vt008_eexist_points_at_existing_mapping() {
    let mut s = base();
    s.host_page(GIOVA, HVA, HPA)
        .map_dma(GIOVA, HVA + 0x1000, 0x1000, 17);
    let f = run(&s);
    let f: Vec<_> = f.iter().filter(|f| f.rule == RuleId::MapFailed).collect();
    assert_eq!(f.len(), 1);
    assert!(
        f[0].message.contains("EEXIST: overlaps the live mapping"),
        "{}",
        f[0].message
    );
    assert_eq!(f[0].evidence.len(), 2);
}

#[test]
fn vt008_einval_reserved_window_and_missing_set_iommu() {
    let mut s = base();
    s.map_dma(0xfee00000, HVA, 0x1000, 22);
    let f = run(&s);
    assert!(
        f.iter()
            .any(|f| f.rule == RuleId::MapFailed && f.message.contains("reserved Msi window")),
        "{f:#?}"
    );
    let mut s = Seq::new();
    s.map_dma(GIOVA, HVA, 0x1000, 22);
    let f = run(&s);
    assert!(
        f.iter().any(|f| f.message.contains("VFIO_SET_IOMMU")),
        "{f:#?}"
    );
    let mut s = base();
    s.map_dma(GIOVA, HVA, 0x800, 22);
    assert!(run(&s).iter().any(|f| f.message.contains("not aligned")));
    let mut near = base();
    near.map_dma(GIOVA, HVA, 0x1000, 12);
    assert_eq!(count(&near, RuleId::MapFailed), 0);
}

#[test]
fn vt008_failed_guest_map_explained() {
    let mut s = base();
    s.gmap(GIOVA, 0x1000, GPA);
    s.vreq(ViommuOp::Map, GDOMAIN, GIOVA, GIOVA + 0xfff, GPA, 3, 4);
    let f = run(&s);
    assert!(f
        .iter()
        .any(|f| f.rule == RuleId::MapFailed && f.message.contains("overlaps the live mapping")));
}

// ---- VT009 ----
#[test]
fn vt009_guest_iova_beyond_host_width() {
    let mut s = paired();
    s.step(MS).gmap(0x80_0000_0000, 0x1000, GPA + 0x1000);
    assert_eq!(count(&s, RuleId::WidthGranule), 1);
    let mut near = paired();
    near.step(MS).gmap(0x7f_ffff_f000, 0x1000, GPA + 0x1000);
    assert_eq!(count(&near, RuleId::WidthGranule), 0);
}

#[test]
fn vt009_granule_mismatch() {
    let mut s = base();
    s.info(
        &[(0, 0xfedfffff), (0xfef00000, 0x7f_ffff_ffff)],
        0x2001_0000,
    ); // 64K, 512M
    s.step(MS).gmap(0x110000, 0x10000, GPA);
    s.step(MS).host_page(0x110000, HVA, HPA);
    s.step(MS).gmap(0x201000, 0x1000, GPA + 0x20000);
    assert_eq!(count(&s, RuleId::WidthGranule), 1);
}

/// Above the host's 39-bit IOVA space (base(): last valid 0x7f_ffff_ffff),
/// where a guest told a wider one maps (the nested lab's fault pass).
const BEYOND: u64 = 1 << 40;

/// The guest maps a page at `BEYOND` and unmaps it; the VMM's MAP_DMA of it
/// fails with `errno` (before or after the guest MAP's completion is seen),
/// its UNMAP_DMA removes nothing.
fn beyond_refused(host_first: bool, errno: i32) -> Seq {
    let mut s = paired();
    let (gpa, hva) = (GPA + 0x1000, HVA + 0x1000);
    if host_first {
        s.step(MS).map_dma(BEYOND, hva, 0x1000, errno);
        s.step(MS).gmap(BEYOND, 0x1000, gpa);
    } else {
        s.step(MS).gmap(BEYOND, 0x1000, gpa);
        s.step(MS).map_dma(BEYOND, hva, 0x1000, errno);
    }
    s.step(10 * MS).unmap_dma(BEYOND, 0x1000, 0);
    s.step(MS).gunmap(BEYOND, 0x1000);
    settle(&mut s);
    s
}

#[test]
fn vt009_refused_map_dma_beyond_width_is_one_finding() {
    for host_first in [true, false] {
        let s = beyond_refused(host_first, 22);
        let f = run(&s);
        // One root cause, one finding: no VT008 for the refused MAP_DMA,
        // no VT006/VT007, although the guest mapping is gone by now.
        assert_eq!(f.len(), 1, "host first {host_first}: {f:#?}");
        assert_eq!(f[0].rule, RuleId::WidthGranule);
        assert_eq!(f[0].address, Some((BEYOND, BEYOND + 0xfff)));
        assert!(
            f[0].message.contains("0x7fffffffff") && f[0].message.contains("EINVAL"),
            "{}",
            f[0].message
        );
        // GET_INFO, the guest MAP, the refused MAP_DMA.
        let kinds: Vec<&str> = f[0]
            .evidence
            .iter()
            .map(|&id| match &s.events[id as usize].kind {
                EventKind::VfioIommuInfo(_) => "info",
                EventKind::ViommuReq(_) => "guest_map",
                EventKind::VfioMapDma(m) if m.errno == 22 && m.iova == BEYOND => "refused",
                _ => "other",
            })
            .collect();
        assert_eq!(kinds, ["info", "guest_map", "refused"], "{f:#?}");
    }
}

#[test]
fn vt009_lost_map_beyond_width_is_not_a_chain_break() {
    let mut s = paired();
    s.step(MS).gmap(BEYOND, 0x1000, GPA + 0x1000);
    settle(&mut s);
    let f = run(&s);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].rule, RuleId::WidthGranule);
    assert!(f[0].message.contains("never reached the host"), "{f:#?}");
    // Near miss: a lost MAP inside the host's range stays a chain break.
    let mut near = paired();
    near.step(MS).gmap(0x7f_ffff_f000, 0x1000, GPA + 0x1000);
    settle(&mut near);
    let f = run(&near);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].rule, RuleId::ChainBreak);
}

#[test]
fn vt008_stays_for_failures_width_does_not_explain() {
    // A host-only MAP_DMA beyond the ranges (no guest MAP behind it: the
    // single-level lab's fault_map_beyond_iova_ranges) is VT008.
    let mut s = paired();
    s.step(MS).map_dma(BEYOND, HVA + 0x1000, 0x1000, 22);
    settle(&mut s);
    let f = run(&s);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].rule, RuleId::MapFailed);
    // A guest MAP inside the host's ranges whose MAP_DMA fails: VT008.
    let mut s = paired();
    let iova = 0x7f_ffff_f000;
    s.step(MS).gmap(iova, 0x1000, GPA + 0x1000);
    s.step(MS).map_dma(iova, HVA + 0x1000, 0x1000, 12);
    s.step(MS).map_dma(GIOVA, HVA, 0x1000, 17);
    settle(&mut s);
    let f = run(&s);
    assert_eq!(
        f.iter().map(|f| f.rule).collect::<Vec<_>>(),
        [RuleId::MapFailed],
        "{f:#?}"
    );
}

// ---- VT010 ----
fn vector(s: &mut Seq, eventfd: i32, enabled: bool) {
    s.host(EventKind::MsiVector(MsiVector {
        device: edu(),
        index: 2,
        vector: 0,
        eventfd,
        enabled,
    }));
}

fn set_irqs(s: &mut Seq, flags: u32, eventfds: Vec<i32>) {
    s.host(EventKind::VfioSetIrqs(VfioSetIrqs {
        device: edu(),
        index: 2,
        start: 0,
        count: 1,
        flags,
        eventfds,
        eventfds_truncated: false,
        errno: 0,
    }));
}

#[test]
fn vt010_vector_enabled_without_eventfd() {
    let mut s = Seq::new();
    vector(&mut s, -1, true);
    assert_eq!(count(&s, RuleId::IrqOrdering), 1);
    let mut near = Seq::new();
    vector(&mut near, 7, true);
    vector(&mut near, -1, false);
    assert_eq!(count(&near, RuleId::IrqOrdering), 0);
}

#[test]
fn vt010_vector_signalled_without_trigger() {
    let mut s = Seq::new();
    set_irqs(&mut s, 0x20 | 1, vec![]);
    assert_eq!(count(&s, RuleId::IrqOrdering), 1);
    let mut near = Seq::new();
    set_irqs(&mut near, 0x20 | 4, vec![9]);
    set_irqs(&mut near, 0x20 | 1, vec![]);
    assert_eq!(count(&near, RuleId::IrqOrdering), 0);
}

/// The kernel's all-zero MSI message clears a vector: never VT003, and a
/// vector left bound to its eventfd after the SET_IRQS that cleared it is
/// VT010. The lab's teardown order (zeroed write, vector unbound, SET_IRQS
/// exit) is silent.
#[test]
fn vt010_vector_left_bound_after_its_message_was_cleared() {
    let zero = |s: &mut Seq| {
        s.host(EventKind::MsiWrite(MsiWrite {
            device: edu(),
            vector: 0,
            address: 0,
            data: 0,
        }));
    };
    let mut s = Seq::new();
    s.set_iommu().host_page(GIOVA, HVA, HPA);
    s.host(EventKind::MsiWrite(MsiWrite {
        device: edu(),
        vector: 0,
        address: 0xfee0_1000,
        data: 0x24,
    }));
    vector(&mut s, 9, true);
    set_irqs(&mut s, 0x20 | 4, vec![9]);
    let mut teardown = s.clone();
    // Cleared, then a SET_IRQS (unmask) that leaves the eventfd bound.
    zero(&mut s);
    set_irqs(&mut s, 0x10 | 1, vec![]);
    let f = run(&s);
    assert_eq!(count(&s, RuleId::IrqOrdering), 1, "{f:#?}");
    assert_eq!(count(&s, RuleId::MsiUnroutable), 0, "{f:#?}");
    // Normal teardown.
    zero(&mut teardown);
    vector(&mut teardown, -1, false);
    teardown.host(EventKind::VfioSetIrqs(VfioSetIrqs {
        device: edu(),
        index: 2,
        start: 0,
        count: 0,
        flags: 0x20 | 1,
        eventfds: vec![],
        eventfds_truncated: false,
        errno: 0,
    }));
    assert_eq!(run(&teardown), vec![]);
}

fn mask(s: &mut Seq, index: u32, masked: bool, can_mask: Option<bool>) {
    s.host(EventKind::MsiMask(MsiMask {
        device: edu(),
        index,
        vector: 0,
        masked,
        can_mask,
        is_virtual: false,
    }));
}

/// What the kernel does for SET_IRQS binding eventfd 9 to MSI-X vector 0:
/// `request_irq()` unmasks it inside `vfio_msi_set_vector_signal()`.
fn bound_unmasked(index: u32, can_mask: Option<bool>) -> Seq {
    let mut s = Seq::new();
    s.set_iommu().host_page(GIOVA, HVA, HPA);
    s.host(EventKind::MsiWrite(MsiWrite {
        device: edu(),
        vector: 0,
        address: 0xfee0_1000,
        data: 0x24,
    }));
    mask(&mut s, index, false, can_mask);
    s.host(EventKind::MsiVector(MsiVector {
        device: edu(),
        index,
        vector: 0,
        eventfd: 9,
        enabled: true,
    }));
    s.host(EventKind::VfioSetIrqs(VfioSetIrqs {
        device: edu(),
        index,
        start: 0,
        count: 1,
        flags: 0x20 | 4,
        eventfds: vec![9],
        eventfds_truncated: false,
        errno: 0,
    }));
    s
}

/// MSI/MSI-X disable (DATA_NONE, count 0): free_irq() per vector (mask
/// when the kernel is correct, then the zeroed message of the deactivation),
/// the vector unbound, the ioctl's exit.
fn disable(s: &mut Seq, index: u32, masks: bool, can_mask: Option<bool>) {
    if masks {
        mask(s, index, true, can_mask);
    }
    s.host(EventKind::MsiWrite(MsiWrite {
        device: edu(),
        vector: 0,
        address: 0,
        data: 0,
    }));
    s.host(EventKind::MsiVector(MsiVector {
        device: edu(),
        index,
        vector: 0,
        eventfd: -1,
        enabled: false,
    }));
    s.host(EventKind::VfioSetIrqs(VfioSetIrqs {
        device: edu(),
        index,
        start: 0,
        count: 0,
        flags: 0x20 | 1,
        eventfds: vec![],
        eventfds_truncated: false,
        errno: 0,
    }));
}

#[test]
fn vt010_vector_disabled_without_masking() {
    let mut s = bound_unmasked(2, Some(true));
    disable(&mut s, 2, false, Some(true));
    let f = run(&s);
    assert_eq!(count(&s, RuleId::IrqOrdering), 1, "{f:#?}");
    let v = f.iter().find(|f| f.rule == RuleId::IrqOrdering).unwrap();
    assert!(v.message.contains("never masked"), "{}", v.message);
    assert_eq!(v.device, Some(edu()));
    // Evidence: the bind, the unmask, the cleared message, the unbind.
    assert_eq!(v.evidence.len(), 4, "{v:#?}");
    // The near miss: the same teardown with the kernel's mask.
    let mut near = bound_unmasked(2, Some(true));
    disable(&mut near, 2, true, Some(true));
    assert_eq!(run(&near), vec![]);
}

/// A device with no mask bit for the vector (edu's MSI has no per-vector
/// masking): the kernel's mask is a no-op there, so a missing one is not a
/// finding; nor is a vector whose mask capability is unknown.
#[test]
fn vt010_unmaskable_vectors_are_not_judged() {
    for can_mask in [Some(false), None] {
        let mut s = bound_unmasked(1, can_mask);
        disable(&mut s, 1, false, can_mask);
        assert_eq!(run(&s), vec![], "can_mask {can_mask:?}");
    }
}

/// A de-assign seen only through SET_IRQS (no msi_vector probe) is judged
/// too; with both probes the vector is reported once.
#[test]
fn vt010_deassign_without_masking_via_set_irqs() {
    let deassign = |s: &mut Seq| {
        s.host(EventKind::VfioSetIrqs(VfioSetIrqs {
            device: edu(),
            index: 2,
            start: 0,
            count: 1,
            flags: 0x20 | 4,
            eventfds: vec![-1],
            eventfds_truncated: false,
            errno: 0,
        }));
    };
    let mut s = Seq::new();
    mask(&mut s, 2, false, Some(true));
    s.host(EventKind::VfioSetIrqs(VfioSetIrqs {
        device: edu(),
        index: 2,
        start: 0,
        count: 1,
        flags: 0x20 | 4,
        eventfds: vec![9],
        eventfds_truncated: false,
        errno: 0,
    }));
    deassign(&mut s);
    assert_eq!(count(&s, RuleId::IrqOrdering), 1);
    let mut both = bound_unmasked(2, Some(true));
    both.host(EventKind::MsiVector(MsiVector {
        device: edu(),
        index: 2,
        vector: 0,
        eventfd: -1,
        enabled: false,
    }));
    deassign(&mut both);
    assert_eq!(count(&both, RuleId::IrqOrdering), 1);
    // Re-binding another eventfd replaces the trigger: not a teardown.
    let mut rebind = bound_unmasked(2, Some(true));
    rebind.host(EventKind::MsiVector(MsiVector {
        device: edu(),
        index: 2,
        vector: 0,
        eventfd: 10,
        enabled: true,
    }));
    assert_eq!(run(&rebind), vec![]);
}

#[test]
fn every_rule_has_a_stable_id_and_explanation() {
    let ids: Vec<&str> = RuleId::ALL.iter().map(|r| r.id()).collect();
    assert_eq!(
        ids,
        [
            "VT001", "VT002", "VT003", "VT004", "VT005", "VT006", "VT007", "VT008", "VT009",
            "VT010"
        ]
    );
    for r in RuleId::ALL {
        assert_eq!(RuleId::parse(r.name()), Some(r));
        assert_eq!(RuleId::parse(&r.id().to_lowercase()), Some(r));
        assert!(r.explanation().len() > 100);
    }
}
