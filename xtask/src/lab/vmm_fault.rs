//! The nested fault pass: a buggy VMM. `vmm_fault.c`, preloaded into the
//! inner QEMU in L1, drops one MAP_DMA, maps one page at the wrong HVA and
//! drops one UNMAP_DMA of those QEMU makes to mirror L2's virtio-iommu
//! mappings, and hides the host's IOVA ranges (VFIO_IOMMU_GET_INFO) from
//! QEMU, whose virtio-iommu the fault pass gives a 48-bit input range: L2
//! is told it may map IOVAs the host IOMMU (39 bits) cannot. These are the
//! VMM bugs the cross-layer rules exist for; a correct QEMU cannot be made
//! to commit them. L2 runs its clean steps, then maps a page at 1 << 40
//! (`L2_STEP`). L1's kernel also loads the lab's fault module with a second
//! hardware MSI window (`HW_MSI_WINDOW`), which QEMU does not tell L2 about
//! as MSI. vfio-trace in both levels must report each fault with its rule
//! at its IOVA, and nothing else.

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::{anyhow, Context, Result};
use serde_json::Value;

use super::rules::{self, Line};
use crate::step::{self, cmd};

const SOURCE: &str = include_str!("vmm_fault.c");

/// How L1 runs the inner QEMU with it (paths inside the chroot: /mnt is
/// the fault pass's results share).
pub const INNER_ENV: &str = "env LD_PRELOAD=/mnt/bin/vmm-fault.so VMM_FAULT_LOG=/mnt/vmm-fault.log";

/// Added to the inner QEMU's command line: a virtio-iommu input range
/// wider than the host IOMMU's (QEMU's q35 default is 39 bits, the host's
/// limits would cap it anyway: the shim hides them).
pub const INNER_EXTRA: &str = "-global virtio-iommu-pci.aw-bits=48";

/// The exerciser step L2 runs after its clean steps in the fault pass.
pub const L2_STEP: &str = "fault_guest_iova_beyond_host";

/// A second hardware MSI window L1's kernel reports for edu (the lab's
/// fault module, `hw_msi_window=`), which QEMU never passes to its guest as
/// an MSI region: L2 is not told its doorbells bypass translation there.
pub const HW_MSI_WINDOW: u64 = 0xfd00_0000;

/// L1's /init line that loads the fault module before edu is bound.
pub fn l1_setup() -> String {
    format!(
        "insmod $LAB_BIN/{} hw_msi_window={HW_MSI_WINDOW:#x} || fail \"insmod the fault module\"",
        super::kfault::MODULE
    )
}

/// Each fault the shim (or L1's fault module) injects (its log's first
/// word) and the rule that must report it.
const EXPECTED: &[(&str, &str)] = &[
    ("drop_map", "VT006"),
    ("bad_hva", "VT006"),
    ("drop_unmap", "VT007"),
    ("wide_map", "VT009"),
    ("hw_msi_window", "VT002"),
];

/// Builds `bin/vmm-fault.so` in `dir` with the machine's gcc.
pub fn build(dir: &Path) -> Result<PathBuf> {
    let bin = dir.join("bin");
    fs::create_dir_all(&bin)?;
    let src = dir.join("vmm-fault.c");
    fs::write(&src, SOURCE)?;
    let so = bin.join("vmm-fault.so");
    step::run(&mut cmd(
        "gcc",
        [
            "-shared".as_ref(),
            "-fPIC".as_ref(),
            "-O2".as_ref(),
            "-Wall".as_ref(),
            "-Werror".as_ref(),
            "-o".as_ref(),
            so.as_os_str(),
            src.as_os_str(),
            "-ldl".as_ref(),
        ],
    ))
    .context("building the VMM fault shim (gcc)")?;
    Ok(so)
}

/// The injected faults as the shim logged them: (what, iova).
fn injected(dir: &Path) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = fs::read_to_string(dir.join("vmm-fault.log"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let what = w.next()?.to_string();
            let iova = w.next()?.strip_prefix("iova=0x")?;
            Some((what, u64::from_str_radix(iova, 16).ok()?))
        })
        .collect();
    // L1's fault module: "vfio-trace-fault: hw_msi_window 0xA-0xB reported (added)".
    let dmesg = fs::read_to_string(dir.join("dmesg.txt")).unwrap_or_default();
    if let Some(start) = dmesg.lines().find_map(|l| {
        let rest = l.split("vfio-trace-fault: hw_msi_window 0x").nth(1)?;
        if !l.contains("(added)") {
            return None;
        }
        u64::from_str_radix(rest.split('-').next()?, 16).ok()
    }) {
        out.push(("hw_msi_window".into(), start));
    }
    out
}

/// The last valid IOVA of the ranges the shim hid from QEMU
/// (`hide_iova_ranges last=0x...`).
fn hidden_last(dir: &Path) -> Option<u64> {
    fs::read_to_string(dir.join("vmm-fault.log"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            let h = l.strip_prefix("hide_iova_ranges last=0x")?;
            u64::from_str_radix(h.trim(), 16).ok()
        })
}

/// `vfio-trace check` on both levels' recordings of the fault pass.
pub fn judge(checker: &Path, dir: &Path) -> Vec<Line> {
    let mut out = Vec::new();
    let faults = injected(dir);
    let hidden = hidden_last(dir);
    let all_injected = hidden.is_some()
        && EXPECTED
            .iter()
            .all(|(w, _)| faults.iter().any(|(f, _)| f == w));
    out.push((
        "VMM faults injected in the inner QEMU".to_string(),
        if all_injected {
            Ok(format!(
                "IOVA ranges hidden (last {:#x}); {}",
                hidden.unwrap_or(0),
                faults
                    .iter()
                    .map(|(w, i)| format!("{w} {i:#x}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        } else {
            Err(anyhow!(
                "the shim logged {faults:?} (IOVA ranges hidden: {hidden:x?}), expected {EXPECTED:?} and hidden IOVA ranges"
            ))
        },
    ));
    let files = [dir.join("trace.vft"), dir.join("l2/trace.vft")];
    let report = match rules::check(checker, &files, &dir.join("check.json")) {
        Ok((_, r)) => r,
        Err(e) => {
            out.push(("vfio-trace check (VMM faults)".into(), Err(e)));
            return out;
        }
    };
    let findings = report["findings"].as_array().cloned().unwrap_or_default();
    out.extend(attribute(&findings, &faults));
    out
}

/// A finding is about a page when its address range holds it, or when one
/// of its evidence events maps or unmaps it.
fn covers(f: &Value, iova: u64) -> bool {
    let a = &f["address"];
    let by_address =
        matches!((a[0].as_u64(), a[1].as_u64()), (Some(s), Some(e)) if s <= iova && iova <= e);
    let by_evidence = f["evidence"].as_array().is_some_and(|ev| {
        ev.iter()
            .any(|e| e["iova"].as_u64() == Some(iova) || e["virt_start"].as_u64() == Some(iova))
    });
    by_address || by_evidence
}

/// Each injected fault must be reported by exactly its rule (one root
/// cause, one finding: no other rule at its page), and no finding may lie
/// outside the faulted pages.
fn attribute(findings: &[Value], faults: &[(String, u64)]) -> Vec<Line> {
    let mut out = Vec::new();
    let all = || {
        findings
            .iter()
            .map(rules::one_line)
            .collect::<Vec<_>>()
            .join(" | ")
    };
    for (what, iova) in faults {
        let Some((_, rule)) = EXPECTED.iter().find(|(w, _)| w == what) else {
            continue;
        };
        let at: Vec<&Value> = findings.iter().filter(|f| covers(f, *iova)).collect();
        let hit = at.iter().find(|f| f["rule"] == *rule);
        let others: Vec<String> = at
            .iter()
            .filter(|f| f["rule"] != *rule)
            .map(|f| rules::one_line(f))
            .collect();
        out.push((
            format!("VMM fault {what} at {iova:#x} → {rule} only"),
            match hit {
                Some(f) if others.is_empty() => Ok(rules::one_line(f)),
                Some(_) => Err(anyhow!(
                    "{rule} at {iova:#x}, but other rules too: {}",
                    others.join(" | ")
                )),
                None => Err(anyhow!(
                    "no {rule} finding at {iova:#x}; findings: {}",
                    all()
                )),
            },
        ));
    }
    let stray: Vec<String> = findings
        .iter()
        .filter(|f| !faults.iter().any(|(_, i)| covers(f, *i)))
        .map(rules::one_line)
        .collect();
    out.push((
        "VMM faults: no finding outside the faulted pages".into(),
        if stray.is_empty() {
            Ok(format!("{} findings, all at faulted pages", findings.len()))
        } else {
            Err(anyhow!(stray.join(" | ")))
        },
    ));
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn finding(rule: &str, first: u64, last: u64) -> Value {
        json!({"rule": rule, "name": "", "node": "l2", "message": "m",
               "address": [first, last], "evidence": []})
    }

    #[test]
    fn each_fault_by_exactly_its_rule() {
        let wide = 1u64 << 40;
        let faults = vec![
            ("drop_map".to_string(), 0x205000),
            ("wide_map".to_string(), wide),
        ];
        let ok = [
            finding("VT006", 0x205000, 0x205fff),
            finding("VT009", wide, wide + 0xfff),
        ];
        assert!(attribute(&ok, &faults).iter().all(|(_, r)| r.is_ok()));
        // The refused MAP_DMA also reported as VT008: not one root cause.
        let mut both = ok.to_vec();
        both.push(json!({"rule": "VT008", "address": [wide, wide + 0xfff],
                         "evidence": [{"iova": wide}]}));
        let lines = attribute(&both, &faults);
        assert!(
            lines[1]
                .1
                .as_ref()
                .is_err_and(|e| format!("{e:#}").contains("VT008")),
            "{lines:?}"
        );
        // A finding elsewhere, or the wrong rule.
        let stray = [
            finding("VT006", 0x205000, 0x205fff),
            finding("VT008", wide, wide),
        ];
        let lines = attribute(&stray, &faults);
        assert!(lines[1].1.is_err() && lines[2].1.is_ok(), "{lines:?}");
        let lines = attribute(&[finding("VT008", 0x300000, 0x300fff)], &faults);
        assert!(lines.iter().all(|(_, r)| r.is_err()), "{lines:?}");
    }
}
