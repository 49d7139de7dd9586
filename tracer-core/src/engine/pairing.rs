//! Pairings of guest domains with host containers: automatic (from the
//! join's evidence) and forced (`--pair guest-node:BDF=[host-node:]BDF`).

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use super::join::PairEvidence;
use super::keys::{ContainerKey, GuestDomainKey};

use crate::event::{Device, NodeId};

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
