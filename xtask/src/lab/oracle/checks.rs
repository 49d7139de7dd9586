//! Checks beyond the in-order matching: the domain was attached, the
//! device's DMA and MSI writes were translated through the mappings.

use super::{attaches, Check, IommuReq, Kind, Report, TraceEvent};

/// The last MAP request of domain `d` covering `iova` before trace `line`.
fn latest_map(reqs: &[IommuReq], d: u64, line: usize, iova: u64) -> Option<&IommuReq> {
    reqs.iter().rfind(|r| {
        r.kind == Kind::Map && r.domain == d && r.line < line && r.start <= iova && iova <= r.end
    })
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
        let map = latest_map(reqs, d, line, a);
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
        let map = latest_map(reqs, d, e.line, a);
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
