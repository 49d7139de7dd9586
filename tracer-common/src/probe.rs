//! Probe ids: index of each BPF program in the per-CPU `HITS` counters and the
//! value of `EventHeader::probe`. The user side's attach table maps them to
//! names and attach points.

pub type ProbeId = u16;

pub const SYS_ENTER_IOCTL: ProbeId = 0;
pub const SYS_EXIT_IOCTL: ProbeId = 1;

/// Number of slots in the `HITS` array (room to grow without a layout change).
pub const MAX_PROBES: u32 = 64;
