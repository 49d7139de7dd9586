//! The verdict of a run: /init's marker, kernel trouble on the console and
//! in dmesg, the exerciser's own summary, and the oracle comparisons.
//! Never QEMU's exit status (a panicking guest with `-no-reboot` exits 0).

use std::{fs, path::Path};

use anyhow::{bail, Result};
use serde_json::{json, Value};

use super::{console, oracle::Report, qemu::Outcome, Ctx};

pub struct Run<'a> {
    pub outcome: &'a Outcome,
    /// Console logs to scan: (label, file name in the artifact dir).
    pub consoles: Vec<(&'static str, &'static str)>,
    /// dmesg dumps written by /init: (label, file name).
    pub dmesgs: Vec<(&'static str, &'static str)>,
    /// Exerciser journals: (label, file name).
    pub journals: Vec<(&'static str, &'static str)>,
    pub oracles: Vec<(&'static str, Report)>,
    /// vfio-trace's own verdicts with --tracer: probe-check against the
    /// ground truth, the rules on the clean run, the fault pass.
    pub checks: Vec<super::rules::Line>,
    /// Scenario facts for summary.json (kernel, QEMU, timings, ...).
    pub info: Value,
}

fn read(dir: &Path, f: &str) -> Option<String> {
    fs::read(dir.join(f))
        .ok()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

pub fn judge(ctx: &Ctx, run: Run) -> Result<()> {
    let dir = &ctx.out;
    let mut reasons: Vec<String> = Vec::new();
    let o = run.outcome;
    if o.timed_out {
        reasons.push(format!("timed out after {:.0}s", o.wall_s));
    }
    let mut problems = Vec::new();
    let mut steps = Vec::new();
    let mut marker = Value::Null;
    for (label, f) in &run.consoles {
        let Some(text) = read(dir, f) else {
            reasons.push(format!("{label}: no {f}"));
            continue;
        };
        for p in console::problems(&text) {
            problems.push(
                json!({"where": format!("{f}:{}", p.line), "kind": p.kind, "excerpt": p.excerpt}),
            );
        }
        for s in console::steps(&text) {
            steps.push(json!({"level": label, "step": s.name, "pass": s.pass, "detail": s.detail}));
        }
        match console::result(&text) {
            Some((true, _)) => marker = json!({"level": label, "pass": true}),
            Some((false, why)) => {
                reasons.push(format!("{label} /init: FAIL {why}"));
                marker = json!({"level": label, "pass": false, "why": why});
            }
            None if *label == run.consoles[0].0 => {
                reasons.push(format!("{label}: no LAB-RESULT marker on the console"))
            }
            None => {}
        }
    }
    for (label, f) in &run.dmesgs {
        if let Some(text) = read(dir, f) {
            for p in console::problems(&text) {
                // The console usually shows the same report; keep one.
                let first = p.excerpt.lines().next().unwrap_or("").to_string();
                if !problems
                    .iter()
                    .any(|q| q["excerpt"].as_str().is_some_and(|e| e.starts_with(&first)))
                {
                    problems.push(json!({"where": format!("{f}:{} ({label})", p.line), "kind": p.kind, "excerpt": p.excerpt}));
                }
            }
        }
    }
    for p in &problems {
        reasons.push(format!(
            "{} at {}",
            match p["kind"].as_str().unwrap_or("?") {
                k if k.starts_with("kernel") => k.to_string(),
                k => format!("kernel {k}"),
            },
            p["where"].as_str().unwrap_or("?")
        ));
    }
    let mut failed_steps = Vec::new();
    let mut n_steps = 0;
    let mut loops: Vec<Value> = Vec::new();
    for (label, f) in &run.journals {
        let Some(text) = read(dir, f) else {
            reasons.push(format!("{label}: no {f}"));
            continue;
        };
        let records: Vec<Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .collect();
        if let Some(l) = records.iter().find(|v| v["type"] == "loop") {
            // `--loop N`: a benchmark, no steps and nothing for the oracle.
            if l["errors"] != 0 {
                reasons.push(format!("{label}: loop had {} failed ioctls", l["errors"]));
            }
            loops.push(l.clone());
            continue;
        }
        let summary = records.iter().find(|v| v["type"] == "summary");
        match summary {
            Some(s) => {
                n_steps += s["passed"].as_array().map_or(0, |a| a.len())
                    + s["failed"].as_array().map_or(0, |a| a.len());
                for f in s["failed"].as_array().into_iter().flatten() {
                    failed_steps.push(format!("{label}:{}", f.as_str().unwrap_or("?")));
                }
                if s["pass"] != true {
                    reasons.push(format!(
                        "{label}: exerciser steps failed: {}",
                        failed_steps.join(",")
                    ));
                }
            }
            None => reasons.push(format!(
                "{label}: {f} has no summary record (exerciser died?)"
            )),
        }
    }
    let mut oracle_json = serde_json::Map::new();
    let oracles = if loops.is_empty() {
        &run.oracles[..]
    } else {
        &[]
    };
    for (label, r) in oracles {
        for f in r.failures() {
            reasons.push(format!("oracle {label}: {f}"));
        }
        oracle_json.insert(label.to_string(), r.to_json());
    }
    let mut checks_json = Vec::new();
    for (name, r) in &run.checks {
        match r {
            Ok(d) => eprintln!("    ok   {name}: {d}"),
            Err(d) => {
                eprintln!("    FAIL {name}: {d:#}");
                reasons.push(format!("{name}: {d:#}"));
            }
        }
        checks_json.push(json!({"check": name, "ok": r.is_ok(),
            "detail": match r { Ok(d) => d.clone(), Err(d) => format!("{d:#}") }}));
    }
    let pass = reasons.is_empty();
    let files: Vec<String> = fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let summary = json!({
        "scenario": ctx.name,
        "pass": pass,
        "reasons": reasons,
        "wall_s": ctx.started.elapsed().as_secs_f64(),
        "qemu": {
            "wall_s": o.wall_s, "timed_out": o.timed_out, "exit": o.exit,
            "first_output_s": o.first_output_s, "init_s": o.init_s, "result_s": o.result_s,
            "stopped_on_panic": o.stopped_on_panic,
        },
        "marker": marker,
        "steps": steps,
        "problems": problems,
        "oracle": oracle_json,
        "checks": checks_json,
        "loop": loops,
        "info": run.info,
        "files": files,
    });
    fs::write(
        dir.join("summary.json"),
        serde_json::to_vec_pretty(&summary)?,
    )?;
    for p in &problems {
        eprintln!(
            "--- kernel {} at {} ---\n{}\n---",
            p["kind"].as_str().unwrap_or(""),
            p["where"].as_str().unwrap_or(""),
            p["excerpt"].as_str().unwrap_or("")
        );
    }
    let maps: usize = run.oracles.iter().map(|(_, r)| r.matched_maps).sum();
    let unmaps: usize = run.oracles.iter().map(|(_, r)| r.matched_unmaps).sum();
    let wall = ctx.started.elapsed().as_secs_f64();
    if pass && !loops.is_empty() {
        let per: Vec<String> = loops
            .iter()
            .map(|l| {
                format!(
                    "{} pairs of {:#x} bytes: {} ns/pair",
                    l["pairs"],
                    l["size"].as_u64().unwrap_or(0),
                    l["ns_per_pair"]
                )
            })
            .collect();
        println!(
            "lab {}: PASS in {wall:.1}s (loop: {}; oracle skipped) → {}",
            ctx.name,
            per.join(", "),
            dir.display()
        );
        Ok(())
    } else if pass {
        println!(
            "lab {}: PASS in {wall:.1}s (VM {:.1}s; {n_steps} exerciser steps; oracle matched {maps} maps, {unmaps} unmaps{}) → {}",
            ctx.name, o.wall_s,
            if run.checks.is_empty() {
                String::new()
            } else {
                format!("; {} vfio-trace checks", run.checks.len())
            },
            dir.display()
        );
        Ok(())
    } else {
        println!(
            "lab {}: FAIL in {wall:.1}s: {}{} → {}",
            ctx.name,
            reasons
                .iter()
                .take(4)
                .cloned()
                .collect::<Vec<_>>()
                .join("; "),
            if reasons.len() > 4 {
                format!("; (+{} more in summary.json)", reasons.len() - 4)
            } else {
                String::new()
            },
            dir.display()
        );
        bail!(
            "lab scenario {} failed (see {}/summary.json and console.log)",
            ctx.name,
            dir.display()
        )
    }
}
