//! Read-only views for a TUI: nodes → devices → domains → mappings,
//! doorbells per device, findings newest first.
//!
//! A snapshot lists at most [`SnapshotOptions::max_mappings`] mappings per
//! domain; [`Engine::mappings`] pages through any domain beyond that.
//! Devices list the domains they use: guest endpoints their virtio-iommu
//! domain, host devices their container and IOMMU domains
//! ([`super::devices`]).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::interval::IntervalMap;
use super::interval::Mapping;
use super::keys::{ContainerKey, DevKey, EvId, GuestDomainKey, IommuDomainKey};
use super::pairing::Pairing;
use super::rules::Finding;
use super::Engine;
use crate::event::{Device, NodeId, NodeRole, ResvType};

#[derive(Clone, Copy, Debug)]
pub struct SnapshotOptions {
    /// Mappings listed per domain (all are counted).
    pub max_mappings: usize,
}

impl Default for SnapshotOptions {
    fn default() -> Self {
        SnapshotOptions { max_mappings: 256 }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case", tag = "type", content = "id")]
pub enum DomainRef {
    /// virtio-iommu domain id.
    Guest(u32),
    /// Kernel `struct iommu_domain` address.
    Iommu(u64),
    /// VFIO container handle (`pid << 32 | fd`), or the iommufd handle and
    /// the IOAS id (`ioas` ≠ 0) for an iommufd IOAS.
    Container { container: u64, ioas: u32 },
}

impl DomainRef {
    /// The container or IOAS of a [`ContainerKey`].
    pub fn container(k: ContainerKey) -> Self {
        DomainRef::Container {
            container: k.container,
            ioas: k.ioas,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MappingView {
    pub iova: u64,
    /// Inclusive.
    pub last: u64,
    /// GPA, HVA or HPA depending on the domain's layer.
    pub to: u64,
    pub flags: u16,
    pub ev: EvId,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DomainView {
    pub id: DomainRef,
    pub bypass: bool,
    /// Live mappings.
    pub count: usize,
    /// The first `max_mappings`, by IOVA.
    pub mappings: Vec<MappingView>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DoorbellView {
    pub domain: u64,
    pub iova: u64,
    pub paddr: u64,
    pub ev: EvId,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VectorView {
    pub index: u32,
    pub vector: u32,
    pub eventfd: i32,
    /// Last message programmed for that vector (address, data); `None`
    /// when none was seen or the kernel cleared it.
    pub message: Option<(u64, u32)>,
    /// The kernel cleared the vector (wrote an all-zero message: it was
    /// deactivated or freed) and did not program it again.
    pub cleared: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RegionView {
    pub start: u64,
    pub end: u64,
    /// Host `ResvType` name, or `virtio-msi` / `virtio-reserved` for PROBE.
    pub kind: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeviceView {
    pub device: Device,
    /// Owning process for `fd:N` devices, else 0.
    pub pid: u32,
    pub domains: Vec<DomainRef>,
    pub doorbells: Vec<DoorbellView>,
    pub vectors: Vec<VectorView>,
    pub resv: Vec<RegionView>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NodeView {
    pub node: NodeId,
    pub name: String,
    pub role: Option<NodeRole>,
    pub devices: Vec<DeviceView>,
    pub domains: Vec<DomainView>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    pub events: u64,
    pub nodes: Vec<NodeView>,
    pub pairings: Vec<Pairing>,
    /// Newest first.
    pub findings: Vec<Finding>,
}

impl From<Mapping> for MappingView {
    fn from(m: Mapping) -> Self {
        MappingView {
            iova: m.start,
            last: m.last,
            to: m.to,
            flags: m.meta.flags(),
            ev: m.meta.ev(),
        }
    }
}

fn view(id: DomainRef, bypass: bool, maps: &IntervalMap, max: usize) -> DomainView {
    DomainView {
        id,
        bypass,
        count: maps.len(),
        mappings: maps.iter().take(max).map(MappingView::from).collect(),
    }
}

fn push_domain(v: &mut Vec<DomainRef>, d: DomainRef) {
    if !v.contains(&d) {
        v.push(d);
    }
}

fn dev_entry(
    devs: &mut BTreeMap<(NodeId, u32, Device), DeviceView>,
    n: NodeId,
    pid: u32,
    d: Device,
) -> &mut DeviceView {
    devs.entry((n, pid, d)).or_insert_with(|| DeviceView {
        device: d,
        pid,
        domains: Vec::new(),
        doorbells: Vec::new(),
        vectors: Vec::new(),
        resv: Vec::new(),
    })
}

impl Engine {
    /// Read-only views of the current state.
    pub fn snapshot(&self, opts: SnapshotOptions) -> Snapshot {
        let mut nodes: BTreeMap<NodeId, NodeView> = BTreeMap::new();
        let node = |n: NodeId| -> NodeView {
            NodeView {
                node: n,
                name: self.state.clock.name(n),
                role: self.state.clock.role(n),
                devices: Vec::new(),
                domains: Vec::new(),
            }
        };
        let mut devs: BTreeMap<(NodeId, u32, Device), DeviceView> = BTreeMap::new();
        let max = opts.max_mappings;
        let mut domains: BTreeMap<NodeId, Vec<DomainView>> = BTreeMap::new();
        for (k, d) in &self.state.guest.domains {
            domains.entry(k.node).or_default().push(view(
                DomainRef::Guest(k.domain),
                d.bypass,
                &d.maps,
                max,
            ));
        }
        for (k, c) in &self.state.host.containers {
            domains.entry(k.node).or_default().push(view(
                DomainRef::container(*k),
                false,
                &c.maps,
                max,
            ));
        }
        for (k, d) in &self.state.host.domains {
            domains.entry(k.node).or_default().push(view(
                DomainRef::Iommu(k.domain),
                false,
                &d.maps,
                max,
            ));
            for dv in &d.devices {
                {
                    let v = dev_entry(&mut devs, k.node, 0, *dv);
                    for (&iova, &(paddr, ev)) in &d.doorbells {
                        v.doorbells.push(DoorbellView {
                            domain: k.domain,
                            iova,
                            paddr,
                            ev,
                        });
                    }
                }
            }
        }
        for (&(n, ep), e) in &self.state.guest.endpoints {
            let d = Device::from_rid(0, ep);
            {
                let v = dev_entry(&mut devs, n, 0, d);
                v.domains.extend(e.domain.map(DomainRef::Guest));
                for m in e.probe.iter().flat_map(|p| p.1.iter()) {
                    v.resv.push(RegionView {
                        start: m.start,
                        end: m.end,
                        kind: if m.subtype == 1 {
                            "virtio-msi"
                        } else {
                            "virtio-reserved"
                        }
                        .into(),
                    });
                }
            }
        }
        for (&n, regions) in &self.state.msi.resv {
            for (r, _) in regions {
                {
                    let v = dev_entry(&mut devs, n, 0, r.device);
                    let kind = match r.rtype {
                        ResvType::Msi => "msi",
                        ResvType::SwMsi => "sw-msi",
                        ResvType::Reserved => "reserved",
                        ResvType::Direct => "direct",
                        ResvType::DirectRelaxable => "direct-relaxable",
                    };
                    v.resv.push(RegionView {
                        start: r.start,
                        end: r.end,
                        kind: kind.into(),
                    });
                }
            }
        }
        for (k, irq) in &self.state.msi.devices {
            {
                let v = dev_entry(&mut devs, k.node, k.pid, k.device);
                let keys: BTreeSet<(u32, u32)> = irq.vectors.keys().copied().collect();
                for (index, vector) in keys {
                    let fd = irq.vectors.get(&(index, vector)).map_or(-1, |x| x.eventfd);
                    v.vectors.push(VectorView {
                        index,
                        vector,
                        eventfd: fd,
                        message: irq.messages.get(&vector).map(|m| (m.address, m.data)),
                        cleared: irq.cleared.contains_key(&vector),
                    });
                }
            }
        }
        // Devices driven through VFIO: the container and IOMMU domains they
        // use (on hosts, and in guests that run VFIO themselves).
        for ((n, pid, d), v) in devs.iter_mut() {
            let ctx = self.state.device_context(DevKey {
                node: *n,
                pid: *pid,
                device: *d,
            });
            if !ctx.exact {
                continue;
            }
            for c in &ctx.containers {
                push_domain(&mut v.domains, DomainRef::container(*c));
            }
            for dk in &ctx.domains {
                push_domain(&mut v.domains, DomainRef::Iommu(dk.domain));
            }
        }
        for ((n, _, _), v) in devs {
            nodes.entry(n).or_insert_with(|| node(n)).devices.push(v);
        }
        for (n, d) in domains {
            nodes.entry(n).or_insert_with(|| node(n)).domains = d;
        }
        let mut findings = self.findings();
        findings.sort_by_key(|f| std::cmp::Reverse(f.at));
        Snapshot {
            events: self.events_seen,
            nodes: nodes.into_values().collect(),
            pairings: self.state.pairings(),
            findings,
        }
    }

    /// Up to `limit` mappings of a domain of any kind on `node`, in IOVA
    /// order, starting with the one containing `from_iova` (or the first
    /// after it): drill-down and paging beyond the snapshot's cap. Empty
    /// for an unknown domain.
    pub fn mappings(
        &self,
        node: NodeId,
        domain: DomainRef,
        from_iova: u64,
        limit: usize,
    ) -> Vec<MappingView> {
        let maps = match domain {
            DomainRef::Guest(domain) => self
                .state
                .guest
                .domain(GuestDomainKey { node, domain })
                .map(|d| &d.maps),
            DomainRef::Iommu(domain) => self
                .state
                .host
                .domains
                .get(&IommuDomainKey { node, domain })
                .map(|d| &d.maps),
            DomainRef::Container { container, ioas } => self
                .state
                .host
                .containers
                .get(&ContainerKey {
                    node,
                    container,
                    ioas,
                })
                .map(|c| &c.maps),
        };
        maps.map(|m| {
            m.overlapping(from_iova, u64::MAX)
                .take(limit)
                .map(MappingView::from)
                .collect()
        })
        .unwrap_or_default()
    }

    /// Every mapping of one guest domain.
    pub fn guest_mappings(&self, g: GuestDomainKey) -> Vec<MappingView> {
        self.mappings(g.node, DomainRef::Guest(g.domain), 0, usize::MAX)
    }
}
