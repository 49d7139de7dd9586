//! [`IntervalMap`]: non-overlapping address ranges, each translating linearly
//! to a target address, with the split semantics of the kernel's mapping
//! tables (a partial unmap leaves the uncovered pieces mapped, each still
//! translating as before).
//!
//! Stored as a `BTreeMap` keyed by start with a 24-byte value, so a live
//! mapping costs its share of one B-tree node (64 bytes measured at 1 M
//! sequential mappings, see
//! `benches/engine.rs`). Ends are inclusive so a range may reach `u64::MAX`.

use std::collections::BTreeMap;

/// What a piece carries besides its addresses: the id of the event that
/// created it (48 bits) and 16 bits of layer-specific flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Meta(u64);

impl Meta {
    const EV_BITS: u32 = 48;
    const EV_MASK: u64 = (1 << Self::EV_BITS) - 1;

    pub fn new(ev: u64, flags: u16) -> Self {
        Meta((ev & Self::EV_MASK) | (u64::from(flags) << Self::EV_BITS))
    }

    pub fn ev(self) -> u64 {
        self.0 & Self::EV_MASK
    }

    pub fn flags(self) -> u16 {
        (self.0 >> Self::EV_BITS) as u16
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Seg {
    last: u64,
    to: u64,
    meta: Meta,
}

/// One piece of an [`IntervalMap`]: `[start, last]` → `[to, to + last - start]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mapping {
    pub start: u64,
    /// Inclusive.
    pub last: u64,
    /// Target of `start`.
    pub to: u64,
    pub meta: Meta,
}

impl Mapping {
    /// Bytes covered, saturating at `u64::MAX` for the whole address space.
    pub fn size(&self) -> u64 {
        (self.last - self.start).saturating_add(1)
    }

    /// Target of `addr` (which must lie inside the piece).
    pub fn translate(&self, addr: u64) -> u64 {
        self.to.wrapping_add(addr.wrapping_sub(self.start))
    }

    /// The part of this piece inside `[start, last]`, if any.
    pub fn clip(&self, start: u64, last: u64) -> Option<Mapping> {
        let s = self.start.max(start);
        let l = self.last.min(last);
        (s <= l).then(|| Mapping {
            start: s,
            last: l,
            to: self.translate(s),
            meta: self.meta,
        })
    }
}

/// `[start, start + size - 1]`, or `None` for an empty or wrapping range.
pub fn span(start: u64, size: u64) -> Option<(u64, u64)> {
    let last = start.checked_add(size.checked_sub(1)?)?;
    Some((start, last))
}

/// Do `[a0, a1]` and `[b0, b1]` (inclusive) share an address?
pub fn overlaps(a0: u64, a1: u64, b0: u64, b1: u64) -> bool {
    a0 <= b1 && b0 <= a1
}

#[derive(Clone, Debug, Default)]
pub struct IntervalMap {
    map: BTreeMap<u64, Seg>,
}

impl IntervalMap {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = Mapping> + '_ {
        self.map.iter().map(|(&start, s)| Mapping {
            start,
            last: s.last,
            to: s.to,
            meta: s.meta,
        })
    }

    /// The piece containing `addr`.
    pub fn get(&self, addr: u64) -> Option<Mapping> {
        let (&start, s) = self.map.range(..=addr).next_back()?;
        (s.last >= addr).then_some(Mapping {
            start,
            last: s.last,
            to: s.to,
            meta: s.meta,
        })
    }

    /// Pieces sharing an address with `[start, last]`, in address order, unclipped.
    pub fn overlapping(&self, start: u64, last: u64) -> impl Iterator<Item = Mapping> + '_ {
        let first = self.get(start).filter(|m| m.start < start);
        let rest = (start <= last)
            .then(|| self.map.range(start..=last))
            .into_iter()
            .flatten()
            .map(|(&start, s)| Mapping {
                start,
                last: s.last,
                to: s.to,
                meta: s.meta,
            });
        first.into_iter().chain(rest)
    }

    /// Is any address of `[start, last]` mapped?
    pub fn any_overlap(&self, start: u64, last: u64) -> bool {
        self.overlapping(start, last).next().is_some()
    }

    /// Maps `[start, last]` → `to`, replacing whatever overlapped (those
    /// pieces are split), then merges with neighbours that continue it.
    pub fn insert(&mut self, start: u64, last: u64, to: u64, meta: Meta) {
        if start > last {
            return;
        }
        // The piece starting at or before `last`: if it ends before `start`
        // nothing overlaps (the common case) and it is the merge candidate.
        let below = self.map.range(..=last).next_back().map(|(&s, g)| (s, *g));
        let prev = match below {
            Some((_, g)) if g.last >= start => {
                self.remove_range(start, last, |_| {});
                start.checked_sub(1).and_then(|p| self.get(p))
            }
            Some((s, g)) => Some(Mapping {
                start: s,
                last: g.last,
                to: g.to,
                meta: g.meta,
            }),
            None => None,
        };
        let mut m = Mapping {
            start,
            last,
            to,
            meta,
        };
        if let Some(prev) = prev {
            if prev.meta == meta
                && prev.last.checked_add(1) == Some(start)
                && prev.translate(start) == to
                && prev.to <= to
            {
                self.map.remove(&prev.start);
                m.start = prev.start;
                m.to = prev.to;
            }
        }
        if let Some(next) = last.checked_add(1).and_then(|n| self.map.get(&n).copied()) {
            if next.meta == meta && m.translate(last).checked_add(1) == Some(next.to) {
                self.map.remove(&(last + 1));
                m.last = next.last;
            }
        }
        self.map.insert(
            m.start,
            Seg {
                last: m.last,
                to: m.to,
                meta: m.meta,
            },
        );
    }

    /// Splits the piece containing `addr` so that a piece starts at `addr`.
    fn split_at(&mut self, addr: u64) {
        let Some((&start, seg)) = self.map.range_mut(..addr).next_back() else {
            return;
        };
        if seg.last < addr {
            return;
        }
        let tail = Seg {
            last: seg.last,
            to: seg.to.wrapping_add(addr - start),
            meta: seg.meta,
        };
        seg.last = addr - 1;
        self.map.insert(addr, tail);
    }

    /// Unmaps every address of `[start, last]`, splitting pieces that stick
    /// out. Calls `f` with each removed (clipped) piece; returns the bytes
    /// removed (saturating).
    pub fn remove_range(&mut self, start: u64, last: u64, mut f: impl FnMut(Mapping)) -> u64 {
        if start > last {
            return 0;
        }
        if let Some(seg) = self.map.get(&start).copied() {
            if seg.last == last {
                self.map.remove(&start);
                let m = Mapping {
                    start,
                    last,
                    to: seg.to,
                    meta: seg.meta,
                };
                f(m);
                return m.size();
            }
        }
        self.split_at(start);
        if let Some(after) = last.checked_add(1) {
            self.split_at(after);
        }
        let mut removed = 0u64;
        while let Some((&s, _)) = self.map.range(start..=last).next() {
            if let Some(seg) = self.map.remove(&s) {
                let m = Mapping {
                    start: s,
                    last: seg.last,
                    to: seg.to,
                    meta: seg.meta,
                };
                removed = removed.saturating_add(m.size());
                f(m);
            }
        }
        removed
    }

    /// Unmaps only the pieces lying entirely inside `[start, last]` (what
    /// VFIO type1 and virtio-iommu UNMAP do); pieces that stick out stay
    /// whole. Calls `f` with each removed piece; returns the bytes removed.
    pub fn remove_contained(&mut self, start: u64, last: u64, mut f: impl FnMut(Mapping)) -> u64 {
        if start > last {
            return 0;
        }
        let mut removed = 0u64;
        let mut from = start;
        while let Some((&s, seg)) = self.map.range(from..=last).next() {
            let seg = *seg;
            if seg.last <= last {
                self.map.remove(&s);
                let m = Mapping {
                    start: s,
                    last: seg.last,
                    to: seg.to,
                    meta: seg.meta,
                };
                removed = removed.saturating_add(m.size());
                f(m);
            }
            match seg.last.checked_add(1) {
                Some(n) if n <= last => from = n,
                _ => break,
            }
        }
        removed
    }

    /// Removes everything; calls `f` with each piece.
    pub fn clear(&mut self, mut f: impl FnMut(Mapping)) {
        for m in self.iter() {
            f(m);
        }
        self.map.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(ev: u64) -> Meta {
        Meta::new(ev, 0)
    }

    #[test]
    fn partial_unmap_splits_and_keeps_translation() {
        let mut im = IntervalMap::new();
        im.insert(0x1000, 0x4fff, 0xa000, m(1));
        let removed = im.remove_range(0x2000, 0x2fff, |_| {});
        assert_eq!(removed, 0x1000);
        let v: Vec<_> = im.iter().map(|p| (p.start, p.last, p.to)).collect();
        assert_eq!(v, vec![(0x1000, 0x1fff, 0xa000), (0x3000, 0x4fff, 0xc000)]);
        assert_eq!(im.get(0x3800).map(|p| p.translate(0x3800)), Some(0xc800));
    }

    #[test]
    fn contained_unmap_leaves_sticking_out_pieces() {
        let mut im = IntervalMap::new();
        im.insert(0x1000, 0x1fff, 0, m(1));
        im.insert(0x2000, 0x3fff, 0, m(2));
        assert_eq!(im.remove_contained(0x1000, 0x2fff, |_| {}), 0x1000);
        assert_eq!(im.len(), 1);
        assert!(im.get(0x2000).is_some());
    }

    #[test]
    fn merge_rejoins_continuations_of_one_event() {
        let mut im = IntervalMap::new();
        im.insert(0, 0xfff, 0x10000, m(1));
        im.insert(0x1000, 0x1fff, 0x11000, m(1));
        assert_eq!(im.len(), 1);
        im.insert(0x2000, 0x2fff, 0x99000, m(1));
        assert_eq!(im.len(), 2);
    }

    #[test]
    fn top_of_address_space() {
        let mut im = IntervalMap::new();
        im.insert(u64::MAX - 0xfff, u64::MAX, 0, m(1));
        assert_eq!(im.remove_range(0, u64::MAX, |_| {}), 0x1000);
        im.insert(0, u64::MAX, 0, m(1));
        assert_eq!(im.remove_contained(0, u64::MAX, |_| {}), u64::MAX);
        assert!(im.is_empty());
        assert_eq!(span(u64::MAX, 2), None);
        assert_eq!(span(5, 0), None);
    }
}
