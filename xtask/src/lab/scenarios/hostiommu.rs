//! The host's IOMMU in a single-level scenario: which QEMU trace events
//! to log and how to judge the run against them. virtio-iommu (today's
//! x86 and arm64-swmsi) and the hardware IOMMUs people run: VT-d, AMD-Vi,
//! SMMUv3 (x86-vtd, x86-amdvi, arm64-smmuv3).

use std::{fs, path::Path};

use crate::lab::oracle::{self, hwiommu as hw, Options, Report};

pub struct HostIommu {
    /// The oracle's label in the verdict.
    pub label: &'static str,
    /// `-trace` patterns for QEMU.
    pub trace: &'static [&'static str],
    /// Judges `qemu-trace.log` against `exerciser.jsonl` in a run's dir.
    pub oracle: fn(&Path, Options) -> Report,
    /// The guest drives virtio-iommu (probe-check then compares its
    /// requests with QEMU's log).
    pub virtio: bool,
}

pub const VIRTIO: HostIommu = HostIommu {
    label: "qemu virtio-iommu",
    trace: &["virtio_iommu_*"],
    oracle: virtio_oracle,
    virtio: true,
};

/// VT-d: `vtd_ir_*` fire on every interrupt (the serial console too), so
/// only the invalidation, translation and MSI-remap events are logged.
pub const VTD: HostIommu = HostIommu {
    label: "qemu intel-iommu (VT-d)",
    trace: &[
        "vtd_inv_desc_iotlb_pages",
        "vtd_inv_desc_iotlb_domain",
        "vtd_inv_desc_iotlb_global",
        "vtd_dmar_translate",
        "vtd_dmar_fault",
        "vtd_ir_remap_msi_req",
    ],
    oracle: vtd_oracle,
    virtio: false,
};

pub const AMDVI: HostIommu = HostIommu {
    label: "qemu amd-iommu (AMD-Vi)",
    trace: &[
        "amdvi_pages_inval",
        "amdvi_translation_result",
        "amdvi_page_fault",
        "amdvi_iotlb_hit",
    ],
    oracle: amdvi_oracle,
    virtio: false,
};

pub const SMMUV3: HostIommu = HostIommu {
    label: "qemu arm-smmuv3",
    trace: &[
        "smmuv3_range_inval",
        "smmuv3_translate_success",
        "smmuv3_translate_abort",
        "smmuv3_record_event",
    ],
    oracle: smmuv3_oracle,
    virtio: false,
};

/// x86's hardware MSI window.
pub const X86_MSI: (u64, u64) = (0xfee0_0000, 0xfeef_ffff);

fn virtio_oracle(dir: &Path, opt: Options) -> Report {
    super::oracle_for(dir, "exerciser.jsonl", "qemu-trace.log", opt, true, true)
}

/// The two sides of a run: the journal and QEMU's parsed log.
struct Sides {
    jsonl: String,
    text: String,
    events: Vec<oracle::TraceEvent>,
}

fn read(dir: &Path) -> Sides {
    let jsonl = fs::read_to_string(dir.join("exerciser.jsonl")).unwrap_or_default();
    let text = fs::read_to_string(dir.join("qemu-trace.log")).unwrap_or_default();
    let events = oracle::parse_trace(&text);
    Sides {
        jsonl,
        text,
        events,
    }
}

fn ends_cleanly(s: &Sides) -> oracle::Check {
    oracle::Check {
        name: "trace file ends cleanly",
        ok: !s.text.is_empty() && s.text.ends_with('\n'),
        detail: format!("qemu-trace.log: {} bytes", s.text.len()),
    }
}

fn edu(s: &Sides) -> Option<String> {
    oracle::journal_edu(&s.jsonl).and_then(|b| hw::norm_bdf(&b))
}

fn vtd_oracle(dir: &Path, _: Options) -> Report {
    let s = read(dir);
    let ops = oracle::exerciser_ops(&s.jsonl);
    let invs = hw::vtd_invals(&s.events);
    let xl = hw::vtd_xlates(&s.events);
    let mut r = hw::compare_invals(&ops, &invs, hw::Covered::Both);
    let dma_iovas = oracle::journal_dma_iovas(&s.jsonl);
    r.checks
        .push(hw::check_xlates(&xl, edu(&s).as_deref(), &dma_iovas));
    let bypass = hw::check_msi_bypass(&r, &invs, &xl, X86_MSI);
    r.checks.push(bypass);
    r.checks.push(hw::check_ir(&s.events));
    if let Some((calls, maps)) = recorded(dir, &ops) {
        r.checks.push(hw::check_recorded(&r, &calls, &invs, true));
        r.checks.push(hw::check_xlates_vs_recorded(
            &xl,
            edu(&s).as_deref(),
            &dma_iovas,
            &maps,
        ));
    }
    r.checks.insert(0, ends_cleanly(&s));
    r
}

/// AMD-Vi: invalidations carry no address, so only the DMA translations,
/// the MSI window and the presence of invalidations can be judged.
fn amdvi_oracle(dir: &Path, _: Options) -> Report {
    let s = read(dir);
    let ops = oracle::exerciser_ops(&s.jsonl);
    let xl = hw::amdvi_xlates(&s.events);
    let invs = s
        .events
        .iter()
        .filter(|e| e.name == "amdvi_pages_inval")
        .count();
    let unmaps = ops
        .iter()
        .filter(|o| o.ok && o.kind == oracle::Kind::Unmap && o.size > 0)
        .count();
    let mut r = Report {
        domain: None,
        first_line: None,
        checks: Vec::new(),
        matched_maps: 0,
        matched_unmaps: 0,
        doorbell_maps: Vec::new(),
    };
    r.checks.push(ends_cleanly(&s));
    r.checks.push(oracle::Check {
        name: "unmaps invalidated (by domain only: amdvi_pages_inval has no address)",
        ok: unmaps > 0 && invs >= unmaps,
        detail: format!("{invs} page invalidations for {unmaps} successful UNMAP_DMA"),
    });
    r.checks.push(hw::check_xlates(
        &xl,
        edu(&s).as_deref(),
        &oracle::journal_dma_iovas(&s.jsonl),
    ));
    r.checks.push(hw::check_msi_bypass(&r, &[], &xl, X86_MSI));
    if let Some((_, maps)) = recorded(dir, &ops) {
        let dma_iovas = oracle::journal_dma_iovas(&s.jsonl);
        r.checks.push(hw::check_xlates_vs_recorded(
            &xl,
            edu(&s).as_deref(),
            &dma_iovas,
            &maps,
        ));
    }
    r
}

fn smmuv3_oracle(dir: &Path, opt: Options) -> Report {
    let s = read(dir);
    let ops = oracle::exerciser_ops(&s.jsonl);
    let invs = hw::smmuv3_invals(&s.events);
    let xl = hw::smmuv3_xlates(&s.events);
    let mut r = hw::compare_invals(&ops, &invs, hw::Covered::Unmaps);
    let sid = oracle::journal_edu(&s.jsonl).and_then(|b| hw::stream_id(&b));
    let dma_iovas = oracle::journal_dma_iovas(&s.jsonl);
    let dma = hw::check_xlates(&xl, sid.as_deref(), &dma_iovas);
    r.checks.push(dma);
    if let Some(w) = opt.sw_msi {
        r.checks.push(hw::check_sw_msi(&xl, sid.as_deref(), w));
    }
    if let Some((calls, maps)) = recorded(dir, &ops) {
        r.checks.push(hw::check_recorded(&r, &calls, &invs, false));
        r.checks.push(hw::check_xlates_vs_recorded(
            &xl,
            sid.as_deref(),
            &dma_iovas,
            &maps,
        ));
    }
    r.checks.insert(0, ends_cleanly(&s));
    r
}

/// edu only: bound to vfio-pci, then the exerciser. (e1000e is left out on
/// the hardware IOMMUs: see the README's "Host IOMMUs" pitfalls.)
pub const EDU_BODY: &str = r#"EDU=$(find_pci 0x1234 0x11e8) || fail "no edu device (1234:11e8)"
bind_vfio $EDU
run_exerciser --edu $EDU
finish PASS
"#;

/// Turns a list of string literals into QEMU arguments.
pub fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// vfio-trace's recorded `iommu_map`/`iommu_unmap` calls in the IOMMU
/// domain that served the exerciser's MAP_DMAs (the kernel domain whose
/// maps cover the first mapped IOVA), in order. None without a recording.
fn recorded(dir: &Path, ops: &[oracle::ExOp]) -> Option<(Vec<hw::Recorded>, Vec<hw::RecordedMap>)> {
    use tracer_core::event::EventKind;
    let (_, events) = tracer_core::tracefile::read_all(dir.join("trace.vft")).ok()?;
    let first = ops.iter().find(|o| o.ok && o.kind == oracle::Kind::Map)?;
    let domain = events.iter().find_map(|e| match &e.kind {
        EventKind::IommuMap(m)
            if m.errno == 0 && m.iova <= first.iova && first.iova < m.iova + m.size =>
        {
            Some(m.domain)
        }
        _ => None,
    });
    let calls = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::IommuMap(m) if m.errno == 0 && Some(m.domain) == domain => {
                Some((oracle::Kind::Map, m.iova, m.size))
            }
            EventKind::IommuUnmap(u) if Some(u.domain) == domain && u.unmapped > 0 => {
                Some((oracle::Kind::Unmap, u.iova, u.unmapped))
            }
            _ => None,
        })
        .collect();
    let maps = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::IommuMap(m) if m.errno == 0 && Some(m.domain) == domain => {
                Some((m.iova, m.size, m.paddr))
            }
            _ => None,
        })
        .collect();
    Some((calls, maps))
}
