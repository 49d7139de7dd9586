//! `vfio-trace probes`: every probe with its status on this kernel, hits and
//! drops. Attaches everything briefly, reports, detaches.

use std::process::ExitCode;

use anyhow::{bail, Result};
use serde::Serialize;
use tracer_core::event::{Drops, ProbeState, ProbeStatus};

use super::privilege;
use crate::{
    cli::{ListFormat, ProbesArgs},
    probes::{table, LoadOptions, Probes},
};

#[derive(Serialize)]
struct Listing {
    probes: Vec<Row>,
    drops: Drops,
}

#[derive(Serialize)]
struct Row {
    #[serde(flatten)]
    status: ProbeStatus,
    /// Event kinds this probe contributes to.
    yields: &'static [&'static str],
}

pub fn run(args: ProbesArgs) -> Result<ExitCode> {
    if args.leftovers {
        return leftovers();
    }
    let probes = Probes::load(&LoadOptions {
        target_pid: args.probe.pid,
        named: args.probe.probes.clone(),
    })?;
    let listing = Listing {
        probes: probes
            .statuses()
            .into_iter()
            .map(|status| Row {
                yields: table::by_name(&status.probe).map_or(&[][..], |s| s.yields),
                status,
            })
            .collect(),
        drops: probes.drops(),
    };
    match args.format {
        ListFormat::Json => println!("{}", serde_json::to_string_pretty(&listing)?),
        ListFormat::Text => print!("{}", render_text(&listing)),
    }
    Ok(ExitCode::SUCCESS)
}

fn render_text(l: &Listing) -> String {
    let mut out = format!(
        "{:<17} {:<15} {:<9} {:>8}  {}\n",
        "PROBE", "STATUS", "REQUIRED", "HITS", "ATTACH / REASON"
    );
    for p in l.probes.iter().map(|r| &r.status) {
        let status = match p.status {
            ProbeState::Attached => "attached",
            ProbeState::MissingSymbol => "missing symbol",
            ProbeState::Unsupported => "unsupported",
            ProbeState::Failed => "failed",
            ProbeState::Detached => "detached",
        };
        let detail = if p.reason.is_empty() {
            p.attach.clone()
        } else {
            format!("{} — {}", p.attach, p.reason)
        };
        out += &format!(
            "{:<17} {:<15} {:<9} {:>8}  {}\n",
            p.probe,
            status,
            if p.required { "yes" } else { "no" },
            p.hits,
            detail
        );
    }
    let d = &l.drops;
    out += &format!(
        "drops: ring full {}, pending full {}, read failed {}\n",
        d.ring_full, d.pending_full, d.read_failed
    );
    out
}

/// What vfio-trace may leave in the kernel after it stopped: nothing. Every
/// program is loaded and linked through fds this process owns, so the
/// kernel removes them when it exits; this checks that it did. Listing BPF
/// programs needs CAP_SYS_ADMIN and kprobe_events is root's: what could not
/// be looked at is said, with the command to run, and is never "none left"
/// (exit 2).
fn leftovers() -> Result<ExitCode> {
    // The kernel keeps the first 15 bytes of a program's name.
    let ours: Vec<String> = table::all()
        .map(|p| p.program.chars().take(15).collect())
        .collect();
    let mut found = Vec::new();
    let mut unchecked = Vec::new();
    for info in aya::programs::loaded_programs() {
        match info {
            Ok(info) => {
                let name = info.name_as_str().unwrap_or_default().to_string();
                if ours.contains(&name) {
                    found.push(format!("BPF program {name} (id {})", info.id()));
                }
            }
            Err(e) => {
                let need = if privilege::has(privilege::CAP_SYS_ADMIN) {
                    String::new()
                } else {
                    " (listing BPF programs needs CAP_SYS_ADMIN)".to_string()
                };
                unchecked.push(format!("BPF programs: {e}{need}"));
                break;
            }
        }
    }
    let mut kprobes_read = false;
    let mut kprobe_errors = Vec::new();
    for path in [
        "/sys/kernel/tracing/kprobe_events",
        "/sys/kernel/debug/tracing/kprobe_events",
    ] {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                kprobes_read = true;
                // aya names the kprobe events it creates through tracefs aya_*.
                found.extend(
                    text.lines()
                        .filter(|l| l.contains("aya_"))
                        .map(|l| format!("kprobe event {l}")),
                );
            }
            // tracefs not mounted there: nothing can be left there.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => kprobe_errors.push(format!("{path}: {e}")),
        }
    }
    if !kprobes_read && !kprobe_errors.is_empty() {
        unchecked.extend(kprobe_errors);
    }
    let unchecked = (!unchecked.is_empty()).then(|| {
        format!(
            "could not check for leftovers: {}; run it as root: {}",
            unchecked.join("; "),
            privilege::sudo_command()
        )
    });
    if !found.is_empty() {
        for f in &found {
            println!("left behind: {f}");
        }
        if let Some(u) = unchecked {
            eprintln!("vfio-trace: warning: {u}");
        }
        return Ok(ExitCode::from(1));
    }
    if let Some(u) = unchecked {
        bail!(u);
    }
    println!("no vfio-trace BPF program or kprobe event left in the kernel");
    Ok(ExitCode::SUCCESS)
}
