//! Kernel-internal struct offsets, resolved by the loader from the running
//! kernel's BTF. vmlinux offsets are read-only globals (frozen at load);
//! module offsets live in `MOD_OFFSETS`, filled when the module appears.
//! `u32::MAX` means "not resolved": probes needing it emit nothing.

use core::ffi::c_void;

use aya_ebpf::{
    helpers::{bpf_probe_read_kernel, bpf_probe_read_kernel_str_bytes},
    macros::map,
    maps::Array,
    Global,
};
use tracer_common::kprobe::{mod_offset, resv_type, DEV_NAME_LEN};

const UNSET: u32 = u32::MAX;

/// `struct device` → `kobj.name` (`const char *`), i.e. `dev_name()`.
#[unsafe(no_mangle)]
static OFF_DEVICE_NAME: Global<u32> = Global::new(UNSET);
/// `struct pci_dev` → `dev` (embedded `struct device`).
#[unsafe(no_mangle)]
static OFF_PCI_DEV_DEV: Global<u32> = Global::new(UNSET);
/// `struct msi_desc` → `dev` (`struct device *`).
#[unsafe(no_mangle)]
static OFF_MSI_DESC_DEV: Global<u32> = Global::new(UNSET);
/// `struct msi_desc` → `msi_index` (u16).
#[unsafe(no_mangle)]
static OFF_MSI_DESC_INDEX: Global<u32> = Global::new(UNSET);
/// `struct msi_desc` → `irq` (unsigned int: the first Linux irq).
#[unsafe(no_mangle)]
static OFF_MSI_DESC_IRQ: Global<u32> = Global::new(UNSET);
/// Bit offsets (from the start of `struct msi_desc`) of the one-bit fields
/// `pci.msi_attrib.is_msix`, `.can_mask`, `.is_virtual`.
#[unsafe(no_mangle)]
static BIT_MSI_DESC_IS_MSIX: Global<u32> = Global::new(UNSET);
#[unsafe(no_mangle)]
static BIT_MSI_DESC_CAN_MASK: Global<u32> = Global::new(UNSET);
#[unsafe(no_mangle)]
static BIT_MSI_DESC_IS_VIRTUAL: Global<u32> = Global::new(UNSET);
/// `struct irq_data` → `irq`, `common`; `struct irq_common_data` →
/// `msi_desc`.
#[unsafe(no_mangle)]
static OFF_IRQ_DATA_IRQ: Global<u32> = Global::new(UNSET);
#[unsafe(no_mangle)]
static OFF_IRQ_DATA_COMMON: Global<u32> = Global::new(UNSET);
#[unsafe(no_mangle)]
static OFF_IRQ_COMMON_MSI_DESC: Global<u32> = Global::new(UNSET);
/// `struct msi_msg` → `address_lo`, `address_hi`, `data`.
#[unsafe(no_mangle)]
static OFF_MSI_MSG_ADDR_LO: Global<u32> = Global::new(UNSET);
#[unsafe(no_mangle)]
static OFF_MSI_MSG_ADDR_HI: Global<u32> = Global::new(UNSET);
#[unsafe(no_mangle)]
static OFF_MSI_MSG_DATA: Global<u32> = Global::new(UNSET);
/// `struct iommu_group` → `id` (int).
#[unsafe(no_mangle)]
static OFF_IOMMU_GROUP_ID: Global<u32> = Global::new(UNSET);
/// `struct iommu_resv_region` → `list`, `start`, `length`, `prot`, `type`.
#[unsafe(no_mangle)]
static OFF_RESV_LIST: Global<u32> = Global::new(UNSET);
#[unsafe(no_mangle)]
static OFF_RESV_START: Global<u32> = Global::new(UNSET);
#[unsafe(no_mangle)]
static OFF_RESV_LENGTH: Global<u32> = Global::new(UNSET);
#[unsafe(no_mangle)]
static OFF_RESV_PROT: Global<u32> = Global::new(UNSET);
#[unsafe(no_mangle)]
static OFF_RESV_TYPE: Global<u32> = Global::new(UNSET);
/// This kernel's values of `enum iommu_resv_type`.
#[unsafe(no_mangle)]
static KRESV_DIRECT: Global<u32> = Global::new(UNSET);
#[unsafe(no_mangle)]
static KRESV_DIRECT_RELAXABLE: Global<u32> = Global::new(UNSET);
#[unsafe(no_mangle)]
static KRESV_RESERVED: Global<u32> = Global::new(UNSET);
#[unsafe(no_mangle)]
static KRESV_MSI: Global<u32> = Global::new(UNSET);
#[unsafe(no_mangle)]
static KRESV_SW_MSI: Global<u32> = Global::new(UNSET);

/// Module struct offsets, indexed by `mod_offset`.
#[map]
static MOD_OFFSETS: Array<u32> = Array::with_max_entries(mod_offset::COUNT, 0);

#[inline(always)]
fn global(g: &Global<u32>) -> Option<u64> {
    let v = g.load();
    (v != UNSET).then_some(u64::from(v))
}

#[inline(always)]
pub fn module(index: u32) -> Option<u64> {
    let v = *MOD_OFFSETS.get(index)?;
    (v != UNSET).then_some(u64::from(v))
}

/// Reads a `T` at kernel address `addr`.
#[inline(always)]
pub fn read<T>(addr: u64) -> Option<T> {
    // SAFETY: a checked kernel read; a bad address yields an error.
    unsafe { bpf_probe_read_kernel(addr as *const T) }.ok()
}

/// `dev_name(dev)` into `out` (NUL padded). Leaves `out` empty on failure.
#[inline(always)]
pub fn dev_name(dev: u64, out: &mut [u8; DEV_NAME_LEN]) {
    let Some(off) = global(&OFF_DEVICE_NAME) else {
        return;
    };
    let Some(name) = read::<u64>(dev + off) else {
        return;
    };
    // SAFETY: a checked kernel string read into a buffer we own.
    let _ = unsafe { bpf_probe_read_kernel_str_bytes(name as *const u8, out) };
}

/// `&pdev->dev` of the `pci_dev` at `pdev`.
#[inline(always)]
pub fn pci_dev_device(pdev: u64) -> Option<u64> {
    Some(pdev + global(&OFF_PCI_DEV_DEV)?)
}

/// `vdev->pdev` of a `vfio_pci_core_device`.
#[inline(always)]
pub fn vfio_pci_core_pdev(vdev: u64) -> Option<u64> {
    read::<u64>(vdev + module(mod_offset::VFIO_PCI_CORE_PDEV)?)
}

pub struct MsiDesc {
    pub dev: u64,
    pub index: u16,
}

#[inline(always)]
pub fn msi_desc(desc: u64) -> Option<MsiDesc> {
    Some(MsiDesc {
        dev: read::<u64>(desc + global(&OFF_MSI_DESC_DEV)?)?,
        index: read::<u16>(desc + global(&OFF_MSI_DESC_INDEX)?)?,
    })
}

/// One bit of the struct at `base`, at bit offset `g` (None if unresolved
/// or unreadable).
#[inline(always)]
fn bit(base: u64, g: &Global<u32>) -> Option<u8> {
    let b = global(g)?;
    let byte = read::<u8>(base + b / 8)?;
    Some((byte >> (b % 8)) & 1)
}

/// What a mask/unmask callback's `struct irq_data` says about its vector.
pub struct IrqMsi {
    /// The `struct device` of the PCI device.
    pub dev: u64,
    /// MSI-X entry, or MSI vector (`msi_index` + `irq` − `desc->irq`).
    pub vector: u32,
    /// (is_msix, can_mask, is_virtual), when the bitfields resolved.
    pub attrs: Option<(u8, u8, u8)>,
}

/// `irq_data_get_msi_desc(data)` and the vector it stands for.
#[inline(always)]
pub fn irq_msi(data: u64) -> Option<IrqMsi> {
    let common = read::<u64>(data + global(&OFF_IRQ_DATA_COMMON)?)?;
    let desc = read::<u64>(common + global(&OFF_IRQ_COMMON_MSI_DESC)?)?;
    if desc == 0 {
        return None;
    }
    let irq = read::<u32>(data + global(&OFF_IRQ_DATA_IRQ)?)?;
    let first = read::<u32>(desc + global(&OFF_MSI_DESC_IRQ)?)?;
    let d = msi_desc(desc)?;
    let attrs = match (
        bit(desc, &BIT_MSI_DESC_IS_MSIX),
        bit(desc, &BIT_MSI_DESC_CAN_MASK),
        bit(desc, &BIT_MSI_DESC_IS_VIRTUAL),
    ) {
        (Some(x), Some(c), Some(v)) => Some((x, c, v)),
        _ => None,
    };
    Some(IrqMsi {
        dev: d.dev,
        vector: u32::from(d.index).wrapping_add(irq.wrapping_sub(first)),
        attrs,
    })
}

/// (address_lo, address_hi, data) of a `struct msi_msg`.
#[inline(always)]
pub fn msi_msg(msg: u64) -> Option<(u32, u32, u32)> {
    Some((
        read::<u32>(msg + global(&OFF_MSI_MSG_ADDR_LO)?)?,
        read::<u32>(msg + global(&OFF_MSI_MSG_ADDR_HI)?)?,
        read::<u32>(msg + global(&OFF_MSI_MSG_DATA)?)?,
    ))
}

#[inline(always)]
pub fn iommu_group_id(group: u64) -> Option<u32> {
    read::<u32>(group + global(&OFF_IOMMU_GROUP_ID)?)
}

pub struct ResvLayout {
    pub list: u64,
    pub start: u64,
    pub length: u64,
    pub prot: u64,
    pub rtype: u64,
}

#[inline(always)]
pub fn resv_layout() -> Option<ResvLayout> {
    Some(ResvLayout {
        list: global(&OFF_RESV_LIST)?,
        start: global(&OFF_RESV_START)?,
        length: global(&OFF_RESV_LENGTH)?,
        prot: global(&OFF_RESV_PROT)?,
        rtype: global(&OFF_RESV_TYPE)?,
    })
}

/// This kernel's `enum iommu_resv_type` value → the stable `resv_type` code.
#[inline(always)]
pub fn resv_code(k: u32) -> u32 {
    if k == KRESV_MSI.load() {
        resv_type::MSI
    } else if k == KRESV_SW_MSI.load() {
        resv_type::SW_MSI
    } else if k == KRESV_RESERVED.load() {
        resv_type::RESERVED
    } else if k == KRESV_DIRECT.load() {
        resv_type::DIRECT
    } else if k == KRESV_DIRECT_RELAXABLE.load() {
        resv_type::DIRECT_RELAXABLE
    } else {
        resv_type::UNKNOWN
    }
}

/// Copies `n` (≤ `N`) kernel bytes from `src` into `dst`; false if it faulted.
#[inline(always)]
pub fn copy_kernel<const N: usize>(dst: &mut [u8; N], src: u64, n: u32) -> bool {
    if n == 0 || n as usize > N {
        return false;
    }
    // SAFETY: `n` is within `dst`; the helper checks the source address.
    unsafe {
        aya_ebpf::helpers::generated::bpf_probe_read_kernel(
            dst.as_mut_ptr().cast::<c_void>(),
            n,
            src as *const c_void,
        ) == 0
    }
}
