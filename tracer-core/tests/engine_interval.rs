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
