//! The replay clock: which recorded events are "now", given play/pause,
//! speed, single steps and jumps. Pure; the runner feeds the model with the
//! ranges it returns.

use std::ops::Range;

/// Speeds offered by `+` / `-`.
pub const SPEEDS: [f64; 11] = [
    0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 100.0, 1000.0, 10000.0, 100000.0,
];

#[derive(Clone, Debug)]
pub struct ReplayClock {
    /// Aligned time of each event, non-decreasing.
    times: Vec<i128>,
    /// Events before it have been applied.
    next: usize,
    now: i128,
    pub playing: bool,
    speed: usize,
}

/// What the model must do after a jump.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Jump {
    /// Start over from an empty model (jumped backwards).
    pub rebuild: bool,
    /// Then apply these events.
    pub apply: Range<usize>,
}

impl ReplayClock {
    pub fn new(times: Vec<i128>) -> Self {
        let now = times.first().copied().unwrap_or(0);
        ReplayClock {
            times,
            next: 0,
            now,
            playing: true,
            speed: 3,
        }
    }

    pub fn start(&self) -> i128 {
        self.times.first().copied().unwrap_or(0)
    }

    pub fn end(&self) -> i128 {
        self.times.last().copied().unwrap_or(0)
    }

    pub fn now(&self) -> i128 {
        self.now
    }

    /// Aligned time of event `i`.
    pub fn time_of(&self, i: usize) -> Option<i128> {
        self.times.get(i).copied()
    }

    pub fn applied(&self) -> usize {
        self.next
    }

    pub fn total(&self) -> usize {
        self.times.len()
    }

    pub fn speed(&self) -> f64 {
        SPEEDS[self.speed]
    }

    pub fn faster(&mut self) {
        self.speed = (self.speed + 1).min(SPEEDS.len() - 1);
    }

    pub fn slower(&mut self) {
        self.speed = self.speed.saturating_sub(1);
    }

    pub fn toggle(&mut self) {
        if self.next >= self.times.len() && !self.playing {
            // At the end: play again from the start.
            return;
        }
        self.playing = !self.playing;
    }

    fn upto(&mut self, t: i128) -> Range<usize> {
        let from = self.next;
        let to = from + self.times[from..].partition_point(|&x| x <= t);
        self.next = to;
        from..to
    }

    /// Real time passed: the events now due.
    pub fn advance(&mut self, real_ns: u64) -> Range<usize> {
        if !self.playing {
            return self.next..self.next;
        }
        let step = (real_ns as f64 * self.speed()) as i128;
        self.now = self.now.saturating_add(step.max(1));
        let r = self.upto(self.now);
        if self.next >= self.times.len() {
            self.playing = false;
            self.now = self.now.min(self.end());
        }
        r
    }

    /// One event forward; pauses.
    pub fn step(&mut self) -> Range<usize> {
        self.playing = false;
        if self.next >= self.times.len() {
            return self.next..self.next;
        }
        self.now = self.times[self.next];
        let from = self.next;
        self.next += 1;
        from..self.next
    }

    /// To `secs` after the start.
    pub fn jump(&mut self, secs: f64) -> Jump {
        let target = self
            .start()
            .saturating_add((secs * 1e9) as i128)
            .min(self.end());
        let rebuild = target < self.now;
        if rebuild {
            self.next = 0;
        }
        self.now = target;
        Jump {
            rebuild,
            apply: self.upto(target),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock() -> ReplayClock {
        ReplayClock::new(vec![0, 1_000_000_000, 2_000_000_000, 3_000_000_000])
    }

    #[test]
    fn plays_at_speed_and_stops_at_the_end() {
        let mut c = clock();
        assert_eq!(c.advance(500_000_000), 0..1);
        c.faster();
        assert_eq!(c.speed(), 2.0);
        assert_eq!(c.advance(500_000_000), 1..2);
        assert_eq!(c.advance(10_000_000_000), 2..4);
        assert!(!c.playing);
        assert_eq!(c.now(), 3_000_000_000);
    }

    #[test]
    fn steps_pause_and_jumps_rebuild_only_backwards() {
        let mut c = clock();
        assert_eq!(c.step(), 0..1);
        assert!(!c.playing);
        assert_eq!(c.advance(5_000_000_000), 1..1);
        assert_eq!(
            c.jump(2.5),
            Jump {
                rebuild: false,
                apply: 1..3
            }
        );
        assert_eq!(
            c.jump(1.0),
            Jump {
                rebuild: true,
                apply: 0..2
            }
        );
        assert_eq!(c.applied(), 2);
        c.slower();
        c.slower();
        c.slower();
        c.slower();
        assert_eq!(c.speed(), 0.1);
    }
}
