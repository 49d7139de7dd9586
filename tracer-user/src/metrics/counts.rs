//! What `/metrics` shows, as plain data: the observer
//! ([`super::observer`]) folds the event stream and the engine's state
//! into it; the HTTP side renders a published copy ([`Counts::render`]).
//! Counters only grow while the process runs: cumulative counters read
//! from the stream (probe hits, drops) are folded as increments, so a
//! source that restarts from 0 (an agent that came back) adds instead of
//! going back.

use std::collections::BTreeMap;

use tracer_core::{engine::Severity, event::NodeId};

use super::text::{Exposition, Kind};

/// A counter fed with a source's cumulative value.
#[derive(Clone, Debug, Default)]
struct Monotonic {
    last: u64,
    total: u64,
}

impl Monotonic {
    fn fold(&mut self, cumulative: u64) {
        let step = if cumulative >= self.last {
            cumulative - self.last
        } else {
            cumulative // the source started over
        };
        self.total = self.total.saturating_add(step);
        self.last = cumulative;
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct FindingKey {
    pub rule: &'static str,
    pub name: &'static str,
    pub severity: Severity,
    pub node: Option<NodeId>,
}

#[derive(Clone, Debug, Default)]
struct Probe {
    attached: bool,
    required: bool,
    hits: Monotonic,
}

#[derive(Clone, Debug, Default)]
pub struct Counts {
    /// Node names by id (index), for labels.
    pub nodes: Vec<String>,
    events: BTreeMap<(NodeId, &'static str), u64>,
    probes: BTreeMap<(NodeId, String), Probe>,
    drops: BTreeMap<(NodeId, &'static str), Monotonic>,
    /// Gauge: live mappings per (node, layer).
    pub mappings: BTreeMap<(NodeId, &'static str), u64>,
    /// Gauge: guest domains paired with their host side.
    pub pairings: u64,
    /// Gauge: agents connected (`--listen`).
    pub agents_connected: u64,
    findings: BTreeMap<FindingKey, u64>,
    suppressed: Monotonic,
    /// Findings that could not be written to `--findings FILE`.
    pub findings_log_errors: u64,
}

impl Counts {
    /// Counts for node 0 named `local`.
    pub fn new(local: &str) -> Self {
        Counts {
            nodes: vec![local.to_string()],
            ..Default::default()
        }
    }

    pub fn count_event(&mut self, node: NodeId, kind: &'static str) {
        *self.events.entry((node, kind)).or_default() += 1;
    }

    /// A probe's latest status; `hits` is its cumulative hit count.
    pub fn probe(&mut self, node: NodeId, probe: &str, attached: bool, required: bool, hits: u64) {
        let p = self.probes.entry((node, probe.to_string())).or_default();
        p.attached = attached;
        p.required = required;
        p.hits.fold(hits);
    }

    /// A node's cumulative drop counter for `cause`.
    pub fn drops(&mut self, node: NodeId, cause: &'static str, cumulative: u64) {
        self.drops
            .entry((node, cause))
            .or_default()
            .fold(cumulative);
    }

    pub fn count_finding(&mut self, key: FindingKey) {
        *self.findings.entry(key).or_default() += 1;
    }

    /// The engine's cumulative count of findings beyond the per-rule cap.
    pub fn suppressed(&mut self, cumulative: u64) {
        self.suppressed.fold(cumulative);
    }

    fn node(&self, id: NodeId) -> String {
        self.nodes
            .get(usize::from(id))
            .cloned()
            .unwrap_or_else(|| format!("node{id}"))
    }

    /// The page `/metrics` serves.
    pub fn render(&self) -> String {
        let mut e = Exposition::new();
        let local = self.node(0);
        e.family(
            "vfio_trace_build_info",
            Kind::Gauge,
            "vfio-trace's version and target; always 1.",
        )
        .sample(
            &[
                ("version", env!("CARGO_PKG_VERSION")),
                ("arch", std::env::consts::ARCH),
                ("node", &local),
            ],
            1,
        );
        let mut f = e.family(
            "vfio_trace_events_total",
            Kind::Counter,
            "Events received, by node and event kind.",
        );
        for ((n, kind), v) in &self.events {
            f.sample(&[("node", &self.node(*n)), ("kind", kind)], *v);
        }
        let mut f = e.family(
            "vfio_trace_probe_attached",
            Kind::Gauge,
            "1 when the probe is attached now, 0 when it is not (latest probe_status); required=\"true\" for a --probe the user asked for.",
        );
        for ((n, probe), p) in &self.probes {
            let required = if p.required { "true" } else { "false" };
            f.sample(
                &[
                    ("node", &self.node(*n)),
                    ("probe", probe),
                    ("required", required),
                ],
                u64::from(p.attached),
            );
        }
        let mut f = e.family(
            "vfio_trace_probe_hits_total",
            Kind::Counter,
            "Times each probe's program ran (from its probe_status reports).",
        );
        for ((n, probe), p) in &self.probes {
            f.sample(&[("node", &self.node(*n)), ("probe", probe)], p.hits.total);
        }
        let mut f = e.family(
            "vfio_trace_drops_total",
            Kind::Counter,
            "Records lost or damaged, by node and cause: ring_full, pending_full, read_failed, undecodable (probes), agent_buffer_full, agent_lost, missing_batches (agent streams).",
        );
        for ((n, cause), v) in &self.drops {
            f.sample(&[("node", &self.node(*n)), ("cause", cause)], v.total);
        }
        let mut f = e.family(
            "vfio_trace_mappings",
            Kind::Gauge,
            "Live IOVA mappings, by node and layer (guest, vfio, iommufd, iommu).",
        );
        for ((n, layer), v) in &self.mappings {
            f.sample(&[("node", &self.node(*n)), ("layer", layer)], *v);
        }
        e.family(
            "vfio_trace_pairings",
            Kind::Gauge,
            "Guest IOMMU domains paired with the host container serving them.",
        )
        .sample(&[], self.pairings);
        e.family(
            "vfio_trace_agents_connected",
            Kind::Gauge,
            "Agents connected now (--listen).",
        )
        .sample(&[], self.agents_connected);
        let mut f = e.family(
            "vfio_trace_findings_total",
            Kind::Counter,
            "Findings raised, by rule, rule name, severity and node.",
        );
        for (k, v) in &self.findings {
            let node = k.node.map(|n| self.node(n)).unwrap_or_default();
            let severity = k.severity.to_string();
            f.sample(
                &[
                    ("rule", k.rule),
                    ("name", k.name),
                    ("severity", &severity),
                    ("node", &node),
                ],
                *v,
            );
        }
        e.family(
            "vfio_trace_findings_suppressed_total",
            Kind::Counter,
            "Findings not kept beyond the per-rule cap.",
        )
        .sample(&[], self.suppressed.total);
        e.family(
            "vfio_trace_findings_log_errors_total",
            Kind::Counter,
            "Findings that could not be written to --findings FILE.",
        )
        .sample(&[], self.findings_log_errors);
        e.finish()
    }
}

#[cfg(test)]
mod tests {
    use tracer_core::engine::RuleId;

    use super::*;

    fn key(rule: RuleId, node: NodeId) -> FindingKey {
        FindingKey {
            rule: rule.id(),
            name: rule.name(),
            severity: rule.severity(),
            node: Some(node),
        }
    }

    /// The value of the sample of `page` starting with `series`.
    fn value(page: &str, series: &str) -> Option<u64> {
        page.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn renders_every_family_with_labels() {
        let mut c = Counts::new("host");
        c.nodes.push("guest\"1".into());
        c.count_event(0, "vfio_map_dma");
        c.count_event(0, "vfio_map_dma");
        c.count_event(1, "viommu_req");
        c.probe(0, "vfio_ioctl", true, true, 7);
        c.drops(1, "agent_buffer_full", 3);
        c.mappings.insert((1, "guest"), 31);
        c.pairings = 1;
        c.agents_connected = 1;
        c.count_finding(key(RuleId::MapFailed, 0));
        let page = c.render();
        let v = |s: &str| value(&page, s);
        assert_eq!(
            v(r#"vfio_trace_events_total{node="host",kind="vfio_map_dma"}"#),
            Some(2)
        );
        assert_eq!(
            v(r#"vfio_trace_events_total{node="guest\"1",kind="viommu_req"}"#),
            Some(1)
        );
        assert_eq!(
            v(r#"vfio_trace_probe_attached{node="host",probe="vfio_ioctl",required="true"}"#),
            Some(1)
        );
        assert_eq!(
            v(r#"vfio_trace_probe_hits_total{node="host",probe="vfio_ioctl"}"#),
            Some(7)
        );
        assert_eq!(
            v(r#"vfio_trace_drops_total{node="guest\"1",cause="agent_buffer_full"}"#),
            Some(3)
        );
        assert_eq!(
            v(r#"vfio_trace_mappings{node="guest\"1",layer="guest"}"#),
            Some(31)
        );
        assert_eq!(v("vfio_trace_pairings"), Some(1));
        assert_eq!(v("vfio_trace_agents_connected"), Some(1));
        assert_eq!(
            v(
                r#"vfio_trace_findings_total{rule="VT008",name="map-failed",severity="warning",node="host"}"#
            ),
            Some(1)
        );
        assert!(page.starts_with("# HELP vfio_trace_build_info "), "{page}");
        assert!(page.contains(&format!(
            "vfio_trace_build_info{{version=\"{}\",arch=\"{}\",node=\"host\"}} 1\n",
            env!("CARGO_PKG_VERSION"),
            std::env::consts::ARCH
        )));
        // Every family: HELP then TYPE, once.
        for fam in [
            "vfio_trace_events_total",
            "vfio_trace_probe_attached",
            "vfio_trace_probe_hits_total",
            "vfio_trace_drops_total",
            "vfio_trace_mappings",
            "vfio_trace_pairings",
            "vfio_trace_agents_connected",
            "vfio_trace_findings_total",
            "vfio_trace_findings_suppressed_total",
            "vfio_trace_findings_log_errors_total",
        ] {
            assert_eq!(page.matches(&format!("# HELP {fam} ")).count(), 1, "{fam}");
            assert_eq!(page.matches(&format!("# TYPE {fam} ")).count(), 1, "{fam}");
        }
    }

    #[test]
    fn counters_never_go_back() {
        let mut c = Counts::default();
        let hits = |c: &Counts| {
            value(
                &c.render(),
                r#"vfio_trace_probe_hits_total{node="node0",probe="p"}"#,
            )
        };
        let drops = |c: &Counts| {
            value(
                &c.render(),
                r#"vfio_trace_drops_total{node="node0",cause="ring_full"}"#,
            )
        };
        let mut seen = (0, 0);
        // Cumulative reports, then the source restarts (back to 2), then grows.
        for (h, d) in [(5, 1), (9, 1), (9, 4), (2, 0), (6, 3)] {
            c.probe(0, "p", true, false, h);
            c.drops(0, "ring_full", d);
            let now = (hits(&c).unwrap(), drops(&c).unwrap());
            assert!(now.0 >= seen.0 && now.1 >= seen.1, "{now:?} after {seen:?}");
            seen = now;
        }
        // 5 + 4 + 0 + 2 + 4; 1 + 0 + 3 + 0 + 3.
        assert_eq!(seen, (15, 7));
        c.suppressed(3);
        c.suppressed(1);
        assert_eq!(
            value(&c.render(), "vfio_trace_findings_suppressed_total"),
            Some(4)
        );
        for _ in 0..3 {
            c.count_finding(key(RuleId::ChainBreak, 0));
        }
        assert!(c.render().contains(
            r#"vfio_trace_findings_total{rule="VT006",name="chain-break",severity="error",node="node0"} 3"#
        ));
    }

    #[test]
    fn a_node_without_a_name_is_named_by_id() {
        let mut c = Counts::default();
        c.count_event(3, "drops");
        assert!(c
            .render()
            .contains(r#"vfio_trace_events_total{node="node3",kind="drops"} 1"#));
    }
}
