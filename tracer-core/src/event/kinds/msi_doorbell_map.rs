use std::fmt;

use serde::{Deserialize, Serialize};

use super::{sample, span, Category, Kind};
use crate::event::{Device, Event};
use crate::tracefile::codec::fields::{FieldReader, FieldWriter};
use crate::tracefile::varint::DecodeResult;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MsiDoorbellMap {
    pub device: Device,
    pub domain: u64,
    pub iova: u64,
    pub doorbell_paddr: u64,
}

impl fmt::Display for MsiDoorbellMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "device={} domain={:#x} iova={:#x} doorbell={:#x}",
            self.device, self.domain, self.iova, self.doorbell_paddr
        )
    }
}

impl Kind for MsiDoorbellMap {
    const CATEGORY: Category = Category::Msi;
    const SUBSYSTEM: &'static str = "msi";

    field_codec!(MsiDoorbellMap {
        device: dev,
        domain: v,
        iova: v,
        doorbell_paddr: v,
    });

    fn device(&self) -> Option<Device> {
        Some(self.device)
    }

    fn iova_range(&self) -> Option<(u64, u64)> {
        span(self.iova, 0x1000)
    }

    fn track(&self, _pid: u32) -> String {
        format!("device {}", self.device)
    }

    fn samples() -> Vec<Event> {
        vec![sample::qemu().at(
            4_300,
            MsiDoorbellMap {
                device: Device::Unknown,
                domain: sample::DOMAIN,
                iova: 0x800_0000,
                doorbell_paddr: 0x809_0000,
            },
        )]
    }
}
