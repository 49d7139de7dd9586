use std::fmt;

use serde::{Deserialize, Serialize};

use super::{sample, write_errno, Category, Kind};
use crate::event::{Device, Event};
use crate::tracefile::codec::fields::{FieldReader, FieldWriter};
use crate::tracefile::varint::DecodeResult;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VfioSetIrqs {
    pub device: Device,
    /// VFIO_PCI_{INTX 0, MSI 1, MSIX 2, ERR 3, REQ 4}_IRQ_INDEX.
    pub index: u32,
    pub start: u32,
    pub count: u32,
    /// VFIO_IRQ_SET_{DATA_NONE 1, DATA_BOOL 2, DATA_EVENTFD 4, ACTION_MASK 8,
    /// ACTION_UNMASK 0x10, ACTION_TRIGGER 0x20}.
    pub flags: u32,
    /// DATA_EVENTFD: one per vector, -1 de-assigns. May be shorter than
    /// `count` when the probe could not copy them all (`eventfds_truncated`).
    pub eventfds: Vec<i32>,
    #[serde(default)]
    pub eventfds_truncated: bool,
    pub errno: i32,
}

impl fmt::Display for VfioSetIrqs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "device={} index={} start={} count={} flags={:#x} eventfds={:?}{}",
            self.device,
            self.index,
            self.start,
            self.count,
            self.flags,
            self.eventfds,
            if self.eventfds_truncated { "…" } else { "" }
        )?;
        write_errno(f, self.errno)
    }
}

impl Kind for VfioSetIrqs {
    const CATEGORY: Category = Category::Msi;
    const SUBSYSTEM: &'static str = "msi";

    fn encode(&self, w: &mut FieldWriter<'_>) {
        w.dev(self.device);
        w.v(self.index);
        w.v(self.start);
        w.v(self.count);
        w.v(self.flags);
        w.list(&self.eventfds, |w, &fd| w.z(fd));
        w.bool(self.eventfds_truncated);
        w.z(self.errno);
    }

    fn decode(r: &mut FieldReader<'_, '_>) -> DecodeResult<Self> {
        Ok(VfioSetIrqs {
            device: r.dev()?,
            index: r.v32()?,
            start: r.v32()?,
            count: r.v32()?,
            flags: r.v32()?,
            eventfds: r.list(|r| r.z())?,
            eventfds_truncated: r.bool()?,
            errno: r.z()?,
        })
    }

    fn device(&self) -> Option<Device> {
        Some(self.device)
    }

    fn errno(&self) -> i32 {
        self.errno
    }

    fn track(&self, _pid: u32) -> String {
        format!("device {}", self.device)
    }

    fn samples() -> Vec<Event> {
        vec![sample::qemu().at(
            4_000,
            VfioSetIrqs {
                device: Device::Fd(23),
                index: 2,
                start: 0,
                count: 3,
                flags: 0x24,
                eventfds: vec![30, -1],
                eventfds_truncated: true,
                errno: 0,
            },
        )]
    }
}
