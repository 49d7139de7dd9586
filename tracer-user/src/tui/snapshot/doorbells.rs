//! The Doorbells pane: per device, its MSI/MSI-X vectors with the programmed
//! message, which window the address falls in (hardware bypass or software
//! mapped), how each translation stage maps it, the eventfd bound, and a
//! status from the engine's findings.

use tracer_core::{
    engine::{
        chain::ChainStart,
        msi::X86_MSI,
        snapshot::{DeviceView, DomainRef, DoorbellView, RegionView},
        ChainQuery, HopKind, HopStatus,
    },
    event::Device,
};

use crate::tui::{model::Model, ui_state::UiState};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowKind {
    /// A hardware MSI window: writes bypass translation.
    HardwareBypass,
    /// A software-MSI window: the doorbell page must be mapped.
    SoftwareMapped,
    /// x86's 0xfee00000 window, not reported as a region.
    X86Implicit,
    /// In no MSI window: translated like DMA.
    None,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Stage {
    pub hop: HopKind,
    pub from: u64,
    pub to: Option<u64>,
    pub ok: bool,
    /// Why the stage is not OK.
    pub why: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct VectorRow {
    /// VFIO irq index (1 MSI, 2 MSI-X).
    pub index: u32,
    pub vector: u32,
    pub eventfd: i32,
    pub message: Option<(u64, u32)>,
    pub window: WindowKind,
    pub stages: Vec<Stage>,
    /// The doorbell page mapped for this address, if any.
    pub doorbell: Option<DoorbellView>,
    pub status: String,
    pub ok: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DeviceDoorbells {
    pub node: String,
    pub device: Device,
    pub pid: u32,
    pub domains: Vec<DomainRef>,
    pub windows: Vec<RegionView>,
    pub doorbells: Vec<DoorbellView>,
    pub vectors: Vec<VectorRow>,
    /// Findings about this device: `VT003 message`.
    pub findings: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct DoorbellsPane {
    pub devices: Vec<DeviceDoorbells>,
    pub cursor: usize,
}

fn window_of(windows: &[RegionView], addr: u64) -> WindowKind {
    for w in windows.iter().filter(|w| w.start <= addr && addr <= w.end) {
        match w.kind.as_str() {
            "msi" | "virtio-msi" => return WindowKind::HardwareBypass,
            "sw-msi" | "virtio-reserved" => return WindowKind::SoftwareMapped,
            _ => {}
        }
    }
    if X86_MSI.0 <= addr && addr <= X86_MSI.1 {
        WindowKind::X86Implicit
    } else {
        WindowKind::None
    }
}

fn stages(model: &Model, node: u16, device: Device, addr: u64) -> Vec<Stage> {
    let q = ChainQuery {
        start: ChainStart::Device { node, device },
        iova: addr,
        size: 1,
    };
    model
        .engine
        .chain(&q)
        .into_iter()
        .flat_map(|c| c.hops)
        .map(|h| {
            let why = match &h.status {
                HopStatus::Ok => None,
                HopStatus::Missing { why } | HopStatus::Unknown { why } => Some(why.clone()),
                HopStatus::Disagree { expected } => Some(format!("expected {expected:#x}")),
            };
            Stage {
                hop: h.kind,
                from: h.from,
                to: h.to,
                ok: why.is_none(),
                why,
            }
        })
        .collect()
}

fn device(model: &Model, node: u16, name: &str, d: &DeviceView) -> DeviceDoorbells {
    let mine: Vec<&tracer_core::engine::Finding> = model
        .analysis
        .findings
        .iter()
        .filter(|f| f.device == Some(d.device) && f.node.is_none_or(|n| n == node))
        .collect();
    let findings: Vec<String> = mine
        .iter()
        .map(|f| format!("{} {}", f.rule.id(), f.message))
        .collect();
    // A finding about an address concerns the vectors programmed with it;
    // one without an address concerns the whole device.
    let about = |a: u64| {
        mine.iter()
            .find(|f| f.address.is_none_or(|(s, l)| s <= a && a <= l))
            .map(|f| format!("{} {}", f.rule.id(), f.message))
    };
    let vectors = d
        .vectors
        .iter()
        .map(|v| {
            let addr = v.message.map(|m| m.0);
            let window = addr.map_or(WindowKind::None, |a| window_of(&d.resv, a));
            let stages = match (addr, window) {
                (Some(a), WindowKind::SoftwareMapped | WindowKind::None) => {
                    stages(model, node, d.device, a)
                }
                _ => Vec::new(),
            };
            let doorbell = addr.and_then(|a| {
                d.doorbells
                    .iter()
                    .find(|b| b.iova <= a && a - b.iova < 0x1000)
                    .cloned()
            });
            let (status, ok) = if v.eventfd < 0 {
                ("no eventfd bound".to_string(), false)
            } else if addr.is_none() {
                ("no message programmed yet".to_string(), true)
            } else if let Some(f) = addr.and_then(about) {
                (f, false)
            } else if window == WindowKind::None
                && (stages.is_empty() || stages.iter().any(|s| !s.ok))
            {
                ("not bypassed, not mapped".to_string(), false)
            } else {
                ("ok".to_string(), true)
            };
            VectorRow {
                index: v.index,
                vector: v.vector,
                eventfd: v.eventfd,
                message: v.message,
                window,
                stages,
                doorbell,
                status,
                ok,
            }
        })
        .collect();
    DeviceDoorbells {
        node: name.to_string(),
        device: d.device,
        pid: d.pid,
        domains: d.domains.clone(),
        windows: d.resv.clone(),
        doorbells: d.doorbells.clone(),
        vectors,
        findings,
    }
}

pub fn build(model: &Model, ui: &UiState) -> DoorbellsPane {
    let devices: Vec<DeviceDoorbells> = model
        .analysis
        .nodes
        .iter()
        .flat_map(|n| {
            n.devices
                .iter()
                .filter(|d| !d.vectors.is_empty() || !d.doorbells.is_empty() || !d.resv.is_empty())
                .map(|d| device(model, n.node, &n.name, d))
        })
        .collect();
    let cursor = ui.doorbells_cursor.min(devices.len().saturating_sub(1));
    DoorbellsPane { devices, cursor }
}
