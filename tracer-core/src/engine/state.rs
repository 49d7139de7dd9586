//! The engine's state: each layer's model, the clock, the join and the
//! health counters. [`apply`](super::apply) is the only writer; rules read
//! it through `&State`.

use super::clock::Clock;
use super::guest::GuestState;
use super::health::Health;
use super::host::HostState;
use super::iommufd::IommufdState;
use super::join::Join;
use super::keys::{ContainerKey, EvId};
use super::msi::MsiState;
use super::EngineConfig;
use crate::event::NodeInfo;

#[derive(Clone, Debug)]
pub(crate) struct State {
    pub(crate) cfg: EngineConfig,
    pub(crate) clock: Clock,
    pub(crate) guest: GuestState,
    pub(crate) host: HostState,
    pub(crate) msi: MsiState,
    pub(crate) join: Join,
    pub(crate) health: Health,
    pub(crate) iommufd: IommufdState,
}

impl State {
    pub(crate) fn new(nodes: Vec<NodeInfo>, cfg: EngineConfig) -> Self {
        let join = Join::new(cfg.join_window_ns, cfg.clock_skew_ns);
        State {
            cfg,
            clock: Clock::new(nodes),
            guest: Default::default(),
            host: Default::default(),
            msi: Default::default(),
            join,
            health: Default::default(),
            iommufd: Default::default(),
        }
    }

    /// The host container's last valid IOVA (the end of the highest range
    /// VFIO_IOMMU_GET_INFO reported) and that GET_INFO's event.
    pub(crate) fn host_last_iova(&self, c: ContainerKey) -> Option<(EvId, u64)> {
        let (iev, info) = self.host.containers.get(&c)?.info.as_ref()?;
        info.iova_ranges
            .iter()
            .map(|r| r.end)
            .max()
            .map(|e| (*iev, e))
    }
}
