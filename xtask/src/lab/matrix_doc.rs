//! Renders `docs/compatibility.md` from the matrix's artifacts
//! (`target/lab/matrix/<scenario>@<kernel>/`): scenario × kernel verdicts,
//! probe × kernel × host IOMMU (attached / missing and why / hits, read
//! from each recording's probe table), rule × kernel (fired by its fault
//! step / not judged and why, from summary.json and check.json).

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt::Write as _,
    fs,
    path::Path,
};

use anyhow::Result;
use serde_json::Value;
use tracer_core::event::ProbeState;

use super::{
    kernels,
    matrix::{probe_table, read_cell, Cell},
    NOT_APPLICABLE_EXIT,
};

/// One run as the document sees it.
struct Run {
    cell: Cell,
    summary: Value,
    kernels: Value,
    not_applicable: Option<Value>,
    /// (level label, probe table) per recording of the clean run.
    probes: Vec<(String, Result<Vec<super::matrix::ProbeRow>, String>)>,
    /// check.json of the clean run and of the fault pass (not_judged).
    checks: Vec<Value>,
}

fn json_at(p: &Path) -> Option<Value> {
    serde_json::from_slice(&fs::read(p).ok()?).ok()
}

fn load(dir: &Path) -> Option<Run> {
    let cell = read_cell(dir)?;
    let a = dir.join("artifacts");
    let mut probes = vec![];
    for (label, rel) in [("host", "trace.vft"), ("L2 guest", "l2/trace.vft")] {
        let p = a.join(rel);
        if p.exists() {
            let label = if rel.starts_with("l2") || !a.join("l2").exists() {
                label.to_string()
            } else {
                "L1 host".to_string()
            };
            probes.push((label, probe_table(&p).map_err(|e| format!("{e:#}"))));
        }
    }
    let checks = ["check.json", "faults/check.json", "l2/check.json"]
        .iter()
        .filter_map(|r| json_at(&a.join(r)))
        .collect();
    Some(Run {
        summary: json_at(&a.join("summary.json")).unwrap_or(Value::Null),
        kernels: json_at(&a.join("kernels.json")).unwrap_or(Value::Null),
        not_applicable: json_at(&a.join("not-applicable.json")),
        probes,
        checks,
        cell,
    })
}

/// The host IOMMU a run emulated, from the QEMU arguments it recorded.
fn host_iommu(r: &Run) -> String {
    let m = r.summary["info"]["machine"].to_string();
    for (needle, name) in [
        ("intel-iommu", "VT-d"),
        ("amd-iommu", "AMD-Vi"),
        ("smmuv3", "SMMUv3"),
        ("virtio-iommu", "virtio-iommu"),
    ] {
        if m.contains(needle) {
            return name.to_string();
        }
    }
    if r.cell.scenario == "nested" {
        // The nested host's IOMMU is the outer QEMU's virtio-iommu.
        return "virtio-iommu".into();
    }
    "?".into()
}

fn cell_text(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The verdict of one run in a table cell.
fn verdict(r: &Run) -> String {
    // The run's own time (summary.json, after it got the VM lock), else
    // the matrix's (with the wait).
    let secs = r.summary["wall_s"].as_f64().unwrap_or(r.cell.wall_s);
    match r.cell.exit {
        Some(0) => format!("PASS ({secs:.0} s)"),
        Some(NOT_APPLICABLE_EXIT) => {
            let ev = r
                .not_applicable
                .as_ref()
                .and_then(|v| v["evidence"].as_array().cloned())
                .unwrap_or_default()
                .iter()
                .filter_map(|e| e.as_str().map(str::to_string))
                .collect::<Vec<_>>()
                .join("; ");
            format!("does not apply: {}", cell_text(&ev))
        }
        e => {
            let reasons: Vec<String> = r.summary["reasons"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            let why = if reasons.is_empty() {
                "no summary.json (see run.log)".to_string()
            } else {
                // The first line of each, shortened: the run's summary.json
                // has them whole.
                let mut w: Vec<String> = reasons
                    .iter()
                    .take(3)
                    .map(|r| {
                        let first = r.lines().next().unwrap_or("");
                        let more = if r.lines().nth(1).is_some() {
                            " …"
                        } else {
                            ""
                        };
                        match first.char_indices().nth(200) {
                            Some((i, _)) => format!("{} …", &first[..i]),
                            None => format!("{first}{more}"),
                        }
                    })
                    .collect();
                if reasons.len() > 3 {
                    w.push(format!("… {} reasons in all", reasons.len()));
                }
                w.join("; ")
            };
            format!(
                "FAIL (exit {}, {:.0} s): {}",
                e.map_or("?".into(), |c| c.to_string()),
                secs,
                cell_text(&why)
            )
        }
    }
}

fn state_name(s: ProbeState) -> &'static str {
    match s {
        ProbeState::Attached => "attached",
        ProbeState::MissingSymbol => "missing symbol",
        ProbeState::Unsupported => "unsupported",
        ProbeState::Failed => "failed",
        ProbeState::Detached => "detached",
    }
}

/// The kernel's exact ABI(s) a run booted, from its kernels.json.
fn abi_of(r: &Run, level: &str) -> String {
    r.kernels[level]["abi"]
        .as_object()
        .map(|m| {
            m.values()
                .filter_map(|v| v.as_str())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect::<Vec<_>>()
                .join(", ")
        })
        .filter(|s| !s.is_empty())
        .or_else(|| {
            r.not_applicable
                .as_ref()
                .and_then(|n| n["release"].as_str().map(str::to_string))
        })
        .unwrap_or_else(|| "?".into())
}

pub fn render(dir: &Path) -> Result<String> {
    let mut runs: Vec<Run> = fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| load(&e.path()))
                .collect()
        })
        .unwrap_or_default();
    let korder = |k: &str| {
        kernels::pinned(k)
            .map(|p| p.abi.to_string())
            .unwrap_or_else(|| k.to_string())
    };
    runs.sort_by(|a, b| {
        kernels::compare_abi(&korder(&a.cell.kernel), &korder(&b.cell.kernel))
            .then(a.cell.scenario.cmp(&b.cell.scenario))
    });
    let mut ks: Vec<String> = vec![];
    let mut scs: Vec<String> = vec![];
    for r in &runs {
        if !ks.contains(&r.cell.kernel) {
            ks.push(r.cell.kernel.clone());
        }
        if !scs.contains(&r.cell.scenario) {
            scs.push(r.cell.scenario.clone());
        }
    }
    let find = |s: &str, k: &str| {
        runs.iter()
            .find(|r| r.cell.scenario == s && r.cell.kernel == k)
    };
    let mut o = String::new();
    writeln!(
        o,
        "# Compatibility matrix: kernels × host IOMMUs × probes × rules\n"
    )?;
    writeln!(
        o,
        "Written by `cargo xtask lab matrix` from the artifacts of {} lab runs \
         (`target/lab/matrix/<scenario>@<kernel>/`): every entry is what a run \
         recorded (the recording's probe table, `summary.json`, `check.json`, the \
         kernel's own config for scenarios that do not apply). Do not edit by hand; \
         run the matrix again. Kernel names: `--kernel` values (`cargo xtask lab \
         --list-kernels`); a run's exact Debian ABI is in the Kernels table.\n",
        runs.len()
    )?;
    // Kernels.
    writeln!(o, "## Kernels\n")?;
    writeln!(
        o,
        "| --kernel | scenario | booted (host level) | guest level | packages |"
    )?;
    writeln!(o, "|---|---|---|---|---|")?;
    for r in &runs {
        let guest = abi_of(r, "guest");
        let host = abi_of(r, "host");
        writeln!(
            o,
            "| {} | {} | {} | {} | {} |",
            r.cell.kernel,
            r.cell.scenario,
            host,
            if guest == host { "same".into() } else { guest },
            cell_text(
                r.summary["info"]["kernel_package_version"]
                    .as_str()
                    .unwrap_or("—")
            )
        )?;
    }
    // Scenarios × kernels.
    writeln!(o, "\n## Scenarios × kernels\n")?;
    writeln!(
        o,
        "PASS: the whole lab verdict (QEMU's trace log as oracle, probe-check, \
         `check` clean on the clean run, the fault pass). Seconds: the run \
         after it got the machine's VM lock, downloads and builds included on \
         the first run of a kernel.\n"
    )?;
    write!(o, "| scenario | host IOMMU |")?;
    for k in &ks {
        write!(o, " {k} |")?;
    }
    writeln!(o)?;
    writeln!(o, "|---|---|{}", "---|".repeat(ks.len()))?;
    for s in &scs {
        let iommu = runs
            .iter()
            .find(|r| &r.cell.scenario == s && r.summary["info"].is_object())
            .or_else(|| runs.iter().find(|r| &r.cell.scenario == s))
            .map(host_iommu)
            .unwrap_or_else(|| "?".into());
        write!(o, "| {s} | {iommu} |")?;
        for k in &ks {
            write!(o, " {} |", find(s, k).map_or("not run".into(), verdict))?;
        }
        writeln!(o)?;
    }
    // Probes.
    writeln!(o, "\n## Probes × kernel × host IOMMU\n")?;
    writeln!(
        o,
        "From the clean run's recording (its last probe table): `attached, N hits`, \
         or the state and the reason the kernel gave. A scenario that did not \
         apply or left no recording has no column.\n"
    )?;
    for s in &scs {
        let cols: Vec<(&Run, &String, &Vec<super::matrix::ProbeRow>)> = ks
            .iter()
            .filter_map(|k| find(s, k))
            .flat_map(|r| {
                r.probes
                    .iter()
                    .filter_map(move |(l, t)| t.as_ref().ok().map(|t| (r, l, t)))
            })
            .collect();
        if cols.is_empty() {
            continue;
        }
        let iommu = host_iommu(cols[0].0);
        writeln!(o, "### {s} (host IOMMU: {iommu})\n")?;
        write!(o, "| probe |")?;
        for (r, l, _) in &cols {
            write!(o, " {} {} |", r.cell.kernel, l)?;
        }
        writeln!(o)?;
        writeln!(o, "|---|{}", "---|".repeat(cols.len()))?;
        let names: BTreeSet<&str> = cols
            .iter()
            .flat_map(|(.., t)| t.iter().map(|p| p.probe.as_str()))
            .collect();
        for n in names {
            write!(o, "| `{n}` |")?;
            for (.., t) in &cols {
                let c = match t.iter().find(|p| p.probe == n) {
                    None => "—".to_string(),
                    Some(p) if p.state == ProbeState::Attached => {
                        format!("attached, {} hits", p.hits)
                    }
                    Some(p) => format!("{}: {}", state_name(p.state), cell_text(&p.reason)),
                };
                write!(o, " {c} |")?;
            }
            writeln!(o)?;
        }
        // Recordings that could not be read are said, not skipped.
        for k in &ks {
            if let Some(r) = find(s, k) {
                for (l, t) in &r.probes {
                    if let Err(e) = t {
                        writeln!(o, "\n{s}@{k} {l}: recording not readable: {}", cell_text(e))?;
                    }
                }
            }
        }
        writeln!(o)?;
    }
    // Rules.
    writeln!(o, "## Rules × kernel\n")?;
    writeln!(
        o,
        "`fired`: the fault pass's step for the rule made vfio-trace report \
         exactly that rule. `not judged`: `check` said a hook the rule needs is \
         missing on that kernel (`summary.not_judged`). Per scenario, separated by \
         line breaks.\n"
    )?;
    let mut rules: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    for r in &runs {
        let checks = r.summary["checks"].as_array().cloned().unwrap_or_default();
        for c in &checks {
            let name = c["check"].as_str().unwrap_or("");
            let Some((step, rule)) = name
                .strip_prefix("fault ")
                .and_then(|x| x.split_once(" → "))
            else {
                continue;
            };
            let text = if c["ok"] == true {
                format!("{}: fired by `{step}`", r.cell.scenario)
            } else {
                format!(
                    "{}: NOT fired by `{step}`: {}",
                    r.cell.scenario,
                    cell_text(c["detail"].as_str().unwrap_or(""))
                )
            };
            rules
                .entry(rule.trim().to_string())
                .or_default()
                .entry(r.cell.kernel.clone())
                .or_default()
                .push(text);
        }
        for cj in &r.checks {
            for nj in cj["summary"]["not_judged"].as_array().into_iter().flatten() {
                let rule = nj["rule"].as_str().unwrap_or("?");
                let text = format!(
                    "{}: not judged on {}: {}",
                    r.cell.scenario,
                    nj["node"].as_str().unwrap_or("the run"),
                    cell_text(nj["reason"].as_str().unwrap_or(""))
                );
                let v = rules
                    .entry(rule.to_string())
                    .or_default()
                    .entry(r.cell.kernel.clone())
                    .or_default();
                if !v.contains(&text) {
                    v.push(text);
                }
            }
        }
    }
    write!(o, "| rule |")?;
    for k in &ks {
        write!(o, " {k} |")?;
    }
    writeln!(o)?;
    writeln!(o, "|---|{}", "---|".repeat(ks.len()))?;
    for (rule, per) in &rules {
        write!(o, "| {rule} |")?;
        for k in &ks {
            let v = per
                .get(k)
                .map(|v| v.join("<br>"))
                .unwrap_or_else(|| "—".into());
            write!(o, " {v} |")?;
        }
        writeln!(o)?;
    }
    if rules.is_empty() {
        writeln!(o, "(no fault pass ran)")?;
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(p: &Path, v: serde_json::Value) {
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, serde_json::to_vec(&v).unwrap()).unwrap();
    }

    #[test]
    fn the_doc_says_what_each_run_recorded() {
        let d = std::env::temp_dir().join(format!("vfio-trace-matrix-{}", std::process::id()));
        let skip = d.join("x86@6.1");
        write(
            &skip.join("cell.json"),
            serde_json::json!({"scenario": "x86", "kernel": "6.1", "exit": 3, "wall_s": 9.0}),
        );
        write(
            &skip.join("artifacts/not-applicable.json"),
            serde_json::json!({"release": "6.1.0-50-amd64", "evidence": [
                "module virtio_iommu: CONFIG_VIRTIO_IOMMU is not set in config-6.1.0-50-amd64"]}),
        );
        let pass = d.join("x86@7.2");
        write(
            &pass.join("cell.json"),
            serde_json::json!({"scenario": "x86", "kernel": "7.2", "exit": 0, "wall_s": 300.0}),
        );
        write(
            &pass.join("artifacts/summary.json"),
            serde_json::json!({"pass": true, "wall_s": 12.4, "reasons": [],
                "info": {"machine": ["-device", "virtio-iommu-pci"]},
                "checks": [
                    {"check": "fault fault_map_overlap → VT008", "ok": true, "detail": "1 finding"},
                    {"check": "fault fault_kernel_vector_freed_unmasked → VT010", "ok": false,
                     "detail": "no finding (expected VT010)"}]}),
        );
        write(
            &pass.join("artifacts/check.json"),
            serde_json::json!({"summary": {"not_judged": [{"rule": "VT010", "node": "guest",
                "reason": "no MSI mask hook"}]}}),
        );
        // A run killed before it finished: no cell.json, not in the doc.
        fs::create_dir_all(d.join("nested@7.2")).unwrap();
        let doc = render(&d).unwrap();
        fs::remove_dir_all(&d).unwrap();
        assert!(doc.contains(
            "| x86 | virtio-iommu | does not apply: module virtio_iommu: \
             CONFIG_VIRTIO_IOMMU is not set in config-6.1.0-50-amd64 | PASS (12 s) |"
        ));
        assert!(doc.contains("x86: fired by `fault_map_overlap`"));
        assert!(doc.contains("x86: NOT fired by `fault_kernel_vector_freed_unmasked`"));
        assert!(doc.contains("x86: not judged on guest: no MSI mask hook"));
        assert!(!doc.contains("nested"));
    }
}
