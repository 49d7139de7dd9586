//! Decoding of ioctl records ([`IoctlRecord`], and the variable-length
//! [`IoctlHead`] form the probes send): the UAPI structs of
//! include/uapi/linux/vfio.h, kvm.h and iommufd.h, as copied by the probe on
//! enter and on exit.

use tracer_common::{
    ioctl::{self as cmds, IoctlHead, IoctlRecord, ARRAY_DATA_MAX, IOCTL_DATA_MAX},
    kprobe::DEV_NAME_LEN,
};

use super::{device_from_name, errno_of, Bytes, DecodeError};
use crate::event::{
    fd_handle, Device, EventKind, IoasMap, IoasUnmap, KvmMemslot, Range, VfioIommuInfo, VfioMapDma,
    VfioSetIommu, VfioSetIrqs, VfioUnmapDma,
};

/// VFIO_IRQ_SET_DATA_EVENTFD: the payload is one s32 eventfd per vector.
const IRQ_SET_DATA_EVENTFD: u32 = 1 << 2;
/// VFIO_IOMMU_INFO_CAPS: `cap_offset` points at a capability chain.
const IOMMU_INFO_CAPS: u32 = 1 << 1;
/// VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE.
const CAP_IOVA_RANGE: u16 = 1;
/// Bound on capability-chain hops (the kernel emits a handful).
const MAX_CAPS: usize = 16;

/// The fields of one ioctl record, whichever form it came in.
struct Ioctl<'a> {
    pid: u32,
    fd: u32,
    cmd: u32,
    arg: u64,
    ret: i64,
    dev: &'a [u8; DEV_NAME_LEN],
    data_in: Bytes<'a>,
    data_out: Bytes<'a>,
    /// The user array the struct points at (`array_plan`), read at exit.
    data_arr: Bytes<'a>,
}

/// A fixed-size [`IoctlRecord`] (`kind::IOCTL`).
pub(super) fn decode(rec: &IoctlRecord) -> Result<EventKind, DecodeError> {
    decode_fields(&Ioctl {
        pid: rec.hdr.pid,
        fd: rec.fd,
        cmd: rec.cmd,
        arg: rec.arg,
        ret: rec.ret,
        dev: &rec.dev,
        data_in: captured(rec.cmd, "in_len", rec.in_len, &rec.in_data)?,
        data_out: captured(rec.cmd, "out_len", rec.out_len, &rec.out_data)?,
        // The fixed form predates the array read.
        data_arr: Bytes(&[]),
    })
}

/// A variable-length record (`kind::IOCTL_VAR`): an [`IoctlHead`] then
/// exactly `in_len` + `out_len` + `arr_len` bytes. `bytes` is the whole record.
pub(super) fn decode_var(head: &IoctlHead, bytes: &[u8]) -> Result<EventKind, DecodeError> {
    for (field, value, max) in [
        ("in_len", head.in_len, IOCTL_DATA_MAX),
        ("out_len", head.out_len, IOCTL_DATA_MAX),
        ("arr_len", head.arr_len, ARRAY_DATA_MAX),
    ] {
        let max = max as u64;
        if u64::from(value) > max {
            return Err(DecodeError::BadLength {
                cmd: head.cmd,
                field,
                value: u64::from(value),
                max,
            });
        }
    }
    let (n_in, n_out) = (head.in_len as usize, head.out_len as usize);
    let expected = IoctlHead::SIZE + n_in + n_out + head.arr_len as usize;
    if bytes.len() != expected {
        return Err(DecodeError::VarLength {
            cmd: head.cmd,
            head: IoctlHead::SIZE,
            in_len: head.in_len,
            out_len: head.out_len,
            arr_len: head.arr_len,
            got: bytes.len(),
        });
    }
    let data = &bytes[IoctlHead::SIZE..];
    decode_fields(&Ioctl {
        pid: head.hdr.pid,
        fd: head.fd,
        cmd: head.cmd,
        arg: head.arg,
        ret: head.ret,
        dev: &head.dev,
        data_in: Bytes(&data[..n_in]),
        data_out: Bytes(&data[n_in..n_in + n_out]),
        data_arr: Bytes(&data[n_in + n_out..]),
    })
}

fn decode_fields(rec: &Ioctl<'_>) -> Result<EventKind, DecodeError> {
    let (data_in, data_out) = (rec.data_in, rec.data_out);
    let errno = errno_of(rec.ret);
    let handle = fd_handle(rec.pid, rec.fd);
    Ok(match rec.cmd {
        cmds::VFIO_IOMMU_MAP_DMA => EventKind::VfioMapDma(VfioMapDma {
            container: handle,
            flags: data_in.u32(4),
            vaddr: data_in.u64(8),
            iova: data_in.u64(16),
            size: data_in.u64(24),
            errno,
        }),
        cmds::VFIO_IOMMU_UNMAP_DMA => EventKind::VfioUnmapDma(VfioUnmapDma {
            container: handle,
            flags: data_in.u32(4),
            iova: data_in.u64(8),
            size: data_in.u64(16),
            // The kernel writes the bytes it unmapped back into `size`.
            unmapped: if errno == 0 { data_out.u64(16) } else { 0 },
            errno,
        }),
        cmds::VFIO_DEVICE_SET_IRQS => {
            // The PCI address when the vfio-pci probe saw it, else the fd.
            let device = match device_from_name(rec.dev) {
                Device::Unknown => Device::Fd(rec.fd),
                d => d,
            };
            EventKind::VfioSetIrqs(set_irqs(device, data_in, errno))
        }
        cmds::VFIO_IOMMU_GET_INFO => EventKind::VfioIommuInfo(iommu_info(handle, data_out, errno)),
        cmds::VFIO_SET_IOMMU => EventKind::VfioSetIommu(VfioSetIommu {
            container: handle,
            // The argument is the IOMMU type itself, not a pointer.
            iommu_type: rec.arg,
            errno,
        }),
        cmds::KVM_SET_USER_MEMORY_REGION | cmds::KVM_SET_USER_MEMORY_REGION2 => {
            // _region2 starts with the same five fields.
            EventKind::KvmMemslot(KvmMemslot {
                vm: handle,
                slot: data_in.u32(0),
                flags: data_in.u32(4),
                gpa: data_in.u64(8),
                size: data_in.u64(16),
                hva: data_in.u64(24),
                errno,
            })
        }
        cmds::IOMMU_IOAS_MAP => EventKind::IoasMap(IoasMap {
            iommufd: handle,
            flags: data_in.u32(4),
            ioas: data_in.u32(8),
            user_va: data_in.u64(16),
            length: data_in.u64(24),
            // Without FIXED_IOVA the kernel picks the IOVA and writes it back.
            iova: if errno == 0 && data_out.has(32, 8) {
                data_out.u64(32)
            } else {
                data_in.u64(32)
            },
            errno,
        }),
        cmds::IOMMU_IOAS_UNMAP => EventKind::IoasUnmap(IoasUnmap {
            iommufd: handle,
            ioas: data_in.u32(4),
            iova: data_in.u64(8),
            length: data_in.u64(16),
            unmapped: if errno == 0 { data_out.u64(16) } else { 0 },
            errno,
        }),
        other => {
            let io = super::ioctl_iommufd::Io {
                handle,
                data_in,
                data_out,
                data_arr: rec.data_arr,
                errno,
            };
            return super::ioctl_iommufd::decode(other, &io)
                .ok_or(DecodeError::UnknownIoctl(other));
        }
    })
}

/// The captured prefix of one direction, after checking the probe's length.
fn captured<'a>(
    cmd: u32,
    field: &'static str,
    len: u32,
    data: &'a [u8; IOCTL_DATA_MAX],
) -> Result<Bytes<'a>, DecodeError> {
    let n = usize::try_from(len).unwrap_or(usize::MAX);
    data.get(..n).map(Bytes).ok_or(DecodeError::BadLength {
        cmd,
        field,
        value: u64::from(len),
        max: IOCTL_DATA_MAX as u64,
    })
}

/// `struct vfio_irq_set { argsz, flags, index, start, count; u8 data[] }`.
fn set_irqs(device: Device, d: Bytes<'_>, errno: i32) -> VfioSetIrqs {
    let flags = d.u32(4);
    let count = d.u32(16);
    let mut eventfds = Vec::new();
    let mut truncated = false;
    if flags & IRQ_SET_DATA_EVENTFD != 0 {
        let captured = d.len().saturating_sub(20) / 4;
        let n = (count as usize).min(captured);
        truncated = n < count as usize;
        eventfds.extend((0..n).map(|i| d.i32(20 + 4 * i)));
    }
    VfioSetIrqs {
        device,
        index: d.u32(8),
        start: d.u32(12),
        count,
        flags,
        eventfds,
        eventfds_truncated: truncated,
        errno,
    }
}

/// `struct vfio_iommu_type1_info { argsz, flags; u64 iova_pgsizes; u32
/// cap_offset; u32 pad }` followed by a capability chain of `{u16 id; u16
/// version; u32 next}` headers; the IOVA-range one holds `u32 nr_iovas; u32
/// reserved; {u64 start; u64 end} iova_ranges[]`.
fn iommu_info(container: u64, d: Bytes<'_>, errno: i32) -> VfioIommuInfo {
    let flags = d.u32(4);
    let mut ranges = Vec::new();
    if errno == 0 && flags & IOMMU_INFO_CAPS != 0 {
        let mut off = d.u32(16) as usize;
        for _ in 0..MAX_CAPS {
            if off == 0 || !d.has(off, 8) {
                break;
            }
            if d.u16(off) == CAP_IOVA_RANGE {
                let nr = d.u32(off + 8) as usize;
                for i in 0..nr {
                    let at = off + 16 + 16 * i;
                    if !d.has(at, 16) {
                        break;
                    }
                    ranges.push(Range {
                        start: d.u64(at),
                        end: d.u64(at + 8),
                    });
                }
            }
            let next = d.u32(off + 4) as usize;
            if next <= off {
                break; // the chain only moves forward; anything else is a loop
            }
            off = next;
        }
    }
    VfioIommuInfo {
        container,
        flags,
        iova_pgsizes: d.u64(8),
        iova_ranges: ranges,
        errno,
    }
}
