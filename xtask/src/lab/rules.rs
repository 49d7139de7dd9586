//! vfio-trace's rules against the lab: `vfio-trace check` over the
//! recordings of a clean run must exit 0 (no finding, complete), and in the
//! fault pass every fault step must be reported with exactly the rule it
//! names (and no other), attributed by time to the exerciser process that
//! ran it.
//!
//! `check` runs on this machine: with the `--tracer` binary when it is built
//! for this machine's architecture, else `$VFIO_TRACE_LAB_CHECKER`, else
//! the workspace's x86_64 musl or release build.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

use crate::step::workspace_root;

/// One line of the verdict: a name and Ok(detail) or Err(why).
pub type Line = (String, Result<String>);

/// ELF e_machine of this machine's architecture.
fn host_machine() -> u16 {
    if cfg!(target_arch = "aarch64") {
        183
    } else {
        62
    }
}

fn elf_machine(p: &Path) -> Option<u16> {
    let head = fs::read(p).ok()?;
    if !head.starts_with(b"\x7fELF") {
        return None;
    }
    head.get(18..20).map(|b| u16::from_le_bytes([b[0], b[1]]))
}

/// A `vfio-trace` that runs here.
pub fn checker(tracer: Option<&Path>) -> Result<PathBuf> {
    let mut cands: Vec<PathBuf> = tracer.into_iter().map(Path::to_path_buf).collect();
    if let Some(p) = std::env::var_os("VFIO_TRACE_LAB_CHECKER") {
        cands.insert(0, PathBuf::from(p));
    }
    let t = workspace_root().join("target");
    cands.push(t.join("x86_64-unknown-linux-musl/release/vfio-trace"));
    cands.push(t.join("release/vfio-trace"));
    cands
        .into_iter()
        .find(|p| elf_machine(p) == Some(host_machine()))
        .context(
            "no vfio-trace for this machine to run `check` with (set $VFIO_TRACE_LAB_CHECKER \
             or build one: cargo xtask build --musl --release)",
        )
}

/// `vfio-trace check FILES --format json`: exit code and report.
pub fn check(checker: &Path, files: &[PathBuf], save: &Path) -> Result<(i32, Value)> {
    let out = Command::new(checker)
        .arg("check")
        .args(files)
        .args(["--format", "json"])
        .output()
        .with_context(|| format!("running {}", checker.display()))?;
    fs::write(save, &out.stdout)?;
    let code = out.status.code().unwrap_or(-1);
    let report: Value = serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "`vfio-trace check` exited {code} without a JSON report: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )
    })?;
    Ok((code, report))
}

fn findings(r: &Value) -> Vec<&Value> {
    r["findings"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

pub fn one_line(f: &Value) -> String {
    format!(
        "{} {} [{}]: {}",
        f["rule"].as_str().unwrap_or("?"),
        f["name"].as_str().unwrap_or(""),
        f["node"].as_str().unwrap_or("?"),
        f["message"].as_str().unwrap_or("")
    )
}

/// The clean verdict: `check` over the recordings exits 0.
pub fn clean(checker: &Path, files: &[PathBuf], save: &Path) -> Line {
    let name = "vfio-trace check on the clean run: no finding".to_string();
    let missing: Vec<String> = files
        .iter()
        .filter(|f| !f.exists())
        .map(|f| f.display().to_string())
        .collect();
    if !missing.is_empty() {
        return (name, Err(anyhow!("no recording {}", missing.join(", "))));
    }
    match check(checker, files, save) {
        Err(e) => (name, Err(e)),
        Ok((0, r)) => (
            name,
            Ok(format!(
                "exit 0, {} events from {} node(s), verdict {}",
                r["summary"]["events"], r["summary"]["nodes"], r["summary"]["verdict"]
            )),
        ),
        Ok((code, r)) => {
            let fs = findings(&r);
            let mut why: Vec<String> = fs.iter().take(6).map(|f| one_line(f)).collect();
            if fs.len() > 6 {
                why.push(format!("... {} findings in all", fs.len()));
            }
            for reason in r["summary"]["incomplete_reasons"]
                .as_array()
                .into_iter()
                .flatten()
            {
                why.push(format!("incomplete: {}", reason.as_str().unwrap_or("?")));
            }
            (
                name,
                Err(anyhow!(
                    "exit {code} (see {}): {}",
                    save.display(),
                    why.join("; ")
                )),
            )
        }
    }
}

/// One fault step's exerciser process: its window on the VM's monotonic
/// clock and the rule it must fire.
struct FaultRun {
    step: String,
    rule: String,
    rc: Option<i32>,
    window: Option<(u64, u64)>,
    pass: bool,
    detail: String,
}

fn fault_runs(dir: &Path) -> Result<Vec<FaultRun>> {
    let list = fs::read_to_string(dir.join("faults.list"))
        .with_context(|| format!("no {}/faults.list (fault pass did not run)", dir.display()))?;
    let rcs = fs::read_to_string(dir.join("faults.rc")).unwrap_or_default();
    let mut out = Vec::new();
    for l in list.lines() {
        let mut it = l.split_whitespace();
        let (Some(step), Some(rule)) = (it.next(), it.next()) else {
            continue;
        };
        let rc = rcs.lines().find_map(|r| {
            let f: Vec<&str> = r.split_whitespace().collect();
            (f.first() == Some(&step)).then(|| f.get(2)?.parse().ok())?
        });
        let journal =
            fs::read_to_string(dir.join(format!("fault-{step}.jsonl"))).unwrap_or_default();
        let recs: Vec<Value> = journal
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let t0 = recs
            .iter()
            .find(|v| v["type"] == "header")
            .and_then(|v| v["t_ns"].as_u64());
        let t1 = recs
            .iter()
            .find(|v| v["type"] == "summary")
            .and_then(|v| v["t_ns"].as_u64());
        let st = recs
            .iter()
            .find(|v| v["type"] == "step" && v["step"] == step);
        out.push(FaultRun {
            step: step.to_string(),
            rule: rule.to_string(),
            rc,
            window: t0.zip(t1),
            pass: st.is_some_and(|v| v["status"] == "pass"),
            detail: st
                .and_then(|v| v["detail"].as_str())
                .unwrap_or("no step record")
                .to_string(),
        });
    }
    if out.is_empty() {
        bail!("{}/faults.list lists no fault step", dir.display());
    }
    Ok(out)
}

/// When a finding happened: its newest evidence event.
fn finding_ts(f: &Value) -> Option<u64> {
    f["evidence"]
        .as_array()?
        .iter()
        .filter_map(|e| e["ts_ns"].as_u64())
        .max()
}

/// The fault verdict: per fault step, exactly its rule; nothing elsewhere.
pub fn faults(checker: &Path, dir: &Path) -> Vec<Line> {
    let mut lines = Vec::new();
    let runs = match fault_runs(dir) {
        Ok(r) => r,
        Err(e) => return vec![("fault pass".into(), Err(e))],
    };
    let (code, report) = match check(checker, &[dir.join("trace.vft")], &dir.join("check.json")) {
        Ok(x) => x,
        Err(e) => return vec![("fault pass: vfio-trace check".into(), Err(e))],
    };
    let all = findings(&report);
    let complete = report["summary"]["complete"] != false;
    lines.push((
        "fault pass: vfio-trace check".into(),
        if code == 1 && complete {
            Ok(format!("exit 1, {} findings", all.len()))
        } else {
            Err(anyhow!(
                "exit {code}, complete {complete} (want 1 and complete): {}",
                report["summary"]["incomplete_reasons"]
            ))
        },
    ));
    let mut claimed = vec![false; all.len()];
    for run in &runs {
        let name = format!("fault {} → {}", run.step, run.rule);
        if run.rc != Some(0) || !run.pass {
            lines.push((
                name,
                Err(anyhow!(
                    "the exerciser step did not pass (exit {:?}): {}",
                    run.rc,
                    run.detail
                )),
            ));
            continue;
        }
        let Some((t0, t1)) = run.window else {
            lines.push((name, Err(anyhow!("its journal has no time window"))));
            continue;
        };
        let mine: Vec<usize> = all
            .iter()
            .enumerate()
            .filter(|(_, f)| finding_ts(f).is_some_and(|t| t >= t0 && t <= t1))
            .map(|(i, _)| i)
            .collect();
        for &i in &mine {
            claimed[i] = true;
        }
        let rules: std::collections::BTreeSet<&str> = mine
            .iter()
            .map(|&i| all[i]["rule"].as_str().unwrap_or("?"))
            .collect();
        let want = run.rule.as_str();
        let r = if rules.len() == 1 && rules.contains(want) {
            Ok(format!(
                "{} finding(s): {}",
                mine.len(),
                one_line(all[mine[0]])
            ))
        } else if rules.is_empty() {
            Err(anyhow!("no finding (expected {want})"))
        } else {
            Err(anyhow!(
                "rules {rules:?}, expected only {want}: {}",
                mine.iter()
                    .map(|&i| one_line(all[i]))
                    .collect::<Vec<_>>()
                    .join("; ")
            ))
        };
        lines.push((name, r));
    }
    let stray: Vec<String> = all
        .iter()
        .zip(&claimed)
        .filter(|(_, c)| !**c)
        .map(|(f, _)| one_line(f))
        .collect();
    lines.push((
        "fault pass: no finding outside the fault steps".into(),
        if stray.is_empty() {
            Ok(format!("{} fault steps", runs.len()))
        } else {
            Err(anyhow!(stray.join("; ")))
        },
    ));
    lines
}

/// The fault steps this scenario exists to run were listed (a step whose
/// precondition the VM lacks, like /dev/kvm or the fault module, would
/// otherwise be skipped silently).
pub fn required_steps(dir: &Path, want: &[&str]) -> Line {
    let name = "fault pass: required fault steps listed".to_string();
    let list = fs::read_to_string(dir.join("faults.list")).unwrap_or_default();
    let listed: Vec<&str> = list
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let missing: Vec<&&str> = want.iter().filter(|w| !listed.contains(w)).collect();
    if missing.is_empty() {
        (
            name,
            Ok(format!("{} required of {}", want.len(), listed.len())),
        )
    } else {
        (
            name,
            Err(anyhow!(
                "not listed by the exerciser in the VM: {missing:?}"
            )),
        )
    }
}

/// Nested: the clean check's report (saved by `clean`) pairs the L2 guest
/// domain with an L1 container serving `bdf`, found automatically, every
/// followed MAP's HVA equal to the memslot's.
pub fn paired(report: &Path, bdf: Option<&str>) -> Line {
    let name = "guest/host pairing found automatically (L2 domain ↔ L1 container)".to_string();
    let r: Value = match fs::read(report).map(|b| serde_json::from_slice(&b)) {
        Ok(Ok(v)) => v,
        _ => return (name, Err(anyhow!("no report in {}", report.display()))),
    };
    let ps = r["summary"]["pairings"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let ok = ps.iter().find(|p| {
        p["guest_node"] == "l2"
            && p["host_node"] == "l1"
            && p["forced"] == false
            && p["hva_disagree"] == 0
            && p["matches"].as_u64().unwrap_or(0) > 0
            && bdf.is_none_or(|b| {
                p["host_devices"]
                    .as_array()
                    .is_some_and(|d| d.iter().any(|x| x == b))
            })
    });
    match ok {
        Some(p) => (
            name,
            Ok(format!(
                "l2 domain {} ↔ l1 container of {}: {} guest MAPs followed, HVA = memslot for {}",
                p["guest_domain"], p["host_devices"], p["matches"], p["hva_agree"]
            )),
        ),
        None => (name, Err(anyhow!("pairings: {}", Value::Array(ps)))),
    }
}
