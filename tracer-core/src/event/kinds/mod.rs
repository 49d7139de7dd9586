//! The event kinds: one table (below) and one module per kind.
//!
//! The table gives each kind its trace-file id (part of the file format:
//! append, never renumber) and its name (the JSON `kind` tag, the text
//! line's first word, the TUI's kind column, the Perfetto event name). The
//! kind's module gives everything else, by implementing [`Kind`] for its
//! payload struct. [`EventKind`] and its per-kind dispatch are generated from
//! the table, so views, exporters and the codec never match on every kind.
//! See docs/event-kinds.md and docs/adding-an-event-kind.md.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Device, Event};
use crate::tracefile::codec::fields::{FieldReader, FieldWriter};
use crate::tracefile::varint::DecodeResult;

pub(crate) mod sample;

/// Broad groups of kinds (the TUI gives each its own colour).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Category {
    /// Host IOVA → HVA / HPA mapping calls.
    HostMap,
    /// Guest virtio-iommu requests.
    Guest,
    /// KVM memslots (GPA → HVA).
    Memslot,
    /// Interrupts: SET_IRQS, vectors, MSI messages, doorbells.
    Msi,
    /// Container / IOMMU setup and reserved regions.
    Setup,
    /// The tool's own health events.
    Health,
}

/// Id and name of a kind, from the table.
pub(crate) trait KindId {
    /// Trace-file kind id (codec/mod.rs: the low 5 bits of the tag).
    const ID: u8;
    /// The JSON `kind` tag and the name in every output.
    const NAME: &'static str;
}

/// Everything one event kind contributes; implemented by each payload struct
/// in its own module. `Display` is the text line's fields (after the name).
pub(crate) trait Kind: KindId + fmt::Display + Sized {
    /// The UI group.
    const CATEGORY: Category;
    /// The subsystem, Perfetto's event category (`vfio`, `iommu`, ...).
    const SUBSYSTEM: &'static str;

    /// Trace-file fields (layout: see codec/kinds.rs's doc).
    fn encode(&self, w: &mut FieldWriter<'_>);
    fn decode(r: &mut FieldReader<'_, '_>) -> DecodeResult<Self>;

    /// The device the event names.
    fn device(&self) -> Option<Device> {
        None
    }
    /// The address range `[start, last]` the event maps, unmaps or programs.
    fn iova_range(&self) -> Option<(u64, u64)> {
        None
    }
    /// The call's errno (0: success, or the kind has none).
    fn errno(&self) -> i32 {
        0
    }
    /// Did the call fail?
    fn failed(&self) -> bool {
        self.errno() != 0
    }
    /// The Perfetto track (thread) of the event; `pid` is the event's.
    fn track(&self, pid: u32) -> String;
    /// The Perfetto event name (before an errno suffix).
    fn title(&self) -> String {
        Self::NAME.to_string()
    }
    /// Change of mapped bytes on the event's track (Perfetto counter).
    fn mapped_delta(&self) -> Option<i128> {
        None
    }
    /// Sample events of this kind (distinctive values, extremes) for tests,
    /// fixtures and the synthetic generator.
    fn samples() -> Vec<Event>;
    /// Appends the ring-buffer record a probe emits for the event (`None`:
    /// no probe emits this kind, or not with these values).
    #[cfg(any(test, feature = "encode"))]
    fn to_wire(&self, _ev: &Event, _out: &mut Vec<u8>) -> Option<()> {
        None
    }
}

/// The Perfetto track of the tool's health events.
const HEALTH: &str = "health";

/// `pid << 32 | fd` as `pid:fd`.
pub(crate) fn handle(h: u64) -> String {
    format!("{}:{}", h >> 32, h & 0xffff_ffff)
}

/// The track of an iommufd call: the iommufd file (`pid:fd`).
pub(crate) fn iommufd_track(iommufd: u64) -> String {
    format!("iommufd {}", handle(iommufd))
}

/// The track of a call on one iommufd object (`ioas`, `hwpt`, `viommu`):
/// the same name for every kind that touches that object.
pub(crate) fn iommufd_object_track(iommufd: u64, object: &str, id: u32) -> String {
    format!("{} {object} {id}", iommufd_track(iommufd))
}

/// ` errno=N` when `e` is not 0.
fn write_errno(f: &mut fmt::Formatter<'_>, e: i32) -> fmt::Result {
    if e != 0 {
        write!(f, " errno={e}")?;
    }
    Ok(())
}

/// ` name=[a b c]`: a list of `items`, each written by `each`, `sep` apart
/// (`name` empty: just the brackets).
fn write_list<T>(
    f: &mut fmt::Formatter<'_>,
    name: &str,
    items: &[T],
    mut each: impl FnMut(&mut fmt::Formatter<'_>, &T) -> fmt::Result,
    sep: &str,
) -> fmt::Result {
    if !name.is_empty() {
        write!(f, " {name}=")?;
    }
    f.write_str("[")?;
    for (i, x) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(sep)?;
        }
        each(f, x)?;
    }
    f.write_str("]")
}

/// A u16 field written with `FieldWriter::v`.
fn u16_field(r: &mut FieldReader<'_, '_>) -> DecodeResult<u16> {
    let v = r.v()?;
    match u16::try_from(v) {
        Ok(v) => Ok(v),
        Err(_) => r.err(format!("u16 field out of range: {v}")),
    }
}

/// `[s, s + len - 1]` (a zero length counts as one byte).
fn span(s: u64, len: u64) -> Option<(u64, u64)> {
    Some((s, s.saturating_add(len.max(1) - 1)))
}

/// `Kind::encode` and `Kind::decode` of a kind whose fields each have one
/// coding of [`FieldWriter`] / [`FieldReader`], from one list in field order
/// (so the two cannot disagree): `d(slot)` delta, `v` varint (`v32` for a
/// u32), `z` signed, `bool`, `s` string, `dev` device. Kinds with lists or
/// enums write the two by hand.
macro_rules! field_codec {
    ($T:ident { $($f:ident : $c:ident $(($slot:literal))?),* $(,)? }) => {
        fn encode(&self, w: &mut FieldWriter<'_>) {
            $( field_codec!(@put w, self.$f, $c $(, $slot)?); )*
        }

        fn decode(r: &mut FieldReader<'_, '_>) -> DecodeResult<Self> {
            Ok($T { $( $f: field_codec!(@get r, $c $(, $slot)?), )* })
        }
    };
    (@put $w:ident, $v:expr, d, $slot:literal) => { $w.d($slot, $v) };
    (@put $w:ident, $v:expr, v) => { $w.v($v) };
    (@put $w:ident, $v:expr, v32) => { $w.v($v) };
    (@put $w:ident, $v:expr, z) => { $w.z($v) };
    (@put $w:ident, $v:expr, bool) => { $w.bool($v) };
    (@put $w:ident, $v:expr, s) => { $w.s(&$v) };
    (@put $w:ident, $v:expr, dev) => { $w.dev($v) };
    (@get $r:ident, d, $slot:literal) => { $r.d($slot)? };
    (@get $r:ident, v) => { $r.v()? };
    (@get $r:ident, v32) => { $r.v32()? };
    (@get $r:ident, z) => { $r.z()? };
    (@get $r:ident, bool) => { $r.bool()? };
    (@get $r:ident, s) => { $r.s()? };
    (@get $r:ident, dev) => { $r.dev()? };
}

macro_rules! event_kinds {
    ($( $(#[$doc:meta])* $id:literal $name:literal since $since:literal => $module:ident :: $V:ident, )*) => {
        $(
            mod $module;
            pub use $module::*;

            impl KindId for $V {
                const ID: u8 = $id;
                const NAME: &'static str = $name;
            }

            impl From<$V> for EventKind {
                fn from(k: $V) -> Self {
                    EventKind::$V(k)
                }
            }
        )*

        /// What happened. The serde tag is the JSON `kind` field.
        #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(tag = "kind")]
        pub enum EventKind {
            $( $(#[$doc])* #[serde(rename = $name)] $V($V), )*
        }

        /// Number of kinds (ids are `0..KIND_COUNT`).
        pub(crate) const KIND_COUNT: usize = [$($id),*].len();

        /// The trace format version that has every kind: the newest kind's.
        pub(crate) const KINDS_FORMAT_VERSION: u16 = {
            let since: [u16; KIND_COUNT] = [$($since),*];
            let mut v = 0;
            let mut i = 0;
            while i < since.len() {
                if since[i] > v {
                    v = since[i];
                }
                i += 1;
            }
            v
        };

        impl EventKind {
            /// Trace-file kind id.
            pub fn id(&self) -> u8 {
                match self { $( EventKind::$V(_) => <$V as KindId>::ID, )* }
            }
            /// The kind's name: the JSON `kind` tag, the first word of its
            /// text line.
            pub fn name(&self) -> &'static str {
                match self { $( EventKind::$V(_) => <$V as KindId>::NAME, )* }
            }
            /// Every kind's name, in id order.
            pub fn names() -> &'static [&'static str] {
                &[$($name),*]
            }
            pub fn category(&self) -> Category {
                match self { $( EventKind::$V(_) => <$V as Kind>::CATEGORY, )* }
            }
            /// Perfetto's event category: the kind's subsystem.
            pub fn subsystem(&self) -> &'static str {
                match self { $( EventKind::$V(_) => <$V as Kind>::SUBSYSTEM, )* }
            }
            /// The device the event names, if any.
            pub fn device(&self) -> Option<Device> {
                match self { $( EventKind::$V(e) => e.device(), )* }
            }
            /// The address range `[start, last]` the event maps, unmaps or
            /// programs (IOVA for mapping calls, the message address for MSI
            /// writes).
            pub fn iova_range(&self) -> Option<(u64, u64)> {
                match self { $( EventKind::$V(e) => e.iova_range(), )* }
            }
            /// The call's errno; 0 on success and for kinds without one.
            pub fn errno(&self) -> i32 {
                match self { $( EventKind::$V(e) => e.errno(), )* }
            }
            /// Did the call fail (non-zero errno, virtio-iommu status, short
            /// unmap, drops)?
            pub fn failed(&self) -> bool {
                match self { $( EventKind::$V(e) => e.failed(), )* }
            }
            /// Perfetto track name; `pid` is the event's.
            pub fn track(&self, pid: u32) -> String {
                match self { $( EventKind::$V(e) => e.track(pid), )* }
            }
            /// Perfetto event name, with ` (errno N)` when the call failed.
            pub fn title(&self) -> String {
                let mut t = match self { $( EventKind::$V(e) => e.title(), )* };
                let errno = self.errno();
                if errno != 0 {
                    t.push_str(&format!(" (errno {errno})"));
                }
                t
            }
            /// Change of mapped bytes on the event's track.
            pub fn mapped_delta(&self) -> Option<i128> {
                match self { $( EventKind::$V(e) => e.mapped_delta(), )* }
            }
            /// Sample events of every kind, kind by kind in id order.
            pub fn samples() -> Vec<Vec<Event>> {
                vec![$( <$V as Kind>::samples(), )*]
            }
            pub(crate) fn encode_fields(&self, w: &mut FieldWriter<'_>) {
                match self { $( EventKind::$V(e) => e.encode(w), )* }
            }
            pub(crate) fn decode_fields(id: u8, r: &mut FieldReader<'_, '_>) -> DecodeResult<Self> {
                match id {
                    $( $id => <$V as Kind>::decode(r).map(EventKind::$V), )*
                    _ => r.err(format!("unknown event kind id {id}")),
                }
            }
            #[cfg(any(test, feature = "encode"))]
            pub(crate) fn to_wire(&self, ev: &Event, out: &mut Vec<u8>) -> Option<()> {
                match self { $( EventKind::$V(e) => e.to_wire(ev, out), )* }
            }
        }

        /// The text line of the kind: its name, then its fields.
        impl fmt::Display for EventKind {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self { $( EventKind::$V(e) => write!(f, "{} {e}", $name), )* }
            }
        }
    };
}

// The one list of kinds: `id "name" since <format version that added it> =>
// module::Payload`. Ids are the trace file's (never renumber, append new
// kinds with the next id, in the next format version: the version written,
// tracefile::FORMAT_VERSION, follows this table); the order of the enum's
// variants is this table's.
event_kinds! {
    /// VFIO_IOMMU_MAP_DMA (type1 container): IOVA → HVA.
    0 "vfio_map_dma" since 1 => vfio_map_dma::VfioMapDma,
    /// VFIO_IOMMU_UNMAP_DMA; `unmapped` is what the kernel wrote back.
    1 "vfio_unmap_dma" since 1 => vfio_unmap_dma::VfioUnmapDma,
    /// VFIO_IOMMU_GET_INFO: what the container's IOMMU accepts.
    2 "vfio_iommu_info" since 1 => vfio_iommu_info::VfioIommuInfo,
    /// VFIO_SET_IOMMU: the container got an IOMMU backend.
    3 "vfio_set_iommu" since 1 => vfio_set_iommu::VfioSetIommu,
    /// Pages pinned for a MAP_DMA: HVA → HPA.
    4 "vfio_pin" since 1 => vfio_pin::VfioPin,
    /// `iommu_map` in a domain: IOVA → HPA (what the device will use).
    5 "iommu_map" since 1 => iommu_map::IommuMap,
    6 "iommu_unmap" since 1 => iommu_unmap::IommuUnmap,
    /// A guest virtio-iommu request, decoded from the wire, with its status.
    7 "viommu_req" since 1 => viommu_req::ViommuReq,
    /// A reserved region of an IOMMU group (sysfs or computed by the kernel).
    8 "resv_region" since 1 => resv_region::ResvRegion,
    /// VFIO_DEVICE_SET_IRQS.
    9 "vfio_set_irqs" since 1 => vfio_set_irqs::VfioSetIrqs,
    /// One vector's trigger set up or torn down.
    10 "msi_vector" since 1 => msi_vector::MsiVector,
    /// An MSI message written to a device.
    11 "msi_write" since 1 => msi_write::MsiWrite,
    /// A software-MSI doorbell page mapped in a domain.
    12 "msi_doorbell_map" since 1 => msi_doorbell_map::MsiDoorbellMap,
    /// `iommu_get_msi_cookie`: a domain gets a software-MSI IOVA window.
    13 "msi_cookie" since 1 => msi_cookie::MsiCookie,
    /// KVM_SET_USER_MEMORY_REGION(2): GPA → HVA.
    14 "kvm_memslot" since 1 => kvm_memslot::KvmMemslot,
    /// iommufd IOMMU_IOAS_MAP.
    15 "ioas_map" since 1 => ioas_map::IoasMap,
    /// iommufd IOMMU_IOAS_UNMAP.
    16 "ioas_unmap" since 1 => ioas_unmap::IoasUnmap,
    /// Health: a probe's state.
    17 "probe_status" since 1 => probe_status::ProbeStatus,
    /// Health: cumulative drop counters.
    18 "drops" since 1 => drops::Drops,
    /// The kernel masked or unmasked one MSI/MSI-X vector of a device (its
    /// irq chip's mask/unmask callback ran).
    19 "msi_mask" since 2 => msi_mask::MsiMask,
    /// Health: a node's stream lost events on the way (an agent lost
    /// mid-stream, events it dropped): the data has a gap there.
    20 "stream_gap" since 3 => stream_gap::StreamGap,
    // The iommufd and VFIO-cdev uAPI (issue 15), format version 4.
    /// IOMMU_DESTROY: an iommufd object (IOAS, HWPT, vIOMMU, ...) destroyed.
    21 "iommufd_destroy" since 4 => iommufd_destroy::IommufdDestroy,
    /// IOMMU_IOAS_ALLOC: a new IO address space.
    22 "ioas_alloc" since 4 => ioas_alloc::IoasAlloc,
    /// IOMMU_IOAS_ALLOW_IOVAS: IOVA ranges the IOAS must keep allocatable.
    23 "ioas_allow_iovas" since 4 => ioas_allow_iovas::IoasAllowIovas,
    /// IOMMU_IOAS_COPY: a mapping of one IOAS established in another (same pinned pages).
    24 "ioas_copy" since 4 => ioas_copy::IoasCopy,
    /// IOMMU_IOAS_IOVA_RANGES: the IOVA ranges an IOAS allows.
    25 "ioas_iova_ranges" since 4 => ioas_iova_ranges::IoasIovaRanges,
    /// IOMMU_OPTION: an option of iommufd or of an IOAS set or read.
    26 "iommufd_option" since 4 => iommufd_option::IommufdOption,
    /// IOMMU_HWPT_ALLOC: a hardware page table (paging, nest parent, or nested with vendor data).
    27 "hwpt_alloc" since 4 => hwpt_alloc::HwptAlloc,
    /// IOMMU_GET_HW_INFO: what the IOMMU behind a bound device supports.
    28 "iommufd_hw_info" since 4 => iommufd_hw_info::IommufdHwInfo,
    /// IOMMU_HWPT_SET_DIRTY_TRACKING: dirty tracking of a HWPT turned on or off.
    29 "hwpt_set_dirty_tracking" since 4 => hwpt_set_dirty_tracking::HwptSetDirtyTracking,
    /// IOMMU_HWPT_GET_DIRTY_BITMAP: the dirty pages of an IOVA range of a HWPT.
    30 "hwpt_get_dirty_bitmap" since 4 => hwpt_get_dirty_bitmap::HwptGetDirtyBitmap,
    /// IOMMU_HWPT_INVALIDATE: cache invalidation requests for a nested HWPT or a vIOMMU.
    31 "hwpt_invalidate" since 4 => hwpt_invalidate::HwptInvalidate,
    /// IOMMU_FAULT_QUEUE_ALLOC: a queue (and fd) for I/O page faults.
    32 "fault_queue_alloc" since 4 => fault_queue_alloc::FaultQueueAlloc,
    /// IOMMU_IOAS_MAP_FILE: IOVA → a file (memfd) range.
    33 "ioas_map_file" since 4 => ioas_map_file::IoasMapFile,
    /// IOMMU_VIOMMU_ALLOC: a virtual IOMMU on a nesting parent HWPT.
    34 "viommu_alloc" since 4 => viommu_alloc::ViommuAlloc,
    /// IOMMU_VDEVICE_ALLOC: a device's virtual id (e.g. its guest stream id) on a vIOMMU.
    35 "vdevice_alloc" since 4 => vdevice_alloc::VdeviceAlloc,
    /// IOMMU_VEVENTQ_ALLOC: a vIOMMU event queue (events are then read from its fd).
    36 "veventq_alloc" since 4 => veventq_alloc::VeventqAlloc,
    /// VFIO_DEVICE_BIND_IOMMUFD: a VFIO device cdev bound to an iommufd; the kernel returns its dev_id.
    37 "vfio_bind_iommufd" since 4 => vfio_bind_iommufd::VfioBindIommufd,
    /// VFIO_DEVICE_ATTACH_IOMMUFD_PT: a bound device attached to an IOAS or HWPT (optionally a PASID).
    38 "vfio_attach_pt" since 4 => vfio_attach_pt::VfioAttachPt,
    /// VFIO_DEVICE_DETACH_IOMMUFD_PT: a device (or a PASID of it) detached from its IOAS/HWPT.
    39 "vfio_detach_pt" since 4 => vfio_detach_pt::VfioDetachPt,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_dense_and_names_unique() {
        let samples = EventKind::samples();
        assert_eq!(samples.len(), KIND_COUNT);
        for (id, evs) in samples.iter().enumerate() {
            assert!(!evs.is_empty(), "kind {id} has no sample");
            for e in evs {
                assert_eq!(usize::from(e.kind.id()), id, "{e:?}");
                let json = serde_json::to_value(&e.kind).unwrap();
                assert_eq!(json["kind"], e.kind.name());
                assert!(e.kind.to_string().starts_with(e.kind.name()));
            }
        }
        let mut names = EventKind::names().to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), KIND_COUNT);
    }
}
