//! The oracle: QEMU's own `-trace virtio_iommu_*` log, compared with the
//! exerciser's journal. Each successful VFIO MAP_DMA in the guest reaches
//! the virtio-iommu driver as MAP requests for the same IOVAs, which QEMU
//! logs as `virtio_iommu_map domain=D virt_start=... virt_end=...`.

use std::collections::{BTreeSet, HashMap};

use serde_json::{json, Value};

/// One line of a QEMU trace log (`[pid@sec.usec:]name k=v k=v ...`).
#[derive(Debug, Clone)]
pub struct TraceEvent {
    pub line: usize,
    pub name: String,
    pub fields: HashMap<String, String>,
    /// Every token after the name (for messages that are not `k=v`).
    pub args: Vec<String>,
}

impl TraceEvent {
    pub fn u64(&self, k: &str) -> Option<u64> {
        let v = self.fields.get(k)?.trim_end_matches(',');
        match v.strip_prefix("0x") {
            Some(h) => u64::from_str_radix(h, 16).ok(),
            None => v.parse().ok(),
        }
    }
}

pub fn parse_trace(text: &str) -> Vec<TraceEvent> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let mut l = raw.trim();
        // `-msg timestamp=on` prefix: "1234@1700000000.123456:".
        if let Some((head, rest)) = l.split_once(':') {
            if head.contains('@')
                && head
                    .chars()
                    .all(|c| c.is_ascii_digit() || c == '@' || c == '.')
            {
                l = rest;
            }
        }
        let mut it = l.split_whitespace();
        let Some(name) = it.next() else { continue };
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let args: Vec<String> = it.map(str::to_string).collect();
        let fields = args
            .iter()
            .filter_map(|t| t.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        out.push(TraceEvent {
            line: i + 1,
            name: name.to_string(),
            fields,
            args,
        });
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Map,
    Unmap,
}

/// A virtio-iommu MAP or UNMAP request as QEMU logged it.
#[derive(Debug, Clone)]
pub struct IommuReq {
    pub line: usize,
    pub kind: Kind,
    pub domain: u64,
    pub start: u64,
    pub end: u64,
    pub phys: u64,
    pub flags: u64,
}

pub fn iommu_requests(ev: &[TraceEvent], map: &str, unmap: &str) -> Vec<IommuReq> {
    ev.iter()
        .filter_map(|e| {
            let kind = if e.name == map {
                Kind::Map
            } else if e.name == unmap {
                Kind::Unmap
            } else {
                return None;
            };
            Some(IommuReq {
                line: e.line,
                kind,
                domain: e.u64("domain").unwrap_or(u64::MAX),
                start: e.u64("virt_start")?,
                end: e.u64("virt_end")?,
                phys: e.u64("phys_start").unwrap_or(0),
                flags: e.u64("flags").unwrap_or(0),
            })
        })
        .collect()
}

/// `vfio_iommu_map_notify` lines of an inner QEMU (`iommu map @ 0xS - 0xE`)
/// as requests in a pseudo-domain 0: the MAP_DMA/UNMAP_DMA it sends to the
/// host VFIO for its guest's mappings.
pub fn vfio_notifies(text: &str) -> Vec<IommuReq> {
    let mut out = Vec::new();
    for (i, l) in text.lines().enumerate() {
        let Some(p) = l.find("vfio_iommu_map_notify ") else {
            continue;
        };
        let t: Vec<&str> = l[p..].split_whitespace().collect();
        // vfio_iommu_map_notify iommu map @ 0x100000 - 0x100fff
        if t.len() < 7 {
            continue;
        }
        // QEMU 10 logs "MAP"/"UNMAP", older ones "map"/"unmap".
        let kind = match t[2].to_ascii_lowercase().as_str() {
            "map" => Kind::Map,
            "unmap" => Kind::Unmap,
            _ => continue,
        };
        let n = |s: &str| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok();
        if let (Some(s), Some(e)) = (n(t[4]), n(t[6])) {
            out.push(IommuReq {
                line: i + 1,
                kind,
                domain: 0,
                start: s,
                end: e,
                phys: 0,
                flags: 3,
            });
        }
    }
    out
}

/// `virtio_iommu_attach domain=D endpoint=E` lines: (line, domain, endpoint).
pub fn attaches(ev: &[TraceEvent]) -> Vec<(usize, u64, u64)> {
    ev.iter()
        .filter(|e| e.name == "virtio_iommu_attach")
        .filter_map(|e| Some((e.line, e.u64("domain")?, e.u64("endpoint")?)))
        .collect()
}

/// The virtio-iommu endpoint ID of a PCI function (its requester ID).
pub fn endpoint_of(bdf: &str) -> Option<u64> {
    // [domain:]bus:dev.fn
    let tail = bdf
        .rsplit_once(':')
        .map(|(head, t)| (head.rsplit(':').next().unwrap_or(head), t))?;
    let (bus, devfn) = tail;
    let (dev, func) = devfn.split_once('.')?;
    let n = |s: &str| u64::from_str_radix(s, 16).ok();
    Some((n(bus)? << 8) | (n(dev)? << 3) | n(func)?)
}

/// The journal header's edu BDF.
pub fn journal_edu(jsonl: &str) -> Option<String> {
    jsonl
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["type"] == "header")
        .and_then(|v| v["edu"].as_str().map(str::to_string))
}

/// Completeness: the exerciser's domain was attached (to `endpoint`, when
/// known) before its first matched request.
pub fn check_attach(rep: &Report, att: &[(usize, u64, u64)], endpoint: Option<u64>) -> Check {
    let Some(d) = rep.domain else {
        return Check {
            name: "domain attached",
            ok: false,
            detail: "no exerciser domain found".into(),
        };
    };
    let eps: Vec<u64> = att
        .iter()
        .filter(|(l, dom, _)| *dom == d && rep.first_line.is_none_or(|f| *l < f))
        .map(|(_, _, e)| *e)
        .collect();
    let ok = !eps.is_empty() && endpoint.is_none_or(|e| eps.contains(&e));
    Check {
        name: "domain attached",
        ok,
        detail: format!(
            "domain {d} attached to endpoints {eps:?} before its first request{}",
            endpoint
                .map(|e| format!(" (edu is endpoint {e})"))
                .unwrap_or_default()
        ),
    }
}

/// The journal's verified device DMAs: the IOVAs the device read or wrote.
pub fn journal_dma_iovas(jsonl: &str) -> Vec<u64> {
    jsonl
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["type"] == "dma" && v["verified"] == true)
        .flat_map(|v| [v["src_iova"].as_u64(), v["dst_iova"].as_u64()])
        .flatten()
        .collect()
}

/// The device's DMA went through the exerciser's mappings: for each DMA
/// IOVA, QEMU's `virtio_iommu_translate_out IOVA -> PHYS for sid=S` gives
/// the PHYS that the latest MAP request of the exerciser's domain covering
/// IOVA set up.
pub fn check_dma(rep: &Report, reqs: &[IommuReq], ev: &[TraceEvent], iovas: &[u64]) -> Check {
    let name = "device DMA translated through the mappings";
    let Some(d) = rep.domain else {
        return Check {
            name,
            ok: false,
            detail: "no exerciser domain found".into(),
        };
    };
    if iovas.is_empty() {
        return Check {
            name,
            ok: false,
            detail: "the journal has no verified DMA".into(),
        };
    }
    // Only the devices attached to the domain (not e.g. the 9p transport).
    let eps: Vec<u64> = attaches(ev)
        .iter()
        .filter(|a| a.1 == d)
        .map(|a| a.2)
        .collect();
    let mut bad = Vec::new();
    let mut good = Vec::new();
    for &a in iovas {
        let hits: Vec<(usize, u64)> = ev
            .iter()
            .filter(|e| e.name == "virtio_iommu_translate_out" && e.args.len() >= 3)
            .filter(|e| e.u64("sid").is_some_and(|s| eps.contains(&s)))
            .filter_map(|e| {
                let n = |s: &str| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok();
                (n(&e.args[0])? == a).then_some((e.line, n(&e.args[2])?))
            })
            .collect();
        let Some(&(line, phys)) = hits.last() else {
            bad.push(format!("{a:#x}: no translation in the trace"));
            continue;
        };
        let map = reqs
            .iter()
            .filter(|r| {
                r.kind == Kind::Map && r.domain == d && r.line < line && r.start <= a && a <= r.end
            })
            .next_back();
        match map {
            Some(m) if m.phys + (a - m.start) == phys => good.push(format!("{a:#x}->{phys:#x}")),
            Some(m) => bad.push(format!(
                "{a:#x} translated to {phys:#x} (line {line}) but the map at line {} gives {:#x}",
                m.line,
                m.phys + (a - m.start)
            )),
            None => bad.push(format!(
                "{a:#x} translated (line {line}) without a map in domain {d}"
            )),
        }
    }
    Check {
        name,
        ok: bad.is_empty(),
        detail: if bad.is_empty() {
            good.join(", ")
        } else {
            bad.join("; ")
        },
    }
}

/// Software MSI: the devices' MSI writes (to IOVAs in the SW-MSI window)
/// were translated through the doorbell page the kernel mapped there
/// (`iommu_dma_prepare_msi`), i.e. `translate_out` agrees with the MMIO
/// map request of the exerciser's domain.
pub fn check_msi_doorbell(
    rep: &Report,
    reqs: &[IommuReq],
    ev: &[TraceEvent],
    (lo, hi): (u64, u64),
) -> Check {
    let name = "MSI writes translated through the SW-MSI doorbell map";
    let Some(d) = rep.domain else {
        return Check {
            name,
            ok: false,
            detail: "no exerciser domain found".into(),
        };
    };
    let eps: Vec<u64> = attaches(ev)
        .iter()
        .filter(|a| a.1 == d)
        .map(|a| a.2)
        .collect();
    let n = |s: &str| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok();
    let mut seen = std::collections::BTreeMap::new();
    let mut bad = Vec::new();
    for e in ev
        .iter()
        .filter(|e| e.name == "virtio_iommu_translate_out" && e.args.len() >= 3)
    {
        let (Some(a), Some(p), Some(sid)) = (n(&e.args[0]), n(&e.args[2]), e.u64("sid")) else {
            continue;
        };
        if !eps.contains(&sid) || a < lo || a > hi {
            continue;
        }
        let map = reqs
            .iter()
            .filter(|r| {
                r.kind == Kind::Map
                    && r.domain == d
                    && r.line < e.line
                    && r.start <= a
                    && a <= r.end
            })
            .next_back();
        match map {
            Some(m) if m.flags & 4 != 0 && m.phys + (a - m.start) == p => {
                *seen.entry((sid, a, p)).or_insert(0) += 1;
            }
            _ => bad.push(format!(
                "line {}: sid {sid} {a:#x} -> {p:#x} without a matching doorbell map",
                e.line
            )),
        }
    }
    let ok = bad.is_empty() && !seen.is_empty();
    let shown: Vec<String> = seen
        .iter()
        .map(|((sid, a, p), c)| format!("sid {sid}: {a:#x}->{p:#x} x{c}"))
        .collect();
    Check {
        name,
        ok,
        detail: if !bad.is_empty() {
            bad.join("; ")
        } else if seen.is_empty() {
            format!("no MSI write translated in {lo:#x}-{hi:#x}")
        } else {
            shown.join(", ")
        },
    }
}

/// A MAP_DMA / UNMAP_DMA the exerciser made, from its journal.
#[derive(Debug, Clone)]
pub struct ExOp {
    pub seq: u64,
    pub step: String,
    pub kind: Kind,
    pub iova: u64,
    pub size: u64,
    pub ok: bool,
    pub errno: String,
}

pub fn exerciser_ops(jsonl: &str) -> Vec<ExOp> {
    jsonl
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["type"] == "call")
        .filter_map(|v| {
            let kind = match v["ioctl"].as_str()? {
                "VFIO_IOMMU_MAP_DMA" => Kind::Map,
                "VFIO_IOMMU_UNMAP_DMA" => Kind::Unmap,
                _ => return None,
            };
            let ok = v["ret"].as_i64()? == 0;
            // For UNMAP the kernel writes back how much it unmapped.
            let size = match kind {
                Kind::Unmap if ok => v["out"]["size"].as_u64()?,
                _ => v["args"]["size"].as_u64()?,
            };
            Some(ExOp {
                seq: v["seq"].as_u64().unwrap_or(0),
                step: v["step"].as_str().unwrap_or("").to_string(),
                kind,
                iova: v["args"]["iova"].as_u64()?,
                size,
                ok,
                errno: v["errno_name"].as_str().unwrap_or("").to_string(),
            })
        })
        .collect()
}

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

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = "\
virtio_iommu_attach domain=1 endpoint=16
virtio_iommu_map domain=1 virt_start=0xfffff000 virt_end=0xffffffff phys_start=0x1000 flags=3
virtio_iommu_attach domain=2 endpoint=16
virtio_iommu_map domain=2 virt_start=0x0 virt_end=0x1fff phys_start=0x5000000 flags=3
virtio_iommu_unmap domain=2 virt_start=0x0 virt_end=0xfff
321@1700000000.000001:virtio_iommu_map domain=2 virt_start=0x100000 virt_end=0x107fff phys_start=0x2000000 flags=3
virtio_iommu_map domain=2 virt_start=0x108000 virt_end=0x10ffff phys_start=0x3000000 flags=3
virtio_iommu_map domain=2 virt_start=0x200000 virt_end=0x20ffff phys_start=0x4000000 flags=3
virtio_iommu_map domain=2 virt_start=0x8000000 virt_end=0x8000fff phys_start=0x8090000 flags=6
virtio_iommu_unmap domain=2 virt_start=0x100000 virt_end=0x10ffff
virtio_iommu_unmap_done domain=2 virt_start=0x100000 virt_end=0x10ffff
virtio_iommu_unmap domain=2 virt_start=0x200000 virt_end=0x20ffff
";

    fn call(
        step: &str,
        ioctl: &str,
        iova: u64,
        size: u64,
        ret: i64,
        errno: &str,
        out: u64,
    ) -> String {
        json!({"type":"call","step":step,"ioctl":ioctl,"args":{"iova":iova,"size":size},
               "ret":ret,"errno_name":errno,"out":{"size":out}})
        .to_string()
    }

    fn journal() -> String {
        [
            call(
                "fault_map_before_set_iommu",
                "VFIO_IOMMU_MAP_DMA",
                0x300000,
                0x1000,
                -1,
                "EINVAL",
                0,
            ),
            call("map_dma", "VFIO_IOMMU_MAP_DMA", 0x100000, 0x10000, 0, "", 0),
            call("map_dma", "VFIO_IOMMU_MAP_DMA", 0x200000, 0x10000, 0, "", 0),
            call(
                "fault_map_msi_window",
                "VFIO_IOMMU_MAP_DMA",
                0xfee00000,
                0x1000,
                -1,
                "EINVAL",
                0,
            ),
            call(
                "fault_unmap_mismatch",
                "VFIO_IOMMU_UNMAP_DMA",
                0x3000000,
                0x1000,
                0,
                "",
                0,
            ),
            call(
                "unmap_dma",
                "VFIO_IOMMU_UNMAP_DMA",
                0x100000,
                0x10000,
                0,
                "",
                0x10000,
            ),
            call(
                "unmap_dma",
                "VFIO_IOMMU_UNMAP_DMA",
                0x200000,
                0x10000,
                0,
                "",
                0x10000,
            ),
        ]
        .join("\n")
    }

    fn reqs(t: &str) -> Vec<IommuReq> {
        iommu_requests(&parse_trace(t), "virtio_iommu_map", "virtio_iommu_unmap")
    }

    const SWMSI: Options = Options {
        strict: true,
        sw_msi: Some((0x800_0000, 0x80f_ffff)),
    };

    #[test]
    fn matching_run_passes() {
        let ops = exerciser_ops(&journal());
        assert_eq!(ops.len(), 7);
        let r = compare(&ops, &reqs(TRACE), SWMSI);
        assert!(r.ok(), "{:?}", r.failures());
        assert_eq!(r.domain, Some(2));
        assert_eq!((r.matched_maps, r.matched_unmaps), (2, 2));
        assert_eq!(r.doorbell_maps, vec![(0x800_0000, 0x809_0000)]);
    }

    #[test]
    fn truncated_trace_fails() {
        let cut: String = TRACE.lines().take(9).map(|l| format!("{l}\n")).collect();
        let r = compare(&exerciser_ops(&journal()), &reqs(&cut), SWMSI);
        assert!(!r.ok());
        let f = r.failures().join("\n");
        assert!(f.contains("trace complete"), "{f}");
        assert!(f.contains("unmap_dma Unmap iova=0x100000"), "{f}");
    }

    #[test]
    fn leaked_fault_map_and_gaps_fail() {
        let leak = format!("{TRACE}virtio_iommu_map domain=2 virt_start=0xfee00000 virt_end=0xfee00fff phys_start=0x1 flags=3\n");
        let r = compare(&exerciser_ops(&journal()), &reqs(&leak), SWMSI);
        assert!(r
            .failures()
            .join("")
            .contains("fault_map_msi_window (EINVAL)"));
        let gap = TRACE.replace("virt_start=0x108000", "virt_start=0x109000");
        let r = compare(&exerciser_ops(&journal()), &reqs(&gap), SWMSI);
        assert!(r.failures().join("").contains("map_dma Map iova=0x100000"));
        // Without the SW-MSI window the doorbell map is unexplained.
        let r = compare(
            &exerciser_ops(&journal()),
            &reqs(TRACE),
            Options {
                strict: true,
                sw_msi: None,
            },
        );
        assert!(r.failures().join("").contains("unexplained"));
    }

    #[test]
    fn attach_is_checked_against_the_edu_endpoint() {
        assert_eq!(endpoint_of("0000:00:02.0"), Some(16));
        assert_eq!(endpoint_of("00:01.0"), Some(8));
        assert_eq!(endpoint_of("0000:01:00.1"), Some(0x101));
        let r = compare(&exerciser_ops(&journal()), &reqs(TRACE), SWMSI);
        let att = attaches(&parse_trace(TRACE));
        assert!(check_attach(&r, &att, Some(16)).ok);
        assert!(!check_attach(&r, &att, Some(24)).ok);
        assert!(
            !check_attach(&r, &att[..1], None).ok,
            "domain 2 never attached"
        );
    }

    #[test]
    fn dma_translations_must_agree_with_the_maps() {
        let t = format!(
            "{TRACE}virtio_iommu_translate_out 0x100000 -> 0x2000000 for sid=16\n\
             virtio_iommu_translate_out 0x200100 -> 0x4000100 for sid=16\n"
        );
        let ev = parse_trace(&t);
        let rq = iommu_requests(&ev, "virtio_iommu_map", "virtio_iommu_unmap");
        let r = compare(&exerciser_ops(&journal()), &rq, SWMSI);
        let c = check_dma(&r, &rq, &ev, &[0x100000, 0x200100]);
        assert!(c.ok, "{}", c.detail);
        let c = check_dma(&r, &rq, &ev, &[0x108000]);
        assert!(!c.ok && c.detail.contains("no translation"));
        let wrong = t.replace("0x4000100 for", "0x5000100 for");
        let ev = parse_trace(&wrong);
        let c = check_dma(&r, &rq, &ev, &[0x200100]);
        assert!(
            !c.ok && c.detail.contains("gives 0x4000100"),
            "{}",
            c.detail
        );
    }

    #[test]
    fn msi_writes_must_hit_the_doorbell_map() {
        let t = format!("{TRACE}virtio_iommu_translate_out 0x8000040 -> 0x8090040 for sid=16\n");
        let ev = parse_trace(&t);
        let rq = iommu_requests(&ev, "virtio_iommu_map", "virtio_iommu_unmap");
        let r = compare(&exerciser_ops(&journal()), &rq, SWMSI);
        let c = check_msi_doorbell(&r, &rq, &ev, (0x800_0000, 0x80f_ffff));
        assert!(c.ok, "{}", c.detail);
        let ev = parse_trace(&t.replace("-> 0x8090040", "-> 0x8091040"));
        assert!(!check_msi_doorbell(&r, &rq, &ev, (0x800_0000, 0x80f_ffff)).ok);
        let ev = parse_trace(TRACE);
        assert!(
            !check_msi_doorbell(&r, &rq, &ev, (0x800_0000, 0x80f_ffff)).ok,
            "no MSI at all"
        );
    }

    #[test]
    fn inner_vfio_notifies_parse() {
        let t = "12@1.5:vfio_iommu_map_notify iommu MAP @ 0x100000 - 0x100fff\nvfio_iommu_map_notify iommu unmap @ 0x100000 - 0x10ffff\n";
        let r = vfio_notifies(t);
        assert_eq!(r.len(), 2);
        assert_eq!(
            (r[0].kind, r[0].start, r[0].end),
            (Kind::Map, 0x100000, 0x100fff)
        );
        assert_eq!(r[1].kind, Kind::Unmap);
    }
}
