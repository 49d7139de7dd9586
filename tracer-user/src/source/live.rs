//! The live source: drains the probes' ring buffer, decodes each record and
//! sends batches downstream. Health (probe status with hit counts, drop
//! counters) is sent as ordinary events once a second and at the end.
//!
//! The probes submit without waking us (a wakeup per event costs more than
//! the probe), so the ring is drained on a short timer. A slow consumer makes
//! `send` wait, the ring fills and the kernel counts drops: losses are always
//! counted, never silent.

use std::time::Duration;

use anyhow::Result;
use tokio::sync::{mpsc, watch};
use tracer_core::{
    decode::decode_into,
    event::{Comm, Event, EventKind, NodeId},
};

use crate::{node::monotonic_ns, probes::Probes};

/// How often the ring is drained.
const DRAIN_EVERY: Duration = Duration::from_millis(10);
/// How often health events are emitted.
const HEALTH_EVERY: Duration = Duration::from_secs(1);

/// Runs until `stop` becomes true, then drains what is left and emits final
/// health events. Returns the probes (still attached) so the caller decides
/// when to detach.
pub async fn run(
    mut probes: Probes,
    node: NodeId,
    tx: mpsc::Sender<Vec<Event>>,
    mut stop: watch::Receiver<bool>,
) -> Result<Probes> {
    let mut ring = probes.take_ring()?;
    let mut drain = tokio::time::interval(DRAIN_EVERY);
    let mut health = tokio::time::interval(HEALTH_EVERY);
    let mut undecodable = 0u64;
    loop {
        let last = tokio::select! {
            _ = drain.tick() => false,
            _ = health.tick() => {
                // Modules loaded since (vfio, virtio_iommu...) get their probes now.
                probes.poll_modules();
                let _ = tx.send(health_events(&probes, node, undecodable)).await;
                false
            }
            _ = stop.changed() => true,
        };
        let mut batch = Vec::new();
        while let Some(item) = ring.next() {
            match decode_into(&item, node, &mut batch) {
                Ok(_) => {}
                Err(e) => {
                    undecodable += 1;
                    log::warn!("undecodable probe record ({} bytes): {e}", item.len());
                }
            }
            if batch.len() >= 4096 && tx.send(std::mem::take(&mut batch)).await.is_err() {
                return Ok(probes);
            }
        }
        if !batch.is_empty() && tx.send(batch).await.is_err() {
            return Ok(probes);
        }
        if last || *stop.borrow() {
            let _ = tx.send(health_events(&probes, node, undecodable)).await;
            return Ok(probes);
        }
    }
}

/// Probe status and drop counters as events of this node.
pub fn health_events(probes: &Probes, node: NodeId, undecodable: u64) -> Vec<Event> {
    let ts_ns = monotonic_ns();
    let mk = |kind| Event {
        ts_ns,
        node,
        pid: 0,
        tid: 0,
        comm: Comm::new("vfio-trace"),
        kind,
    };
    let mut drops = probes.drops();
    drops.undecodable = undecodable;
    probes
        .statuses()
        .into_iter()
        .map(|s| mk(EventKind::ProbeStatus(s)))
        .chain(std::iter::once(mk(EventKind::Drops(drops))))
        .collect()
}
