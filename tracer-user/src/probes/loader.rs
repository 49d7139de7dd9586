//! Loads the embedded eBPF object with kernel struct offsets resolved from
//! BTF, attaches what the table lists, attaches module probes when their
//! module appears, and reads the per-CPU health counters.

use std::path::Path;

use anyhow::{bail, Context, Result};
use aya::{
    maps::{Array, MapData, PerCpuArray, RingBuf},
    programs::{FExit, KProbe, TracePoint},
    Ebpf, EbpfLoader,
};
use tracer_common::{drop_reason, probe::MAX_PROBES};
use tracer_core::engine::rules::needs::WAITING_FOR_MODULE;
use tracer_core::event::{Drops, ProbeState, ProbeStatus};

use super::{
    btf,
    table::{
        self, Attach, ProbeSpec, MAP_DROPS, MAP_EVENTS, MAP_HITS, MAP_MOD_OFFSETS, MODULE_OFFSETS,
        TARGET_TGID, VMLINUX_BITS, VMLINUX_ENUMS, VMLINUX_OFFSETS,
    },
};

static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tracer.bpf.o"));

#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// Trace only this process.
    pub target_pid: Option<u32>,
    /// Probes the user named (`--probe`): failing to attach one is fatal.
    pub named: Vec<String>,
}

/// One probe's state.
struct Slot {
    spec: &'static ProbeSpec,
    state: ProbeState,
    reason: String,
    /// Waiting for `spec.module` to load.
    waiting: bool,
    /// Attached through the spec's fexit program rather than its kprobe.
    via_fexit: bool,
}

/// The loaded object and the state of every probe. Dropping it detaches
/// every program and frees every map.
pub struct Probes {
    ebpf: Ebpf,
    slots: Vec<Slot>,
    named: Vec<String>,
    /// vmlinux BTF, kept to resolve module BTF when modules appear.
    vmlinux_btf: Option<btf_rs::Btf>,
    modules_ready: Vec<&'static str>,
    /// vmlinux BTF as aya reads it (for fexit targets), parsed on first use.
    fexit_btf: Option<Result<aya::Btf, String>>,
    /// Outcome of each fexit program tried (an entry/return pair shares one).
    fexits: Vec<(&'static str, Result<(), String>)>,
}

impl Probes {
    pub fn load(opts: &LoadOptions) -> Result<Self> {
        for n in &opts.named {
            if table::by_name(n).is_none() {
                let known: Vec<_> = table::all().map(|p| p.name).collect();
                bail!("unknown probe {n:?}; known probes: {}", known.join(", "));
            }
        }
        raise_memlock_limit();
        if let Err(e) = super::tracefs::ensure_mounted() {
            log::warn!("{e}");
        }
        let target = opts.target_pid.unwrap_or(0);
        let vmlinux_btf = match btf::vmlinux() {
            Ok(b) => Some(b),
            Err(e) => {
                log::warn!("no kernel BTF ({e:#}): kernel-function probes will read nothing");
                None
            }
        };
        // Offsets are resolved before the loader borrows them.
        let mut values: Vec<(&str, u32)> = Vec::new();
        if let Some(b) = &vmlinux_btf {
            for (global, st, path) in VMLINUX_OFFSETS {
                match btf::offset(b, st, path) {
                    Ok(v) => values.push((global, v)),
                    Err(e) => log::warn!("BTF: {e:#} ({global} left unresolved)"),
                }
            }
            for (global, st, path) in VMLINUX_BITS {
                match btf::bit_offset(b, st, path) {
                    Ok(v) => values.push((global, v)),
                    Err(e) => log::warn!("BTF: {e:#} ({global} left unresolved)"),
                }
            }
            for (global, item) in VMLINUX_ENUMS {
                match btf::enum_value(b, "iommu_resv_type", item) {
                    Ok(v) => values.push((global, v)),
                    Err(e) => log::warn!("BTF: {e:#}"),
                }
            }
        }
        let mut loader = EbpfLoader::new();
        loader.override_global(TARGET_TGID, &target, true);
        for (global, v) in &values {
            loader.override_global(global, v, true);
        }
        let ebpf = loader
            .load(OBJECT)
            .context("loading the eBPF object (are you root, with CAP_BPF and CAP_PERFMON?)")?;

        let mut probes = Probes {
            ebpf,
            slots: table::all()
                .map(|spec| Slot {
                    spec,
                    state: ProbeState::Detached,
                    reason: String::new(),
                    waiting: false,
                    via_fexit: false,
                })
                .collect(),
            named: opts.named.clone(),
            vmlinux_btf,
            modules_ready: Vec::new(),
            fexit_btf: None,
            fexits: Vec::new(),
        };
        probes.clear_module_offsets()?;
        for i in 0..probes.slots.len() {
            probes.try_attach(i);
            let slot = &probes.slots[i];
            if slot.state != ProbeState::Attached && !slot.waiting && probes.must(slot.spec) {
                bail!(
                    "required probe {} ({}) could not attach: {}",
                    slot.spec.name,
                    slot.spec.attach.describe(),
                    slot.reason
                );
            }
        }
        Ok(probes)
    }

    fn must(&self, spec: &ProbeSpec) -> bool {
        spec.required || self.named.iter().any(|n| n == spec.name)
    }

    /// Attaches probes whose module has appeared since. Returns whether any
    /// probe changed state (callers then re-emit statuses).
    pub fn poll_modules(&mut self) -> bool {
        let mut changed = false;
        for i in 0..self.slots.len() {
            if self.slots[i].waiting
                && self.slots[i]
                    .spec
                    .module
                    .is_some_and(|m| Path::new("/sys/module").join(m).exists())
            {
                self.try_attach(i);
                changed = true;
            }
        }
        changed
    }

    fn try_attach(&mut self, i: usize) {
        let spec = self.slots[i].spec;
        // Verify the program now, even if it can attach only later.
        if let Err(e) = load_program(&mut self.ebpf, spec) {
            let s = &mut self.slots[i];
            s.state = ProbeState::Failed;
            s.reason = format!("{e:#}");
            s.waiting = false;
            return;
        }
        if let Some(m) = spec.module {
            if !Path::new("/sys/module").join(m).exists() {
                let s = &mut self.slots[i];
                s.state = ProbeState::MissingSymbol;
                s.reason = format!("module {m} {WAITING_FOR_MODULE}");
                s.waiting = true;
                return;
            }
            if let Err(e) = self.resolve_module_offsets(m) {
                let s = &mut self.slots[i];
                s.state = ProbeState::Failed;
                s.reason = format!("{e:#}");
                s.waiting = false;
                return;
            }
        }
        // The fexit form first: one trampoline program instead of a kprobe
        // (and for a pair, no kretprobe and no hash map pairing).
        let mut fexit_failed = None;
        if let (Some(program), Some(function)) = (spec.fexit, spec.function()) {
            match self.attach_fexit(program, function) {
                Ok(()) => {
                    let s = &mut self.slots[i];
                    s.state = ProbeState::Attached;
                    s.reason = String::new();
                    s.waiting = false;
                    s.via_fexit = true;
                    return;
                }
                Err(e) => {
                    log::info!(
                        "probe {}: fexit:{function} not used ({e}); kprobes instead",
                        spec.name
                    );
                    fexit_failed = Some(e);
                }
            }
        }
        let (state, mut reason) = match attach(&mut self.ebpf, spec) {
            Ok(()) => (ProbeState::Attached, String::new()),
            Err(e) => classify(spec, &e),
        };
        if let (Some(e), false) = (fexit_failed, reason.is_empty()) {
            reason = format!("{reason}; fexit: {e}");
        }
        if state != ProbeState::Attached {
            log::info!(
                "probe {} ({}) skipped: {reason}",
                spec.name,
                spec.attach.describe()
            );
        }
        let s = &mut self.slots[i];
        s.state = state;
        s.reason = reason;
        s.waiting = false;
    }

    /// Loads and attaches fexit `program` on kernel `function` (once: a pair
    /// of probes shares the program and its outcome).
    fn attach_fexit(&mut self, program: &'static str, function: &str) -> Result<(), String> {
        if let Some((_, r)) = self.fexits.iter().find(|(p, _)| *p == program) {
            return r.clone();
        }
        let btf = self
            .fexit_btf
            .get_or_insert_with(|| aya::Btf::from_sys_fs().map_err(|e| format!("kernel BTF: {e}")));
        let r = match btf {
            Err(e) => Err(e.clone()),
            Ok(btf) => (|| -> Result<()> {
                let prog: &mut FExit = self
                    .ebpf
                    .program_mut(program)
                    .with_context(|| format!("program {program} not in the eBPF object"))?
                    .try_into()?;
                prog.load(function, btf).context("load")?;
                prog.attach().context("attach")?;
                Ok(())
            })()
            .map_err(|e| format!("{e:#}")),
        };
        self.fexits.push((program, r.clone()));
        r
    }

    /// Marks every module offset unresolved.
    fn clear_module_offsets(&mut self) -> Result<()> {
        let mut arr: Array<_, u32> = Array::try_from(
            self.ebpf
                .map_mut(MAP_MOD_OFFSETS)
                .context("MOD_OFFSETS map missing")?,
        )?;
        for i in 0..tracer_common::kprobe::mod_offset::COUNT {
            arr.set(i, u32::MAX, 0)?;
        }
        Ok(())
    }

    /// Fills `MOD_OFFSETS` from module `m`'s BTF (once per module).
    fn resolve_module_offsets(&mut self, m: &'static str) -> Result<()> {
        if self.modules_ready.contains(&m) {
            return Ok(());
        }
        let Some(table) = MODULE_OFFSETS.iter().find(|t| t.module == m) else {
            self.modules_ready.push(m);
            return Ok(());
        };
        let base = self
            .vmlinux_btf
            .as_ref()
            .context("no kernel BTF: cannot resolve module struct offsets")?;
        let mbtf = btf::module(base, m)?;
        let mut arr: Array<_, u32> = Array::try_from(
            self.ebpf
                .map_mut(MAP_MOD_OFFSETS)
                .context("MOD_OFFSETS map missing")?,
        )?;
        for (idx, st, path) in table.fields {
            let off = btf::offset(&mbtf, st, path).with_context(|| format!("module {m} BTF"))?;
            arr.set(*idx, off, 0)?;
        }
        self.modules_ready.push(m);
        Ok(())
    }

    /// Every probe with its status and hits so far.
    pub fn statuses(&self) -> Vec<ProbeStatus> {
        let hits = self.hits();
        self.slots
            .iter()
            .map(|s| ProbeStatus {
                probe: s.spec.name.to_string(),
                attach: match (s.via_fexit, s.spec.function()) {
                    (true, Some(f)) => format!("fexit:{f}"),
                    _ => s.spec.attach.describe(),
                },
                status: s.state,
                required: s.spec.required,
                reason: s.reason.clone(),
                hits: hits.get(usize::from(s.spec.id)).copied().unwrap_or(0),
            })
            .collect()
    }

    /// Per-probe run counts, summed over CPUs, indexed by probe id.
    pub fn hits(&self) -> Vec<u64> {
        sum_per_cpu(&self.ebpf, MAP_HITS, MAX_PROBES)
    }

    /// Kernel-side loss counters (the user side adds `undecodable`).
    pub fn drops(&self) -> Drops {
        let d = sum_per_cpu(&self.ebpf, MAP_DROPS, drop_reason::COUNT);
        let at = |i: u32| d.get(i as usize).copied().unwrap_or(0);
        Drops {
            ring_full: at(drop_reason::RING_FULL),
            pending_full: at(drop_reason::PENDING_FULL),
            read_failed: at(drop_reason::READ_FAILED),
            undecodable: 0,
        }
    }

    /// The events ring. Can be taken once.
    pub fn take_ring(&mut self) -> Result<RingBuf<MapData>> {
        let map = self
            .ebpf
            .take_map(MAP_EVENTS)
            .context("EVENTS map missing")?;
        Ok(RingBuf::try_from(map)?)
    }
}

/// Loads (verifies) a probe's program once.
fn load_program(ebpf: &mut Ebpf, spec: &ProbeSpec) -> Result<()> {
    let prog = ebpf
        .program_mut(spec.program)
        .with_context(|| format!("program {} not in the eBPF object", spec.program))?;
    if prog.fd().is_ok() {
        return Ok(());
    }
    let r = match spec.attach {
        Attach::Tracepoint { .. } => <&mut TracePoint>::try_from(prog)?.load(),
        Attach::Kprobe { .. } | Attach::Kretprobe { .. } => <&mut KProbe>::try_from(prog)?.load(),
    };
    r.with_context(|| format!("load: the kernel refused program {}", spec.program))
}

fn attach(ebpf: &mut Ebpf, spec: &ProbeSpec) -> Result<()> {
    let prog = ebpf
        .program_mut(spec.program)
        .with_context(|| format!("program {} not in the eBPF object", spec.program))?;
    match spec.attach {
        Attach::Tracepoint { category, name } => {
            let tp: &mut TracePoint = prog.try_into()?;
            tp.attach(category, name).context("attach")?;
        }
        Attach::Kprobe { function } | Attach::Kretprobe { function } => {
            let kp: &mut KProbe = prog.try_into()?;
            kp.attach(function, 0).context("attach")?;
        }
    }
    Ok(())
}

/// Sorts an attach failure into the states users see.
fn classify(spec: &ProbeSpec, e: &anyhow::Error) -> (ProbeState, String) {
    let text = format!("{e:#}");
    if text.starts_with("load:") {
        // The verifier (or the kernel) refused the program itself.
        return (ProbeState::Failed, text);
    }
    let kprobe = matches!(
        spec.attach,
        Attach::Kprobe { .. } | Attach::Kretprobe { .. }
    );
    if kprobe && !Path::new("/sys/bus/event_source/devices/kprobe").exists() {
        return (
            ProbeState::Unsupported,
            "this kernel has no kprobes (CONFIG_KPROBES off)".into(),
        );
    }
    let errno = e.chain().find_map(|c| {
        c.downcast_ref::<std::io::Error>()
            .and_then(|io| io.raw_os_error())
    });
    let state = match errno {
        Some(libc::ENOENT) => ProbeState::MissingSymbol,
        // A kprobe on a function that was inlined away or is notrace.
        Some(libc::EINVAL) if kprobe => ProbeState::MissingSymbol,
        Some(libc::EOPNOTSUPP) | Some(libc::EPERM) | Some(libc::EINVAL) => ProbeState::Unsupported,
        _ if text.contains("No such file") || text.contains("not found") => {
            ProbeState::MissingSymbol
        }
        _ => ProbeState::Failed,
    };
    match (state, spec.absent_means) {
        (ProbeState::MissingSymbol, Some(why)) => (state, format!("{text} — {why}")),
        _ => (state, text),
    }
}

fn sum_per_cpu(ebpf: &Ebpf, name: &str, len: u32) -> Vec<u64> {
    let Some(map) = ebpf.map(name) else {
        return vec![0; len as usize];
    };
    let Ok(arr) = PerCpuArray::<_, u64>::try_from(map) else {
        return vec![0; len as usize];
    };
    (0..len)
        .map(|i| {
            arr.get(&i, 0)
                .map(|per_cpu| per_cpu.iter().sum())
                .unwrap_or(0)
        })
        .collect()
}

/// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK.
fn raise_memlock_limit() {
    let rlim = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: plain syscall with a valid pointer.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &rlim) } != 0 {
        log::debug!(
            "could not raise RLIMIT_MEMLOCK: {}",
            std::io::Error::last_os_error()
        );
    }
}
