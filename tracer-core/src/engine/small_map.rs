//! [`SmallMap`]: an ordered map that is a sorted `Vec` while small and a
//! `BTreeMap` once large. The join's queues hold a handful of requests in
//! flight almost always (each is settled by the call right after it), where
//! a B-tree's node walk, insert and remove cost several times a short
//! binary search and a `Vec` shift; a backlog (a guest nobody answers)
//! still gets the B-tree's logarithmic costs. Same results either way:
//! iteration is in key order.

use std::collections::{btree_map, BTreeMap};
use std::ops::{Bound, RangeBounds};

/// Entries at which the `Vec` becomes a `BTreeMap` (it turns back into a
/// `Vec` only once empty, so a size near the limit does not flip-flop).
const SPILL: usize = 32;

#[derive(Clone, Debug)]
pub(crate) enum SmallMap<K, V> {
    Small(Vec<(K, V)>),
    Large(BTreeMap<K, V>),
}

impl<K, V> Default for SmallMap<K, V> {
    fn default() -> Self {
        SmallMap::Small(Vec::new())
    }
}

/// Iterator over a range of either representation, in key order.
pub(crate) enum Range<'a, K, V> {
    Small(std::slice::Iter<'a, (K, V)>),
    Large(btree_map::Range<'a, K, V>),
}

impl<'a, K, V> Iterator for Range<'a, K, V> {
    type Item = (&'a K, &'a V);
    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Range::Small(it) => it.next().map(|(k, v)| (k, v)),
            Range::Large(it) => it.next(),
        }
    }
}

impl<K, V> DoubleEndedIterator for Range<'_, K, V> {
    #[inline]
    fn next_back(&mut self) -> Option<Self::Item> {
        match self {
            Range::Small(it) => it.next_back().map(|(k, v)| (k, v)),
            Range::Large(it) => it.next_back(),
        }
    }
}

impl<K: Ord + Copy, V> SmallMap<K, V> {
    pub fn len(&self) -> usize {
        match self {
            SmallMap::Small(v) => v.len(),
            SmallMap::Large(m) => m.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    #[inline]
    fn search(v: &[(K, V)], k: &K) -> Result<usize, usize> {
        v.binary_search_by(|(x, _)| x.cmp(k))
    }

    /// Inserts or replaces (the old value is dropped).
    pub fn insert(&mut self, k: K, val: V) {
        match self {
            SmallMap::Small(v) => match Self::search(v, &k) {
                Ok(i) => v[i].1 = val,
                Err(i) if v.len() < SPILL => v.insert(i, (k, val)),
                Err(_) => {
                    let mut m: BTreeMap<K, V> = std::mem::take(v).into_iter().collect();
                    m.insert(k, val);
                    *self = SmallMap::Large(m);
                }
            },
            SmallMap::Large(m) => {
                m.insert(k, val);
            }
        }
    }

    pub fn remove(&mut self, k: &K) -> Option<V> {
        match self {
            SmallMap::Small(v) => {
                let i = Self::search(v, k).ok()?;
                Some(v.remove(i).1)
            }
            SmallMap::Large(m) => {
                let out = m.remove(k);
                if m.is_empty() {
                    *self = SmallMap::Small(Vec::new());
                }
                out
            }
        }
    }

    pub fn get(&self, k: &K) -> Option<&V> {
        match self {
            SmallMap::Small(v) => Self::search(v, k).ok().map(|i| &v[i].1),
            SmallMap::Large(m) => m.get(k),
        }
    }

    pub fn get_mut(&mut self, k: &K) -> Option<&mut V> {
        match self {
            SmallMap::Small(v) => Self::search(v, k).ok().map(|i| &mut v[i].1),
            SmallMap::Large(m) => m.get_mut(k),
        }
    }

    /// Entries with keys in `r`, in key order.
    pub fn range<R: RangeBounds<K>>(&self, r: R) -> Range<'_, K, V> {
        match self {
            SmallMap::Small(v) => {
                let lo = match r.start_bound() {
                    Bound::Included(k) => v.partition_point(|(x, _)| x < k),
                    Bound::Excluded(k) => v.partition_point(|(x, _)| x <= k),
                    Bound::Unbounded => 0,
                };
                let hi = match r.end_bound() {
                    Bound::Included(k) => v.partition_point(|(x, _)| x <= k),
                    Bound::Excluded(k) => v.partition_point(|(x, _)| x < k),
                    Bound::Unbounded => v.len(),
                };
                Range::Small(v[lo..hi.max(lo)].iter())
            }
            SmallMap::Large(m) => Range::Large(m.range(r)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The map against a `BTreeMap`: random inserts, removals, lookups and
    /// ranges (both ends, each bound kind) across the spill and back.
    #[test]
    fn small_map_matches_a_btree() {
        let mut s: SmallMap<(u64, u64), u64> = SmallMap::default();
        let mut b: BTreeMap<(u64, u64), u64> = BTreeMap::new();
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut rnd = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for i in 0..100_000u64 {
            let r = rnd();
            // Phases: grow past the spill, then drain to empty, repeatedly.
            let grow = (i / 2000) % 2 == 0;
            let k = ((r >> 8) % 97, (r >> 20) % 3);
            match r % 5 {
                0 | 1 if grow => {
                    s.insert(k, i);
                    b.insert(k, i);
                }
                0..=2 => assert_eq!(s.remove(&k), b.remove(&k), "remove {k:?}"),
                3 => {
                    assert_eq!(s.get(&k), b.get(&k));
                    if let (Some(a), Some(c)) = (s.get_mut(&k), b.get_mut(&k)) {
                        *a ^= i;
                        *c ^= i;
                    }
                }
                _ => {
                    let (a, c) = (((r >> 30) % 99, 1), ((r >> 40) % 99, 2));
                    let (lo, hi) = (a.min(c), a.max(c));
                    let eq = |x: Range<'_, _, _>, y: btree_map::Range<'_, _, _>| {
                        x.map(|(k, v)| (*k, *v)).eq(y.map(|(k, v)| (*k, *v)))
                    };
                    assert!(eq(s.range(lo..=hi), b.range(lo..=hi)));
                    assert!(eq(s.range(..=hi), b.range(..=hi)));
                    assert!(eq(s.range(..lo), b.range(..lo)));
                    assert!(eq(s.range(lo..hi), b.range(lo..hi)));
                    assert!(s
                        .range(..=hi)
                        .rev()
                        .map(|(k, v)| (*k, *v))
                        .eq(b.range(..=hi).rev().map(|(k, v)| (*k, *v))));
                    assert!(s.range(..).map(|(k, _)| *k).eq(b.keys().copied()));
                }
            }
            assert_eq!(s.len(), b.len());
            assert_eq!(s.is_empty(), b.is_empty());
        }
    }
}
