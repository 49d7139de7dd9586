//! Health events (probe status with hit counts, drop counters) without the
//! noise: each second only what changed since it was last sent (a probe
//! whose hits or state moved, new drop counts) and, once, a probe that has
//! just gone quiet (so "hits since the last report" drops back to 0);
//! everything at the start and at the end, so a recording opens and closes
//! with the full picture.

use std::collections::HashMap;

use tracer_core::event::{Comm, Drops, Event, EventKind, NodeId, ProbeStatus};

use crate::node::monotonic_ns;

#[derive(Default)]
pub struct HealthTracker {
    /// The last status sent per probe, and whether it changed then.
    sent: HashMap<String, (ProbeStatus, bool)>,
    drops: Option<Drops>,
}

impl HealthTracker {
    /// The events for `statuses` and `drops`: all of them when `full`, else
    /// only those that differ from what was sent last.
    pub fn events(
        &mut self,
        statuses: Vec<ProbeStatus>,
        drops: Drops,
        node: NodeId,
        full: bool,
    ) -> Vec<Event> {
        let ts_ns = monotonic_ns();
        let mk = |kind| Event {
            ts_ns,
            node,
            pid: 0,
            tid: 0,
            comm: Comm::new("vfio-trace"),
            kind,
        };
        let mut out = Vec::new();
        for s in statuses {
            // (differs from the last one sent, known before, was moving)
            let (changed, known, was_moving) = match self.sent.get(&s.probe) {
                Some((last, moving)) => (*last != s, true, *moving),
                None => (true, false, false),
            };
            if full || changed || was_moving {
                self.sent
                    .insert(s.probe.clone(), (s.clone(), changed && known));
                out.push(mk(EventKind::ProbeStatus(s)));
            }
        }
        if full || self.drops.as_ref() != Some(&drops) {
            self.drops = Some(drops.clone());
            out.push(mk(EventKind::Drops(drops)));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use tracer_core::event::ProbeState;

    use super::*;

    fn probe(name: &str, hits: u64) -> ProbeStatus {
        ProbeStatus {
            probe: name.into(),
            attach: format!("kprobe:{name}"),
            status: ProbeState::Attached,
            required: false,
            reason: String::new(),
            hits,
        }
    }

    fn zero() -> Drops {
        Drops {
            ring_full: 0,
            pending_full: 0,
            read_failed: 0,
            undecodable: 0,
        }
    }

    fn names(v: &[Event]) -> Vec<String> {
        v.iter()
            .map(|e| match &e.kind {
                EventKind::ProbeStatus(s) => format!("{}={}", s.probe, s.hits),
                EventKind::Drops(d) => format!("drops={}", d.ring_full),
                k => panic!("unexpected {k:?}"),
            })
            .collect()
    }

    #[test]
    fn only_changes_between_full_snapshots() {
        let mut h = HealthTracker::default();
        let first = h.events(vec![probe("a", 0), probe("b", 0)], zero(), 3, false);
        assert_eq!(names(&first), ["a=0", "b=0", "drops=0"], "first: all");
        assert!(first.iter().all(|e| e.node == 3));
        let idle = h.events(vec![probe("a", 0), probe("b", 0)], zero(), 3, false);
        assert!(idle.is_empty(), "nothing changed: nothing sent");
        let mut d = zero();
        d.ring_full = 2;
        let busy = h.events(vec![probe("a", 5), probe("b", 0)], d.clone(), 3, false);
        assert_eq!(names(&busy), ["a=5", "drops=2"]);
        let quiet = h.events(vec![probe("a", 5), probe("b", 0)], d.clone(), 3, false);
        assert_eq!(names(&quiet), ["a=5"], "once more as it goes quiet");
        let idle = h.events(vec![probe("a", 5), probe("b", 0)], d.clone(), 3, false);
        assert!(idle.is_empty());
        let end = h.events(vec![probe("a", 5), probe("b", 0)], d, 3, true);
        assert_eq!(names(&end), ["a=5", "b=0", "drops=2"], "the end: all");
    }
}
