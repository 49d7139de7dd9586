//! A live tracing session: probes attached, the live source running in a
//! task, agents streaming in (`--listen`), and the reasons to stop
//! (duration, SIGINT/SIGTERM, a child command exiting) folded into one
//! signal. Local and remote events arrive on the same channel; remote
//! nodes get ids from 1 (node 0 is this machine) and are announced by
//! [`Notice::Joined`] before their first event.

use std::{process::ExitStatus, time::Duration};

use anyhow::{bail, Context, Result};
use tokio::{
    process::Command,
    signal::unix::{signal, SignalKind},
    sync::{mpsc, watch},
    task::JoinHandle,
};
use tracer_core::event::{Event, NodeInfo};

use crate::{
    cli::{ProbeArgs, RemoteArgs},
    metrics::{ObserveConfig, Observer},
    net::{
        aggregator::{Aggregator, AggregatorConfig, Notice},
        Addr,
    },
    node,
    probes::{LoadOptions, Probes},
    source,
};

/// How often the aggregator pings each agent (clock refinement, liveness).
const PING_EVERY: Duration = Duration::from_secs(1);

pub struct Session {
    pub node: NodeInfo,
    pub events: mpsc::Receiver<Vec<Event>>,
    stop_tx: watch::Sender<bool>,
    /// The local probes' source (none with `--no-local`).
    source: Option<JoinHandle<Result<Probes>>>,
    /// Probe statuses at attach time (for file headers; empty with `--no-local`).
    pub probe_table: Vec<tracer_core::event::ProbeStatus>,
    /// Agents streaming in (`--listen`).
    pub remote: Option<Aggregator>,
    /// `--metrics` / `--findings`: the observer on the event path.
    observer: Option<JoinHandle<()>>,
}

/// The shared token: `--token`, else `$VFIO_TRACE_TOKEN` (empty = none).
pub fn token(args: &RemoteArgs) -> Option<String> {
    args.token
        .clone()
        .or_else(|| std::env::var("VFIO_TRACE_TOKEN").ok())
        .filter(|t| !t.is_empty())
}

impl Session {
    /// Loads and attaches the probes and starts draining them.
    pub fn start(args: &ProbeArgs) -> Result<Session> {
        Self::start_observed(args, &ObserveConfig::default())
    }

    /// [`Session::start`], with `--metrics` / `--findings` observing the
    /// events on their way to the command.
    pub fn start_observed(args: &ProbeArgs, observe: &ObserveConfig) -> Result<Session> {
        let r = &args.remote;
        if r.no_local && r.listen.is_empty() {
            bail!("--no-local needs --listen ADDR (where agents connect)");
        }
        let limits = crate::net::aggregator::limits(r.max_agents, r.agent_timeout)
            .map_err(anyhow::Error::msg)?;
        if r.listen.is_empty() && limits != Default::default() {
            bail!("--max-agents and --agent-timeout need --listen ADDR (where agents connect)");
        }
        let listen = r
            .listen
            .iter()
            .map(|s| Addr::parse_listen(s).map_err(anyhow::Error::from))
            .collect::<Result<Vec<_>>>()?;
        let node = node::local(args.node.as_deref(), node::detect_role());
        let (tx, events) = mpsc::channel(256);
        let (stop_tx, stop_rx) = watch::channel(false);
        // Observing: the sources send to the observer, which passes the
        // batches on to `events`.
        let mut observer = Observer::new(observe, &node)?;
        let (tx, observed) = if observer.is_some() {
            let (tx_in, rx_in) = mpsc::channel(256);
            (tx_in, Some((rx_in, tx)))
        } else {
            (tx, None)
        };
        // Listeners first: a bad address fails before probes attach.
        let remote = if listen.is_empty() {
            None
        } else {
            let agg = Aggregator::start(
                AggregatorConfig {
                    listen,
                    token: token(r),
                    local: node.clone(),
                    ping_every: PING_EVERY,
                    limits,
                },
                tx.clone(),
                stop_rx.clone(),
            )?;
            for a in &agg.bound {
                eprintln!("vfio-trace: listening for agents on {a}");
            }
            if let Some(o) = observer.as_mut() {
                o.follow(agg.nodes.clone());
            }
            Some(agg)
        };
        let observer = match (observer, observed) {
            (Some(o), Some((rx_in, tx_out))) => Some(tokio::spawn(o.run(rx_in, tx_out))),
            _ => None,
        };
        if r.no_local {
            return Ok(Session {
                node,
                events,
                stop_tx,
                source: None,
                probe_table: Vec::new(),
                remote,
                observer,
            });
        }
        let probes = Probes::load(&LoadOptions {
            target_pid: args.pid,
            named: args.probes.clone(),
        })?;
        let probe_table = probes.statuses();
        let skipped: Vec<&str> = probe_table
            .iter()
            .filter(|p| p.status != tracer_core::event::ProbeState::Attached)
            .map(|p| p.probe.as_str())
            .collect();
        if !skipped.is_empty() {
            eprintln!(
                "vfio-trace: {} of {} probes not attached on this kernel ({}); `vfio-trace probes` says why",
                skipped.len(),
                probe_table.len(),
                skipped.join(", ")
            );
        }
        let source = tokio::spawn(source::live::run(probes, 0, tx, stop_rx));
        Ok(Session {
            node,
            events,
            stop_tx,
            source: Some(source),
            probe_table,
            remote,
            observer,
        })
    }

    /// The node table: this machine (id 0), then every agent that joined.
    pub fn nodes(&self) -> Vec<NodeInfo> {
        match &self.remote {
            Some(r) => r.nodes.snapshot(),
            None => vec![self.node.clone()],
        }
    }

    /// A handle that reads the current node table (for views that outlive
    /// a borrow of the session); `None` without `--listen`.
    pub fn node_source(&self) -> Option<crate::tui::ingest::NodeSource> {
        let table = self.remote.as_ref()?.nodes.clone();
        Some(Box::new(move || table.snapshot()))
    }

    /// Takes the remote notices (joins, losses, drops) to show them (they
    /// are logged otherwise); `None` without `--listen`.
    pub fn take_notices(&mut self) -> Option<mpsc::UnboundedReceiver<Notice>> {
        Some(self.remote.as_mut()?.take_notices())
    }

    /// Asks the source to drain what is left and finish; keep reading
    /// `events` until it closes.
    pub fn request_stop(&self) {
        let _ = self.stop_tx.send(true);
    }

    /// Waits for the source and detaches every probe.
    pub async fn finish(self) -> Result<()> {
        if let Some(r) = self.remote {
            r.finish().await;
        }
        if let Some(source) = self.source {
            let probes = source.await.context("live source task")??;
            drop(probes);
        }
        if let Some(o) = self.observer {
            o.await.context("metrics/findings observer task")?;
        }
        Ok(())
    }
}

/// Why a session ends.
#[derive(Debug)]
pub enum StopReason {
    Duration,
    Signal(&'static str),
    CommandExited(ExitStatus),
}

/// Resolves when the first stop condition happens.
pub struct StopWhen {
    duration: Option<Duration>,
    child: Option<tokio::process::Child>,
    // Installed at construction, so a signal arriving before `wait` is
    // polled is still seen (and does not kill the process).
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl StopWhen {
    /// Spawns `command` (if any) now.
    pub fn new(duration: Option<Duration>, command: &[String]) -> Result<Self> {
        let child = match command.split_first() {
            None => None,
            Some((prog, args)) => Some(
                Command::new(prog)
                    .args(args)
                    .spawn()
                    .with_context(|| format!("could not start {prog:?}"))?,
            ),
        };
        Ok(StopWhen {
            duration,
            child,
            int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
            term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
        })
    }

    pub async fn wait(&mut self) -> StopReason {
        let sleep = async {
            match self.duration {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        let child = async {
            match self.child.as_mut() {
                Some(c) => c.wait().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = sleep => StopReason::Duration,
            _ = self.int.recv() => StopReason::Signal("SIGINT"),
            _ = self.term.recv() => StopReason::Signal("SIGTERM"),
            st = child => match st {
                Ok(st) => StopReason::CommandExited(st),
                Err(_) => StopReason::Signal("child wait failed"),
            },
        }
    }
}

/// A current-thread runtime: the work is I/O bound and the probes run in
/// the kernel.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("tokio runtime")
}
