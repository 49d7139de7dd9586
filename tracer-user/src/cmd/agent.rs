//! `vfio-trace agent --connect ADDR`: this machine's probes (a guest, or a
//! second host) streamed to an aggregator (`live`/`record --listen`).
//! Reconnects with backoff, buffers up to `--buffer-mib` while
//! disconnected, and reports at the end what it sent, dropped and lost.

use std::{process::ExitCode, time::Duration};

use anyhow::{bail, Result};
use tokio::{
    sync::{mpsc, watch},
    task::JoinHandle,
};
use tracer_core::{
    event::{Event, ProbeStatus},
    tracefile::synth::MapUnmapTrace,
};

use super::session::{runtime, token, Session, StopWhen};
use crate::{
    cli::AgentArgs,
    net::{
        agent::{AgentConfig, AgentError, AgentReport},
        Addr,
    },
    node,
};

pub fn run(args: AgentArgs) -> Result<ExitCode> {
    let addr = Addr::parse_connect(&args.connect)?;
    // A path that cannot fit a socket address would be retried forever.
    if let Addr::Unix(p) = &addr {
        let n = p.as_os_str().len();
        if n > 107 {
            bail!(
                "--connect {addr}: the socket path is {n} bytes long, at most 107 fit (sun_path)"
            );
        }
    }
    let r = &args.probe.remote;
    if !r.listen.is_empty() || r.no_local || r.max_agents.is_some() || r.agent_timeout.is_some() {
        bail!(
            "--listen, --no-local, --max-agents and --agent-timeout are for live/record/check \
             (the aggregator), not the agent"
        );
    }
    let token = token(r).unwrap_or_default();
    if addr.needs_token() && token.is_empty() {
        bail!("--connect {addr} needs the aggregator's token: --token T or VFIO_TRACE_TOKEN");
    }
    runtime()?.block_on(agent(args, addr, token))
}

/// Where the agent's events come from.
enum Source {
    Probes(Session),
    Synthetic {
        stop: watch::Sender<bool>,
        task: JoinHandle<()>,
    },
}

impl Source {
    fn request_stop(&self) {
        match self {
            Source::Probes(s) => s.request_stop(),
            Source::Synthetic { stop, .. } => {
                let _ = stop.send(true);
            }
        }
    }

    async fn finish(self) -> Result<()> {
        match self {
            Source::Probes(s) => s.finish().await,
            Source::Synthetic { task, .. } => {
                let _ = task.await;
                Ok(())
            }
        }
    }
}

async fn agent(args: AgentArgs, addr: Addr, token: String) -> Result<ExitCode> {
    let mut stop = StopWhen::new(args.duration, &[])?;
    let (source, node, probes, events): (_, _, Vec<ProbeStatus>, _) = match args.synthetic {
        Some(rate) => {
            let node = node::local(args.probe.node.as_deref(), node::detect_role());
            let (tx, rx) = mpsc::channel(256);
            let (stop_tx, stop_rx) = watch::channel(false);
            let task = tokio::spawn(synthetic(rate, tx, stop_rx));
            let source = Source::Synthetic {
                stop: stop_tx,
                task,
            };
            (source, node, Vec::new(), rx)
        }
        None => {
            let mut session = Session::start(&args.probe)?;
            let (_, closed) = mpsc::channel(1);
            let events = std::mem::replace(&mut session.events, closed);
            let (node, probes) = (session.node.clone(), session.probe_table.clone());
            (Source::Probes(session), node, probes, events)
        }
    };
    eprintln!(
        "vfio-trace agent: node {} ({:?}) streaming to {addr}",
        node.name, node.role
    );
    let mut cfg = AgentConfig::new(addr.clone(), node, probes, token);
    cfg.buffer_bytes = args.buffer_mib.max(1) << 20;
    let mut client = tokio::spawn(crate::net::agent::run(cfg, events));
    let result = tokio::select! {
        r = &mut client => r,
        why = stop.wait() => {
            log::info!("stopping: {why:?}");
            source.request_stop();
            client.await
        }
    };
    source.request_stop();
    source.finish().await?;
    match result? {
        Ok(report) => {
            summary(&addr, &report);
            // Exit 2: a script must not take an agent that reached nobody
            // for one that did its job.
            if let Some(why) = report.nothing_delivered() {
                bail!("nothing was delivered to {addr}: {why}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(AgentError::Refused {
            addr,
            code,
            message,
            report,
        }) => {
            summary(&addr, &report);
            bail!("aggregator at {addr} refused this agent ({code:?}): {message}")
        }
    }
}

fn summary(addr: &Addr, r: &AgentReport) {
    // Tests and scripts read this line.
    eprintln!(
        "vfio-trace agent: sent {} of {} events to {addr}; dropped {} (buffer full), lost {} (with connections), unsent {}; {} connection(s)",
        r.sent, r.events_in, r.dropped, r.lost, r.unsent, r.connects
    );
}

/// Testing source: a realistic map/unmap stream at `rate` events a second
/// (0: as fast as the agent takes them), stamped with this clock.
async fn synthetic(rate: u64, tx: mpsc::Sender<Vec<Event>>, mut stop: watch::Receiver<bool>) {
    let mut gen = MapUnmapTrace::new(u64::from(std::process::id()));
    let start = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let mut made = 0u64;
    loop {
        let n = if rate == 0 {
            if stop.has_changed().unwrap_or(true) {
                break;
            }
            4096
        } else {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => break,
            }
            let due = (start.elapsed().as_nanos() * u128::from(rate) / 1_000_000_000) as u64;
            due - made
        };
        if n == 0 {
            continue;
        }
        let now = node::monotonic_ns();
        let batch: Vec<Event> = (0..n)
            .map(|i| {
                let mut e = gen.next().unwrap_or_else(|| unreachable!("endless"));
                e.ts_ns = now + i;
                e
            })
            .collect();
        made += n;
        if tx.send(batch).await.is_err() {
            break;
        }
    }
}
