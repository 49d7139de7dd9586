use std::fmt;

use serde::{Deserialize, Serialize};

use super::{sample, Category, Kind, HEALTH};
use crate::event::Event;
use crate::tracefile::codec::fields::{FieldReader, FieldWriter};
use crate::tracefile::varint::DecodeResult;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drops {
    /// Cumulative: records the ring buffer had no room for.
    pub ring_full: u64,
    /// Cumulative: syscalls whose enter could not be remembered for pairing.
    pub pending_full: u64,
    /// Cumulative: user-memory reads that faulted (event kept, fields zero).
    pub read_failed: u64,
    /// Cumulative: records the user side could not decode.
    pub undecodable: u64,
}

impl Drops {
    /// Events lost (read failures and undecodable records lose fields, not events,
    /// but still make a verdict incomplete).
    pub fn total(&self) -> u64 {
        // Saturating: a file's counters are input like any other.
        self.ring_full
            .saturating_add(self.pending_full)
            .saturating_add(self.read_failed)
            .saturating_add(self.undecodable)
    }
}

impl fmt::Display for Drops {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ring_full={} pending_full={} read_failed={} undecodable={}",
            self.ring_full, self.pending_full, self.read_failed, self.undecodable
        )
    }
}

impl Kind for Drops {
    const CATEGORY: Category = Category::Health;
    const SUBSYSTEM: &'static str = "health";

    field_codec!(Drops {
        ring_full: v,
        pending_full: v,
        read_failed: v,
        undecodable: v,
    });

    fn failed(&self) -> bool {
        self.total() != 0
    }

    fn track(&self, _pid: u32) -> String {
        HEALTH.to_string()
    }

    fn samples() -> Vec<Event> {
        vec![sample::tool().at(
            u64::MAX,
            Drops {
                ring_full: 1,
                pending_full: 2,
                read_failed: 3,
                undecodable: u64::MAX,
            },
        )]
    }
}
