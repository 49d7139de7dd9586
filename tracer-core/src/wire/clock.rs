//! Aligning a remote node's clock with the aggregator's.
//!
//! Events carry their node's CLOCK_MONOTONIC; a node's `clock_offset_ns`
//! maps it to wall-clock time. An agent's hello carries its own
//! CLOCK_REALTIME − CLOCK_MONOTONIC, which is only as good as the agent's
//! wall clock (a guest's may be seconds off). Ping/pong round trips measure
//! the agent's monotonic clock against the aggregator's directly: for a
//! ping sent at aggregator time `t0`, answered at agent time `ta` and
//! received at `t1`, the agent read `ta` at about `(t0 + t1) / 2`, within
//! ±RTT/2. The sample with the smallest round trip among the recent ones
//! wins; the node's offset becomes the aggregator's own wall-clock offset
//! plus that monotonic difference, so every node lands on the aggregator's
//! wall clock.

use std::collections::VecDeque;

/// Samples kept (1 a second after the initial burst): a sample older than
/// this many pings is forgotten, so slow drift is followed.
const WINDOW: usize = 32;

/// One ping/pong round trip.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClockSample {
    /// Aggregator CLOCK_MONOTONIC when the ping left.
    pub sent_ns: u64,
    /// Agent CLOCK_MONOTONIC when it answered.
    pub agent_ns: u64,
    /// Aggregator CLOCK_MONOTONIC when the pong arrived.
    pub recv_ns: u64,
}

impl ClockSample {
    pub fn rtt_ns(&self) -> u64 {
        self.recv_ns - self.sent_ns
    }

    /// Aggregator monotonic − agent monotonic.
    fn mono_delta(&self) -> i64 {
        let mid = i128::from(self.sent_ns) + i128::from(self.rtt_ns() / 2);
        let d = mid - i128::from(self.agent_ns);
        d.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }
}

/// The current estimate of one agent's clock offset.
#[derive(Clone, Debug)]
pub struct ClockEstimate {
    hello_offset_ns: i64,
    local_offset_ns: i64,
    samples: VecDeque<ClockSample>,
}

impl ClockEstimate {
    /// `hello_offset_ns`: the agent's own REALTIME − MONOTONIC (its hello);
    /// `local_offset_ns`: the aggregator's.
    pub fn new(hello_offset_ns: i64, local_offset_ns: i64) -> Self {
        ClockEstimate {
            hello_offset_ns,
            local_offset_ns,
            samples: VecDeque::with_capacity(WINDOW),
        }
    }

    /// Adds a round trip; samples whose pong came back before its ping left
    /// (a confused peer) are ignored. Returns whether it was kept.
    pub fn add(&mut self, s: ClockSample) -> bool {
        if s.recv_ns < s.sent_ns {
            return false;
        }
        if self.samples.len() == WINDOW {
            self.samples.pop_front();
        }
        self.samples.push_back(s);
        true
    }

    fn best(&self) -> Option<&ClockSample> {
        self.samples.iter().min_by_key(|s| s.rtt_ns())
    }

    /// The offset to put in the node's `NodeInfo::clock_offset_ns`: from the
    /// best round trip, else the hello's own.
    pub fn offset_ns(&self) -> i64 {
        match self.best() {
            Some(s) => self.local_offset_ns.saturating_add(s.mono_delta()),
            None => self.hello_offset_ns,
        }
    }

    /// Uncertainty of [`offset_ns`](Self::offset_ns): half the best round trip.
    pub fn uncertainty_ns(&self) -> Option<u64> {
        self.best().map(|s| s.rtt_ns() / 2)
    }

    /// How far the agent's own wall clock is from the aggregator's
    /// (measured offset − hello offset), once a round trip was measured.
    pub fn wall_skew_ns(&self) -> Option<i64> {
        self.best()
            .map(|_| self.offset_ns().saturating_sub(self.hello_offset_ns))
    }

    pub fn samples(&self) -> usize {
        self.samples.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_offset_until_a_round_trip() {
        let mut c = ClockEstimate::new(500, 100);
        assert_eq!(c.offset_ns(), 500);
        assert_eq!(c.wall_skew_ns(), None);
        // Agent monotonic is 1000 behind the aggregator's; RTT 20.
        assert!(c.add(ClockSample {
            sent_ns: 10_000,
            agent_ns: 9_010,
            recv_ns: 10_020,
        }));
        assert_eq!(c.offset_ns(), 100 + 1000);
        assert_eq!(c.uncertainty_ns(), Some(10));
        assert_eq!(c.wall_skew_ns(), Some(600));
    }

    #[test]
    fn smallest_round_trip_wins_and_bad_samples_are_ignored() {
        let mut c = ClockEstimate::new(0, 0);
        c.add(ClockSample {
            sent_ns: 0,
            agent_ns: 400,
            recv_ns: 1000,
        });
        c.add(ClockSample {
            sent_ns: 2000,
            agent_ns: 1005,
            recv_ns: 2010,
        });
        assert_eq!(c.offset_ns(), 1000);
        assert!(!c.add(ClockSample {
            sent_ns: 5,
            agent_ns: 0,
            recv_ns: 4,
        }));
        assert_eq!(c.samples(), 2);
    }

    #[test]
    fn extremes_do_not_panic() {
        let mut c = ClockEstimate::new(i64::MAX, i64::MAX);
        c.add(ClockSample {
            sent_ns: u64::MAX - 1,
            agent_ns: 0,
            recv_ns: u64::MAX,
        });
        let _ = c.offset_ns();
        let mut c = ClockEstimate::new(i64::MIN, i64::MIN);
        c.add(ClockSample {
            sent_ns: 0,
            agent_ns: u64::MAX,
            recv_ns: 0,
        });
        let _ = c.offset_ns();
        let _ = c.wall_skew_ns();
    }
}
