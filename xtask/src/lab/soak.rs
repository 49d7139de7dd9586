//! `cargo xtask soak --minutes N`: vfio-trace under a long MAP/UNMAP/MSI
//! churn in the x86 lab VM (q35, virtio-iommu, edu through VFIO), and
//! whether its memory stays flat and it drops nothing.
//!
//! One boot. In the VM, `vfio-trace live --no-tui` and `vfio-trace record`
//! run side by side for the whole churn, each with its own probes and ring
//! buffer (so both see all N minutes of the same workload; `--mode live`
//! or `record` runs one alone). The exerciser's `--churn` loop
//! (`exerciser/src/churn.rs`) maps and unmaps 1-4 mappings of varying
//! IOVAs and sizes per round, enables edu's MSI with an eventfd, takes a
//! device interrupt, moves the vector to a second eventfd, fires a
//! SET_IRQS loopback trigger and disables MSI again, until N minutes pass.
//!
//! Every `--sample-secs` /init prints a `SOAK-SAMPLE` line on the console:
//! VmRSS/VmHWM of each vfio-trace from /proc/<pid>/status; for `live`, the
//! events it printed and its latest drop counters (an awk reading its
//! stdout through a fifo counts the lines and parses its `drops` health
//! events); for `record`, its own status line (events, drops, file size).
//! After the churn, both stop with SIGINT; their final counts (live's last
//! `drops` event, record's `recorded N events (D drops)`) close the report.
//!
//! The verdict: the VM ran through (exerciser, both tracers and `probes
//! --leftovers` exited 0, no kernel trouble on the console), the churn had
//! no failed round, each tracer saw events, drops were 0 in every sample
//! and at the end, and memory was flat: RSS at the end of the churn at
//! most `--max-growth-mib` MiB or `--max-growth-pct` % (whichever is
//! larger) above RSS at the end of the first minute. Artifacts in
//! `target/lab/soak/`: console.log, report.txt (the per-minute table),
//! soak.json, the recording (soak.vft), the tracers' stderr.

use std::{
    fmt::Write as _,
    fs,
    path::{Path, PathBuf},
    time::Instant,
};

use anyhow::{bail, Result};
use serde_json::{json, Value};

use super::{
    console, fresh_dir, init, qemu,
    scenarios::{self, share_args, X86_MODULES},
    stage_binaries, vm_lock, Arch, Ctx, LabArgs,
};
use crate::step::{self, step, workspace_root};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `live --no-tui` and `record` side by side, each with its own probes.
    Both,
    Live,
    Record,
}

#[derive(clap::Args, Debug)]
pub struct SoakArgs {
    /// Minutes of churn (each vfio-trace runs for all of them).
    #[arg(long, default_value_t = 60)]
    pub minutes: u64,
    /// The static x86_64 vfio-trace (default: $VFIO_TRACE_LAB_TRACER, else
    /// built with `cargo xtask build --musl --release`'s recipe).
    #[arg(long)]
    pub tracer: Option<PathBuf>,
    /// Which vfio-trace commands run in the VM.
    #[arg(long, value_enum, default_value = "both")]
    pub mode: Mode,
    /// Pause between churn rounds (the exerciser's --pause-ms).
    #[arg(long, default_value_t = 20)]
    pub pause_ms: u64,
    /// Seconds between samples.
    #[arg(long, default_value_t = 10)]
    pub sample_secs: u64,
    /// Flat memory: allowed RSS growth (MiB) from the end of the first
    /// minute to the end of the churn...
    #[arg(long, default_value_t = 2.0)]
    pub max_growth_mib: f64,
    /// ...or this percentage of the first minute's RSS, if larger.
    #[arg(long, default_value_t = 5.0)]
    pub max_growth_pct: f64,
    /// QEMU accelerator: tcg (default here), tcg-mt or kvm.
    #[arg(long)]
    pub accel: Option<String>,
}

/// /init's body. `@...@` are filled in by `body()`.
const BODY: &str = r#"EDU=$(find_pci 0x1234 0x11e8) || fail "no edu device (1234:11e8)"
bind_vfio $EDU
T=$LAB_BIN/vfio-trace
[ -x $T ] || fail "the soak needs vfio-trace in $LAB_BIN"
mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null
mount -t debugfs nodev /sys/kernel/debug 2>/dev/null
# Alive and not a zombie (kill -0 succeeds on an unreaped child).
alive() { st=$(sed 's/.*) //' /proc/$1/stat 2>/dev/null | cut -c1); [ -n "$st" ] && [ "$st" != Z ]; }
LIVE_PID=; REC_PID=; TALLY_PID=
if @LIVE@; then
  # live --no-tui prints one line per event: awk counts them and keeps the
  # latest drop counters (its `drops` health events) in /tmp/live.tally.
  mkfifo /tmp/live.fifo
  awk -v out=/tmp/live.tally -v dropsf=$LAB_OUT/live-drops.txt '
    function w() { printf "live_events=%d live_drops=%d live_ring_full=%d\n", n, rf + pf + rd + ud, rf > out; close(out) }
    { n++ }
    /"kind":"drops"/ {
      d = $0; sub(/.*"ring_full":/, "", d); rf = d + 0
      d = $0; sub(/.*"pending_full":/, "", d); pf = d + 0
      d = $0; sub(/.*"read_failed":/, "", d); rd = d + 0
      d = $0; sub(/.*"undecodable":/, "", d); ud = d + 0
      print $0 >> dropsf; close(dropsf)
    }
    { t = systime(); if (t != last) { last = t; w() } }
    END { w() }' < /tmp/live.fifo &
  TALLY_PID=$!
  $T live --no-tui --node $LAB_NODE > /tmp/live.fifo 2> $LAB_OUT/live.log &
  LIVE_PID=$!
fi
if @RECORD@; then
  $T record -o $LAB_OUT/soak.vft --node $LAB_NODE 2> $LAB_OUT/record.log &
  REC_PID=$!
fi
n=0
until { [ -z "$LIVE_PID" ] || [ -s /tmp/live.tally ]; } && { [ -z "$REC_PID" ] || grep -q 'recording to' $LAB_OUT/record.log; }; do
  for p in $LIVE_PID $REC_PID; do
    alive $p || fail "vfio-trace (pid $p) exited at start: $(tail -n 3 $LAB_OUT/live.log $LAB_OUT/record.log 2>/dev/null)"
  done
  n=$((n+1)); [ $n -gt 900 ] && fail "vfio-trace not ready after 180 s"
  sleep 0.2
done
say "soak: vfio-trace ready at $(up)s (live pid ${LIVE_PID:-none}, record pid ${REC_PID:-none})"
sleep 2
mem() { [ -n "$1" ] && awk '/^VmRSS:/ { r = $2 } /^VmHWM:/ { h = $2 } END { printf "%d %d", r, h }' /proc/$1/status 2>/dev/null || echo "0 0"; }
sample() {
  set -- $(mem "$LIVE_PID") $(mem "$REC_PID")
  rec=$(tail -c 400 $LAB_OUT/record.log 2>/dev/null | tr '\r' '\n' | sed -n 's/.* events \([0-9]*\) .* drops \([0-9]*\) .* file \([0-9]*\) KiB.*/rec_events=\1 rec_drops=\2 rec_file_kib=\3/p' | tail -n 1)
  echo "SOAK-SAMPLE up=$(up) live_rss_kb=$1 live_hwm_kb=$2 rec_rss_kb=$3 rec_hwm_kb=$4 $(cat /tmp/live.tally 2>/dev/null) $rec mem_avail_kb=$(awk '/^MemAvailable:/ { print $2 }' /proc/meminfo)"
}
echo "SOAK-START up=$(up) secs=@SECS@ live=${LIVE_PID:+1} record=${REC_PID:+1}"
sample
$LAB_BIN/exerciser --edu $EDU --churn @SECS@ --pause-ms @PAUSE@ --out $LAB_OUT/exerciser.jsonl &
EX_PID=$!
t0=$(cut -d. -f1 /proc/uptime); k=1
while alive $EX_PID; do
  sleep 1
  now=$(cut -d. -f1 /proc/uptime)
  if [ $now -ge $((t0 + k * @EVERY@)) ]; then
    line=$(sample); echo "$line"
    [ $(((k * @EVERY@) % 60)) -lt @EVERY@ ] && say "soak: minute $((k * @EVERY@ / 60)): ${line#SOAK-SAMPLE }"
    k=$((k+1))
  fi
done
wait $EX_PID; EX_RC=$?
say "soak: exerciser exited with $EX_RC at $(up)s"
echo "SOAK-END $(sample | sed 's/^SOAK-SAMPLE //')"
for p in $REC_PID $LIVE_PID; do kill -INT $p; done
why=
[ $EX_RC = 0 ] || why="$why exerciser exited with $EX_RC;"
if [ -n "$REC_PID" ]; then
  wait $REC_PID; rc=$?; echo $rc > $LAB_OUT/record.rc
  [ $rc = 0 ] || why="$why vfio-trace record exited with $rc;"
fi
if [ -n "$LIVE_PID" ]; then
  wait $LIVE_PID; rc=$?; echo $rc > $LAB_OUT/live.rc
  [ $rc = 0 ] || why="$why vfio-trace live exited with $rc;"
  wait $TALLY_PID
  cp /tmp/live.tally $LAB_OUT/live-tally.txt
fi
echo "SOAK-FINAL $(cat /tmp/live.tally 2>/dev/null)"
$T probes --leftovers > $LAB_OUT/leftovers.txt 2>&1 || why="$why vfio-trace left probes behind: $(cat $LAB_OUT/leftovers.txt);"
say "soak: tracers stopped at $(up)s"
[ -z "$why" ] || fail "$why"
finish PASS
"#;

fn body(a: &SoakArgs) -> String {
    let on = |m: Mode| {
        if a.mode == Mode::Both || a.mode == m {
            "true"
        } else {
            "false"
        }
    };
    BODY.replace("@LIVE@", on(Mode::Live))
        .replace("@RECORD@", on(Mode::Record))
        .replace("@SECS@", &(a.minutes * 60).to_string())
        .replace("@PAUSE@", &a.pause_ms.to_string())
        .replace("@EVERY@", &a.sample_secs.max(1).to_string())
}

pub fn run(a: &SoakArgs) -> Result<()> {
    if !step::is_root() {
        bail!("the soak boots the lab VM: run it as root");
    }
    if a.minutes == 0 {
        bail!("--minutes must be at least 1");
    }
    let tracer = match a
        .tracer
        .clone()
        .or_else(|| std::env::var_os("VFIO_TRACE_LAB_TRACER").map(PathBuf::from))
    {
        Some(t) => t,
        None => step("vfio-trace, static, x86_64", || {
            crate::build::musl_binary(Arch::X86_64.musl(), "vfio-trace")
        })?,
    };
    let _lock = step("VM lock (one lab VM at a time on this machine)", vm_lock)?;
    let out = workspace_root().join("target/lab/soak");
    step("fresh artifact directory", || fresh_dir(&out))?;
    let lab_args = LabArgs {
        scenario: Some("soak".into()),
        list: false,
        kernel: None,
        guest_kernel: None,
        list_kernels: false,
        kernels: None,
        scenarios: None,
        tracer_arm64: None,
        doc_only: false,
        build_fault_module: None,
        tracer: Some(tracer),
        tracer_args: "record -o $LAB_OUT/trace.vft --node $LAB_NODE".into(),
        tracer_settle: 1,
        steps: None,
        exerciser_args: None,
        no_faults: true,
        timeout: None,
        live: false,
        accel: a.accel.clone(),
    };
    let ctx = Ctx {
        args: &lab_args,
        name: "soak",
        out: out.clone(),
        started: Instant::now(),
    };
    stage_binaries(&ctx, Arch::X86_64, &out)?;
    let boot = scenarios::prepare(
        &ctx,
        Arch::X86_64,
        init::Results::NineP,
        vec![],
        "guest",
        "guest",
        X86_MODULES,
        &body(a),
        "soak",
    )?;
    let accel = ctx.accel_or_kvm("tcg", Arch::X86_64, &boot)?;
    let mut q = qemu::x86_vm(accel, "1G", "2", &boot.kernel.image, &boot.initrd);
    q.args(share_args(&out));
    q.args(["-msg", "timestamp=on"]);
    // Boot, tracer start (BTF, attach) and stop take minutes under TCG.
    let timeout = std::time::Duration::from_secs(a.minutes * 60 + 900);
    eprintln!(
        "==> soak: {} min of churn under vfio-trace ({:?}); a line per minute",
        a.minutes, a.mode
    );
    let outcome = step("boot, churn, stop, power off", || {
        qemu::run(q, &out.join("console.log"), timeout, "")
    })?;
    let console_text = fs::read_to_string(out.join("console.log")).unwrap_or_default();
    let report = Report::build(&console_text, &out, a);
    let text = report.render(a, &outcome);
    print!("{text}");
    fs::write(out.join("report.txt"), &text)?;
    let mut j = report.to_json();
    j["qemu"] = json!({"wall_s": outcome.wall_s, "timed_out": outcome.timed_out,
        "exit": outcome.exit, "accel": accel, "kernel": boot.kernel.release});
    j["args"] = json!({"minutes": a.minutes, "mode": format!("{:?}", a.mode),
        "pause_ms": a.pause_ms, "sample_secs": a.sample_secs,
        "max_growth_mib": a.max_growth_mib, "max_growth_pct": a.max_growth_pct});
    fs::write(out.join("soak.json"), serde_json::to_vec_pretty(&j)?)?;
    let mut reasons = report.reasons.clone();
    if outcome.timed_out {
        reasons.insert(0, format!("timed out after {:.0}s", outcome.wall_s));
    }
    if reasons.is_empty() {
        println!("soak: PASS → {}", out.display());
        Ok(())
    } else {
        println!("soak: FAIL: {} → {}", reasons.join("; "), out.display());
        bail!("soak failed (see {}/report.txt)", out.display())
    }
}

/// One `SOAK-SAMPLE`/`SOAK-END` line: seconds since the churn started and
/// its `key=value` fields.
#[derive(Debug, Clone)]
struct Sample {
    t: f64,
    kv: Vec<(String, u64)>,
}

impl Sample {
    fn get(&self, k: &str) -> Option<u64> {
        self.kv.iter().find(|(n, _)| n == k).map(|(_, v)| *v)
    }
}

fn fields(line: &str) -> Vec<(String, String)> {
    line.split_whitespace()
        .filter_map(|w| w.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// (start uptime, samples in order, the end sample).
fn parse(console_text: &str) -> (Option<f64>, Vec<Sample>, Option<Sample>) {
    let mut start = None;
    let mut samples = Vec::new();
    let mut end = None;
    for raw in console_text.lines() {
        let l = console::strip(raw);
        let (tag, rest) = l.split_once(' ').unwrap_or((l, ""));
        match tag {
            "SOAK-START" => {
                start = fields(rest)
                    .iter()
                    .find(|(k, _)| k == "up")
                    .and_then(|(_, v)| v.parse().ok())
            }
            "SOAK-SAMPLE" | "SOAK-END" => {
                let f = fields(rest);
                let Some(up) = f
                    .iter()
                    .find(|(k, _)| k == "up")
                    .and_then(|(_, v)| v.parse::<f64>().ok())
                else {
                    continue;
                };
                let s = Sample {
                    t: up - start.unwrap_or(up),
                    kv: f
                        .into_iter()
                        .filter(|(k, _)| k != "up")
                        .filter_map(|(k, v)| Some((k, v.parse().ok()?)))
                        .collect(),
                };
                if tag == "SOAK-END" {
                    end = Some(s);
                } else {
                    samples.push(s);
                }
            }
            _ => {}
        }
    }
    (start, samples, end)
}

/// One sample of a tracer: (t, RSS KiB, events, drops).
type Point = (f64, u64, Option<u64>, Option<u64>);
/// One minute of the table: (minute, t, RSS KiB, events, events/s, drops).
type Row = (u64, f64, u64, Option<u64>, Option<f64>, Option<u64>);

/// One tracer's figures.
#[derive(Debug, Default)]
struct Tracer {
    name: &'static str,
    /// Every sample (the end sample last).
    points: Vec<Point>,
    hwm_kb: u64,
    final_events: Option<u64>,
    final_drops: Option<u64>,
    ring_full: Option<u64>,
    note: String,
}

impl Tracer {
    /// RSS at the sample nearest the end of the first minute (the first
    /// sample when the churn was shorter).
    fn rss_first_minute(&self) -> Option<(f64, u64)> {
        self.points
            .iter()
            .filter(|p| p.1 > 0)
            .min_by(|a, b| (a.0 - 60.0).abs().total_cmp(&(b.0 - 60.0).abs()))
            .map(|p| (p.0, p.1))
    }
    fn rss_last(&self) -> Option<(f64, u64)> {
        self.points
            .iter()
            .rev()
            .find(|p| p.1 > 0)
            .map(|p| (p.0, p.1))
    }
    fn max_drops(&self) -> u64 {
        self.points
            .iter()
            .filter_map(|p| p.3)
            .chain(self.final_drops)
            .max()
            .unwrap_or(0)
    }
    /// Least-squares RSS slope (KiB per minute) over the second half.
    fn slope_kib_per_min(&self) -> Option<f64> {
        let last = self.rss_last()?.0;
        let pts: Vec<(f64, f64)> = self
            .points
            .iter()
            .filter(|p| p.1 > 0 && p.0 >= last / 2.0)
            .map(|p| (p.0 / 60.0, p.1 as f64))
            .collect();
        if pts.len() < 3 {
            return None;
        }
        let n = pts.len() as f64;
        let (mx, my) = (
            pts.iter().map(|p| p.0).sum::<f64>() / n,
            pts.iter().map(|p| p.1).sum::<f64>() / n,
        );
        let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
        let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
        (sxx > 0.0).then(|| sxy / sxx)
    }
}

struct Report {
    samples: usize,
    tracers: Vec<Tracer>,
    churn: Value,
    reasons: Vec<String>,
    mem_avail: Vec<(f64, u64)>,
    problems: Vec<String>,
}

/// `recorded N events (D drops)` in record's stderr.
fn record_final(log: &str) -> Option<(u64, u64)> {
    let l = log
        .split(['\r', '\n'])
        .rev()
        .find(|l| l.contains("vfio-trace: recorded "))?;
    let rest = &l[l.find("recorded ")? + 9..];
    let events = rest.split_whitespace().next()?.parse().ok()?;
    let d = &rest[rest.find('(')? + 1..];
    let drops = d.split_whitespace().next()?.parse().ok()?;
    Some((events, drops))
}

impl Report {
    fn build(console_text: &str, dir: &Path, a: &SoakArgs) -> Report {
        let (start, samples, end) = parse(console_text);
        let mut reasons = Vec::new();
        let problems: Vec<String> = console::problems(console_text)
            .iter()
            .map(|p| format!("kernel {} at console.log:{}", p.kind, p.line))
            .collect();
        reasons.extend(problems.iter().cloned());
        match console::result(console_text) {
            Some((true, _)) => {}
            Some((false, why)) => reasons.push(format!("/init: FAIL {why}")),
            None => reasons.push("no LAB-RESULT marker on the console".into()),
        }
        if start.is_none() {
            reasons.push("the churn never started (no SOAK-START on the console)".into());
        }
        let all: Vec<&Sample> = samples.iter().chain(end.iter()).collect();
        let mut tracers = Vec::new();
        let want = |m: Mode| a.mode == Mode::Both || a.mode == m;
        if want(Mode::Live) {
            let mut t = Tracer {
                name: "live",
                ..Default::default()
            };
            for s in &all {
                t.points.push((
                    s.t,
                    s.get("live_rss_kb").unwrap_or(0),
                    s.get("live_events"),
                    s.get("live_drops"),
                ));
                t.hwm_kb = t.hwm_kb.max(s.get("live_hwm_kb").unwrap_or(0));
            }
            let tally = fs::read_to_string(dir.join("live-tally.txt")).unwrap_or_default();
            let f = fields(&tally);
            let get = |k: &str| {
                f.iter()
                    .find(|(n, _)| n == k)
                    .and_then(|(_, v)| v.parse().ok())
            };
            t.final_events = get("live_events");
            t.final_drops = get("live_drops");
            t.ring_full = get("live_ring_full");
            t.note = "events = lines printed by `live --no-tui` (health events included); drops = its latest `drops` event (ring_full + pending_full + read_failed + undecodable)".into();
            tracers.push(t);
        }
        if want(Mode::Record) {
            let mut t = Tracer {
                name: "record",
                ..Default::default()
            };
            for s in &all {
                t.points.push((
                    s.t,
                    s.get("rec_rss_kb").unwrap_or(0),
                    s.get("rec_events"),
                    s.get("rec_drops"),
                ));
                t.hwm_kb = t.hwm_kb.max(s.get("rec_hwm_kb").unwrap_or(0));
            }
            let log = fs::read_to_string(dir.join("record.log")).unwrap_or_default();
            if let Some((e, d)) = record_final(&log) {
                t.final_events = Some(e);
                t.final_drops = Some(d);
            }
            t.note = "events/drops = record's own status line (drops: the sum of its nodes' latest drop counters, all kinds)".into();
            tracers.push(t);
        }
        for t in &tracers {
            let n = t.name;
            match (t.rss_first_minute(), t.rss_last()) {
                (Some((t1, r1)), Some((t2, r2))) => {
                    let allowed =
                        (a.max_growth_mib * 1024.0).max(r1 as f64 * a.max_growth_pct / 100.0);
                    let growth = r2 as f64 - r1 as f64;
                    if growth > allowed {
                        reasons.push(format!(
                            "{n}: memory not flat: RSS {r1} KiB at {t1:.0}s → {r2} KiB at {t2:.0}s (+{growth:.0} KiB > {allowed:.0} KiB allowed)"
                        ));
                    }
                }
                _ => reasons.push(format!("{n}: no RSS samples")),
            }
            if t.max_drops() > 0 {
                reasons.push(format!("{n}: {} drops", t.max_drops()));
            }
            if t.final_drops.is_none() {
                reasons.push(format!("{n}: no final drop count"));
            }
            let seen = t.final_events.or(t.points.iter().filter_map(|p| p.2).max());
            let at_start = t.points.first().and_then(|p| p.2).unwrap_or(0);
            if seen.is_none_or(|e| e <= at_start) {
                reasons.push(format!("{n}: saw no events during the churn"));
            }
        }
        let journal = fs::read_to_string(dir.join("exerciser.jsonl")).unwrap_or_default();
        let churn = journal
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|v| v["type"] == "summary")
            .unwrap_or(Value::Null);
        if churn.is_null() {
            reasons.push("exerciser.jsonl has no churn summary".into());
        } else if churn["pass"] != true {
            reasons.push(format!(
                "churn: {} failed rounds of {} (first: {})",
                churn["errors"], churn["rounds"], churn["first_error"]
            ));
        }
        let mem_avail = all
            .iter()
            .filter_map(|s| Some((s.t, s.get("mem_avail_kb")?)))
            .collect();
        Report {
            samples: samples.len(),
            tracers,
            churn,
            reasons,
            mem_avail,
            problems,
        }
    }

    /// Per-minute rows of one tracer: the sample nearest each full minute.
    fn minutes(t: &Tracer) -> Vec<Row> {
        let mut rows = Vec::new();
        let Some(&first) = t.points.first() else {
            return rows;
        };
        let mut prev = first;
        rows.push((0, first.0, first.1, first.2, None, first.3));
        let last_t = t.points.last().map_or(0.0, |p| p.0);
        let mut m = 1u64;
        while (m as f64) * 60.0 <= last_t + 5.0 {
            let target = m as f64 * 60.0;
            let p = *t
                .points
                .iter()
                .min_by(|a, b| (a.0 - target).abs().total_cmp(&(b.0 - target).abs()))
                .unwrap_or(&first);
            let rate = match (p.2, prev.2) {
                (Some(e), Some(pe)) if p.0 > prev.0 => {
                    Some(e.saturating_sub(pe) as f64 / (p.0 - prev.0))
                }
                _ => None,
            };
            rows.push((m, p.0, p.1, p.2, rate, p.3));
            prev = p;
            m += 1;
        }
        rows
    }

    fn render(&self, a: &SoakArgs, o: &qemu::Outcome) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "soak: {} min of MAP/UNMAP/MSI churn (pause {} ms), {} samples every {} s, VM {:.0} s",
            a.minutes, a.pause_ms, self.samples, a.sample_secs, o.wall_s
        );
        if !self.churn.is_null() {
            let c = &self.churn;
            let secs = c["elapsed_s"].as_f64().unwrap_or(0.0).max(1e-3);
            let _ = writeln!(
                s,
                "churn: {} rounds in {secs:.0} s ({:.1}/s): {} MAP_DMA, {} UNMAP_DMA, {} MiB mapped, {} device MSIs, {} loopback triggers, {} failed rounds",
                c["rounds"],
                c["rounds"].as_f64().unwrap_or(0.0) / secs,
                c["maps"],
                c["unmaps"],
                c["mapped_bytes"].as_u64().unwrap_or(0) >> 20,
                c["msi_irqs"],
                c["triggers"],
                c["errors"]
            );
        }
        for t in &self.tracers {
            let _ = writeln!(s, "\nvfio-trace {} ({})", t.name, t.note);
            let _ = writeln!(
                s,
                "  {:>4} {:>7} {:>10} {:>10} {:>8} {:>6}",
                "min", "t(s)", "RSS(KiB)", "events", "ev/s", "drops"
            );
            let opt = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
            for (m, tt, rss, ev, rate, dr) in Self::minutes(t) {
                let _ = writeln!(
                    s,
                    "  {m:>4} {tt:>7.0} {rss:>10} {:>10} {:>8} {:>6}",
                    opt(ev),
                    rate.map_or("-".to_string(), |r| format!("{r:.1}")),
                    opt(dr)
                );
            }
            let rss: Vec<u64> = t.points.iter().map(|p| p.1).filter(|&r| r > 0).collect();
            let (r1, rl) = (t.rss_first_minute(), t.rss_last());
            let _ = writeln!(
                s,
                "  RSS KiB: min {} max {} first {} at 1 min {} last {} (growth {}); VmHWM {}; slope over the second half {}",
                rss.iter().min().unwrap_or(&0),
                rss.iter().max().unwrap_or(&0),
                rss.first().unwrap_or(&0),
                r1.map_or(0, |r| r.1),
                rl.map_or(0, |r| r.1),
                match (r1, rl) {
                    (Some(a), Some(b)) => format!("{:+} KiB", b.1 as i64 - a.1 as i64),
                    _ => "-".into(),
                },
                t.hwm_kb,
                t.slope_kib_per_min()
                    .map_or("-".into(), |v| format!("{v:+.1} KiB/min")),
            );
            let churn_secs = t.points.last().map_or(0.0, |p| p.0).max(1e-3);
            let during = match (
                t.points.first().and_then(|p| p.2),
                t.points.last().and_then(|p| p.2),
            ) {
                (Some(a), Some(b)) => format!("{:.1}", b.saturating_sub(a) as f64 / churn_secs),
                _ => "-".into(),
            };
            let _ = writeln!(
                s,
                "  events: {} in total (after stop), {during}/s over the churn; drops: max {} in samples, {} at the end{}",
                t.final_events.map_or("-".into(), |v| v.to_string()),
                t.points.iter().filter_map(|p| p.3).max().map_or("-".into(), |v| v.to_string()),
                t.final_drops.map_or("-".into(), |v| v.to_string()),
                t.ring_full.map_or(String::new(), |v| format!(" (ring_full {v})")),
            );
        }
        if let (Some(f), Some(l)) = (self.mem_avail.first(), self.mem_avail.last()) {
            let _ = writeln!(
                s,
                "\nguest MemAvailable: {} KiB at start, {} KiB at the end ({:+} KiB)",
                f.1,
                l.1,
                l.1 as i64 - f.1 as i64
            );
        }
        for p in &self.problems {
            let _ = writeln!(s, "{p}");
        }
        let _ = writeln!(
            s,
            "\nflat memory = RSS at the end ≤ RSS at the end of the first minute + max({} MiB, {} %); drops must be 0 in every sample and at the end",
            a.max_growth_mib, a.max_growth_pct
        );
        s
    }

    fn to_json(&self) -> Value {
        let tracers: Vec<Value> = self
            .tracers
            .iter()
            .map(|t| {
                json!({
                    "name": t.name,
                    "samples": t.points.iter().map(|p| json!({"t_s": p.0, "rss_kb": p.1, "events": p.2, "drops": p.3})).collect::<Vec<_>>(),
                    "minutes": Self::minutes(t).iter().map(|r| json!({"minute": r.0, "t_s": r.1, "rss_kb": r.2, "events": r.3, "events_per_s": r.4, "drops": r.5})).collect::<Vec<_>>(),
                    "vm_hwm_kb": t.hwm_kb,
                    "rss_first_minute_kb": t.rss_first_minute().map(|r| r.1),
                    "rss_last_kb": t.rss_last().map(|r| r.1),
                    "slope_kib_per_min_second_half": t.slope_kib_per_min(),
                    "final_events": t.final_events,
                    "final_drops": t.final_drops,
                    "ring_full": t.ring_full,
                    "note": t.note,
                })
            })
            .collect();
        json!({
            "pass": self.reasons.is_empty(),
            "reasons": self.reasons,
            "churn": self.churn,
            "tracers": tracers,
            "mem_avail_kb": self.mem_avail,
            "problems": self.problems,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONSOLE: &str = "\
[    5.1] LAB: soak: vfio-trace ready at 40.00s
SOAK-START up=50.00 secs=120 live=1 record=1
SOAK-SAMPLE up=50.10 live_rss_kb=9000 live_hwm_kb=9000 rec_rss_kb=8000 rec_hwm_kb=8000 live_events=30 live_drops=0 live_ring_full=0 rec_events=25 rec_drops=0 rec_file_kib=4 mem_avail_kb=900000
SOAK-SAMPLE up=110.00 live_rss_kb=9500 live_hwm_kb=9600 rec_rss_kb=8100 rec_hwm_kb=8200 live_events=6030 live_drops=0 live_ring_full=0 rec_events=6025 rec_drops=0 rec_file_kib=400 mem_avail_kb=899000
SOAK-SAMPLE up=170.00 live_rss_kb=9600 live_hwm_kb=9600 rec_rss_kb=8100 rec_hwm_kb=8200 live_events=12030 live_drops=0 live_ring_full=0 rec_events=12025 rec_drops=0 rec_file_kib=800 mem_avail_kb=899000
SOAK-END live_rss_kb=9600 live_hwm_kb=9600 rec_rss_kb=8100 rec_hwm_kb=8200 live_events=12100 live_drops=0 live_ring_full=0 rec_events=12090 rec_drops=0 rec_file_kib=810 mem_avail_kb=899000 up=171.0
LAB-RESULT: PASS
";

    #[test]
    fn samples_are_parsed_relative_to_the_churn_start() {
        let (start, s, end) = parse(CONSOLE);
        assert_eq!(start, Some(50.0));
        assert_eq!(s.len(), 3);
        assert!((s[1].t - 60.0).abs() < 1e-6);
        assert_eq!(s[2].get("rec_events"), Some(12025));
        assert!((end.unwrap().t - 121.0).abs() < 1e-6);
    }

    #[test]
    fn minutes_rates_and_flatness() {
        let (_, s, end) = parse(CONSOLE);
        let mut t = Tracer::default();
        for x in s.iter().chain(end.iter()) {
            t.points.push((
                x.t,
                x.get("live_rss_kb").unwrap(),
                x.get("live_events"),
                x.get("live_drops"),
            ));
        }
        let rows = Report::minutes(&t);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[1].0, 1);
        assert!((rows[1].4.unwrap() - 100.0).abs() < 0.5);
        assert_eq!(t.rss_first_minute(), Some((60.0, 9500)));
        assert_eq!(t.rss_last().map(|r| r.1), Some(9600));
        assert_eq!(t.max_drops(), 0);
    }

    #[test]
    fn record_final_line() {
        let log = "vfio-trace: recording to /lab/soak.vft (20/24 probes attached)\n\r\x1b[2K3s  events 10  rate 3/s  drops 0  file 1 KiB\nvfio-trace: recorded 1234 events (0 drops) to /lab/soak.vft (5678 bytes): SIGINT\n";
        assert_eq!(record_final(log), Some((1234, 0)));
    }

    #[test]
    fn body_is_filled_in() {
        let a = SoakArgs {
            minutes: 3,
            tracer: None,
            mode: Mode::Record,
            pause_ms: 20,
            sample_secs: 10,
            max_growth_mib: 2.0,
            max_growth_pct: 5.0,
            accel: None,
        };
        let b = body(&a);
        assert!(!b.contains('@'), "unfilled placeholder");
        assert!(b.contains("if false; then\n  # live"));
        assert!(b.contains("--churn 180 --pause-ms 20"));
    }
}
