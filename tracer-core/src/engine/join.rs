//! Pairs a guest virtio-iommu domain with the host VFIO container serving it.
//!
//! Evidence is the map sequence itself: a guest MAP (IOVA, size, GPA) is
//! followed, within `window` of wall-clock time, by a host MAP_DMA of the same
//! IOVA range from a VMM process on another node. Each such match counts for
//! (guest domain, container); a pairing is the container with most matches.
//! The boot-bypass map (all RAM, no guest MAP of that size) and VFIO's probe
//! map at IOVA 0 (an `iommu_map`, not a MAP_DMA) never match. Guest MAPs and
//! UNMAPs that no host MAP_DMA/UNMAP_DMA followed in time are remembered per
//! guest domain (count and a few examples) for the chain-break rules.

use std::collections::{BTreeMap, VecDeque};

use super::interval::Mapping;
use super::keys::{ContainerKey, EvId, GuestDomainKey};

/// Examples kept per record.
const EXAMPLES: usize = 4;

#[derive(Clone, Debug)]
pub struct PendingGuest {
    pub key: GuestDomainKey,
    pub wall: u64,
    pub start: u64,
    pub last: u64,
    pub gpa: u64,
    pub ev: EvId,
    /// Bytes covered by host calls that settle it.
    pub covered: u64,
    /// Containers whose calls matched without settling it (HVA disagreed or
    /// could not be checked while the node has VMs).
    pub matched: Vec<ContainerKey>,
}

/// Why a guest domain and a container were paired.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PairEvidence {
    /// Guest MAPs followed by a matching host MAP_DMA.
    pub matches: u64,
    /// Of those, how many had HVA == memslot(GPA) / HVA ≠ memslot(GPA).
    pub hva_agree: u64,
    pub hva_disagree: u64,
    /// (guest MAP, host MAP_DMA) examples.
    pub examples: Vec<(EvId, EvId)>,
    /// (guest MAP, host MAP_DMA, memslot, expected HVA) where HVA disagreed.
    pub mismatches: Vec<(EvId, EvId, EvId, u64)>,
}

/// Guest requests the host never followed.
#[derive(Clone, Debug, Default)]
pub struct Lost {
    pub count: u64,
    pub examples: Vec<EvId>,
}

impl Lost {
    fn add(&mut self, ev: EvId) {
        self.count += 1;
        if self.examples.len() < EXAMPLES {
            self.examples.push(ev);
        }
    }
}

/// A host MAP_DMA / UNMAP_DMA as the join sees it.
#[derive(Clone, Copy, Debug)]
pub struct HostOp {
    pub key: ContainerKey,
    pub wall: u64,
    pub start: u64,
    pub last: u64,
    pub vaddr: u64,
    pub ev: EvId,
}

#[derive(Clone, Debug)]
struct Waiting {
    by_iova: BTreeMap<(u64, EvId), PendingGuest>,
    order: VecDeque<(u64, u64, EvId)>,
    lost: BTreeMap<GuestDomainKey, Lost>,
}

impl Waiting {
    fn new() -> Self {
        Waiting {
            by_iova: BTreeMap::new(),
            order: VecDeque::new(),
            lost: BTreeMap::new(),
        }
    }

    fn push(&mut self, p: PendingGuest) {
        self.order.push_back((p.wall, p.start, p.ev));
        self.by_iova.insert((p.start, p.ev), p);
    }

    fn expire(&mut self, before: u64) {
        while let Some(&(w, s, ev)) = self.order.front() {
            if w >= before {
                break;
            }
            self.order.pop_front();
            if let Some(p) = self.by_iova.remove(&(s, ev)) {
                if p.matched.is_empty() {
                    self.lost.entry(p.key).or_default().add(p.ev);
                }
            }
        }
    }

    /// The oldest waiting guest request from another node that covers
    /// `[start, last]`, is within the time window of `wall` and was not
    /// matched by this container yet.
    fn find(
        &self,
        c: ContainerKey,
        start: u64,
        last: u64,
        wall: u64,
        window: u64,
        skew: u64,
    ) -> Option<(u64, EvId)> {
        self.by_iova
            .range(..=(start, EvId::MAX))
            .rev()
            .take(256)
            .filter(|(_, p)| {
                p.key.node != c.node
                    && !p.matched.contains(&c)
                    && p.start <= start
                    && last <= p.last
                    && wall.saturating_add(skew) >= p.wall
                    && wall <= p.wall.saturating_add(window)
            })
            .map(|(k, _)| *k)
            .min_by_key(|k| k.1)
    }
}

#[derive(Clone, Debug)]
pub struct Join {
    pub window_ns: u64,
    pub skew_ns: u64,
    maps: Waiting,
    unmaps: Waiting,
    pub evidence: BTreeMap<(GuestDomainKey, ContainerKey), PairEvidence>,
}

impl Join {
    pub fn new(window_ns: u64, skew_ns: u64) -> Self {
        Join {
            window_ns,
            skew_ns,
            maps: Waiting::new(),
            unmaps: Waiting::new(),
            evidence: BTreeMap::new(),
        }
    }

    /// Moves requests older than the window (relative to `now`) to the lost records.
    pub fn tick(&mut self, now: u64) {
        let before = now.saturating_sub(self.window_ns);
        self.maps.expire(before);
        self.unmaps.expire(before);
    }

    pub fn guest_map(&mut self, key: GuestDomainKey, wall: u64, m: Mapping) {
        self.maps.push(PendingGuest {
            key,
            wall,
            start: m.start,
            last: m.last,
            gpa: m.to,
            ev: m.meta.ev(),
            covered: 0,
            matched: Vec::new(),
        });
    }

    pub fn guest_unmap(&mut self, key: GuestDomainKey, wall: u64, start: u64, last: u64, ev: EvId) {
        self.unmaps.push(PendingGuest {
            key,
            wall,
            start,
            last,
            gpa: 0,
            ev,
            covered: 0,
            matched: Vec::new(),
        });
    }

    /// A host MAP_DMA (successful or not). `expected_hva(gpa)` is the memslot
    /// translation in the host process, if known; `judge_hva` says whether
    /// the host node has VMs at all (else HVAs cannot be judged). Returns the
    /// guest MAP it matched.
    ///
    /// A match settles the guest MAP when the HVA agrees (or cannot be
    /// judged); otherwise the MAP keeps waiting for a better container (a
    /// second VMM or a decoy mapping the same IOVA first must not hide the
    /// real one) and only remembers that this container matched it.
    pub fn host_map(
        &mut self,
        op: HostOp,
        judge_hva: bool,
        expected_hva: impl Fn(u64) -> Option<(u64, EvId)>,
    ) -> Option<PendingGuest> {
        let k = self.maps.find(
            op.key,
            op.start,
            op.last,
            op.wall,
            self.window_ns,
            self.skew_ns,
        )?;
        let p = self.maps.by_iova.get_mut(&k)?;
        let gpa = p.gpa.wrapping_add(op.start - p.start);
        let expected = expected_hva(gpa);
        let agrees = expected.map(|(hva, _)| hva == op.vaddr);
        let e = self.evidence.entry((p.key, op.key)).or_default();
        e.matches += 1;
        if e.examples.len() < EXAMPLES {
            e.examples.push((p.ev, op.ev));
        }
        match (agrees, expected) {
            (Some(true), _) => e.hva_agree += 1,
            (Some(false), Some((hva, slot_ev))) => {
                e.hva_disagree += 1;
                if e.mismatches.len() < EXAMPLES {
                    e.mismatches.push((p.ev, op.ev, slot_ev, hva));
                }
            }
            _ => {}
        }
        let matched = p.clone();
        if agrees == Some(true) || !judge_hva {
            p.covered = p
                .covered
                .saturating_add((op.last - op.start).saturating_add(1));
            if p.covered >= (p.last - p.start).saturating_add(1) {
                self.maps.by_iova.remove(&k);
            }
        } else {
            p.matched.push(op.key);
        }
        Some(matched)
    }

    /// A host UNMAP_DMA attempt: settles a waiting guest UNMAP it overlaps.
    pub fn host_unmap(&mut self, op: HostOp) {
        let hit = self
            .unmaps
            .by_iova
            .range(..=(op.last, EvId::MAX))
            .rev()
            .take(64)
            .filter(|(_, p)| {
                p.key.node != op.key.node
                    && p.start <= op.last
                    && op.start <= p.last
                    && op.wall.saturating_add(self.skew_ns) >= p.wall
                    && op.wall <= p.wall.saturating_add(self.window_ns)
            })
            .map(|(k, _)| *k)
            .min_by_key(|k| k.1);
        if let Some(k) = hit {
            self.unmaps.by_iova.remove(&k);
        }
    }

    pub fn lost_maps(&self) -> &BTreeMap<GuestDomainKey, Lost> {
        &self.maps.lost
    }

    pub fn lost_unmaps(&self) -> &BTreeMap<GuestDomainKey, Lost> {
        &self.unmaps.lost
    }

    /// Best container per guest domain (most matches, then most HVA
    /// agreements, then lowest key): the automatic pairings.
    pub fn best(
        &self,
        min_matches: u64,
    ) -> BTreeMap<GuestDomainKey, (ContainerKey, &PairEvidence)> {
        let mut out: BTreeMap<GuestDomainKey, (ContainerKey, &PairEvidence)> = BTreeMap::new();
        for ((g, c), e) in &self.evidence {
            if e.matches < min_matches {
                continue;
            }
            let better = match out.get(g) {
                None => true,
                Some((_, o)) => (e.matches, e.hva_agree) > (o.matches, o.hva_agree),
            };
            if better {
                out.insert(*g, (*c, e));
            }
        }
        out
    }
}
