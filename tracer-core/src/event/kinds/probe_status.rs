use std::fmt;

use serde::{Deserialize, Serialize};

use super::{sample, Category, Kind, HEALTH};
use crate::event::Event;
use crate::tracefile::codec::fields::{FieldReader, FieldWriter};
use crate::tracefile::varint::DecodeResult;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeState {
    Attached,
    /// The kernel has no such function/tracepoint (or its module isn't loaded).
    MissingSymbol,
    /// The kernel refuses this program type (e.g. no kprobes).
    Unsupported,
    /// Attach failed for another reason (see `reason`).
    Failed,
    /// Detached (module unloaded, or the tool is stopping).
    Detached,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeStatus {
    pub probe: String,
    /// Where it attaches, e.g. `tracepoint:syscalls:sys_enter_ioctl`.
    pub attach: String,
    pub status: ProbeState,
    pub required: bool,
    pub reason: String,
    /// Times the program ran.
    pub hits: u64,
}

/// Trace-file ids of the states: their index.
const PROBE_STATES: [ProbeState; 5] = [
    ProbeState::Attached,
    ProbeState::MissingSymbol,
    ProbeState::Unsupported,
    ProbeState::Failed,
    ProbeState::Detached,
];

// Exhaustive, so that a new state fails to compile here.
fn state_id(v: ProbeState) -> u8 {
    match v {
        ProbeState::Attached => 0,
        ProbeState::MissingSymbol => 1,
        ProbeState::Unsupported => 2,
        ProbeState::Failed => 3,
        ProbeState::Detached => 4,
    }
}

impl fmt::Display for ProbeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at {} {:?}{} hits={}",
            self.probe,
            self.attach,
            self.status,
            if self.required { " required" } else { "" },
            self.hits
        )?;
        if !self.reason.is_empty() {
            write!(f, " reason={:?}", self.reason)?;
        }
        Ok(())
    }
}

impl Kind for ProbeStatus {
    const CATEGORY: Category = Category::Health;
    const SUBSYSTEM: &'static str = "health";

    fn encode(&self, w: &mut FieldWriter<'_>) {
        w.s(&self.probe);
        w.s(&self.attach);
        w.b(state_id(self.status));
        w.bool(self.required);
        w.s(&self.reason);
        w.v(self.hits);
    }

    fn decode(r: &mut FieldReader<'_, '_>) -> DecodeResult<Self> {
        Ok(ProbeStatus {
            probe: r.s()?,
            attach: r.s()?,
            status: r.pick(&PROBE_STATES, "probe state")?,
            required: r.bool()?,
            reason: r.s()?,
            hits: r.v()?,
        })
    }

    fn track(&self, _pid: u32) -> String {
        HEALTH.to_string()
    }

    fn title(&self) -> String {
        format!("probe {} {:?}", self.probe, self.status)
    }

    fn samples() -> Vec<Event> {
        vec![sample::tool().at(
            10,
            ProbeStatus {
                probe: "vfio_map_dma".into(),
                attach: "kprobe:vfio_iommu_type1_ioctl".into(),
                status: ProbeState::MissingSymbol,
                required: false,
                reason: "module vfio_iommu_type1 not loaded; \"quoted\" ünïcode".into(),
                hits: 0,
            },
        )]
    }
}
