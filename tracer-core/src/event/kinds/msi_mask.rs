use std::fmt;

use serde::{Deserialize, Serialize};

use super::{sample, Category, Kind};
use crate::event::{Device, Event};
use crate::tracefile::codec::fields::{FieldReader, FieldWriter};
use crate::tracefile::varint::DecodeResult;

/// One vector masked or unmasked by the kernel (`pci_irq_mask_msi` and its
/// siblings, see the README's probe list).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MsiMask {
    pub device: Device,
    /// VFIO's index numbering: 1 MSI, 2 MSI-X; 0 when the probe could not
    /// tell.
    pub index: u32,
    /// MSI-X table entry, or the vector of a multi-vector MSI (the same
    /// numbering as `msi_vector.vector`).
    pub vector: u32,
    /// true: masked; false: unmasked.
    pub masked: bool,
    /// `msi_attrib.can_mask`: the device has a mask bit for this vector
    /// (false: MSI without per-vector masking, or a virtual MSI-X entry;
    /// the call then changes nothing on the device). None when the kernel's
    /// BTF did not say where the flag is.
    pub can_mask: Option<bool>,
    /// `msi_attrib.is_virtual`: an MSI-X entry beyond the device's table.
    pub is_virtual: bool,
}

impl fmt::Display for MsiMask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "device={} index={} vector={} {}{}{}",
            self.device,
            self.index,
            self.vector,
            if self.masked { "masked" } else { "unmasked" },
            match self.can_mask {
                Some(true) => "",
                Some(false) => " (no mask bit: no effect on the device)",
                None => " (can_mask unknown)",
            },
            if self.is_virtual { " virtual" } else { "" }
        )
    }
}

impl Kind for MsiMask {
    const CATEGORY: Category = Category::Msi;
    const SUBSYSTEM: &'static str = "msi";

    fn encode(&self, w: &mut FieldWriter<'_>) {
        w.dev(self.device);
        w.v(self.index);
        w.v(self.vector);
        w.bool(self.masked);
        w.b(match self.can_mask {
            Some(false) => 0,
            Some(true) => 1,
            None => 2,
        });
        w.bool(self.is_virtual);
    }

    fn decode(r: &mut FieldReader<'_, '_>) -> DecodeResult<Self> {
        Ok(MsiMask {
            device: r.dev()?,
            index: r.v32()?,
            vector: r.v32()?,
            masked: r.bool()?,
            can_mask: r.pick(&[Some(false), Some(true), None], "can_mask")?,
            is_virtual: r.bool()?,
        })
    }

    fn device(&self) -> Option<Device> {
        Some(self.device)
    }

    fn track(&self, _pid: u32) -> String {
        format!("device {}", self.device)
    }

    fn samples() -> Vec<Event> {
        let m = |ts, index, vector, masked, can_mask| {
            sample::qemu().at(
                ts,
                MsiMask {
                    device: sample::dev(),
                    index,
                    vector,
                    masked,
                    can_mask,
                    is_virtual: false,
                },
            )
        };
        vec![
            m(4_250, 2, 1, true, Some(true)),
            m(4_260, 1, 0, false, None),
        ]
    }

    /// The mask probe's record: the per-kind callback's probe id when the
    /// event's index says which kind, else `pci_msi_(un)mask_irq`'s.
    #[cfg(any(test, feature = "encode"))]
    fn to_wire(&self, ev: &Event, out: &mut Vec<u8>) -> Option<()> {
        use crate::decode::encode::{dev_name, header, push};
        use tracer_common::{kind, kprobe::MsiMaskRecord, probe::*};
        let m = self;
        let probe = match (m.index, m.masked) {
            (1, true) => PCI_IRQ_MASK_MSI,
            (1, false) => PCI_IRQ_UNMASK_MSI,
            (2, true) => PCI_IRQ_MASK_MSIX,
            (2, false) => PCI_IRQ_UNMASK_MSIX,
            // Index 0 (unknown) only comes from the generic callbacks without
            // the flags; other indexes no probe produces.
            (0, true) if m.can_mask.is_none() => PCI_MSI_MASK_IRQ,
            (0, false) if m.can_mask.is_none() => PCI_MSI_UNMASK_IRQ,
            _ => return None,
        };
        if m.is_virtual && m.can_mask.is_none() {
            return None;
        }
        let mut hdr = header(ev, kind::MSI_MASK);
        hdr.probe = probe;
        push(
            &MsiMaskRecord {
                hdr,
                dev: dev_name(m.device)?,
                vector: m.vector,
                masked: u8::from(m.masked),
                is_msix: u8::from(m.index == 2),
                can_mask: u8::from(m.can_mask == Some(true)),
                is_virtual: u8::from(m.is_virtual),
                attrs_known: u32::from(m.can_mask.is_some()),
            },
            out,
        );
        Some(())
    }
}
