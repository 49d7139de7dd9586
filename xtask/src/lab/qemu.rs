//! Running one QEMU: console captured to a file and scanned live, a hard
//! timeout, early stop on a kernel panic, and a clean shutdown so QEMU
//! flushes its trace log.

use std::{
    fs,
    io::{BufRead, BufReader, Write},
    path::Path,
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};

use super::console::{self, PROGRESS_MARKER, RESULT_MARKER};
use crate::step::display;

#[derive(Debug, Default)]
pub struct Outcome {
    pub wall_s: f64,
    pub timed_out: bool,
    pub exit: Option<i32>,
    /// Seconds after start of the first console byte, of `LAB: init`, and
    /// of the result marker.
    pub first_output_s: Option<f64>,
    pub init_s: Option<f64>,
    pub result_s: Option<f64>,
    pub stopped_on_panic: bool,
}

/// SIGTERM (QEMU then flushes its trace log), SIGKILL after 5 s.
pub fn terminate(child: &mut Child) {
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(5) {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Runs `qemu` (stdin /dev/null, stdout = the serial console) until it
/// exits, the timeout passes, or the guest panics.
pub fn run(
    mut qemu: Command,
    console_log: &Path,
    timeout: Duration,
    echo_prefix: &str,
) -> Result<Outcome> {
    eprintln!("    $ {}", display(&qemu));
    let start = Instant::now();
    let mut child = qemu
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("could not start {}", qemu.get_program().to_string_lossy()))?;
    let (tx, rx) = mpsc::channel::<String>();
    let out = child.stdout.take().expect("piped");
    let err = child.stderr.take().expect("piped");
    let tx2 = tx.clone();
    std::thread::spawn(move || {
        for l in BufReader::new(out).split(b'\n').map_while(Result::ok) {
            if tx.send(String::from_utf8_lossy(&l).into_owned()).is_err() {
                break;
            }
        }
    });
    std::thread::spawn(move || {
        for l in BufReader::new(err).split(b'\n').map_while(Result::ok) {
            let _ = tx2.send(format!("qemu-stderr: {}", String::from_utf8_lossy(&l)));
        }
    });
    let mut log = fs::File::create(console_log)?;
    let mut o = Outcome::default();
    let mut result_at: Option<Instant> = None;
    let mut panic_at: Option<Instant> = None;
    loop {
        let now = Instant::now();
        if now.duration_since(start) > timeout {
            o.timed_out = true;
            eprintln!(
                "    {echo_prefix}TIMEOUT after {}s: stopping QEMU",
                timeout.as_secs()
            );
            terminate(&mut child);
            break;
        }
        // After the verdict or a panic the guest should power off by itself;
        // give it a moment, then stop QEMU.
        let grace = [result_at.map(|t| (t, 15)), panic_at.map(|t| (t, 3))];
        if grace
            .iter()
            .flatten()
            .any(|(t, s)| now.duration_since(*t) > Duration::from_secs(*s))
        {
            terminate(&mut child);
            break;
        }
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => {
                let t = start.elapsed().as_secs_f64();
                o.first_output_s.get_or_insert(t);
                writeln!(log, "{line}")?;
                let l = console::strip(&line);
                let relayed = l.strip_prefix("L2| ").map(console::strip);
                if relayed
                    .is_some_and(|r| r.starts_with(PROGRESS_MARKER) || r.starts_with(RESULT_MARKER))
                {
                    eprintln!("    {echo_prefix}[{t:5.1}s] {l}");
                }
                if l.starts_with(PROGRESS_MARKER)
                    || l.starts_with(RESULT_MARKER)
                    || l.starts_with("qemu-stderr:")
                {
                    eprintln!("    {echo_prefix}[{t:5.1}s] {l}");
                }
                if l.starts_with("LAB: init") {
                    o.init_s.get_or_insert(t);
                }
                if l.starts_with(RESULT_MARKER) {
                    o.result_s = Some(t);
                    result_at = Some(Instant::now());
                }
                // A guest panic, or KVM giving up on the guest (QEMU then
                // sits paused until killed): stop soon either way.
                let dead = l.starts_with("Kernel panic")
                    || l.starts_with("qemu-stderr: KVM internal error");
                if dead && panic_at.is_none() {
                    o.stopped_on_panic = true;
                    panic_at = Some(Instant::now());
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Ok(Some(_)) = child.try_wait() {
                    // Drain what is left, then stop.
                    while let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
                        writeln!(log, "{line}")?;
                    }
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let _ = child.wait();
                break;
            }
        }
    }
    let status = child.wait()?;
    o.exit = status.code();
    o.wall_s = start.elapsed().as_secs_f64();
    log.flush()?;
    Ok(o)
}

/// `qemu-system-x86_64 --version`, first line.
pub fn version(bin: &str) -> String {
    Command::new(bin)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

/// An x86 VM that acts as a host (the nested lab's L1, the probe-cost
/// bench): an [`x86_vm`] with the machine's root filesystem shared
/// read-only as `hostroot` (QEMU, bpftrace and friends run from it under
/// chroot). The caller adds the results share and anything else.
pub fn x86_host_vm(accel: &str, memory: &str, smp: &str, kernel: &Path, initrd: &Path) -> Command {
    let mut q = x86_vm(accel, memory, smp, kernel, initrd);
    q.args([
        "-virtfs",
        "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
    ]);
    q
}

/// An x86 VM with a device to pass through (the soak): q35, headless with
/// its console on stdio, a virtio-iommu and edu, the kernel and initramfs.
/// The caller adds the results share and anything else.
pub fn x86_vm(accel: &str, memory: &str, smp: &str, kernel: &Path, initrd: &Path) -> Command {
    let mut q = Command::new("qemu-system-x86_64");
    q.args([
        "-accel", accel, "-cpu", "max", "-M", "q35", "-m", memory, "-smp", smp,
    ]);
    q.args([
        "-display",
        "none",
        "-vga",
        "none",
        "-nic",
        "none",
        "-serial",
        "stdio",
        "-monitor",
        "none",
        "-no-reboot",
    ]);
    q.arg("-kernel").arg(kernel).arg("-initrd").arg(initrd);
    q.args(["-append", "console=ttyS0 panic=-1 loglevel=5"]);
    q.args(["-device", "virtio-iommu-pci", "-device", "edu"]);
    q
}

/// The kernel command line of an x86 guest behind an emulated hardware
/// IOMMU. `no_timer_check`: with interrupt remapping, the IO-APIC timer
/// check runs through the (emulated) remapping unit and, on a loaded TCG
/// machine, misses its deadline: "Kernel panic - not syncing: timer
/// doesn't work through Interrupt-remapped IO-APIC".
pub const X86_HW_IOMMU_CMDLINE: &str = "console=ttyS0 panic=-1 loglevel=5 no_timer_check";

/// QEMU's VT-d with interrupt remapping (x2APIC, `eim`) and caching mode
/// (every map is invalidated, so QEMU's log shows it). A sysbus device:
/// it must come before the PCI devices it translates.
pub fn intel_iommu() -> Vec<String> {
    ["-device", "intel-iommu,intremap=on,caching-mode=on,eim=on"]
        .map(String::from)
        .to_vec()
}

/// QEMU's AMD-Vi, translating (`pt=off`); `intremap=on` only describes the
/// IVRS: the guest runs with `noapic`, i.e. without interrupt remapping.
pub fn amd_iommu() -> Vec<String> {
    ["-device", "amd-iommu,intremap=on,pt=off"]
        .map(String::from)
        .to_vec()
}

/// arm64 `virt` with QEMU's SMMUv3 and a GICv3 ITS; EL2 for the KVM fault
/// step.
pub const SMMUV3_MACHINE: &str = "virt,iommu=smmuv3,gic-version=3,its=on,virtualization=on";
