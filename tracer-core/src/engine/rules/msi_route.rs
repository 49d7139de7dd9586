//! Where an MSI write goes: the analysis VT003 and VT004 share. A device
//! programmed with a message (`msi_write`, not a cleared one) either
//! reaches a doorbell (a bypass window, a doorbell mapping) or lands
//! somewhere the route names; each rule reports the routes that are its
//! failure mode.

use crate::engine::guest::MAP_MMIO;
use crate::engine::host::{is_mmio_prot, IommuDomain};
use crate::engine::keys::{page, rid, ContainerKey, DevKey, EvId, GuestDomainKey, IommuDomainKey};
use crate::engine::msi::{sw_msi_window, Message, X86_MSI};
use crate::engine::state::State;
use crate::event::{Event, MsiWrite, ResvType};

/// What the message's address reaches. Evidence ends with the write.
pub(crate) enum Route {
    /// A doorbell, or nothing known to judge it by.
    Fine,
    /// Inside a software-MSI window `(w0, w1)` that maps nothing there.
    WindowEmpty {
        owner: WindowOwner,
        window: (u64, u64),
        evidence: Vec<EvId>,
    },
    /// Guest: domain `dom` maps the address as DMA to `gpa`.
    GuestDma {
        dom: u32,
        gpa: u64,
        evidence: Vec<EvId>,
    },
    /// Guest: not in a bypass MSI region of endpoint `ep`, not mapped.
    GuestUnmapped {
        dom: u32,
        ep: u32,
        evidence: Vec<EvId>,
    },
    /// Host: a container of the device maps the address as DMA to `hva`.
    HostContainerDma {
        container: ContainerKey,
        hva: u64,
        evidence: Vec<EvId>,
    },
    /// Host: an IOMMU domain of the device maps the address as DMA to `to`.
    HostDomainDma {
        domain: u64,
        to: u64,
        evidence: Vec<EvId>,
    },
    /// Host: nothing maps it; `names` lists where it was looked for.
    HostUnrouted { names: String, evidence: Vec<EvId> },
}

/// Whose software-MSI window an address fell in.
pub(crate) enum WindowOwner {
    /// The guest driver's own SW_MSI window of an endpoint attached to
    /// this virtio-iommu domain.
    Guest(u32),
    /// The MSI cookie of this host IOMMU domain.
    Host(u64),
}

/// `pid:fd`, or `pid:fd/ioas` for an iommufd IOAS.
pub(crate) fn container_name(c: ContainerKey) -> String {
    let (pid, fd) = (c.container >> 32, c.container & 0xffff_ffff);
    if c.ioas == 0 {
        format!("{pid}:{fd}")
    } else {
        format!("{pid}:{fd}/ioas {}", c.ioas)
    }
}

/// The route of `w`, written in the process of `e` (event `id`).
pub(crate) fn route(st: &State, e: &Event, w: &MsiWrite, id: EvId) -> Route {
    // A zeroed message clears the vector: nothing to route.
    if Message::is_cleared(w.address, w.data) {
        return Route::Fine;
    }
    let k = DevKey::new(e.node, e.pid, w.device);
    guest(st, k, w, id).unwrap_or_else(|| host(st, k, e.pid, w, id))
}

/// In the guest's virtio-iommu context; None when the device is not a
/// probed, attached endpoint of this node.
fn guest(st: &State, k: DevKey, w: &MsiWrite, id: EvId) -> Option<Route> {
    let a = w.address;
    let ep = rid(w.device)?;
    let e = st.guest.endpoint(k.node, ep)?;
    let (Some(dom), Some((pev, resv))) = (e.domain, &e.probe) else {
        return None;
    };
    let dkey = GuestDomainKey {
        node: k.node,
        domain: dom,
    };
    let d = st.guest.domain(dkey);
    if d.is_some_and(|d| d.bypass)
        || resv
            .iter()
            .any(|m| m.subtype == 1 && m.start <= a && a <= m.end)
    {
        return Some(Route::Fine);
    }
    let mapped = d.and_then(|d| d.maps.get(a));
    if mapped.is_some_and(|m| u32::from(m.meta.flags()) & MAP_MMIO != 0) {
        return Some(Route::Fine);
    }
    let mut evidence = vec![*pev];
    evidence.extend(e.attach_ev);
    evidence.extend(mapped.map(|m| m.meta.ev()));
    evidence.push(id);
    let in_window = e.implicit_sw_msi().filter(|(w0, w1)| *w0 <= a && a <= *w1);
    Some(match (mapped, in_window) {
        (None, Some(window)) => Route::WindowEmpty {
            owner: WindowOwner::Guest(dom),
            window,
            evidence,
        },
        (Some(m), _) => Route::GuestDma {
            dom,
            gpa: m.translate(a),
            evidence,
        },
        (None, None) => Route::GuestUnmapped { dom, ep, evidence },
    })
}

/// On a host device tied to containers / IOMMU domains
/// ([`State::device_context`]); fine when nothing ties it.
fn host(st: &State, k: DevKey, pid: u32, w: &MsiWrite, id: EvId) -> Route {
    let a = w.address;
    let ctx = st.device_context_hint(k, Some(pid));
    if ctx.is_empty() {
        return Route::Fine;
    }
    let bypass = st
        .msi
        .regions_for(k.node, w.device)
        .into_iter()
        .any(|(r, _)| r.rtype == ResvType::Msi && r.start <= a && a <= r.end)
        || (st.clock.is_x86(k.node) && X86_MSI.0 <= a && a <= X86_MSI.1);
    if bypass {
        return Route::Fine;
    }
    let doms: Vec<(IommuDomainKey, &IommuDomain)> = ctx
        .domains
        .iter()
        .filter_map(|dk| st.host.domains.get(dk).map(|d| (*dk, d)))
        .collect();
    let backed = doms.iter().any(|(_, d)| {
        d.doorbells.contains_key(&page(a)) || d.maps.get(a).is_some_and(|m| is_mmio_prot(&m))
    });
    if backed {
        return Route::Fine;
    }
    let cookie = doms.iter().find_map(|(dk, d)| {
        let (base, cev) = d.cookie?;
        let (w0, w1) = sw_msi_window(base);
        (w0 <= a && a <= w1).then_some((*dk, w0, w1, cev))
    });
    if let Some((dk, w0, w1, cev)) = cookie {
        return Route::WindowEmpty {
            owner: WindowOwner::Host(dk.domain),
            window: (w0, w1),
            evidence: vec![cev, id],
        };
    }
    if let Some((ck, m)) = ctx.containers.iter().find_map(|ck| {
        let m = st.host.containers.get(ck)?.maps.get(a)?;
        Some((*ck, m))
    }) {
        return Route::HostContainerDma {
            container: ck,
            hva: m.translate(a),
            evidence: vec![m.meta.ev(), id],
        };
    }
    if let Some((dk, m)) = doms
        .iter()
        .find_map(|(dk, d)| d.maps.get(a).map(|m| (*dk, m)))
    {
        return Route::HostDomainDma {
            domain: dk.domain,
            to: m.translate(a),
            evidence: vec![m.meta.ev(), id],
        };
    }
    let mut names: Vec<String> = ctx
        .domains
        .iter()
        .map(|d| format!("domain {:#x}", d.domain))
        .collect();
    names.extend(
        ctx.containers
            .iter()
            .map(|c| format!("container {}", container_name(*c))),
    );
    let mut evidence: Vec<EvId> = doms
        .iter()
        .find_map(|(_, d)| d.doorbells.values().next().map(|(_, ev)| *ev))
        .into_iter()
        .collect();
    evidence.push(id);
    Route::HostUnrouted {
        names: names.join(", "),
        evidence,
    }
}
