//! The observer: sits on a live session's event path (between the sources
//! and the command), applies every event to an engine of its own, and
//! feeds `--metrics` ([`Counts`], published to the HTTP side) and
//! `--findings` ([`FindingsLog`]).
//!
//! Findings are raised as they come: those the per-event rules raise at
//! once (after the batch that raised them); the end-of-trace ones (they
//! read the state as it stands: pairings, chains, doorbells) once they
//! have held for [`SETTLE`] (a state between a guest MAP and the host's
//! MAP_DMA is not a chain break), and every one still standing when the
//! session ends. A finding is raised once; counters never go back.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    net::SocketAddr,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use anyhow::Result;
use tokio::sync::{mpsc, watch};
use tracer_core::{
    check::ReportFinding,
    engine::{
        snapshot::{DomainRef, SnapshotOptions},
        Engine, EngineConfig, EvId, Finding, RuleId,
    },
    event::{Event, NodeId, NodeInfo, ProbeState},
};

use super::{
    counts::{Counts, FindingKey},
    server::Server,
};
use crate::{findings_log::FindingsLog, net::aggregator::NodeTable};

/// How long an end-of-trace finding must hold before it is raised live.
pub const SETTLE: Duration = Duration::from_secs(5);
/// How often state (probes, drops, mappings, pairings, agents) is re-read
/// and the counts published.
pub const EVALUATE_EVERY: Duration = Duration::from_secs(1);
/// Recent events kept to attach a finding's evidence to its log line
/// (evidence older than that is left out of the line).
pub const RECENT_EVENTS: usize = 1 << 16;
/// Like the terminal UI's model: each node's events come with their own
/// latency, keep unmatched host calls this long.
const LIVE_SKEW_NS: u64 = 2_000_000_000;

/// What `--metrics` / `--findings` asked for.
#[derive(Clone, Debug, Default)]
pub struct ObserveConfig {
    pub metrics: Option<SocketAddr>,
    pub findings: Option<PathBuf>,
}

impl ObserveConfig {
    pub fn is_empty(&self) -> bool {
        self.metrics.is_none() && self.findings.is_none()
    }
}

/// A finding's identity across evaluations.
type Key = (RuleId, Option<NodeId>, Option<EvId>, Option<(u64, u64)>);

fn key(f: &Finding) -> Key {
    (f.rule, f.node, f.evidence.first().copied(), f.address)
}

pub struct Observer {
    engine: Engine,
    counts: Counts,
    publish: watch::Sender<Arc<Counts>>,
    /// Serving while the observer lives (stops when dropped).
    _server: Option<Server>,
    log: Option<FindingsLog>,
    /// The node table of `--listen` (agents joining), else just this node.
    table: Option<NodeTable>,
    /// The last [`RECENT_EVENTS`] events; the first has id `recent_first`.
    recent: VecDeque<Event>,
    recent_first: EvId,
    /// How many of the engine's raised findings were handled.
    raised_seen: usize,
    emitted: HashSet<Key>,
    /// End-of-trace findings standing, since when.
    settling: HashMap<Key, Instant>,
    last_eval: Instant,
    log_failed: bool,
}

impl Observer {
    /// Binds the metrics address and opens the findings file now, so a
    /// bad one fails before the probes attach. `None` when nothing was
    /// asked for. Must be called inside a tokio runtime.
    pub fn new(cfg: &ObserveConfig, local: &NodeInfo) -> Result<Option<Observer>> {
        if cfg.is_empty() {
            return Ok(None);
        }
        let log = cfg.findings.as_deref().map(FindingsLog::open).transpose()?;
        let counts = Counts::new(&local.name);
        let (publish, page) = watch::channel(Arc::new(counts.clone()));
        let server = cfg.metrics.map(|a| Server::start(a, page)).transpose()?;
        if let Some(s) = &server {
            eprintln!("vfio-trace: metrics at http://{}/metrics", s.addr);
        }
        if let Some(l) = &log {
            eprintln!("vfio-trace: appending findings to {}", l.path().display());
        }
        Ok(Some(Observer {
            engine: Engine::new(
                vec![local.clone()],
                EngineConfig {
                    clock_skew_ns: LIVE_SKEW_NS,
                    ..Default::default()
                },
            ),
            counts,
            publish,
            _server: server,
            log,
            table: None,
            recent: VecDeque::new(),
            recent_first: 0,
            raised_seen: 0,
            emitted: HashSet::new(),
            settling: HashMap::new(),
            last_eval: Instant::now(),
            log_failed: false,
        }))
    }

    /// Follow the aggregator's node table (agents joining).
    pub fn follow(&mut self, table: NodeTable) {
        self.table = Some(table);
    }

    /// Observes `rx`'s batches and passes each on to `tx`, until `rx`
    /// closes; then raises what still stands and publishes the last counts.
    pub async fn run(mut self, mut rx: mpsc::Receiver<Vec<Event>>, tx: mpsc::Sender<Vec<Event>>) {
        let mut tick = tokio::time::interval(EVALUATE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut consumer = true;
        loop {
            tokio::select! {
                batch = rx.recv() => match batch {
                    Some(b) => {
                        self.observe(&b);
                        if consumer && tx.send(b).await.is_err() {
                            consumer = false; // the command stopped reading; keep observing
                        }
                    }
                    None => break,
                },
                _ = tick.tick() => self.evaluate(false),
            }
        }
        self.evaluate(true);
    }

    /// Applies a batch: counts, engine, the findings it raised.
    pub fn observe(&mut self, batch: &[Event]) {
        if let Some(t) = &self.table {
            let nodes = t.snapshot();
            if nodes.len() != self.engine.nodes().len() {
                self.counts.nodes = nodes.iter().map(|n| n.name.clone()).collect();
            }
            self.engine.set_nodes(nodes);
        }
        for ev in batch {
            let id = self.engine.apply(ev);
            self.counts.count_event(ev.node, ev.kind.name());
            if self.recent.is_empty() {
                self.recent_first = id;
            }
            self.recent.push_back(ev.clone());
            if self.recent.len() > RECENT_EVENTS {
                self.recent.pop_front();
                self.recent_first += 1;
            }
        }
        let raised = self.engine.raised();
        if raised.len() > self.raised_seen {
            let new: Vec<Finding> = raised[self.raised_seen..].to_vec();
            self.raised_seen = raised.len();
            for f in &new {
                self.raise(f);
            }
            self.publish();
        }
        if self.last_eval.elapsed() >= EVALUATE_EVERY {
            self.evaluate(false);
        }
    }

    /// Re-reads the state into the counts, raises end-of-trace findings
    /// that settled (all of them when `last`), and publishes.
    pub fn evaluate(&mut self, last: bool) {
        self.last_eval = Instant::now();
        let health = self.engine.health();
        for ((node, _), (p, _)) in &health.probes {
            self.counts.probe(
                *node,
                &p.probe,
                p.status == ProbeState::Attached,
                p.required,
                p.hits,
            );
        }
        let mut drops = Vec::new();
        for (node, d) in &health.drops {
            drops.extend([
                (*node, "ring_full", d.ring_full),
                (*node, "pending_full", d.pending_full),
                (*node, "read_failed", d.read_failed),
                (*node, "undecodable", d.undecodable),
            ]);
        }
        for (node, g) in &health.gaps {
            drops.extend([
                (*node, "agent_buffer_full", g.dropped),
                (*node, "agent_lost", g.lost),
                (*node, "missing_batches", g.missing_batches),
            ]);
        }
        for (node, cause, v) in drops {
            self.counts.drops(node, cause, v);
        }
        self.counts.suppressed(self.engine.suppressed());
        let snap = self.engine.snapshot(SnapshotOptions { max_mappings: 0 });
        self.counts.mappings.values_mut().for_each(|v| *v = 0);
        for n in &snap.nodes {
            for d in &n.domains {
                let layer = match d.id {
                    DomainRef::Guest(_) => "guest",
                    DomainRef::Iommu(_) => "iommu",
                    DomainRef::Container { ioas: 0, .. } => "vfio",
                    DomainRef::Container { .. } => "iommufd",
                };
                *self.counts.mappings.entry((n.node, layer)).or_default() += d.count as u64;
            }
        }
        self.counts.pairings = snap.pairings.len() as u64;
        if let Some(t) = &self.table {
            self.counts.agents_connected = t.connected_agents() as u64;
        }
        // End-of-trace findings: those the per-event rules did not raise.
        let raised: HashSet<Key> = self.engine.raised().iter().map(key).collect();
        let now = Instant::now();
        let mut standing = HashSet::new();
        for f in snap
            .findings
            .iter()
            .rev()
            .filter(|f| !raised.contains(&key(f)))
        {
            let k = key(f);
            standing.insert(k);
            if self.emitted.contains(&k) {
                continue;
            }
            let since = *self.settling.entry(k).or_insert(now);
            if last || now.duration_since(since) >= SETTLE {
                self.raise(f);
            }
        }
        self.settling.retain(|k, _| standing.contains(k));
        self.publish();
    }

    fn publish(&mut self) {
        self.publish.send_replace(Arc::new(self.counts.clone()));
    }

    /// Counts and logs `f` once.
    fn raise(&mut self, f: &Finding) {
        if !self.emitted.insert(key(f)) {
            return;
        }
        self.counts.count_finding(FindingKey {
            rule: f.rule.id(),
            name: f.rule.name(),
            severity: f.rule.severity(),
            node: f.node,
        });
        let Some(log) = self.log.as_mut() else {
            return;
        };
        let evidence: Vec<&Event> = f
            .evidence
            .iter()
            .filter_map(|&id| {
                let i = usize::try_from(id.checked_sub(self.recent_first)?).ok()?;
                self.recent.get(i)
            })
            .collect();
        let suspect = self.engine.health().total_drops() > 0;
        let rf = ReportFinding::new(f.clone(), &evidence, self.engine.nodes(), suspect);
        if let Err(e) = log.append(&rf, "live", SystemTime::now()) {
            self.counts.findings_log_errors += 1;
            if !std::mem::replace(&mut self.log_failed, true) {
                eprintln!("vfio-trace: {e:#} (counted in vfio_trace_findings_log_errors_total)");
            }
        }
    }
}
