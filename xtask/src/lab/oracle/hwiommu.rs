//! The oracle for hardware IOMMUs QEMU emulates (VT-d, AMD-Vi, SMMUv3):
//! unlike virtio-iommu, the guest never tells QEMU what it maps. What QEMU
//! sees and logs is the guest's IOTLB invalidations and the device's
//! translations:
//!
//! - VT-d with caching-mode: every `iommu_map` call is followed by a
//!   page-selective invalidation (`vtd_inv_desc_iotlb_pages domain D addr
//!   A mask M`, the kernel's power-of-two aligned cover of the mapped
//!   range), every unmap too; so each MAP_DMA and UNMAP_DMA is checked as a
//!   run of in-order invalidations of one domain covering it exactly (no
//!   invalidation of that run strays outside the op's aligned cover).
//! - SMMUv3: a map needs no invalidation (nothing cached for invalid
//!   entries), an unmap is `smmuv3_range_inval asid=.. addr=.. num_pages=..`:
//!   UNMAP_DMAs are checked this way, MAP_DMAs only through the DMA.
//! - AMD-Vi: `amdvi_pages_inval` carries only the domain id, so no op can
//!   be checked by address; the DMA translations can.
//!
//! Every device DMA the exerciser verified must have been translated by the
//! IOMMU (`vtd_dmar_translate`, `smmuv3_translate_success`,
//! `amdvi_translation_result`) for edu, page for page.

use std::collections::BTreeSet;

use super::{Check, ExOp, Kind, Report, TraceEvent};

/// One IOTLB invalidation QEMU logged: `domain` (VT-d domain id, SMMUv3
/// ASID) and the IOVA range it covers.
#[derive(Debug, Clone, PartialEq)]
pub struct Inval {
    pub line: usize,
    pub domain: u64,
    pub start: u64,
    pub end: u64,
}

/// One translation of a device access QEMU logged.
#[derive(Debug, Clone, PartialEq)]
pub struct Xlate {
    pub line: usize,
    /// Requester: `bb:dd.f` (VT-d, AMD-Vi) or the SMMU stream id in hex.
    pub dev: String,
    pub iova: u64,
    pub phys: u64,
}

fn hex(s: &str) -> Option<u64> {
    let s = s.trim_end_matches(',');
    u64::from_str_radix(s.strip_prefix("0x").unwrap_or(s), 16).ok()
}

/// The word after `key` in a message that is not `k=v`.
fn after<'a>(e: &'a TraceEvent, key: &str) -> Option<&'a str> {
    let i = e.args.iter().position(|a| a == key)?;
    e.args.get(i + 1).map(String::as_str)
}

/// `vtd_inv_desc_iotlb_pages iotlb invalidate domain 0x3 addr 0x100000
/// mask 0x4`: 2^mask pages from addr.
pub fn vtd_invals(ev: &[TraceEvent]) -> Vec<Inval> {
    ev.iter()
        .filter(|e| e.name == "vtd_inv_desc_iotlb_pages")
        .filter_map(|e| {
            let domain = hex(after(e, "domain")?)?;
            let start = hex(after(e, "addr")?)?;
            let mask = hex(after(e, "mask")?)?;
            let len = 0x1000u64.checked_shl(u32::try_from(mask).ok()?)?;
            Some(Inval {
                line: e.line,
                domain,
                start,
                end: start.checked_add(len - 1)?,
            })
        })
        .collect()
}

/// `smmuv3_range_inval vmid=-1 asid=1 addr=0x100000 tg=1 num_pages=0x10
/// ttl=3 leaf=1 stage=1` (tg 1: 4 KiB granule; 2: 16 KiB; 3: 64 KiB).
pub fn smmuv3_invals(ev: &[TraceEvent]) -> Vec<Inval> {
    ev.iter()
        .filter(|e| e.name == "smmuv3_range_inval")
        .filter_map(|e| {
            let asid = e.fields.get("asid")?.trim_end_matches(',').parse().ok()?;
            let start = e.u64("addr")?;
            let pages = e.u64("num_pages")?;
            let gran: u64 = match e.u64("tg")? {
                2 => 0x4000,
                3 => 0x10000,
                _ => 0x1000,
            };
            Some(Inval {
                line: e.line,
                domain: asid,
                start,
                end: start.checked_add(pages.max(1).checked_mul(gran)? - 1)?,
            })
        })
        .collect()
}

/// `vtd_dmar_translate dev 00:01.00 iova 0x100000 -> gpa 0x97c9000 mask
/// 0xfff` (dev is bus:slot.func in hex, func printed with two digits).
pub fn vtd_xlates(ev: &[TraceEvent]) -> Vec<Xlate> {
    ev.iter()
        .filter(|e| e.name == "vtd_dmar_translate")
        .filter_map(|e| {
            Some(Xlate {
                line: e.line,
                dev: norm_bdf(after(e, "dev")?)?,
                iova: hex(after(e, "iova")?)?,
                phys: hex(after(e, "gpa")?)?,
            })
        })
        .collect()
}

/// `amdvi_translation_result devid: 00:02.0 gpa 0x200100 hpa 0x22ac000`
/// (hpa is the page: the offset is not added).
pub fn amdvi_xlates(ev: &[TraceEvent]) -> Vec<Xlate> {
    ev.iter()
        .filter(|e| e.name == "amdvi_translation_result")
        .filter_map(|e| {
            Some(Xlate {
                line: e.line,
                dev: norm_bdf(after(e, "devid:")?)?,
                iova: hex(after(e, "gpa")?)?,
                phys: hex(after(e, "hpa")?)?,
            })
        })
        .collect()
}

/// `smmuv3_translate_success smmuv3-iommu-memory-region-8-0 sid=0x8
/// iova=0x100000 translated=0x4497c9000 perm=0x3 stage=1`.
pub fn smmuv3_xlates(ev: &[TraceEvent]) -> Vec<Xlate> {
    ev.iter()
        .filter(|e| e.name == "smmuv3_translate_success")
        .filter_map(|e| {
            Some(Xlate {
                line: e.line,
                dev: format!("{:x}", e.u64("sid")?),
                iova: e.u64("iova")?,
                phys: e.u64("translated")?,
            })
        })
        .collect()
}

/// `00:01.00` / `0000:00:01.0` → `00:01.0` (bus:dev.fn, hex, no domain).
pub fn norm_bdf(s: &str) -> Option<String> {
    let s = s.trim_end_matches(',');
    let tail = match s.matches(':').count() {
        2 => s.split_once(':')?.1,
        1 => s,
        _ => return None,
    };
    let (bus, devfn) = tail.split_once(':')?;
    let (dev, func) = devfn.split_once('.')?;
    let n = |x: &str| u64::from_str_radix(x, 16).ok();
    Some(format!("{:02x}:{:02x}.{:x}", n(bus)?, n(dev)?, n(func)?))
}

/// The SMMU stream id of a PCI function behind the root complex (its
/// requester id), as QEMU prints it (`sid=0x8` → "8").
pub fn stream_id(bdf: &str) -> Option<String> {
    super::endpoint_of(bdf).map(|e| format!("{e:x}"))
}

/// The kernel's power-of-two aligned cover of `[iova, iova+size)`
/// (intel-iommu `calculate_psi_aligned_address`): (address, mask).
pub fn psi_cover(iova: u64, size: u64) -> (u64, u32) {
    let pfn = iova >> 12;
    let end_pfn = (iova + size.max(1) - 1) >> 12;
    let pages = end_pfn - pfn + 1;
    let aligned = pages.next_power_of_two();
    let bitmask = aligned - 1;
    let mut mask = aligned.trailing_zeros();
    if bitmask & pfn != 0 {
        let shared = !(pfn ^ end_pfn) & !bitmask;
        mask = if shared != 0 {
            shared.trailing_zeros()
        } else {
            64 - 12
        };
    }
    let align = 0x1000u64.checked_shl(mask).unwrap_or(0);
    let addr = if align == 0 { 0 } else { iova & !(align - 1) };
    (addr, mask)
}

/// Which ops an oracle can check through invalidations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Covered {
    /// Maps and unmaps (VT-d with caching-mode).
    Both,
    /// Unmaps only (SMMUv3: a map is not invalidated).
    Unmaps,
}

/// The in-order run of invalidations of `domain` from `pos` that covers
/// `[lo, hi]`: each intersects the op and lies within its aligned cover.
fn cover_run(invs: &[Inval], pos: usize, domain: u64, lo: u64, hi: u64) -> Option<Vec<usize>> {
    let (a, m) = psi_cover(lo, hi - lo + 1);
    let span_end = a.saturating_add(0x1000u64.checked_shl(m).map_or(u64::MAX, |x| x - 1));
    let mut got: Vec<usize> = Vec::new();
    for (i, r) in invs.iter().enumerate().skip(pos) {
        if r.domain != domain || r.start > hi || r.end < lo {
            continue;
        }
        if r.start < a || r.end > span_end {
            continue;
        }
        got.push(i);
        if union_covers(invs, &got, lo, hi) {
            return Some(got);
        }
    }
    None
}

fn union_covers(invs: &[Inval], idx: &[usize], lo: u64, hi: u64) -> bool {
    let mut r: Vec<(u64, u64)> = idx.iter().map(|&i| (invs[i].start, invs[i].end)).collect();
    r.sort();
    let mut next = lo;
    for (s, e) in r {
        if s > next {
            return false;
        }
        if e >= next {
            next = match e.checked_add(1) {
                Some(n) => n,
                None => return true,
            };
        }
        if next > hi {
            return true;
        }
    }
    next > hi
}

/// Compares the exerciser's successful MAP/UNMAP_DMAs with QEMU's
/// invalidations: the domain is the one whose invalidations explain the
/// most ops in order.
pub fn compare_invals(ops: &[ExOp], invs: &[Inval], covered: Covered) -> Report {
    let mut rep = Report {
        domain: None,
        first_line: None,
        checks: Vec::new(),
        matched_maps: 0,
        matched_unmaps: 0,
        doorbell_maps: Vec::new(),
    };
    let good: Vec<&ExOp> = ops
        .iter()
        .filter(|o| o.ok && o.size > 0)
        .filter(|o| covered == Covered::Both || o.kind == Kind::Unmap)
        .collect();
    rep.checks.push(Check {
        name: "trace has invalidations",
        ok: !invs.is_empty(),
        detail: format!("{} page-range invalidations in the trace", invs.len()),
    });
    rep.checks.push(Check {
        name: "exerciser ops to check",
        ok: !good.is_empty(),
        detail: format!(
            "{} successful {} in the journal",
            good.len(),
            match covered {
                Covered::Both => "MAP_DMA/UNMAP_DMA",
                Covered::Unmaps => "UNMAP_DMA (maps are not invalidated on this IOMMU)",
            }
        ),
    });
    if good.is_empty() || invs.is_empty() {
        return rep;
    }
    let domains: BTreeSet<u64> = invs.iter().map(|r| r.domain).collect();
    let run = |d: u64| {
        let mut pos = 0;
        let mut out = Vec::new();
        for op in &good {
            let m = cover_run(invs, pos, d, op.iova, op.iova + op.size - 1);
            if let Some(idx) = &m {
                pos = idx.iter().max().copied().unwrap_or(pos) + 1;
            }
            out.push(m);
        }
        out
    };
    let (domain, matches) = domains
        .iter()
        .map(|&d| (d, run(d)))
        .max_by_key(|(d, m)| (m.iter().filter(|x| x.is_some()).count(), u64::MAX - d))
        .expect("non-empty");
    rep.domain = Some(domain);
    let mut missing = Vec::new();
    for (op, m) in good.iter().zip(&matches) {
        match m {
            Some(idx) => {
                match op.kind {
                    Kind::Map => rep.matched_maps += 1,
                    Kind::Unmap => rep.matched_unmaps += 1,
                }
                for &i in idx {
                    rep.first_line =
                        Some(rep.first_line.map_or(invs[i].line, |f| f.min(invs[i].line)));
                }
            }
            None => missing.push(format!(
                "{} {:?} iova={:#x} size={:#x} (seq {})",
                op.step, op.kind, op.iova, op.size, op.seq
            )),
        }
    }
    rep.checks.push(Check {
        name: "every checked MAP_DMA/UNMAP_DMA invalidated in the IOMMU",
        ok: missing.is_empty(),
        detail: if missing.is_empty() {
            format!(
                "{} maps and {} unmaps covered in order by domain {domain:#x}'s invalidations",
                rep.matched_maps, rep.matched_unmaps
            )
        } else {
            format!(
                "not covered (in order, domain {domain:#x}): {}",
                missing.join("; ")
            )
        },
    });
    let last_ok = matches.last().is_some_and(Option::is_some);
    rep.checks.push(Check {
        name: "trace complete",
        ok: last_ok,
        detail: if last_ok {
            "the exerciser's last checked op is in the trace".into()
        } else {
            "the exerciser's last checked op is missing: trace truncated?".into()
        },
    });
    // Refused MAP_DMAs must leave no invalidation (nothing was mapped).
    let leaks: Vec<String> = ops
        .iter()
        .filter(|o| !o.ok && o.kind == Kind::Map && o.size > 0)
        .flat_map(|o| {
            invs.iter()
                .filter(move |r| {
                    r.domain == domain
                        && r.start <= o.iova
                        && r.end >= o.iova + o.size - 1
                        && r.end - r.start < 0x1000
                })
                .map(move |r| {
                    format!(
                        "{} ({}) but line {} invalidates it",
                        o.step, o.errno, r.line
                    )
                })
        })
        .collect();
    rep.checks.push(Check {
        name: "refused MAP_DMAs left no mapping",
        ok: leaks.is_empty(),
        detail: if leaks.is_empty() {
            "ok".into()
        } else {
            leaks.join("; ")
        },
    });
    rep
}

/// Each verified DMA IOVA was translated by the IOMMU for `dev` while
/// mapped: the latest translation of that page before the exerciser's
/// first unmap covering it. Translations are also checked for agreement
/// (one page, one physical address).
pub fn check_xlates(xl: &[Xlate], dev: Option<&str>, iovas: &[u64]) -> Check {
    let name = "device DMA translated by the IOMMU";
    let Some(dev) = dev else {
        return Check {
            name,
            ok: false,
            detail: "the journal names no edu device".into(),
        };
    };
    if iovas.is_empty() {
        return Check {
            name,
            ok: false,
            detail: "the journal has no verified DMA".into(),
        };
    }
    let mine: Vec<&Xlate> = xl.iter().filter(|x| x.dev == dev).collect();
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for &a in iovas {
        let page = a & !0xfff;
        let hits: Vec<&&Xlate> = mine.iter().filter(|x| x.iova & !0xfff == page).collect();
        let phys: BTreeSet<u64> = hits.iter().map(|x| x.phys & !0xfff).collect();
        match (hits.last(), phys.len()) {
            (None, _) => bad.push(format!("{a:#x}: no translation for {dev} in the trace")),
            (Some(x), 1) => good.push(format!("{a:#x}->{:#x}", (x.phys & !0xfff) | (a & 0xfff))),
            (Some(_), _) => bad.push(format!("{a:#x}: translated to different pages {phys:x?}")),
        }
    }
    Check {
        name,
        ok: bad.is_empty(),
        detail: if bad.is_empty() {
            format!("{dev}: {}", good.join(", "))
        } else {
            bad.join("; ")
        },
    }
}

/// Hardware MSI doorbell (VT-d/AMD-Vi): nothing of the exerciser's domain
/// is invalidated in the MSI window (it is never mapped) and no device
/// access there went through DMA translation.
pub fn check_msi_bypass(rep: &Report, invs: &[Inval], xl: &[Xlate], (lo, hi): (u64, u64)) -> Check {
    let name = "MSI window never mapped nor translated";
    let inv: Vec<String> = invs
        .iter()
        .filter(|r| {
            Some(r.domain) == rep.domain
                && r.start <= hi
                && r.end >= lo
                && r.end - r.start < hi - lo
        })
        .map(|r| format!("line {}: invalidation {:#x}-{:#x}", r.line, r.start, r.end))
        .collect();
    let tr: Vec<String> = xl
        .iter()
        .filter(|x| x.iova >= lo && x.iova <= hi)
        .map(|x| format!("line {}: {} translated {:#x}", x.line, x.dev, x.iova))
        .collect();
    let bad: Vec<String> = inv.into_iter().chain(tr).collect();
    Check {
        name,
        ok: bad.is_empty(),
        detail: if bad.is_empty() {
            format!("{lo:#x}-{hi:#x}: no map invalidation, no translation (the doorbell bypasses DMA translation)")
        } else {
            bad.join("; ")
        },
    }
}

/// Interrupt remapping (VT-d) is active: interrupts reach QEMU's remapping
/// unit (`vtd_ir_remap_msi_req`). The event names no source, so this says
/// IR was on during the run, not which message was edu's.
pub fn check_ir(ev: &[TraceEvent]) -> Check {
    let n = ev
        .iter()
        .filter(|e| e.name == "vtd_ir_remap_msi_req")
        .count();
    Check {
        name: "interrupt remapping active",
        ok: n > 0,
        detail: format!("{n} interrupt requests remapped (vtd_ir_remap_msi_req, all sources)"),
    }
}

/// Software MSI (SMMUv3): the device's MSI writes into the SW-MSI window
/// were translated by the SMMU (the doorbell is mapped), all to one
/// physical doorbell page.
pub fn check_sw_msi(xl: &[Xlate], dev: Option<&str>, (lo, hi): (u64, u64)) -> Check {
    let name = "MSI writes translated through the SW-MSI doorbell map";
    let hits: Vec<&Xlate> = xl
        .iter()
        .filter(|x| dev.is_none_or(|d| x.dev == d) && x.iova >= lo && x.iova <= hi)
        .collect();
    let pages: BTreeSet<(u64, u64)> = hits.iter().map(|x| (x.iova, x.phys)).collect();
    Check {
        name,
        ok: !hits.is_empty(),
        detail: if hits.is_empty() {
            format!(
                "no MSI write of {} translated in {lo:#x}-{hi:#x}",
                dev.unwrap_or("edu")
            )
        } else {
            pages
                .iter()
                .map(|(a, p)| format!("{a:#x}->{p:#x}"))
                .collect::<Vec<_>>()
                .join(", ")
                + &format!(" ({} writes)", hits.len())
        },
    }
}

/// An `iommu_map` / `iommu_unmap` vfio-trace recorded: (kind, IOVA, size).
pub type Recorded = (Kind, u64, u64);

/// vfio-trace's recorded `iommu_map`/`iommu_unmap` calls of the exerciser's
/// domain against QEMU's invalidations of `rep.domain`, in order: each map
/// (with `maps`: VT-d caching mode) is exactly one invalidation of the
/// kernel's aligned cover of its range; each unmap is covered by the
/// invalidations that follow (the kernel may flush several unmaps at once).
pub fn check_recorded(rep: &Report, rec: &[Recorded], invs: &[Inval], maps: bool) -> Check {
    let name = "every iommu_map/unmap vfio-trace recorded is in QEMU's invalidations";
    let Some(d) = rep.domain else {
        return Check {
            name,
            ok: false,
            detail: "no exerciser domain found".into(),
        };
    };
    if rec.is_empty() {
        return Check {
            name,
            ok: false,
            detail: "the recording has no iommu_map/unmap in the exerciser's domain".into(),
        };
    }
    let mine: Vec<&Inval> = invs.iter().filter(|r| r.domain == d).collect();
    let mut pos = 0;
    let mut bad = Vec::new();
    let (mut nmap, mut nunmap) = (0, 0);
    for &(kind, iova, size) in rec {
        let (lo, hi) = (iova, iova + size.max(1) - 1);
        match kind {
            Kind::Map if maps => {
                let (a, m) = psi_cover(iova, size);
                let end = a + (0x1000u64 << m) - 1;
                match (pos..mine.len()).find(|&i| mine[i].start == a && mine[i].end == end) {
                    Some(i) => {
                        pos = i + 1;
                        nmap += 1;
                    }
                    None => bad.push(format!(
                        "iommu_map {lo:#x}-{hi:#x}: no invalidation {a:#x} mask {m} after line {}",
                        mine.get(pos.saturating_sub(1)).map_or(0, |r| r.line)
                    )),
                }
            }
            Kind::Map => {}
            Kind::Unmap => {
                let run: Vec<(u64, u64)> = mine[pos..]
                    .iter()
                    .filter(|r| r.start <= hi && r.end >= lo)
                    .map(|r| (r.start, r.end))
                    .collect();
                let mut next = lo;
                for (s, e) in {
                    let mut r = run;
                    r.sort();
                    r
                } {
                    if s <= next && e >= next {
                        next = e.saturating_add(1);
                    }
                }
                if next > hi {
                    nunmap += 1;
                } else {
                    bad.push(format!(
                        "iommu_unmap {lo:#x}-{hi:#x}: not invalidated after line {}",
                        mine.get(pos.saturating_sub(1)).map_or(0, |r| r.line)
                    ));
                }
            }
        }
    }
    Check {
        name,
        ok: bad.is_empty(),
        detail: if bad.is_empty() {
            format!(
                "{nmap} iommu_map{} and {nunmap} iommu_unmap of domain {d:#x} matched",
                if maps {
                    ""
                } else {
                    " (not invalidated here: unchecked)"
                }
            )
        } else {
            bad.join("; ")
        },
    }
}

/// A mapping vfio-trace recorded: (IOVA, size, physical address).
pub type RecordedMap = (u64, u64, u64);

/// The IOMMU's translations of edu's DMA agree with vfio-trace's recorded
/// `iommu_map`: the physical page QEMU translated each DMA IOVA to is the
/// one the latest recorded map covering it gave (translations and maps are
/// from different clocks, so "latest" is the last recorded map).
pub fn check_xlates_vs_recorded(
    xl: &[Xlate],
    dev: Option<&str>,
    iovas: &[u64],
    rec: &[RecordedMap],
) -> Check {
    let name = "device DMA translated to the pages vfio-trace saw mapped";
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for &a in iovas {
        let page = a & !0xfff;
        let Some(x) = xl
            .iter()
            .rfind(|x| dev.is_none_or(|d| x.dev == d) && x.iova & !0xfff == page)
        else {
            bad.push(format!("{a:#x}: no translation"));
            continue;
        };
        let Some(&(mi, _, mp)) = rec.iter().rfind(|(i, s, _)| *i <= a && a < i + s) else {
            bad.push(format!("{a:#x}: no recorded iommu_map covers it"));
            continue;
        };
        let want = (mp + (a - mi)) & !0xfff;
        if x.phys & !0xfff == want {
            good.push(format!("{a:#x}->{want:#x}"));
        } else {
            bad.push(format!(
                "{a:#x}: QEMU translated to {:#x} (line {}), vfio-trace's iommu_map gives {want:#x}",
                x.phys & !0xfff,
                x.line
            ));
        }
    }
    Check {
        name,
        ok: bad.is_empty() && !good.is_empty(),
        detail: if bad.is_empty() {
            good.join(", ")
        } else {
            bad.join("; ")
        },
    }
}
