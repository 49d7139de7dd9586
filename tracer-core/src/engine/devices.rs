//! Which host container and IOMMU domains a host device uses.
//!
//! Nothing traced names the container of a VFIO device directly (the group
//! ioctls are not decoded), so the tie is inferred from what is:
//!
//! - `iommu_dma_prepare_msi` names the device and the domain it maps the
//!   doorbell into (`msi_doorbell_map`), and a container owns the domains its
//!   MAP_DMAs were seen `iommu_map`ping into;
//! - the process that configures the device's interrupts
//!   (`VFIO_DEVICE_SET_IRQS`) is the VMM owning it: when that process has a
//!   single container (or a single one that mapped anything) the device uses
//!   that container and its domains. The kernel programs MSI messages inside
//!   that ioctl, before its exit is seen, so a message written in the context
//!   of a process owning a container names that process as the owner too.

use std::collections::BTreeSet;

use super::keys::{ContainerKey, DevKey, IommuDomainKey};
use super::state::State;

/// The host side a device was tied to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceContext {
    pub containers: BTreeSet<ContainerKey>,
    pub domains: BTreeSet<IommuDomainKey>,
    /// False when the owner has several containers and all of them are
    /// listed as candidates.
    pub exact: bool,
}

impl DeviceContext {
    pub fn is_empty(&self) -> bool {
        self.containers.is_empty() && self.domains.is_empty()
    }
}

impl State {
    /// Containers and IOMMU domains of a host device (see the module docs).
    pub(crate) fn device_context(&self, k: DevKey) -> DeviceContext {
        self.device_context_hint(k, None)
    }

    /// [`State::device_context`], with `hint` (the process an MSI write
    /// ran in) taken as the owner when none is known.
    pub(crate) fn device_context_hint(&self, k: DevKey, hint: Option<u32>) -> DeviceContext {
        let mut out = DeviceContext {
            exact: true,
            ..Default::default()
        };
        for (dk, d) in self.host.domains_on(k.node) {
            if d.devices.contains(&k.device) {
                out.domains.insert(*dk);
            }
        }
        for (ck, c) in self.host.containers_on(k.node) {
            if c.domains.iter().any(|d| {
                out.domains.contains(&IommuDomainKey {
                    node: k.node,
                    domain: *d,
                })
            }) {
                out.containers.insert(*ck);
            }
        }
        if out.containers.is_empty() {
            let known: Vec<u32> = self
                .msi
                .devices
                .get(&k)
                .map(|d| d.owners.iter().copied().collect())
                .unwrap_or_default();
            // The process the write ran in, when it owns the device (the
            // others may have exited long ago: a device fd outlives no one).
            let owners = match hint {
                Some(p) if known.is_empty() || known.contains(&p) => vec![p],
                _ => known,
            };
            for pid in owners {
                let mine: Vec<(&ContainerKey, bool)> = self
                    .host
                    .containers_on(k.node)
                    .filter(|(ck, _)| ck.pid() == pid)
                    .map(|(ck, c)| (ck, c.mapped_ok))
                    .collect();
                let used: Vec<_> = mine.iter().filter(|(_, ok)| *ok).collect();
                match (mine.as_slice(), used.as_slice()) {
                    ([(one, _)], _) | (_, [(one, _)]) => {
                        out.containers.insert(**one);
                    }
                    _ => {
                        out.exact &= mine.is_empty();
                        out.containers.extend(mine.iter().map(|(ck, _)| **ck));
                    }
                }
            }
        }
        for ck in &out.containers {
            if let Some(c) = self.host.containers.get(ck) {
                out.domains
                    .extend(c.domains.iter().map(|&domain| IommuDomainKey {
                        node: ck.node,
                        domain,
                    }));
            }
        }
        out
    }
}
