use std::fmt;

use serde::{Deserialize, Serialize};

use super::{sample, Category, Kind};
use crate::event::{Device, Event};
use crate::tracefile::codec::fields::{FieldReader, FieldWriter};
use crate::tracefile::varint::DecodeResult;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MsiWrite {
    pub device: Device,
    pub vector: u32,
    /// address_hi << 32 | address_lo.
    pub address: u64,
    pub data: u32,
}

impl fmt::Display for MsiWrite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "device={} vector={} address={:#x} data={:#x}",
            self.device, self.vector, self.address, self.data
        )
    }
}

impl Kind for MsiWrite {
    const CATEGORY: Category = Category::Msi;
    const SUBSYSTEM: &'static str = "msi";

    field_codec!(MsiWrite {
        device: dev,
        vector: v32,
        address: v,
        data: v32,
    });

    fn device(&self) -> Option<Device> {
        Some(self.device)
    }

    fn iova_range(&self) -> Option<(u64, u64)> {
        Some((self.address, self.address))
    }

    fn track(&self, _pid: u32) -> String {
        format!("device {}", self.device)
    }

    fn samples() -> Vec<Event> {
        vec![sample::qemu().at(
            4_200,
            MsiWrite {
                device: sample::dev(),
                vector: 1,
                address: 0x800_0040,
                data: 0x4021,
            },
        )]
    }
}
