//! Prefetching for [`Engine::apply_all`](super::Engine::apply_all): the
//! page slots an event a few places ahead will look up, so that replay's
//! cache misses overlap (a hint, no state change).

use super::keys::{ContainerKey, GuestDomainKey, IommuDomainKey};
use super::state::State;
use crate::event::{Event, EventKind, IommuMap, IommuUnmap, VfioMapDma, VfioUnmapDma, ViommuOp};

impl State {
    /// Prefetches the page slots `e` will look up (a hint, no state change).
    pub(super) fn prefetch(&self, e: &Event) {
        match &e.kind {
            EventKind::ViommuReq(r) if matches!(r.op, ViommuOp::Map | ViommuOp::Unmap) => {
                let k = GuestDomainKey {
                    node: e.node,
                    domain: r.domain,
                };
                if let Some(d) = self.guest.domains.get(&k) {
                    d.maps.prefetch(r.virt_start);
                }
            }
            EventKind::IommuMap(IommuMap { domain, iova, .. })
            | EventKind::IommuUnmap(IommuUnmap { domain, iova, .. }) => {
                let k = IommuDomainKey {
                    node: e.node,
                    domain: *domain,
                };
                if let Some(d) = self.host.domains.get(&k) {
                    d.maps.prefetch(*iova);
                }
            }
            EventKind::VfioMapDma(VfioMapDma {
                container, iova, ..
            })
            | EventKind::VfioUnmapDma(VfioUnmapDma {
                container, iova, ..
            }) => {
                if let Some(c) = self
                    .host
                    .containers
                    .get(&ContainerKey::vfio(e.node, *container))
                {
                    c.maps.prefetch(*iova);
                }
            }
            EventKind::VfioPin(p) => {
                if let Some(m) = self.host.pins.get(&(e.node, e.pid)) {
                    m.prefetch(p.vaddr);
                }
            }
            _ => {}
        }
    }
}
