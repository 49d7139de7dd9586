//! IOVA → GPA → HVA → HPA chains with the event behind each hop and, where
//! the chain breaks, which hop is missing or disagrees.

use serde::Serialize;

use super::interval::{span, Mapping};
use super::keys::{rid, ContainerKey, EvId, GuestDomainKey, IommuDomainKey};
use super::Engine;
use crate::event::{Device, NodeId};

/// Where a chain starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ChainStart {
    GuestDomain(GuestDomainKey),
    /// A guest device (virtio-iommu endpoint) or a host device (through the
    /// IOMMU domains it was seen using).
    Device {
        node: NodeId,
        device: Device,
    },
    Container(ContainerKey),
    IommuDomain(IommuDomainKey),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ChainQuery {
    pub start: ChainStart,
    pub iova: u64,
    /// Bytes; at least 1.
    pub size: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HopKind {
    /// Guest virtio-iommu MAP.
    GuestIovaToGpa,
    /// KVM memslot of the VMM.
    GpaToHva,
    /// Host VFIO MAP_DMA / IOAS_MAP.
    HostIovaToHva,
    /// VFIO pin.
    HvaToHpa,
    /// `iommu_map` in the host IOMMU domain (what the device uses).
    IovaToHpa,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum HopStatus {
    Ok,
    /// The layer has no mapping here.
    Missing {
        why: String,
    },
    /// Mapped, but not to what the previous hops imply.
    Disagree {
        expected: u64,
    },
    /// The layer was not observed (no pairing, no probe).
    Unknown {
        why: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Hop {
    pub kind: HopKind,
    pub node: NodeId,
    pub from: u64,
    /// Where it leads, when mapped.
    pub to: Option<u64>,
    pub ev: Option<EvId>,
    pub status: HopStatus,
}

/// One contiguous piece of the queried range with the same hops all along.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Chain {
    pub iova: u64,
    /// Inclusive.
    pub last: u64,
    pub hops: Vec<Hop>,
    /// Index of the first hop that is not `Ok`.
    pub broken_at: Option<usize>,
}

fn hop(kind: HopKind, node: NodeId, from: u64, m: Option<&Mapping>, why: &str) -> Hop {
    match m {
        Some(m) => Hop {
            kind,
            node,
            from,
            to: Some(m.translate(from)),
            ev: Some(m.meta.ev()),
            status: HopStatus::Ok,
        },
        None => Hop {
            kind,
            node,
            from,
            to: None,
            ev: None,
            status: HopStatus::Missing {
                why: why.to_string(),
            },
        },
    }
}

fn finish(iova: u64, last: u64, hops: Vec<Hop>) -> Chain {
    let broken_at = hops.iter().position(|h| h.status != HopStatus::Ok);
    Chain {
        iova,
        last,
        hops,
        broken_at,
    }
}

/// Splits `[s, l]` into the pieces of `map` overlapping it and the gaps.
fn pieces(
    map: Option<&super::interval::IntervalMap>,
    s: u64,
    l: u64,
) -> Vec<(u64, u64, Option<Mapping>)> {
    let mut out = Vec::new();
    let mut at = s;
    if let Some(map) = map {
        for m in map.overlapping(s, l) {
            let Some(c) = m.clip(s, l) else { continue };
            if c.start > at {
                out.push((at, c.start - 1, None));
            }
            out.push((c.start, c.last, Some(c)));
            match c.last.checked_add(1) {
                Some(n) => at = n,
                None => return out,
            }
        }
    }
    if at <= l {
        out.push((at, l, None));
    }
    out
}

impl Engine {
    /// Chains for an IOVA range, one per piece with uniform hops.
    pub fn chain(&self, q: &ChainQuery) -> Vec<Chain> {
        let Some((s, l)) = span(q.iova, q.size.max(1)) else {
            return Vec::new();
        };
        match q.start {
            ChainStart::GuestDomain(g) => self.guest_chain(g, s, l),
            ChainStart::Device { node, device } => {
                let ep_dom = rid(device)
                    .and_then(|ep| self.state.guest.endpoint(node, ep))
                    .and_then(|e| e.domain);
                if let Some(domain) = ep_dom {
                    return self.guest_chain(GuestDomainKey { node, domain }, s, l);
                }
                let dom = self
                    .state
                    .host
                    .domains
                    .iter()
                    .find(|(k, d)| k.node == node && d.devices.contains(&device));
                let cont = dom.and_then(|(dk, _)| {
                    self.state
                        .host
                        .containers_on(node)
                        .find(|(_, c)| c.domains.contains(&dk.domain))
                });
                match (cont, dom) {
                    (Some((ck, _)), _) => self.host_chain(*ck, s, l, Vec::new()),
                    (None, Some((dk, _))) => self.domain_chain(*dk, s, l),
                    (None, None) => Vec::new(),
                }
            }
            ChainStart::Container(c) => self.host_chain(c, s, l, Vec::new()),
            ChainStart::IommuDomain(d) => self.domain_chain(d, s, l),
        }
    }

    fn guest_chain(&self, g: GuestDomainKey, s: u64, l: u64) -> Vec<Chain> {
        let map = self.state.guest.domain(g).map(|d| &d.maps);
        let host = self
            .state
            .pairings()
            .into_iter()
            .find(|p| p.guest_key() == Some(g))
            .and_then(|p| p.host);
        let mut out = Vec::new();
        for (ps, pl, m) in pieces(map, s, l) {
            let h = hop(
                HopKind::GuestIovaToGpa,
                g.node,
                ps,
                m.as_ref(),
                "no guest MAP",
            );
            match (m, host) {
                (Some(_), Some(c)) => out.extend(self.host_chain(c, ps, pl, vec![h])),
                (Some(_), None) => {
                    let u = Hop {
                        kind: HopKind::GpaToHva,
                        node: g.node,
                        from: h.to.unwrap_or(0),
                        to: None,
                        ev: None,
                        status: HopStatus::Unknown {
                            why: "no host container paired with this guest domain".into(),
                        },
                    };
                    out.push(finish(ps, pl, vec![h, u]));
                }
                (None, _) => out.push(finish(ps, pl, vec![h])),
            }
        }
        out
    }

    /// Host hops for `[s, l]` of a container; `prefix` is the guest hop.
    fn host_chain(&self, c: ContainerKey, s: u64, l: u64, prefix: Vec<Hop>) -> Vec<Chain> {
        let cont = self.state.host.containers.get(&c);
        let pins = self.state.host.pins.get(&(c.node, c.pid()));
        let mut out = Vec::new();
        for (hs, hl, m) in pieces(cont.map(|c| &c.maps), s, l) {
            let mut hops = prefix.clone();
            let expected_hva = prefix.first().and_then(|g| g.to).map(|gpa| {
                let gpa = gpa.wrapping_add(hs - s);
                (gpa, self.state.host.gpa_to_hva(c.node, c.pid(), gpa))
            });
            if let Some((gpa, slot)) = expected_hva {
                hops.push(match slot {
                    Some((hva, ms)) => Hop {
                        kind: HopKind::GpaToHva,
                        node: c.node,
                        from: gpa,
                        to: Some(hva),
                        ev: Some(ms.ev),
                        status: HopStatus::Ok,
                    },
                    None => Hop {
                        kind: HopKind::GpaToHva,
                        node: c.node,
                        from: gpa,
                        to: None,
                        ev: None,
                        status: HopStatus::Missing {
                            why: "no KVM memslot of the VMM covers this GPA".into(),
                        },
                    },
                });
            }
            let mut h = hop(
                HopKind::HostIovaToHva,
                c.node,
                hs,
                m.as_ref(),
                "no host MAP_DMA",
            );
            if let (Some(to), Some((_, Some((want, _))))) = (h.to, expected_hva) {
                if to != want {
                    h.status = HopStatus::Disagree { expected: want };
                }
            }
            hops.push(h.clone());
            if let Some(hva) = h.to {
                let pin = pins.and_then(|p| p.get(hva));
                let ph = hop(
                    HopKind::HvaToHpa,
                    c.node,
                    hva,
                    pin.as_ref(),
                    "no VFIO pin seen for this HVA",
                );
                let hpa = ph.to;
                hops.push(ph);
                let dm = cont
                    .into_iter()
                    .flat_map(|c| c.domains.iter())
                    .find_map(|d| {
                        let k = IommuDomainKey {
                            node: c.node,
                            domain: *d,
                        };
                        self.state
                            .host
                            .domains
                            .get(&k)
                            .and_then(|dom| dom.maps.get(hs))
                    });
                let mut dh = hop(
                    HopKind::IovaToHpa,
                    c.node,
                    hs,
                    dm.as_ref(),
                    "no iommu_map in the container's domains",
                );
                if let (Some(got), Some(want)) = (dh.to, hpa) {
                    if got != want {
                        dh.status = HopStatus::Disagree { expected: want };
                    }
                }
                hops.push(dh);
            }
            out.push(finish(hs, hl, hops));
        }
        out
    }

    fn domain_chain(&self, d: IommuDomainKey, s: u64, l: u64) -> Vec<Chain> {
        let map = self.state.host.domains.get(&d).map(|d| &d.maps);
        pieces(map, s, l)
            .into_iter()
            .map(|(ps, pl, m)| {
                finish(
                    ps,
                    pl,
                    vec![hop(
                        HopKind::IovaToHpa,
                        d.node,
                        ps,
                        m.as_ref(),
                        "no iommu_map",
                    )],
                )
            })
            .collect()
    }
}
