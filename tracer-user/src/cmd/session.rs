//! A live tracing session: probes attached, the live source running in a
//! task, and the reasons to stop (duration, SIGINT/SIGTERM, a child command
//! exiting) folded into one signal.

use std::{process::ExitStatus, time::Duration};

use anyhow::{Context, Result};
use tokio::{
    process::Command,
    signal::unix::{signal, SignalKind},
    sync::{mpsc, watch},
    task::JoinHandle,
};
use tracer_core::event::{Event, NodeInfo};

use crate::{
    cli::ProbeArgs,
    node,
    probes::{LoadOptions, Probes},
    source,
};

pub struct Session {
    pub node: NodeInfo,
    pub events: mpsc::Receiver<Vec<Event>>,
    stop_tx: watch::Sender<bool>,
    source: JoinHandle<Result<Probes>>,
    /// Probe statuses at attach time (for file headers).
    pub probe_table: Vec<tracer_core::event::ProbeStatus>,
}

impl Session {
    /// Loads and attaches the probes and starts draining them.
    pub fn start(args: &ProbeArgs) -> Result<Session> {
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
        let node = node::local(args.node.as_deref(), node::detect_role());
        let (tx, events) = mpsc::channel(256);
        let (stop_tx, stop_rx) = watch::channel(false);
        let source = tokio::spawn(source::live::run(probes, 0, tx, stop_rx));
        Ok(Session {
            node,
            events,
            stop_tx,
            source,
            probe_table,
        })
    }

    /// Asks the source to drain what is left and finish; keep reading
    /// `events` until it closes.
    pub fn request_stop(&self) {
        let _ = self.stop_tx.send(true);
    }

    /// Waits for the source and detaches every probe.
    pub async fn finish(self) -> Result<()> {
        let probes = self.source.await.context("live source task")??;
        drop(probes);
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
