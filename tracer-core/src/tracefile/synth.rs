//! Synthetic events for tests, benchmarks, fuzz seeds and fixtures:
//! every kind's sample events, and an endless realistic map/unmap stream.

use std::collections::VecDeque;

use crate::event::build::event as ev;
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

/// Where each kind's samples (`EventKind::samples`, declared with the kind
/// in event/kinds/) stand in [`all_kinds`]: (kind id, sample index), in the
/// order the committed fixtures and the tests' indexes were written with.
/// Samples not listed (kinds added later) follow, in id order.
const ORDER: [(usize, usize); 23] = [
    (3, 0),
    (2, 0),
    (0, 0),
    (4, 0),
    (5, 0),
    (0, 1),
    (1, 0),
    (6, 0),
    (7, 0),
    (7, 1),
    (8, 0),
    (9, 0),
    (10, 0),
    (11, 0),
    (19, 0),
    (19, 1),
    (12, 0),
    (13, 0),
    (14, 0),
    (15, 0),
    (16, 0),
    (17, 0),
    (18, 0),
];

/// Every sample event of every [`EventKind`], with distinctive values
/// (including extremes: u64::MAX, negative errnos, an out-of-order
/// timestamp).
pub fn all_kinds() -> Vec<Event> {
    let mut samples: Vec<Vec<Option<Event>>> = EventKind::samples()
        .into_iter()
        .map(|v| v.into_iter().map(Some).collect())
        .collect();
    let mut out: Vec<Event> = ORDER
        .iter()
        .filter_map(|&(k, i)| samples.get_mut(k)?.get_mut(i)?.take())
        .collect();
    out.extend(samples.into_iter().flatten().flatten());
    out
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
