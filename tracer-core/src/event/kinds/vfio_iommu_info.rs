use std::fmt;

use serde::{Deserialize, Serialize};

use super::{handle, sample, write_errno, Category, Kind};
use crate::event::Event;
use crate::tracefile::codec::fields::{FieldReader, FieldWriter};
use crate::tracefile::varint::DecodeResult;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VfioIommuInfo {
    pub container: u64,
    pub flags: u32,
    /// Bitmap of supported IOMMU page sizes.
    pub iova_pgsizes: u64,
    /// Valid IOVA ranges (inclusive ends) from VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE.
    pub iova_ranges: Vec<Range>,
    pub errno: i32,
}

/// An inclusive address range `[start, end]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Range {
    pub start: u64,
    pub end: u64,
}

impl fmt::Display for VfioIommuInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "container={} flags={:#x} pgsizes={:#x} ranges=[",
            handle(self.container),
            self.flags,
            self.iova_pgsizes
        )?;
        for (i, r) in self.iova_ranges.iter().enumerate() {
            let sep = if i > 0 { " " } else { "" };
            write!(f, "{sep}{:#x}-{:#x}", r.start, r.end)?;
        }
        f.write_str("]")?;
        write_errno(f, self.errno)
    }
}

impl Kind for VfioIommuInfo {
    const CATEGORY: Category = Category::Setup;
    const SUBSYSTEM: &'static str = "vfio";

    fn encode(&self, w: &mut FieldWriter<'_>) {
        w.d(0, self.container);
        w.v(self.flags);
        w.v(self.iova_pgsizes);
        w.list(&self.iova_ranges, |w, r| {
            w.v(r.start);
            w.v(r.end);
        });
        w.z(self.errno);
    }

    fn decode(r: &mut FieldReader<'_, '_>) -> DecodeResult<Self> {
        Ok(VfioIommuInfo {
            container: r.d(0)?,
            flags: r.v32()?,
            iova_pgsizes: r.v()?,
            iova_ranges: r.list(|r| {
                Ok(Range {
                    start: r.v()?,
                    end: r.v()?,
                })
            })?,
            errno: r.z()?,
        })
    }

    fn errno(&self) -> i32 {
        self.errno
    }

    fn track(&self, _pid: u32) -> String {
        format!("container {}", handle(self.container))
    }

    fn samples() -> Vec<Event> {
        vec![sample::qemu().at(
            1_500,
            VfioIommuInfo {
                container: sample::container(),
                flags: 3,
                iova_pgsizes: 0x4020_1000,
                iova_ranges: vec![
                    Range {
                        start: 0,
                        end: 0xfedf_ffff,
                    },
                    Range {
                        start: 0xfef0_0000,
                        end: 0x7f_ffff_ffff,
                    },
                ],
                errno: 0,
            },
        )]
    }
}
