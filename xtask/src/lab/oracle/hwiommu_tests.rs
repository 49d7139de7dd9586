//! The hardware-IOMMU oracle on canned QEMU 10.0.2 logs (lines as QEMU
//! printed them in the lab) and journals.

use super::{hwiommu::*, parse_trace, ExOp, Kind};

/// VT-d, caching mode, Linux 6.12: VFIO's superpage probe at IOVA 0, then
/// MAP_DMA 64 KiB at 0x100000 (pinned in runs: one invalidation per
/// `iommu_map`, the kernel's aligned cover), 64 KiB at 0x200000, edu's DMA,
/// then both unmapped.
const VTD: &str = "\
1@1.1:vtd_inv_desc_iotlb_domain iotlb invalidate whole domain 0x3
vtd_inv_desc_iotlb_pages iotlb invalidate domain 0x3 addr 0x0 mask 0x1
vtd_inv_desc_iotlb_pages iotlb invalidate domain 0x3 addr 0x0 mask 0x0
vtd_inv_desc_iotlb_pages iotlb invalidate domain 0x3 addr 0x1000 mask 0x0
vtd_inv_desc_iotlb_pages iotlb invalidate domain 0x3 addr 0x100000 mask 0x0
vtd_inv_desc_iotlb_pages iotlb invalidate domain 0x3 addr 0x101000 mask 0x0
vtd_inv_desc_iotlb_pages iotlb invalidate domain 0x3 addr 0x102000 mask 0x0
vtd_inv_desc_iotlb_pages iotlb invalidate domain 0x3 addr 0x100000 mask 0x3
vtd_inv_desc_iotlb_pages iotlb invalidate domain 0x3 addr 0x100000 mask 0x4
vtd_inv_desc_iotlb_pages iotlb invalidate domain 0x3 addr 0x109000 mask 0x0
vtd_inv_desc_iotlb_pages iotlb invalidate domain 0x3 addr 0x108000 mask 0x3
vtd_inv_desc_iotlb_pages iotlb invalidate domain 0x3 addr 0x200000 mask 0x3
vtd_inv_desc_iotlb_pages iotlb invalidate domain 0x3 addr 0x208000 mask 0x3
vtd_dmar_translate dev 00:01.00 iova 0x100000 -> gpa 0x97c9000 mask 0xfff
vtd_dmar_translate dev 00:01.00 iova 0x200000 -> gpa 0x97d8000 mask 0xfff
vtd_dmar_translate dev 00:01.00 iova 0x201000 -> gpa 0x97d9000 mask 0xfff
vtd_ir_remap_msi_req addr 0xfee00010 data 0x0
vtd_inv_desc_iotlb_pages iotlb invalidate domain 0x3 addr 0x100000 mask 0x4
vtd_inv_desc_iotlb_pages iotlb invalidate domain 0x3 addr 0x200000 mask 0x4
";

fn op(step: &str, kind: Kind, iova: u64, size: u64, ok: bool) -> ExOp {
    ExOp {
        seq: 0,
        step: step.into(),
        kind,
        iova,
        size,
        ok,
        errno: if ok { String::new() } else { "EINVAL".into() },
    }
}

fn ops() -> Vec<ExOp> {
    vec![
        op("map_dma", Kind::Map, 0x100000, 0x10000, true),
        op("map_dma", Kind::Map, 0x200000, 0x10000, true),
        op("fault_map_msi_window", Kind::Map, 0xfee00000, 0x1000, false),
        op("unmap_nothing", Kind::Unmap, 0x300000, 0, true),
        op("unmap_dma", Kind::Unmap, 0x100000, 0x10000, true),
        op("unmap_dma", Kind::Unmap, 0x200000, 0x10000, true),
    ]
}

#[test]
fn vtd_lines_parse() {
    let ev = parse_trace(VTD);
    let inv = vtd_invals(&ev);
    assert_eq!(inv.len(), 14);
    assert_eq!(
        inv[6],
        Inval {
            line: 8,
            domain: 3,
            start: 0x100000,
            end: 0x107fff
        }
    );
    let xl = vtd_xlates(&ev);
    assert_eq!(xl.len(), 3);
    assert_eq!(xl[0].dev, "00:01.0");
    assert_eq!((xl[0].iova, xl[0].phys), (0x100000, 0x97c9000));
}

#[test]
fn psi_cover_is_the_kernels() {
    assert_eq!(psi_cover(0x100000, 0x1000), (0x100000, 0));
    assert_eq!(psi_cover(0x103000, 0x5000), (0x100000, 3));
    // Two pages straddling 0x108000: the smallest aligned block is 16 pages.
    assert_eq!(psi_cover(0x107000, 0x2000), (0x100000, 4));
    assert_eq!(psi_cover(0x10a000, 0x6000), (0x108000, 3));
    assert_eq!(psi_cover(0x200000, 0x10000), (0x200000, 4));
}

#[test]
fn vtd_every_op_covered_in_order() {
    let ev = parse_trace(VTD);
    let r = compare_invals(&ops(), &vtd_invals(&ev), Covered::Both);
    assert!(r.ok(), "{:?}", r.failures());
    assert_eq!(r.domain, Some(3));
    assert_eq!((r.matched_maps, r.matched_unmaps), (2, 2));
}

#[test]
fn vtd_missing_invalidation_fails() {
    // Drop the invalidation of the second 32 KiB of buffer B's map.
    let text = VTD.replace(
        "vtd_inv_desc_iotlb_pages iotlb invalidate domain 0x3 addr 0x208000 mask 0x3\n",
        "",
    );
    let r = compare_invals(&ops(), &vtd_invals(&parse_trace(&text)), Covered::Both);
    assert!(!r.ok());
    // In-order matching lends map B the unmap's invalidation, so the loss
    // shows as uncovered unmaps: either way the run is not clean.
    let f = r.failures().join("\n");
    assert!(f.contains("not covered"), "{f}");
}

#[test]
fn vtd_truncated_trace_fails() {
    let cut: String = VTD.lines().take(17).map(|l| format!("{l}\n")).collect();
    let r = compare_invals(&ops(), &vtd_invals(&parse_trace(&cut)), Covered::Both);
    assert!(!r.ok());
    assert!(r.failures().iter().any(|f| f.starts_with("trace complete")));
}

#[test]
fn vtd_invalidation_in_wrong_domain_fails() {
    let text = VTD.replace(
        "domain 0x3 addr 0x200000 mask 0x4",
        "domain 0x4 addr 0x200000 mask 0x4",
    );
    let r = compare_invals(&ops(), &vtd_invals(&parse_trace(&text)), Covered::Both);
    assert!(!r.ok());
}

#[test]
fn dma_translations_and_msi_bypass() {
    let ev = parse_trace(VTD);
    let xl = vtd_xlates(&ev);
    let c = check_xlates(&xl, Some("00:01.0"), &[0x100000, 0x200100]);
    assert!(c.ok, "{}", c.detail);
    assert!(c.detail.contains("0x200100->0x97d8100"), "{}", c.detail);
    // Another device's translations do not count for edu.
    assert!(!check_xlates(&xl, Some("00:02.0"), &[0x100000]).ok);
    assert!(!check_xlates(&xl, Some("00:01.0"), &[]).ok);
    let r = compare_invals(&ops(), &vtd_invals(&ev), Covered::Both);
    let invs = vtd_invals(&ev);
    assert!(check_msi_bypass(&r, &invs, &xl, (0xfee00000, 0xfeefffff)).ok);
    assert!(check_ir(&ev).ok);
    // A translated access inside the MSI window means the doorbell went
    // through DMA translation: fail.
    let bad = parse_trace(&format!(
        "{VTD}vtd_dmar_translate dev 00:01.00 iova 0xfee00000 -> gpa 0xfee00000 mask 0xfff\n"
    ));
    assert!(!check_msi_bypass(&r, &invs, &vtd_xlates(&bad), (0xfee00000, 0xfeefffff)).ok);
}

#[test]
fn amdvi_lines_parse() {
    let ev = parse_trace(
        "amdvi_pages_inval AMD-Vi pages for domain 0x2 invalidated\n\
         amdvi_translation_result devid: 00:02.0 gpa 0x200100 hpa 0x22ac000\n",
    );
    let xl = amdvi_xlates(&ev);
    assert_eq!(xl.len(), 1);
    assert_eq!(xl[0].dev, "00:02.0");
    let c = check_xlates(&xl, Some("00:02.0"), &[0x200100]);
    assert!(c.detail.contains("0x200100->0x22ac100"), "{}", c.detail);
}

const SMMU: &str = "\
smmuv3_translate_success smmuv3-iommu-memory-region-8-0 sid=0x8 iova=0x100000 translated=0x4497c9000 perm=0x1 stage=1
smmuv3_translate_success smmuv3-iommu-memory-region-8-0 sid=0x8 iova=0x200100 translated=0x4497d8100 perm=0x2 stage=1
smmuv3_translate_success smmuv3-iommu-memory-region-8-0 sid=0x8 iova=0x8000040 translated=0x8090040 perm=0x2 stage=1
smmuv3_range_inval vmid=-1 asid=1 addr=0x100000 tg=1 num_pages=0x10 ttl=3 leaf=1 stage=1
smmuv3_range_inval vmid=-1 asid=1 addr=0x200000 tg=1 num_pages=0x10 ttl=3 leaf=1 stage=1
";

#[test]
fn smmuv3_unmaps_and_sw_msi() {
    let ev = parse_trace(SMMU);
    let invs = smmuv3_invals(&ev);
    assert_eq!(invs[0].end, 0x10ffff);
    let r = compare_invals(&ops(), &invs, Covered::Unmaps);
    assert!(r.ok(), "{:?}", r.failures());
    assert_eq!((r.matched_maps, r.matched_unmaps), (0, 2));
    let xl = smmuv3_xlates(&ev);
    assert_eq!(stream_id("0000:00:01.0").as_deref(), Some("8"));
    assert!(check_xlates(&xl, Some("8"), &[0x100000, 0x200100]).ok);
    let msi = check_sw_msi(&xl, Some("8"), (0x8000000, 0x80fffff));
    assert!(
        msi.ok && msi.detail.contains("0x8000040->0x8090040"),
        "{}",
        msi.detail
    );
    // No MSI write translated in the window: the doorbell was not used.
    let no = parse_trace(&SMMU.replace("iova=0x8000040", "iova=0x300040"));
    assert!(!check_sw_msi(&smmuv3_xlates(&no), Some("8"), (0x8000000, 0x80fffff)).ok);
}

#[test]
fn bdf_forms() {
    assert_eq!(norm_bdf("0000:00:02.0").as_deref(), Some("00:02.0"));
    assert_eq!(norm_bdf("00:01.00").as_deref(), Some("00:01.0"));
    assert_eq!(norm_bdf("garbage"), None);
}

/// vfio-trace's recorded calls behind `VTD`: the superpage probe, buffer
/// A pinned in runs, buffer B in two halves, both unmapped.
fn recorded_vtd() -> Vec<Recorded> {
    vec![
        (Kind::Map, 0x0, 0x2000),
        (Kind::Unmap, 0x0, 0x1000),
        (Kind::Unmap, 0x1000, 0x1000),
        (Kind::Map, 0x100000, 0x1000),
        (Kind::Map, 0x101000, 0x1000),
        (Kind::Map, 0x102000, 0x1000),
        (Kind::Map, 0x103000, 0x5000),
        (Kind::Map, 0x107000, 0x2000),
        (Kind::Map, 0x109000, 0x1000),
        (Kind::Map, 0x10a000, 0x6000),
        (Kind::Map, 0x200000, 0x8000),
        (Kind::Map, 0x208000, 0x8000),
        (Kind::Unmap, 0x100000, 0x10000),
        (Kind::Unmap, 0x200000, 0x10000),
    ]
}

#[test]
fn recorded_iommu_calls_match_vtd_invalidations() {
    let invs = vtd_invals(&parse_trace(VTD));
    let r = compare_invals(&ops(), &invs, Covered::Both);
    let c = check_recorded(&r, &recorded_vtd(), &invs, true);
    assert!(c.ok, "{}", c.detail);
    assert!(
        c.detail.starts_with("10 iommu_map and 4 iommu_unmap"),
        "{}",
        c.detail
    );
    // A map the recording got wrong (size off by a page): its cover takes
    // the next map's invalidation, and the in-order match fails later on.
    let mut rec = recorded_vtd();
    rec[6] = (Kind::Map, 0x103000, 0x6000);
    let c = check_recorded(&r, &rec, &invs, true);
    assert!(
        !c.ok && c.detail.contains("no invalidation"),
        "{}",
        c.detail
    );
    // A map at the wrong IOVA.
    let mut rec = recorded_vtd();
    rec[10] = (Kind::Map, 0x208000, 0x1000);
    assert!(!check_recorded(&r, &rec, &invs, true).ok);
    // An unmap QEMU never saw invalidated.
    let mut rec = recorded_vtd();
    rec.push((Kind::Unmap, 0x300000, 0x1000));
    assert!(!check_recorded(&r, &rec, &invs, true).ok);
    // Nothing recorded is not a pass.
    assert!(!check_recorded(&r, &[], &invs, true).ok);
}

#[test]
fn dma_translations_agree_with_recorded_maps() {
    let xl = vtd_xlates(&parse_trace(VTD));
    let maps = [(0x100000, 0x1000, 0x97c9000), (0x200000, 0x1000, 0x97d8000)];
    let c = check_xlates_vs_recorded(&xl, Some("00:01.0"), &[0x100000, 0x200100], &maps);
    assert!(c.ok, "{}", c.detail);
    // The recording says buffer B's page is elsewhere: caught.
    let wrong = [(0x100000, 0x1000, 0x97c9000), (0x200000, 0x1000, 0x5000000)];
    let c = check_xlates_vs_recorded(&xl, Some("00:01.0"), &[0x100000, 0x200100], &wrong);
    assert!(
        !c.ok && c.detail.contains("gives 0x5000000"),
        "{}",
        c.detail
    );
    assert!(!check_xlates_vs_recorded(&xl, Some("00:01.0"), &[0x100000], &[]).ok);
}
