//! Pairs a guest virtio-iommu domain with the host VFIO container serving it.
//!
//! Evidence is the map sequence itself: a guest MAP (IOVA, size, GPA) and a
//! host MAP_DMA of the same IOVA range from a VMM process on another node
//! within `window` of wall-clock time. Each such match counts for (guest
//! domain, container); a pairing is the container with most matches.
//!
//! The two sides may come in either order. The guest probe timestamps a
//! request when the device *completes* it, and QEMU issues the MAP_DMA while
//! handling the request, so on real runs the host call usually comes first
//! (by the completion latency, µs to ms). Host calls that found no waiting
//! guest request are therefore kept for `skew` and matched when the guest
//! request arrives; guest requests wait up to `window` for a host call.
//!
//! The boot-bypass map (all RAM, no guest MAP of that size) and VFIO's probe
//! map at IOVA 0 (an `iommu_map`, not a MAP_DMA) never match. Guest MAPs and
//! UNMAPs that no host MAP_DMA/UNMAP_DMA matched are remembered per guest
//! domain (count and a few examples) for the chain-break rules.

use std::collections::{BTreeMap, VecDeque};

use super::interval::Mapping;
use super::keys::{ContainerKey, EvId, GuestDomainKey};
use super::small_map::SmallMap;

/// Examples kept per record.
const EXAMPLES: usize = 4;
/// Candidates examined per lookup (bounds the cost of pathological overlaps).
const SCAN: usize = 256;
/// Host calls kept waiting for a later guest request (requests in flight
/// in the guest's virtqueue are far fewer).
const EARLY_MAX: usize = 4096;

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

impl PendingGuest {
    fn size(&self) -> u64 {
        (self.last - self.start).saturating_add(1)
    }
}

/// A guest MAP followed by a host MAP_DMA whose HVA is not the memslot's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct HvaMismatch {
    pub guest_map: EvId,
    pub map_dma: EvId,
    pub memslot: EvId,
    pub expected_hva: u64,
    /// The host MAP_DMA's IOVA range.
    pub iova: (u64, u64),
}

/// A guest MAP whose host MAP_DMA the kernel refused (errno ≠ 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Refused {
    pub guest_map: EvId,
    pub map_dma: EvId,
    /// The host MAP_DMA's IOVA range.
    pub iova: (u64, u64),
    pub errno: i32,
}

/// Refused matches kept per pairing (what later rules may attribute to a
/// cause, and take out of the per-call MAP_DMA findings, whose own cap is
/// the same).
pub const REFUSED_MAX: usize = 256;

/// Why a guest domain and a container were paired.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PairEvidence {
    /// Guest MAPs matched with a host MAP_DMA.
    pub matches: u64,
    /// Of those, how many had HVA == memslot(GPA) / HVA ≠ memslot(GPA).
    pub hva_agree: u64,
    pub hva_disagree: u64,
    /// (guest MAP, host MAP_DMA) examples.
    pub examples: Vec<(EvId, EvId)>,
    /// Matches whose HVA disagreed.
    pub mismatches: Vec<HvaMismatch>,
    /// Matches whose host MAP_DMA failed: how many, the first
    /// [`REFUSED_MAX`].
    pub refused_count: u64,
    pub refused: Vec<Refused>,
}

/// Guest requests the host never followed.
#[derive(Clone, Debug, Default)]
pub struct Lost {
    pub count: u64,
    pub examples: Vec<EvId>,
    /// The IOVAs they cover: lowest start, highest last.
    pub span: Option<(u64, u64)>,
}

impl Lost {
    fn add(&mut self, ev: EvId, start: u64, last: u64) {
        self.count += 1;
        if self.examples.len() < EXAMPLES {
            self.examples.push(ev);
        }
        self.span = Some(match self.span {
            Some((s, l)) => (s.min(start), l.max(last)),
            None => (start, last),
        });
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
    /// The call's errno (0: it succeeded).
    pub errno: i32,
}

/// What the host side knows when a match is judged: `judge_hva(c)` says
/// whether HVAs of container `c` can be judged (its node has VMs),
/// `expected_hva(c, gpa)` is the memslot translation in `c`'s process.
pub trait HostView {
    fn judge_hva(&self, c: ContainerKey) -> bool;
    fn expected_hva(&self, c: ContainerKey, gpa: u64) -> Option<(u64, EvId)>;
}

/// What a [`Queue`] holds: its arrival wall time, start IOVA and event.
trait Queued {
    fn slot(&self) -> (u64, u64, EvId);
}

impl Queued for PendingGuest {
    fn slot(&self) -> (u64, u64, EvId) {
        (self.wall, self.start, self.ev)
    }
}

impl Queued for HostOp {
    fn slot(&self) -> (u64, u64, EvId) {
        (self.wall, self.start, self.ev)
    }
}

/// Items by start IOVA (for matching), and in arrival order (for expiry).
#[derive(Clone, Debug)]
struct Queue<T> {
    by_iova: SmallMap<(u64, EvId), T>,
    order: VecDeque<(u64, u64, EvId)>,
}

impl<T> Default for Queue<T> {
    fn default() -> Self {
        Queue {
            by_iova: SmallMap::default(),
            order: VecDeque::new(),
        }
    }
}

impl<T: Queued> Queue<T> {
    fn push(&mut self, t: T) {
        let (wall, start, ev) = t.slot();
        self.order.push_back((wall, start, ev));
        self.by_iova.insert((start, ev), t);
    }

    /// Takes an item out before it expires. The newest one (the common
    /// case: settled by the call right after it) also leaves the expiry
    /// queue, so that queue holds only what still waits.
    fn take(&mut self, k: (u64, EvId)) -> Option<T> {
        let t = self.by_iova.remove(&k)?;
        self.unqueue_newest(&t);
        Some(t)
    }

    fn unqueue_newest(&mut self, t: &T) {
        if self.order.back() == Some(&t.slot()) {
            self.order.pop_back();
        }
    }

    /// Arrival wall time of the oldest item (`u64::MAX` when empty).
    fn front_wall(&self) -> u64 {
        self.order.front().map_or(u64::MAX, |f| f.0)
    }

    /// Drops the oldest item.
    fn drop_oldest(&mut self) {
        if let Some((_, s, ev)) = self.order.pop_front() {
            self.by_iova.remove(&(s, ev));
        }
    }

    /// Called for every event: the check that nothing expired stays inline.
    #[inline]
    fn expire(&mut self, before: u64, gone: impl FnMut(T)) {
        if self.order.front().is_some_and(|f| f.0 < before) {
            self.expire_some(before, gone);
        }
    }

    #[inline(never)]
    fn expire_some(&mut self, before: u64, mut gone: impl FnMut(T)) {
        while let Some(&(w, s, ev)) = self.order.front() {
            if w >= before {
                break;
            }
            self.order.pop_front();
            if let Some(t) = self.by_iova.remove(&(s, ev)) {
                gone(t);
            }
        }
    }
}

/// Guest requests waiting for the host calls that propagate them; those
/// that expire unmatched are lost (never propagated).
#[derive(Clone, Debug, Default)]
struct Waiting {
    q: Queue<PendingGuest>,
    lost: BTreeMap<GuestDomainKey, Lost>,
}

impl Waiting {
    fn expire(&mut self, before: u64) {
        let lost = &mut self.lost;
        self.q.expire(before, |p| {
            if p.matched.is_empty() {
                lost.entry(p.key).or_default().add(p.ev, p.start, p.last);
            }
        });
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
        self.q
            .by_iova
            .range(..=(start, EvId::MAX))
            .rev()
            .take(SCAN)
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

/// Host calls that came before any guest request they could match, kept
/// for `skew` (by start IOVA, and in arrival order for expiry).
#[derive(Clone, Debug, Default)]
struct Early {
    q: Queue<HostOp>,
}

impl Early {
    fn push(&mut self, op: HostOp) {
        // Calls no guest request ever follows (host-only DMA users, boot
        // maps) must not pile up: the oldest go first.
        while self.q.by_iova.len() >= EARLY_MAX && !self.q.order.is_empty() {
            self.q.drop_oldest();
        }
        self.q.push(op);
    }

    fn take(&mut self, k: (u64, EvId)) -> Option<HostOp> {
        self.q.take(k)
    }

    #[inline]
    fn expire(&mut self, before: u64) {
        self.q.expire(before, drop);
    }

    /// Host calls (oldest first) from another node than the guest request
    /// `p`, inside the time window, with `keep(op)`; `within` says whether
    /// the call must lie inside the request (maps) or only overlap it.
    fn candidates(
        &self,
        p: &PendingGuest,
        window: u64,
        skew: u64,
        within: bool,
    ) -> Vec<(u64, EvId)> {
        if self.q.by_iova.is_empty() {
            return Vec::new();
        }
        let mut v: Vec<(u64, EvId)> = self
            .q
            .by_iova
            .range((p.start, 0)..=(p.last, EvId::MAX))
            .chain(
                // Unmaps: a host call starting below the request may overlap it.
                (!within)
                    .then(|| self.q.by_iova.range(..(p.start, 0)).rev().take(SCAN))
                    .into_iter()
                    .flatten(),
            )
            .take(SCAN)
            .filter(|(_, op)| {
                op.key.node != p.key.node
                    && op.start <= p.last
                    && p.start <= op.last
                    && (!within || (p.start <= op.start && op.last <= p.last))
                    && op.wall.saturating_add(skew) >= p.wall
                    && op.wall <= p.wall.saturating_add(window)
            })
            .map(|(k, _)| *k)
            .collect();
        v.sort_unstable_by_key(|k| k.1);
        v
    }
}

#[derive(Clone, Debug)]
pub struct Join {
    pub window_ns: u64,
    pub skew_ns: u64,
    maps: Waiting,
    unmaps: Waiting,
    early_maps: Early,
    early_unmaps: Early,
    pub evidence: BTreeMap<(GuestDomainKey, ContainerKey), PairEvidence>,
    /// At most the arrival wall time of the oldest waiting guest request
    /// (of `maps` and `unmaps`), and of the oldest early host call: `tick`
    /// looks into the queues only when something may have expired (one
    /// comparison per event instead of four queue checks). A queue's oldest
    /// item changes only when it is pushed to or expired, where these are
    /// lowered or recomputed.
    due_waiting: u64,
    due_early: u64,
}

/// Counts a (guest MAP, host MAP_DMA) match; returns whether the HVA agreed
/// with the memslot (`None`: could not be judged).
fn record(
    evidence: &mut BTreeMap<(GuestDomainKey, ContainerKey), PairEvidence>,
    p: &PendingGuest,
    op: &HostOp,
    host: &impl HostView,
) -> Option<bool> {
    let gpa = p.gpa.wrapping_add(op.start - p.start);
    let expected = host.expected_hva(op.key, gpa);
    let agrees = expected.map(|(hva, _)| hva == op.vaddr);
    let e = evidence.entry((p.key, op.key)).or_default();
    e.matches += 1;
    if e.examples.len() < EXAMPLES {
        e.examples.push((p.ev, op.ev));
    }
    if op.errno != 0 {
        e.refused_count += 1;
        if e.refused.len() < REFUSED_MAX {
            e.refused.push(Refused {
                guest_map: p.ev,
                map_dma: op.ev,
                iova: (op.start, op.last),
                errno: op.errno,
            });
        }
    }
    match (agrees, expected) {
        (Some(true), _) => e.hva_agree += 1,
        (Some(false), Some((hva, slot_ev))) => {
            e.hva_disagree += 1;
            if e.mismatches.len() < EXAMPLES {
                e.mismatches.push(HvaMismatch {
                    guest_map: p.ev,
                    map_dma: op.ev,
                    memslot: slot_ev,
                    expected_hva: hva,
                    iova: (op.start, op.last),
                });
            }
        }
        _ => {}
    }
    agrees
}

/// Applies a judged match to the guest request: a match settles (covers)
/// it when the HVA agrees or cannot be judged; otherwise the request keeps
/// waiting for a better container (a second VMM or a decoy mapping the same
/// IOVA first must not hide the real one) and only remembers that this
/// container matched it. Returns true once the request is fully covered.
fn settle(p: &mut PendingGuest, op: &HostOp, agrees: Option<bool>, judge: bool) -> bool {
    if agrees == Some(true) || !judge {
        p.covered = p
            .covered
            .saturating_add((op.last - op.start).saturating_add(1));
        p.covered >= p.size()
    } else {
        if !p.matched.contains(&op.key) {
            p.matched.push(op.key);
        }
        false
    }
}

impl Join {
    pub fn new(window_ns: u64, skew_ns: u64) -> Self {
        Join {
            window_ns,
            skew_ns,
            maps: Waiting::default(),
            unmaps: Waiting::default(),
            early_maps: Early::default(),
            early_unmaps: Early::default(),
            evidence: BTreeMap::new(),
            due_waiting: u64::MAX,
            due_early: u64::MAX,
        }
    }

    /// Moves requests older than the window (relative to `now`) to the lost
    /// records; forgets host calls older than the skew.
    pub fn tick(&mut self, now: u64) {
        let before = now.saturating_sub(self.window_ns);
        if before > self.due_waiting {
            self.maps.expire(before);
            self.unmaps.expire(before);
            self.due_waiting = self.maps.q.front_wall().min(self.unmaps.q.front_wall());
        }
        let early = now.saturating_sub(self.skew_ns);
        if early > self.due_early {
            self.early_maps.expire(early);
            self.early_unmaps.expire(early);
            self.due_early = self
                .early_maps
                .q
                .front_wall()
                .min(self.early_unmaps.q.front_wall());
        }
    }

    /// A guest MAP: matched with host MAP_DMAs that came first, else waits.
    pub fn guest_map(&mut self, key: GuestDomainKey, wall: u64, m: Mapping, host: &impl HostView) {
        let mut p = PendingGuest {
            key,
            wall,
            start: m.start,
            last: m.last,
            gpa: m.to,
            ev: m.meta.ev(),
            covered: 0,
            matched: Vec::new(),
        };
        for k in self
            .early_maps
            .candidates(&p, self.window_ns, self.skew_ns, true)
        {
            let Some(op) = self.early_maps.q.by_iova.get(&k).copied() else {
                continue;
            };
            if p.matched.contains(&op.key) {
                continue;
            }
            let agrees = record(&mut self.evidence, &p, &op, host);
            self.early_maps.take(k);
            if settle(&mut p, &op, agrees, host.judge_hva(op.key)) {
                return;
            }
        }
        self.due_waiting = self.due_waiting.min(p.wall);
        self.maps.q.push(p);
    }

    /// A guest UNMAP: settled by a host UNMAP_DMA that came first, else waits.
    pub fn guest_unmap(&mut self, key: GuestDomainKey, wall: u64, start: u64, last: u64, ev: EvId) {
        let p = PendingGuest {
            key,
            wall,
            start,
            last,
            gpa: 0,
            ev,
            covered: 0,
            matched: Vec::new(),
        };
        let mut p = p;
        // Host unmaps that came first, until they cover the whole request
        // (a VMM unmaps a multi-page guest UNMAP page by page).
        for k in self
            .early_unmaps
            .candidates(&p, self.window_ns, self.skew_ns, true)
        {
            if let Some(op) = self.early_unmaps.take(k) {
                p.covered = p.covered.saturating_add(op.last - op.start + 1);
                if p.covered >= p.size() {
                    return;
                }
            }
        }
        self.due_waiting = self.due_waiting.min(p.wall);
        self.unmaps.q.push(p);
    }

    /// A host MAP_DMA (successful or not) from a VMM: matched with the
    /// oldest waiting guest MAP it fits in, else kept for a guest MAP that
    /// comes later. Returns whether it matched one.
    pub fn host_map(&mut self, op: HostOp, host: &impl HostView) -> bool {
        let Some(k) = self.maps.find(
            op.key,
            op.start,
            op.last,
            op.wall,
            self.window_ns,
            self.skew_ns,
        ) else {
            self.early_maps.push(op);
            // Pushing may drop the oldest calls (EARLY_MAX): a new oldest.
            self.due_early = self
                .due_early
                .min(op.wall)
                .min(self.early_maps.q.front_wall());
            return false;
        };
        // Taken out, and put back unless settled (usually it is).
        let Some(mut p) = self.maps.q.by_iova.remove(&k) else {
            return false;
        };
        let agrees = record(&mut self.evidence, &p, &op, host);
        if settle(&mut p, &op, agrees, host.judge_hva(op.key)) {
            self.maps.q.unqueue_newest(&p);
        } else {
            self.maps.q.by_iova.insert(k, p);
        }
        true
    }

    /// A host UNMAP_DMA attempt: counts toward a waiting guest UNMAP it
    /// lies within, else is kept for a guest UNMAP that comes later. A larger
    /// host unmap (the VMM tearing the whole space down at reset) is not
    /// the propagation of a guest UNMAP: the page stayed mapped until then.
    pub fn host_unmap(&mut self, op: HostOp) {
        let hit = self
            .unmaps
            .q
            .by_iova
            .range(..=(op.last, EvId::MAX))
            .rev()
            .take(SCAN)
            .filter(|(_, p)| {
                p.key.node != op.key.node
                    && p.start <= op.start
                    && op.last <= p.last
                    && op.wall.saturating_add(self.skew_ns) >= p.wall
                    && op.wall <= p.wall.saturating_add(self.window_ns)
            })
            .map(|(k, _)| *k)
            .min_by_key(|k| k.1);
        let Some(k) = hit else {
            self.early_unmaps.push(op);
            self.due_early = self
                .due_early
                .min(op.wall)
                .min(self.early_unmaps.q.front_wall());
            return;
        };
        // Settled once host unmaps cover the whole guest request; a part
        // left mapped expires as not propagated.
        let Some(p) = self.unmaps.q.by_iova.get_mut(&k) else {
            return;
        };
        p.covered = p.covered.saturating_add(op.last - op.start + 1);
        if p.covered >= p.size() {
            self.unmaps.q.take(k);
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
