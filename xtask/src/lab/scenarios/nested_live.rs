//! `cargo xtask lab nested --live`: the nested lab with the whole chain on
//! this terminal. vfio-trace runs here as the aggregator and terminal UI
//! (`live --no-local`, no root or probes needed here); L1 runs an agent
//! with the host probes, L2 an agent with the guest probes, and the
//! exerciser loops in L2 (clean steps holding their mappings, then each
//! fault step) until the UI quits.
//!
//! ```text
//!  this machine                 outer QEMU (TCG)            L1 (host)               inner QEMU (KVM)       L2 (guest)
//!  vfio-trace live ◄─ unix l1.sock ─ virtserialport vfio-trace.l1 ◄─ agent --node l1
//!                  ◄─ unix l2.sock ─ virtserialport vfio-trace.l2 ◄─ chardev pipe ◄─ virtserialport ◄─ agent --node l2
//! ```
//!
//! QEMU's socket chardevs connect to the aggregator at boot and reconnect;
//! the aggregator waits for an agent's first byte on local transports, so
//! the minute of booting before the agents speak is fine.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};

use super::nested::{levels, outer_qemu, Levels};
use crate::{
    lab::{qemu, Ctx},
    step::display,
};

/// Seconds each clean round keeps its mappings (the chains on screen).
pub const HOLD_S: u32 = 40;

/// The virtio-serial port names, per node (`vfio-trace.l1`, `.l2`).
pub const PORT_PREFIX: &str = "vfio-trace.";

/// vfio-trace's arguments in both levels: an agent on its level's port.
pub const AGENT_ARGS: &str =
    "agent --connect serial:$(port_dev vfio-trace.$LAB_NODE) --node $LAB_NODE";

/// L2: the agent, then the exerciser forever: a clean round that holds its
/// mappings, then each fault step this machine has, with pauses.
const L2_BODY: &str = r#"EDU=$(find_pci 0x1234 0x11e8) || fail "no edu device (1234:11e8) in L2"
bind_vfio $EDU
tracer_start
$LAB_BIN/exerciser --edu $EDU --list-faults > /tmp/faults.list || fail "exerciser --list-faults"
round=0
while :; do
  round=$((round+1))
  say "round $round at $(up)s: clean steps, mappings held @HOLD@ s"
  $LAB_BIN/exerciser --edu $EDU --hold @HOLD@ --out /tmp/clean.jsonl > /tmp/clean.log 2>&1 \
    || say "round $round: clean steps failed: $(grep RESULT /tmp/clean.log)"
  while read step rule; do
    say "round $round at $(up)s: fault step $step (expects $rule)"
    $LAB_BIN/exerciser --edu $EDU --steps $step --out /tmp/fault.jsonl > /tmp/fault.log 2>&1
    sleep 3
  done < /tmp/faults.list
  sleep 5
done
"#;

pub fn run(ctx: &Ctx) -> Result<()> {
    let Some(tracer) = ctx.tracer() else {
        bail!(
            "--live needs the static vfio-trace (--tracer; `lab` builds it when --live is given)"
        );
    };
    let port = |node: &str| format!("{PORT_PREFIX}{node}");
    // The inner QEMU relays L2's agent port to L1's port of the same name.
    let inner_extra = format!(
        "-device virtserialport,chardev=agent,name={p} -chardev pipe,id=agent,path=$(port_dev {p})",
        p = port("l2")
    );
    let l2_body = L2_BODY.replace("@HOLD@", &HOLD_S.to_string());
    let Levels { l1, .. } = levels(ctx, &l2_body, &inner_extra, "", "")?;

    let socks: Vec<(String, PathBuf)> = ["l1", "l2"]
        .iter()
        .map(|n| (n.to_string(), ctx.out.join(format!("{n}.sock"))))
        .collect();
    // Nothing may be printed on the terminal once the UI owns it (a stray
    // line shifts the screen the UI draws incrementally).
    eprintln!("==> vfio-trace live (the aggregator and the terminal UI)");
    let mut ui = start_ui(&tracer, &ctx.out, &socks)?;

    let mut q = outer_qemu(ctx, &l1)?;
    q.args(["-device", "virtio-serial-pci"]);
    for (node, sock) in &socks {
        q.arg("-chardev").arg(format!(
            "socket,id=agent-{node},path={},reconnect-ms=500",
            sock.display()
        ));
        q.args([
            "-device",
            &format!("virtserialport,chardev=agent-{node},name={}", port(node)),
        ]);
    }
    let mut vm = match spawn_vm(q, &ctx.out) {
        Ok(vm) => vm,
        Err(e) => {
            qemu::terminate(&mut ui);
            return Err(e);
        }
    };
    let status = ui.wait();
    qemu::terminate(&mut vm);
    let status = status.context("waiting for vfio-trace")?;
    eprintln!(
        "    L1 console: {}, L2 console inside it (lines `L2| `), outer QEMU trace: {}",
        ctx.out.join("console.log").display(),
        ctx.out.join("qemu-trace.log").display()
    );
    if !status.success() {
        bail!("vfio-trace live exited with {status}");
    }
    eprintln!(
        "==> lab nested --live: ended after {:.0}s",
        ctx.started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `vfio-trace live --no-local` on the terminal, listening on a unix socket
/// per node; returns once the sockets exist. `r` in the UI records into
/// the artifact directory.
fn start_ui(tracer: &Path, out: &Path, socks: &[(String, PathBuf)]) -> Result<Child> {
    let mut c = Command::new(tracer);
    c.args(["live", "--no-local", "--node", "lab-host"]);
    for (_, s) in socks {
        c.arg("--listen").arg(format!("unix:{}", s.display()));
    }
    c.env("VFIO_TRACE_RECORD_DIR", out);
    eprintln!("    $ {}", display(&c));
    eprintln!("    the UI fills as L1 (host probes) and L2 (guest probes) boot and join: ~1 min under TCG; q quits and powers the VMs off");
    let mut child = c
        .spawn()
        .with_context(|| format!("starting {}", tracer.display()))?;
    let t = Instant::now();
    while !socks.iter().all(|(_, s)| s.exists()) {
        if let Some(st) = child.try_wait()? {
            bail!("vfio-trace live exited with {st} before listening");
        }
        if t.elapsed() > Duration::from_secs(15) {
            qemu::terminate(&mut child);
            bail!("vfio-trace live did not create its sockets within 15 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(child)
}

/// The outer QEMU in the background, in its own process group (the
/// terminal's keys go to the UI only), console and stderr to files.
fn spawn_vm(mut q: Command, out: &Path) -> Result<Child> {
    use std::os::unix::process::CommandExt;
    let console = fs::File::create(out.join("console.log"))?;
    let err = fs::File::create(out.join("qemu.stderr"))?;
    q.stdin(Stdio::null())
        .stdout(console)
        .stderr(err)
        .process_group(0);
    fs::write(out.join("qemu.cmdline"), display(&q))?;
    q.spawn().context("starting qemu-system-x86_64")
}
