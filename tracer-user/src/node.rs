//! Who this machine is: name, kernel, architecture and clock offset.

use rustix::time::{clock_gettime, ClockId};
use tracer_core::event::{NodeInfo, NodeRole};

/// CLOCK_MONOTONIC now, in ns: the clock `bpf_ktime_get_ns` reads.
pub fn monotonic_ns() -> u64 {
    clock_ns(ClockId::Monotonic)
}

/// CLOCK_REALTIME now, in ns since the Unix epoch (0 before it).
pub fn realtime_ns() -> u64 {
    clock_ns(ClockId::Realtime)
}

/// The one clock reader of the binary (rustix's safe `clock_gettime`).
fn clock_ns(clock: ClockId) -> u64 {
    let ts = clock_gettime(clock);
    u64::try_from(ts.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(ts.tv_nsec).unwrap_or(0)
}

/// CLOCK_REALTIME − CLOCK_MONOTONIC, sampled tightly.
pub fn clock_offset_ns() -> i64 {
    // Take the sample pair with the smallest gap of a few tries.
    (0..5)
        .map(|_| {
            let m1 = monotonic_ns();
            let r = realtime_ns();
            let m2 = monotonic_ns();
            (m2 - m1, r as i64 - ((m1 + m2) / 2) as i64)
        })
        .min_by_key(|(gap, _)| *gap)
        .map(|(_, off)| off)
        .unwrap_or(0)
}

/// Host name, kernel release and machine, from `uname(2)`.
fn uname() -> (String, String, String) {
    let u = rustix::system::uname();
    let s = |f: &std::ffi::CStr| f.to_string_lossy().into_owned();
    (s(u.nodename()), s(u.release()), s(u.machine()))
}

/// This machine as a node. `name` defaults to the hostname; a VM without
/// one (`(none)`, as in an initramfs) gets `node-<boot id>` so that host and
/// guest recordings never merge into one node.
pub fn local(name: Option<&str>, role: NodeRole) -> NodeInfo {
    let (host, kernel, machine) = uname();
    let unnamed = host.is_empty() || host == "(none)" || host == "localhost";
    let default = if unnamed {
        let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
        format!("node-{}", boot.trim().get(..8).unwrap_or("0"))
    } else {
        host
    };
    NodeInfo {
        name: name.map(str::to_owned).unwrap_or(default),
        role,
        kernel,
        machine,
        clock_offset_ns: clock_offset_ns(),
    }
}

/// Guess the role from what the kernel has loaded: a virtio-iommu driver
/// makes a guest, VFIO or KVM a host.
pub fn detect_role() -> NodeRole {
    let has = |m: &str| std::path::Path::new("/sys/module").join(m).exists();
    let guest = has("virtio_iommu");
    let host = has("vfio") || has("kvm");
    match (guest, host) {
        (true, false) => NodeRole::Guest,
        (false, true) => NodeRole::Host,
        _ => NodeRole::Mixed,
    }
}
