//! One line per event, for `replay --print` and `live --no-tui`:
//!
//! ```text
//! 12.000002000 host CPU 0/KVM[4242/4243] vfio_map_dma container=4242:17 iova=0x10000000 ...
//! ```
//!
//! Time is the node's monotonic clock in seconds; addresses and sizes are
//! hex. Meant for people; scripts should use JSON Lines.

use std::fmt::Write as _;
use std::io::{self, Write};

use crate::event::*;
use crate::tracefile::node_name;

/// The text line of one event, without the newline.
pub fn format_event(ev: &Event, nodes: &[NodeInfo]) -> String {
    let mut s = String::with_capacity(128);
    let _ = write!(
        s,
        "{}.{:09} {} {}[{}/{}] ",
        ev.ts_ns / 1_000_000_000,
        ev.ts_ns % 1_000_000_000,
        node_name(nodes, ev.node),
        ev.comm.as_str(),
        ev.pid,
        ev.tid
    );
    let _ = write_kind(&mut s, &ev.kind);
    s
}

fn handle(h: u64) -> String {
    format!("{}:{}", h >> 32, h & 0xffff_ffff)
}

fn errno(s: &mut String, e: i32) -> std::fmt::Result {
    if e != 0 {
        write!(s, " errno={e}")?;
    }
    Ok(())
}

fn write_kind(s: &mut String, k: &EventKind) -> std::fmt::Result {
    match k {
        EventKind::VfioMapDma(e) => {
            write!(
                s,
                "vfio_map_dma container={} iova={:#x} vaddr={:#x} size={:#x} flags={:#x}",
                handle(e.container),
                e.iova,
                e.vaddr,
                e.size,
                e.flags
            )?;
            errno(s, e.errno)
        }
        EventKind::VfioUnmapDma(e) => {
            write!(
                s,
                "vfio_unmap_dma container={} iova={:#x} size={:#x} unmapped={:#x} flags={:#x}",
                handle(e.container),
                e.iova,
                e.size,
                e.unmapped,
                e.flags
            )?;
            errno(s, e.errno)
        }
        EventKind::VfioIommuInfo(e) => {
            write!(
                s,
                "vfio_iommu_info container={} flags={:#x} pgsizes={:#x} ranges=[",
                handle(e.container),
                e.flags,
                e.iova_pgsizes
            )?;
            for (i, r) in e.iova_ranges.iter().enumerate() {
                let sep = if i > 0 { " " } else { "" };
                write!(s, "{sep}{:#x}-{:#x}", r.start, r.end)?;
            }
            s.push(']');
            errno(s, e.errno)
        }
        EventKind::VfioSetIommu(e) => {
            write!(
                s,
                "vfio_set_iommu container={} type={}",
                handle(e.container),
                e.iommu_type
            )?;
            errno(s, e.errno)
        }
        EventKind::VfioPin(e) => write!(
            s,
            "vfio_pin vaddr={:#x} npages={} pfn={:#x}",
            e.vaddr, e.npages, e.pfn
        ),
        EventKind::IommuMap(e) => {
            write!(
                s,
                "iommu_map domain={:#x} iova={:#x} paddr={:#x} size={:#x} prot={:#x}",
                e.domain, e.iova, e.paddr, e.size, e.prot
            )?;
            errno(s, e.errno)
        }
        EventKind::IommuUnmap(e) => write!(
            s,
            "iommu_unmap domain={:#x} iova={:#x} size={:#x} unmapped={:#x}",
            e.domain, e.iova, e.size, e.unmapped
        ),
        EventKind::ViommuReq(e) => {
            write!(s, "viommu_req op={:?} domain={}", e.op, e.domain)?;
            match e.op {
                ViommuOp::Map | ViommuOp::Unmap => write!(
                    s,
                    " virt={:#x}-{:#x} phys={:#x} flags={:#x}",
                    e.virt_start, e.virt_end, e.phys_start, e.flags
                )?,
                _ => write!(s, " endpoint={} flags={:#x}", e.endpoint, e.flags)?,
            }
            for r in &e.resv {
                write!(s, " resv[{}]={:#x}-{:#x}", r.subtype, r.start, r.end)?;
            }
            write!(s, " status={}", e.status)
        }
        EventKind::ResvRegion(e) => write!(
            s,
            "resv_region group={} device={} {:#x}-{:#x} type={:?}",
            e.group, e.device, e.start, e.end, e.rtype
        ),
        EventKind::VfioSetIrqs(e) => {
            write!(
                s,
                "vfio_set_irqs device={} index={} start={} count={} flags={:#x} eventfds={:?}{}",
                e.device,
                e.index,
                e.start,
                e.count,
                e.flags,
                e.eventfds,
                if e.eventfds_truncated { "…" } else { "" }
            )?;
            errno(s, e.errno)
        }
        EventKind::MsiVector(e) => write!(
            s,
            "msi_vector device={} index={} vector={} eventfd={} {}",
            e.device,
            e.index,
            e.vector,
            e.eventfd,
            if e.enabled { "enabled" } else { "disabled" }
        ),
        EventKind::MsiWrite(e) => write!(
            s,
            "msi_write device={} vector={} address={:#x} data={:#x}",
            e.device, e.vector, e.address, e.data
        ),
        EventKind::MsiMask(e) => write!(
            s,
            "msi_mask device={} index={} vector={} {}{}{}",
            e.device,
            e.index,
            e.vector,
            if e.masked { "masked" } else { "unmasked" },
            match e.can_mask {
                Some(true) => "",
                Some(false) => " (no mask bit: no effect on the device)",
                None => " (can_mask unknown)",
            },
            if e.is_virtual { " virtual" } else { "" }
        ),
        EventKind::MsiDoorbellMap(e) => write!(
            s,
            "msi_doorbell_map device={} domain={:#x} iova={:#x} doorbell={:#x}",
            e.device, e.domain, e.iova, e.doorbell_paddr
        ),
        EventKind::MsiCookie(e) => {
            write!(s, "msi_cookie domain={:#x} base={:#x}", e.domain, e.base)
        }
        EventKind::KvmMemslot(e) => {
            write!(
                s,
                "kvm_memslot vm={} slot={:#x} gpa={:#x} size={:#x} hva={:#x} flags={:#x}",
                handle(e.vm),
                e.slot,
                e.gpa,
                e.size,
                e.hva,
                e.flags
            )?;
            errno(s, e.errno)
        }
        EventKind::IoasMap(e) => {
            write!(
                s,
                "ioas_map iommufd={} ioas={} user_va={:#x} length={:#x} iova={:#x} flags={:#x}",
                handle(e.iommufd),
                e.ioas,
                e.user_va,
                e.length,
                e.iova,
                e.flags
            )?;
            errno(s, e.errno)
        }
        EventKind::IoasUnmap(e) => {
            write!(
                s,
                "ioas_unmap iommufd={} ioas={} iova={:#x} length={:#x} unmapped={:#x}",
                handle(e.iommufd),
                e.ioas,
                e.iova,
                e.length,
                e.unmapped
            )?;
            errno(s, e.errno)
        }
        EventKind::ProbeStatus(e) => {
            write!(
                s,
                "probe_status {} at {} {:?}{} hits={}",
                e.probe,
                e.attach,
                e.status,
                if e.required { " required" } else { "" },
                e.hits
            )?;
            if !e.reason.is_empty() {
                write!(s, " reason={:?}", e.reason)?;
            }
            Ok(())
        }
        EventKind::Drops(e) => write!(
            s,
            "drops ring_full={} pending_full={} read_failed={} undecodable={}",
            e.ring_full, e.pending_full, e.read_failed, e.undecodable
        ),
    }
}

/// Prints events, one line each.
pub struct TextWriter<W: Write> {
    out: W,
}

impl<W: Write> TextWriter<W> {
    pub fn new(out: W) -> Self {
        TextWriter { out }
    }

    pub fn write_event(&mut self, ev: &Event, nodes: &[NodeInfo]) -> io::Result<()> {
        let mut line = format_event(ev, nodes);
        line.push('\n');
        self.out.write_all(line.as_bytes())
    }

    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}
