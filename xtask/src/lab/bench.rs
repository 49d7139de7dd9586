//! `cargo xtask bench probes`: what tracing costs the traced program. One
//! x86 lab VM (TCG) runs the exerciser's MAP_DMA+UNMAP_DMA loop on edu
//! three ways, each `reps` times: no tracer; `vfio-trace record`; bpftrace
//! (Debian's, run from the machine's root fs shared over 9p, under chroot
//! like the nested lab's inner QEMU) attached to the functions vfio-trace
//! probes for that loop and printing the same fields. Both tracers write to
//! tmpfs inside the VM, with the same buffer space (vfio-trace's
//! ring is 16 MiB; bpftrace gets 2048 perf pages = 8 MiB per CPU). Prints ns/pair and the added-cost ratio
//! vfio-trace/bpftrace; never fails on numbers.

use std::{fs, path::PathBuf, process::Command};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use super::{fresh_dir, init, qemu, scenarios, stage_binaries, vm_lock, Arch, Ctx, LabArgs};
use crate::step::{self, step, workspace_root};

/// The bpftrace equivalent of vfio-trace's probes on the MAP/UNMAP path:
/// the ioctl tracepoints (the argument struct read from user memory on
/// enter, the written-back size on exit), vfio_pin_pages_remote (vaddr,
/// npage, the pfn on return), iommu_map and __iommu_unmap (arguments and
/// return), and each virtio-iommu request (the wire fields, printed when
/// the device hands it back). vfio-trace finds the queued request through
/// the driver's list in a kretprobe; bpftrace, without the module's struct
/// offsets, takes it from virtqueue_add_sgs' `data` argument instead.
const BPFTRACE_SCRIPT: &str = r#"
tracepoint:syscalls:sys_enter_ioctl
/(args->cmd & 0xff00) == 0x3b00 || args->cmd == 0x4020ae46 || args->cmd == 0x40a0ae49/
{
  $p = args->arg;
  @ioc[tid] = (args->cmd, args->fd, $p, nsecs,
    *(uint64 *)uptr($p + 8), *(uint64 *)uptr($p + 16), *(uint64 *)uptr($p + 24));
}
tracepoint:syscalls:sys_exit_ioctl
/@ioc[tid].3 != 0/
{
  $a = @ioc[tid];
  printf("ioctl pid=%d cmd=%x fd=%d ret=%d a=%lx b=%lx c=%lx out=%lx t=%lu\n", pid, $a.0, $a.1,
    args->ret, $a.4, $a.5, $a.6, *(uint64 *)uptr($a.2 + 16), $a.3);
  delete(@ioc[tid]);
}
kprobe:vfio_pin_pages_remote { @pin[tid] = (arg1, arg2, arg3); }
kretprobe:vfio_pin_pages_remote
/@pin[tid].0 != 0/
{
  $a = @pin[tid];
  printf("pin pid=%d vaddr=%lx npage=%ld pfn=%lx ret=%ld\n", pid, $a.0, $a.1, *(uint64 *)$a.2, retval);
  delete(@pin[tid]);
}
kprobe:iommu_map { @map[tid] = (arg0, arg1, arg2, arg3, arg4); }
kretprobe:iommu_map
/@map[tid].0 != 0/
{
  $a = @map[tid];
  printf("iommu_map dom=%lx iova=%lx paddr=%lx size=%lx prot=%d ret=%d\n", $a.0, $a.1, $a.2, $a.3, $a.4, retval);
  delete(@map[tid]);
}
kprobe:__iommu_unmap { @unmap[tid] = (arg0, arg1, arg2); }
kretprobe:__iommu_unmap
/@unmap[tid].0 != 0/
{
  $a = @unmap[tid];
  printf("iommu_unmap dom=%lx iova=%lx size=%lx unmapped=%lx\n", $a.0, $a.1, $a.2, retval);
  delete(@unmap[tid]);
}
kprobe:__viommu_add_req
{
  $b = arg1;
  @add[tid] = (*(uint8 *)$b, *(uint32 *)($b + 4), *(uint64 *)($b + 8),
    *(uint64 *)($b + 16), *(uint64 *)($b + 24), *(uint32 *)($b + 32), arg2);
}
kprobe:virtqueue_add_sgs
/@add[tid].6 != 0/
{
  @req[arg4] = @add[tid];
  delete(@add[tid]);
}
kretprobe:virtqueue_get_buf
/@req[retval].6 != 0/
{
  $r = @req[retval];
  printf("viommu_req type=%d domain=%d start=%lx end=%lx phys=%lx flags=%x\n", $r.0, $r.1, $r.2, $r.3, $r.4, $r.5);
  delete(@req[retval]);
}
"#;

/// /init of the bench VM. `@PAIRS@`, `@REPS@`, `@SETTLE@` are filled in.
const BODY: &str = r#"EDU=$(find_pci 0x1234 0x11e8) || fail "no edu device (1234:11e8)"
bind_vfio $EDU
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,ro hostroot /host || fail "mounting the host root"
for d in dev proc sys; do mount --bind /$d /host/$d || fail "bind /$d"; done
mount -t tmpfs tmpfs /host/run
mount -t tmpfs tmpfs /host/tmp
mount -t tracefs nodev /sys/kernel/tracing
mount -t tracefs nodev /host/sys/kernel/tracing
mount -t debugfs nodev /host/sys/kernel/debug
[ -x /host/usr/bin/bpftrace ] || fail "no bpftrace in the host root (cargo xtask setup installs it)"
cp $LAB_BIN/bench.bt /host/tmp/bench.bt
# Per BPF program of process $1: fd, prog_id, run_cnt, run_time_ns (bpf_stats_enabled).
progstats() {
  for f in /proc/$1/fdinfo/*; do
    grep -q '^prog_id' $f 2>/dev/null || continue
    echo "$(basename $f) $(grep -E '^(prog_id|run_cnt|run_time_ns|verified_insns)' $f | tr '\n' ' ')"
  done
}
# utime stime (clock ticks) of process $1 and its threads.
cpu() { cut -d' ' -f14,15 /proc/$1/stat; }
loops() {
  for i in $(seq 1 @REPS@); do
    say "bench $1 rep $i at $(up)s"
    $LAB_BIN/exerciser --edu $EDU --loop ${2:-@PAIRS@} --out $LAB_OUT/loop-$1-$i.jsonl > /tmp/loop.out 2>&1 || { cat /tmp/loop.out; fail "loop $1 $i"; }
  done
}
loops none
if [ @PROFILE@ = 1 ]; then
  echo 1 > /proc/sys/kernel/bpf_stats_enabled
  # The probes alone: the recorder is stopped while the loop runs (the
  # ring holds 3000 pairs' records), then drains between runs.
  $LAB_BIN/vfio-trace record -o /tmp/stopped.vft --node guest > $LAB_OUT/stopped.log 2>&1 &
  VS=$!
  sleep @SETTLE@
  for i in $(seq 1 @REPS@); do
    kill -STOP $VS
    say "bench stopped rep $i at $(up)s"
    $LAB_BIN/exerciser --edu $EDU --loop 3000 --out $LAB_OUT/loop-stopped-$i.jsonl > /tmp/loop.out 2>&1 || { cat /tmp/loop.out; fail "loop stopped $i"; }
    kill -CONT $VS
    sleep 4
  done
  kill -INT $VS; wait $VS
  tail -c 300 $LAB_OUT/stopped.log
fi
say "starting vfio-trace at $(up)s"
$LAB_BIN/vfio-trace record -o /tmp/bench.vft --node guest > $LAB_OUT/vfio-trace.log 2>&1 &
VT=$!
sleep @SETTLE@
progstats $VT > $LAB_OUT/vfio-trace.progs.before
cpu $VT > $LAB_OUT/vfio-trace.cpu.before
loops vfio-trace
progstats $VT > $LAB_OUT/vfio-trace.progs.after
cpu $VT > $LAB_OUT/vfio-trace.cpu.after
kill -INT $VT; wait $VT; echo $? > $LAB_OUT/vfio-trace.rc
cp /tmp/bench.vft $LAB_OUT/bench.vft
say "starting bpftrace at $(up)s"
BPFTRACE_PERF_RB_PAGES=2048 chroot /host /usr/bin/bpftrace -o /tmp/bt.out /tmp/bench.bt > $LAB_OUT/bpftrace.log 2>&1 &
BT=$!
n=0
until grep -q Attaching /host/tmp/bt.out 2>/dev/null; do
  n=$((n+1)); [ $n -gt 300 ] && { cat $LAB_OUT/bpftrace.log; fail "bpftrace did not attach in 300 s"; }
  kill -0 $BT 2>/dev/null || { cat $LAB_OUT/bpftrace.log; fail "bpftrace exited"; }
  sleep 1
done
say "bpftrace attached at $(up)s: $(head -1 /host/tmp/bt.out)"
sleep 1
BTP=$BT
progstats $BTP > $LAB_OUT/bpftrace.progs.before
cpu $BTP > $LAB_OUT/bpftrace.cpu.before
loops bpftrace
progstats $BTP > $LAB_OUT/bpftrace.progs.after
cpu $BTP > $LAB_OUT/bpftrace.cpu.after
kill -INT $BT; wait $BT; echo $? > $LAB_OUT/bpftrace.rc
wc -l < /host/tmp/bt.out > $LAB_OUT/bpftrace.lines
grep -c '^ioctl ' /host/tmp/bt.out > $LAB_OUT/bpftrace.ioctls
grep -i 'lost' /host/tmp/bt.out > $LAB_OUT/bpftrace.lost
head -40 /host/tmp/bt.out > $LAB_OUT/bpftrace.head
finish PASS
"#;

#[derive(clap::Args, Debug)]
pub struct ProbesArgs {
    /// A static x86_64 vfio-trace (default: build it, as the lab tests do).
    #[arg(long)]
    pub tracer: Option<PathBuf>,
    /// MAP_DMA+UNMAP_DMA pairs per run.
    #[arg(long, default_value_t = 10000)]
    pub pairs: u64,
    /// Runs per configuration.
    #[arg(long, default_value_t = 3)]
    pub reps: u32,
    /// Also show where the cost goes: per-program BPF run time
    /// (bpf_stats_enabled, which itself adds to both tracers' cost), each
    /// tracer's CPU time, and a run with the probes attached but the
    /// recorder stopped (the kernel side alone).
    #[arg(long)]
    pub profile: bool,
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return f64::NAN;
    }
    v[v.len() / 2]
}

pub fn probes(a: &ProbesArgs) -> Result<()> {
    if !step::is_root() {
        bail!("the bench runs a lab VM: needs root");
    }
    let tracer = match &a.tracer {
        Some(t) => t.clone(),
        None => step("vfio-trace for the x86_64 VM", || {
            crate::build::musl_binary("x86_64-unknown-linux-musl", "vfio-trace")
        })?,
    };
    let _lock = step("VM lock (one lab VM at a time on this machine)", vm_lock)?;
    let out = workspace_root().join("target/lab/bench-probes");
    step("fresh artifact directory", || fresh_dir(&out))?;
    let args = LabArgs {
        scenario: Some("bench-probes".into()),
        list: false,
        kernel: None,
        guest_kernel: None,
        list_kernels: false,
        kernels: None,
        scenarios: None,
        tracer_arm64: None,
        doc_only: false,
        build_fault_module: None,
        tracer: Some(tracer.clone()),
        tracer_args: String::new(),
        tracer_settle: 0,
        steps: None,
        exerciser_args: None,
        no_faults: true,
        timeout: None,
        accel: Some("tcg".into()),
        live: false,
    };
    let ctx = Ctx {
        args: &args,
        name: "bench-probes",
        out: out.clone(),
        started: std::time::Instant::now(),
    };
    stage_binaries(&ctx, Arch::X86_64, &out)?;
    fs::write(out.join("bin/bench.bt"), BPFTRACE_SCRIPT)?;
    let body = BODY
        .replace("@PAIRS@", &a.pairs.to_string())
        .replace("@REPS@", &a.reps.to_string())
        .replace("@SETTLE@", "8")
        .replace("@PROFILE@", if a.profile { "1" } else { "0" });
    let boot = scenarios::prepare(
        &ctx,
        Arch::X86_64,
        init::Results::NineP,
        vec![],
        "guest",
        "guest",
        scenarios::X86_MODULES,
        &body,
        "bench-probes",
    )?;
    let mut q = qemu::x86_host_vm(
        "tcg,thread=single",
        "1G",
        "2",
        &boot.kernel.image,
        &boot.initrd,
    );
    q.args(scenarios::share_args(&out));
    let o = step("boot, three ways of the loop, power off", || {
        qemu::run(
            q,
            &out.join("console.log"),
            std::time::Duration::from_secs(900),
            "",
        )
    })?;
    let console = fs::read_to_string(out.join("console.log")).unwrap_or_default();
    match super::console::result(&console) {
        Some((true, _)) => {}
        Some((false, why)) => bail!("bench VM: FAIL {why} (see {}/console.log)", out.display()),
        None => bail!(
            "bench VM: no result marker after {:.0}s (see {}/console.log)",
            o.wall_s,
            out.display()
        ),
    }
    let runs = |mode: &str| -> Result<Vec<f64>> {
        (1..=a.reps)
            .map(|i| {
                let f = out.join(format!("loop-{mode}-{i}.jsonl"));
                let text =
                    fs::read_to_string(&f).with_context(|| format!("reading {}", f.display()))?;
                let l = text
                    .lines()
                    .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                    .find(|v| v["type"] == "loop")
                    .with_context(|| format!("{} has no loop record", f.display()))?;
                if l["errors"] != 0 {
                    bail!("{}: {} failed ioctls", f.display(), l["errors"]);
                }
                let t = l["t_end_ns"].as_u64().unwrap_or(0) - l["t_start_ns"].as_u64().unwrap_or(0);
                Ok(t as f64 / l["pairs"].as_u64().unwrap_or(a.pairs).max(1) as f64)
            })
            .collect()
    };
    let mut none = runs("none")?;
    let mut vt = runs("vfio-trace")?;
    let mut bt = runs("bpftrace")?;
    let show = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (sn, sv, sb) = (show(&none), show(&vt), show(&bt));
    let (mn, mv, mb) = (median(&mut none), median(&mut vt), median(&mut bt));
    let events = Command::new(&tracer)
        .args(["export", "--format", "jsonl"])
        .arg(out.join("bench.vft"))
        .output()
        .ok()
        .map(|o| {
            let t = String::from_utf8_lossy(&o.stdout).into_owned();
            let n = |k: &str| {
                t.lines()
                    .filter(|l| l.contains(&format!("\"kind\":\"{k}\"")))
                    .count()
            };
            format!(
                "{} map_dma, {} unmap_dma, {} pin, {} iommu_map, {} iommu_unmap, {} viommu_req",
                n("vfio_map_dma"),
                n("vfio_unmap_dma"),
                n("vfio_pin"),
                n("iommu_map"),
                n("iommu_unmap"),
                n("viommu_req")
            )
        })
        .unwrap_or_else(|| "?".into());
    let rd = |f: &str| {
        fs::read_to_string(out.join(f))
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    println!(
        "bench probes: x86 guest (Debian {}, TCG single-threaded, 2 vCPUs), edu behind virtio-iommu,",
        boot.kernel.release
    );
    println!(
        "  {} MAP_DMA+UNMAP_DMA pairs of 4 KiB per run, {} runs each (median; runs in order):",
        a.pairs, a.reps
    );
    println!("  no tracer            {mn:>8.0} ns/pair   ({sn})");
    println!(
        "  vfio-trace record    {mv:>8.0} ns/pair   ({sv}); added {:.0} ns/pair",
        mv - mn
    );
    println!(
        "  bpftrace (same hooks){mb:>8.0} ns/pair   ({sb}); added {:.0} ns/pair",
        mb - mn
    );
    let ratio = (mv - mn) / (mb - mn);
    println!(
        "  added cost ratio vfio-trace/bpftrace: {ratio:.2} (target ≤ 0.5){}",
        if ratio <= 0.5 {
            ""
        } else {
            " — above target"
        }
    );
    println!(
        "  recorded by vfio-trace: {events}; exit {}",
        rd("vfio-trace.rc")
    );
    let lost: u64 = rd("bpftrace.lost")
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum();
    println!(
        "  printed by bpftrace: {} lines ({} ioctl records), {lost} events lost; exit {}",
        rd("bpftrace.lines"),
        rd("bpftrace.ioctls"),
        rd("bpftrace.rc")
    );
    if a.profile {
        let mut st = runs("stopped")?;
        let ms = median(&mut st);
        println!(
            "  probes only (recorder stopped, 3000 pairs) {ms:>8.0} ns/pair   ({}); added {:.0} ns/pair",
            show(&st),
            ms - mn
        );
        for who in ["vfio-trace", "bpftrace"] {
            profile(&out, who, a.pairs * u64::from(a.reps));
        }
    }
    println!("  VM wall {:.0}s; artifacts in {}", o.wall_s, out.display());
    Ok(())
}

/// Where a tracer's cost went during its loops: each BPF program's run count
/// and in-program time (bpf_stats_enabled), and the tracer process's own CPU
/// time, per MAP+UNMAP pair. The rest of the added cost is the attach
/// mechanism (kprobe traps, return trampolines) and the wake-ups.
fn profile(out: &std::path::Path, who: &str, pairs: u64) {
    let read = |f: &str| fs::read_to_string(out.join(format!("{who}.{f}"))).unwrap_or_default();
    let parse = |t: &str| -> Vec<(String, u64, u64, u64)> {
        t.lines()
            .filter_map(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                let get = |k: &str| {
                    w.iter()
                        .position(|x| x.trim_end_matches(':') == k)
                        .and_then(|i| w.get(i + 1)?.parse::<u64>().ok())
                };
                Some((
                    format!(
                        "prog {} ({} insns)",
                        get("prog_id")?,
                        get("verified_insns").unwrap_or(0)
                    ),
                    get("prog_id")?,
                    get("run_cnt")?,
                    get("run_time_ns")?,
                ))
            })
            .collect()
    };
    let (before, after) = (parse(&read("progs.before")), parse(&read("progs.after")));
    if after.is_empty() {
        return;
    }
    let pairs = pairs.max(1) as f64;
    let mut total = 0.0;
    println!("  {who}: BPF programs during its loops (per pair: runs, ns in program):");
    for (name, id, cnt, ns) in &after {
        let (c0, n0) = before
            .iter()
            .find(|b| b.1 == *id)
            .map(|b| (b.2, b.3))
            .unwrap_or((0, 0));
        let (dc, dn) = (cnt - c0, ns - n0);
        if dc == 0 {
            continue;
        }
        total += dn as f64 / pairs;
        println!(
            "    {name:<28} {:>6.2} runs {:>8.0} ns  ({:.0} ns/run)",
            dc as f64 / pairs,
            dn as f64 / pairs,
            dn as f64 / dc as f64
        );
    }
    let cpu = |t: &str| -> u64 {
        t.split_whitespace()
            .filter_map(|x| x.parse::<u64>().ok())
            .sum()
    };
    let ticks = cpu(&read("cpu.after")).saturating_sub(cpu(&read("cpu.before")));
    // USER_HZ is 100 on every kernel the lab boots.
    println!(
        "    in BPF programs {total:.0} ns/pair; {who} process CPU {:.0} ns/pair ({ticks} ticks)",
        ticks as f64 * 1e7 / pairs
    );
}
