//! Golden outputs of the engine on every recording in the repository: the
//! `check` JSON report (what `vfio-trace check --format json` prints) and
//! the engine's own findings (ids, evidence, `at`, order) and pairings.
//! Regenerate with `VFIO_TRACE_BLESS=1 cargo test -p tracer-core --test
//! engine_golden` only when a change of behaviour is intended.

use std::path::{Path, PathBuf};

use tracer_core::check::{self, CheckOptions};
use tracer_core::engine::{Engine, EngineConfig};
use tracer_core::event::{Event, NodeInfo};
use tracer_core::tracefile::{align::align_nodes, aligned_ns, ReadMode, Timeline};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// Reads and merges the files as `check` does (clock alignment included).
fn load(paths: &[PathBuf]) -> (Vec<Event>, Vec<NodeInfo>) {
    let mut t = Timeline::open(paths, ReadMode::Strict).expect("open");
    let mut events = Vec::new();
    for e in t.by_ref() {
        events.push(e.expect("read"));
    }
    let mut nodes = t.nodes().to_vec();
    if !align_nodes(&events, &mut nodes).is_empty() {
        events.sort_by_key(|e| aligned_ns(e, &nodes));
    }
    (events, nodes)
}

fn render(events: &[Event], nodes: &[NodeInfo]) -> String {
    let report = check::run(events, nodes, &CheckOptions::default());
    let mut out = report.to_json();
    out.push('\n');
    let mut engine = Engine::new(nodes.to_vec(), EngineConfig::default());
    engine.apply_all(events);
    for f in engine.findings() {
        out.push_str(&format!("{f:?}\n"));
    }
    for p in engine.pairings() {
        out.push_str(&format!("{p:?}\n"));
    }
    out.push_str(&format!(
        "suppressed {} probes {:?} drops {:?}\n",
        engine.suppressed(),
        engine.health().probes,
        engine.health().drops
    ));
    out
}

fn golden(name: &str, files: &[&str]) {
    let paths: Vec<PathBuf> = files.iter().map(|f| root().join(f)).collect();
    let (events, nodes) = load(&paths);
    let got = render(&events, &nodes);
    let path = root().join("tests/fixtures/engine-golden").join(name);
    if std::env::var_os("VFIO_TRACE_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).expect("golden file (bless it first)");
    assert!(want == got, "{name} differs from its golden file:\n{got}");
}

#[test]
fn examples_nested() {
    golden(
        "examples-nested.txt",
        &[
            "../examples/nested-l1-host.vtrace",
            "../examples/nested-l2-guest.vtrace",
        ],
    );
}

#[test]
fn examples_each() {
    golden("examples-l1.txt", &["../examples/nested-l1-host.vtrace"]);
    golden("examples-l2.txt", &["../examples/nested-l2-guest.vtrace"]);
}

#[test]
fn lab_fixtures() {
    for f in ["arm64-swmsi", "x86", "nested-l1", "nested-l2"] {
        golden(
            &format!("lab-{f}.txt"),
            &[&format!("tests/fixtures/lab/{f}.vft")],
        );
    }
    golden(
        "lab-nested.txt",
        &[
            "tests/fixtures/lab/nested-l1.vft",
            "tests/fixtures/lab/nested-l2.vft",
        ],
    );
}

/// A random stream over small pools of values (so that mappings overlap,
/// windows collide, vectors are bound and torn down, guest requests meet
/// host calls): every rule fires on some of these seeds.
fn random_stream(seed: u64, n: usize) -> Vec<Event> {
    use tracer_core::event::*;
    use tracer_core::tracefile::synth::{all_kinds, Rng};
    // Guest MAPs and host MAP_DMAs more often than the rest, so that the
    // join pairs them.
    // The kinds these streams were generated from (kinds added later
    // would change every stream).
    let mut templates: Vec<Event> = all_kinds()
        .into_iter()
        // stream_gap (20) and every kind after it are not templates.
        .filter(|e| e.kind.id() < 20)
        .collect();
    let extra: Vec<Event> = templates
        .iter()
        .filter(|e| matches!(&e.kind, EventKind::ViommuReq(_) | EventKind::VfioMapDma(_)))
        .cloned()
        .collect();
    for _ in 0..3 {
        templates.extend(extra.iter().cloned());
    }
    let mut rng = Rng::new(seed);
    let mut r = |n: u64| rng.below(n);
    let mut out = Vec::with_capacity(n);
    let mut ts = 1_000_000u64;
    for _ in 0..n {
        let pick =
            |pool: &[u64], r: &mut dyn FnMut(u64) -> u64| pool[r(pool.len() as u64) as usize];
        let bases = [
            0x4000_0000,
            0x800_0000,
            0xfee0_0000,
            0xff_ffff_f000,
            0x4000_0000,
        ];
        let base = pick(&bases, &mut r);
        let iova = base + r(8) * 0x1000;
        let size = pick(&[0x1000, 0x1000, 0x2000, 0x10_0000, 0, 0x800], &mut r);
        let errno = pick(&[0, 0, 0, 0, 0, 17, 22, 12], &mut r) as i32;
        let pid = 4242 + r(2) as u32;
        let container = fd_handle(pid, 17 + r(2) as u32);
        let domain = 0xd1 + r(2);
        let hva = 0x7f00_0000_0000 + r(16) * 0x1000;
        let device = if r(2) == 0 {
            Device::Pci {
                seg: 0,
                bus: 1,
                dev: 0,
                func: 0,
            }
        } else {
            Device::from_rid(0, 8)
        };
        let mut e = templates[r(templates.len() as u64) as usize].clone();
        e.node = match &e.kind {
            EventKind::ViommuReq(_) => 1,
            _ => u16::from(r(8) == 0),
        };
        e.pid = pid;
        e.tid = pid + r(2) as u32;
        ts += r(10_000_000);
        e.ts_ns = ts;
        match &mut e.kind {
            EventKind::VfioMapDma(m) => {
                (m.container, m.iova, m.size, m.vaddr, m.errno) =
                    (container, iova, size, hva, errno)
            }
            EventKind::VfioUnmapDma(u) => {
                (u.container, u.iova, u.size, u.errno) = (container, iova, size, errno);
                u.unmapped = if r(3) == 0 { size / 2 } else { size };
                u.flags = if r(10) == 0 { 2 } else { 0 };
            }
            EventKind::VfioIommuInfo(i) => {
                i.container = container;
                i.errno = errno;
                i.iova_pgsizes = pick(&[0x1000, 0x20_0000, 0x4000], &mut r);
                i.iova_ranges = vec![Range {
                    start: 0,
                    end: pick(&[0xfedf_ffff, 0xff_ffff_ffff, u64::MAX], &mut r),
                }];
            }
            EventKind::VfioSetIommu(s) => (s.container, s.errno) = (container, errno),
            EventKind::VfioPin(p) => {
                (p.vaddr, p.npages, p.pfn) = (hva, 1 + r(3), 0x1000 + r(4));
            }
            EventKind::IommuMap(m) => {
                (m.domain, m.iova, m.size, m.errno) = (domain, iova, size, errno);
                m.paddr = (0x1000 + r(4)) << 12;
                m.prot = pick(&[3, 0x13, 1], &mut r) as u32;
            }
            EventKind::IommuUnmap(u) => {
                (u.domain, u.iova, u.size) = (domain, iova, size);
                u.unmapped = if r(3) == 0 { size / 2 } else { size };
            }
            EventKind::ViommuReq(q) => {
                q.op = match r(6) {
                    0 => ViommuOp::Attach,
                    1 => ViommuOp::Detach,
                    2 => ViommuOp::Probe,
                    3 => ViommuOp::Unmap,
                    _ => ViommuOp::Map,
                };
                q.domain = 1 + r(2) as u32;
                q.endpoint = pick(&[8, 16], &mut r) as u32;
                q.virt_start = iova;
                q.virt_end = iova.wrapping_add(size).wrapping_sub(1);
                q.phys_start = iova + 0x1_0000_0000;
                q.flags = pick(&[3, 7, 0, 1], &mut r) as u32;
                q.status = pick(&[0, 0, 0, 3], &mut r) as u8;
                q.resv = vec![ResvMem {
                    subtype: r(2) as u8,
                    start: pick(&[0x800_0000, 0xfee0_0000], &mut r),
                    end: pick(&[0x80f_ffff, 0xfeef_ffff], &mut r),
                }];
            }
            EventKind::ResvRegion(g) => {
                g.device = device;
                g.group = r(2) as u32;
                g.start = pick(&[0x800_0000, 0xfee0_0000], &mut r);
                g.end = g.start + 0xf_ffff;
                g.rtype = match r(4) {
                    0 => ResvType::Msi,
                    1 => ResvType::SwMsi,
                    2 => ResvType::Reserved,
                    _ => ResvType::DirectRelaxable,
                };
            }
            EventKind::VfioSetIrqs(s) => {
                s.device = device;
                s.index = 1 + r(2) as u32;
                s.start = r(2) as u32;
                s.count = r(4) as u32;
                s.flags = 0x20 | pick(&[1, 2, 4, 4], &mut r) as u32;
                s.eventfds = (0..s.count).map(|_| r(4) as i32 - 1).collect();
                s.errno = errno;
            }
            EventKind::MsiVector(v) => {
                v.device = device;
                v.index = 1 + r(2) as u32;
                v.vector = r(3) as u32;
                v.eventfd = r(4) as i32 - 1;
                v.enabled = r(3) != 0;
            }
            EventKind::MsiWrite(w) => {
                w.device = device;
                w.vector = r(3) as u32;
                w.address = pick(&[0, 0xfee0_0000, 0x800_0000, iova], &mut r);
                w.data = if w.address == 0 && r(2) == 0 { 0 } else { 0x41 };
            }
            EventKind::MsiMask(m) => {
                m.device = device;
                m.index = r(3) as u32;
                m.vector = r(3) as u32;
                m.masked = r(2) == 0;
                m.can_mask = [None, Some(true), Some(true), Some(false)][r(4) as usize];
            }
            EventKind::MsiDoorbellMap(d) => {
                d.device = device;
                d.domain = domain;
                d.iova = pick(&[0x800_0000, 0x800_1000], &mut r);
                d.doorbell_paddr = pick(&[0x900_0000, 0x800_0000], &mut r);
            }
            EventKind::MsiCookie(c) => {
                c.domain = domain;
                c.base = pick(&[0x800_0000, 0x4000_0000], &mut r);
            }
            EventKind::KvmMemslot(m) => {
                m.vm = fd_handle(pid, 9);
                m.slot = r(3) as u32;
                m.gpa = pick(&[0, 0x800_0000, 0x1_0000_0000], &mut r);
                m.size = pick(&[0x1000_0000, 0x10_0000], &mut r);
                m.hva = hva;
                m.errno = errno;
            }
            EventKind::IoasMap(m) => {
                (m.iommufd, m.iova, m.length, m.user_va, m.errno) =
                    (container, iova, size, hva, errno);
                m.ioas = 1 + r(2) as u32;
            }
            EventKind::IoasUnmap(u) => {
                (u.iommufd, u.iova, u.length, u.errno) = (container, iova, size, errno);
                u.ioas = 1 + r(2) as u32;
                u.unmapped = if r(3) == 0 { size / 2 } else { size };
            }
            EventKind::Drops(d) => {
                d.undecodable = r(3);
            }
            EventKind::ProbeStatus(p) => {
                p.hits += r(100);
            }
            _ => unreachable!("not a template"),
        }
        out.push(e);
    }
    out
}

#[test]
fn random_streams() {
    use tracer_core::tracefile::synth::sample_nodes;
    // One clock for both nodes, so that guest MAPs meet host MAP_DMAs.
    let mut nodes = sample_nodes();
    nodes[1].clock_offset_ns = nodes[0].clock_offset_ns;
    // The outputs are large: the golden file keeps each seed's finding
    // count per rule and a hash of its whole output.
    let mut got = String::new();
    for seed in 1..=16 {
        let events = random_stream(seed, 4000);
        let out = render(&events, &nodes);
        let mut rules: std::collections::BTreeMap<&str, usize> = Default::default();
        for l in out
            .lines()
            .filter_map(|l| l.strip_prefix("Finding { rule: "))
        {
            *rules.entry(l.split(',').next().unwrap_or("")).or_default() += 1;
        }
        let pairings = out.lines().filter(|l| l.starts_with("Pairing {")).count();
        got.push_str(&format!(
            "seed {seed}: {:016x} pairings {pairings} {rules:?}\n",
            fnv1a(out.as_bytes())
        ));
    }
    let path = root().join("tests/fixtures/engine-golden/random.txt");
    if std::env::var_os("VFIO_TRACE_BLESS").is_some() {
        std::fs::write(&path, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).expect("golden file (bless it first)");
    assert!(
        want == got,
        "random streams differ from their golden file:\n{got}"
    );
}

fn fnv1a(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325, |h, &x| {
        (h ^ u64::from(x)).wrapping_mul(0x0100_0000_01b3)
    })
}
