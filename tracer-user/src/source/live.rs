//! The live source: drains the probes' ring buffer, decodes each record and
//! sends batches downstream. Health (probe status with hit counts, drop
//! counters) is sent as ordinary events: what changed, once a second; all
//! of it at the start and at the end (`health.rs`).
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
    event::{Event, NodeId},
};

use super::{groups::GroupDevices, health::HealthTracker};
use crate::probes::Probes;

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
    let mut tracker = HealthTracker::default();
    // Reserved regions as they are now: reading sysfs makes the kernel
    // compute them, and the probe reports them (groups.rs).
    let mut groups = GroupDevices::default();
    let n = groups.read_all_regions();
    log::debug!("read the reserved regions of {n} IOMMU groups");
    loop {
        let last = tokio::select! {
            _ = drain.tick() => false,
            _ = health.tick() => {
                // Modules loaded since (vfio, virtio_iommu...) get their probes now.
                probes.poll_modules();
                let h = health_events(&probes, node, undecodable, &mut tracker, false);
                if !h.is_empty() {
                    let _ = tx.send(h).await;
                }
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
            if batch.len() >= 4096 {
                groups.attribute(&mut batch);
                if tx.send(std::mem::take(&mut batch)).await.is_err() {
                    return Ok(probes);
                }
            }
        }
        groups.attribute(&mut batch);
        if !batch.is_empty() && tx.send(batch).await.is_err() {
            return Ok(probes);
        }
        if last || *stop.borrow() {
            let h = health_events(&probes, node, undecodable, &mut tracker, true);
            let _ = tx.send(h).await;
            return Ok(probes);
        }
    }
}

/// Probe status and drop counters as events of this node (see
/// `HealthTracker`: changes only unless `full`).
fn health_events(
    probes: &Probes,
    node: NodeId,
    undecodable: u64,
    tracker: &mut HealthTracker,
    full: bool,
) -> Vec<Event> {
    let mut drops = probes.drops();
    drops.undecodable = undecodable;
    tracker.events(probes.statuses(), drops, node, full)
}
