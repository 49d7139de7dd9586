//! [`PageTable`]: the open-addressing table behind [`super::IntervalMap`],
//! keyed by page number (the single-page pieces) or by 64-page block number
//! (their bitmaps).

use super::K;

/// An open-addressing table with the value stored in the slot, so a lookup
/// costs one cache miss (a general-purpose map keeps control bytes apart
/// from entries: two). Linear probing, Fibonacci hashing, backward-shift
/// deletion (no tombstones), load ≤ 5/8.
#[derive(Clone, Debug)]
pub(super) struct PageTable<V> {
    /// Power-of-two length, or empty.
    slots: Vec<Slot<V>>,
    len: usize,
}

impl<V> Default for PageTable<V> {
    fn default() -> Self {
        PageTable {
            slots: Vec::new(),
            len: 0,
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Slot<V> {
    /// Key + 1; 0 marks an empty slot.
    key: u64,
    val: V,
}

impl<V: Copy + Default> PageTable<V> {
    #[inline]
    fn home(&self, p: u64) -> usize {
        // Fibonacci hashing: the top bits of the product.
        let bits = self.slots.len().trailing_zeros();
        (p.wrapping_add(1).wrapping_mul(K) >> (64 - bits)) as usize
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Index of the slot holding `p`.
    #[inline]
    fn find(&self, p: u64) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut i = self.home(p);
        loop {
            let k = self.slots[i].key;
            if k == p.wrapping_add(1) {
                return Some(i);
            }
            if k == 0 {
                return None;
            }
            i = (i + 1) & mask;
        }
    }

    #[inline]
    pub fn get(&self, p: u64) -> Option<&V> {
        self.find(p).map(|i| &self.slots[i].val)
    }

    #[inline]
    pub fn get_mut(&mut self, p: u64) -> Option<&mut V> {
        self.find(p).map(|i| &mut self.slots[i].val)
    }

    pub fn contains(&self, p: u64) -> bool {
        self.find(p).is_some()
    }

    #[cold]
    #[inline(never)]
    fn grow(&mut self) {
        let cap = (self.slots.len() * 2).max(16);
        let old = std::mem::replace(&mut self.slots, vec![Slot::default(); cap]);
        self.len = 0;
        for s in old.into_iter().filter(|s| s.key != 0) {
            *self.entry(s.key - 1).0 = s.val;
        }
    }

    /// The value of `p`, a new `V::default()` when absent (then `true`).
    #[inline]
    pub fn entry(&mut self, p: u64) -> (&mut V, bool) {
        if (self.len + 1) * 8 > self.slots.len() * 5 {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let key = p.wrapping_add(1);
        let mut i = self.home(p);
        loop {
            let k = self.slots[i].key;
            if k == key {
                return (&mut self.slots[i].val, false);
            }
            if k == 0 {
                self.slots[i] = Slot {
                    key,
                    val: V::default(),
                };
                self.len += 1;
                return (&mut self.slots[i].val, true);
            }
            i = (i + 1) & mask;
        }
    }

    /// Inserts or replaces; returns whether `p` was new.
    #[inline]
    pub fn insert(&mut self, p: u64, val: V) -> bool {
        let (v, new) = self.entry(p);
        *v = val;
        new
    }

    #[inline]
    pub fn remove(&mut self, p: u64) -> Option<V> {
        let mut i = self.find(p)?;
        let val = self.slots[i].val;
        let mask = self.slots.len() - 1;
        // Backward shift: pull later entries of the probe run into the hole
        // when their home does not lie after it (cyclically).
        let mut j = i;
        loop {
            j = (j + 1) & mask;
            let k = self.slots[j].key;
            if k == 0 {
                break;
            }
            let h = self.home(k - 1);
            let movable = if i <= j {
                h <= i || h > j
            } else {
                h <= i && h > j
            };
            if movable {
                self.slots[i] = self.slots[j];
                i = j;
            }
        }
        self.slots[i] = Slot::default();
        self.len -= 1;
        Some(val)
    }

    pub fn clear(&mut self) {
        self.slots.clear();
        self.len = 0;
    }

    /// Every (key, value), in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &V)> {
        self.slots
            .iter()
            .filter(|s| s.key != 0)
            .map(|s| (s.key - 1, &s.val))
    }

    /// Asks the CPU to fetch the home slot of `p`.
    #[inline]
    pub fn prefetch(&self, p: u64) {
        if !self.slots.is_empty() {
            prefetch_ptr(&self.slots[self.home(p)]);
        }
    }
}

/// A cache prefetch hint (a no-op off x86_64).
#[inline(always)]
fn prefetch_ptr<T>(r: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint: it never faults and changes no memory.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>((r as *const T).cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = r;
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// The table against a std map: random inserts, replacements and
    /// removals (backward shifts across the table's wrap-around, growth).
    #[test]
    fn page_table_matches_a_map() {
        let mut t = PageTable::<u64>::default();
        let mut m: HashMap<u64, u64> = HashMap::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for i in 0..200_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Few distinct keys so that runs collide and wrap; some huge.
            let k = match x % 4 {
                0 => (x >> 8) % 64,
                1 => (x >> 8) % 4096,
                2 => (1 << 52) - 1 - (x >> 8) % 64,
                _ => ((x >> 8) % 512) << 9,
            };
            match (x >> 3) % 6 {
                0 | 1 => assert_eq!(t.remove(k), m.remove(&k), "remove {k}"),
                2 => {
                    // In place, as the block bitmaps are updated.
                    let absent = !m.contains_key(&k);
                    let (v, new) = t.entry(k);
                    let e = m.entry(k).or_default();
                    assert_eq!((*v, new), (*e, absent), "entry {k}");
                    *v ^= i;
                    *e ^= i;
                }
                _ => assert_eq!(t.insert(k, i), m.insert(k, i).is_none(), "insert {k}"),
            }
            assert_eq!(t.len(), m.len());
            if i.is_multiple_of(1000) {
                for (&k, &v) in &m {
                    assert_eq!(t.get(k), Some(&v));
                }
                assert_eq!(t.iter().count(), m.len());
            }
        }
    }
}
