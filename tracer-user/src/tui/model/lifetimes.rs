//! Every mapping the events created, with its lifetime: mapped by which
//! event and when, unmapped by which event and when (or still live). The
//! engine keeps only live mappings (a replay that ends with everything
//! unmapped shows an empty tree); this list is what the Chains view's
//! history mode (`h`) shows, so a bug report's mappings stay reachable.
//!
//! Folded once over a replay's whole recording when it opens (so the list
//! is complete wherever the replay stands), beside the engine (its `apply`
//! is untouched; nothing is folded live), with the engine's rules for what a map and an
//! unmap are: a failed call changes nothing; VFIO and iommufd UNMAPs and
//! virtio-iommu UNMAPs end the mappings they contain, `iommu_unmap` the
//! ones it overlaps. At most [`MAX_KEPT`] entries (the oldest go first).

use std::collections::{BTreeMap, VecDeque};

use tracer_core::{
    engine::{
        guest::S_OK,
        host::UNMAP_ALL,
        interval::{mapped_span, span},
        snapshot::DomainRef,
        ContainerKey,
    },
    event::{wall_ns, Event, EventKind, NodeId, NodeInfo, ViommuOp},
};

/// Entries kept (about 100 bytes each).
pub const MAX_KEPT: usize = 200_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lifetime {
    pub node: NodeId,
    pub domain: DomainRef,
    pub iova: u64,
    pub last: u64,
    /// Where it points (GPA, HVA or HPA by layer).
    pub to: u64,
    /// The mapping event's engine id and aligned (wall) time.
    pub map_ev: u64,
    pub map_ns: i128,
    /// The event that ended it, and when; None while live.
    pub unmap: Option<(u64, i128)>,
}

type DomainKey = (NodeId, DomainRef);

#[derive(Debug, Default)]
pub struct Lifetimes {
    entries: VecDeque<Lifetime>,
    /// Sequence number of `entries[0]`.
    first_seq: u64,
    /// Live entries by domain and start: their sequence numbers.
    open: BTreeMap<DomainKey, BTreeMap<u64, u64>>,
    /// Entries dropped for the cap.
    pub dropped: u64,
}

impl Lifetimes {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn get(&self, i: usize) -> Option<&Lifetime> {
        self.entries.get(i)
    }

    #[cfg(test)]
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Lifetime> + ExactSizeIterator {
        self.entries.iter()
    }

    /// The lifetimes of a whole recording (event ids are positions, as the
    /// engine numbers a replay's events).
    pub fn of_all(events: &[Event], nodes: &[NodeInfo]) -> Self {
        let mut l = Lifetimes::default();
        for (id, e) in (0u64..).zip(events) {
            l.observe(id, e, nodes);
        }
        l
    }

    /// Folds event `id` in.
    pub fn observe(&mut self, id: u64, e: &Event, nodes: &[NodeInfo]) {
        let at = || wall_ns(nodes, e.node, e.ts_ns);
        let guest = |d: u32| (e.node, DomainRef::Guest(d));
        let container = |k: ContainerKey| {
            (
                e.node,
                DomainRef::Container {
                    container: k.container,
                    ioas: k.ioas,
                },
            )
        };
        match &e.kind {
            EventKind::ViommuReq(r) if r.status == S_OK && r.virt_start <= r.virt_end => {
                let key = guest(r.domain);
                match r.op {
                    ViommuOp::Map => {
                        self.open_one(key, (r.virt_start, r.virt_end), r.phys_start, id, at())
                    }
                    ViommuOp::Unmap => self.close(key, (r.virt_start, r.virt_end), true, id, at()),
                    _ => {}
                }
            }
            EventKind::VfioMapDma(m) => {
                if let Some(r) = mapped_span(m.errno, m.iova, m.size) {
                    let key = container(ContainerKey::vfio(e.node, m.container));
                    self.open_one(key, r, m.vaddr, id, at());
                }
            }
            EventKind::VfioUnmapDma(u) if u.errno == 0 => {
                let range = if u.flags & UNMAP_ALL != 0 {
                    Some((0, u64::MAX))
                } else {
                    span(u.iova, u.size)
                };
                if let Some(r) = range {
                    let key = container(ContainerKey::vfio(e.node, u.container));
                    self.close(key, r, true, id, at());
                }
            }
            EventKind::IoasMap(m) => {
                if let Some(r) = mapped_span(m.errno, m.iova, m.length) {
                    let key = container(ContainerKey {
                        node: e.node,
                        container: m.iommufd,
                        ioas: m.ioas,
                    });
                    self.open_one(key, r, m.user_va, id, at());
                }
            }
            EventKind::IoasUnmap(u) if u.errno == 0 => {
                let range = if u.iova == 0 && u.length == 0 {
                    Some((0, u64::MAX))
                } else {
                    span(u.iova, u.length)
                };
                if let Some(r) = range {
                    let key = container(ContainerKey {
                        node: e.node,
                        container: u.iommufd,
                        ioas: u.ioas,
                    });
                    self.close(key, r, true, id, at());
                }
            }
            EventKind::IommuMap(m) => {
                if let Some(r) = mapped_span(m.errno, m.iova, m.size) {
                    let key = (e.node, DomainRef::Iommu(m.domain));
                    self.open_one(key, r, m.paddr, id, at());
                }
            }
            EventKind::IommuUnmap(u) => {
                if let Some(r) = span(u.iova, u.unmapped) {
                    self.close((e.node, DomainRef::Iommu(u.domain)), r, false, id, at());
                }
            }
            _ => {}
        }
    }

    fn open_one(&mut self, key: DomainKey, (s, l): (u64, u64), to: u64, id: u64, at: i128) {
        if self.entries.len() >= MAX_KEPT {
            self.drop_oldest();
        }
        let seq = self.first_seq + self.entries.len() as u64;
        // A map over a live start replaces it (the engine's insert does).
        if let Some(old) = self.open.entry(key).or_default().insert(s, seq) {
            self.end(old, id, at);
        }
        self.entries.push_back(Lifetime {
            node: key.0,
            domain: key.1,
            iova: s,
            last: l,
            to,
            map_ev: id,
            map_ns: at,
            unmap: None,
        });
    }

    fn drop_oldest(&mut self) {
        if let Some(old) = self.entries.pop_front() {
            if old.unmap.is_none() {
                if let Some(m) = self.open.get_mut(&(old.node, old.domain)) {
                    if m.get(&old.iova) == Some(&self.first_seq) {
                        m.remove(&old.iova);
                    }
                }
            }
            self.first_seq += 1;
            self.dropped += 1;
        }
    }

    fn end(&mut self, seq: u64, id: u64, at: i128) {
        let Some(i) = seq.checked_sub(self.first_seq) else {
            return;
        };
        if let Some(e) = usize::try_from(i)
            .ok()
            .and_then(|i| self.entries.get_mut(i))
        {
            e.unmap.get_or_insert((id, at));
        }
    }

    /// Ends the live mappings of `key` inside `[s, l]` (`contained`) or
    /// overlapping it.
    fn close(&mut self, key: DomainKey, (s, l): (u64, u64), contained: bool, id: u64, at: i128) {
        let Some(live) = self.open.get_mut(&key) else {
            return;
        };
        let mut ended = vec![];
        for (&start, &seq) in live.range(..=l) {
            let Some(e) = seq
                .checked_sub(self.first_seq)
                .and_then(|i| self.entries.get(usize::try_from(i).ok()?))
            else {
                continue;
            };
            let hit = if contained {
                start >= s && e.last <= l
            } else {
                e.last >= s
            };
            if hit {
                ended.push((start, seq));
            }
        }
        for (start, _) in &ended {
            live.remove(start);
        }
        for (_, seq) in ended {
            self.end(seq, id, at);
        }
    }
}

#[cfg(test)]
mod tests {
    use tracer_core::event::{Comm, IommuMap, IommuUnmap, VfioMapDma, VfioUnmapDma, ViommuReq};

    use super::*;

    fn ev(ts: u64, kind: EventKind) -> Event {
        Event {
            ts_ns: ts,
            node: 0,
            pid: 1,
            tid: 1,
            comm: Comm::new("qemu"),
            kind,
        }
    }

    fn viommu(op: ViommuOp, s: u64, l: u64, status: u8) -> EventKind {
        EventKind::ViommuReq(ViommuReq {
            op,
            domain: 2,
            virt_start: s,
            virt_end: l,
            phys_start: 0x9000,
            endpoint: 16,
            flags: 3,
            status,
            resv: vec![],
        })
    }

    #[test]
    fn maps_and_unmaps_make_lifetimes() {
        let mut l = Lifetimes::default();
        let evs = [
            ev(10, viommu(ViommuOp::Map, 0x1000, 0x1fff, 0)),
            ev(20, viommu(ViommuOp::Map, 0x2000, 0x2fff, 0)),
            // Failed: nothing.
            ev(25, viommu(ViommuOp::Map, 0x3000, 0x3fff, 1)),
            ev(
                30,
                EventKind::VfioMapDma(VfioMapDma {
                    container: 7,
                    iova: 0x1000,
                    vaddr: 0x7f00_0000,
                    size: 0x1000,
                    flags: 3,
                    errno: 0,
                }),
            ),
            // Ends only what it contains: the first guest mapping.
            ev(40, viommu(ViommuOp::Unmap, 0x1000, 0x1fff, 0)),
            ev(
                50,
                EventKind::VfioUnmapDma(VfioUnmapDma {
                    container: 7,
                    iova: 0,
                    size: 0,
                    unmapped: 0x1000,
                    flags: UNMAP_ALL,
                    errno: 0,
                }),
            ),
            ev(
                60,
                EventKind::IommuMap(IommuMap {
                    domain: 0xd0,
                    iova: 0x1000,
                    paddr: 0x8000,
                    size: 0x2000,
                    prot: 3,
                    errno: 0,
                }),
            ),
            // Overlap is enough for iommu_unmap.
            ev(
                70,
                EventKind::IommuUnmap(IommuUnmap {
                    domain: 0xd0,
                    iova: 0x2000,
                    size: 0x1000,
                    unmapped: 0x1000,
                }),
            ),
        ];
        for (i, e) in evs.iter().enumerate() {
            l.observe(i as u64, e, &[]);
        }
        let got: Vec<_> = l
            .iter()
            .map(|x| (x.domain, x.iova, x.map_ev, x.unmap.map(|u| u.0)))
            .collect();
        assert_eq!(
            got,
            [
                (DomainRef::Guest(2), 0x1000, 0, Some(4)),
                (DomainRef::Guest(2), 0x2000, 1, None),
                (
                    DomainRef::Container {
                        container: 7,
                        ioas: 0
                    },
                    0x1000,
                    3,
                    Some(5)
                ),
                (DomainRef::Iommu(0xd0), 0x1000, 6, Some(7)),
            ]
        );
        assert_eq!(l.get(0).unwrap().map_ns, 10);
        assert_eq!(l.get(0).unwrap().unmap, Some((4, 40)));
    }

    #[test]
    fn the_cap_drops_the_oldest() {
        let mut l = Lifetimes::default();
        for i in 0..(MAX_KEPT as u64 + 10) {
            l.observe(
                i,
                &ev(i, viommu(ViommuOp::Map, i << 12, (i << 12) | 0xfff, 0)),
                &[],
            );
        }
        assert_eq!(l.len(), MAX_KEPT);
        assert_eq!(l.dropped, 10);
        assert_eq!(l.get(0).unwrap().map_ev, 10);
        // Unmapping everything still ends every kept entry.
        l.observe(
            u64::MAX,
            &ev(1, viommu(ViommuOp::Unmap, 0, u64::MAX, 0)),
            &[],
        );
        assert!(l.iter().all(|x| x.unmap.is_some()));
    }
}
