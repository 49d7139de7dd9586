//! The typed event every source yields (live probes, remote agents, recorded
//! files) and everything downstream consumes.
//!
//! The JSON Lines form of an event (`vfio-trace export --format jsonl`) is a
//! user contract: every line has `ts_ns`, `node`, `pid`, `tid`, `comm`, `kind`
//! and the fields of its kind. Fields may be added, never renamed. All
//! integers, addresses included, are JSON numbers (u64 values above 2^53 need
//! a JSON reader that keeps integer precision, e.g. jq ≥ 1.7 or Python).
//!
//! Each event kind is one module under `kinds/` (see docs/event-kinds.md):
//! its payload struct, text line, trace-file coding, view accessors and
//! sample events. [`EventKind`] and its per-kind dispatch are generated from
//! the one table in `kinds/mod.rs`.

pub mod build;
mod kinds;

pub use kinds::*;

use std::fmt;

use serde::{Deserialize, Serialize};

/// Index of a node (host or guest) in the trace's [`NodeInfo`] table.
pub type NodeId = u16;

/// One thing a probe saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// CLOCK_MONOTONIC of the node that produced it, in nanoseconds. Add the
    /// node's `clock_offset_ns` to get wall-clock (CLOCK_REALTIME) time.
    pub ts_ns: u64,
    pub node: NodeId,
    /// Thread group id (what users call the pid); 0 for events the tool
    /// itself produces (health, sysfs snapshots).
    pub pid: u32,
    pub tid: u32,
    pub comm: Comm,
    pub kind: EventKind,
}

/// A task's `comm`: up to 15 bytes, NUL padded, as the kernel keeps it.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Comm(pub [u8; 16]);

impl Comm {
    pub fn new(s: &str) -> Self {
        let mut b = [0u8; 16];
        let n = s.len().min(15);
        b[..n].copy_from_slice(&s.as_bytes()[..n]);
        Comm(b)
    }

    pub fn as_str(&self) -> std::borrow::Cow<'_, str> {
        let end = self.0.iter().position(|&c| c == 0).unwrap_or(16);
        String::from_utf8_lossy(&self.0[..end])
    }
}

impl fmt::Debug for Comm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

/// Wall-clock (CLOCK_REALTIME) nanoseconds of a node-local CLOCK_MONOTONIC
/// timestamp: `ts_ns` plus node `node`'s `clock_offset_ns` in `nodes` (0
/// for an unknown node). The one place node time becomes wall time (the
/// merge of files, the engine's clock, the check's order, the exporters).
pub fn wall_ns(nodes: &[NodeInfo], node: NodeId, ts_ns: u64) -> i128 {
    let off = nodes
        .get(usize::from(node))
        .map_or(0, |n| n.clock_offset_ns);
    i128::from(ts_ns) + i128::from(off)
}

/// [`wall_ns`] clamped to `u64` (0 before the epoch, `u64::MAX` past it).
pub fn wall_ns_u64(nodes: &[NodeInfo], node: NodeId, ts_ns: u64) -> u64 {
    u64::try_from(wall_ns(nodes, node, ts_ns).max(0)).unwrap_or(u64::MAX)
}

/// Who a node is, carried in trace headers and agent hellos.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// `--node NAME`, default the hostname.
    pub name: String,
    pub role: NodeRole,
    /// `uname -r`.
    pub kernel: String,
    /// `uname -m`.
    pub machine: String,
    /// CLOCK_REALTIME − CLOCK_MONOTONIC on that node, in nanoseconds.
    pub clock_offset_ns: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeRole {
    /// Runs VFIO / KVM: the host (or L1 in the nested lab).
    Host,
    /// Runs a virtio-iommu driver: a guest.
    Guest,
    /// Both or unknown (a node whose probes see both sides).
    Mixed,
}

/// A device as the probes can name it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Device {
    /// PCI segment:bus:device.function.
    Pci {
        seg: u16,
        bus: u8,
        dev: u8,
        func: u8,
    },
    /// A VFIO device file descriptor of the event's process (ioctl-level
    /// probes know only the fd).
    Fd(u32),
    /// Not known.
    Unknown,
}

impl Device {
    /// From a PCI requester id (bus << 8 | devfn), as virtio-iommu endpoint
    /// ids are on PCI.
    pub fn from_rid(seg: u16, rid: u32) -> Self {
        Device::Pci {
            seg,
            bus: (rid >> 8) as u8,
            dev: ((rid >> 3) & 0x1f) as u8,
            func: (rid & 7) as u8,
        }
    }

    /// Parses `0000:00:02.0`, `00:02.0`, `fd:7` or `?`.
    pub fn parse(s: &str) -> Option<Self> {
        if s == "?" {
            return Some(Device::Unknown);
        }
        if let Some(fd) = s.strip_prefix("fd:") {
            return fd.parse().ok().map(Device::Fd);
        }
        let (rest, func) = s.rsplit_once('.')?;
        let mut parts: Vec<&str> = rest.split(':').collect();
        let seg = if parts.len() == 3 {
            u16::from_str_radix(parts.remove(0), 16).ok()?
        } else {
            0
        };
        if parts.len() != 2 {
            return None;
        }
        Some(Device::Pci {
            seg,
            bus: u8::from_str_radix(parts[0], 16).ok()?,
            dev: u8::from_str_radix(parts[1], 16).ok().filter(|d| *d < 32)?,
            func: func.parse().ok().filter(|f| *f < 8)?,
        })
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Pci {
                seg,
                bus,
                dev,
                func,
            } => write!(f, "{seg:04x}:{bus:02x}:{dev:02x}.{func}"),
            Device::Fd(fd) => write!(f, "fd:{fd}"),
            Device::Unknown => f.write_str("?"),
        }
    }
}

impl fmt::Debug for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Device {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Device {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Device::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("bad device {s:?}")))
    }
}

/// Identity of a per-process kernel object reached through an fd (a VFIO
/// container, a KVM VM, an iommufd): `pid << 32 | fd`. Stable for the life of
/// the fd; the JSON carries it as one number.
pub fn fd_handle(pid: u32, fd: u32) -> u64 {
    (u64::from(pid) << 32) | u64::from(fd)
}
