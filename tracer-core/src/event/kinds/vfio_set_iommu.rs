use std::fmt;

use serde::{Deserialize, Serialize};

use super::{handle, sample, write_errno, Category, Kind};
use crate::event::Event;
use crate::tracefile::codec::fields::{FieldReader, FieldWriter};
use crate::tracefile::varint::DecodeResult;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VfioSetIommu {
    pub container: u64,
    /// VFIO_TYPE1_IOMMU 1, VFIO_TYPE1v2_IOMMU 3, ...
    pub iommu_type: u64,
    pub errno: i32,
}

impl fmt::Display for VfioSetIommu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "container={} type={}",
            handle(self.container),
            self.iommu_type
        )?;
        write_errno(f, self.errno)
    }
}

impl Kind for VfioSetIommu {
    const CATEGORY: Category = Category::Setup;
    const SUBSYSTEM: &'static str = "vfio";

    field_codec!(VfioSetIommu {
        container: d(0),
        iommu_type: v,
        errno: z,
    });

    fn errno(&self) -> i32 {
        self.errno
    }

    fn track(&self, _pid: u32) -> String {
        format!("container {}", handle(self.container))
    }

    fn samples() -> Vec<Event> {
        vec![sample::qemu().at(
            1_000,
            VfioSetIommu {
                container: sample::container(),
                iommu_type: 3,
                errno: 0,
            },
        )]
    }

    #[cfg(any(test, feature = "encode"))]
    fn to_wire(&self, ev: &Event, out: &mut Vec<u8>) -> Option<()> {
        use crate::decode::encode::{ioctl, push_ioctl};
        use tracer_common::ioctl::VFIO_SET_IOMMU;
        // The argument is the IOMMU type itself.
        let r = ioctl(ev, self.container, VFIO_SET_IOMMU, self.iommu_type, self.errno, &[], &[])?;
        push_ioctl(&r, out);
        Some(())
    }
}
