//! Maps and globals shared by all probes.

use aya_ebpf::{
    bindings::BPF_RB_NO_WAKEUP,
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_smp_processor_id, bpf_ktime_get_ns,
    },
    macros::map,
    maps::{PerCpuArray, RingBuf},
    Global,
};
use tracer_common::{drop_reason, probe::MAX_PROBES, EventHeader, RING_BYTES};

/// Every record goes through this ring. Producers submit without waking the
/// reader; the user side drains on a short timer (one wakeup per event would
/// cost more than the probe itself).
#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(RING_BYTES, 0);

/// Per-CPU run count of each program, indexed by `ProbeId`.
#[map]
pub static HITS: PerCpuArray<u64> = PerCpuArray::with_max_entries(MAX_PROBES, 0);

/// Per-CPU loss counters, indexed by `drop_reason`.
#[map]
pub static DROPS: PerCpuArray<u64> = PerCpuArray::with_max_entries(drop_reason::COUNT, 0);

/// Trace only this process (thread group id); 0 traces every process.
#[unsafe(no_mangle)]
static TARGET_TGID: Global<u32> = Global::new(0);

/// Submit flags for ring records.
pub const SUBMIT_FLAGS: u64 = BPF_RB_NO_WAKEUP as u64;

#[inline(always)]
pub fn count(map: &PerCpuArray<u64>, index: u32) {
    if let Some(p) = map.get_ptr_mut(index) {
        // SAFETY: per-CPU slot, no concurrent writer on this CPU.
        unsafe { *p += 1 };
    }
}

#[inline(always)]
pub fn hit(probe: u16) {
    count(&HITS, u32::from(probe));
}

#[inline(always)]
pub fn dropped(reason: u32) {
    count(&DROPS, reason);
}

/// Whether the current task is one we trace.
#[inline(always)]
pub fn wanted(pid_tgid: u64) -> bool {
    let target = TARGET_TGID.load();
    target == 0 || (pid_tgid >> 32) as u32 == target
}

/// Fills a record header for the current task.
#[inline(always)]
pub fn fill_header(h: &mut EventHeader, kind: u16, probe: u16) {
    let pid_tgid = bpf_get_current_pid_tgid();
    h.kind = kind;
    h.probe = probe;
    // SAFETY: helper without preconditions.
    h.cpu = unsafe { bpf_get_smp_processor_id() };
    // SAFETY: helper without preconditions.
    h.ts_ns = unsafe { bpf_ktime_get_ns() };
    h.pid = (pid_tgid >> 32) as u32;
    h.tid = pid_tgid as u32;
    h.comm = bpf_get_current_comm().unwrap_or([0; 16]);
}

/// Entry arguments of a kernel function, kept until its return probe runs.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct SavedArgs {
    pub args: [u64; 6],
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct ArgsKey {
    pub tid: u32,
    /// The entry probe's id: one slot per function per thread.
    pub probe: u32,
}

#[map]
static ARGS: aya_ebpf::maps::HashMap<ArgsKey, SavedArgs> =
    aya_ebpf::maps::HashMap::with_max_entries(16384, 0);

/// Saves the first `n` arguments of the probed function for its return probe.
#[inline(always)]
pub fn save_args(ctx: &aya_ebpf::programs::ProbeContext, probe: u16, n: usize) {
    let pid_tgid = bpf_get_current_pid_tgid();
    let mut saved = SavedArgs { args: [0; 6] };
    let mut i = 0;
    while i < 6 && i < n {
        saved.args[i] = ctx.arg::<u64>(i).unwrap_or(0);
        i += 1;
    }
    let key = ArgsKey {
        tid: pid_tgid as u32,
        probe: u32::from(probe),
    };
    if ARGS.insert(&key, &saved, 0).is_err() {
        dropped(drop_reason::PENDING_FULL);
    }
}

/// Takes the arguments saved by entry probe `probe` on this thread.
#[inline(always)]
pub fn take_args(probe: u16) -> Option<SavedArgs> {
    let key = ArgsKey {
        tid: bpf_get_current_pid_tgid() as u32,
        probe: u32::from(probe),
    };
    // SAFETY: the value is copied out before removal.
    let saved = unsafe { ARGS.get(&key) }.copied();
    if saved.is_some() {
        let _ = ARGS.remove(&key);
    }
    saved
}
