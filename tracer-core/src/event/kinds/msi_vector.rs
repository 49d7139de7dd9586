use std::fmt;

use serde::{Deserialize, Serialize};

use super::{sample, Category, Kind};
use crate::event::{Device, Event};
use crate::tracefile::codec::fields::{FieldReader, FieldWriter};
use crate::tracefile::varint::DecodeResult;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MsiVector {
    pub device: Device,
    pub index: u32,
    pub vector: u32,
    /// The eventfd bound, -1 when unbound.
    pub eventfd: i32,
    pub enabled: bool,
}

impl fmt::Display for MsiVector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "device={} index={} vector={} eventfd={} {}",
            self.device,
            self.index,
            self.vector,
            self.eventfd,
            if self.enabled { "enabled" } else { "disabled" }
        )
    }
}

impl Kind for MsiVector {
    const CATEGORY: Category = Category::Msi;
    const SUBSYSTEM: &'static str = "msi";

    field_codec!(MsiVector {
        device: dev,
        index: v32,
        vector: v32,
        eventfd: z,
        enabled: bool,
    });

    fn device(&self) -> Option<Device> {
        Some(self.device)
    }

    fn track(&self, _pid: u32) -> String {
        format!("device {}", self.device)
    }

    fn samples() -> Vec<Event> {
        vec![sample::qemu().at(
            4_100,
            MsiVector {
                device: sample::dev(),
                index: 2,
                vector: 0,
                eventfd: -1,
                enabled: false,
            },
        )]
    }
}
