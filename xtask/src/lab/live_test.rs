//! `cargo xtask live-test`: `lab nested --live` in a real terminal (tmux),
//! driven with `send-keys` and read with `capture-pane` the way a user
//! would: both agents join, a guest (L2) mapping's chain is complete across
//! both nodes (L2 MAP → L1 memslot → L1 MAP_DMA → L1 pin → L1 iommu_map),
//! the fault steps' findings appear (the refused map into the MSI doorbell
//! window, the IRQ-ordering rule), and `q` ends the UI, the VMs and the
//! xtask with status 0. Every screen it judged is kept in
//! target/lab/nested-live/screen-*.txt.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Output},
    thread::sleep,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};

use crate::step::{self, step, workspace_root};

#[derive(clap::Args, Debug)]
pub struct LiveTestArgs {
    /// The static x86_64 vfio-trace (default: built).
    #[arg(long)]
    pub tracer: Option<PathBuf>,
}

/// A private tmux server, killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn run(&self, args: &[&str]) -> Result<Output> {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .context("running tmux")
    }

    /// The screen; with `escapes`, with its SGR codes (the selected row is
    /// reverse video).
    fn screen(&self, escapes: bool) -> String {
        let mut a = vec!["capture-pane", "-p", "-t", "vt"];
        if escapes {
            a.push("-e");
        }
        self.run(&a)
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }

    fn keys(&self, keys: &[&str]) -> Result<()> {
        for k in keys {
            let o = self.run(&["send-keys", "-t", "vt", k])?;
            if !o.status.success() {
                bail!("tmux send-keys {k}: {}", String::from_utf8_lossy(&o.stderr));
            }
            sleep(Duration::from_millis(80));
        }
        Ok(())
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

pub fn run(a: &LiveTestArgs) -> Result<()> {
    if !step::is_root() {
        bail!("the live test boots the lab: run it as root");
    }
    let tracer = match &a.tracer {
        Some(t) => t.clone(),
        None => step("vfio-trace, static, x86_64", || {
            crate::build::musl_binary("x86_64-unknown-linux-musl", "vfio-trace")
        })?,
    };
    let out = workspace_root().join("target/lab/nested-live");
    let rc_file = workspace_root().join("target/lab/nested-live.rc");
    let _ = fs::remove_file(&rc_file);
    let xtask = std::env::current_exe().context("the xtask binary")?;
    let tmux = Tmux {
        socket: format!("vfio-trace-live-test-{}", std::process::id()),
    };
    let line = format!(
        "{} lab nested --live --tracer {}; echo $? > {}; sleep 600",
        xtask.display(),
        tracer.canonicalize()?.display(),
        rc_file.display()
    );
    step("tmux: cargo xtask lab nested --live (200x50)", || {
        let o = tmux.run(&[
            "new-session",
            "-d",
            "-s",
            "vt",
            "-x",
            "200",
            "-y",
            "50",
            "-c",
            &workspace_root().display().to_string(),
            &line,
        ])?;
        if !o.status.success() {
            bail!("tmux new-session: {}", String::from_utf8_lossy(&o.stderr));
        }
        Ok(())
    })?;
    let judge = || -> Result<()> {
        let s = step("both agents join (L1 host probes, L2 guest probes)", || {
            // The header names each node with its kernel: `l1 (6.12...)`.
            wait_for(&tmux, &rc_file, 300, |s| {
                s.contains("l1 (") && s.contains("l2 (")
            })
        })?;
        save(&out, "joined", &s)?;
        let s = step("a guest mapping's chain, complete across L2 and L1", || {
            joined_chain(&tmux, &rc_file)
        })?;
        save(&out, "chain", &s)?;
        let s = step(
            "the fault steps' findings: map into the MSI window, IRQ ordering",
            || {
                tmux.keys(&["4"])?;
                wait_for(&tmux, &rc_file, 240, |s| {
                    s.lines().any(|l| {
                        l.contains("VT008")
                            && l.contains("0xfee00000")
                            && l.contains("EINVAL: inside the reserved Msi")
                    }) && s.lines().any(|l| l.contains("VT010") && l.contains(" l2 "))
                })
            },
        )?;
        save(&out, "findings", &s)?;
        Ok(())
    };
    let verdict = judge();
    if verdict.is_err() {
        let _ = save(&out, "last", &tmux.screen(false));
    }
    step("q: the UI quits, the VMs stop, the xtask exits 0", || {
        tmux.keys(&["q"])?;
        let t = Instant::now();
        while !rc_file.exists() {
            if t.elapsed() > Duration::from_secs(60) {
                bail!("no exit within 60 s of q; screen:\n{}", tmux.screen(false));
            }
            sleep(Duration::from_millis(200));
        }
        let rc = fs::read_to_string(&rc_file)?;
        if rc.trim() != "0" {
            bail!("lab nested --live exited with {}", rc.trim());
        }
        let left = Command::new("pgrep")
            .args(["-f", "nested-live/l1.sock"])
            .output()?;
        if !left.stdout.is_empty() {
            bail!(
                "QEMU still running after q: pids {}",
                String::from_utf8_lossy(&left.stdout).trim()
            );
        }
        Ok(())
    })?;
    verdict
}

/// Polls the screen until `ok`, the xtask ended, or `secs` passed.
fn wait_for(tmux: &Tmux, rc: &Path, secs: u64, ok: impl Fn(&str) -> bool) -> Result<String> {
    let t = Instant::now();
    loop {
        let s = tmux.screen(false);
        if ok(&s) {
            return Ok(s);
        }
        if rc.exists() {
            bail!("lab nested --live ended early; screen:\n{s}");
        }
        if t.elapsed() > Duration::from_secs(secs) {
            bail!("not seen within {secs} s; screen:\n{s}");
        }
        sleep(Duration::from_secs(1));
    }
}

/// Chains view: moves the selection onto the first mapping of the L2 guest
/// domain (found on screen, scrolling down as needed) and waits for its chain
/// to be complete with the L1 hops. Mappings come and go with the
/// exerciser's rounds, so it retries until a round holds them.
fn joined_chain(tmux: &Tmux, rc: &Path) -> Result<String> {
    let t = Instant::now();
    let mut last = String::new();
    while t.elapsed() < Duration::from_secs(240) {
        if rc.exists() {
            bail!("lab nested --live ended early; screen:\n{last}");
        }
        tmux.keys(&["2", "Home"])?;
        for _ in 0..40 {
            let raw = tmux.screen(true);
            let plain = tmux.screen(false);
            last = plain.clone();
            let lines: Vec<&str> = plain.lines().collect();
            let selected = raw.lines().position(|l| l.contains("\u{1b}[7m    0x"));
            let head = lines
                .iter()
                .position(|l| l.contains("l2 0000:") && l.contains("domains"));
            let guest = head.and_then(|h| {
                lines[h..]
                    .iter()
                    .position(|l| l.contains("guest domain"))
                    .map(|g| h + g + 1)
            });
            match (guest, selected) {
                (Some(g), Some(sel)) if g < lines.len() - 2 && lines[g].contains(" → gpa ") => {
                    let n = g as i64 - sel as i64;
                    let key = if n >= 0 { "j" } else { "k" };
                    tmux.keys(&vec![key; n.unsigned_abs() as usize])?;
                    sleep(Duration::from_millis(500));
                    let s = tmux.screen(false);
                    if s.contains("chain: l2 guest domain")
                        && s.contains(": complete")
                        && ["KVM memslot", "MAP_DMA", "VFIO pin", "iommu_map"]
                            .iter()
                            .all(|h| s.lines().any(|l| l.contains(h) && l.contains("(l1)")))
                    {
                        return Ok(s);
                    }
                    last = s;
                    break;
                }
                // Before any row is selected the first move selects one.
                (_, None) => tmux.keys(&["j"])?,
                // Ten rows at a time: the L2 header scrolls into view (a
                // page at a time could jump past it).
                _ => tmux.keys(&["j"; 10])?,
            }
        }
        sleep(Duration::from_secs(3));
    }
    bail!("no complete L2 chain within 240 s; last screen:\n{last}")
}

fn save(out: &Path, name: &str, screen: &str) -> Result<()> {
    fs::write(out.join(format!("screen-{name}.txt")), screen)?;
    Ok(())
}
