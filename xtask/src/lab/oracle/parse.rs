//! Reading the two sides: QEMU trace logs (`virtio_iommu_*`,
//! `vfio_iommu_map_notify`) and the exerciser's JSON Lines journal.

use std::collections::HashMap;

use serde_json::Value;

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
