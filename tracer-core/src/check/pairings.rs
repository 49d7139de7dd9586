//! The guest/host pairings the engine found (or was told), as the report
//! lists them: which guest domain a host container serves, and the
//! evidence (how many guest MAPs the host followed, and whether the HVA
//! agreed with the KVM memslot for the guest's GPA).

use serde::Serialize;

use crate::engine::Pairing;
use crate::event::NodeInfo;
use crate::tracefile::node_name;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReportPairing {
    pub guest_node: String,
    pub guest_domain: Option<u32>,
    /// Guest endpoints as PCI addresses (`00:02.0`, from requester ids).
    pub guest_endpoints: Vec<String>,
    pub host_node: String,
    /// `pid << 32 | fd` of the container (as in `vfio_map_dma`).
    pub host_container: Option<u64>,
    pub host_devices: Vec<String>,
    /// Forced with `--pair` (else found from matching map sequences).
    pub forced: bool,
    /// Guest MAPs followed by a host MAP_DMA of the same IOVA and size.
    pub matches: u64,
    /// Of those, HVA = memslot(GPA) / HVA ≠ memslot(GPA).
    pub hva_agree: u64,
    pub hva_disagree: u64,
}

/// `bus:dev.fn` of a PCI requester id.
fn rid_bdf(rid: u32) -> String {
    format!(
        "{:02x}:{:02x}.{}",
        (rid >> 8) & 0xff,
        (rid >> 3) & 0x1f,
        rid & 7
    )
}

pub fn report_pairings(pairings: &[Pairing], nodes: &[NodeInfo]) -> Vec<ReportPairing> {
    pairings
        .iter()
        .map(|p| ReportPairing {
            guest_node: node_name(nodes, p.guest_node).into_owned(),
            guest_domain: p.guest_domain,
            guest_endpoints: p.guest_endpoints.iter().map(|&r| rid_bdf(r)).collect(),
            host_node: node_name(nodes, p.host_node).into_owned(),
            host_container: p.host.map(|c| c.container),
            host_devices: p.host_devices.iter().map(ToString::to_string).collect(),
            forced: p.forced,
            matches: p.evidence.matches,
            hva_agree: p.evidence.hva_agree,
            hva_disagree: p.evidence.hva_disagree,
        })
        .collect()
}

impl std::fmt::Display for ReportPairing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} domain {} ({}) ↔ {} container {} ({}): {}, {} guest MAPs followed, HVA = memslot for {}, ≠ for {}",
            self.guest_node,
            self.guest_domain.map_or("?".into(), |d| d.to_string()),
            if self.guest_endpoints.is_empty() {
                "endpoint not seen attaching".to_string()
            } else {
                self.guest_endpoints.join(", ")
            },
            self.host_node,
            self.host_container
                .map_or("?".into(), |c| format!("{}:{}", c >> 32, c & 0xffff_ffff)),
            if self.host_devices.is_empty() {
                "devices unknown".to_string()
            } else {
                self.host_devices.join(", ")
            },
            if self.forced { "forced" } else { "found" },
            self.matches,
            self.hva_agree,
            self.hva_disagree
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requester_id_as_bdf() {
        assert_eq!(rid_bdf(0x10), "00:02.0");
        assert_eq!(rid_bdf(0x0107), "01:00.7");
    }
}
