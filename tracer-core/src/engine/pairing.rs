//! Pairings of guest domains with host containers: automatic (from the
//! join's evidence) and forced (`--pair guest-node:BDF=[host-node:]BDF`).

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use std::collections::BTreeSet;

use super::join::PairEvidence;
use super::keys::{rid, ContainerKey, GuestDomainKey, IommuDomainKey};
use super::state::State;
use crate::event::{Device, NodeId, NodeRole};

/// A user-forced pairing of a guest endpoint with a host device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ForcedPair {
    pub guest_node: String,
    pub guest_device: Device,
    /// `None`: the only host node (or the first by node id).
    pub host_node: Option<String>,
    pub host_device: Device,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PairParseError {
    #[error("pairing {0:?}: expected GUEST_NODE:BDF=[HOST_NODE:]BDF")]
    Shape(String),
    #[error("pairing {0:?}: bad device {1:?}")]
    Device(String, String),
}

impl FromStr for ForcedPair {
    type Err = PairParseError;

    /// `l2:00:02.0=0000:00:03.0`, `l2:0000:00:02.0=l1:00:03.0`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let shape = || PairParseError::Shape(s.to_string());
        let (g, h) = s.split_once('=').ok_or_else(shape)?;
        let (gnode, gdev) = g.split_once(':').ok_or_else(shape)?;
        if gnode.is_empty() {
            return Err(shape());
        }
        let gdev = Device::parse(gdev)
            .filter(|d| matches!(d, Device::Pci { .. }))
            .ok_or_else(|| PairParseError::Device(s.to_string(), gdev.to_string()))?;
        let (hnode, hdev) = match Device::parse(h).filter(|d| matches!(d, Device::Pci { .. })) {
            Some(d) => (None, d),
            None => {
                let (n, d) = h.split_once(':').ok_or_else(shape)?;
                let d = Device::parse(d)
                    .filter(|d| matches!(d, Device::Pci { .. }))
                    .ok_or_else(|| PairParseError::Device(s.to_string(), h.to_string()))?;
                (Some(n.to_string()), d)
            }
        };
        Ok(ForcedPair {
            guest_node: gnode.to_string(),
            guest_device: gdev,
            host_node: hnode,
            host_device: hdev,
        })
    }
}

impl fmt::Display for ForcedPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}=", self.guest_node, self.guest_device)?;
        if let Some(n) = &self.host_node {
            write!(f, "{n}:")?;
        }
        write!(f, "{}", self.host_device)
    }
}

/// A guest domain and the host serving it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Pairing {
    pub guest_node: NodeId,
    /// The guest domain; `None` for a forced pairing whose endpoint was never
    /// seen attached.
    pub guest_domain: Option<u32>,
    /// Guest endpoints (PCI requester ids): the forced one, else those
    /// attached to the domain.
    pub guest_endpoints: Vec<u32>,
    pub host_node: NodeId,
    /// The container, when known (always for automatic pairings).
    pub host: Option<ContainerKey>,
    /// Host devices behind it: the forced one, else devices seen using the
    /// container's IOMMU domains; empty when unknown.
    pub host_devices: Vec<Device>,
    pub forced: bool,
    pub evidence: PairEvidence,
}

impl Pairing {
    pub fn guest_key(&self) -> Option<GuestDomainKey> {
        self.guest_domain.map(|domain| GuestDomainKey {
            node: self.guest_node,
            domain,
        })
    }
}

impl State {
    /// The first host node other than `not`, for forced pairs without one.
    fn default_host_node(&self, not: NodeId) -> Option<NodeId> {
        let nodes = self.clock.nodes();
        let pick = |want: NodeRole| {
            nodes
                .iter()
                .enumerate()
                .find(|(i, n)| n.role == want && *i != usize::from(not))
                .and_then(|(i, _)| NodeId::try_from(i).ok())
        };
        pick(NodeRole::Host).or_else(|| pick(NodeRole::Mixed))
    }

    fn host_devices_of(&self, c: ContainerKey) -> Vec<Device> {
        let Some(cont) = self.host.containers.get(&c) else {
            return Vec::new();
        };
        let mut out = BTreeSet::new();
        for d in &cont.domains {
            let k = IommuDomainKey {
                node: c.node,
                domain: *d,
            };
            if let Some(dom) = self.host.domains.get(&k) {
                out.extend(dom.devices.iter().copied());
            }
        }
        // Devices whose interrupts the container's process configures.
        for k in self.msi.devices.keys().filter(|k| k.node == c.node) {
            let ctx = self.device_context(*k);
            if ctx.exact && ctx.containers.contains(&c) {
                out.insert(k.device);
            }
        }
        out.into_iter().collect()
    }

    /// Endpoints attached to the domain now, else those it ever had.
    fn attached_eps(&self, g: GuestDomainKey) -> Vec<u32> {
        let now: Vec<u32> = self.guest.attached(g).map(|(ep, _)| ep).collect();
        if !now.is_empty() {
            return now;
        }
        self.guest
            .attached_ever
            .get(&g)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Guest domains paired with the host side serving them: the forced
    /// pairs, then the join's best matches.
    pub(crate) fn pairings(&self) -> Vec<Pairing> {
        let best = self.join.best(self.cfg.min_join_matches);
        let mut out = Vec::new();
        let mut forced_domains = BTreeSet::new();
        for fp in &self.cfg.forced_pairs {
            let Some(gnode) = self.clock.id_of(&fp.guest_node) else {
                continue;
            };
            let Some(ep) = rid(fp.guest_device) else {
                continue;
            };
            let gdom = self.guest.endpoint(gnode, ep).and_then(|e| e.domain);
            let gkey = gdom.map(|domain| GuestDomainKey {
                node: gnode,
                domain,
            });
            let host_node = match &fp.host_node {
                Some(n) => self.clock.id_of(n),
                None => self.default_host_node(gnode),
            };
            let Some(host_node) = host_node else {
                continue;
            };
            let by_device = self.host.containers_on(host_node).find(|(_, c)| {
                c.domains.iter().any(|d| {
                    self.host
                        .domains
                        .get(&IommuDomainKey {
                            node: host_node,
                            domain: *d,
                        })
                        .is_some_and(|dom| dom.devices.contains(&fp.host_device))
                })
            });
            let by_join = gkey
                .and_then(|g| best.get(&g))
                .filter(|(c, _)| c.node == host_node);
            let sole = {
                let mut it = self
                    .host
                    .containers_on(host_node)
                    .filter(|(k, _)| k.ioas == 0);
                match (it.next(), it.next()) {
                    (Some(one), None) => Some(*one.0),
                    _ => None,
                }
            };
            let host = by_device
                .map(|(k, _)| *k)
                .or(by_join.map(|(c, _)| *c))
                .or(sole);
            let evidence = match (gkey, host) {
                (Some(g), Some(c)) => self.join.evidence.get(&(g, c)).cloned().unwrap_or_default(),
                _ => Default::default(),
            };
            if let Some(g) = gkey {
                forced_domains.insert(g);
            }
            out.push(Pairing {
                guest_node: gnode,
                guest_domain: gdom,
                guest_endpoints: vec![ep],
                host_node,
                host,
                host_devices: vec![fp.host_device],
                forced: true,
                evidence,
            });
        }
        for (g, (c, e)) in best {
            if forced_domains.contains(&g) {
                continue;
            }
            out.push(Pairing {
                guest_node: g.node,
                guest_domain: Some(g.domain),
                guest_endpoints: self.attached_eps(g),
                host_node: c.node,
                host: Some(c),
                host_devices: self.host_devices_of(c),
                forced: false,
                evidence: e.clone(),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_shapes() {
        let p: ForcedPair = "l2:00:02.0=0000:00:03.0".parse().unwrap();
        assert_eq!(p.guest_node, "l2");
        assert_eq!(p.host_node, None);
        assert_eq!(p.host_device.to_string(), "0000:00:03.0");
        let p: ForcedPair = "l2:0000:00:02.0=l1:00:03.0".parse().unwrap();
        assert_eq!(p.host_node.as_deref(), Some("l1"));
        assert_eq!(p.to_string(), "l2:0000:00:02.0=l1:0000:00:03.0");
        for bad in [
            "",
            "l2",
            "l2:00:02.0",
            ":00:02.0=00:03.0",
            "l2:zz=00:03.0",
            "l2:00:02.0=x:yy",
        ] {
            assert!(bad.parse::<ForcedPair>().is_err(), "{bad}");
        }
    }
}
