//! Choosing the accelerator. TCG is the default everywhere; for x86 guests
//! on an x86 host with an openable /dev/kvm the lab checks once per machine
//! whether KVM really boots a guest (on some hosts /dev/kvm exists but the
//! guest dies in the kernel decompressor) and caches the answer.

use std::{fs, path::Path, process::Command, time::Duration};

use anyhow::Result;

use super::{debs, initramfs, qemu, Arch};

const PROBE_OK: &str = "KVM-PROBE-OK";

fn machine_key() -> String {
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .unwrap_or("")
        .to_string();
    format!(
        "{} | {} | {}",
        kernel.trim(),
        cpu,
        qemu::version(Arch::X86_64.qemu())
    )
}

fn dev_kvm_opens() -> bool {
    fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok()
}

/// Whether `-accel kvm` boots the lab's x86 kernel here (cached).
pub fn kvm_works(kernel: &debs::Kernel, busybox: &Path) -> Result<bool> {
    if std::env::consts::ARCH != "x86_64" || !dev_kvm_opens() {
        return Ok(false);
    }
    let cache = debs::cache_root().join("kvm-probe.json");
    let key = machine_key();
    if let Ok(text) = fs::read_to_string(&cache) {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
            if v["key"] == key.as_str() {
                return Ok(v["works"] == true);
            }
        }
    }
    eprintln!("    accel: /dev/kvm opens; checking once whether KVM boots a guest here");
    let dir = debs::cache_root().join("kvm-probe");
    fs::create_dir_all(&dir)?;
    let init = format!("#!/bin/sh\n/bin/busybox echo {PROBE_OK}\n/bin/busybox poweroff -f\n");
    let initrd = initramfs::build(
        &initramfs::Spec {
            busybox,
            modules_dir: &kernel.modules,
            modules: &[],
            init: &init,
            extra: vec![],
        },
        &dir,
        "kvm-probe",
    )?;
    let mut q = Command::new(Arch::X86_64.qemu());
    q.args([
        "-accel", "kvm", "-cpu", "max", "-M", "q35", "-m", "256M", "-display", "none", "-vga",
        "none",
    ]);
    q.args([
        "-nic",
        "none",
        "-serial",
        "stdio",
        "-monitor",
        "none",
        "-no-reboot",
    ]);
    q.arg("-kernel")
        .arg(&kernel.image)
        .arg("-initrd")
        .arg(&initrd);
    q.args(["-append", "console=ttyS0 panic=-1"]);
    let log = dir.join("console.log");
    let o = qemu::run(q, &log, Duration::from_secs(30), "kvm-probe ")?;
    let works = !o.timed_out
        && fs::read_to_string(&log)
            .unwrap_or_default()
            .contains(PROBE_OK);
    eprintln!(
        "    accel: KVM {}",
        if works {
            "works: using it"
        } else {
            "does not boot a guest: using TCG"
        }
    );
    let v = serde_json::json!({ "key": key, "works": works });
    fs::write(&cache, serde_json::to_vec_pretty(&v)?)?;
    Ok(works)
}
