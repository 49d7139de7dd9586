//! A node's stream lost events outside the probes' own drop counters: an
//! agent lost mid-stream (connection reset, killed, idle), or events an
//! agent dropped or lost on its way (its buffer full while disconnected,
//! batches missing). Written by the aggregator's side (`record --listen`)
//! on the node whose stream has the gap, so a recording says it is
//! incomplete wherever it is read.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{sample, Category, Kind, HEALTH};
use crate::event::Event;
use crate::tracefile::codec::fields::{FieldReader, FieldWriter};
use crate::tracefile::varint::DecodeResult;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamGap {
    /// What happened, for people ("lost mid-stream: connection reset").
    pub cause: String,
    /// Cumulative: events the agent dropped (its buffer full).
    pub dropped: u64,
    /// Cumulative: events the agent lost (not sent, not acknowledged).
    pub lost: u64,
    /// Cumulative: event batches that never arrived.
    pub missing_batches: u64,
}

impl fmt::Display for StreamGap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} dropped={} lost={} missing_batches={}",
            self.cause, self.dropped, self.lost, self.missing_batches
        )
    }
}

impl Kind for StreamGap {
    const CATEGORY: Category = Category::Health;
    const SUBSYSTEM: &'static str = "health";

    field_codec!(StreamGap {
        cause: s,
        dropped: v,
        lost: v,
        missing_batches: v,
    });

    fn failed(&self) -> bool {
        true
    }

    fn track(&self, _pid: u32) -> String {
        HEALTH.to_string()
    }

    fn samples() -> Vec<Event> {
        vec![sample::tool().at(
            9_000,
            StreamGap {
                cause: "lost mid-stream: connection reset by peer".into(),
                dropped: 0,
                lost: 12,
                missing_batches: 1,
            },
        )]
    }
}
