//! What each rule needs from the kernel, and whether a recording or a live
//! run had it: a rule whose hook was missing is "not judged", never silently
//! clean.
//!
//! A rule declares [`Need`]s ([`RuleId::needs`]); a need names the probes
//! (the attach table's names, `vfio-trace probes`) that provide it, as
//! alternatives in order of preference: the first alternative whose kernel
//! function *exists* on the node decides. It is met when that alternative
//! attached; an alternative the kernel lacks (`missing_symbol`) hands over
//! to the next; one that exists but could not attach (refused, failed)
//! leaves the need unmet, since a later alternative would not see the same
//! calls. Probes of a module that never loaded on the node are vacuously
//! met: the kernel never did that work there, so nothing was missed.
//!
//! The judge is pure: it reads the probe statuses a node reported (live or
//! from a trace file) through a lookup, so `check`, the TUI's Health view
//! and `vfio-trace probes` agree.

use serde::Serialize;

use super::RuleId;
use crate::event::ProbeState;

/// The reason a module-gated probe waits with (after the module's name):
/// the loader writes it, the judge recognises it.
pub const WAITING_FOR_MODULE: &str = "not loaded; attaches when it loads";

/// When a need applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    Always,
    /// Only on a node where a software-MSI reserved window was seen (the
    /// doorbell is then mapped by the kernel; other hosts have none).
    SwMsiWindow,
}

/// One kernel capability a rule judges with.
#[derive(Clone, Copy, Debug)]
pub struct Need {
    /// What the rule judges with it, in words.
    pub purpose: &'static str,
    /// Alternatives in order of preference; each is a set of probes that
    /// work together (an entry and its return). The first probe of an
    /// alternative tells whether the kernel has it.
    pub any_of: &'static [&'static [&'static str]],
    pub when: When,
}

/// A probe's status on one node, as the judge reads it.
#[derive(Clone, Copy, Debug)]
pub struct ProbeView<'a> {
    pub status: ProbeState,
    /// Attached at some point of the run.
    pub ever_attached: bool,
    pub attach: &'a str,
    pub reason: &'a str,
}

/// A rule that could not be judged (on one node), and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NotJudged {
    /// `VT010`…
    pub rule: String,
    pub name: String,
    /// Node name (None: the run as a whole, e.g. a live `probes` listing).
    pub node: Option<String>,
    /// Probes whose absence makes it unjudgeable (the preferred variant
    /// first).
    pub missing_probes: Vec<String>,
    /// What cannot be judged and what the kernel said.
    pub reason: String,
}

/// The outcome of one need.
enum Verdict {
    Met,
    Unmet {
        probes: Vec<String>,
        why: String,
    },
    /// None of its probes is in the run's table.
    Unknown,
}

fn waiting(v: &ProbeView<'_>) -> bool {
    v.status == ProbeState::MissingSymbol && v.reason.contains(WAITING_FOR_MODULE)
}

fn judge_need<'a>(need: &Need, probe: &impl Fn(&str) -> Option<ProbeView<'a>>) -> Verdict {
    let mut absent: Vec<(String, String)> = Vec::new();
    for alt in need.any_of {
        let Some(first) = alt.first() else { continue };
        let Some(v) = probe(first) else {
            // Not in this run's table (an older recording): it says nothing.
            continue;
        };
        if waiting(&v) {
            return Verdict::Met;
        }
        if v.ever_attached {
            let lost: Vec<(&str, ProbeView<'a>)> = alt[1..]
                .iter()
                .filter_map(|p| probe(p).map(|v| (*p, v)))
                .filter(|(_, v)| !v.ever_attached && !waiting(v))
                .collect();
            if lost.is_empty() {
                return Verdict::Met;
            }
            return Verdict::Unmet {
                probes: lost.iter().map(|(p, _)| p.to_string()).collect(),
                why: lost
                    .iter()
                    .map(|(p, v)| describe(p, v))
                    .collect::<Vec<_>>()
                    .join("; "),
            };
        }
        if v.status == ProbeState::MissingSymbol {
            absent.push((first.to_string(), describe(first, &v)));
            continue;
        }
        // The kernel has it, but it did not attach: a later variant would
        // not see the calls this one is for.
        return Verdict::Unmet {
            probes: vec![first.to_string()],
            why: describe(first, &v),
        };
    }
    if absent.is_empty() {
        return Verdict::Unknown;
    }
    Verdict::Unmet {
        probes: absent.iter().map(|(p, _)| p.clone()).collect(),
        why: format!(
            "the kernel has none of its hooks: {}",
            absent
                .iter()
                .map(|(_, d)| d.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        ),
    }
}

fn describe(probe: &str, v: &ProbeView<'_>) -> String {
    let state = match v.status {
        ProbeState::Attached => "attached",
        ProbeState::MissingSymbol => "missing",
        ProbeState::Unsupported => "unsupported",
        ProbeState::Failed => "failed",
        ProbeState::Detached => "never attached",
    };
    if v.reason.is_empty() {
        format!("{probe} ({}) {state}", v.attach)
    } else {
        format!("{probe} ({}) {state}: {}", v.attach, v.reason)
    }
}

/// How a node reported its probes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reported {
    /// A software-MSI window was seen there (`None`: not known, as before
    /// a run; conditional needs are then judged as if one were).
    pub sw_msi_window: Option<bool>,
    /// It reported kernel-function probes: a need none of whose probes it
    /// reported was not traced (a recording by an older vfio-trace).
    /// Without any (synthetic events, a tracepoint-only source) nothing is
    /// said about needs it did not report.
    pub kernel_probes: bool,
}

/// Whether an `attach` point (`kprobe:f`, `kretprobe:f`, `fexit:f`) is a
/// kernel-function probe.
pub fn is_kernel_function(attach: &str) -> bool {
    ["kprobe:", "kretprobe:", "fexit:", "fentry:"]
        .iter()
        .any(|p| attach.starts_with(p))
}

/// Whether `rule` can be judged on a node whose probe statuses `probe`
/// looks up (by probe name; `None`: not in that run's table). `None` when
/// judgeable.
pub fn judge<'a>(
    rule: RuleId,
    node: Option<&str>,
    probe: impl Fn(&str) -> Option<ProbeView<'a>>,
    reported: Reported,
) -> Option<NotJudged> {
    let sw_msi_window = reported.sw_msi_window;
    let mut probes = Vec::new();
    let mut why = Vec::new();
    for need in rule.needs() {
        if need.when == When::SwMsiWindow && sw_msi_window == Some(false) {
            continue;
        }
        let (p, w) = match judge_need(need, &probe) {
            Verdict::Met => continue,
            Verdict::Unknown if !reported.kernel_probes => continue,
            Verdict::Unknown => (
                need.any_of
                    .iter()
                    .filter_map(|a| a.first())
                    .map(|p| p.to_string())
                    .collect(),
                "none of its probes was traced (recorded by a vfio-trace without them)".to_string(),
            ),
            Verdict::Unmet { probes, why } => (probes, why),
        };
        let cond = match (need.when, sw_msi_window) {
            (When::SwMsiWindow, None) => " (on a software-MSI host)",
            _ => "",
        };
        why.push(format!("{}{cond} cannot be judged: {w}", need.purpose));
        for p in p {
            if !probes.contains(&p) {
                probes.push(p);
            }
        }
    }
    if why.is_empty() {
        return None;
    }
    Some(NotJudged {
        rule: rule.id().to_string(),
        name: rule.name().to_string(),
        node: node.map(str::to_string),
        missing_probes: probes,
        reason: why.join("; "),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn rep(sw_msi_window: Option<bool>) -> Reported {
        Reported {
            sw_msi_window,
            kernel_probes: true,
        }
    }

    fn view(status: ProbeState, ever: bool, reason: &'static str) -> ProbeView<'static> {
        ProbeView {
            status,
            ever_attached: ever,
            attach: "kprobe:f",
            reason,
        }
    }

    fn table(
        rows: &[(&'static str, ProbeView<'static>)],
    ) -> BTreeMap<&'static str, ProbeView<'static>> {
        rows.iter().copied().collect()
    }

    fn vt010_base() -> Vec<(&'static str, ProbeView<'static>)> {
        let on = view(ProbeState::Attached, true, "");
        vec![
            ("vfio_set_irqs", on),
            ("msi_vector", on),
            ("msi_vector_ret", on),
            ("msi_write", on),
        ]
    }

    #[test]
    fn seven_x_mask_on_teardown_uses_shutdown() {
        let on = view(ProbeState::Attached, true, "");
        let mut rows = vt010_base();
        rows.extend([
            ("msix_shutdown", on),
            ("msix_startup", on),
            ("msi_shutdown", on),
            ("msi_startup", on),
            ("msix_mask", on),
            ("msix_unmask", on),
            ("msi_mask", on),
            ("msi_unmask", on),
        ]);
        let t = table(&rows);
        assert_eq!(
            judge(RuleId::IrqOrdering, None, |p| t.get(p).copied(), rep(None)),
            None
        );
    }

    #[test]
    fn six_x_falls_back_to_mask_when_shutdown_is_absent() {
        let on = view(ProbeState::Attached, true, "");
        let gone = view(ProbeState::MissingSymbol, false, "not found");
        let mut rows = vt010_base();
        rows.extend([
            ("msix_shutdown", gone),
            ("msix_startup", gone),
            ("msi_shutdown", gone),
            ("msi_startup", gone),
            ("msix_mask", on),
            ("msix_unmask", on),
            ("msi_mask", on),
            ("msi_unmask", on),
        ]);
        let t = table(&rows);
        assert_eq!(
            judge(RuleId::IrqOrdering, None, |p| t.get(p).copied(), rep(None)),
            None
        );
    }

    #[test]
    fn an_existing_hook_that_failed_is_not_replaced_by_the_next_variant() {
        let on = view(ProbeState::Attached, true, "");
        let failed = view(ProbeState::Failed, false, "EBUSY");
        let mut rows = vt010_base();
        rows.extend([
            ("msix_shutdown", failed),
            ("msi_shutdown", on),
            ("msi_startup", on),
            ("msix_mask", on),
            ("msix_unmask", on),
        ]);
        let t = table(&rows);
        let nj = judge(
            RuleId::IrqOrdering,
            Some("host"),
            |p| t.get(p).copied(),
            rep(None),
        )
        .expect("VT010 not judged");
        assert_eq!(nj.rule, "VT010");
        assert_eq!(nj.node.as_deref(), Some("host"));
        assert_eq!(nj.missing_probes, vec!["msix_shutdown".to_string()]);
        assert!(nj.reason.contains("EBUSY"), "{}", nj.reason);
    }

    #[test]
    fn no_mask_hook_at_all_is_not_judged_and_names_each_variant() {
        let gone = view(ProbeState::MissingSymbol, false, "not found");
        let mut rows = vt010_base();
        for p in [
            "msix_shutdown",
            "msix_mask",
            "pci_msi_mask",
            "msi_shutdown",
            "msi_mask",
        ] {
            rows.push((p, gone));
        }
        let t = table(&rows);
        let nj = judge(RuleId::IrqOrdering, None, |p| t.get(p).copied(), rep(None)).unwrap();
        for p in ["msix_shutdown", "msix_mask", "pci_msi_mask"] {
            assert!(nj.missing_probes.iter().any(|m| m == p), "{nj:?}");
        }
        assert!(nj.reason.contains("none of its hooks"), "{}", nj.reason);
    }

    #[test]
    fn doorbell_need_applies_only_on_software_msi_hosts() {
        let on = view(ProbeState::Attached, true, "");
        let gone = view(
            ProbeState::MissingSymbol,
            false,
            "CONFIG_IRQ_MSI_IOMMU is off",
        );
        let t = table(&[
            ("msi_write", on),
            ("iommu_map", on),
            ("iommu_map_ret", on),
            ("msi_prepare", gone),
            ("msi_prepare_ret", gone),
        ]);
        let get = |p: &str| t.get(p).copied();
        assert_eq!(
            judge(RuleId::SwMsiUnbacked, None, get, rep(Some(false))),
            None
        );
        let nj = judge(RuleId::SwMsiUnbacked, None, get, rep(Some(true))).unwrap();
        assert!(nj.reason.contains("CONFIG_IRQ_MSI_IOMMU"), "{}", nj.reason);
        let nj = judge(RuleId::SwMsiUnbacked, None, get, rep(None)).unwrap();
        assert!(
            nj.reason.contains("on a software-MSI host"),
            "{}",
            nj.reason
        );
    }

    #[test]
    fn a_module_that_never_loaded_leaves_nothing_unjudged() {
        let wait = view(
            ProbeState::MissingSymbol,
            false,
            "module vfio_iommu_type1 not loaded; attaches when it loads",
        );
        let on = view(ProbeState::Attached, true, "");
        let t = table(&[
            ("vfio_pin", wait),
            ("vfio_pin_ret", wait),
            ("iommu_map", on),
            ("iommu_map_ret", on),
        ]);
        assert_eq!(
            judge(RuleId::ChainBreak, None, |p| t.get(p).copied(), rep(None)),
            None
        );
    }

    #[test]
    fn a_return_half_that_never_attached_is_named() {
        let on = view(ProbeState::Attached, true, "");
        let failed = view(ProbeState::Failed, false, "maxactive");
        let t = table(&[
            ("vfio_pin", on),
            ("vfio_pin_ret", failed),
            ("iommu_map", on),
            ("iommu_map_ret", on),
        ]);
        let nj = judge(RuleId::ChainBreak, None, |p| t.get(p).copied(), rep(None)).unwrap();
        assert_eq!(nj.missing_probes, vec!["vfio_pin_ret".to_string()]);
    }

    #[test]
    fn a_need_none_of_whose_probes_was_recorded_is_not_judged_only_with_kernel_probes() {
        let on = view(ProbeState::Attached, true, "");
        let t = table(&[
            ("vfio_set_irqs", on),
            ("msi_vector", on),
            ("msi_vector_ret", on),
            ("msi_write", on),
        ]);
        let get = |p: &str| t.get(p).copied();
        let nj = judge(RuleId::IrqOrdering, None, get, rep(None)).unwrap();
        assert!(
            nj.reason.contains("none of its probes was traced"),
            "{}",
            nj.reason
        );
        // pci_msi_mask serves MSI and MSI-X: named once.
        assert_eq!(
            nj.missing_probes,
            vec![
                "msix_shutdown",
                "msix_mask",
                "pci_msi_mask",
                "msi_shutdown",
                "msi_mask"
            ]
        );
        let silent = Reported {
            sw_msi_window: None,
            kernel_probes: false,
        };
        assert_eq!(judge(RuleId::IrqOrdering, None, get, silent), None);
    }

    #[test]
    fn every_needed_probe_name_is_declared_once_per_need() {
        for r in RuleId::ALL {
            for n in r.needs() {
                assert!(!n.any_of.is_empty(), "{r}: {}", n.purpose);
                assert!(n.any_of.iter().all(|a| !a.is_empty()), "{r}");
            }
        }
    }
}
