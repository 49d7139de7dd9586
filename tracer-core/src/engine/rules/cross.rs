//! Cross-layer rules evaluated over state and the join's records: VT002
//! (reserved regions disagree), VT004 (guest doorbell not backed on the
//! host), VT006 (chain breaks), VT007 (guest UNMAP not propagated), VT009
//! (address width / granule), plus pairing resolution.

use std::collections::BTreeSet;

use super::{hex, range, Finding, Findings, RuleId};
use crate::engine::apply::is_mmio_prot;
use crate::engine::guest::MAP_MMIO;
use crate::engine::host::Pending;
use crate::engine::keys::{page, rid, ContainerKey, EvId, GuestDomainKey};
use crate::engine::msi::{SW_MSI_LEN, X86_MSI};
use crate::engine::pairing::Pairing;
use crate::engine::Engine;
use crate::event::{Device, NodeId, NodeRole, ResvMem, ResvType, VfioMapDma};

/// Does the union of `regions` of `subtype` cover `[s, l]`?
fn covered(regions: &[ResvMem], subtype: u8, s: u64, l: u64) -> bool {
    let mut v: Vec<(u64, u64)> = regions
        .iter()
        .filter(|m| m.subtype == subtype)
        .map(|m| (m.start, m.end))
        .collect();
    v.sort_unstable();
    let mut need = s;
    for (a, b) in v {
        if a > need {
            break;
        }
        if b >= l {
            return true;
        }
        need = need.max(b.saturating_add(1));
    }
    false
}

impl Engine {
    /// VT006: each `iommu_map` done inside a MAP_DMA must map the page VFIO
    /// pinned for that HVA.
    pub(crate) fn check_pins_vs_iommu(
        &mut self,
        key: ContainerKey,
        m: &VfioMapDma,
        group: &Pending,
        id: EvId,
    ) {
        let Some(pins) = self.host.pins.get(&(key.node, key.pid())) else {
            return;
        };
        let end = m.iova.saturating_add(m.size);
        for (iev, im) in &group.maps {
            if im.errno != 0 || im.iova < m.iova || im.iova >= end {
                continue;
            }
            let hva = m.vaddr.wrapping_add(im.iova - m.iova);
            let Some(pin) = pins.get(hva) else {
                continue;
            };
            let expected = pin.translate(hva);
            if expected != im.paddr {
                let msg = format!(
                    "iommu_map iova {} → {} in domain {:#x}, but VFIO pinned HVA {} at {}",
                    hex(im.iova),
                    hex(im.paddr),
                    im.domain,
                    hex(hva),
                    hex(expected)
                );
                let last = im.iova.saturating_add(im.size.max(1) - 1);
                let f = Finding::new(
                    RuleId::ChainBreak,
                    key.node,
                    msg,
                    vec![pin.meta.ev(), *iev, id],
                )
                .address(im.iova, last);
                self.found.push(f);
                return;
            }
        }
    }

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
            let k = crate::engine::keys::IommuDomainKey {
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

    /// What a guest endpoint was told about reserved memory: its PROBE when
    /// one was recorded, else (vfio-trace started after the guest probed
    /// it, the usual case) the regions the guest kernel built from that
    /// PROBE for the endpoint's device, read at start: an IOMMU_RESV_MSI
    /// came from a RESV_MEM_T_MSI, a RESERVED or DIRECT one from a
    /// RESV_MEM_T_RESERVED; a SW_MSI window is the driver's own, never
    /// reported by the device.
    fn guest_view(&self, node: NodeId, ep: u32) -> Option<(EvId, Vec<ResvMem>)> {
        if let Some(p) = self.guest.endpoint(node, ep).and_then(|e| e.probe.clone()) {
            return Some(p);
        }
        let dev = Device::from_rid(0, ep);
        let mine: Vec<&(crate::event::ResvRegion, EvId)> = self
            .msi
            .node_regions(node)
            .iter()
            .filter(|(r, _)| r.device == dev)
            .collect();
        let ev = mine.iter().map(|(_, e)| *e).min()?;
        let view = mine
            .iter()
            .filter_map(|(r, _)| {
                let subtype = match r.rtype {
                    ResvType::Msi => 1,
                    ResvType::Reserved | ResvType::Direct | ResvType::DirectRelaxable => 0,
                    ResvType::SwMsi => return None,
                };
                Some(ResvMem {
                    subtype,
                    start: r.start,
                    end: r.end,
                })
            })
            .collect();
        Some((ev, view))
    }

    pub(crate) fn resolve_pairings(&self) -> Vec<Pairing> {
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
                        .get(&crate::engine::keys::IommuDomainKey {
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

    /// Cross-layer findings on the current state, and the failed MAP_DMAs
    /// they attribute to a root cause (VT009: a guest MAP beyond the host's
    /// address width), whose own VT008 findings [`Engine::findings`] drops.
    pub(crate) fn evaluate(&self) -> (Vec<Finding>, BTreeSet<EvId>) {
        let mut out = Vec::new();
        let mut absorbed = BTreeSet::new();
        self.eval_x86_msi(&mut out);
        for p in self.resolve_pairings() {
            self.eval_resv_pair(&p, &mut out);
            self.eval_lost(&p, &mut out);
            self.eval_hva(&p, &mut out);
            self.eval_width(&p, &mut out, &mut absorbed);
            self.eval_guest_doorbells(&p, &mut out);
        }
        self.eval_sw_msi_vs_ram(&mut out);
        self.eval_doorbell_mismatch(&mut out);
        let mut capped = Findings::default();
        for f in out {
            capped.push(f);
        }
        (capped.list, absorbed)
    }

    /// The host container's last valid IOVA (the end of the highest range
    /// VFIO_IOMMU_GET_INFO reported) and that GET_INFO's event.
    fn host_last_iova(&self, c: ContainerKey) -> Option<(EvId, u64)> {
        let (iev, info) = self.host.containers.get(&c)?.info.as_ref()?;
        info.iova_ranges
            .iter()
            .map(|r| r.end)
            .max()
            .map(|e| (*iev, e))
    }

    /// VT002: an x86 guest endpoint whose PROBE lacks the MSI window.
    fn eval_x86_msi(&self, out: &mut Vec<Finding>) {
        for (&(node, ep), e) in &self.guest.endpoints {
            let Some((pev, resv)) = &e.probe else {
                continue;
            };
            if self.clock.is_x86(node) && !covered(resv, 1, X86_MSI.0, X86_MSI.1) {
                let msg = format!(
                    "endpoint {ep:#x}: PROBE did not report the x86 MSI window {} as RESV_MEM_T_MSI",
                    range(X86_MSI.0, X86_MSI.1)
                );
                out.push(
                    Finding::new(RuleId::ResvMismatch, node, msg, vec![*pev])
                        .device(Device::from_rid(0, ep))
                        .address(X86_MSI.0, X86_MSI.1),
                );
            }
        }
    }

    /// VT002: host reserved MSI windows the paired guest endpoint was not told about.
    fn eval_resv_pair(&self, p: &Pairing, out: &mut Vec<Finding>) {
        let devs = if p.host_devices.is_empty() {
            vec![Device::Unknown]
        } else {
            p.host_devices.clone()
        };
        let mut regions: Vec<(crate::event::ResvRegion, EvId)> = Vec::new();
        for d in devs {
            for (r, ev) in self.msi.regions_for(p.host_node, d) {
                if !regions
                    .iter()
                    .any(|(x, _)| (x.start, x.end, x.rtype) == (r.start, r.end, r.rtype))
                {
                    regions.push((r.clone(), *ev));
                }
            }
        }
        for &ep in &p.guest_endpoints {
            let Some((pev, resv)) = self.guest_view(p.guest_node, ep) else {
                continue;
            };
            for (r, rev) in &regions {
                let (want, name) = match r.rtype {
                    ResvType::Msi => (1, "MSI (subtype 1)"),
                    ResvType::SwMsi => (0, "RESERVED (subtype 0)"),
                    _ => continue,
                };
                if covered(&resv, want, r.start, r.end) {
                    continue;
                }
                let msg = format!(
                    "host {:?} window {} of group {} was not reported to guest endpoint {ep:#x} as {name}",
                    r.rtype,
                    range(r.start, r.end),
                    r.group
                );
                out.push(
                    Finding::new(RuleId::ResvMismatch, p.guest_node, msg, vec![*rev, pev])
                        .device(Device::from_rid(0, ep))
                        .address(r.start, r.end),
                );
            }
        }
    }

    /// VT006 / VT007: guest MAPs and UNMAPs the VMM never propagated.
    fn eval_lost(&self, p: &Pairing, out: &mut Vec<Finding>) {
        let (Some(g), Some(c)) = (p.guest_key(), p.host) else {
            return;
        };
        let window = self.cfg.join_window_ns;
        // Lost MAPs all beyond the host's address width are VT009's: the
        // host could not have mapped them (eval_width counts them).
        let beyond_width = |l: &crate::engine::join::Lost| matches!((l.span, self.host_last_iova(c)), (Some((s, _)), Some((_, e))) if s > e);
        if let Some(l) = self.join.lost_maps().get(&g).filter(|l| !beyond_width(l)) {
            let msg = format!(
                "{} guest MAP(s) in domain {} had no host MAP_DMA in container {:#x} within {} ms: the VMM did not propagate them",
                l.count,
                g.domain,
                c.container,
                window / 1_000_000
            );
            out.push(with_span(
                Finding::new(RuleId::ChainBreak, g.node, msg, l.examples.clone()),
                l.span,
            ));
        }
        if let Some(l) = self.join.lost_unmaps().get(&g) {
            let msg = format!(
                "{} guest UNMAP(s) in domain {} had no host UNMAP_DMA in container {:#x} within {} ms: the host mapping stays live",
                l.count,
                g.domain,
                c.container,
                window / 1_000_000
            );
            out.push(with_span(
                Finding::new(RuleId::StaleMapping, g.node, msg, l.examples.clone()),
                l.span,
            ));
        }
    }

    /// VT006: host MAP_DMA HVA ≠ memslot(GPA) on matched maps.
    fn eval_hva(&self, p: &Pairing, out: &mut Vec<Finding>) {
        for m in &p.evidence.mismatches {
            let (gev, hev, slot_ev, want) = (m.guest_map, m.map_dma, m.memslot, m.expected_hva);
            let (start, last) = m.iova;
            let msg = format!(
                "host MAP_DMA (event {hev}) for guest MAP (event {gev}) uses an HVA other than the memslot's {}",
                hex(want)
            );
            out.push(
                Finding::new(
                    RuleId::ChainBreak,
                    p.host_node,
                    msg,
                    vec![gev, slot_ev, hev],
                )
                .address(start, last),
            );
        }
    }

    /// VT009: guest maps beyond the host's valid IOVA ranges or granule.
    fn eval_width(&self, p: &Pairing, out: &mut Vec<Finding>, absorbed: &mut BTreeSet<EvId>) {
        let (Some(g), Some(c)) = (p.guest_key(), p.host) else {
            return;
        };
        let Some((iev, info)) = self.host.containers.get(&c).and_then(|c| c.info.as_ref()) else {
            return;
        };
        if let Some((_, e)) = self.host_last_iova(c) {
            self.eval_beyond(p, (g, c), (*iev, e), out, absorbed);
        }
        let Some(dom) = self.guest.domain(g) else {
            return;
        };
        let min_pg = info.iova_pgsizes & info.iova_pgsizes.wrapping_neg();
        let mut coarse = None;
        let mut ncoarse = 0u64;
        for m in dom.maps.iter() {
            if min_pg > 1 && (m.start % min_pg != 0 || m.size() % min_pg != 0) {
                ncoarse += 1;
                coarse.get_or_insert(m);
            }
        }
        if let Some(m) = coarse {
            let msg = format!(
                "{ncoarse} guest mapping(s) in domain {} are not aligned to the host IOMMU's smallest page size {} (first {})",
                g.domain,
                hex(min_pg),
                range(m.start, m.last)
            );
            out.push(
                Finding::new(RuleId::WidthGranule, g.node, msg, vec![*iev, m.meta.ev()])
                    .address(m.start, m.last),
            );
        }
    }

    /// VT009, width: guest MAPs beyond the paired host's last valid IOVA
    /// `last` (GET_INFO event `iev`). One root cause, one finding: the
    /// guest's IOMMU accepted IOVAs the host's cannot map, so the VMM's
    /// MAP_DMAs of them fail (their VT008 findings are `absorbed` into this
    /// one) or are never made (no VT006 for them). Counts the live guest
    /// mappings beyond it and those already gone whose MAP_DMA was refused
    /// or never came.
    fn eval_beyond(
        &self,
        p: &Pairing,
        (g, c): (GuestDomainKey, ContainerKey),
        (iev, last): (EvId, u64),
        out: &mut Vec<Finding>,
        absorbed: &mut BTreeSet<EvId>,
    ) {
        let dom = self.guest.domain(g);
        // (guest MAP event, first, last) of the earliest one.
        let mut first: Option<(EvId, u64, u64)> = None;
        let mut see = |ev: EvId, s: u64, l: u64| {
            if first.is_none_or(|f| ev < f.0) {
                first = Some((ev, s, l));
            }
        };
        let mut live = 0u64;
        for m in dom.iter().flat_map(|d| d.maps.iter()) {
            if m.last > last {
                live += 1;
                see(m.meta.ev(), m.start, m.last);
            }
        }
        let is_live = |ev: EvId, s: u64| {
            dom.and_then(|d| d.maps.get(s))
                .is_some_and(|m| m.meta.ev() == ev && m.last > last)
        };
        let refused: Vec<_> = p
            .evidence
            .refused
            .iter()
            .filter(|r| r.iova.1 > last)
            .collect();
        let mut gone = 0u64;
        let mut counted = BTreeSet::new();
        for r in &refused {
            absorbed.insert(r.map_dma);
            see(r.guest_map, r.iova.0, r.iova.1);
            if !is_live(r.guest_map, r.iova.0) && counted.insert(r.guest_map) {
                gone += 1;
            }
        }
        let lost = self
            .join
            .lost_maps()
            .get(&g)
            .filter(|l| l.span.is_some_and(|(s, _)| s > last));
        if let Some(l) = lost {
            if let (Some(ev), Some((s, e))) = (l.examples.first(), l.span) {
                // Lost requests keep only their span, not each range.
                see(*ev, s, e);
            }
        }
        let Some((gev, s, l)) = first else {
            return;
        };
        let n = live + gone + lost.map_or(0, |l| l.count);
        let mut consequences = Vec::new();
        if !refused.is_empty() {
            let errnos: BTreeSet<i32> = refused.iter().map(|r| r.errno).collect();
            consequences.push(format!(
                "the host refused {} VMM MAP_DMA(s) of them ({})",
                refused.len(),
                errnos
                    .iter()
                    .map(|e| errno_name(*e))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if let Some(l) = lost {
            consequences.push(format!("{} never reached the host as a MAP_DMA", l.count));
        }
        let msg = format!(
            "{n} guest MAP(s) in domain {} reach beyond the host IOMMU's last valid IOVA {} (VFIO_IOMMU_GET_INFO of container {:#x}), first {}: the guest's IOMMU accepts IOVAs the host's cannot map (a VMM that did not pass the host's IOVA ranges or width to the guest){}",
            g.domain,
            hex(last),
            c.container,
            range(s, l),
            if consequences.is_empty() {
                String::new()
            } else {
                format!("; {}", consequences.join("; "))
            }
        );
        let mut evidence = vec![iev, gev];
        evidence.extend(refused.iter().take(4).map(|r| r.map_dma));
        if let Some(l) = lost {
            evidence.extend(l.examples.iter().filter(|e| **e != gev));
        }
        out.push(Finding::new(RuleId::WidthGranule, g.node, msg, evidence).address(s, l));
    }

    /// VT004: a guest doorbell IOVA inside the host's SW-MSI window with no
    /// doorbell mapping there on the host.
    fn eval_guest_doorbells(&self, p: &Pairing, out: &mut Vec<Finding>) {
        let (Some(g), Some(c)) = (p.guest_key(), p.host) else {
            return;
        };
        let (Some(gd), Some(cont)) = (self.guest.domain(g), self.host.containers.get(&c)) else {
            return;
        };
        let doms: Vec<_> = cont
            .domains
            .iter()
            .filter_map(|d| {
                let k = crate::engine::keys::IommuDomainKey {
                    node: c.node,
                    domain: *d,
                };
                self.host.domains.get(&k).map(|dom| (k, dom))
            })
            .collect();
        for m in gd
            .maps
            .iter()
            .filter(|m| u32::from(m.meta.flags()) & MAP_MMIO != 0)
        {
            for (k, dom) in &doms {
                let Some((base, cev)) = dom.cookie else {
                    continue;
                };
                if m.start < base || m.start - base >= SW_MSI_LEN {
                    continue;
                }
                let backed = dom.doorbells.contains_key(&page(m.start))
                    || dom.maps.get(m.start).is_some_and(|hm| is_mmio_prot(&hm));
                if !backed {
                    let msg = format!(
                        "guest doorbell IOVA {} (→ GPA {}) in domain {} lies in the host SW-MSI window of domain {:#x}, which maps no doorbell there",
                        hex(m.start),
                        hex(m.to),
                        g.domain,
                        k.domain
                    );
                    out.push(
                        Finding::new(RuleId::SwMsiUnbacked, g.node, msg, vec![cev, m.meta.ev()])
                            .address(m.start, m.last),
                    );
                }
            }
        }
    }
}

fn errno_name(e: i32) -> String {
    match e {
        22 => "EINVAL".to_string(),
        17 => "EEXIST".to_string(),
        12 => "ENOMEM".to_string(),
        _ => format!("errno {e}"),
    }
}

/// The finding located at `span` (the IOVAs of the requests it sums up).
fn with_span(f: Finding, span: Option<(u64, u64)>) -> Finding {
    match span {
        Some((s, l)) => f.address(s, l),
        None => f,
    }
}
