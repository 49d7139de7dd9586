//! Events per second per node, by the events' own clock (so replay shows
//! the recorded rates and tests are deterministic).

use std::collections::{BTreeMap, VecDeque};

use tracer_core::event::NodeId;

/// Seconds of history kept for the sparklines.
pub const WINDOW_SECS: usize = 120;

#[derive(Debug, Default)]
pub struct Rates {
    /// Per node: (second, count) with consecutive seconds, oldest first.
    nodes: BTreeMap<NodeId, VecDeque<(u64, u64)>>,
}

impl Rates {
    pub fn record(&mut self, node: NodeId, ts_ns: u64) {
        let sec = ts_ns / 1_000_000_000;
        let q = self.nodes.entry(node).or_default();
        match q.back_mut() {
            Some((s, n)) if *s == sec => *n += 1,
            // An event from the past (clocks are per CPU): count it in the
            // newest bucket rather than reorder.
            Some((s, n)) if *s > sec => *n += 1,
            Some(&mut (s, _)) => {
                // Fill the gap with zeros so the sparkline shows idle time.
                let gap = (sec - s - 1).min(WINDOW_SECS as u64);
                for i in 0..gap {
                    q.push_back((sec - gap + i, 0));
                }
                q.push_back((sec, 1));
            }
            None => q.push_back((sec, 1)),
        }
        while q.len() > WINDOW_SECS {
            q.pop_front();
        }
    }

    /// Per-second counts of a node, oldest first.
    pub fn series(&self, node: NodeId) -> Vec<u64> {
        self.nodes
            .get(&node)
            .map(|q| q.iter().map(|&(_, n)| n).collect())
            .unwrap_or_default()
    }

    /// Rate of the node's last complete second (the current one if it is
    /// the only one).
    pub fn last_rate(&self, node: NodeId) -> u64 {
        match self.nodes.get(&node) {
            Some(q) if q.len() >= 2 => q[q.len() - 2].1,
            Some(q) => q.back().map_or(0, |b| b.1),
            None => 0,
        }
    }

    /// Sum of every node's [`last_rate`](Self::last_rate).
    pub fn total_rate(&self) -> u64 {
        self.nodes.keys().map(|&n| self.last_rate(n)).sum()
    }

    pub fn nodes(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.nodes.keys().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_second_with_idle_gaps() {
        let mut r = Rates::default();
        for t in [0, 1, 2] {
            r.record(0, t * 100_000_000);
        }
        r.record(0, 3_500_000_000);
        assert_eq!(r.series(0), vec![3, 0, 0, 1]);
        assert_eq!(r.last_rate(0), 0);
        assert_eq!(r.total_rate(), 0);
        r.record(1, 0);
        assert_eq!(r.last_rate(1), 1);
    }
}
