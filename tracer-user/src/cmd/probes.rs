//! `vfio-trace probes`: every probe with its status on this kernel, hits and
//! drops. Attaches everything briefly, reports, detaches.

use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;
use tracer_core::event::{Drops, ProbeState, ProbeStatus};

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
/// kernel removes them when it exits; this checks that it did.
fn leftovers() -> Result<ExitCode> {
    // The kernel keeps the first 15 bytes of a program's name.
    let ours: Vec<String> = table::all()
        .map(|p| p.program.chars().take(15).collect())
        .collect();
    let mut found = Vec::new();
    for info in aya::programs::loaded_programs() {
        let info = info?;
        let name = info.name_as_str().unwrap_or_default().to_string();
        if ours.contains(&name) {
            found.push(format!("BPF program {name} (id {})", info.id()));
        }
    }
    for path in [
        "/sys/kernel/tracing/kprobe_events",
        "/sys/kernel/debug/tracing/kprobe_events",
    ] {
        if let Ok(text) = std::fs::read_to_string(path) {
            // aya names the kprobe events it creates through tracefs aya_*.
            found.extend(
                text.lines()
                    .filter(|l| l.contains("aya_"))
                    .map(|l| format!("kprobe event {l}")),
            );
        }
    }
    if found.is_empty() {
        println!("no vfio-trace BPF program or kprobe event left in the kernel");
        Ok(ExitCode::SUCCESS)
    } else {
        for f in &found {
            println!("left behind: {f}");
        }
        Ok(ExitCode::from(1))
    }
}
