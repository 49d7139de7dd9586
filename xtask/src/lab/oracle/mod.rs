//! The oracle: QEMU's own `-trace virtio_iommu_*` log, compared with the
//! exerciser's journal. Each successful VFIO MAP_DMA in the guest reaches
//! the virtio-iommu driver as MAP requests for the same IOVAs, which QEMU
//! logs as `virtio_iommu_map domain=D virt_start=... virt_end=...`.

//!
//! `parse` reads both sides, `compare` matches the exerciser's successful
//! MAP/UNMAP_DMAs in order against the requests of one domain, `checks`
//! adds attach, DMA-translation and MSI-doorbell checks.

mod checks;
pub mod hwiommu;
#[cfg(test)]
mod hwiommu_tests;
mod parse;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;

use serde_json::{json, Value};

pub use checks::*;
pub use parse::*;

#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Single-level: every MAP request in the exerciser's domain must be
    /// explained (by an exerciser MAP_DMA or known kernel noise).
    pub strict: bool,
    /// Software-MSI window (arm64): MMIO-flagged maps there are doorbells.
    pub sw_msi: Option<(u64, u64)>,
}

#[derive(Debug, Clone)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub domain: Option<u64>,
    /// Trace line of the first matched request.
    pub first_line: Option<usize>,
    pub checks: Vec<Check>,
    pub matched_maps: usize,
    pub matched_unmaps: usize,
    pub doorbell_maps: Vec<(u64, u64)>,
}

impl Report {
    pub fn ok(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(|c| c.ok)
    }
    pub fn failures(&self) -> Vec<String> {
        self.checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| format!("{}: {}", c.name, c.detail))
            .collect()
    }
    pub fn to_json(&self) -> Value {
        json!({
            "ok": self.ok(),
            "domain": self.domain,
            "matched_maps": self.matched_maps,
            "matched_unmaps": self.matched_unmaps,
            "doorbell_maps": self.doorbell_maps.iter()
                .map(|(s, p)| json!({"iova": format!("{s:#x}"), "phys": format!("{p:#x}")}))
                .collect::<Vec<_>>(),
            "checks": self.checks.iter()
                .map(|c| json!({"name": c.name, "ok": c.ok, "detail": c.detail}))
                .collect::<Vec<_>>(),
        })
    }
}

/// Finds, in order, the requests of `domain` that cover each op exactly.
/// Returns per-op matched request indices (None: no match).
fn match_ops(ops: &[&ExOp], reqs: &[IommuReq], domain: u64) -> Vec<Option<Vec<usize>>> {
    let mut pos = 0;
    let mut out = Vec::new();
    for op in ops {
        let (lo, hi) = (op.iova, op.iova + op.size - 1);
        let mut got: Vec<usize> = Vec::new();
        let mut found = None;
        for (i, r) in reqs.iter().enumerate().skip(pos) {
            if r.kind != op.kind || r.domain != domain || r.start < lo || r.end > hi {
                continue;
            }
            got.push(i);
            if covers(reqs, &got, lo, hi) {
                found = Some(i);
                break;
            }
        }
        match found {
            Some(i) => {
                pos = i + 1;
                out.push(Some(got));
            }
            None => out.push(None),
        }
    }
    out
}

fn covers(reqs: &[IommuReq], idx: &[usize], lo: u64, hi: u64) -> bool {
    let mut r: Vec<(u64, u64)> = idx.iter().map(|&i| (reqs[i].start, reqs[i].end)).collect();
    r.sort();
    let mut next = lo;
    for (s, e) in r {
        if s != next {
            return false;
        }
        next = e.wrapping_add(1);
    }
    next == hi.wrapping_add(1)
}

fn intersects(r: &IommuReq, lo: u64, hi: u64) -> bool {
    r.start <= hi && r.end >= lo
}

/// Compares the exerciser's successful MAP/UNMAP_DMAs (and its refused
/// MAP_DMAs) with the requests in `reqs`.
pub fn compare(ops: &[ExOp], reqs: &[IommuReq], opt: Options) -> Report {
    let mut rep = Report {
        domain: None,
        first_line: None,
        checks: Vec::new(),
        matched_maps: 0,
        matched_unmaps: 0,
        doorbell_maps: Vec::new(),
    };
    let good: Vec<&ExOp> = ops.iter().filter(|o| o.ok && o.size > 0).collect();
    let want_maps = good.iter().filter(|o| o.kind == Kind::Map).count();
    rep.checks.push(Check {
        name: "trace has requests",
        ok: reqs.iter().any(|r| r.kind == Kind::Map),
        detail: format!("{} map/unmap requests in the trace", reqs.len()),
    });
    rep.checks.push(Check {
        name: "exerciser mapped",
        ok: want_maps > 0,
        detail: format!("{want_maps} successful MAP_DMA in the journal"),
    });
    if want_maps == 0 || reqs.is_empty() {
        return rep;
    }
    // The exerciser's domain: the one whose requests match the most ops.
    let domains: BTreeSet<u64> = reqs.iter().map(|r| r.domain).collect();
    let (domain, matches) = domains
        .iter()
        .map(|&d| (d, match_ops(&good, reqs, d)))
        .max_by_key(|(d, m)| (m.iter().filter(|x| x.is_some()).count(), u64::MAX - d))
        .expect("non-empty");
    rep.domain = Some(domain);
    let mut missing = Vec::new();
    let mut matched: BTreeSet<usize> = BTreeSet::new();
    let mut bad_flags = Vec::new();
    for (op, m) in good.iter().zip(&matches) {
        match m {
            Some(idx) => {
                match op.kind {
                    Kind::Map => rep.matched_maps += 1,
                    Kind::Unmap => rep.matched_unmaps += 1,
                }
                for &i in idx {
                    rep.first_line =
                        Some(rep.first_line.map_or(reqs[i].line, |f| f.min(reqs[i].line)));
                    if op.kind == Kind::Map && reqs[i].flags & 3 != 3 {
                        bad_flags.push(format!("line {} flags={}", reqs[i].line, reqs[i].flags));
                    }
                    matched.insert(i);
                }
            }
            None => missing.push(format!(
                "{} {:?} iova={:#x} size={:#x} (seq {})",
                op.step, op.kind, op.iova, op.size, op.seq
            )),
        }
    }
    rep.checks.push(Check {
        name: "every MAP_DMA/UNMAP_DMA reached the IOMMU",
        ok: missing.is_empty(),
        detail: if missing.is_empty() {
            format!(
                "{} maps and {} unmaps matched in domain {domain}",
                rep.matched_maps, rep.matched_unmaps
            )
        } else {
            format!(
                "not in the trace (in order, domain {domain}): {}",
                missing.join("; ")
            )
        },
    });
    // Completeness: the exerciser's last operation is in the log.
    let last_ok = matches.last().is_some_and(|m| m.is_some());
    rep.checks.push(Check {
        name: "trace complete",
        ok: last_ok,
        detail: if last_ok {
            "the exerciser's last MAP/UNMAP is in the trace".into()
        } else {
            "the exerciser's last MAP/UNMAP is missing: trace truncated?".into()
        },
    });
    rep.checks.push(Check {
        name: "map flags READ|WRITE",
        ok: bad_flags.is_empty(),
        detail: if bad_flags.is_empty() {
            "ok".into()
        } else {
            bad_flags.join("; ")
        },
    });
    // Unmatched MAP requests in the domain: kernel noise, doorbells, or leaks.
    let mut leaks = Vec::new();
    let mut unexplained = Vec::new();
    for (i, r) in reqs.iter().enumerate() {
        if r.kind != Kind::Map || r.domain != domain || matched.contains(&i) {
            continue;
        }
        // VFIO's fine-grained superpage probe maps 2 pages at IOVA 0.
        if r.start == 0 && r.end < 0x2000 {
            continue;
        }
        if let Some((lo, hi)) = opt.sw_msi {
            if r.start >= lo && r.end <= hi && r.flags & 4 != 0 {
                rep.doorbell_maps.push((r.start, r.phys));
                continue;
            }
        }
        let fault = ops.iter().find(|o| {
            !o.ok && o.kind == Kind::Map && intersects(r, o.iova, o.iova + o.size.max(1) - 1)
        });
        match fault {
            Some(o) => leaks.push(format!(
                "{} ({}) but trace line {} maps {:#x}-{:#x}",
                o.step, o.errno, r.line, r.start, r.end
            )),
            None => unexplained.push(format!(
                "line {}: {:#x}-{:#x} flags={}",
                r.line, r.start, r.end, r.flags
            )),
        }
    }
    if !opt.strict {
        // A level below other traffic (nested outer: QEMU's boot-bypass
        // maps of all guest RAM) only the in-order matches are meaningful.
        return rep;
    }
    rep.checks.push(Check {
        name: "refused MAP_DMAs left no mapping",
        ok: leaks.is_empty(),
        detail: if leaks.is_empty() {
            format!(
                "{} refused MAP_DMA, none reached the IOMMU",
                ops.iter().filter(|o| !o.ok && o.kind == Kind::Map).count()
            )
        } else {
            leaks.join("; ")
        },
    });
    if opt.strict {
        rep.checks.push(Check {
            name: "no unexplained maps",
            ok: unexplained.is_empty(),
            detail: if unexplained.is_empty() {
                "ok".into()
            } else {
                unexplained.join("; ")
            },
        });
    }
    rep
}
