//! What the UI needs to know about an event without matching on every kind:
//! its kind name, the device it concerns, the address range it touches,
//! whether it failed, and its category for colouring.

use tracer_core::event::{Device, Event, EventKind};

/// Broad groups of kinds; each has its own colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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

pub fn kind_name(k: &EventKind) -> &'static str {
    match k {
        EventKind::VfioMapDma(_) => "vfio_map_dma",
        EventKind::VfioUnmapDma(_) => "vfio_unmap_dma",
        EventKind::VfioIommuInfo(_) => "vfio_iommu_info",
        EventKind::VfioSetIommu(_) => "vfio_set_iommu",
        EventKind::VfioPin(_) => "vfio_pin",
        EventKind::IommuMap(_) => "iommu_map",
        EventKind::IommuUnmap(_) => "iommu_unmap",
        EventKind::ViommuReq(_) => "viommu_req",
        EventKind::ResvRegion(_) => "resv_region",
        EventKind::VfioSetIrqs(_) => "vfio_set_irqs",
        EventKind::MsiVector(_) => "msi_vector",
        EventKind::MsiWrite(_) => "msi_write",
        EventKind::MsiMask(_) => "msi_mask",
        EventKind::MsiDoorbellMap(_) => "msi_doorbell_map",
        EventKind::MsiCookie(_) => "msi_cookie",
        EventKind::KvmMemslot(_) => "kvm_memslot",
        EventKind::IoasMap(_) => "ioas_map",
        EventKind::IoasUnmap(_) => "ioas_unmap",
        EventKind::ProbeStatus(_) => "probe_status",
        EventKind::Drops(_) => "drops",
    }
}

pub fn category(k: &EventKind) -> Category {
    match k {
        EventKind::VfioMapDma(_)
        | EventKind::VfioUnmapDma(_)
        | EventKind::VfioPin(_)
        | EventKind::IommuMap(_)
        | EventKind::IommuUnmap(_)
        | EventKind::IoasMap(_)
        | EventKind::IoasUnmap(_) => Category::HostMap,
        EventKind::ViommuReq(_) => Category::Guest,
        EventKind::KvmMemslot(_) => Category::Memslot,
        EventKind::VfioSetIrqs(_)
        | EventKind::MsiVector(_)
        | EventKind::MsiWrite(_)
        | EventKind::MsiMask(_)
        | EventKind::MsiDoorbellMap(_)
        | EventKind::MsiCookie(_) => Category::Msi,
        EventKind::VfioIommuInfo(_) | EventKind::VfioSetIommu(_) | EventKind::ResvRegion(_) => {
            Category::Setup
        }
        EventKind::ProbeStatus(_) | EventKind::Drops(_) => Category::Health,
    }
}

/// The device an event names, if any.
pub fn device(k: &EventKind) -> Option<Device> {
    match k {
        EventKind::ResvRegion(e) => Some(e.device),
        EventKind::VfioSetIrqs(e) => Some(e.device),
        EventKind::MsiVector(e) => Some(e.device),
        EventKind::MsiWrite(e) => Some(e.device),
        EventKind::MsiMask(e) => Some(e.device),
        EventKind::MsiDoorbellMap(e) => Some(e.device),
        _ => None,
    }
}

/// The address range `[start, last]` an event maps, unmaps or programs
/// (IOVA for mapping calls, the message address for MSI writes).
pub fn iova_range(k: &EventKind) -> Option<(u64, u64)> {
    let span = |s: u64, len: u64| Some((s, s.saturating_add(len.max(1) - 1)));
    match k {
        EventKind::VfioMapDma(e) => span(e.iova, e.size),
        EventKind::VfioUnmapDma(e) => span(e.iova, e.size),
        EventKind::IommuMap(e) => span(e.iova, e.size),
        EventKind::IommuUnmap(e) => span(e.iova, e.size),
        EventKind::IoasMap(e) => span(e.iova, e.length),
        EventKind::IoasUnmap(e) => span(e.iova, e.length),
        EventKind::ViommuReq(e) if e.virt_end >= e.virt_start && e.virt_end != 0 => {
            Some((e.virt_start, e.virt_end))
        }
        EventKind::MsiWrite(e) => Some((e.address, e.address)),
        EventKind::MsiDoorbellMap(e) => span(e.iova, 0x1000),
        EventKind::ResvRegion(e) => Some((e.start, e.end)),
        _ => None,
    }
}

/// Did the call fail (non-zero errno or virtio-iommu status)?
pub fn failed(k: &EventKind) -> bool {
    match k {
        EventKind::VfioMapDma(e) => e.errno != 0,
        EventKind::VfioUnmapDma(e) => e.errno != 0 || e.unmapped < e.size,
        EventKind::VfioIommuInfo(e) => e.errno != 0,
        EventKind::VfioSetIommu(e) => e.errno != 0,
        EventKind::IommuMap(e) => e.errno != 0,
        EventKind::IommuUnmap(e) => e.unmapped < e.size,
        EventKind::ViommuReq(e) => e.status != 0,
        EventKind::VfioSetIrqs(e) => e.errno != 0,
        EventKind::KvmMemslot(e) => e.errno != 0,
        EventKind::IoasMap(e) => e.errno != 0,
        EventKind::IoasUnmap(e) => e.errno != 0,
        EventKind::Drops(d) => d.total() != 0,
        _ => false,
    }
}

/// The kind and fields of an event's text line (what follows the
/// `time node comm[pid/tid]` prefix of the text exporter).
pub fn details(ev: &Event) -> String {
    let line = tracer_core::export::text::format_event(ev, &[]);
    let prefix = format!(
        "{}.{:09} {} {}[{}/{}] ",
        ev.ts_ns / 1_000_000_000,
        ev.ts_ns % 1_000_000_000,
        tracer_core::tracefile::node_name(&[], ev.node),
        ev.comm.as_str(),
        ev.pid,
        ev.tid
    );
    match line.strip_prefix(&prefix) {
        Some(rest) => rest.to_string(),
        None => line,
    }
}
