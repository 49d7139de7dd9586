//! The typed event every source yields (live probes, remote agents, recorded
//! files) and everything downstream consumes.
//!
//! The JSON Lines form of an event (`vfio-trace export --format jsonl`) is a
//! user contract: every line has `ts_ns`, `node`, `pid`, `tid`, `comm`, `kind`
//! and the fields of its kind. Fields may be added, never renamed. All
//! integers, addresses included, are JSON numbers (u64 values above 2^53 need
//! a JSON reader that keeps integer precision, e.g. jq ≥ 1.7 or Python).

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

/// What happened. The serde tag is the JSON `kind` field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    /// VFIO_IOMMU_MAP_DMA (type1 container): IOVA → HVA.
    VfioMapDma(VfioMapDma),
    /// VFIO_IOMMU_UNMAP_DMA; `unmapped` is what the kernel wrote back.
    VfioUnmapDma(VfioUnmapDma),
    /// VFIO_IOMMU_GET_INFO: what the container's IOMMU accepts.
    VfioIommuInfo(VfioIommuInfo),
    /// VFIO_SET_IOMMU: the container got an IOMMU backend.
    VfioSetIommu(VfioSetIommu),
    /// Pages pinned for a MAP_DMA: HVA → HPA.
    VfioPin(VfioPin),
    /// `iommu_map` in a domain: IOVA → HPA (what the device will use).
    IommuMap(IommuMap),
    IommuUnmap(IommuUnmap),
    /// A guest virtio-iommu request, decoded from the wire, with its status.
    ViommuReq(ViommuReq),
    /// A reserved region of an IOMMU group (sysfs or computed by the kernel).
    ResvRegion(ResvRegion),
    /// VFIO_DEVICE_SET_IRQS.
    VfioSetIrqs(VfioSetIrqs),
    /// One vector's trigger set up or torn down.
    MsiVector(MsiVector),
    /// An MSI message written to a device.
    MsiWrite(MsiWrite),
    /// A software-MSI doorbell page mapped in a domain.
    MsiDoorbellMap(MsiDoorbellMap),
    /// `iommu_get_msi_cookie`: a domain gets a software-MSI IOVA window.
    MsiCookie(MsiCookie),
    /// KVM_SET_USER_MEMORY_REGION(2): GPA → HVA.
    KvmMemslot(KvmMemslot),
    /// iommufd IOMMU_IOAS_MAP.
    IoasMap(IoasMap),
    /// iommufd IOMMU_IOAS_UNMAP.
    IoasUnmap(IoasUnmap),
    /// Health: a probe's state.
    ProbeStatus(ProbeStatus),
    /// Health: cumulative drop counters.
    Drops(Drops),
    /// The kernel masked or unmasked one MSI/MSI-X vector of a device (its
    /// irq chip's mask/unmask callback ran).
    MsiMask(MsiMask),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VfioMapDma {
    /// [`fd_handle`] of the container fd.
    pub container: u64,
    pub iova: u64,
    pub vaddr: u64,
    pub size: u64,
    /// VFIO_DMA_MAP_FLAG_{READ 1, WRITE 2, VADDR 4}.
    pub flags: u32,
    /// 0 on success, else the positive errno.
    pub errno: i32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VfioUnmapDma {
    pub container: u64,
    pub iova: u64,
    /// Requested size.
    pub size: u64,
    /// Bytes the kernel reports it unmapped (the `size` it wrote back).
    pub unmapped: u64,
    /// VFIO_DMA_UNMAP_FLAG_{GET_DIRTY_BITMAP 1, ALL 2, VADDR 4}.
    pub flags: u32,
    pub errno: i32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VfioIommuInfo {
    pub container: u64,
    pub flags: u32,
    /// Bitmap of supported IOMMU page sizes.
    pub iova_pgsizes: u64,
    /// Valid IOVA ranges (inclusive ends) from VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE.
    pub iova_ranges: Vec<Range>,
    pub errno: i32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VfioSetIommu {
    pub container: u64,
    /// VFIO_TYPE1_IOMMU 1, VFIO_TYPE1v2_IOMMU 3, ...
    pub iommu_type: u64,
    pub errno: i32,
}

/// An inclusive address range `[start, end]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Range {
    pub start: u64,
    pub end: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VfioPin {
    pub vaddr: u64,
    pub npages: u64,
    /// First page frame number pinned (HPA = pfn << 12).
    pub pfn: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IommuMap {
    /// Kernel address of the `struct iommu_domain`.
    pub domain: u64,
    pub iova: u64,
    pub paddr: u64,
    pub size: u64,
    /// IOMMU_{READ 1, WRITE 2, CACHE 4, NOEXEC 8, MMIO 0x10, PRIV 0x20}.
    pub prot: u32,
    pub errno: i32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IommuUnmap {
    pub domain: u64,
    pub iova: u64,
    pub size: u64,
    pub unmapped: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ViommuOp {
    Attach,
    Detach,
    Map,
    Unmap,
    Probe,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViommuReq {
    pub op: ViommuOp,
    /// virtio-iommu domain id (0 for PROBE).
    pub domain: u32,
    /// Endpoint id (ATTACH, DETACH, PROBE; 0 otherwise).
    pub endpoint: u32,
    /// MAP/UNMAP range, inclusive end (0 otherwise).
    pub virt_start: u64,
    pub virt_end: u64,
    pub phys_start: u64,
    /// MAP: READ 1, WRITE 2, MMIO 4; ATTACH: BYPASS 1.
    pub flags: u32,
    /// VIRTIO_IOMMU_S_*: OK 0, IOERR 1, UNSUPP 2, DEVERR 3, INVAL 4, RANGE 5,
    /// NOENT 6, FAULT 7, NOMEM 8.
    pub status: u8,
    /// PROBE: the RESV_MEM properties the device returned.
    pub resv: Vec<ResvMem>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResvMem {
    /// VIRTIO_IOMMU_RESV_MEM_T_RESERVED 0, _MSI 1.
    pub subtype: u8,
    pub start: u64,
    /// Inclusive.
    pub end: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResvType {
    /// IOMMU_RESV_MSI: hardware doorbell, bypasses translation.
    Msi,
    /// IOMMU_RESV_SW_MSI: software doorbell window, must be mapped.
    SwMsi,
    Reserved,
    Direct,
    DirectRelaxable,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResvRegion {
    pub group: u32,
    pub device: Device,
    pub start: u64,
    /// Inclusive.
    pub end: u64,
    #[serde(rename = "type")]
    pub rtype: ResvType,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VfioSetIrqs {
    pub device: Device,
    /// VFIO_PCI_{INTX 0, MSI 1, MSIX 2, ERR 3, REQ 4}_IRQ_INDEX.
    pub index: u32,
    pub start: u32,
    pub count: u32,
    /// VFIO_IRQ_SET_{DATA_NONE 1, DATA_BOOL 2, DATA_EVENTFD 4, ACTION_MASK 8,
    /// ACTION_UNMASK 0x10, ACTION_TRIGGER 0x20}.
    pub flags: u32,
    /// DATA_EVENTFD: one per vector, -1 de-assigns. May be shorter than
    /// `count` when the probe could not copy them all (`eventfds_truncated`).
    pub eventfds: Vec<i32>,
    #[serde(default)]
    pub eventfds_truncated: bool,
    pub errno: i32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MsiVector {
    pub device: Device,
    pub index: u32,
    pub vector: u32,
    /// The eventfd bound, -1 when unbound.
    pub eventfd: i32,
    pub enabled: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MsiWrite {
    pub device: Device,
    pub vector: u32,
    /// address_hi << 32 | address_lo.
    pub address: u64,
    pub data: u32,
}

/// One vector masked or unmasked by the kernel (`pci_irq_mask_msi` and its
/// siblings, see the README's probe list).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MsiMask {
    pub device: Device,
    /// VFIO's index numbering: 1 MSI, 2 MSI-X; 0 when the probe could not
    /// tell.
    pub index: u32,
    /// MSI-X table entry, or the vector of a multi-vector MSI (the same
    /// numbering as `msi_vector.vector`).
    pub vector: u32,
    /// true: masked; false: unmasked.
    pub masked: bool,
    /// `msi_attrib.can_mask`: the device has a mask bit for this vector
    /// (false: MSI without per-vector masking, or a virtual MSI-X entry;
    /// the call then changes nothing on the device). None when the kernel's
    /// BTF did not say where the flag is.
    pub can_mask: Option<bool>,
    /// `msi_attrib.is_virtual`: an MSI-X entry beyond the device's table.
    pub is_virtual: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MsiDoorbellMap {
    pub device: Device,
    pub domain: u64,
    pub iova: u64,
    pub doorbell_paddr: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MsiCookie {
    pub domain: u64,
    pub base: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvmMemslot {
    /// [`fd_handle`] of the VM fd.
    pub vm: u64,
    /// Slot id; bits 16.. are the address space.
    pub slot: u32,
    pub gpa: u64,
    /// 0 deletes the slot.
    pub size: u64,
    pub hva: u64,
    /// KVM_MEM_{LOG_DIRTY_PAGES 1, READONLY 2, GUEST_MEMFD 4}.
    pub flags: u32,
    pub errno: i32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IoasMap {
    /// [`fd_handle`] of the iommufd.
    pub iommufd: u64,
    pub ioas: u32,
    /// IOMMU_IOAS_MAP_{FIXED_IOVA 1, WRITEABLE 2, READABLE 4}.
    pub flags: u32,
    pub user_va: u64,
    pub length: u64,
    /// The IOVA used (written back by the kernel when not FIXED_IOVA).
    pub iova: u64,
    pub errno: i32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IoasUnmap {
    pub iommufd: u64,
    pub ioas: u32,
    pub iova: u64,
    pub length: u64,
    pub unmapped: u64,
    pub errno: i32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeState {
    Attached,
    /// The kernel has no such function/tracepoint (or its module isn't loaded).
    MissingSymbol,
    /// The kernel refuses this program type (e.g. no kprobes).
    Unsupported,
    /// Attach failed for another reason (see `reason`).
    Failed,
    /// Detached (module unloaded, or the tool is stopping).
    Detached,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeStatus {
    pub probe: String,
    /// Where it attaches, e.g. `tracepoint:syscalls:sys_enter_ioctl`.
    pub attach: String,
    pub status: ProbeState,
    pub required: bool,
    pub reason: String,
    /// Times the program ran.
    pub hits: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drops {
    /// Cumulative: records the ring buffer had no room for.
    pub ring_full: u64,
    /// Cumulative: syscalls whose enter could not be remembered for pairing.
    pub pending_full: u64,
    /// Cumulative: user-memory reads that faulted (event kept, fields zero).
    pub read_failed: u64,
    /// Cumulative: records the user side could not decode.
    pub undecodable: u64,
}

impl Drops {
    /// Events lost (read failures and undecodable records lose fields, not events,
    /// but still make a verdict incomplete).
    pub fn total(&self) -> u64 {
        self.ring_full + self.pending_full + self.read_failed + self.undecodable
    }
}
