//! The oracle on canned traces and journals.

use serde_json::json;

use super::*;

const TRACE: &str = "\
virtio_iommu_attach domain=1 endpoint=16
virtio_iommu_map domain=1 virt_start=0xfffff000 virt_end=0xffffffff phys_start=0x1000 flags=3
virtio_iommu_attach domain=2 endpoint=16
virtio_iommu_map domain=2 virt_start=0x0 virt_end=0x1fff phys_start=0x5000000 flags=3
virtio_iommu_unmap domain=2 virt_start=0x0 virt_end=0xfff
321@1700000000.000001:virtio_iommu_map domain=2 virt_start=0x100000 virt_end=0x107fff phys_start=0x2000000 flags=3
virtio_iommu_map domain=2 virt_start=0x108000 virt_end=0x10ffff phys_start=0x3000000 flags=3
virtio_iommu_map domain=2 virt_start=0x200000 virt_end=0x20ffff phys_start=0x4000000 flags=3
virtio_iommu_map domain=2 virt_start=0x8000000 virt_end=0x8000fff phys_start=0x8090000 flags=6
virtio_iommu_unmap domain=2 virt_start=0x100000 virt_end=0x10ffff
virtio_iommu_unmap_done domain=2 virt_start=0x100000 virt_end=0x10ffff
virtio_iommu_unmap domain=2 virt_start=0x200000 virt_end=0x20ffff
";

fn call(step: &str, ioctl: &str, iova: u64, size: u64, ret: i64, errno: &str, out: u64) -> String {
    json!({"type":"call","step":step,"ioctl":ioctl,"args":{"iova":iova,"size":size},
           "ret":ret,"errno_name":errno,"out":{"size":out}})
    .to_string()
}

fn journal() -> String {
    [
        call(
            "fault_map_before_set_iommu",
            "VFIO_IOMMU_MAP_DMA",
            0x300000,
            0x1000,
            -1,
            "EINVAL",
            0,
        ),
        call("map_dma", "VFIO_IOMMU_MAP_DMA", 0x100000, 0x10000, 0, "", 0),
        call("map_dma", "VFIO_IOMMU_MAP_DMA", 0x200000, 0x10000, 0, "", 0),
        call(
            "fault_map_msi_window",
            "VFIO_IOMMU_MAP_DMA",
            0xfee00000,
            0x1000,
            -1,
            "EINVAL",
            0,
        ),
        call(
            "fault_unmap_mismatch",
            "VFIO_IOMMU_UNMAP_DMA",
            0x3000000,
            0x1000,
            0,
            "",
            0,
        ),
        call(
            "unmap_dma",
            "VFIO_IOMMU_UNMAP_DMA",
            0x100000,
            0x10000,
            0,
            "",
            0x10000,
        ),
        call(
            "unmap_dma",
            "VFIO_IOMMU_UNMAP_DMA",
            0x200000,
            0x10000,
            0,
            "",
            0x10000,
        ),
    ]
    .join("\n")
}

fn reqs(t: &str) -> Vec<IommuReq> {
    iommu_requests(&parse_trace(t), "virtio_iommu_map", "virtio_iommu_unmap")
}

const SWMSI: Options = Options {
    strict: true,
    sw_msi: Some((0x800_0000, 0x80f_ffff)),
};

#[test]
fn matching_run_passes() {
    let ops = exerciser_ops(&journal());
    assert_eq!(ops.len(), 7);
    let r = compare(&ops, &reqs(TRACE), SWMSI);
    assert!(r.ok(), "{:?}", r.failures());
    assert_eq!(r.domain, Some(2));
    assert_eq!((r.matched_maps, r.matched_unmaps), (2, 2));
    assert_eq!(r.doorbell_maps, vec![(0x800_0000, 0x809_0000)]);
}

#[test]
fn truncated_trace_fails() {
    let cut: String = TRACE.lines().take(9).map(|l| format!("{l}\n")).collect();
    let r = compare(&exerciser_ops(&journal()), &reqs(&cut), SWMSI);
    assert!(!r.ok());
    let f = r.failures().join("\n");
    assert!(f.contains("trace complete"), "{f}");
    assert!(f.contains("unmap_dma Unmap iova=0x100000"), "{f}");
}

#[test]
fn leaked_fault_map_and_gaps_fail() {
    let leak = format!("{TRACE}virtio_iommu_map domain=2 virt_start=0xfee00000 virt_end=0xfee00fff phys_start=0x1 flags=3\n");
    let r = compare(&exerciser_ops(&journal()), &reqs(&leak), SWMSI);
    assert!(r
        .failures()
        .join("")
        .contains("fault_map_msi_window (EINVAL)"));
    let gap = TRACE.replace("virt_start=0x108000", "virt_start=0x109000");
    let r = compare(&exerciser_ops(&journal()), &reqs(&gap), SWMSI);
    assert!(r.failures().join("").contains("map_dma Map iova=0x100000"));
    // Without the SW-MSI window the doorbell map is unexplained.
    let r = compare(
        &exerciser_ops(&journal()),
        &reqs(TRACE),
        Options {
            strict: true,
            sw_msi: None,
        },
    );
    assert!(r.failures().join("").contains("unexplained"));
}

#[test]
fn attach_is_checked_against_the_edu_endpoint() {
    assert_eq!(endpoint_of("0000:00:02.0"), Some(16));
    assert_eq!(endpoint_of("00:01.0"), Some(8));
    assert_eq!(endpoint_of("0000:01:00.1"), Some(0x101));
    let r = compare(&exerciser_ops(&journal()), &reqs(TRACE), SWMSI);
    let att = attaches(&parse_trace(TRACE));
    assert!(check_attach(&r, &att, Some(16)).ok);
    assert!(!check_attach(&r, &att, Some(24)).ok);
    assert!(
        !check_attach(&r, &att[..1], None).ok,
        "domain 2 never attached"
    );
}

#[test]
fn dma_translations_must_agree_with_the_maps() {
    let t = format!(
        "{TRACE}virtio_iommu_translate_out 0x100000 -> 0x2000000 for sid=16\n\
         virtio_iommu_translate_out 0x200100 -> 0x4000100 for sid=16\n"
    );
    let ev = parse_trace(&t);
    let rq = iommu_requests(&ev, "virtio_iommu_map", "virtio_iommu_unmap");
    let r = compare(&exerciser_ops(&journal()), &rq, SWMSI);
    let c = check_dma(&r, &rq, &ev, &[0x100000, 0x200100]);
    assert!(c.ok, "{}", c.detail);
    let c = check_dma(&r, &rq, &ev, &[0x108000]);
    assert!(!c.ok && c.detail.contains("no translation"));
    let wrong = t.replace("0x4000100 for", "0x5000100 for");
    let ev = parse_trace(&wrong);
    let c = check_dma(&r, &rq, &ev, &[0x200100]);
    assert!(
        !c.ok && c.detail.contains("gives 0x4000100"),
        "{}",
        c.detail
    );
}

#[test]
fn msi_writes_must_hit_the_doorbell_map() {
    let t = format!("{TRACE}virtio_iommu_translate_out 0x8000040 -> 0x8090040 for sid=16\n");
    let ev = parse_trace(&t);
    let rq = iommu_requests(&ev, "virtio_iommu_map", "virtio_iommu_unmap");
    let r = compare(&exerciser_ops(&journal()), &rq, SWMSI);
    let c = check_msi_doorbell(&r, &rq, &ev, (0x800_0000, 0x80f_ffff));
    assert!(c.ok, "{}", c.detail);
    let ev = parse_trace(&t.replace("-> 0x8090040", "-> 0x8091040"));
    assert!(!check_msi_doorbell(&r, &rq, &ev, (0x800_0000, 0x80f_ffff)).ok);
    let ev = parse_trace(TRACE);
    assert!(
        !check_msi_doorbell(&r, &rq, &ev, (0x800_0000, 0x80f_ffff)).ok,
        "no MSI at all"
    );
}

#[test]
fn inner_vfio_notifies_parse() {
    let t = "12@1.5:vfio_iommu_map_notify iommu MAP @ 0x100000 - 0x100fff\nvfio_iommu_map_notify iommu unmap @ 0x100000 - 0x10ffff\n";
    let r = vfio_notifies(t);
    assert_eq!(r.len(), 2);
    assert_eq!(
        (r[0].kind, r[0].start, r[0].end),
        (Kind::Map, 0x100000, 0x100fff)
    );
    assert_eq!(r[1].kind, Kind::Unmap);
}
