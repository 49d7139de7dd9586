//! Maps and globals shared by all probes.

use aya_ebpf::{
    bindings::BPF_RB_NO_WAKEUP,
    helpers::{bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_smp_processor_id, bpf_ktime_get_ns},
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
