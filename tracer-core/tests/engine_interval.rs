//! `IntervalMap` against a naive per-address model.

use std::collections::BTreeMap;

use proptest::prelude::*;
use tracer_core::engine::interval::{IntervalMap, Meta};

const SPACE: u64 = 64;

#[derive(Clone, Debug)]
enum Op {
    Insert(u64, u64, u64, u64),
    RemoveRange(u64, u64),
    RemoveContained(u64, u64),
}

fn op() -> impl Strategy<Value = Op> {
    let r = (0..SPACE, 0..SPACE).prop_map(|(a, b)| (a.min(b), a.max(b)));
    prop_oneof![
        (r.clone(), 0..1000u64, 0..3u64).prop_map(|((s, l), to, ev)| Op::Insert(s, l, to, ev)),
        r.clone().prop_map(|(s, l)| Op::RemoveRange(s, l)),
        r.prop_map(|(s, l)| Op::RemoveContained(s, l)),
    ]
}

/// Model: address → (target, meta, id of the original insert).
type Model = BTreeMap<u64, (u64, u64, usize)>;

fn check(im: &IntervalMap, model: &Model) {
    // Same translation for every address.
    for a in 0..SPACE {
        let got = im.get(a).map(|m| (m.translate(a), m.meta.ev()));
        let want = model.get(&a).map(|&(t, ev, _)| (t, ev));
        assert_eq!(got, want, "address {a}");
    }
    // Pieces are sorted, disjoint and never empty.
    let v: Vec<_> = im.iter().collect();
    for w in v.windows(2) {
        assert!(w[0].last < w[1].start);
    }
    assert!(v.iter().all(|m| m.start <= m.last));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Inserts (with metas from a small set, so merging happens) and
    /// range removals agree with the per-address model.
    #[test]
    fn insert_and_remove_range(ops in prop::collection::vec(op(), 1..40)) {
        let mut im = IntervalMap::new();
        let mut model = Model::new();
        for (i, op) in ops.into_iter().enumerate() {
            match op {
                Op::Insert(s, l, to, ev) => {
                    im.insert(s, l, to, Meta::new(ev, 0));
                    for a in s..=l {
                        model.insert(a, (to + (a - s), ev, i));
                    }
                }
                Op::RemoveRange(s, l) | Op::RemoveContained(s, l) => {
                    let mut seen = 0;
                    let n = im.remove_range(s, l, |m| seen += m.size());
                    let want = (s..=l).filter(|a| model.remove(a).is_some()).count() as u64;
                    prop_assert_eq!(n, want);
                    prop_assert_eq!(seen, want);
                }
            }
            check(&im, &model);
        }
    }

    /// With one meta per insert (as the engine uses them), `remove_contained`
    /// removes exactly the surviving pieces of inserts that lie inside the range.
    #[test]
    fn remove_contained_takes_whole_pieces(ops in prop::collection::vec(op(), 1..40)) {
        let mut im = IntervalMap::new();
        let mut model = Model::new();
        for (i, op) in ops.into_iter().enumerate() {
            match op {
                Op::Insert(s, l, to, _) => {
                    im.insert(s, l, to, Meta::new(i as u64, 0));
                    for a in s..=l {
                        model.insert(a, (to + (a - s), i as u64, i));
                    }
                }
                Op::RemoveRange(s, l) => {
                    im.remove_range(s, l, |_| {});
                    for a in s..=l {
                        model.remove(&a);
                    }
                }
                Op::RemoveContained(s, l) => {
                    // Pieces in the model: maximal runs of one insert id with
                    // contiguous addresses.
                    let mut pieces: Vec<(u64, u64, usize)> = Vec::new();
                    for (&a, &(_, _, id)) in &model {
                        match pieces.last_mut() {
                            Some(p) if p.2 == id && p.1 + 1 == a => p.1 = a,
                            _ => pieces.push((a, a, id)),
                        }
                    }
                    let mut want = 0;
                    for (ps, pl, _) in pieces.into_iter().filter(|p| p.0 >= s && p.1 <= l) {
                        for a in ps..=pl {
                            model.remove(&a);
                        }
                        want += pl - ps + 1;
                    }
                    let n = im.remove_contained(s, l, |_| {});
                    prop_assert_eq!(n, want);
                }
            }
            check(&im, &model);
        }
    }

    /// `overlapping` returns exactly the pieces touching the range.
    #[test]
    fn overlapping_matches_model(ops in prop::collection::vec(op(), 1..30), q in (0..SPACE, 0..SPACE)) {
        let mut im = IntervalMap::new();
        for (i, op) in ops.into_iter().enumerate() {
            if let Op::Insert(s, l, to, _) = op {
                im.insert(s, l, to, Meta::new(i as u64, 0));
            }
        }
        let (s, l) = (q.0.min(q.1), q.0.max(q.1));
        let got: Vec<_> = im.overlapping(s, l).collect();
        let want: Vec<_> = im.iter().filter(|m| m.start <= l && s <= m.last).collect();
        prop_assert_eq!(got, want);
    }
}

#[test]
fn meta_round_trips() {
    let m = Meta::new(0xffff_ffff_ffff, 0x1a);
    assert_eq!(m.ev(), 0xffff_ffff_ffff);
    assert_eq!(m.flags(), 0x1a);
}

/// Page-scaled ops: addresses in half-page units (so single aligned pages,
/// which take the map's page fast path, mix with sub-page and multi-page
/// ranges that split them), at the bottom or the top of the address space.
mod paged {
    use super::*;

    const UNIT: u64 = 2048;
    /// 128 pages: two 64-page bitmap blocks (at the top: three).
    const UNITS: u64 = 256;

    #[derive(Clone, Debug)]
    pub enum POp {
        /// Units [a, b] → unit `to`, event.
        Insert(u64, u64, u64, u64),
        /// One aligned page (units 2p, 2p+1) → unit `to`, event.
        Page(u64, u64, u64),
        RemoveRange(u64, u64),
        RemoveContained(u64, u64),
        /// remove_range / remove_contained of one aligned page.
        RemovePage(u64, bool),
    }

    pub fn pop() -> impl Strategy<Value = POp> {
        let r = (0..UNITS, 0..UNITS).prop_map(|(a, b)| (a.min(b), a.max(b)));
        prop_oneof![
            1 => (r.clone(), 0..200u64, 0..3u64).prop_map(|((a, b), to, ev)| POp::Insert(a, b, to, ev)),
            3 => (0..UNITS / 2, 0..200u64, 0..3u64).prop_map(|(p, to, ev)| POp::Page(p, to, ev)),
            1 => r.clone().prop_map(|(a, b)| POp::RemoveRange(a, b)),
            1 => r.prop_map(|(a, b)| POp::RemoveContained(a, b)),
            2 => (0..UNITS / 2, any::<bool>()).prop_map(|(p, c)| POp::RemovePage(p, c)),
        ]
    }

    /// unit → (target of the unit's first byte, event, insert id).
    type PModel = BTreeMap<u64, (u64, u64, usize)>;

    fn pieces(model: &PModel) -> Vec<(u64, u64, usize)> {
        let mut v: Vec<(u64, u64, usize)> = Vec::new();
        for (&u, &(_, _, id)) in model {
            match v.last_mut() {
                Some(p) if p.2 == id && p.1 + 1 == u => p.1 = u,
                _ => v.push((u, u, id)),
            }
        }
        v
    }

    fn pcheck(im: &IntervalMap, model: &PModel, base: u64) {
        for u in 0..UNITS {
            for off in [0, UNIT - 1] {
                let a = base + u * UNIT + off;
                let got = im.get(a).map(|m| (m.translate(a), m.meta.ev()));
                let want = model.get(&u).map(|&(t, ev, _)| (t + off, ev));
                assert_eq!(got, want, "unit {u} offset {off}");
            }
        }
        let v: Vec<_> = im.iter().collect();
        for w in v.windows(2) {
            assert!(w[0].last < w[1].start, "{v:x?}");
        }
        assert_eq!(v.len(), im.len());
        let q: Vec<_> = im
            .overlapping(base + 5 * UNIT + 7, base + 40 * UNIT)
            .collect();
        let want: Vec<_> = v
            .iter()
            .copied()
            .filter(|m| m.start <= base + 40 * UNIT && base + 5 * UNIT + 7 <= m.last)
            .collect();
        assert_eq!(q, want);
    }

    /// `fresh`: every insert has a new, larger event id (the engine's use:
    /// no merging possible); else events come from a small set.
    pub fn run(ops: Vec<POp>, base: u64, fresh: bool) -> Result<(), TestCaseError> {
        let mut im = IntervalMap::new();
        let mut model = PModel::new();
        let addr = |u: u64| base + u * UNIT;
        for (i, op) in ops.into_iter().enumerate() {
            let op = match op {
                POp::Page(p, to, ev) => POp::Insert(2 * p, 2 * p + 1, to, ev),
                POp::RemovePage(p, false) => POp::RemoveRange(2 * p, 2 * p + 1),
                POp::RemovePage(p, true) => POp::RemoveContained(2 * p, 2 * p + 1),
                op => op,
            };
            match op {
                POp::Insert(a, b, to, ev) => {
                    let ev = if fresh { i as u64 } else { ev };
                    let to = 0x1_0000_0000 + to * UNIT;
                    im.insert(addr(a), addr(b) + (UNIT - 1), to, Meta::new(ev, 0));
                    for u in a..=b {
                        model.insert(u, (to + (u - a) * UNIT, ev, i));
                    }
                }
                POp::RemoveRange(a, b) => {
                    let mut seen = 0;
                    let n = im.remove_range(addr(a), addr(b) + (UNIT - 1), |m| seen += m.size());
                    let want = (a..=b).filter(|u| model.remove(u).is_some()).count() as u64 * UNIT;
                    prop_assert_eq!(n, want);
                    prop_assert_eq!(seen, want);
                }
                POp::RemoveContained(a, b) => {
                    let n = im.remove_contained(addr(a), addr(b) + (UNIT - 1), |_| {});
                    if fresh {
                        // One meta per insert: whole surviving pieces inside go.
                        let mut want = 0;
                        for (pa, pb, _) in
                            pieces(&model).into_iter().filter(|p| p.0 >= a && p.1 <= b)
                        {
                            for u in pa..=pb {
                                model.remove(&u);
                            }
                            want += (pb - pa + 1) * UNIT;
                        }
                        prop_assert_eq!(n, want);
                    } else {
                        // Merged pieces of equal metas: re-read what is left.
                        for u in a..=b {
                            let a0 = addr(u);
                            if im.get(a0).is_none() {
                                model.remove(&u);
                            }
                        }
                    }
                }
                POp::Page(..) | POp::RemovePage(..) => unreachable!(),
            }
            pcheck(&im, &model, base);
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn paged_ops_match_model_fresh_events(ops in prop::collection::vec(paged::pop(), 1..50), top in any::<bool>()) {
        let base = if top { 0u64.wrapping_sub(256 * 2048) } else { 0 };
        paged::run(ops, base, true)?;
    }

    #[test]
    fn paged_ops_match_model_merging_events(ops in prop::collection::vec(paged::pop(), 1..50), top in any::<bool>()) {
        let base = if top { 0u64.wrapping_sub(256 * 2048) } else { 0x4000_0000 };
        paged::run(ops, base, false)?;
    }
}
