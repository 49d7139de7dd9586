//! `vfio-trace probes`: every probe with its status on this kernel, hits and
//! drops. Attaches everything briefly, reports, detaches.

use std::process::ExitCode;

use anyhow::{bail, Result};
use serde::Serialize;
use tracer_core::engine::rules::needs::{self, NotJudged, ProbeView, Reported};
use tracer_core::engine::RuleId;
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
    /// Rules a missing hook leaves unjudgeable on this kernel.
    not_judged: Vec<NotJudged>,
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
        not_judged: Vec::new(),
    };
    let listing = Listing {
        not_judged: not_judged(&listing.probes),
        ..listing
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
    if l.not_judged.is_empty() {
        out += "rules: every rule can be judged on this kernel\n";
    } else {
        out += &format!(
            "rules NOT judged on this kernel ({}; `check` lists them as not judged):\n",
            l.not_judged.len()
        );
        for n in &l.not_judged {
            out += &format!(
                "  {} {} (missing {}): {}\n",
                n.rule,
                n.name,
                n.missing_probes.join(", "),
                n.reason
            );
        }
    }
    out
}

/// The rules this kernel's probe statuses leave unjudgeable (software-MSI
/// needs judged as if the host used software MSI: it is not known yet).
fn not_judged(rows: &[Row]) -> Vec<NotJudged> {
    let lookup = |name: &str| {
        rows.iter()
            .map(|r| &r.status)
            .find(|s| s.probe == name)
            .map(|s| ProbeView {
                status: s.status,
                ever_attached: s.status == ProbeState::Attached,
                attach: &s.attach,
                reason: &s.reason,
            })
    };
    RuleId::ALL
        .into_iter()
        .filter_map(|r| {
            needs::judge(
                r,
                None,
                lookup,
                Reported {
                    sw_msi_window: None,
                    kernel_probes: true,
                },
            )
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn row(probe: &'static str, status: ProbeState, reason: &str) -> Row {
        Row {
            status: ProbeStatus {
                probe: probe.into(),
                attach: format!("kprobe:{probe}"),
                status,
                required: false,
                reason: reason.into(),
                hits: 0,
            },
            yields: &[],
        }
    }

    #[test]
    fn a_kernel_without_any_msi_mask_hook_names_vt010() {
        let gone = ["msix_shutdown", "msix_mask", "pci_msi_mask"];
        let rows: Vec<Row> = table::all()
            .map(|p| {
                if gone.contains(&p.name) {
                    row(p.name, ProbeState::MissingSymbol, "not found")
                } else {
                    row(p.name, ProbeState::Attached, "")
                }
            })
            .collect();
        let l = Listing {
            not_judged: not_judged(&rows),
            probes: rows,
            drops: Drops {
                ring_full: 0,
                pending_full: 0,
                read_failed: 0,
                undecodable: 0,
            },
        };
        let text = render_text(&l);
        assert!(
            text.contains("rules NOT judged on this kernel (1;"),
            "{text}"
        );
        assert!(
            text.contains("VT010 irq-ordering (missing msix_shutdown, msix_mask, pci_msi_mask)"),
            "{text}"
        );
    }

    #[test]
    fn all_hooks_there_says_every_rule_can_be_judged() {
        let rows: Vec<Row> = table::all()
            .map(|p| row(p.name, ProbeState::Attached, ""))
            .collect();
        let l = Listing {
            not_judged: not_judged(&rows),
            probes: rows,
            drops: Drops {
                ring_full: 0,
                pending_full: 0,
                read_failed: 0,
                undecodable: 0,
            },
        };
        assert!(render_text(&l).contains("every rule can be judged"));
    }
}
