//! `cargo xtask lab matrix`: every scenario on every kernel it applies to,
//! each as its own `cargo xtask lab <scenario> --kernel <K> --tracer T`
//! run, its artifacts kept in `target/lab/matrix/<scenario>@<kernel>/`;
//! then `docs/compatibility.md` is written from what those artifacts say
//! (summary.json, kernels.json, not-applicable.json, the recording's probe
//! table, check.json's rules not judged), never from expectations.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
    time::Instant,
};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use tracer_core::{
    event::{EventKind, ProbeState},
    tracefile::read_all,
};

use super::{kernels, scenarios, Arch, LabArgs, NOT_APPLICABLE_EXIT};
use crate::step::{step, workspace_root};

/// Where the matrix keeps each run's artifacts.
pub fn matrix_dir() -> PathBuf {
    workspace_root().join("target/lab/matrix")
}

/// The architecture a scenario's VM runs (its name says it: `arm64-*`).
pub fn scenario_arch(name: &str) -> Arch {
    if name.starts_with("arm64") {
        Arch::Arm64
    } else {
        Arch::X86_64
    }
}

/// The comma-separated list, or every element of `all`.
fn pick<'a>(list: Option<&'a str>, all: &[&'a str]) -> Vec<&'a str> {
    match list {
        Some(l) => l
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect(),
        None => all.to_vec(),
    }
}

/// One finished run of the matrix.
#[derive(Debug, Clone)]
pub struct Cell {
    pub scenario: String,
    pub kernel: String,
    pub exit: Option<i32>,
    pub wall_s: f64,
}

pub fn run(args: &LabArgs) -> Result<()> {
    if args.doc_only {
        return write_doc();
    }
    let pinned: Vec<&str> = kernels::PINNED.iter().map(|p| p.series).collect();
    let ks = pick(args.kernels.as_deref(), &pinned);
    let all: Vec<&str> = scenarios::ALL.iter().map(|s| s.name).collect();
    let scs = pick(args.scenarios.as_deref(), &all);
    for s in &scs {
        if !all.contains(s) {
            bail!("--scenarios: unknown scenario `{s}` (see --list)");
        }
    }
    if ks.is_empty() || scs.is_empty() {
        bail!("nothing to run (--kernels / --scenarios are empty)");
    }
    let tracers = tracers(args, &scs)?;
    // Built now, not inside each run while it holds the machine's VM lock.
    let mut archs = vec![];
    for s in &scs {
        if !archs.contains(&scenario_arch(s)) {
            archs.push(scenario_arch(s));
        }
    }
    for arch in archs {
        step(&format!("exerciser for {}", arch.musl()), || {
            let mut c = crate::step::cmd(
                "cargo",
                [
                    "build",
                    "--release",
                    "-p",
                    "exerciser",
                    "--target",
                    arch.musl(),
                ],
            );
            c.current_dir(workspace_root());
            crate::step::run(&mut c)
        })?;
    }
    // The xtask binary; rebuilt while the matrix runs, /proc names the old
    // one "... (deleted)": the new one at the same path runs the rest.
    let exe = std::env::current_exe().context("the xtask binary")?;
    let exe = PathBuf::from(
        exe.to_string_lossy()
            .trim_end_matches(" (deleted)")
            .to_string(),
    );
    let t0 = Instant::now();
    let mut cells = vec![];
    for k in &ks {
        for s in &scs {
            let arch = scenario_arch(s);
            let name = format!("{s}@{k}");
            let dir = matrix_dir().join(&name);
            if dir.exists() {
                fs::remove_dir_all(&dir)?;
            }
            fs::create_dir_all(&dir)?;
            eprintln!("==> matrix: {s} on kernel {k} ({})", arch.deb());
            let log = fs::File::create(dir.join("run.log"))?;
            let mut c = std::process::Command::new(&exe);
            c.args(["lab", s, "--kernel", k])
                .arg("--tracer")
                .arg(&tracers[&arch.deb()])
                .current_dir(workspace_root())
                .stdout(log.try_clone()?)
                .stderr(log);
            if let Some(g) = &args.guest_kernel {
                c.args(["--guest-kernel", g]);
            }
            if let Some(t) = args.timeout {
                c.args(["--timeout", &t.to_string()]);
            }
            if let Some(a) = &args.accel {
                c.args(["--accel", a]);
            }
            let t = Instant::now();
            let status = c.status().context("running the scenario")?;
            let cell = Cell {
                scenario: s.to_string(),
                kernel: k.to_string(),
                exit: status.code(),
                wall_s: t.elapsed().as_secs_f64(),
            };
            // The scenario's artifacts move under the matrix.
            let art = workspace_root().join("target/lab").join(s);
            if art.exists() {
                fs::rename(&art, dir.join("artifacts"))
                    .with_context(|| format!("moving {}", art.display()))?;
            }
            fs::write(
                dir.join("cell.json"),
                serde_json::to_vec_pretty(&json!({
                    "scenario": cell.scenario, "kernel": cell.kernel,
                    "exit": cell.exit, "wall_s": cell.wall_s,
                }))?,
            )?;
            eprintln!(
                "    {name}: {} in {:.0}s",
                match cell.exit {
                    Some(0) => "PASS".to_string(),
                    Some(NOT_APPLICABLE_EXIT) => "does not apply".to_string(),
                    e => format!("FAIL (exit {e:?})"),
                },
                cell.wall_s
            );
            cells.push(cell);
        }
    }
    write_doc()?;
    let failed: Vec<String> = cells
        .iter()
        .filter(|c| !matches!(c.exit, Some(0) | Some(NOT_APPLICABLE_EXIT)))
        .map(|c| format!("{}@{}", c.scenario, c.kernel))
        .collect();
    eprintln!(
        "lab matrix: {} runs in {:.0}s, {} failed{}",
        cells.len(),
        t0.elapsed().as_secs_f64(),
        failed.len(),
        if failed.is_empty() {
            String::new()
        } else {
            format!(": {}", failed.join(", "))
        }
    );
    if !failed.is_empty() {
        bail!("lab matrix: {} failed", failed.join(", "));
    }
    Ok(())
}

/// docs/compatibility.md from every run kept in target/lab/matrix/.
fn write_doc() -> Result<()> {
    let doc = workspace_root().join("docs/compatibility.md");
    step("docs/compatibility.md", || {
        let text = super::matrix_doc::render(&matrix_dir())?;
        fs::write(&doc, text)?;
        eprintln!("    {}", doc.display());
        Ok(())
    })
}

/// The static vfio-trace for each architecture the scenarios need:
/// `--tracer` (x86_64) / `--tracer-arm64`, else built here.
fn tracers(args: &LabArgs, scs: &[&str]) -> Result<BTreeMap<&'static str, PathBuf>> {
    let mut m = BTreeMap::new();
    for s in scs {
        let arch = scenario_arch(s);
        if m.contains_key(arch.deb()) {
            continue;
        }
        let given = match arch {
            Arch::X86_64 => args.tracer.clone(),
            Arch::Arm64 => args.tracer_arm64.clone(),
        };
        let t = match given {
            Some(t) => t,
            None => step(&format!("vfio-trace for the {} VMs", arch.deb()), || {
                crate::build::musl_binary(arch.musl(), "vfio-trace")
            })?,
        };
        m.insert(arch.deb(), t);
    }
    Ok(m)
}

/// One probe's last status in a recording.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeRow {
    pub probe: String,
    pub attach: String,
    pub state: ProbeState,
    pub reason: String,
    pub hits: u64,
}

/// The probe table a recording ends with (last status per probe).
pub fn probe_table(vft: &Path) -> Result<Vec<ProbeRow>> {
    let (_, events) = read_all(vft).with_context(|| format!("reading {}", vft.display()))?;
    let mut last: BTreeMap<String, ProbeRow> = BTreeMap::new();
    for e in &events {
        if let EventKind::ProbeStatus(p) = &e.kind {
            // Detached at the end: keep what it was while tracing.
            if p.status == ProbeState::Detached {
                if let Some(r) = last.get_mut(&p.probe) {
                    r.hits = r.hits.max(p.hits);
                    continue;
                }
            }
            last.insert(
                p.probe.clone(),
                ProbeRow {
                    probe: p.probe.clone(),
                    attach: p.attach.clone(),
                    state: p.status,
                    reason: p.reason.clone(),
                    hits: p.hits,
                },
            );
        }
    }
    Ok(last.into_values().collect())
}

/// A run's cell.json (None: the run never finished writing it).
pub fn read_cell(dir: &Path) -> Option<Cell> {
    let v: Value = serde_json::from_slice(&fs::read(dir.join("cell.json")).ok()?).ok()?;
    Some(Cell {
        scenario: v["scenario"].as_str()?.to_string(),
        kernel: v["kernel"].as_str()?.to_string(),
        exit: v["exit"].as_i64().map(|e| e as i32),
        wall_s: v["wall_s"].as_f64().unwrap_or(0.0),
    })
}
