//! MSI doorbell rules: VT003 (MSI address unroutable), VT004 (software-MSI
//! doorbell not backed / mapped differently), VT005 (software-MSI window
//! collides with guest RAM or DMA mappings).

use super::{hex, range, Finding, RuleId};
use crate::engine::apply::is_mmio_prot;
use crate::engine::interval::overlaps;
use crate::engine::keys::{page, rid, ContainerKey, DevKey, EvId, GuestDomainKey, IommuDomainKey};
use crate::engine::msi::{SW_MSI_LEN, X86_MSI};
use crate::engine::Engine;
use crate::event::{MsiWrite, NodeId, ResvRegion, ResvType};

/// `pid:fd`, or `pid:fd/ioas` for an iommufd IOAS.
pub(crate) fn container_name(c: ContainerKey) -> String {
    let (pid, fd) = (c.container >> 32, c.container & 0xffff_ffff);
    if c.ioas == 0 {
        format!("{pid}:{fd}")
    } else {
        format!("{pid}:{fd}/ioas {}", c.ioas)
    }
}

fn sw_msi_window(base: u64) -> (u64, u64) {
    (base, base.saturating_add(SW_MSI_LEN - 1))
}

impl Engine {
    /// VT003 / VT004 at the moment a device is programmed with an MSI message.
    /// `pid`: the process the write ran in.
    pub(crate) fn check_msi_write(&mut self, k: DevKey, pid: u32, w: &MsiWrite, id: EvId) {
        if self.check_msi_write_guest(k, w, id) {
            return;
        }
        self.check_msi_write_host(k, pid, w, id);
    }

    /// Judges a write in the guest's virtio-iommu context; false when the
    /// device is not a probed, attached endpoint of this node.
    fn check_msi_write_guest(&mut self, k: DevKey, w: &MsiWrite, id: EvId) -> bool {
        let a = w.address;
        let Some(ep) = rid(w.device) else {
            return false;
        };
        let Some(e) = self.guest.endpoint(k.node, ep) else {
            return false;
        };
        let (Some(dom), Some((pev, resv))) = (e.domain, &e.probe) else {
            return false;
        };
        let dkey = GuestDomainKey {
            node: k.node,
            domain: dom,
        };
        let d = self.guest.domain(dkey);
        if d.is_some_and(|d| d.bypass)
            || resv
                .iter()
                .any(|m| m.subtype == 1 && m.start <= a && a <= m.end)
        {
            return true;
        }
        let mapped = d.and_then(|d| d.maps.get(a));
        if mapped.is_some_and(|m| u32::from(m.meta.flags()) & crate::engine::guest::MAP_MMIO != 0) {
            return true;
        }
        let mut evidence = vec![*pev];
        evidence.extend(e.attach_ev);
        evidence.extend(mapped.map(|m| m.meta.ev()));
        evidence.push(id);
        let in_window = e.implicit_sw_msi().filter(|(w0, w1)| *w0 <= a && a <= *w1);
        let (rule, msg) = match (mapped, in_window) {
            (None, Some((w0, w1))) => (
                RuleId::SwMsiUnbacked,
                format!(
                    "vector {} programmed with doorbell IOVA {} inside the guest's SW_MSI window {} but domain {dom} maps nothing there",
                    w.vector,
                    hex(a),
                    range(w0, w1)
                ),
            ),
            (Some(m), _) => (
                RuleId::MsiUnroutable,
                format!(
                    "vector {} programmed with MSI address {}, which domain {dom} translates as DMA to GPA {} (a buffer, not a doorbell)",
                    w.vector,
                    hex(a),
                    hex(m.translate(a))
                ),
            ),
            (None, None) => (
                RuleId::MsiUnroutable,
                format!(
                    "vector {} programmed with MSI address {}: not in a bypass MSI region of endpoint {ep:#x} and not mapped in domain {dom}",
                    w.vector,
                    hex(a)
                ),
            ),
        };
        self.found.push(
            Finding::new(rule, k.node, msg, evidence)
                .device(w.device)
                .at_address(a),
        );
        true
    }

    /// Judges a write on a host device tied to containers / IOMMU domains
    /// ([`Engine::device_context`]); silent when nothing ties it.
    fn check_msi_write_host(&mut self, k: DevKey, pid: u32, w: &MsiWrite, id: EvId) {
        let a = w.address;
        let ctx = self.device_context_hint(k, Some(pid));
        if ctx.is_empty() {
            return;
        }
        let bypass = self
            .msi
            .regions_for(k.node, w.device)
            .into_iter()
            .any(|(r, _)| r.rtype == ResvType::Msi && r.start <= a && a <= r.end)
            || (self.clock.is_x86(k.node) && X86_MSI.0 <= a && a <= X86_MSI.1);
        if bypass {
            return;
        }
        let doms: Vec<(IommuDomainKey, &crate::engine::host::IommuDomain)> = ctx
            .domains
            .iter()
            .filter_map(|dk| self.host.domains.get(dk).map(|d| (*dk, d)))
            .collect();
        let backed = doms.iter().any(|(_, d)| {
            d.doorbells.contains_key(&page(a)) || d.maps.get(a).is_some_and(|m| is_mmio_prot(&m))
        });
        if backed {
            return;
        }
        let cookie = doms.iter().find_map(|(dk, d)| {
            let (base, cev) = d.cookie?;
            let (w0, w1) = sw_msi_window(base);
            (w0 <= a && a <= w1).then_some((*dk, w0, w1, cev))
        });
        let names = {
            let mut v: Vec<String> = ctx
                .domains
                .iter()
                .map(|d| format!("domain {:#x}", d.domain))
                .collect();
            v.extend(
                ctx.containers
                    .iter()
                    .map(|c| format!("container {}", container_name(*c))),
            );
            v.join(", ")
        };
        let (rule, msg, mut evidence) = if let Some((dk, w0, w1, cev)) = cookie {
            (
                RuleId::SwMsiUnbacked,
                format!(
                    "vector {} programmed with doorbell IOVA {} inside the SW-MSI window {} of domain {:#x}, but no doorbell page is mapped there",
                    w.vector,
                    hex(a),
                    range(w0, w1),
                    dk.domain
                ),
                vec![cev],
            )
        } else if let Some((ck, m)) = ctx.containers.iter().find_map(|ck| {
            let m = self.host.containers.get(ck)?.maps.get(a)?;
            Some((*ck, m))
        }) {
            (
                RuleId::MsiUnroutable,
                format!(
                    "vector {} programmed with MSI address {}, which container {} maps as DMA to HVA {} (a buffer, not a doorbell)",
                    w.vector,
                    hex(a),
                    container_name(ck),
                    hex(m.translate(a))
                ),
                vec![m.meta.ev()],
            )
        } else if let Some((dk, m)) = doms
            .iter()
            .find_map(|(dk, d)| d.maps.get(a).map(|m| (*dk, m)))
        {
            (
                RuleId::MsiUnroutable,
                format!(
                    "vector {} programmed with MSI address {}, which domain {:#x} maps as DMA to {} (memory, not a doorbell)",
                    w.vector,
                    hex(a),
                    dk.domain,
                    hex(m.translate(a))
                ),
                vec![m.meta.ev()],
            )
        } else {
            (
                RuleId::MsiUnroutable,
                format!(
                    "vector {} programmed with MSI address {}: not in a bypass MSI window and not mapped to a doorbell ({names})",
                    w.vector,
                    hex(a),
                ),
                doms.iter()
                    .find_map(|(_, d)| d.doorbells.values().next().map(|(_, ev)| *ev))
                    .into_iter()
                    .collect(),
            )
        };
        evidence.push(id);
        self.found.push(
            Finding::new(rule, k.node, msg, evidence)
                .device(w.device)
                .at_address(a),
        );
    }

    /// VT005 when a software-MSI region appears: existing container mappings inside it.
    pub(crate) fn check_resv_vs_mappings(&mut self, node: NodeId, r: &ResvRegion, id: EvId) {
        if r.rtype != ResvType::SwMsi {
            return;
        }
        let hits: Vec<_> = self
            .host
            .containers_on(node)
            .filter_map(|(ck, c)| c.maps.overlapping(r.start, r.end).next().map(|m| (*ck, m)))
            .collect();
        for (ck, m) in hits {
            let msg = format!(
                "SW-MSI window {} of group {} overlaps the live DMA mapping {} of container {:#x}",
                range(r.start, r.end),
                r.group,
                range(m.start, m.last),
                ck.container
            );
            self.found.push(
                Finding::new(RuleId::SwMsiCollision, node, msg, vec![m.meta.ev(), id])
                    .device(r.device)
                    .address(m.start, m.last),
            );
        }
    }

    /// VT005 when a domain gets its MSI cookie: DMA mappings already inside the window.
    pub(crate) fn check_cookie_vs_mappings(&mut self, k: IommuDomainKey, base: u64, id: EvId) {
        let (w0, w1) = sw_msi_window(base);
        let Some(d) = self.host.domains.get(&k) else {
            return;
        };
        let hit = d.maps.overlapping(w0, w1).find(|m| !is_mmio_prot(m));
        if let Some(m) = hit {
            let msg = format!(
                "SW-MSI cookie window {} of domain {:#x} overlaps the live DMA mapping {} → {}",
                range(w0, w1),
                k.domain,
                range(m.start, m.last),
                hex(m.to)
            );
            self.found.push(
                Finding::new(RuleId::SwMsiCollision, k.node, msg, vec![m.meta.ev(), id])
                    .address(m.start, m.last),
            );
        }
    }

    /// Software-MSI windows of a node: (start, last, event, what).
    pub(crate) fn sw_msi_windows(&self, node: NodeId) -> Vec<(u64, u64, EvId, String)> {
        let mut v: Vec<_> = self
            .msi
            .node_regions(node)
            .iter()
            .filter(|(r, _)| r.rtype == ResvType::SwMsi)
            .map(|(r, ev)| {
                (
                    r.start,
                    r.end,
                    *ev,
                    format!("SW-MSI region of group {}", r.group),
                )
            })
            .collect();
        for (dk, d) in self.host.domains.iter().filter(|(dk, _)| dk.node == node) {
            if let Some((base, ev)) = d.cookie {
                let (w0, w1) = sw_msi_window(base);
                v.push((w0, w1, ev, format!("MSI cookie of domain {:#x}", dk.domain)));
            }
        }
        v
    }

    /// VT005 over state: VFIO-using VMs whose RAM overlaps a SW-MSI window.
    pub(crate) fn eval_sw_msi_vs_ram(&self, out: &mut Vec<Finding>) {
        let nodes: std::collections::BTreeSet<NodeId> =
            self.host.containers.keys().map(|k| k.node).collect();
        for node in nodes {
            let windows = self.sw_msi_windows(node);
            if windows.is_empty() {
                continue;
            }
            let pids: std::collections::BTreeSet<u32> = self
                .host
                .containers_on(node)
                .map(|(k, _)| k.pid())
                .collect();
            for pid in pids {
                for (vm, slots) in self.host.vms_of(node, pid) {
                    for (slot, s) in slots {
                        let Some(last) = s.gpa.checked_add(s.size - 1) else {
                            continue;
                        };
                        // One finding per window range: the same window
                        // reported by several groups and cookies is one
                        // collision.
                        let mut by_range: std::collections::BTreeMap<
                            (u64, u64),
                            (EvId, Vec<&str>),
                        > = Default::default();
                        for (w0, w1, wev, what) in
                            windows.iter().filter(|w| overlaps(s.gpa, last, w.0, w.1))
                        {
                            let e = by_range.entry((*w0, *w1)).or_insert((*wev, Vec::new()));
                            e.0 = e.0.min(*wev);
                            e.1.push(what);
                        }
                        for ((w0, w1), (wev, what)) in by_range {
                            let msg = format!(
                                "guest RAM memslot {slot} {} of VM {:#x} overlaps the SW-MSI window {} ({}): guest buffers there cannot be DMA-mapped at IOVA = GPA",
                                range(s.gpa, last),
                                vm.vm,
                                range(w0, w1),
                                what.join("; ")
                            );
                            out.push(
                                Finding::new(RuleId::SwMsiCollision, node, msg, vec![wev, s.ev])
                                    .address(s.gpa.max(w0), last.min(w1)),
                            );
                        }
                    }
                }
            }
        }
    }

    /// VT004 over state: a doorbell recorded by `iommu_dma_prepare_msi` whose
    /// IOMMU mapping points elsewhere.
    pub(crate) fn eval_doorbell_mismatch(&self, out: &mut Vec<Finding>) {
        for (dk, d) in &self.host.domains {
            for (&iova, &(paddr, dev)) in &d.doorbells {
                let Some(m) = d.maps.get(iova) else {
                    continue;
                };
                let actual = m.translate(iova);
                if page(actual) != page(paddr) {
                    let msg = format!(
                        "doorbell IOVA {} of domain {:#x} should reach doorbell {} but the IOMMU maps it to {}",
                        hex(iova),
                        dk.domain,
                        hex(page(paddr)),
                        hex(actual)
                    );
                    out.push(
                        Finding::new(RuleId::SwMsiUnbacked, dk.node, msg, vec![dev, m.meta.ev()])
                            .address(iova, iova | 0xfff),
                    );
                }
            }
        }
    }
}
