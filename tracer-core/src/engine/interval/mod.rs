//! [`IntervalMap`]: non-overlapping address ranges, each translating linearly
//! to a target address, with the split semantics of the kernel's mapping
//! tables (a partial unmap leaves the uncovered pieces mapped, each still
//! translating as before).
//!
//! Most mappings are single 4 KiB pages (the DMA API maps page by page), so
//! a piece that is exactly one aligned page lives in an open-addressing
//! table keyed by page number with the piece in the slot (one cache miss to
//! find, insert or remove it; `table.rs`), plus a bitmap per 64-page block
//! (a 64× smaller table of the same kind) for walks in address order. Every other piece lives
//! in a `BTreeMap` keyed by start. A lookup tries the page table first, then
//! the B-tree; range operations merge both. Inserting a page whose event is
//! newer than everything in the map (what the engine always does: event
//! ids grow) cannot merge with a neighbour, so it skips the neighbour
//! lookups. On a random IOVA pattern replay spends about half its time in
//! cache misses into these tables (one per layer per event); throughput
//! and bytes per live mapping (≈ 51 B at 1 M sequential pages) are in
//! `benches/engine.rs`. Ends are inclusive so a range may reach `u64::MAX`.

mod table;

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::iter::Peekable;

use table::PageTable;

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

/// The [`span`] a call mapped: `None` when it failed (`errno` ≠ 0).
pub fn mapped_span(errno: i32, start: u64, size: u64) -> Option<(u64, u64)> {
    if errno != 0 {
        return None;
    }
    span(start, size)
}

/// Do `[a0, a1]` and `[b0, b1]` (inclusive) share an address?
pub fn overlaps(a0: u64, a1: u64, b0: u64, b1: u64) -> bool {
    a0 <= b1 && b0 <= a1
}

/// A fast hasher for integer keys (page numbers, small tuples): a folded
/// 64×64→128 multiply, which spreads sequential and strided keys alike.
#[derive(Clone, Copy, Debug, Default)]
pub struct IntHash;

#[derive(Clone, Copy, Debug, Default)]
pub struct IntHasher(u64);

const K: u64 = 0x9e37_79b9_7f4a_7c15;

impl IntHasher {
    #[inline]
    fn mix(&mut self, x: u64) {
        let m = u128::from(self.0 ^ x ^ 0x2d35_8dcc_aa6c_78a5) * u128::from(K);
        self.0 = (m as u64) ^ ((m >> 64) as u64);
    }
}

impl Hasher for IntHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for c in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..c.len()].copy_from_slice(c);
            self.mix(u64::from_le_bytes(b));
        }
    }
    #[inline]
    fn write_u64(&mut self, x: u64) {
        self.mix(x);
    }
    #[inline]
    fn write_u32(&mut self, x: u32) {
        self.mix(u64::from(x));
    }
    #[inline]
    fn write_u16(&mut self, x: u16) {
        self.mix(u64::from(x));
    }
    #[inline]
    fn write_usize(&mut self, x: usize) {
        self.mix(x as u64);
    }
}

impl BuildHasher for IntHash {
    type Hasher = IntHasher;
    #[inline]
    fn build_hasher(&self) -> IntHasher {
        IntHasher(0)
    }
}

const PAGE_SHIFT: u32 = 12;
const PAGE: u64 = 1 << PAGE_SHIFT;
/// Pages per bitmap block.
const BLOCK_SHIFT: u32 = 6;

/// Is `[start, last]` exactly one aligned 4 KiB page?
#[inline]
fn is_page(start: u64, last: u64) -> bool {
    start & (PAGE - 1) == 0 && last.wrapping_sub(start) == PAGE - 1
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Small {
    to: u64,
    meta: Meta,
}

fn page_piece(p: u64, s: Small) -> Mapping {
    let start = p << PAGE_SHIFT;
    Mapping {
        start,
        last: start + (PAGE - 1),
        to: s.to,
        meta: s.meta,
    }
}

#[derive(Clone, Debug, Default)]
pub struct IntervalMap {
    /// Pieces by start (any piece may live here).
    big: BTreeMap<u64, Seg>,
    /// Pieces that are exactly one aligned page, by page number.
    pages: PageTable<Small>,
    /// Which pages of each 64-page block are in `pages`, by block number.
    blocks: PageTable<u64>,
    /// Highest event id ever inserted (`None`: nothing yet).
    max_ev: Option<u64>,
}

/// Pieces of `pages` overlapping a page-number range, in order.
struct PageWalk<'a> {
    pages: &'a PageTable<Small>,
    /// The blocks in range with their bitmaps, in order.
    blocks: std::vec::IntoIter<(u64, u64)>,
    /// Current block base page and its remaining bits.
    cur: Option<(u64, u64)>,
    first: u64,
    last: u64,
}

impl Iterator for PageWalk<'_> {
    type Item = Mapping;
    fn next(&mut self) -> Option<Mapping> {
        loop {
            if let Some((base, bits)) = &mut self.cur {
                if *bits != 0 {
                    let p = *base + u64::from(bits.trailing_zeros());
                    *bits &= *bits - 1;
                    if p < self.first {
                        continue;
                    }
                    if p > self.last {
                        self.cur = None;
                        return None;
                    }
                    if let Some(s) = self.pages.get(p) {
                        return Some(page_piece(p, *s));
                    }
                    continue;
                }
            }
            let (b, bits) = self.blocks.next()?;
            self.cur = Some((b << BLOCK_SHIFT, bits));
        }
    }
}

/// Two address-ordered piece iterators merged (their pieces are disjoint).
struct Merge<A: Iterator<Item = Mapping>, B: Iterator<Item = Mapping>> {
    a: Peekable<A>,
    b: Peekable<B>,
}

impl<A: Iterator<Item = Mapping>, B: Iterator<Item = Mapping>> Iterator for Merge<A, B> {
    type Item = Mapping;
    fn next(&mut self) -> Option<Mapping> {
        match (self.a.peek(), self.b.peek()) {
            (Some(x), Some(y)) if y.start < x.start => self.b.next(),
            (Some(_), _) => self.a.next(),
            (None, _) => self.b.next(),
        }
    }
}

impl IntervalMap {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.big.len() + self.pages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.big.is_empty() && self.pages.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = Mapping> + '_ {
        self.overlapping(0, u64::MAX)
    }

    fn big_piece(start: u64, s: &Seg) -> Mapping {
        Mapping {
            start,
            last: s.last,
            to: s.to,
            meta: s.meta,
        }
    }

    fn big_get(&self, addr: u64) -> Option<Mapping> {
        if self.big.is_empty() {
            return None;
        }
        let (&start, s) = self.big.range(..=addr).next_back()?;
        (s.last >= addr).then(|| Self::big_piece(start, s))
    }

    /// Asks the CPU to start fetching what a lookup of `addr` touches, so
    /// that the miss overlaps other work (see [`super::Engine::apply_all`]).
    #[inline]
    pub fn prefetch(&self, addr: u64) {
        self.pages.prefetch(addr >> PAGE_SHIFT);
    }

    /// The piece containing `addr`.
    pub fn get(&self, addr: u64) -> Option<Mapping> {
        let p = addr >> PAGE_SHIFT;
        if let Some(s) = self.pages.get(p) {
            return Some(page_piece(p, *s));
        }
        self.big_get(addr)
    }

    /// The piece starting exactly at `addr`.
    fn starting_at(&self, addr: u64) -> Option<Mapping> {
        if addr & (PAGE - 1) == 0 {
            let p = addr >> PAGE_SHIFT;
            if let Some(s) = self.pages.get(p) {
                return Some(page_piece(p, *s));
            }
        }
        self.big.get(&addr).map(|s| Self::big_piece(addr, s))
    }

    fn big_overlapping(&self, start: u64, last: u64) -> impl Iterator<Item = Mapping> + '_ {
        let first = self.big_get(start).filter(|m| m.start < start);
        let rest = (start <= last && !self.big.is_empty())
            .then(|| self.big.range(start..=last))
            .into_iter()
            .flatten()
            .map(|(&start, s)| Self::big_piece(start, s));
        first.into_iter().chain(rest)
    }

    fn page_walk(&self, start: u64, last: u64) -> PageWalk<'_> {
        let (first, lastp) = (start >> PAGE_SHIFT, last >> PAGE_SHIFT);
        let mut blocks: Vec<(u64, u64)> = Vec::new();
        if start <= last && !self.pages.is_empty() {
            let (b0, b1) = (first >> BLOCK_SHIFT, lastp >> BLOCK_SHIFT);
            if b1 - b0 < self.blocks.len() as u64 {
                // Fewer blocks in range than in the map: look each up.
                blocks.extend((b0..=b1).filter_map(|b| self.blocks.get(b).map(|&bits| (b, bits))));
            } else {
                blocks.extend(
                    self.blocks
                        .iter()
                        .filter(|(b, _)| (b0..=b1).contains(b))
                        .map(|(b, &bits)| (b, bits)),
                );
                blocks.sort_unstable();
            }
        }
        PageWalk {
            pages: &self.pages,
            blocks: blocks.into_iter(),
            cur: None,
            first,
            last: lastp,
        }
    }

    /// Pieces sharing an address with `[start, last]`, in address order, unclipped.
    pub fn overlapping(&self, start: u64, last: u64) -> impl Iterator<Item = Mapping> + '_ {
        Merge {
            a: self.big_overlapping(start, last).peekable(),
            b: self.page_walk(start, last).peekable(),
        }
    }

    fn big_overlaps(&self, start: u64, last: u64) -> bool {
        !self.big.is_empty()
            && self
                .big
                .range(..=last)
                .next_back()
                .is_some_and(|(_, s)| s.last >= start)
    }

    /// Is any address of `[start, last]` mapped?
    pub fn any_overlap(&self, start: u64, last: u64) -> bool {
        if start > last {
            return false;
        }
        if is_page(start, last) && self.pages.contains(start >> PAGE_SHIFT) {
            return true;
        }
        self.big_overlaps(start, last) || self.page_walk(start, last).next().is_some()
    }

    fn set_bit(&mut self, p: u64) {
        *self.blocks.entry(p >> BLOCK_SHIFT).0 |= 1 << (p & 63);
    }

    fn clear_bit(&mut self, p: u64) {
        let b = p >> BLOCK_SHIFT;
        if let Some(bits) = self.blocks.get_mut(b) {
            *bits &= !(1 << (p & 63));
            if *bits == 0 {
                self.blocks.remove(b);
            }
        }
    }

    fn take_page(&mut self, p: u64) -> Option<Mapping> {
        let s = self.pages.remove(p)?;
        self.clear_bit(p);
        Some(page_piece(p, s))
    }

    /// Stores a piece that overlaps nothing.
    fn put(&mut self, m: Mapping) {
        if is_page(m.start, m.last) {
            let p = m.start >> PAGE_SHIFT;
            self.pages.insert(
                p,
                Small {
                    to: m.to,
                    meta: m.meta,
                },
            );
            self.set_bit(p);
        } else {
            self.big.insert(
                m.start,
                Seg {
                    last: m.last,
                    to: m.to,
                    meta: m.meta,
                },
            );
        }
    }

    /// Removes the piece starting at `start` (which must exist).
    fn take(&mut self, m: &Mapping) {
        if self.take_page(m.start >> PAGE_SHIFT).is_none() {
            self.big.remove(&m.start);
        }
    }

    /// Maps `[start, last]` → `to`, replacing whatever overlapped (those
    /// pieces are split), then merges with neighbours that continue it.
    pub fn insert(&mut self, start: u64, last: u64, to: u64, meta: Meta) {
        if start > last {
            return;
        }
        // No piece has this meta when its event is newer than all: no merge.
        let fresh = self.max_ev.is_none_or(|e| meta.ev() > e);
        self.max_ev = Some(self.max_ev.map_or(meta.ev(), |e| e.max(meta.ev())));
        let small = Small { to, meta };
        if fresh && is_page(start, last) && !self.big_overlaps(start, last) {
            // A page replacing a page: nothing else can overlap it.
            let p = start >> PAGE_SHIFT;
            if self.pages.insert(p, small) {
                self.set_bit(p);
            }
            return;
        }
        if self.any_overlap(start, last) {
            self.remove_range(start, last, |_| {});
        }
        let mut m = Mapping {
            start,
            last,
            to,
            meta,
        };
        if !fresh {
            if let Some(prev) = start.checked_sub(1).and_then(|p| self.get(p)) {
                if prev.meta == meta
                    && prev.last.checked_add(1) == Some(start)
                    && prev.translate(start) == to
                    && prev.to <= to
                {
                    self.take(&prev);
                    m.start = prev.start;
                    m.to = prev.to;
                }
            }
            if let Some(next) = last.checked_add(1).and_then(|n| self.starting_at(n)) {
                if next.meta == meta && m.translate(last).checked_add(1) == Some(next.to) {
                    self.take(&next);
                    m.last = next.last;
                }
            }
        }
        self.put(m);
    }

    /// Splits the big piece containing `addr` so that a piece starts at `addr`.
    fn split_at(&mut self, addr: u64) {
        let Some((&start, seg)) = self.big.range_mut(..addr).next_back() else {
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
        self.big.insert(addr, tail);
    }

    /// Moves the page pieces that stick out of `[start, last]` into the
    /// B-tree, so that its splitting applies to them.
    fn unpage_ends(&mut self, start: u64, last: u64) {
        for a in [start, last] {
            let p = a >> PAGE_SHIFT;
            let inside = (p << PAGE_SHIFT) >= start && (p << PAGE_SHIFT) + (PAGE - 1) <= last;
            if !inside {
                if let Some(m) = self.take_page(p) {
                    self.big.insert(
                        m.start,
                        Seg {
                            last: m.last,
                            to: m.to,
                            meta: m.meta,
                        },
                    );
                }
            }
        }
    }

    /// Takes the page pieces lying inside `[start, last]`.
    fn take_pages_inside(&mut self, start: u64, last: u64, out: &mut Vec<Mapping>) {
        if self.pages.is_empty() {
            return;
        }
        let inside: Vec<u64> = self
            .page_walk(start, last)
            .filter(|m| m.start >= start && m.last <= last)
            .map(|m| m.start >> PAGE_SHIFT)
            .collect();
        for p in inside {
            out.extend(self.take_page(p));
        }
    }

    /// Calls `f` on pieces in address order; returns their bytes (saturating).
    fn emit(mut v: Vec<Mapping>, mut f: impl FnMut(Mapping)) -> u64 {
        v.sort_unstable_by_key(|m| m.start);
        let mut n = 0u64;
        for m in v {
            n = n.saturating_add(m.size());
            f(m);
        }
        n
    }

    /// Unmaps every address of `[start, last]`, splitting pieces that stick
    /// out. Calls `f` with each removed (clipped) piece; returns the bytes
    /// removed (saturating).
    pub fn remove_range(&mut self, start: u64, last: u64, mut f: impl FnMut(Mapping)) -> u64 {
        if start > last {
            return 0;
        }
        if is_page(start, last) {
            if let Some(m) = self.take_page(start >> PAGE_SHIFT) {
                f(m);
                return PAGE;
            }
        }
        if let Some(seg) = self.big.get(&start).copied() {
            if seg.last == last {
                self.big.remove(&start);
                let m = Self::big_piece(start, &seg);
                f(m);
                return m.size();
            }
        }
        let mut out = Vec::new();
        self.unpage_ends(start, last);
        self.take_pages_inside(start, last, &mut out);
        self.split_at(start);
        if let Some(after) = last.checked_add(1) {
            self.split_at(after);
        }
        while let Some((&s, _)) = self.big.range(start..=last).next() {
            if let Some(seg) = self.big.remove(&s) {
                out.push(Self::big_piece(s, &seg));
            }
        }
        Self::emit(out, f)
    }

    /// Unmaps only the pieces lying entirely inside `[start, last]` (what
    /// VFIO type1 and virtio-iommu UNMAP do); pieces that stick out stay
    /// whole. Calls `f` with each removed piece; returns the bytes removed.
    pub fn remove_contained(&mut self, start: u64, last: u64, mut f: impl FnMut(Mapping)) -> u64 {
        if start > last {
            return 0;
        }
        if is_page(start, last) {
            if let Some(m) = self.take_page(start >> PAGE_SHIFT) {
                f(m);
                return PAGE;
            }
        }
        let mut out = Vec::new();
        self.take_pages_inside(start, last, &mut out);
        let mut from = start;
        while let Some((&s, seg)) = self.big.range(from..=last).next() {
            let seg = *seg;
            if seg.last <= last {
                self.big.remove(&s);
                out.push(Self::big_piece(s, &seg));
            }
            match seg.last.checked_add(1) {
                Some(n) if n <= last => from = n,
                _ => break,
            }
        }
        if out.is_empty() {
            return 0;
        }
        Self::emit(out, f)
    }

    /// Removes everything; calls `f` with each piece.
    pub fn clear(&mut self, mut f: impl FnMut(Mapping)) {
        for m in self.iter() {
            f(m);
        }
        self.big.clear();
        self.pages.clear();
        self.blocks.clear();
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
