//! Live drop-free rate on this machine's tracepoints (`cargo xtask bench
//! live`, or `cargo bench -p tracer-user --bench live_rate`; root). Prints
//! figures, never fails on them.
//!
//! An ioctl storm: `LIVE_BENCH_PROCS` processes (default 2, one per vCPU)
//! issue VFIO_IOMMU_MAP_DMA on /dev/null (it fails with ENOTTY, but the
//! `sys_enter_ioctl`/`sys_exit_ioctl` probes decode it from user memory like
//! a real one: one 144-byte ring record per call) at a fixed total rate
//! for `LIVE_BENCH_SECS` (default 3) while `vfio-trace record` runs, and
//! again while `vfio-trace live` (the TUI in a tmux pseudo-terminal) runs.
//! Rates double from 100 k calls/s until the storm cannot reach the rate
//! it was asked for (the probes' own cost bounds it) or drops appear; then
//! an unthrottled storm. Reported per step: calls/s asked and reached,
//! events the tool got, drops (the kernel's ring reserve failures as the
//! tool counted them), and the highest rate with zero drops, with the
//! ring size and wakeup policy. Baseline of the same run: the unthrottled
//! storm with no tracer attached (what the probes cost the storm).

use std::{
    io::{BufRead, BufReader, Read},
    os::fd::AsRawFd,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

const BIN: &str = env!("CARGO_BIN_EXE_vfio-trace");
/// VFIO_IOMMU_MAP_DMA.
const MAP_DMA: u32 = 0x3B71;

fn env(k: &str, d: u64) -> u64 {
    std::env::var(k)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(d)
}

/// The storm child: `--storm RATE SECS` (RATE 0: as fast as it can);
/// prints the calls it made.
fn storm(rate: u64, secs: f64) {
    let null = std::fs::File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
        .expect("open /dev/null");
    let fd = null.as_raw_fd();
    let mut arg = Vec::new();
    arg.extend(32u32.to_le_bytes());
    arg.extend(3u32.to_le_bytes());
    arg.extend(0x7f2a_6e7c_f000u64.to_le_bytes());
    arg.extend(0x10_0000u64.to_le_bytes());
    arg.extend(0x1000u64.to_le_bytes());
    let t0 = Instant::now();
    let end = Duration::from_secs_f64(secs);
    let mut n = 0u64;
    loop {
        for _ in 0..64 {
            // SAFETY: `arg` is live memory of the size MAP_DMA implies;
            // /dev/null rejects the call.
            unsafe { libc::ioctl(fd, MAP_DMA as _, arg.as_ptr()) };
        }
        n += 64;
        let el = t0.elapsed();
        if el >= end {
            break;
        }
        if rate > 0 {
            let due = Duration::from_secs_f64(n as f64 / rate as f64);
            if due > el {
                std::thread::sleep(due - el);
            }
        }
    }
    println!(
        "{n} {} {}",
        t0.elapsed().as_secs_f64(),
        cpu_secs(libc::RUSAGE_SELF)
    );
}

/// User + system CPU time of this process (`RUSAGE_SELF`).
fn cpu_secs(who: i32) -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::getrusage(who, &mut ru) };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    t(ru.ru_utime) + t(ru.ru_stime)
}

/// CPU seconds a process has used so far (`/proc/PID/stat` utime + stime).
fn proc_cpu_secs(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) end with ')'.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line: 11 and 12 here.
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    // SAFETY: no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some(ticks / hz)
}

/// What a storm did: calls, the rate reached, the CPU seconds its
/// processes used (the probes run in their context: CPU per call is the
/// producer's cost, whatever share of the machine the storm got).
struct Storm {
    calls: u64,
    reached: f64,
    cpu: f64,
}

/// Runs `procs` storm processes at `rate` calls/s in total.
fn run_storm(procs: u64, rate: u64, secs: f64) -> Storm {
    let me = std::env::current_exe().expect("own path");
    let kids: Vec<_> = (0..procs)
        .map(|_| {
            Command::new(&me)
                .args(["--storm", &(rate / procs).to_string(), &secs.to_string()])
                .stdout(Stdio::piped())
                .spawn()
                .expect("start a storm process")
        })
        .collect();
    let (mut calls, mut dur, mut cpu) = (0u64, 0f64, 0f64);
    for k in kids {
        let out = k.wait_with_output().expect("storm process");
        let s = String::from_utf8_lossy(&out.stdout);
        let mut it = s.split_whitespace();
        calls += it.next().and_then(|x| x.parse().ok()).unwrap_or(0);
        dur = dur.max(it.next().and_then(|x| x.parse().ok()).unwrap_or(secs));
        cpu += it.next().and_then(|x| x.parse().ok()).unwrap_or(0.0);
    }
    Storm {
        calls,
        reached: calls as f64 / dur,
        cpu,
    }
}

struct Step {
    asked: u64,
    storm: Storm,
    events: Option<u64>,
    drops: Option<u64>,
    /// CPU seconds the tool used during the step.
    tool_cpu: Option<f64>,
}

/// One step under `vfio-trace record`: (events, drops) from its summary.
fn under_record(procs: u64, rate: u64, secs: f64, dir: &std::path::Path) -> Step {
    let file = dir.join("storm.vtrace");
    let _ = std::fs::remove_file(&file);
    let mut rec = Command::new(BIN)
        .args(["record", "--quiet", "-o"])
        .arg(&file)
        .stderr(Stdio::piped())
        .spawn()
        .expect("start vfio-trace record");
    let mut err = BufReader::new(rec.stderr.take().unwrap());
    let mut line = String::new();
    while err.read_line(&mut line).unwrap_or(0) > 0 && !line.contains("recording to") {
        line.clear();
    }
    let cpu0 = proc_cpu_secs(rec.id());
    let storm = run_storm(procs, rate, secs);
    // Let the last drain and health tick pass, then stop it (SIGINT).
    std::thread::sleep(Duration::from_millis(1500));
    let tool_cpu = proc_cpu_secs(rec.id()).zip(cpu0).map(|(b, a)| b - a);
    // SAFETY: a signal to our own child.
    unsafe { libc::kill(rec.id() as i32, libc::SIGINT) };
    let mut rest = String::new();
    let _ = err.read_to_string(&mut rest);
    let _ = rec.wait();
    // "vfio-trace: recorded N events (D drops) to ..."
    let summary = rest.lines().find(|l| l.contains("recorded ")).unwrap_or("");
    let num_after = |pat: &str| -> Option<u64> {
        let i = summary.find(pat)? + pat.len();
        summary[i..]
            .split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    };
    let _ = std::fs::remove_file(&file);
    Step {
        asked: rate,
        storm,
        events: num_after("recorded "),
        drops: num_after("events ("),
        tool_cpu,
    }
}

fn tmux(sock: &str, args: &[&str]) -> String {
    let o = Command::new("tmux")
        .args(["-L", sock])
        .args(args)
        .output()
        .expect("tmux");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// One step under `vfio-trace live` in a tmux pane: drops from its header.
fn under_live(procs: u64, rate: u64, secs: f64) -> Step {
    let sock = format!("vt-live-bench-{}", std::process::id());
    let cmd = format!("{BIN} live --duration {}", secs as u64 + 30);
    tmux(
        &sock,
        &[
            "new-session",
            "-d",
            "-x",
            "160",
            "-y",
            "45",
            "-s",
            "b",
            &cmd,
        ],
    );
    let t0 = Instant::now();
    while !tmux(&sock, &["capture-pane", "-p", "-t", "b"]).contains("drops ") {
        if t0.elapsed() > Duration::from_secs(60) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let storm = run_storm(procs, rate, secs);
    std::thread::sleep(Duration::from_millis(2500));
    let screen = tmux(&sock, &["capture-pane", "-p", "-t", "b"]);
    tmux(&sock, &["send-keys", "-t", "b", "q"]);
    std::thread::sleep(Duration::from_millis(500));
    tmux(&sock, &["kill-server"]);
    let drops = screen.find("drops ").and_then(|i| {
        screen[i + 6..]
            .split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    });
    Step {
        asked: rate,
        storm,
        events: None,
        drops,
        tool_cpu: None,
    }
}

fn print(s: &Step) {
    let asked = if s.asked == 0 {
        "unthrottled".to_string()
    } else {
        format!("{:.2} M/s", s.asked as f64 / 1e6)
    };
    println!(
        "  asked {asked:>12}  reached {:6.3} M calls/s  calls {:>9}  events {:>9}  drops {:>3}  storm CPU {:5.2} µs/call{}",
        s.storm.reached / 1e6,
        s.storm.calls,
        s.events.map_or("-".into(), |e| e.to_string()),
        s.drops.map_or("?".into(), |d| d.to_string()),
        s.storm.cpu * 1e6 / s.storm.calls.max(1) as f64,
        s.tool_cpu.map_or(String::new(), |c| format!(
            "  tool CPU {:.2} µs/event",
            c * 1e6 / s.events.unwrap_or(s.storm.calls).max(1) as f64
        ))
    );
}

/// Doubling rates, then unthrottled; stops early once drops appear.
fn sweep(name: &str, mut step: impl FnMut(u64) -> Step) {
    println!("{name}:");
    let mut best: Option<f64> = None;
    let mut rate = env("LIVE_BENCH_START", 100_000);
    loop {
        let s = step(rate);
        print(&s);
        let clean = s.drops == Some(0);
        if clean {
            best = Some(best.unwrap_or(0.0).max(s.storm.reached));
        }
        // The storm could not reach the rate: the next step is unthrottled.
        let saturated = s.storm.reached < 0.9 * rate as f64;
        if !clean || saturated || rate == 0 {
            break;
        }
        rate *= 2;
        if rate > 8_000_000 {
            rate = 0;
        }
    }
    if rate != 0 {
        let s = step(0);
        print(&s);
        if s.drops == Some(0) {
            best = Some(best.unwrap_or(0.0).max(s.storm.reached));
        }
    }
    match best {
        Some(b) => println!(
            "  highest rate with zero drops: {:.3} M events/s (target ≥ 3 M/s on 2 vCPUs: {})",
            b / 1e6,
            if b >= 3e6 { "met" } else { "not met" }
        ),
        None => println!("  no step was drop-free"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--storm") {
        let rate = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(0);
        let secs = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1.0);
        return storm(rate, secs);
    }
    // SAFETY: no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("SKIPPED live_rate: needs root (BPF programs on tracepoints)");
        return;
    }
    let procs = env("LIVE_BENCH_PROCS", 2).max(1);
    let secs = env("LIVE_BENCH_SECS", 3) as f64;
    println!(
        "live drop-free rate: ioctl storm (VFIO_IOMMU_MAP_DMA on /dev/null), {procs} processes, {secs} s per step, {} CPUs",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "  ring {} MiB (BPF ringbuf, one for all CPUs); wakeup policy: BPF_RB_NO_WAKEUP on submit, user side drains every 10 ms",
        tracer_common::RING_BYTES >> 20
    );
    let base = run_storm(procs, 0, secs);
    println!(
        "  baseline, no tracer: {:.3} M calls/s unthrottled ({} calls), storm CPU {:.2} µs/call",
        base.reached / 1e6,
        base.calls,
        base.cpu * 1e6 / base.calls.max(1) as f64
    );
    println!(
        "  (the machine's other load bounds what the storm reaches: CPU per call is the figure that does not depend on it)"
    );
    let dir = std::env::temp_dir().join(format!("vt-live-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    sweep("vfio-trace record", |r| under_record(procs, r, secs, &dir));
    let have_tmux = Command::new("tmux").arg("-V").output().is_ok();
    if have_tmux {
        sweep("vfio-trace live (TUI in a tmux pseudo-terminal)", |r| {
            under_live(procs, r, secs)
        });
    } else {
        println!("vfio-trace live: SKIPPED (tmux not installed)");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
