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
