//! VFIO UAPI (include/uapi/linux/vfio.h): ioctl numbers and `#[repr(C)]`
//! structs, little-endian, as the kernel lays them out.

/// `_IO(VFIO_TYPE, VFIO_BASE + n)` with VFIO_TYPE ';' (0x3B), VFIO_BASE 100.
const fn vfio_io(n: u32) -> u32 {
    (0x3B << 8) | (100 + n)
}

pub const VFIO_GET_API_VERSION: u32 = vfio_io(0);
pub const VFIO_CHECK_EXTENSION: u32 = vfio_io(1);
pub const VFIO_SET_IOMMU: u32 = vfio_io(2);
pub const VFIO_GROUP_GET_STATUS: u32 = vfio_io(3);
pub const VFIO_GROUP_SET_CONTAINER: u32 = vfio_io(4);
pub const VFIO_GROUP_UNSET_CONTAINER: u32 = vfio_io(5);
pub const VFIO_GROUP_GET_DEVICE_FD: u32 = vfio_io(6);
pub const VFIO_DEVICE_GET_INFO: u32 = vfio_io(7);
pub const VFIO_DEVICE_GET_REGION_INFO: u32 = vfio_io(8);
pub const VFIO_DEVICE_GET_IRQ_INFO: u32 = vfio_io(9);
pub const VFIO_DEVICE_SET_IRQS: u32 = vfio_io(10);
pub const VFIO_IOMMU_GET_INFO: u32 = vfio_io(12);
pub const VFIO_IOMMU_MAP_DMA: u32 = vfio_io(13);
pub const VFIO_IOMMU_UNMAP_DMA: u32 = vfio_io(14);

pub fn ioctl_name(cmd: u32) -> &'static str {
    match cmd {
        VFIO_GET_API_VERSION => "VFIO_GET_API_VERSION",
        VFIO_CHECK_EXTENSION => "VFIO_CHECK_EXTENSION",
        VFIO_SET_IOMMU => "VFIO_SET_IOMMU",
        VFIO_GROUP_GET_STATUS => "VFIO_GROUP_GET_STATUS",
        VFIO_GROUP_SET_CONTAINER => "VFIO_GROUP_SET_CONTAINER",
        VFIO_GROUP_UNSET_CONTAINER => "VFIO_GROUP_UNSET_CONTAINER",
        VFIO_GROUP_GET_DEVICE_FD => "VFIO_GROUP_GET_DEVICE_FD",
        VFIO_DEVICE_GET_INFO => "VFIO_DEVICE_GET_INFO",
        VFIO_DEVICE_GET_REGION_INFO => "VFIO_DEVICE_GET_REGION_INFO",
        VFIO_DEVICE_GET_IRQ_INFO => "VFIO_DEVICE_GET_IRQ_INFO",
        VFIO_DEVICE_SET_IRQS => "VFIO_DEVICE_SET_IRQS",
        VFIO_IOMMU_GET_INFO => "VFIO_IOMMU_GET_INFO",
        VFIO_IOMMU_MAP_DMA => "VFIO_IOMMU_MAP_DMA",
        VFIO_IOMMU_UNMAP_DMA => "VFIO_IOMMU_UNMAP_DMA",
        crate::kvm::KVM_CREATE_VM => "KVM_CREATE_VM",
        crate::kvm::KVM_SET_USER_MEMORY_REGION => "KVM_SET_USER_MEMORY_REGION",
        _ => "UNKNOWN",
    }
}

pub const VFIO_API_VERSION: i32 = 0;
pub const VFIO_TYPE1_IOMMU: u64 = 1;
pub const VFIO_TYPE1V2_IOMMU: u64 = 3;

pub const VFIO_GROUP_FLAGS_VIABLE: u32 = 1;

pub const VFIO_DMA_MAP_FLAG_READ: u32 = 1;
pub const VFIO_DMA_MAP_FLAG_WRITE: u32 = 2;

pub const VFIO_IOMMU_INFO_PGSIZES: u32 = 1;
pub const VFIO_IOMMU_INFO_CAPS: u32 = 2;
pub const VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE: u16 = 1;
pub const VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL: u16 = 3;

pub const VFIO_PCI_BAR0_REGION_INDEX: u32 = 0;
pub const VFIO_PCI_CONFIG_REGION_INDEX: u32 = 7;
pub const VFIO_PCI_MSI_IRQ_INDEX: u32 = 1;
pub const VFIO_PCI_MSIX_IRQ_INDEX: u32 = 2;

pub const VFIO_IRQ_SET_DATA_NONE: u32 = 1;
pub const VFIO_IRQ_SET_DATA_EVENTFD: u32 = 4;
pub const VFIO_IRQ_SET_ACTION_TRIGGER: u32 = 0x20;

#[repr(C)]
#[derive(Default, Debug, Clone, Copy)]
pub struct GroupStatus {
    pub argsz: u32,
    pub flags: u32,
}

#[repr(C)]
#[derive(Default, Debug, Clone, Copy)]
pub struct DmaMap {
    pub argsz: u32,
    pub flags: u32,
    pub vaddr: u64,
    pub iova: u64,
    pub size: u64,
}

#[repr(C)]
#[derive(Default, Debug, Clone, Copy)]
pub struct DmaUnmap {
    pub argsz: u32,
    pub flags: u32,
    pub iova: u64,
    pub size: u64,
}

#[repr(C)]
#[derive(Default, Debug, Clone, Copy)]
pub struct DeviceInfo {
    pub argsz: u32,
    pub flags: u32,
    pub num_regions: u32,
    pub num_irqs: u32,
    pub cap_offset: u32,
    pub pad: u32,
}

#[repr(C)]
#[derive(Default, Debug, Clone, Copy)]
pub struct RegionInfo {
    pub argsz: u32,
    pub flags: u32,
    pub index: u32,
    pub cap_offset: u32,
    pub size: u64,
    pub offset: u64,
}

#[repr(C)]
#[derive(Default, Debug, Clone, Copy)]
pub struct IrqInfo {
    pub argsz: u32,
    pub flags: u32,
    pub index: u32,
    pub count: u32,
}

/// Builds a `vfio_irq_set` with any flags, start and count; `fds` (eventfd
/// data) may be empty.
pub fn irq_set_raw(flags: u32, index: u32, start: u32, count: u32, fds: &[i32]) -> Vec<u8> {
    let argsz = (20 + 4 * fds.len()) as u32;
    let mut b = Vec::with_capacity(argsz as usize);
    for v in [argsz, flags, index, start, count] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    for fd in fds {
        b.extend_from_slice(&fd.to_le_bytes());
    }
    b
}

/// Builds a `vfio_irq_set` with eventfd data (`fds` empty: DATA_NONE,
/// which disables the index).
pub fn irq_set(index: u32, start: u32, fds: &[i32]) -> Vec<u8> {
    let mut b = Vec::with_capacity(20 + 4 * fds.len());
    let flags = if fds.is_empty() {
        VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER
    } else {
        VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER
    };
    let argsz = (20 + 4 * fds.len()) as u32;
    b.extend_from_slice(&argsz.to_le_bytes());
    b.extend_from_slice(&flags.to_le_bytes());
    b.extend_from_slice(&index.to_le_bytes());
    b.extend_from_slice(&start.to_le_bytes());
    b.extend_from_slice(&(fds.len() as u32).to_le_bytes());
    for fd in fds {
        b.extend_from_slice(&fd.to_le_bytes());
    }
    b
}

/// IOVA ranges from a `vfio_iommu_type1_info` buffer's capability chain.
pub fn parse_iova_ranges(buf: &[u8]) -> Option<Vec<(u64, u64)>> {
    let cap_offset = u32::from_le_bytes(buf.get(16..20)?.try_into().ok()?) as usize;
    let mut off = cap_offset;
    let mut guard = 0;
    while off != 0 && guard < 16 {
        guard += 1;
        let id = u16::from_le_bytes(buf.get(off..off + 2)?.try_into().ok()?);
        let next = u32::from_le_bytes(buf.get(off + 4..off + 8)?.try_into().ok()?) as usize;
        if id == VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE {
            let n = u32::from_le_bytes(buf.get(off + 8..off + 12)?.try_into().ok()?) as usize;
            let mut v = Vec::with_capacity(n);
            for i in 0..n {
                let p = off + 16 + 16 * i;
                let s = u64::from_le_bytes(buf.get(p..p + 8)?.try_into().ok()?);
                let e = u64::from_le_bytes(buf.get(p + 8..p + 16)?.try_into().ok()?);
                v.push((s, e));
            }
            return Some(v);
        }
        off = next;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_numbers_match_the_uapi() {
        assert_eq!(VFIO_DEVICE_SET_IRQS, 0x3B6E);
        assert_eq!(VFIO_IOMMU_GET_INFO, 0x3B70);
        assert_eq!(VFIO_IOMMU_MAP_DMA, 0x3B71);
        assert_eq!(VFIO_IOMMU_UNMAP_DMA, 0x3B72);
        assert_eq!(std::mem::size_of::<DmaMap>(), 32);
        assert_eq!(std::mem::size_of::<DmaUnmap>(), 24);
        assert_eq!(std::mem::size_of::<RegionInfo>(), 32);
    }

    #[test]
    fn irq_set_layout() {
        let b = irq_set(VFIO_PCI_MSIX_IRQ_INDEX, 0, &[7, 8]);
        assert_eq!(b.len(), 28);
        assert_eq!(u32::from_le_bytes(b[0..4].try_into().unwrap()), 28);
        assert_eq!(u32::from_le_bytes(b[4..8].try_into().unwrap()), 0x24);
        assert_eq!(u32::from_le_bytes(b[16..20].try_into().unwrap()), 2);
        assert_eq!(i32::from_le_bytes(b[24..28].try_into().unwrap()), 8);
    }

    #[test]
    fn iova_range_cap_is_parsed() {
        let mut b = vec![0u8; 24];
        b[16..20].copy_from_slice(&24u32.to_le_bytes());
        // DMA_AVAIL cap first, then IOVA_RANGE.
        b.extend_from_slice(&3u16.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&36u32.to_le_bytes());
        b.extend_from_slice(&65535u32.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&2u32.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        for (s, e) in [(0u64, 0xfedf_ffffu64), (0xfef0_0000, 0x7f_ffff_ffff)] {
            b.extend_from_slice(&s.to_le_bytes());
            b.extend_from_slice(&e.to_le_bytes());
        }
        assert_eq!(
            parse_iova_ranges(&b).unwrap(),
            vec![(0, 0xfedf_ffff), (0xfef0_0000, 0x7f_ffff_ffff)]
        );
    }
}
