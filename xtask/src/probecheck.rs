//! The probes against ground truth: vfio-trace's recording from inside a
//! lab VM (`trace.vft`) compared with what the exerciser did
//! (`exerciser.jsonl`) and with QEMU's own log of the virtio-iommu requests
//! it received (`qemu-trace.log`). Any missing, extra or mismatched event is
//! a failure with a readable line.

use std::{collections::BTreeMap, fs, path::Path};

use anyhow::{anyhow, Context, Result};
use serde_json::Value;
use tracer_core::{
    event::{Event, EventKind, ProbeState, ResvType, ViommuOp},
    tracefile::read_all,
};

#[derive(clap::Args, Debug)]
pub struct ProbeCheckArgs {
    /// A lab artifact directory (target/lab/<scenario>).
    pub dir: std::path::PathBuf,
    /// The scenario's MSI model.
    #[arg(long, value_enum)]
    pub msi: MsiModel,
    /// The nested scenario: `DIR` holds L1's recording (the host) and
    /// `DIR/l2` L2's (the guest); the chain is checked across both.
    #[arg(long)]
    pub nested: bool,
}

pub fn run(a: &ProbeCheckArgs) -> Result<()> {
    let r = if a.nested {
        check_nested(&a.dir)?
    } else {
        check(&a.dir, a.msi)?
    };
    r.print();
    if !r.ok() {
        anyhow::bail!("the recording does not match the ground truth");
    }
    eprintln!("probe-check: PASS");
    Ok(())
}

/// What the scenario's MSI model must look like.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum MsiModel {
    /// x86: messages target 0xfee00000-0xfeefffff, nothing is mapped for them.
    Hardware,
    /// arm64 with a software-MSI window: a doorbell page mapped in
    /// 0x8000000-0x80fffff and devices programmed with that IOVA.
    Software,
}

/// Probes that must fire in every scenario (beyond `required` ones).
const MUST_FIRE: &[&str] = &[
    "ioctl_enter",
    "iommu_map",
    "vfio_pin",
    "vfio_set_irqs",
    "msi_vector",
    "msi_write",
    "viommu_req",
];

#[derive(Default)]
pub struct ProbeReport {
    pub checks: Vec<(String, Result<String>)>,
}

impl ProbeReport {
    fn pass(&mut self, name: &str, detail: String) {
        self.checks.push((name.into(), Ok(detail)));
    }
    fn fail(&mut self, name: &str, detail: String) {
        self.checks.push((name.into(), Err(anyhow!(detail))));
    }
    fn check(&mut self, name: &str, problems: Vec<String>, ok: String) {
        if problems.is_empty() {
            self.pass(name, ok);
        } else {
            let n = problems.len();
            let mut text = problems
                .into_iter()
                .take(8)
                .collect::<Vec<_>>()
                .join("\n      ");
            if n > 8 {
                text += &format!("\n      ... and {} more", n - 8);
            }
            self.fail(name, text);
        }
    }
    /// Takes `other`'s checks, their names prefixed with `label`.
    fn absorb(&mut self, label: &str, other: ProbeReport) {
        self.checks.extend(
            other
                .checks
                .into_iter()
                .map(|(n, r)| (format!("{label}{n}"), r)),
        );
    }

    pub fn ok(&self) -> bool {
        self.checks.iter().all(|(_, r)| r.is_ok())
    }
    pub fn print(&self) {
        for (name, r) in &self.checks {
            match r {
                Ok(d) => eprintln!("    probes ok   {name}: {d}"),
                Err(d) => eprintln!("    probes FAIL {name}:\n      {d:#}"),
            }
        }
    }
}

/// Compares the recording in `dir` with the exerciser and QEMU logs.
pub fn check(dir: &Path, msi: MsiModel) -> Result<ProbeReport> {
    check_iommu(dir, msi, true)
}

/// [`check`] for a VM whose IOMMU is virtio-iommu (`virtio`) or a hardware
/// IOMMU QEMU emulates (VT-d, AMD-Vi, SMMUv3): no virtio-iommu request is
/// sent there, so `viommu_req` need not fire and QEMU's log holds no
/// requests to compare (the lab's hardware-IOMMU oracle checks the
/// invalidations instead).
pub fn check_iommu(dir: &Path, msi: MsiModel, virtio: bool) -> Result<ProbeReport> {
    let mut r = ProbeReport::default();
    guest_checks(dir, &dir.join("qemu-trace.log"), msi, virtio, "", &mut r)?;
    Ok(r)
}

fn read_trace(path: &Path) -> Result<Vec<Event>> {
    let (_, events) = read_all(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(events)
}

fn read_text(path: &Path) -> Result<String> {
    fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// The checks of a VM that ran the exerciser: `dir` holds its recording
/// and journal, `qemu_log` the log of the QEMU that emulated its IOMMU.
fn guest_checks(
    dir: &Path,
    qemu_log: &Path,
    msi: MsiModel,
    virtio: bool,
    label: &str,
    r: &mut ProbeReport,
) -> Result<Vec<Event>> {
    let events = read_trace(&dir.join("trace.vft"))?;
    let ex_text = read_text(&dir.join("exerciser.jsonl"))?;
    let qemu = read_text(qemu_log)?;
    let mut sub = ProbeReport::default();
    if virtio {
        health(&events, MUST_FIRE, &mut sub);
        viommu_vs_qemu(&events, &qemu, &mut sub);
    } else {
        let hw: Vec<&str> = MUST_FIRE
            .iter()
            .copied()
            .filter(|p| *p != "viommu_req")
            .collect();
        health(&events, &hw, &mut sub);
    }
    let ex_pid = exerciser_pid(&ex_text);
    exerciser_calls(&events, &ex_text, ex_pid, &mut sub);
    pages_pinned_and_mapped(&events, ex_pid, &mut sub);
    msi_model(&events, msi, &mut sub);
    msi_masks(&events, ex_pid, &mut sub);
    resv_at_start(&events, &ex_text, ex_pid, &mut sub);
    r.absorb(label, sub);
    Ok(events)
}

/// Probes that must fire on the nested host (L1): it runs VFIO for the
/// inner QEMU and is itself a guest of the outer QEMU's virtio-iommu.
const MUST_FIRE_L1: &[&str] = &["ioctl_enter", "iommu_map", "vfio_pin", "viommu_req"];

/// The nested lab: L2's recording against the inner QEMU, L1's against the
/// outer QEMU, and the whole chain L2 IOVA → L2 GPA → L1 HVA → L1 HPA →
/// outer virtio-iommu for every page the exerciser mapped.
pub fn check_nested(dir: &Path) -> Result<ProbeReport> {
    let mut r = ProbeReport::default();
    let l2 = guest_checks(
        &dir.join("l2"),
        &dir.join("inner-qemu-trace.log"),
        MsiModel::Hardware,
        true,
        "L2 ",
        &mut r,
    )?;
    let l1 = read_trace(&dir.join("trace.vft"))?;
    let outer = read_text(&dir.join("qemu-trace.log"))?;
    let mut sub = ProbeReport::default();
    health(&l1, MUST_FIRE_L1, &mut sub);
    viommu_vs_qemu(&l1, &outer, &mut sub);
    memslots_explain_maps(&l1, &mut sub);
    nested_chain(&l2, &l1, &mut sub);
    r.absorb("L1 ", sub);
    Ok(r)
}

fn health(events: &[Event], must_fire: &[&str], r: &mut ProbeReport) {
    let mut last: BTreeMap<&str, (ProbeState, u64, bool, &str)> = BTreeMap::new();
    let mut drops = None;
    for e in events {
        match &e.kind {
            EventKind::ProbeStatus(p) => {
                last.insert(&p.probe, (p.status, p.hits, p.required, &p.reason));
            }
            EventKind::Drops(d) => drops = Some(d.clone()),
            _ => {}
        }
    }
    let mut problems = Vec::new();
    for (name, (state, hits, required, reason)) in &last {
        if *state != ProbeState::Attached && (*required || must_fire.contains(name)) {
            problems.push(format!("{name} not attached: {reason}"));
        }
        if must_fire.contains(name) && *hits == 0 {
            problems.push(format!("{name} attached but never fired"));
        }
    }
    for m in must_fire {
        if !last.contains_key(m) {
            problems.push(format!("{m} missing from the probe table"));
        }
    }
    let attached = last
        .values()
        .filter(|v| v.0 == ProbeState::Attached)
        .count();
    r.check(
        "probe health",
        problems,
        format!("{attached}/{} probes attached", last.len()),
    );
    match drops {
        Some(d) if d.total() == 0 => r.pass("drops", "0".into()),
        Some(d) => r.fail("drops", format!("{d:?}")),
        None => r.fail("drops", "no drops record in the trace".into()),
    }
}

/// (op, domain, endpoint, virt_start, virt_end, phys_start, flags) as QEMU
/// logs them; fields QEMU does not log for an op are 0.
type Req = (&'static str, u64, u64, u64, u64, u64, u64);

fn qemu_requests(log: &str) -> Vec<Req> {
    let mut out = Vec::new();
    for line in log.lines() {
        let Some(at) = line.find("virtio_iommu_") else {
            continue;
        };
        let rest = &line[at + "virtio_iommu_".len()..];
        let (name, args) = rest.split_once(' ').unwrap_or((rest, ""));
        let op = match name {
            "attach" => "attach",
            "detach" => "detach",
            "map" => "map",
            "unmap" => "unmap",
            _ => continue,
        };
        let kv: BTreeMap<&str, u64> = args
            .split_whitespace()
            .filter_map(|t| t.split_once('='))
            .filter_map(|(k, v)| {
                let v = v.trim_end_matches(',');
                let n = match v.strip_prefix("0x") {
                    Some(h) => u64::from_str_radix(h, 16).ok(),
                    None => v.parse().ok(),
                }?;
                Some((k, n))
            })
            .collect();
        let g = |k: &str| kv.get(k).copied().unwrap_or(0);
        out.push(match op {
            "map" => (
                op,
                g("domain"),
                0,
                g("virt_start"),
                g("virt_end"),
                g("phys_start"),
                g("flags"),
            ),
            "unmap" => (op, g("domain"), 0, g("virt_start"), g("virt_end"), 0, 0),
            _ => (op, g("domain"), g("endpoint"), 0, 0, 0, 0),
        });
    }
    out
}

fn traced_requests(events: &[Event]) -> Vec<Req> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::ViommuReq(q) => Some(match q.op {
                ViommuOp::Map => (
                    "map",
                    q.domain.into(),
                    0,
                    q.virt_start,
                    q.virt_end,
                    q.phys_start,
                    q.flags.into(),
                ),
                ViommuOp::Unmap => ("unmap", q.domain.into(), 0, q.virt_start, q.virt_end, 0, 0),
                ViommuOp::Attach => ("attach", q.domain.into(), q.endpoint.into(), 0, 0, 0, 0),
                ViommuOp::Detach => ("detach", q.domain.into(), q.endpoint.into(), 0, 0, 0, 0),
                ViommuOp::Probe => return None,
            }),
            _ => None,
        })
        .collect()
}

fn show(q: &Req) -> String {
    format!(
        "{} domain={} endpoint={} virt={:#x}-{:#x} phys={:#x} flags={}",
        q.0, q.1, q.2, q.3, q.4, q.5, q.6
    )
}

/// vfio-trace starts after boot and stops before poweroff, so its requests
/// must be one contiguous run of QEMU's, in order, field for field: every
/// traced request is in QEMU's log and every logged request inside the
/// recording window is traced.
fn viommu_vs_qemu(events: &[Event], log: &str, r: &mut ProbeReport) {
    let qemu = qemu_requests(log);
    let traced = traced_requests(events);
    if traced.is_empty() {
        return r.fail(
            "viommu_req vs QEMU",
            "no virtio-iommu request traced".into(),
        );
    }
    if !traced.iter().any(|q| q.0 == "map") {
        return r.fail("viommu_req vs QEMU", "no MAP request traced".into());
    }
    let starts = (0..qemu.len()).filter(|&i| qemu[i] == traced[0]);
    let mut best = (0usize, 0usize);
    for s in starts {
        let n = traced
            .iter()
            .zip(&qemu[s..])
            .take_while(|(a, b)| a == b)
            .count();
        if n > best.1 {
            best = (s, n);
        }
        if n == traced.len() {
            break;
        }
    }
    if best.1 == traced.len() {
        let maps = traced.iter().filter(|q| q.0 == "map").count();
        r.pass(
            "viommu_req vs QEMU",
            format!(
                "{} requests ({maps} maps) = QEMU log lines {}..{} of {}",
                traced.len(),
                best.0 + 1,
                best.0 + traced.len(),
                qemu.len()
            ),
        );
    } else {
        let i = best.1;
        let q = qemu
            .get(best.0 + i)
            .map(show)
            .unwrap_or_else(|| "(end of log)".into());
        r.fail(
            "viommu_req vs QEMU",
            format!(
                "traced request #{} differs from QEMU's next line\n      traced: {}\n      qemu:   {q}",
                i + 1,
                show(&traced[i])
            ),
        );
    }
}

fn exerciser_pid(text: &str) -> Option<u32> {
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["type"] == "header")
        .and_then(|v| v["pid"].as_u64())
        .map(|p| p as u32)
}

/// The reserved regions of edu's group are reported at start (vfio-trace
/// reads sysfs, the kernel computes them, the probe reports them: before
/// the exerciser's first call), attributed to edu from its group in sysfs.
fn resv_at_start(events: &[Event], journal: &str, pid: Option<u32>, r: &mut ProbeReport) {
    let name = "reserved regions at start, attributed to edu";
    let Some(edu) = crate::lab::oracle::journal_edu(journal) else {
        return r.fail(name, "no edu in the exerciser's journal header".into());
    };
    let first_call = events
        .iter()
        .position(|e| Some(e.pid) == pid)
        .unwrap_or(events.len());
    let early: Vec<String> = events[..first_call]
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::ResvRegion(g) if g.device.to_string() == edu => Some(format!(
                "{:?} {:#x}-{:#x} (group {})",
                g.rtype, g.start, g.end, g.group
            )),
            _ => None,
        })
        .collect();
    if early.is_empty() {
        r.fail(
            name,
            format!("no resv_region of {edu} before the exerciser's first call"),
        );
    } else {
        r.pass(name, format!("{edu}: {}", early.join(", ")));
    }
}

/// Every MAP_DMA / UNMAP_DMA / SET_IRQS the exerciser made appears, in
/// order, from its pid, with the same arguments and errno.
fn exerciser_calls(events: &[Event], text: &str, pid: Option<u32>, r: &mut ProbeReport) {
    let mut traced = events.iter().filter(|e| Some(e.pid) == pid).filter(|e| {
        matches!(
            e.kind,
            EventKind::VfioMapDma(_) | EventKind::VfioUnmapDma(_) | EventKind::VfioSetIrqs(_)
        )
    });
    let mut problems = Vec::new();
    let mut n = 0;
    for v in text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
    {
        let Some(name) = v["ioctl"].as_str() else {
            continue;
        };
        if !matches!(
            name,
            "VFIO_IOMMU_MAP_DMA" | "VFIO_IOMMU_UNMAP_DMA" | "VFIO_DEVICE_SET_IRQS"
        ) {
            continue;
        }
        n += 1;
        let a = &v["args"];
        let u = |k: &str| a[k].as_u64().unwrap_or(u64::MAX);
        let errno = v["errno"].as_i64().unwrap_or(-1) as i32;
        let step = v["step"].as_str().unwrap_or("?");
        let Some(e) = traced.next() else {
            problems.push(format!("{step}: {name} not traced"));
            continue;
        };
        let ok = match (&e.kind, name) {
            (EventKind::VfioMapDma(m), "VFIO_IOMMU_MAP_DMA") => {
                (m.iova, m.vaddr, m.size, u64::from(m.flags), m.errno)
                    == (u("iova"), u("vaddr"), u("size"), u("flags"), errno)
            }
            (EventKind::VfioUnmapDma(m), "VFIO_IOMMU_UNMAP_DMA") => {
                let unmapped =
                    v["out"]["size"]
                        .as_u64()
                        .unwrap_or(if errno == 0 { u64::MAX } else { 0 });
                (m.iova, m.size, u64::from(m.flags), m.errno, m.unmapped)
                    == (u("iova"), u("size"), u("flags"), errno, unmapped)
            }
            (EventKind::VfioSetIrqs(s), "VFIO_DEVICE_SET_IRQS") => {
                let fds: Vec<i32> = a["eventfds"]
                    .as_array()
                    .map(|x| {
                        x.iter()
                            .filter_map(|f| f.as_i64())
                            .map(|f| f as i32)
                            .collect()
                    })
                    .unwrap_or_default();
                (
                    u64::from(s.index),
                    u64::from(s.start),
                    u64::from(s.count),
                    u64::from(s.flags),
                    &s.eventfds,
                    s.errno,
                ) == (u("index"), u("start"), u("count"), u("flags"), &fds, errno)
                    && !matches!(s.device, tracer_core::event::Device::Fd(_))
            }
            _ => false,
        };
        if !ok {
            problems.push(format!(
                "{step}: exerciser {name} {a} errno {errno}\n        traced {:?}",
                e.kind
            ));
        }
    }
    if let Some(extra) = traced.next() {
        problems.push(format!(
            "traced but not made by the exerciser: {:?}",
            extra.kind
        ));
    }
    r.check(
        "exerciser calls",
        problems,
        format!("{n} MAP/UNMAP/SET_IRQS calls match, PCI address resolved"),
    );
}

/// Pins and IOMMU maps made inside each MAP_DMA: those of the same thread
/// since its previous MAP_DMA (the kernel does them inside the ioctl).
struct MapDmaPages {
    iova: u64,
    vaddr: u64,
    size: u64,
    /// (vaddr, npages, pfn)
    pins: Vec<Run>,
    /// (iova, size, paddr)
    maps: Vec<Run>,
}

/// An address run: (start, length, target).
type Run = (u64, u64, u64);

fn map_dma_pages(events: &[Event], pid: Option<u32>) -> Vec<MapDmaPages> {
    let mut open: BTreeMap<u32, (Vec<Run>, Vec<Run>)> = BTreeMap::new();
    let mut out = Vec::new();
    for e in events.iter().filter(|e| pid.is_none_or(|p| e.pid == p)) {
        let slot = open.entry(e.tid).or_default();
        match &e.kind {
            EventKind::VfioPin(p) => slot.0.push((p.vaddr, p.npages, p.pfn)),
            EventKind::IommuMap(m) if m.errno == 0 => slot.1.push((m.iova, m.size, m.paddr)),
            EventKind::VfioMapDma(m) => {
                let (pins, maps) = std::mem::take(slot);
                if m.errno == 0 {
                    out.push(MapDmaPages {
                        iova: m.iova,
                        vaddr: m.vaddr,
                        size: m.size,
                        pins,
                        maps,
                    });
                }
            }
            _ => {}
        }
    }
    out
}

impl MapDmaPages {
    /// (HPA the pin gave, HPA the IOMMU map gave) for the page at `off`.
    fn page(&self, off: u64) -> (Option<u64>, Option<u64>) {
        let va = self.vaddr + off;
        let iova = self.iova + off;
        let pinned = self
            .pins
            .iter()
            .rev()
            .find(|(v, n, _)| va >= *v && va < v + n * 4096)
            .map(|(v, _, pfn)| (pfn << 12) + (va - v));
        let mapped = self
            .maps
            .iter()
            .rev()
            .find(|(i, s, _)| iova >= *i && iova < i + s)
            .map(|(i, _, pa)| pa + (iova - i));
        (pinned, mapped)
    }
}

/// Each page of each successful MAP_DMA was pinned (HVA → PFN) and mapped
/// in the IOMMU at the same physical address.
fn pages_pinned_and_mapped(events: &[Event], pid: Option<u32>, r: &mut ProbeReport) {
    let mut problems = Vec::new();
    let mut pages = 0;
    for m in map_dma_pages(events, pid) {
        for off in (0..m.size).step_by(4096) {
            pages += 1;
            match m.page(off) {
                (Some(h), Some(p)) if h == p => {}
                (h, p) => problems.push(format!(
                    "MAP_DMA iova {:#x} vaddr {:#x}: pinned {h:x?}, iommu_map {p:x?}",
                    m.iova + off,
                    m.vaddr + off
                )),
            }
        }
    }
    if pages == 0 {
        problems.push("no successful MAP_DMA traced".into());
    }
    r.check(
        "pin + iommu_map per page",
        problems,
        format!("{pages} pages: HVA→HPA pin = IOVA→HPA map"),
    );
}

/// Live KVM memslots of a VM (latest definition per slot).
fn memslots_at(events: &[Event], upto: usize, pid: u32) -> Vec<Run> {
    let mut slots: BTreeMap<(u64, u32), (u64, u64, u64)> = BTreeMap::new();
    for e in &events[..upto] {
        if let (EventKind::KvmMemslot(s), true) = (&e.kind, e.pid == pid) {
            if s.errno != 0 {
                continue;
            }
            if s.size == 0 {
                slots.remove(&(s.vm, s.slot));
            } else {
                slots.insert((s.vm, s.slot), (s.gpa, s.size, s.hva));
            }
        }
    }
    slots.into_values().collect()
}

/// How long one QEMU memory transaction may take to reach KVM (TCG is slow).
const TRANSACTION_NS: u64 = 200_000_000;

/// On the host, every MAP_DMA a VMM makes maps guest RAM: its HVA range
/// lies inside one of that VMM's KVM memslots.
fn memslots_explain_maps(events: &[Event], r: &mut ProbeReport) {
    let mut problems = Vec::new();
    let mut n = 0;
    for (i, e) in events.iter().enumerate() {
        let EventKind::VfioMapDma(m) = &e.kind else {
            continue;
        };
        if m.errno != 0 {
            continue;
        }
        n += 1;
        // QEMU's VFIO listener maps a region before KVM's listener commits
        // its memslot in the same memory transaction: slots defined just
        // after the MAP_DMA count too.
        let inside =
            |(_, size, hva): &(u64, u64, u64)| m.vaddr >= *hva && m.vaddr + m.size <= hva + size;
        let soon = events[i..]
            .iter()
            .take_while(|x| x.ts_ns <= e.ts_ns + TRANSACTION_NS)
            .filter(|x| x.pid == e.pid)
            .filter_map(|x| match &x.kind {
                EventKind::KvmMemslot(s) if s.errno == 0 && s.size > 0 => {
                    Some((s.gpa, s.size, s.hva))
                }
                _ => None,
            })
            .any(|s| inside(&s));
        if !soon && !memslots_at(events, i, e.pid).iter().any(inside) {
            problems.push(format!(
                "MAP_DMA iova {:#x} vaddr {:#x} size {:#x} ({}[{}]) is in no memslot",
                m.iova,
                m.vaddr,
                m.size,
                e.comm.as_str(),
                e.pid
            ));
        }
    }
    if n == 0 {
        problems.push("no successful MAP_DMA on the host".into());
    }
    r.check(
        "memslots explain MAP_DMA",
        problems,
        format!("{n} host MAP_DMAs inside KVM memslots"),
    );
}

/// For every page L2's exerciser mapped: L2 virtio-iommu MAP (IOVA → GPA)
/// → the inner QEMU's MAP_DMA on L1 with the same IOVA and HVA =
/// memslot(GPA) → L1 pinned that HVA at HPA → L1 iommu_map of the IOVA at
/// that HPA → L1's own virtio-iommu MAP of the IOVA at that HPA to the outer
/// QEMU. Addresses must agree at every hop.
fn nested_chain(l2: &[Event], l1: &[Event], r: &mut ProbeReport) {
    let guest_maps: Vec<_> = l2
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::ViommuReq(q) if q.op == ViommuOp::Map && q.status == 0 => Some(q),
            _ => None,
        })
        .collect();
    let host_maps = map_dma_pages(l1, None);
    let map_dma_index: Vec<(usize, &tracer_core::event::VfioMapDma, u32)> = l1
        .iter()
        .enumerate()
        .filter_map(|(i, e)| match &e.kind {
            EventKind::VfioMapDma(m) if m.errno == 0 => Some((i, m, e.pid)),
            _ => None,
        })
        .collect();
    let outer: Vec<_> = l1
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::ViommuReq(q) if q.op == ViommuOp::Map && q.status == 0 => Some(q),
            _ => None,
        })
        .collect();
    let mut problems = Vec::new();
    let mut pages = 0;
    let mut cursor = 0;
    for g in &guest_maps {
        let size = g.virt_end - g.virt_start + 1;
        // The VMM propagates guest maps in order, one MAP_DMA per guest map
        // or per page of it (QEMU's notifier splits a multi-page MAP).
        let mut last = None;
        for off in (0..size).step_by(4096) {
            pages += 1;
            let iova = g.virt_start + off;
            let gpa = g.phys_start + off;
            // A MAP_DMA inside the guest map holding this page (not, say,
            // QEMU's boot-time bypass map of all guest RAM at IOVA 0).
            let Some(k) = (cursor..map_dma_index.len()).find(|&k| {
                let m = map_dma_index[k].1;
                m.size > 0
                    && g.virt_start <= m.iova
                    && m.iova.saturating_add(m.size - 1) <= g.virt_end
                    && m.iova <= iova
                    && iova - m.iova < m.size
            }) else {
                problems.push(format!(
                    "guest MAP {:#x}-{:#x}: page {iova:#x} → GPA {gpa:#x}: no host MAP_DMA of that IOVA",
                    g.virt_start, g.virt_end
                ));
                continue;
            };
            last = Some(k);
            let (at, hm, pid) = map_dma_index[k];
            let hva = hm.vaddr + (iova - hm.iova);
            let slots = memslots_at(l1, at, pid);
            let want_hva = slots
                .iter()
                .find(|(sgpa, sz, _)| gpa >= *sgpa && gpa < sgpa + sz)
                .map(|(sgpa, _, shva)| shva + (gpa - sgpa));
            if want_hva != Some(hva) {
                problems.push(format!(
                    "IOVA {iova:#x}: guest GPA {gpa:#x} → memslot HVA {want_hva:x?}, host MAP_DMA HVA {hva:#x}"
                ));
                continue;
            }
            let Some(pages_of) = host_maps
                .iter()
                .find(|p| p.iova == hm.iova && p.vaddr == hm.vaddr && p.size == hm.size)
            else {
                problems.push(format!("IOVA {:#x}: host MAP_DMA without pages", hm.iova));
                continue;
            };
            let (pinned, mapped) = pages_of.page(iova - hm.iova);
            let Some(hpa) = pinned.filter(|h| Some(*h) == mapped) else {
                problems.push(format!(
                    "IOVA {iova:#x}: L1 pinned {pinned:x?}, L1 iommu_map {mapped:x?}"
                ));
                continue;
            };
            let outer_ok = outer.iter().any(|q| {
                iova >= q.virt_start
                    && iova <= q.virt_end
                    && q.phys_start + (iova - q.virt_start) == hpa
            });
            if !outer_ok {
                problems.push(format!(
                    "IOVA {iova:#x} → L1 HPA {hpa:#x}: no L1 virtio-iommu MAP of it to the outer QEMU"
                ));
            }
        }
        if let Some(k) = last {
            cursor = k + 1;
        }
    }
    if guest_maps.is_empty() {
        problems.push("no successful guest MAP".into());
    }
    r.check(
        "nested chain",
        problems,
        format!(
            "{} guest maps, {pages} pages: L2 IOVA→GPA→L1 HVA→HPA→outer virtio-iommu agree",
            guest_maps.len()
        ),
    );
}

fn msi_model(events: &[Event], msi: MsiModel, r: &mut ProbeReport) {
    let writes: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::MsiWrite(w) if w.address != 0 => Some(w),
            _ => None,
        })
        .collect();
    let doorbells: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::MsiDoorbellMap(d) => Some(d),
            _ => None,
        })
        .collect();
    let resv: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::ResvRegion(g) => Some(g),
            _ => None,
        })
        .collect();
    let mut problems = Vec::new();
    if writes.is_empty() {
        problems.push("no MSI message written".into());
    }
    match msi {
        MsiModel::Hardware => {
            for w in &writes {
                if !(0xfee0_0000..=0xfeef_ffff).contains(&w.address) {
                    problems.push(format!(
                        "{} vector {} programmed with {:#x}, outside the x86 MSI window",
                        w.device, w.vector, w.address
                    ));
                }
            }
            if !doorbells.is_empty() {
                problems.push(format!(
                    "{} doorbell mappings on a hardware-MSI machine",
                    doorbells.len()
                ));
            }
            if !resv
                .iter()
                .any(|g| g.rtype == ResvType::Msi && g.start == 0xfee0_0000)
            {
                problems.push("no reserved MSI region 0xfee00000 reported".into());
            }
        }
        MsiModel::Software => {
            let window = 0x800_0000..=0x80f_ffffu64;
            if doorbells.is_empty() {
                problems.push("no doorbell mapping".into());
            }
            for d in &doorbells {
                if !window.contains(&d.iova) {
                    problems.push(format!(
                        "doorbell iova {:#x} outside 0x8000000-0x80fffff",
                        d.iova
                    ));
                }
            }
            for w in &writes {
                let page = w.address & !0xfff;
                if !doorbells.iter().any(|d| d.iova == page) {
                    problems.push(format!(
                        "{} vector {} programmed with {:#x}: no doorbell mapped at that IOVA",
                        w.device, w.vector, w.address
                    ));
                }
            }
            if !resv.iter().any(|g| g.rtype == ResvType::SwMsi) {
                problems.push("no software-MSI reserved region reported".into());
            }
        }
    }
    r.check(
        "MSI model",
        problems,
        format!(
            "{} messages, {} doorbell maps ({msi:?})",
            writes.len(),
            doorbells.len()
        ),
    );
}

/// The kernel's per-vector mask state around every vector the exerciser
/// bound and unbound (`msi_vector` events of its pid): `request_irq()`
/// unmasks the vector (an `msi_mask` unmasked of the same device, index and
/// vector since the previous bind/unbind of it), `free_irq()` masks it (a
/// masked one before the unbind). MSI-X vectors of a real table entry must
/// say `can_mask` true; every mask event must have its flags resolved.
fn msi_masks(events: &[Event], pid: Option<u32>, r: &mut ProbeReport) {
    use tracer_core::event::{MsiMask, MsiVector};
    let mut problems = Vec::new();
    // (device, index, vector) → mask events since the last msi_vector of it.
    let mut since: BTreeMap<(String, u32, u32), Vec<&MsiMask>> = BTreeMap::new();
    let (mut binds, mut unbinds, mut masks) = (0, 0, 0);
    let mut seen: Vec<String> = Vec::new();
    let mut bound = std::collections::BTreeSet::new();
    for e in events {
        match &e.kind {
            EventKind::MsiMask(m) => {
                masks += 1;
                if m.can_mask.is_none() {
                    problems.push(format!(
                        "{} vector {}: can_mask not read (BTF bit offsets unresolved?)",
                        m.device, m.vector
                    ));
                }
                if m.index == 2 && !m.is_virtual && m.can_mask == Some(false) {
                    problems.push(format!(
                        "{} MSI-X entry {}: can_mask false for a real table entry",
                        m.device, m.vector
                    ));
                }
                since
                    .entry((m.device.to_string(), m.index, m.vector))
                    .or_default()
                    .push(m);
            }
            EventKind::MsiVector(v @ MsiVector { .. }) if Some(e.pid) == pid => {
                let key = (v.device.to_string(), v.index, v.vector);
                let got = since.remove(&key).unwrap_or_default();
                let last = got.last();
                let what = format!(
                    "{} index {} vector {} {}",
                    v.device,
                    v.index,
                    v.vector,
                    if v.enabled { "bind" } else { "unbind" }
                );
                if v.enabled {
                    bound.insert(key);
                    binds += 1;
                    match last {
                        Some(m) if !m.masked => {}
                        _ => problems.push(format!("{what}: no unmask before it ({got:?})")),
                    }
                } else if bound.remove(&key) {
                    unbinds += 1;
                    // An unbind of a vector that was never bound needs no mask.
                    if !got.iter().any(|m| m.masked) {
                        problems.push(format!("{what}: no mask before it ({got:?})"));
                    }
                }
                if let Some(m) = last {
                    let s = format!(
                        "{} {} v{} can_mask={:?}",
                        m.device,
                        if m.index == 2 { "MSI-X" } else { "MSI" },
                        m.vector,
                        m.can_mask
                    );
                    if !seen.contains(&s) {
                        seen.push(s);
                    }
                }
            }
            _ => {}
        }
    }
    if binds == 0 {
        problems.push("the exerciser bound no vector".into());
    }
    r.check(
        "MSI mask state",
        problems,
        format!(
            "{masks} mask/unmask events; {binds} binds each after an unmask, {unbinds} unbinds \
             after a mask; {}",
            seen.join(", ")
        ),
    );
}
