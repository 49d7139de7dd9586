//! `exerciser`: a real VFIO user of QEMU's edu and e1000e devices, run
//! inside the lab VMs. It walks named steps (a clean VMM-like path and
//! fault steps that provoke documented kernel refusals) and writes every
//! system call it makes as JSON Lines, the ground truth the lab compares
//! QEMU's trace log (and vfio-trace) against.
//!
//! ```text
//! exerciser [--edu BDF] [--e1000e BDF] [--out FILE] [--steps a,b,...]
//!                               # `clean` in --steps: the clean set
//! exerciser --list            # every step: clean or the rule it must fire
//! exerciser --list-faults     # fault steps that apply here, one per line
//! exerciser --hold SECS       # keep the mappings SECS seconds before unmap_dma
//! exerciser [--edu BDF] --loop N [--size BYTES]   # MAP+UNMAP pairs, ns/pair
//! exerciser [--edu BDF] --churn SECS [--pause-ms MS] [--seed N]
//!                             # the soak: MAP/UNMAP/MSI rounds (churn.rs)
//! ```
//! Devices default to the first edu / e1000e found in sysfs.

mod churn;
mod devices;
mod journal;
mod kfault;
mod kvm;
mod session;
mod setup;
mod steps;
mod vfio;

use anyhow::{anyhow, Context, Result};
use std::process::ExitCode;

use serde_json::json;

use crate::{
    journal::Journal,
    session::Session,
    steps::{Kind, STEPS},
};

#[derive(Default)]
struct Args {
    edu: Option<String>,
    e1000e: Option<String>,
    out: Option<String>,
    steps: Option<Vec<String>>,
    list: bool,
    list_faults: bool,
    /// `--skip-faults a,b`: fault steps `--list-faults` leaves out (a
    /// scenario where a step's fault cannot be provoked says so).
    skip_faults: Vec<String>,
    loop_n: Option<u64>,
    size: u64,
    /// Seconds to keep the mappings before the `unmap_dma` step (the live
    /// lab holds them so the chains stay on screen).
    hold_s: u64,
    /// `--churn SECS`: the soak's MAP/UNMAP/MSI loop (0: until a signal).
    churn_s: Option<u64>,
    pause_ms: u64,
    seed: u64,
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Args> {
    let mut a = Args {
        size: 0x1000,
        pause_ms: 20,
        seed: 1,
        ..Default::default()
    };
    while let Some(arg) = it.next() {
        let mut val = |name: &str| it.next().with_context(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--edu" => a.edu = Some(val("--edu")?),
            "--e1000e" => a.e1000e = Some(val("--e1000e")?),
            "--out" => a.out = Some(val("--out")?),
            "--steps" => a.steps = Some(val("--steps")?.split(',').map(str::to_string).collect()),
            "--list" => a.list = true,
            "--list-faults" => a.list_faults = true,
            "--skip-faults" => {
                a.skip_faults = val("--skip-faults")?
                    .split(',')
                    .map(str::to_string)
                    .collect()
            }
            "--loop" => a.loop_n = Some(val("--loop")?.parse().context("--loop")?),
            "--hold" => {
                let v = val("--hold")?;
                a.hold_s = v.parse().with_context(|| format!("--hold {v}"))?
            }
            "--churn" => {
                let v = val("--churn")?;
                a.churn_s = Some(v.parse().with_context(|| format!("--churn {v}"))?)
            }
            "--pause-ms" => {
                let v = val("--pause-ms")?;
                a.pause_ms = v.parse().with_context(|| format!("--pause-ms {v}"))?
            }
            "--seed" => {
                let v = val("--seed")?;
                a.seed = v.parse().with_context(|| format!("--seed {v}"))?
            }
            "--size" => {
                let v = val("--size")?;
                a.size = parse_num(&v).with_context(|| format!("--size: bad number {v}"))?;
            }
            "-h" | "--help" => {
                println!("usage: exerciser [--edu BDF] [--e1000e BDF] [--out FILE] [--steps a,b] [--list] [--list-faults [--skip-faults a,b]] [--hold SECS] [--loop N [--size BYTES]] [--churn SECS [--pause-ms MS] [--seed N]]");
                std::process::exit(0);
            }
            _ => return Err(anyhow!("unknown argument {arg}")),
        }
    }
    Ok(a)
}

fn parse_num(s: &str) -> Option<u64> {
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

/// The first PCI function with this vendor:device in sysfs.
fn find_pci(vendor: &str, device: &str) -> Option<String> {
    let mut names: Vec<String> = std::fs::read_dir("/sys/bus/pci/devices")
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names.into_iter().find(|n| {
        let rd = |f: &str| std::fs::read_to_string(format!("/sys/bus/pci/devices/{n}/{f}"));
        matches!((rd("vendor"), rd("device")), (Ok(v), Ok(d)) if v.trim() == vendor && d.trim() == device)
    })
}

fn main() -> ExitCode {
    let mut a = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("exerciser: {e:#}");
            return ExitCode::from(2);
        }
    };
    if a.list {
        for s in STEPS {
            println!(
                "{:30} {:6} {}",
                s.name,
                s.rule().unwrap_or("clean"),
                s.about
            );
        }
        return ExitCode::SUCCESS;
    }
    if a.list_faults {
        let nic = a.e1000e.is_some() || find_pci("0x8086", "0x10d3").is_some();
        for s in STEPS
            .iter()
            .filter(|s| s.rule().is_some() && s.applies(nic))
            .filter(|s| !a.skip_faults.iter().any(|k| k == s.name))
        {
            println!("{} {}", s.name, s.rule().unwrap_or(""));
        }
        return ExitCode::SUCCESS;
    }
    a.edu = a.edu.or_else(|| find_pci("0x1234", "0x11e8"));
    a.e1000e = a.e1000e.or_else(|| find_pci("0x8086", "0x10d3"));
    let out = match &a.out {
        Some(p) => match std::fs::File::create(p) {
            Ok(f) => Some(f),
            Err(e) => {
                eprintln!("exerciser: {p}: {e}");
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    let mut j = Journal::new(out);
    j.write(json!({
        "type": "header", "tool": "exerciser", "version": env!("CARGO_PKG_VERSION"),
        "arch": std::env::consts::ARCH, "clock": "CLOCK_MONOTONIC",
        "argv": std::env::args().collect::<Vec<_>>(), "pid": std::process::id(),
        "edu": a.edu, "e1000e": a.e1000e,
        "t_ns": journal::monotonic_ns(),
    }));
    let mut s = Session::new(j, a.edu.clone(), a.e1000e.clone());
    let ok = match (a.loop_n, a.churn_s) {
        (Some(n), _) => run_loop(&mut s, n, a.size),
        (None, Some(secs)) => churn::run(
            &mut s,
            &churn::Opts {
                secs,
                pause_ms: a.pause_ms,
                seed: a.seed,
            },
        ),
        (None, None) => run_steps(&mut s, &a),
    };
    s.j.sync();
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// In `--steps`: the clean set (what runs without `--steps`), so a fault
/// step can run after it in the same process (`--steps clean,STEP`).
const CLEAN_SET: &str = "clean";

fn run_steps(s: &mut Session, a: &Args) -> bool {
    if let Some(want) = &a.steps {
        for w in want {
            if w != CLEAN_SET && !STEPS.iter().any(|s| s.name == w) {
                println!("EXERCISER RESULT FAIL unknown step {w} (see --list)");
                return false;
            }
        }
    }
    let selected: Vec<_> = STEPS
        .iter()
        .filter(|st| match &a.steps {
            Some(w) if w.iter().any(|n| n == st.name) => true,
            Some(w) if !w.iter().any(|n| n == CLEAN_SET) => false,
            _ => st.kind == Kind::Clean && st.applies(a.e1000e.is_some()),
        })
        .collect();
    let (mut passed, mut failed) = (Vec::new(), Vec::new());
    for st in &selected {
        if st.name == "unmap_dma" && a.hold_s > 0 {
            println!("EXERCISER HOLD {} s before unmap_dma", a.hold_s);
            std::thread::sleep(std::time::Duration::from_secs(a.hold_s));
        }
        let t0 = journal::monotonic_ns();
        let r = (st.run)(s, st.name);
        let t1 = journal::monotonic_ns();
        let (status, detail) = match &r {
            Ok(d) => ("PASS", d.clone()),
            Err(e) => ("FAIL", format!("{e:#}")),
        };
        println!("EXERCISER STEP {} {status} {detail}", st.name);
        s.j.write(json!({
            "type": "step", "step": st.name, "status": status.to_lowercase(),
            "detail": detail, "t_start_ns": t0, "t_end_ns": t1,
            "expect_rule": st.rule(),
        }));
        s.j.sync();
        if r.is_ok() {
            passed.push(st.name)
        } else {
            failed.push(st.name)
        }
    }
    // A fault step may leave buffers mapped (it ran alone): unmap them so
    // the process exit does not tear them down behind the trace's back.
    let left: Vec<(u64, u64)> = s
        .bufs
        .iter()
        .filter(|b| b.mapped)
        .map(|b| (b.iova, b.len as u64))
        .collect();
    for (iova, len) in left {
        s.unmap_dma("teardown", iova, len);
    }
    let ok = failed.is_empty() && !passed.is_empty();
    s.j.write(json!({
        "type": "summary", "pass": ok, "passed": passed, "failed": failed,
        "t_ns": journal::monotonic_ns(),
    }));
    println!(
        "EXERCISER RESULT {} {}/{} steps passed{}",
        if ok { "PASS" } else { "FAIL" },
        passed.len(),
        selected.len(),
        if failed.is_empty() {
            String::new()
        } else {
            format!(" (failed: {})", failed.join(","))
        }
    );
    ok
}

/// `--loop N`: N MAP_DMA+UNMAP_DMA pairs of `size` bytes, timed as a whole
/// (only the summary is journaled, so the journal does not dominate).
fn run_loop(s: &mut Session, n: u64, size: u64) -> bool {
    if let Err(e) = s.ensure_iommu() {
        println!("EXERCISER RESULT FAIL setup: {e:#}");
        return false;
    }
    let idx = match s.alloc_buf(size as usize, 0x100_0000) {
        Ok(i) => i,
        Err(e) => {
            println!("EXERCISER RESULT FAIL {e:#}");
            return false;
        }
    };
    let (vaddr, iova, fd) = (s.bufs[idx].ptr as u64, s.bufs[idx].iova, s.container);
    let mut m = vfio::DmaMap {
        argsz: 32,
        flags: vfio::VFIO_DMA_MAP_FLAG_READ | vfio::VFIO_DMA_MAP_FLAG_WRITE,
        vaddr,
        iova,
        size,
    };
    let mut u = vfio::DmaUnmap {
        argsz: 24,
        flags: 0,
        iova,
        size,
    };
    let t0 = journal::monotonic_ns();
    let mut errors = 0u64;
    for _ in 0..n {
        u.size = size;
        // SAFETY: valid repr(C) structs for these ioctls.
        unsafe {
            if libc::ioctl(fd, vfio::VFIO_IOMMU_MAP_DMA as _, &mut m as *mut _) < 0 {
                errors += 1;
            }
            if libc::ioctl(fd, vfio::VFIO_IOMMU_UNMAP_DMA as _, &mut u as *mut _) < 0 {
                errors += 1;
            }
        }
    }
    let t1 = journal::monotonic_ns();
    let per = (t1 - t0).checked_div(n).unwrap_or(0);
    s.j.write(json!({
        "type": "loop", "pairs": n, "size": size, "iova": iova, "errors": errors,
        "t_start_ns": t0, "t_end_ns": t1, "ns_per_pair": per,
    }));
    println!(
        "EXERCISER LOOP pairs={n} size={size:#x} errors={errors} total_ns={} ns_per_pair={per}",
        t1 - t0
    );
    println!(
        "EXERCISER RESULT {} loop",
        if errors == 0 { "PASS" } else { "FAIL" }
    );
    errors == 0
}

#[cfg(test)]
mod tests {
    use super::parse_args;

    /// `main` prints a bad command line as `exerciser: {e:#}`: the text is
    /// the one the `String` errors had (context chains included).
    fn err(args: &[&str]) -> String {
        let e = parse_args(args.iter().map(|s| s.to_string()))
            .err()
            .expect("an error");
        format!("{e:#}")
    }

    #[test]
    fn bad_arguments_read_as_before() {
        let bad_int = "x".parse::<u64>().unwrap_err();
        assert_eq!(err(&["--hold"]), "--hold needs a value");
        assert_eq!(err(&["--hold", "x"]), format!("--hold x: {bad_int}"));
        assert_eq!(err(&["--churn", "x"]), format!("--churn x: {bad_int}"));
        assert_eq!(
            err(&["--pause-ms", "x"]),
            format!("--pause-ms x: {bad_int}")
        );
        assert_eq!(err(&["--seed", "x"]), format!("--seed x: {bad_int}"));
        assert_eq!(err(&["--loop", "x"]), format!("--loop: {bad_int}"));
        assert_eq!(err(&["--size", "0xzz"]), "--size: bad number 0xzz");
        assert_eq!(err(&["--bogus"]), "unknown argument --bogus");
        let a = parse_args(
            ["--size", "0x2000", "--seed", "7"]
                .map(String::from)
                .into_iter(),
        )
        .expect("parses");
        assert_eq!((a.size, a.seed, a.pause_ms), (0x2000, 7, 20));
    }

    #[test]
    fn skip_faults_is_a_list() {
        assert_eq!(err(&["--skip-faults"]), "--skip-faults needs a value");
        let a = parse_args(
            ["--list-faults", "--skip-faults", "fault_a,fault_b"]
                .map(String::from)
                .into_iter(),
        )
        .expect("parses");
        assert!(a.list_faults);
        assert_eq!(a.skip_faults, ["fault_a", "fault_b"]);
    }
}
