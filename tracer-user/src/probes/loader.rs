//! Loads the embedded eBPF object, attaches what the table lists, and reads
//! the per-CPU health counters.

use anyhow::{bail, Context, Result};
use aya::{
    maps::{MapData, PerCpuArray, RingBuf},
    programs::TracePoint,
    Ebpf, EbpfLoader,
};
use tracer_common::{drop_reason, probe::MAX_PROBES};
use tracer_core::event::{Drops, ProbeState, ProbeStatus};

use super::table::{self, Attach, ProbeSpec, PROBES};

static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tracer.bpf.o"));

#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// Trace only this process.
    pub target_pid: Option<u32>,
    /// Probes the user named (`--probe`): failing to attach one is fatal.
    pub named: Vec<String>,
}

/// The loaded object and the outcome of every attach. Dropping it detaches
/// every program and frees every map.
pub struct Probes {
    ebpf: Ebpf,
    attached: Vec<(&'static ProbeSpec, ProbeState, String)>,
}

impl Probes {
    pub fn load(opts: &LoadOptions) -> Result<Self> {
        for n in &opts.named {
            if table::by_name(n).is_none() {
                let known: Vec<_> = PROBES.iter().map(|p| p.name).collect();
                bail!("unknown probe {n:?}; known probes: {}", known.join(", "));
            }
        }
        raise_memlock_limit();
        if let Err(e) = super::tracefs::ensure_mounted() {
            log::warn!("{e}");
        }
        let target = opts.target_pid.unwrap_or(0);
        let mut ebpf = EbpfLoader::new()
            .override_global("TARGET_TGID", &target, true)
            .load(OBJECT)
            .context("loading the eBPF object (are you root, with CAP_BPF and CAP_PERFMON?)")?;

        let mut attached = Vec::new();
        for spec in PROBES {
            let (state, reason) = match attach(&mut ebpf, spec) {
                Ok(()) => (ProbeState::Attached, String::new()),
                Err(e) => classify(&e),
            };
            let must = spec.required || opts.named.iter().any(|n| n == spec.name);
            if state != ProbeState::Attached {
                if must {
                    bail!(
                        "required probe {} ({}) could not attach: {reason}",
                        spec.name,
                        spec.attach.describe()
                    );
                }
                log::warn!("probe {} skipped: {reason}", spec.name);
            }
            attached.push((spec, state, reason));
        }
        Ok(Probes { ebpf, attached })
    }

    /// Every probe with its status and hits so far.
    pub fn statuses(&self) -> Vec<ProbeStatus> {
        let hits = self.hits();
        self.attached
            .iter()
            .map(|(spec, state, reason)| ProbeStatus {
                probe: spec.name.to_string(),
                attach: spec.attach.describe(),
                status: *state,
                required: spec.required,
                reason: reason.clone(),
                hits: hits.get(usize::from(spec.id)).copied().unwrap_or(0),
            })
            .collect()
    }

    /// Per-probe run counts, summed over CPUs, indexed by probe id.
    pub fn hits(&self) -> Vec<u64> {
        sum_per_cpu(&self.ebpf, "HITS", MAX_PROBES)
    }

    /// Kernel-side loss counters (the user side adds `undecodable`).
    pub fn drops(&self) -> Drops {
        let d = sum_per_cpu(&self.ebpf, "DROPS", drop_reason::COUNT);
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
        let map = self.ebpf.take_map("EVENTS").context("EVENTS map missing")?;
        Ok(RingBuf::try_from(map)?)
    }
}

fn attach(ebpf: &mut Ebpf, spec: &ProbeSpec) -> Result<()> {
    let prog = ebpf
        .program_mut(spec.program)
        .with_context(|| format!("program {} not in the eBPF object", spec.program))?;
    match spec.attach {
        Attach::Tracepoint { category, name } => {
            let tp: &mut TracePoint = prog.try_into()?;
            tp.load().context("load")?;
            tp.attach(category, name).context("attach")?;
        }
    }
    Ok(())
}

/// Sorts an attach failure into the states users see.
fn classify(e: &anyhow::Error) -> (ProbeState, String) {
    let text = format!("{e:#}");
    let errno = e.chain().find_map(|c| {
        c.downcast_ref::<std::io::Error>()
            .and_then(|io| io.raw_os_error())
    });
    let state = match errno {
        Some(libc::ENOENT) => ProbeState::MissingSymbol,
        Some(libc::EOPNOTSUPP) | Some(libc::EPERM) | Some(libc::EINVAL) => ProbeState::Unsupported,
        _ if text.contains("No such file") || text.contains("not found") => {
            ProbeState::MissingSymbol
        }
        _ => ProbeState::Failed,
    };
    (state, text)
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
