//! A rule whose kernel hook was missing is reported "not judged" in every
//! format, never silently clean; `--require-all-rules` makes it incomplete.

mod engine_support;

use engine_support::*;
use tracer_core::check::{self, CheckOptions, Report, Verdict};
use tracer_core::engine::RuleId;
use tracer_core::event::*;

fn status(s: &mut Seq, probe: &str, attach: &str, state: ProbeState, reason: &str) {
    s.at(
        HOST,
        0,
        0,
        EventKind::ProbeStatus(ProbeStatus {
            probe: probe.into(),
            attach: attach.into(),
            status: state,
            required: false,
            reason: reason.into(),
            hits: 0,
        }),
    );
}

const MASK_HOOKS: [&str; 10] = [
    "msix_shutdown",
    "msix_startup",
    "msix_mask",
    "msix_unmask",
    "msi_shutdown",
    "msi_startup",
    "msi_mask",
    "msi_unmask",
    "pci_msi_mask",
    "pci_msi_unmask",
];

/// Every kernel probe a rule needs, attached, except the MSI mask hooks.
fn other_hooks(s: &mut Seq) {
    other_hooks_but(s, &[]);
}

fn other_hooks_but(s: &mut Seq, except: &[&str]) {
    let mut seen = Vec::new();
    for r in RuleId::ALL {
        for n in r.needs() {
            for p in n.any_of.iter().flat_map(|a| a.iter()) {
                if !MASK_HOOKS.contains(p) && !except.contains(p) && !seen.contains(p) {
                    seen.push(*p);
                    status(s, p, "kprobe:f", ProbeState::Attached, "");
                }
            }
        }
    }
}

/// A host whose other probes attached; `msix_teardown` is the state of the
/// 7.x MSI-X shutdown hook, the 6.x mask hooks are attached.
fn host(msix_teardown: ProbeState, reason: &str) -> Seq {
    let mut s = Seq::new();
    s.probes_ok();
    other_hooks(&mut s);
    for p in [
        "msix_startup",
        "msi_shutdown",
        "msi_startup",
        "msix_mask",
        "msix_unmask",
    ] {
        status(&mut s, p, "kprobe:f", ProbeState::Attached, "");
    }
    status(
        &mut s,
        "msix_shutdown",
        "kprobe:pci_irq_shutdown_msix",
        msix_teardown,
        reason,
    );
    s.set_iommu();
    s
}

fn junit_skips(r: &Report, rule: &str) -> bool {
    let j = r.to_junit();
    j.contains(&format!("name=\"{rule} "))
        && j.split("<testcase")
            .any(|c| c.contains(rule) && c.contains("<skipped"))
}

#[test]
fn a_teardown_hook_that_exists_but_failed_leaves_vt010_not_judged() {
    let s = host(ProbeState::Failed, "EBUSY");
    let r = check::run(&s.events, &nodes(), &CheckOptions::default());
    assert_eq!(r.summary.verdict, Verdict::Clean);
    assert!(!r.summary.all_rules_judged);
    assert_eq!(r.summary.not_judged.len(), 1, "{:?}", r.summary.not_judged);
    let n = &r.summary.not_judged[0];
    assert_eq!(n.rule, "VT010");
    assert_eq!(n.missing_probes, vec!["msix_shutdown".to_string()]);
    assert!(n.reason.contains("EBUSY"), "{}", n.reason);
    // Text: listed, and the verdict line says it.
    let text = r.to_text();
    assert!(
        text.contains("not judged: VT010 irq-ordering on "),
        "{text}"
    );
    assert!(
        text.ends_with("verdict: clean (not judged: VT010)\n"),
        "{text}"
    );
    // JSON: added fields.
    let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(json["summary"]["verdict"], "clean");
    assert_eq!(json["summary"]["all_rules_judged"], false);
    assert_eq!(json["summary"]["not_judged"][0]["rule"], "VT010");
    assert_eq!(
        json["summary"]["not_judged"][0]["missing_probes"][0],
        "msix_shutdown"
    );
    // JUnit: a skipped test case.
    assert!(junit_skips(&r, "VT010"), "{}", r.to_junit());
    assert!(r.to_junit().contains("skipped=\"1\""));
    assert_eq!(r.exit_code(), 0);

    let strict = CheckOptions {
        require_all_rules: true,
        ..Default::default()
    };
    let r = check::run(&s.events, &nodes(), &strict);
    assert_eq!(r.summary.verdict, Verdict::Incomplete);
    assert_eq!(r.exit_code(), 2);
    assert!(
        r.summary
            .incomplete_reasons
            .iter()
            .any(|w| w.contains("VT010") && w.contains("--require-all-rules")),
        "{:?}",
        r.summary.incomplete_reasons
    );
}

#[test]
fn six_x_kernel_without_the_shutdown_hook_is_judged_through_the_mask() {
    let s = host(ProbeState::MissingSymbol, "not found");
    let r = check::run(&s.events, &nodes(), &CheckOptions::default());
    assert!(
        r.summary.not_judged.is_empty(),
        "{:?}",
        r.summary.not_judged
    );
    assert!(r.summary.all_rules_judged);
    assert!(r.to_text().ends_with("verdict: clean\n"));
    assert!(!r.to_junit().contains("<skipped"));
}

#[test]
fn no_mask_hook_at_all_is_named_with_each_variant() {
    let mut s = host(ProbeState::MissingSymbol, "not found");
    for p in ["msix_mask", "msix_unmask"] {
        status(&mut s, p, "kprobe:f", ProbeState::Detached, "");
    }
    // Detached status after attach: still attached once, so judged.
    let r = check::run(&s.events, &nodes(), &CheckOptions::default());
    assert!(
        r.summary.not_judged.is_empty(),
        "{:?}",
        r.summary.not_judged
    );

    let mut s = Seq::new();
    s.probes_ok();
    other_hooks(&mut s);
    for p in ["msi_shutdown", "msi_startup", "msi_mask", "msi_unmask"] {
        status(&mut s, p, "kprobe:f", ProbeState::Attached, "");
    }
    for p in ["msix_shutdown", "msix_mask", "pci_msi_mask"] {
        status(&mut s, p, "kprobe:f", ProbeState::MissingSymbol, "gone");
    }
    s.set_iommu();
    let r = check::run(&s.events, &nodes(), &CheckOptions::default());
    let n = r
        .summary
        .not_judged
        .iter()
        .find(|n| n.rule == "VT010")
        .expect("VT010 not judged");
    assert_eq!(
        n.missing_probes,
        vec!["msix_shutdown", "msix_mask", "pci_msi_mask"]
    );
}

#[test]
fn doorbell_rule_not_judged_only_where_software_msi_is_used() {
    let mut s = Seq::new();
    s.probes_ok();
    other_hooks_but(&mut s, &["msi_prepare", "msi_prepare_ret"]);
    for p in MASK_HOOKS {
        status(&mut s, p, "kprobe:f", ProbeState::Attached, "");
    }
    for p in ["msi_prepare", "msi_prepare_ret"] {
        status(
            &mut s,
            p,
            "kprobe:iommu_dma_prepare_msi",
            ProbeState::MissingSymbol,
            "CONFIG_IRQ_MSI_IOMMU is off",
        );
    }
    s.set_iommu();
    let only = CheckOptions {
        rules: vec![RuleId::SwMsiUnbacked],
        ..Default::default()
    };
    // x86: no software-MSI window, nothing to judge there.
    let r = check::run(&s.events, &nodes(), &only);
    assert!(
        r.summary.not_judged.is_empty(),
        "{:?}",
        r.summary.not_judged
    );
    // A software-MSI window on the same host: now it matters.
    s.resv(0x800_0000, 0x80f_ffff, ResvType::SwMsi);
    let r = check::run(&s.events, &nodes(), &only);
    assert_eq!(r.summary.not_judged.len(), 1);
    assert!(r.summary.not_judged[0]
        .reason
        .contains("CONFIG_IRQ_MSI_IOMMU"));
}

#[test]
fn synthetic_events_without_probe_statuses_say_nothing_about_hooks() {
    let mut s = Seq::new();
    s.set_iommu();
    let r = check::run(&s.events, &nodes(), &CheckOptions::default());
    assert!(r.summary.not_judged.is_empty());
}

#[test]
fn a_recording_without_the_mask_probes_is_not_judged_for_vt010() {
    // An older vfio-trace: kernel probes, none of the mask hooks.
    let mut s = Seq::new();
    s.probes_ok();
    other_hooks(&mut s);
    s.set_iommu();
    let r = check::run(&s.events, &nodes(), &CheckOptions::default());
    assert_eq!(r.summary.not_judged.len(), 1, "{:?}", r.summary.not_judged);
    assert_eq!(r.summary.not_judged[0].rule, "VT010");
    assert!(r.summary.not_judged[0]
        .reason
        .contains("none of its probes was traced"));
}
