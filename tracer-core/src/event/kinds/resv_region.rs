use std::fmt;

use serde::{Deserialize, Serialize};

use super::{sample, Category, Kind};
use crate::event::{Device, Event};
use crate::tracefile::codec::fields::{FieldReader, FieldWriter};
use crate::tracefile::varint::DecodeResult;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResvType {
    /// IOMMU_RESV_MSI: hardware doorbell, bypasses translation.
    Msi,
    /// IOMMU_RESV_SW_MSI: software doorbell window, must be mapped.
    SwMsi,
    Reserved,
    Direct,
    DirectRelaxable,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResvRegion {
    pub group: u32,
    pub device: Device,
    pub start: u64,
    /// Inclusive.
    pub end: u64,
    #[serde(rename = "type")]
    pub rtype: ResvType,
}

/// Trace-file ids of the types: their index.
const RESV_TYPES: [ResvType; 5] = [
    ResvType::Msi,
    ResvType::SwMsi,
    ResvType::Reserved,
    ResvType::Direct,
    ResvType::DirectRelaxable,
];

// Exhaustive, so that a new type fails to compile here.
fn type_id(v: ResvType) -> u8 {
    match v {
        ResvType::Msi => 0,
        ResvType::SwMsi => 1,
        ResvType::Reserved => 2,
        ResvType::Direct => 3,
        ResvType::DirectRelaxable => 4,
    }
}

impl fmt::Display for ResvRegion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "group={} device={} {:#x}-{:#x} type={:?}",
            self.group, self.device, self.start, self.end, self.rtype
        )
    }
}

impl Kind for ResvRegion {
    const CATEGORY: Category = Category::Setup;
    const SUBSYSTEM: &'static str = "iommu";

    fn encode(&self, w: &mut FieldWriter<'_>) {
        w.v(self.group);
        w.dev(self.device);
        w.v(self.start);
        w.v(self.end);
        w.b(type_id(self.rtype));
    }

    fn decode(r: &mut FieldReader<'_, '_>) -> DecodeResult<Self> {
        Ok(ResvRegion {
            group: r.v32()?,
            device: r.dev()?,
            start: r.v()?,
            end: r.v()?,
            rtype: r.pick(&RESV_TYPES, "reserved region type")?,
        })
    }

    fn device(&self) -> Option<Device> {
        Some(self.device)
    }

    fn iova_range(&self) -> Option<(u64, u64)> {
        Some((self.start, self.end))
    }

    fn track(&self, _pid: u32) -> String {
        format!("iommu group {}", self.group)
    }

    fn samples() -> Vec<Event> {
        vec![sample::tool().at(
            700,
            ResvRegion {
                group: 12,
                device: sample::dev(),
                start: 0x800_0000,
                end: 0x80f_ffff,
                rtype: ResvType::SwMsi,
            },
        )]
    }
}
