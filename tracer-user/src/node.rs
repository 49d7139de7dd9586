//! Who this machine is: name, kernel, architecture and clock offset.

use tracer_core::event::{NodeInfo, NodeRole};

/// CLOCK_MONOTONIC now, in ns: the clock `bpf_ktime_get_ns` reads.
pub fn monotonic_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid clock id and pointer.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

/// CLOCK_REALTIME − CLOCK_MONOTONIC, sampled tightly.
pub fn clock_offset_ns() -> i64 {
    // Take the sample pair with the smallest gap of a few tries.
    (0..5)
        .map(|_| {
            let m1 = clock_ns(libc::CLOCK_MONOTONIC);
            let r = clock_ns(libc::CLOCK_REALTIME);
            let m2 = clock_ns(libc::CLOCK_MONOTONIC);
            (m2 - m1, r as i64 - ((m1 + m2) / 2) as i64)
        })
        .min_by_key(|(gap, _)| *gap)
        .map(|(_, off)| off)
        .unwrap_or(0)
}

fn uname() -> (String, String, String) {
    // SAFETY: utsname is plain data; uname fills it.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer.
    unsafe { libc::uname(&mut u) };
    let s = |f: &[libc::c_char]| {
        let bytes: Vec<u8> = f
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    (s(&u.nodename), s(&u.release), s(&u.machine))
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
