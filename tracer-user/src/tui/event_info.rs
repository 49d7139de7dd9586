//! What the UI needs to know about an event without matching on every kind:
//! its kind name, the device it concerns, the address range it touches,
//! whether it failed, and its category for colouring. Each kind declares
//! these in its module (tracer-core's event/kinds/); this is the UI's door.

use tracer_core::event::{Device, Event, EventKind};

/// Broad groups of kinds; each has its own colour.
pub use tracer_core::event::Category;

pub fn kind_name(k: &EventKind) -> &'static str {
    k.name()
}

pub fn category(k: &EventKind) -> Category {
    k.category()
}

/// The device an event names, if any.
pub fn device(k: &EventKind) -> Option<Device> {
    k.device()
}

/// The address range `[start, last]` an event maps, unmaps or programs
/// (IOVA for mapping calls, the message address for MSI writes).
pub fn iova_range(k: &EventKind) -> Option<(u64, u64)> {
    k.iova_range()
}

/// Did the call fail (non-zero errno or virtio-iommu status)?
pub fn failed(k: &EventKind) -> bool {
    k.failed()
}

/// The kind and fields of an event's text line (what follows the
/// `time node comm[pid/tid]` prefix of the text exporter).
pub fn details(ev: &Event) -> String {
    ev.kind.to_string()
}
