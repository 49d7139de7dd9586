//! Synthetic events for tests, benchmarks, fuzz seeds and fixtures:
//! one event of every kind, and an endless realistic map/unmap stream.

use std::collections::VecDeque;

use crate::event::*;

/// Two nodes: a host and a guest whose clock runs 5 s behind.
pub fn sample_nodes() -> Vec<NodeInfo> {
    vec![
        NodeInfo {
            name: "host".into(),
            role: NodeRole::Host,
            kernel: "6.12.95+deb12-amd64".into(),
            machine: "x86_64".into(),
            clock_offset_ns: 1_700_000_000_000_000_000,
        },
        NodeInfo {
            name: "guest0".into(),
            role: NodeRole::Guest,
            kernel: "6.12.95+deb12-amd64".into(),
            machine: "x86_64".into(),
            clock_offset_ns: 1_700_000_005_000_000_000,
        },
    ]
}

fn ev(ts_ns: u64, node: NodeId, pid: u32, tid: u32, comm: &str, kind: EventKind) -> Event {
    Event {
        ts_ns,
        node,
        pid,
        tid,
        comm: Comm::new(comm),
        kind,
    }
}

/// One event of every [`EventKind`], with distinctive values (including
/// extremes: u64::MAX, negative errnos, an out-of-order timestamp).
pub fn all_kinds() -> Vec<Event> {
    let dev = Device::Pci {
        seg: 0,
        bus: 1,
        dev: 0,
        func: 0,
    };
    let c = fd_handle(4242, 17);
    let q = "qemu-system-x86";
    vec![
        ev(
            1_000,
            0,
            4242,
            4242,
            q,
            EventKind::VfioSetIommu(VfioSetIommu {
                container: c,
                iommu_type: 3,
                errno: 0,
            }),
        ),
        ev(
            1_500,
            0,
            4242,
            4242,
            q,
            EventKind::VfioIommuInfo(VfioIommuInfo {
                container: c,
                flags: 3,
                iova_pgsizes: 0x4020_1000,
                iova_ranges: vec![
                    Range {
                        start: 0,
                        end: 0xfedf_ffff,
                    },
                    Range {
                        start: 0xfef0_0000,
                        end: 0x7f_ffff_ffff,
                    },
                ],
                errno: 0,
            }),
        ),
        ev(
            2_000,
            0,
            4242,
            4243,
            "CPU 0/KVM",
            EventKind::VfioMapDma(VfioMapDma {
                container: c,
                iova: 0x1000_0000,
                vaddr: 0x7f12_3456_7000,
                size: 0x20_0000,
                flags: 3,
                errno: 0,
            }),
        ),
        ev(
            2_100,
            0,
            4242,
            4243,
            "CPU 0/KVM",
            EventKind::VfioPin(VfioPin {
                vaddr: 0x7f12_3456_7000,
                npages: 512,
                pfn: 0x12_3456,
            }),
        ),
        ev(
            2_200,
            0,
            4242,
            4243,
            "CPU 0/KVM",
            EventKind::IommuMap(IommuMap {
                domain: 0xffff_8880_0123_4000,
                iova: 0x1000_0000,
                paddr: 0x1_2345_6000,
                size: 0x20_0000,
                prot: 0x3,
                errno: 0,
            }),
        ),
        ev(
            2_150, // out of order, as per-CPU ring buffers deliver
            0,
            4242,
            4244,
            "CPU 1/KVM",
            EventKind::VfioMapDma(VfioMapDma {
                container: c,
                iova: 0xfee0_0000,
                vaddr: 0x7f12_0000_0000,
                size: 0x1000,
                flags: 3,
                errno: 22,
            }),
        ),
        ev(
            3_000,
            0,
            4242,
            4243,
            "CPU 0/KVM",
            EventKind::VfioUnmapDma(VfioUnmapDma {
                container: c,
                iova: 0x1000_0000,
                size: 0x20_0000,
                unmapped: 0,
                flags: 0,
                errno: 0,
            }),
        ),
        ev(
            3_100,
            0,
            4242,
            4243,
            "CPU 0/KVM",
            EventKind::IommuUnmap(IommuUnmap {
                domain: 0xffff_8880_0123_4000,
                iova: 0x1000_0000,
                size: 0x20_0000,
                unmapped: 0x20_0000,
            }),
        ),
        ev(
            500,
            1,
            1,
            1,
            "swapper/0",
            EventKind::ViommuReq(ViommuReq {
                op: ViommuOp::Probe,
                domain: 0,
                endpoint: 8,
                virt_start: 0,
                virt_end: 0,
                phys_start: 0,
                flags: 0,
                status: 0,
                resv: vec![
                    ResvMem {
                        subtype: 1,
                        start: 0xfee0_0000,
                        end: 0xfeef_ffff,
                    },
                    ResvMem {
                        subtype: 0,
                        start: 0x800_0000,
                        end: 0x80f_ffff,
                    },
                ],
            }),
        ),
        ev(
            600,
            1,
            211,
            211,
            "kworker/u8:2",
            EventKind::ViommuReq(ViommuReq {
                op: ViommuOp::Map,
                domain: 1,
                endpoint: 0,
                virt_start: 0xffff_f000,
                virt_end: 0xffff_ffff,
                phys_start: 0x4_5678_9000,
                flags: 3,
                status: 4,
                resv: vec![],
            }),
        ),
        ev(
            700,
            0,
            0,
            0,
            "",
            EventKind::ResvRegion(ResvRegion {
                group: 12,
                device: dev,
                start: 0x800_0000,
                end: 0x80f_ffff,
                rtype: ResvType::SwMsi,
            }),
        ),
        ev(
            4_000,
            0,
            4242,
            4242,
            q,
            EventKind::VfioSetIrqs(VfioSetIrqs {
                device: Device::Fd(23),
                index: 2,
                start: 0,
                count: 3,
                flags: 0x24,
                eventfds: vec![30, -1],
                eventfds_truncated: true,
                errno: 0,
            }),
        ),
        ev(
            4_100,
            0,
            4242,
            4242,
            q,
            EventKind::MsiVector(MsiVector {
                device: dev,
                index: 2,
                vector: 0,
                eventfd: -1,
                enabled: false,
            }),
        ),
        ev(
            4_200,
            0,
            4242,
            4242,
            q,
            EventKind::MsiWrite(MsiWrite {
                device: dev,
                vector: 1,
                address: 0x800_0040,
                data: 0x4021,
            }),
        ),
        ev(
            4_250,
            0,
            4242,
            4242,
            q,
            EventKind::MsiMask(MsiMask {
                device: dev,
                index: 2,
                vector: 1,
                masked: true,
                can_mask: Some(true),
                is_virtual: false,
            }),
        ),
        ev(
            4_260,
            0,
            4242,
            4242,
            q,
            EventKind::MsiMask(MsiMask {
                device: dev,
                index: 1,
                vector: 0,
                masked: false,
                can_mask: None,
                is_virtual: false,
            }),
        ),
        ev(
            4_300,
            0,
            4242,
            4242,
            q,
            EventKind::MsiDoorbellMap(MsiDoorbellMap {
                device: Device::Unknown,
                domain: 0xffff_8880_0123_4000,
                iova: 0x800_0000,
                doorbell_paddr: 0x809_0000,
            }),
        ),
        ev(
            4_400,
            0,
            4242,
            4242,
            q,
            EventKind::MsiCookie(MsiCookie {
                domain: 0xffff_8880_0123_4000,
                base: 0x800_0000,
            }),
        ),
        ev(
            800,
            0,
            4242,
            4242,
            q,
            EventKind::KvmMemslot(KvmMemslot {
                vm: fd_handle(4242, 12),
                slot: 0x1_0002,
                gpa: 0x1_0000_0000,
                size: 0,
                hva: 0x7f00_0000_0000,
                flags: 1,
                errno: -1,
            }),
        ),
        ev(
            5_000,
            0,
            4300,
            4301,
            "iommufd-test",
            EventKind::IoasMap(IoasMap {
                iommufd: fd_handle(4300, 3),
                ioas: 1,
                flags: 6,
                user_va: 0x7fff_0000_0000,
                length: 0x1_0000,
                iova: u64::MAX - 0xffff,
                errno: 0,
            }),
        ),
        ev(
            5_100,
            0,
            4300,
            4301,
            "iommufd-test",
            EventKind::IoasUnmap(IoasUnmap {
                iommufd: fd_handle(4300, 3),
                ioas: 1,
                iova: u64::MAX - 0xffff,
                length: 0x1_0000,
                unmapped: 0x1_0000,
                errno: 0,
            }),
        ),
        ev(
            10,
            0,
            0,
            0,
            "",
            EventKind::ProbeStatus(ProbeStatus {
                probe: "vfio_map_dma".into(),
                attach: "kprobe:vfio_iommu_type1_ioctl".into(),
                status: ProbeState::MissingSymbol,
                required: false,
                reason: "module vfio_iommu_type1 not loaded; \"quoted\" ünïcode".into(),
                hits: 0,
            }),
        ),
        ev(
            u64::MAX,
            0,
            0,
            0,
            "",
            EventKind::Drops(Drops {
                ring_full: 1,
                pending_full: 2,
                read_failed: 3,
                undecodable: u64::MAX,
            }),
        ),
    ]
}

/// A small xorshift PRNG: deterministic streams without a dependency.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    /// Uniform-ish in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// An endless host-side trace of a guest's streaming DMA through a vIOMMU:
/// each guest map becomes VFIO_IOMMU_MAP_DMA + pin + iommu_map, each unmap
/// VFIO_IOMMU_UNMAP_DMA + iommu_unmap, from a few QEMU threads, with about
/// 256 mappings live, IOVAs reused as the guest's allocator does, sizes
/// mostly 4 KiB, and a drop-counter event now and then.
pub struct MapUnmapTrace {
    rng: Rng,
    ts: u64,
    next_iova: u64,
    free_iovas: Vec<u64>,
    live: Vec<(u64, u64, u64)>, // iova, vaddr, size
    out: VecDeque<Event>,
    emitted: u64,
}

const RAM_HVA: u64 = 0x7f3a_0000_0000;
const RAM_HPA_PFN: u64 = 0x10_0000;
const CONTAINER: u64 = (5123u64 << 32) | 21;
const DOMAIN: u64 = 0xffff_8881_0a2b_c000;

impl MapUnmapTrace {
    pub fn new(seed: u64) -> Self {
        MapUnmapTrace {
            rng: Rng::new(seed),
            ts: 1_000_000_000,
            next_iova: 0xfff0_0000,
            free_iovas: Vec::new(),
            live: Vec::new(),
            out: VecDeque::new(),
            emitted: 0,
        }
    }

    fn push(&mut self, tid: u32, kind: EventKind) {
        self.ts += 200 + self.rng.below(3000);
        let comm = match tid - 5123 {
            1 => "CPU 0/KVM",
            2 => "CPU 1/KVM",
            _ => "qemu-system-x86",
        };
        self.out.push_back(ev(self.ts, 0, 5123, tid, comm, kind));
    }

    fn step(&mut self) {
        let tid = 5123 + (self.rng.below(8) as u32).min(2);
        if self.emitted > 0 && self.emitted % 100_000 < 5 {
            let n = self.emitted / 100_000;
            self.out.push_back(ev(
                self.ts,
                0,
                0,
                0,
                "",
                EventKind::Drops(Drops {
                    ring_full: n,
                    pending_full: 0,
                    read_failed: n / 3,
                    undecodable: 0,
                }),
            ));
        }
        let map = self.live.len() < 128 || (self.live.len() < 512 && self.rng.below(2) == 0);
        if map {
            let size = match self.rng.below(16) {
                0 => 0x1_0000,
                1 => 0x20_0000,
                _ => 0x1000,
            };
            let iova = if size == 0x1000 && !self.free_iovas.is_empty() {
                self.free_iovas.pop().unwrap_or_default()
            } else {
                self.next_iova = self.next_iova.wrapping_sub(size) & !(size - 1);
                self.next_iova
            };
            // Guest buffers: mostly near the previous one, sometimes anywhere
            // in 4 GiB of guest RAM.
            let gpa = if self.rng.below(4) == 0 {
                self.rng.below(1 << 20) << 12
            } else {
                (self.live.last().map_or(0, |l| l.1 - RAM_HVA) + 0x1000) & 0xffff_ffff
            };
            let vaddr = RAM_HVA + gpa;
            self.live.push((iova, vaddr, size));
            let pfn = RAM_HPA_PFN + (gpa >> 12);
            self.push(
                tid,
                EventKind::VfioMapDma(VfioMapDma {
                    container: CONTAINER,
                    iova,
                    vaddr,
                    size,
                    flags: 3,
                    errno: 0,
                }),
            );
            self.push(
                tid,
                EventKind::VfioPin(VfioPin {
                    vaddr,
                    npages: size >> 12,
                    pfn,
                }),
            );
            self.push(
                tid,
                EventKind::IommuMap(IommuMap {
                    domain: DOMAIN,
                    iova,
                    paddr: pfn << 12,
                    size,
                    prot: 3,
                    errno: 0,
                }),
            );
        } else {
            let i = self.rng.below(self.live.len() as u64) as usize;
            let (iova, _, size) = self.live.swap_remove(i);
            if size == 0x1000 {
                self.free_iovas.push(iova);
            }
            self.push(
                tid,
                EventKind::VfioUnmapDma(VfioUnmapDma {
                    container: CONTAINER,
                    iova,
                    size,
                    unmapped: size,
                    flags: 0,
                    errno: 0,
                }),
            );
            self.push(
                tid,
                EventKind::IommuUnmap(IommuUnmap {
                    domain: DOMAIN,
                    iova,
                    size,
                    unmapped: size,
                }),
            );
        }
    }
}

impl Iterator for MapUnmapTrace {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        while self.out.is_empty() {
            self.step();
        }
        self.emitted += 1;
        self.out.pop_front()
    }
}
