//! A deterministic trace for the UI tests: a host with a passed-through
//! device and a guest with virtio-iommu. One mapping chains cleanly, one
//! `iommu_map` disagrees with the pinned page (a broken IOVA→HPA hop), a
//! duplicate MAP_DMA fails with EEXIST, one MSI-X vector is programmed with
//! an address no window or mapping covers, and the health events report a
//! missing probe and ring-buffer drops.

use tracer_core::event::build::Task;
use tracer_core::event::*;

pub const QEMU: u32 = 4242;
pub const VCPU: u32 = 4243;
pub const SEC: u64 = 1_000_000_000;

pub fn dev() -> Device {
    Device::parse("0000:01:00.0").expect("device")
}

/// A host and a guest whose clock runs 5 s behind (the trace format's
/// sample nodes).
pub fn nodes() -> Vec<NodeInfo> {
    tracer_core::tracefile::synth::sample_nodes()
}

fn host(ts_ns: u64, tid: u32, kind: EventKind) -> Event {
    Task::new(0, QEMU, tid, "qemu-system-x86").at(ts_ns, kind)
}

fn tool(ts_ns: u64, node: u16, kind: EventKind) -> Event {
    Task::new(node, 0, 0, "vfio-trace").at(ts_ns, kind)
}

fn guest(ts_ns: u64, kind: EventKind) -> Event {
    Task::new(1, 312, 312, "nvme").at(ts_ns, kind)
}

fn map_dma(iova: u64, vaddr: u64, size: u64, errno: i32) -> EventKind {
    EventKind::VfioMapDma(VfioMapDma {
        container: fd_handle(QEMU, 17),
        iova,
        vaddr,
        size,
        flags: 3,
        errno,
    })
}

fn pin(vaddr: u64, npages: u64, pfn: u64) -> EventKind {
    EventKind::VfioPin(VfioPin { vaddr, npages, pfn })
}

fn iommu_map(iova: u64, paddr: u64, size: u64) -> EventKind {
    EventKind::IommuMap(IommuMap {
        domain: 0xffff_8880_1234_5000,
        iova,
        paddr,
        size,
        prot: 3,
        errno: 0,
    })
}

fn probe(name: &str, status: ProbeState, reason: &str, hits: u64) -> EventKind {
    EventKind::ProbeStatus(ProbeStatus {
        probe: name.into(),
        attach: format!("kprobe:{name}"),
        status,
        required: false,
        reason: reason.into(),
        hits,
    })
}

fn viommu(op: ViommuOp, domain: u32, endpoint: u32, virt: (u64, u64), phys: u64) -> EventKind {
    EventKind::ViommuReq(ViommuReq {
        op,
        domain,
        endpoint,
        virt_start: virt.0,
        virt_end: virt.1,
        phys_start: phys,
        flags: if op == ViommuOp::Map { 3 } else { 0 },
        status: 0,
        resv: Vec::new(),
    })
}

/// The events, in aligned-time order.
pub fn events() -> Vec<Event> {
    const HVA: u64 = 0x7f00_0000_0000;
    let mut events = vec![
        host(
            10 * SEC,
            QEMU,
            EventKind::VfioSetIommu(VfioSetIommu {
                container: fd_handle(QEMU, 17),
                iommu_type: 3,
                errno: 0,
            }),
        ),
        host(
            10 * SEC + 1_000,
            QEMU,
            EventKind::KvmMemslot(KvmMemslot {
                vm: fd_handle(QEMU, 12),
                slot: 0,
                gpa: 0,
                size: 0x8000_0000,
                hva: HVA,
                flags: 0,
                errno: 0,
            }),
        ),
        tool(
            10 * SEC + 2_000,
            0,
            EventKind::ResvRegion(ResvRegion {
                group: 5,
                device: dev(),
                start: 0xfee0_0000,
                end: 0xfeef_ffff,
                rtype: ResvType::Msi,
            }),
        ),
        // Guest: endpoint 00:01.0 (rid 8) in domain 1, maps IOVA 1 MiB.
        guest(5 * SEC, viommu(ViommuOp::Attach, 1, 8, (0, 0), 0)),
        guest(
            5 * SEC + 500_000_000,
            viommu(ViommuOp::Map, 1, 0, (0x10_0000, 0x10_ffff), 0x10_0000),
        ),
        // Host: the VMM propagates it; pins and iommu_map agree.
        host(
            10 * SEC + 500_010_000,
            VCPU,
            pin(HVA + 0x10_0000, 16, 0x12_3400),
        ),
        host(
            10 * SEC + 500_020_000,
            VCPU,
            iommu_map(0x10_0000, 0x1_2340_0000, 0x1_0000),
        ),
        host(
            10 * SEC + 500_030_000,
            VCPU,
            map_dma(0x10_0000, HVA + 0x10_0000, 0x1_0000, 0),
        ),
        // A second guest map whose iommu_map points at the wrong page.
        guest(
            5 * SEC + 600_000_000,
            viommu(ViommuOp::Map, 1, 0, (0x20_0000, 0x20_ffff), 0x20_0000),
        ),
        host(
            10 * SEC + 600_010_000,
            VCPU,
            pin(HVA + 0x20_0000, 16, 0x20_0000),
        ),
        host(
            10 * SEC + 600_020_000,
            VCPU,
            iommu_map(0x20_0000, 0x9_9999_0000, 0x1_0000),
        ),
        host(
            10 * SEC + 600_030_000,
            VCPU,
            map_dma(0x20_0000, HVA + 0x20_0000, 0x1_0000, 0),
        ),
        // A duplicate map: EEXIST.
        host(
            10 * SEC + 700_000_000,
            VCPU,
            map_dma(0x10_0000, HVA + 0x30_0000, 0x1000, 17),
        ),
        // MSI-X: two vectors with eventfds, one message routable, one not.
        host(
            10 * SEC + 800_000_000,
            QEMU,
            EventKind::VfioSetIrqs(VfioSetIrqs {
                device: dev(),
                index: 2,
                start: 0,
                count: 2,
                flags: 0x24,
                eventfds: vec![30, 31],
                eventfds_truncated: false,
                errno: 0,
            }),
        ),
        tool(
            10 * SEC + 800_100_000,
            0,
            EventKind::MsiWrite(MsiWrite {
                device: dev(),
                vector: 0,
                address: 0xfee0_0000,
                data: 0x4021,
            }),
        ),
        tool(
            10 * SEC + 800_200_000,
            0,
            EventKind::MsiWrite(MsiWrite {
                device: dev(),
                vector: 1,
                address: 0x800_0040,
                data: 0x22,
            }),
        ),
        // Health.
        tool(
            11 * SEC,
            0,
            probe("sys_enter_ioctl", ProbeState::Attached, "", 120),
        ),
        tool(
            11 * SEC,
            0,
            probe(
                "viommu_map_pages",
                ProbeState::MissingSymbol,
                "module virtio_iommu not loaded",
                0,
            ),
        ),
        tool(
            11 * SEC,
            0,
            EventKind::Drops(Drops {
                ring_full: 3,
                pending_full: 0,
                read_failed: 0,
                undecodable: 0,
            }),
        ),
        tool(
            12 * SEC,
            0,
            probe("sys_enter_ioctl", ProbeState::Attached, "", 150),
        ),
    ];
    let nodes = nodes();
    events.sort_by_key(|e| tracer_core::tracefile::aligned_ns(e, &nodes));
    events
}
