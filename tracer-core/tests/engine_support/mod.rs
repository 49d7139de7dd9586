//! Event builders and lab-shaped scenarios shared by the engine tests.
#![allow(dead_code)]

use tracer_core::event::build::Task;
use tracer_core::event::*;

pub const HOST: NodeId = 0;
pub const GUEST: NodeId = 1;
pub const QEMU: u32 = 100;
pub const QEMU_TID: u32 = 101;
pub const MS: u64 = 1_000_000;

/// Lab addresses (lab.md, nested chain for one page).
pub const GIOVA: u64 = 0x100000;
pub const GPA: u64 = 0xa9cf000;
pub const SLOT_HVA: u64 = 0x7f2a63f00000;
pub const HVA: u64 = 0x7f2a6e7cf000;
pub const HPA: u64 = 0x127cf000;
pub const DOMAIN: u64 = 0xffff8880_0a000000;
pub const GDOMAIN: u32 = 3;
/// edu at 00:02.0 in both L1 and L2.
pub const EP: u32 = 0x10;

pub fn edu() -> Device {
    Device::parse("0000:00:02.0").unwrap()
}

pub fn container() -> u64 {
    fd_handle(QEMU, 20)
}

pub fn vm() -> u64 {
    fd_handle(QEMU, 12)
}

pub fn nodes() -> Vec<NodeInfo> {
    let n = |name: &str, role, off| NodeInfo {
        name: name.into(),
        role,
        kernel: "6.12.95+deb12-amd64".into(),
        machine: "x86_64".into(),
        clock_offset_ns: off,
    };
    // Different monotonic origins: guest booted 7 s after the host.
    vec![
        n("l1", NodeRole::Host, 1_700_000_000_000_000_000),
        n("l2", NodeRole::Guest, 1_700_000_007_000_000_000),
    ]
}

/// Builds a time-ordered event list; `t` is wall-clock-ish nanoseconds on
/// the host clock, guest events are shifted to the guest's monotonic clock.
#[derive(Clone)]
pub struct Seq {
    pub events: Vec<Event>,
    pub t: u64,
}

impl Default for Seq {
    fn default() -> Self {
        Seq {
            events: Vec::new(),
            t: 10_000 * MS,
        }
    }
}

impl Seq {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn step(&mut self, ns: u64) -> &mut Self {
        self.t += ns;
        self
    }

    pub fn at(&mut self, node: NodeId, pid: u32, tid: u32, kind: EventKind) -> &mut Self {
        self.t += 1000;
        let ts = if node == GUEST {
            self.t - 7_000 * MS
        } else {
            self.t
        };
        let comm = if node == GUEST {
            "edu-test"
        } else {
            "qemu-system-x86"
        };
        self.events
            .push(Task::new(node, pid, tid, comm).at(ts, kind));
        self
    }

    pub fn host(&mut self, kind: EventKind) -> &mut Self {
        self.at(HOST, QEMU, QEMU_TID, kind)
    }

    pub fn guest(&mut self, kind: EventKind) -> &mut Self {
        self.at(GUEST, 0, 0, kind)
    }

    // ---- host builders ----
    pub fn map_dma(&mut self, iova: u64, vaddr: u64, size: u64, errno: i32) -> &mut Self {
        self.host(EventKind::VfioMapDma(VfioMapDma {
            container: container(),
            iova,
            vaddr,
            size,
            flags: 3,
            errno,
        }))
    }

    pub fn unmap_dma(&mut self, iova: u64, size: u64, unmapped: u64) -> &mut Self {
        self.host(EventKind::VfioUnmapDma(VfioUnmapDma {
            container: container(),
            iova,
            size,
            unmapped,
            flags: 0,
            errno: 0,
        }))
    }

    pub fn pin(&mut self, vaddr: u64, npages: u64, hpa: u64) -> &mut Self {
        self.host(EventKind::VfioPin(VfioPin {
            vaddr,
            npages,
            pfn: hpa >> 12,
        }))
    }

    pub fn iommu_map(&mut self, iova: u64, paddr: u64, size: u64, prot: u32) -> &mut Self {
        self.host(EventKind::IommuMap(IommuMap {
            domain: DOMAIN,
            iova,
            paddr,
            size,
            prot,
            errno: 0,
        }))
    }

    pub fn iommu_unmap(&mut self, iova: u64, size: u64, unmapped: u64) -> &mut Self {
        self.host(EventKind::IommuUnmap(IommuUnmap {
            domain: DOMAIN,
            iova,
            size,
            unmapped,
        }))
    }

    /// One full host MAP_DMA of a page: pin, iommu_map, ioctl exit.
    pub fn host_page(&mut self, iova: u64, hva: u64, hpa: u64) -> &mut Self {
        self.pin(hva, 1, hpa)
            .iommu_map(iova, hpa, 0x1000, 3)
            .map_dma(iova, hva, 0x1000, 0)
    }

    pub fn host_unpage(&mut self, iova: u64) -> &mut Self {
        self.iommu_unmap(iova, 0x1000, 0x1000)
            .unmap_dma(iova, 0x1000, 0x1000)
    }

    pub fn memslot(&mut self, slot: u32, gpa: u64, size: u64, hva: u64) -> &mut Self {
        self.host(EventKind::KvmMemslot(KvmMemslot {
            vm: vm(),
            slot,
            gpa,
            size,
            hva,
            flags: 0,
            errno: 0,
        }))
    }

    pub fn resv(&mut self, start: u64, end: u64, rtype: ResvType) -> &mut Self {
        self.at(
            HOST,
            0,
            0,
            EventKind::ResvRegion(ResvRegion {
                group: 5,
                device: edu(),
                start,
                end,
                rtype,
            }),
        )
    }

    pub fn set_iommu(&mut self) -> &mut Self {
        self.host(EventKind::VfioSetIommu(VfioSetIommu {
            container: container(),
            iommu_type: 3,
            errno: 0,
        }))
    }

    pub fn info(&mut self, ranges: &[(u64, u64)], pgsizes: u64) -> &mut Self {
        self.host(EventKind::VfioIommuInfo(VfioIommuInfo {
            container: container(),
            flags: 3,
            iova_pgsizes: pgsizes,
            iova_ranges: ranges
                .iter()
                .map(|&(start, end)| Range { start, end })
                .collect(),
            errno: 0,
        }))
    }

    // ---- guest builders ----
    #[expect(clippy::too_many_arguments, reason = "mirrors the wire request")]
    pub fn vreq(
        &mut self,
        op: ViommuOp,
        domain: u32,
        s: u64,
        e: u64,
        phys: u64,
        flags: u32,
        status: u8,
    ) -> &mut Self {
        self.guest(EventKind::ViommuReq(ViommuReq {
            op,
            domain,
            endpoint: if matches!(op, ViommuOp::Attach | ViommuOp::Detach | ViommuOp::Probe) {
                EP
            } else {
                0
            },
            virt_start: s,
            virt_end: e,
            phys_start: phys,
            flags,
            status,
            resv: vec![],
        }))
    }

    pub fn probe(&mut self, resv: Vec<ResvMem>) -> &mut Self {
        self.guest(EventKind::ViommuReq(ViommuReq {
            op: ViommuOp::Probe,
            domain: 0,
            endpoint: EP,
            virt_start: 0,
            virt_end: 0,
            phys_start: 0,
            flags: 0,
            status: 0,
            resv,
        }))
    }

    pub fn attach(&mut self, domain: u32, bypass: bool) -> &mut Self {
        self.vreq(ViommuOp::Attach, domain, 0, 0, 0, u32::from(bypass), 0)
    }

    pub fn gmap(&mut self, iova: u64, size: u64, gpa: u64) -> &mut Self {
        self.vreq(ViommuOp::Map, GDOMAIN, iova, iova + size - 1, gpa, 3, 0)
    }

    pub fn gunmap(&mut self, iova: u64, size: u64) -> &mut Self {
        self.vreq(ViommuOp::Unmap, GDOMAIN, iova, iova + size - 1, 0, 0, 0)
    }

    pub fn msi_write(&mut self, node: NodeId, address: u64) -> &mut Self {
        self.at(
            node,
            0,
            0,
            EventKind::MsiWrite(MsiWrite {
                device: edu(),
                vector: 0,
                address,
                data: 0x23,
            }),
        )
    }

    pub fn probes_ok(&mut self) -> &mut Self {
        for node in [HOST, GUEST] {
            self.at(
                node,
                0,
                0,
                EventKind::ProbeStatus(ProbeStatus {
                    probe: "ioctl".into(),
                    attach: "tracepoint:syscalls:sys_enter_ioctl".into(),
                    status: ProbeState::Attached,
                    required: true,
                    reason: String::new(),
                    hits: 0,
                }),
            );
        }
        self
    }

    /// VFIO's large-page probe right after SET_IOMMU (lab.md noise): 8 KiB
    /// mapped at IOVA 0, 4 KiB unmapped, then the other 4 KiB.
    pub fn set_iommu_with_probe_noise(&mut self) -> &mut Self {
        self.iommu_map(0, 0x5000_0000, 0x2000, 3)
            .iommu_unmap(0, 0x1000, 0x1000)
            .iommu_unmap(0x1000, 0x1000, 0x1000)
            .set_iommu()
    }
}

pub fn x86_msi() -> ResvMem {
    ResvMem {
        subtype: 1,
        start: 0xfee00000,
        end: 0xfeefffff,
    }
}

/// A clean QEMU+VFIO run shaped like lab.md's nested lab: host L1 runs
/// QEMU with edu passed through, guest L2 drives edu through virtio-iommu.
/// Includes the noise real runs produce (VFIO's IOVA-0 probe map, QEMU's
/// boot-bypass MAP_DMA of all RAM undone at attach, one MAP_DMA per page).
pub fn clean_run(s: &mut Seq) {
    s.probes_ok();
    s.resv(0xfee00000, 0xfeefffff, ResvType::Msi);
    s.memslot(0, 0, 0xa0000, 0x7f2a5ff00000);
    s.memslot(4, 0x100000, 0xff00000, SLOT_HVA);
    s.set_iommu_with_probe_noise();
    s.info(
        &[(0, 0xfedfffff), (0xfef00000, 0x7f_ffff_ffff)],
        0x4020_1000,
    );
    // Boot bypass: all RAM above 1 MiB, identity IOVA = GPA.
    s.pin(SLOT_HVA, 0xff00, 0x2000_0000)
        .iommu_map(0x100000, 0x2000_0000, 0xff00000, 3)
        .map_dma(0x100000, SLOT_HVA, 0xff00000, 0);
    s.step(2000 * MS);
    // Guest driver probes and attaches edu: QEMU drops the bypass map.
    s.probe(vec![x86_msi()]).attach(GDOMAIN, false);
    s.step(MS)
        .iommu_unmap(0x100000, 0xff00000, 0xff00000)
        .unmap_dma(0x100000, 0xff00000, 0xff00000);
    // Guest maps three pages; QEMU propagates each as one MAP_DMA.
    for i in 0..3u64 {
        let (iova, gpa) = (GIOVA + i * 0x1000, GPA + i * 0x1000);
        s.step(5 * MS).gmap(iova, 0x1000, gpa);
        s.step(MS)
            .host_page(iova, HVA + i * 0x1000, HPA + i * 0x1000);
    }
    // MSI: host vfio-pci programs edu with the x86 doorbell, guest too.
    s.host(EventKind::VfioSetIrqs(VfioSetIrqs {
        device: Device::Fd(30),
        index: 1,
        start: 0,
        count: 1,
        flags: 0x24,
        eventfds: vec![40],
        eventfds_truncated: false,
        errno: 0,
    }));
    s.msi_write(HOST, 0xfee01000);
    s.msi_write(GUEST, 0xfee02000);
    // Guest unmaps one page; QEMU follows.
    s.step(5 * MS).gunmap(GIOVA + 0x2000, 0x1000);
    s.step(MS).host_unpage(GIOVA + 0x2000);
    s.step(2000 * MS);
    for node in [HOST, GUEST] {
        s.at(
            node,
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
}
