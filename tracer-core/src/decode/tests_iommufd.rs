//! The iommufd / VFIO-cdev decoders from byte layouts: every command at its
//! full size, an older caller's shorter struct, a newer caller's longer
//! one, the arrays behind pointers, and random field values.

use proptest::prelude::*;
use tracer_common::ioctl::{self as cmds, IoctlHead, ARRAY_DATA_MAX};

use super::encode::Le;
use super::*;
use crate::event::*;

const PID: u32 = 4300;
const FD: u32 = 7;
const ENOTTY: i32 = 25;

/// The variable-length record the probe sends: head, enter bytes, exit
/// bytes, array bytes.
fn var(cmd: u32, ret: i64, data_in: &[u8], data_out: &[u8], arr: &[u8]) -> Vec<u8> {
    let head = IoctlHead {
        hdr: EventHeader {
            kind: kind::IOCTL_VAR,
            probe: 1,
            cpu: 0,
            ts_ns: 1_000,
            pid: PID,
            tid: PID,
            comm: *b"qemu-system-x86\0",
        },
        enter_ns: 900,
        arg: 0x7fff_0000,
        ret,
        fd: FD,
        cmd,
        in_len: data_in.len() as u32,
        out_len: data_out.len() as u32,
        arr_len: arr.len() as u32,
        _pad: 0,
        dev: [0; tracer_common::kprobe::DEV_NAME_LEN],
    };
    let mut b = super::encode::bytes_of(&head).to_vec();
    b.extend_from_slice(data_in);
    b.extend_from_slice(data_out);
    b.extend_from_slice(arr);
    b
}

fn decode(cmd: u32, ret: i64, data_in: &[u8], data_out: &[u8], arr: &[u8]) -> EventKind {
    decode_record(&var(cmd, ret, data_in, data_out, arr), 0)
        .expect("decodes")
        .kind
}

fn h() -> u64 {
    fd_handle(PID, FD)
}

#[test]
fn ioas_alloc_destroy_and_option() {
    let a = Le::default().u32(12).u32(0).u32(0);
    let a_out = Le::default().u32(12).u32(0).u32(5);
    assert_eq!(
        decode(cmds::IOMMU_IOAS_ALLOC, 0, &a.0, &a_out.0, &[]),
        EventKind::IoasAlloc(IoasAlloc {
            iommufd: h(),
            size: 12,
            flags: 0,
            out_ioas_id: 5,
            errno: 0
        })
    );
    let d = Le::default().u32(8).u32(5);
    assert_eq!(
        decode(cmds::IOMMU_DESTROY, -2, &d.0, &[], &[]),
        EventKind::IommufdDestroy(IommufdDestroy {
            iommufd: h(),
            size: 8,
            id: 5,
            errno: 2
        })
    );
    let o = Le::default().u32(24).u32(1).u32(1).u32(5).u64(0);
    let o_out = Le::default().u32(24).u32(1).u32(1).u32(5).u64(1);
    assert_eq!(
        decode(cmds::IOMMU_OPTION, 0, &o.0, &o_out.0, &[]),
        EventKind::IommufdOption(IommufdOption {
            iommufd: h(),
            size: 24,
            option_id: 1,
            op: 1,
            object_id: 5,
            val64: 0,
            out_val64: 1,
            errno: 0
        })
    );
}

#[test]
fn copy_and_map_file_take_the_iova_written_back() {
    let c = Le::default()
        .u32(40)
        .u32(6)
        .u32(3)
        .u32(2)
        .u64(0x20_0000)
        .u64(0)
        .u64(0x1000_0000);
    let c_out = Le::default()
        .u32(40)
        .u32(6)
        .u32(3)
        .u32(2)
        .u64(0x20_0000)
        .u64(0x4000_0000)
        .u64(0x1000_0000);
    let EventKind::IoasCopy(e) = decode(cmds::IOMMU_IOAS_COPY, 0, &c.0, &c_out.0, &[]) else {
        panic!()
    };
    assert_eq!(
        (
            e.dst_ioas_id,
            e.src_ioas_id,
            e.length,
            e.dst_iova,
            e.src_iova
        ),
        (3, 2, 0x20_0000, 0, 0x1000_0000)
    );
    assert_eq!(e.out_dst_iova, 0x4000_0000);
    assert_eq!(
        EventKind::IoasCopy(e).iova_range(),
        Some((0x4000_0000, 0x401f_ffff))
    );
    let m = Le::default()
        .u32(40)
        .u32(6)
        .u32(2)
        .u32(9)
        .u64(0x1000)
        .u64(0x4000_0000)
        .u64(0);
    let m_out = Le::default()
        .u32(40)
        .u32(6)
        .u32(2)
        .u32(9)
        .u64(0x1000)
        .u64(0x4000_0000)
        .u64(0x8000_0000);
    assert_eq!(
        decode(cmds::IOMMU_IOAS_MAP_FILE, 0, &m.0, &m_out.0, &[]),
        EventKind::IoasMapFile(IoasMapFile {
            iommufd: h(),
            size: 40,
            flags: 6,
            ioas_id: 2,
            fd: 9,
            start: 0x1000,
            length: 0x4000_0000,
            iova: 0,
            out_iova: 0x8000_0000,
            errno: 0
        })
    );
}

fn ranges(rs: &[(u64, u64)]) -> Vec<u8> {
    rs.iter()
        .fold(Le::default(), |l, &(s, e)| l.u64(s).u64(e))
        .0
}

#[test]
fn iova_ranges_and_allow_iovas_read_their_arrays() {
    let r = Le::default()
        .u32(32)
        .u32(2)
        .u32(4)
        .u32(0)
        .u64(0x7f00_0000)
        .u64(0);
    let r_out = Le::default()
        .u32(32)
        .u32(2)
        .u32(2)
        .u32(0)
        .u64(0x7f00_0000)
        .u64(4096);
    // The kernel filled 2 of the caller's 4 slots; the probe read 4 × 16 bytes.
    let arr = ranges(&[(0, 0xfedf_ffff), (0xfef0_0000, u64::MAX), (1, 2), (3, 4)]);
    let EventKind::IoasIovaRanges(e) =
        decode(cmds::IOMMU_IOAS_IOVA_RANGES, 0, &r.0, &r_out.0, &arr)
    else {
        panic!()
    };
    assert_eq!(
        (e.num_iovas, e.out_num_iovas, e.out_iova_alignment),
        (4, 2, 4096)
    );
    assert_eq!(
        e.iovas,
        vec![
            IovaRange {
                start: 0,
                last: 0xfedf_ffff
            },
            IovaRange {
                start: 0xfef0_0000,
                last: u64::MAX
            }
        ]
    );
    // More ranges than the 128 captured bytes hold: the first 8.
    let a = Le::default().u32(24).u32(2).u32(20).u32(0).u64(0x7f00_0000);
    let many: Vec<(u64, u64)> = (0..8).map(|k| (k << 20, (k << 20) + 0xfff)).collect();
    let EventKind::IoasAllowIovas(e) =
        decode(cmds::IOMMU_IOAS_ALLOW_IOVAS, 0, &a.0, &[], &ranges(&many))
    else {
        panic!()
    };
    assert_eq!(e.num_iovas, 20);
    assert_eq!(e.iovas.len(), 8);
    assert_eq!(
        e.iovas[7],
        IovaRange {
            start: 7 << 20,
            last: (7 << 20) + 0xfff
        }
    );
}

#[test]
fn hwpt_alloc_with_vendor_data() {
    let hdr = |flags: u32, data_type: u32, len: u32| {
        Le::default()
            .u32(48)
            .u32(flags)
            .u32(1)
            .u32(2)
            .u32(0)
            .u32(0)
            .u32(data_type)
            .u32(len)
            .u64(0x7f00_1000)
            .u32(0)
            .u32(0)
    };
    let out = |t: u32, len: u32| {
        Le::default()
            .u32(48)
            .u32(0)
            .u32(1)
            .u32(2)
            .u32(7)
            .u32(0)
            .u32(t)
            .u32(len)
            .u64(0x7f00_1000)
            .u32(0)
            .u32(0)
    };
    // Nest parent: no data.
    let EventKind::HwptAlloc(e) = decode(
        cmds::IOMMU_HWPT_ALLOC,
        0,
        &hdr(1, 0, 0).0,
        &out(0, 0).0,
        &[],
    ) else {
        panic!()
    };
    assert_eq!(
        (e.flags, e.dev_id, e.pt_id, e.out_hwpt_id, e.data_type),
        (1, 1, 2, 7, 0)
    );
    assert!(e.data.is_empty() && e.ste.is_empty());
    // SMMUv3 nested: ste[2].
    let ste = Le::default().u64(0x0000_1000_0000_000b).u64(0x18).0;
    let EventKind::HwptAlloc(e) = decode(
        cmds::IOMMU_HWPT_ALLOC,
        0,
        &hdr(0, 2, 16).0,
        &out(2, 16).0,
        &ste,
    ) else {
        panic!()
    };
    assert_eq!(e.ste, vec![0x0000_1000_0000_000b, 0x18]);
    assert_eq!(e.data, ste);
    // VT-d S1: flags, pgtbl_addr, addr_width.
    let s1 = Le::default().u64(4).u64(0x1234_5000).u32(48).u32(0).0;
    let EventKind::HwptAlloc(e) = decode(
        cmds::IOMMU_HWPT_ALLOC,
        0,
        &hdr(0, 1, 24).0,
        &out(1, 24).0,
        &s1,
    ) else {
        panic!()
    };
    assert_eq!(
        (e.s1_flags, e.pgtbl_addr, e.addr_width),
        (4, 0x1234_5000, 48)
    );
    assert!(e.ste.is_empty());
}

#[test]
fn hw_info_invalidate_and_the_viommu_objects() {
    let hi = Le::default()
        .u32(40)
        .u32(0)
        .u32(1)
        .u32(32)
        .u64(0x7f00_2000)
        .u32(0)
        .u32(0)
        .u64(0);
    let hi_out = Le::default()
        .u32(40)
        .u32(0)
        .u32(1)
        .u32(24)
        .u64(0x7f00_2000)
        .u32(1)
        .u32(20)
        .u64(1);
    let data = Le::default().u32(0).u32(0).u64(0xd2_0466).u64(0xf0_0f).0;
    let EventKind::IommufdHwInfo(e) = decode(cmds::IOMMU_GET_HW_INFO, 0, &hi.0, &hi_out.0, &data)
    else {
        panic!()
    };
    assert_eq!(
        (
            e.data_len,
            e.out_data_len,
            e.out_data_type,
            e.out_max_pasid_log2,
            e.out_capabilities
        ),
        (32, 24, 1, 20, 1)
    );
    assert_eq!(e.data, data);
    // VT-d invalidation: entries of 24 bytes; the kernel handled 1 of 2.
    let inv = Le::default()
        .u32(32)
        .u32(6)
        .u64(0x7f00_3000)
        .u32(0)
        .u32(24)
        .u32(2)
        .u32(0);
    let inv_out = Le::default()
        .u32(32)
        .u32(6)
        .u64(0x7f00_3000)
        .u32(0)
        .u32(24)
        .u32(1)
        .u32(0);
    let ent = Le::default()
        .u64(0x8000_0000)
        .u64(16)
        .u32(1)
        .u32(0)
        .u64(0)
        .u64(u64::MAX)
        .u32(0)
        .u32(0)
        .0;
    let EventKind::HwptInvalidate(e) =
        decode(cmds::IOMMU_HWPT_INVALIDATE, 0, &inv.0, &inv_out.0, &ent)
    else {
        panic!()
    };
    assert_eq!(
        (e.hwpt_id, e.entry_len, e.entry_num, e.out_entry_num),
        (6, 24, 2, 1)
    );
    assert_eq!(
        e.entries,
        vec![vec![0x8000_0000, 16, 1], vec![0, u64::MAX, 0]]
    );
    let v = Le::default().u32(24).u32(0).u32(1).u32(1).u32(4).u32(0);
    let v_out = Le::default().u32(24).u32(0).u32(1).u32(1).u32(4).u32(9);
    let EventKind::ViommuAlloc(e) = decode(cmds::IOMMU_VIOMMU_ALLOC, 0, &v.0, &v_out.0, &[]) else {
        panic!()
    };
    // The 24-byte 6.12 struct: no data fields.
    assert_eq!(
        (
            e.size,
            e.r#type,
            e.hwpt_id,
            e.out_viommu_id,
            e.data_len,
            e.data_uptr
        ),
        (24, 1, 4, 9, 0, 0)
    );
    let vd = Le::default().u32(24).u32(9).u32(1).u32(0).u64(0x8);
    let vd_out = Le::default().u32(24).u32(9).u32(1).u32(10).u64(0x8);
    assert_eq!(
        decode(cmds::IOMMU_VDEVICE_ALLOC, 0, &vd.0, &vd_out.0, &[]),
        EventKind::VdeviceAlloc(VdeviceAlloc {
            iommufd: h(),
            size: 24,
            viommu_id: 9,
            dev_id: 1,
            out_vdevice_id: 10,
            virt_id: 8,
            errno: 0
        })
    );
    let q = Le::default()
        .u32(32)
        .u32(0)
        .u32(9)
        .u32(1)
        .u32(64)
        .u32(0)
        .u32(0)
        .u32(0);
    let q_out = Le::default()
        .u32(32)
        .u32(0)
        .u32(9)
        .u32(1)
        .u32(64)
        .u32(11)
        .u32(22)
        .u32(0);
    let EventKind::VeventqAlloc(e) = decode(cmds::IOMMU_VEVENTQ_ALLOC, 0, &q.0, &q_out.0, &[])
    else {
        panic!()
    };
    assert_eq!(
        (
            e.viommu_id,
            e.r#type,
            e.veventq_depth,
            e.out_veventq_id,
            e.out_veventq_fd
        ),
        (9, 1, 64, 11, 22)
    );
    let f_out = Le::default().u32(16).u32(0).u32(8).u32(21);
    let EventKind::FaultQueueAlloc(e) =
        decode(cmds::IOMMU_FAULT_QUEUE_ALLOC, 0, &f_out.0, &f_out.0, &[])
    else {
        panic!()
    };
    assert_eq!((e.out_fault_id, e.out_fault_fd), (8, 21));
    let dt = Le::default().u32(16).u32(1).u32(5).u32(0);
    let EventKind::HwptSetDirtyTracking(e) =
        decode(cmds::IOMMU_HWPT_SET_DIRTY_TRACKING, 0, &dt.0, &[], &[])
    else {
        panic!()
    };
    assert_eq!((e.flags, e.hwpt_id), (1, 5));
    let db = Le::default()
        .u32(48)
        .u32(5)
        .u32(1)
        .u32(0)
        .u64(0x1000)
        .u64(0x40_0000)
        .u64(4096)
        .u64(0x7f00_4000);
    let EventKind::HwptGetDirtyBitmap(e) =
        decode(cmds::IOMMU_HWPT_GET_DIRTY_BITMAP, 0, &db.0, &[], &[])
    else {
        panic!()
    };
    assert_eq!(
        (e.hwpt_id, e.flags, e.iova, e.length, e.page_size, e.data),
        (5, 1, 0x1000, 0x40_0000, 4096, 0x7f00_4000)
    );
}

#[test]
fn vfio_cdev_bind_attach_detach() {
    let b = Le::default().u32(16).u32(0).i32(20).u32(0);
    let b_out = Le::default().u32(16).u32(0).i32(20).u32(1);
    assert_eq!(
        decode(cmds::VFIO_DEVICE_BIND_IOMMUFD, 0, &b.0, &b_out.0, &[]),
        EventKind::VfioBindIommufd(VfioBindIommufd {
            device: h(),
            argsz: 16,
            flags: 0,
            iommufd: 20,
            out_devid: 1,
            token_uuid_ptr: 0,
            errno: 0
        })
    );
    let a = Le::default().u32(16).u32(0).u32(2).u32(0);
    let a_out = Le::default().u32(16).u32(0).u32(3).u32(0);
    let EventKind::VfioAttachPt(e) =
        decode(cmds::VFIO_DEVICE_ATTACH_IOMMUFD_PT, 0, &a.0, &a_out.0, &[])
    else {
        panic!()
    };
    assert_eq!((e.pt_id, e.out_pt_id), (2, 3));
    let d = Le::default().u32(12).u32(1).u32(5);
    let EventKind::VfioDetachPt(e) =
        decode(cmds::VFIO_DEVICE_DETACH_IOMMUFD_PT, -22, &d.0, &[], &[])
    else {
        panic!()
    };
    assert_eq!((e.flags, e.pasid, e.errno), (1, 5, 22));
}

#[test]
fn a_short_struct_decodes_what_it_has_and_records_its_size() {
    // An older caller's 12-byte attach (6.12: no pasid) and a 4-byte one.
    let a = Le::default().u32(12).u32(0).u32(2);
    let EventKind::VfioAttachPt(e) = decode(
        cmds::VFIO_DEVICE_ATTACH_IOMMUFD_PT,
        -(ENOTTY as i64),
        &a.0,
        &a.0,
        &[],
    ) else {
        panic!()
    };
    assert_eq!(
        (e.argsz, e.pt_id, e.out_pt_id, e.pasid, e.errno),
        (12, 2, 2, 0, ENOTTY)
    );
    let four = Le::default().u32(4);
    let EventKind::HwptAlloc(e) = decode(cmds::IOMMU_HWPT_ALLOC, -22, &four.0, &four.0, &[]) else {
        panic!()
    };
    assert_eq!(
        (e.size, e.dev_id, e.pt_id, e.out_hwpt_id, e.data_len),
        (4, 0, 0, 0, 0)
    );
    // Nothing captured at all (the read faulted): zeros, not garbage.
    let EventKind::IoasCopy(e) = decode(cmds::IOMMU_IOAS_COPY, -14, &[], &[], &[]) else {
        panic!()
    };
    assert_eq!((e.size, e.length, e.errno), (0, 0, 14));
}

#[test]
fn an_oversized_struct_decodes_the_known_prefix() {
    // A newer caller's 64-byte VDEVICE_ALLOC: the probe reads 24 bytes, the
    // record carries the size the caller passed.
    let vd = Le::default().u32(64).u32(9).u32(1).u32(10).u64(0x8);
    let EventKind::VdeviceAlloc(e) = decode(cmds::IOMMU_VDEVICE_ALLOC, 0, &vd.0, &vd.0, &[]) else {
        panic!()
    };
    assert_eq!(
        (e.size, e.viommu_id, e.virt_id, e.out_vdevice_id),
        (64, 9, 8, 10)
    );
    // The copy plan never asks for more than the newest layout.
    assert_eq!(
        cmds::copy_plan(cmds::IOMMU_VDEVICE_ALLOC),
        Some((
            cmds::ReadLen::Size { known: 24 },
            cmds::ReadLen::Size { known: 24 }
        ))
    );
}

#[test]
fn array_lengths_beyond_the_probe_bound_are_typed_errors() {
    let inv = Le::default()
        .u32(32)
        .u32(6)
        .u64(0x7f00_3000)
        .u32(0)
        .u32(24)
        .u32(2)
        .u32(0);
    let mut b = var(cmds::IOMMU_HWPT_INVALIDATE, 0, &inv.0, &[], &[0; 16]);
    // A record whose length disagrees with in + out + arr.
    b.push(0);
    assert!(matches!(
        decode_record(&b, 0),
        Err(DecodeError::VarLength { arr_len: 16, .. })
    ));
    // arr_len above what the probe can capture.
    let b = var(
        cmds::IOMMU_HWPT_INVALIDATE,
        0,
        &inv.0,
        &[],
        &[0; ARRAY_DATA_MAX + 1],
    );
    assert!(matches!(
        decode_record(&b, 0),
        Err(DecodeError::BadLength {
            field: "arr_len",
            ..
        })
    ));
}

/// Every command of the iommufd / cdev uAPI has a copy plan and decodes.
#[test]
fn every_iommufd_command_decodes() {
    for cmd in [
        cmds::IOMMU_DESTROY,
        cmds::IOMMU_IOAS_ALLOC,
        cmds::IOMMU_IOAS_ALLOW_IOVAS,
        cmds::IOMMU_IOAS_COPY,
        cmds::IOMMU_IOAS_IOVA_RANGES,
        cmds::IOMMU_IOAS_MAP,
        cmds::IOMMU_IOAS_UNMAP,
        cmds::IOMMU_OPTION,
        cmds::IOMMU_HWPT_ALLOC,
        cmds::IOMMU_GET_HW_INFO,
        cmds::IOMMU_HWPT_SET_DIRTY_TRACKING,
        cmds::IOMMU_HWPT_GET_DIRTY_BITMAP,
        cmds::IOMMU_HWPT_INVALIDATE,
        cmds::IOMMU_FAULT_QUEUE_ALLOC,
        cmds::IOMMU_IOAS_MAP_FILE,
        cmds::IOMMU_VIOMMU_ALLOC,
        cmds::IOMMU_VDEVICE_ALLOC,
        cmds::IOMMU_VEVENTQ_ALLOC,
        cmds::VFIO_DEVICE_BIND_IOMMUFD,
        cmds::VFIO_DEVICE_ATTACH_IOMMUFD_PT,
        cmds::VFIO_DEVICE_DETACH_IOMMUFD_PT,
    ] {
        assert!(cmds::copy_plan(cmd).is_some(), "{cmd:#x}");
        let b = var(cmd, 0, &[0; 48], &[0; 48], &[]);
        decode_record(&b, 0).unwrap_or_else(|e| panic!("{cmd:#x}: {e}"));
    }
}

proptest! {
    /// Random field values of IOAS_COPY and HWPT_INVALIDATE come back
    /// exactly, whatever the size the caller passed.
    #[test]
    fn random_fields_round_trip(
        size in 4u32..200,
        flags: u32, dst: u32, src: u32, len: u64, dst_iova: u64, src_iova: u64, out_iova: u64,
        hwpt: u32, ptr: u64, data_type: u32, entry_len in 0u32..64, num in 0u32..16,
        arr in proptest::collection::vec(any::<u8>(), 0..=ARRAY_DATA_MAX),
    ) {
        let n = (size as usize).clamp(4, 40);
        let c = Le::default().u32(size).u32(flags).u32(dst).u32(src).u64(len).u64(dst_iova).u64(src_iova);
        let mut c_out = c.0.clone();
        c_out[24..32].copy_from_slice(&out_iova.to_le_bytes());
        let EventKind::IoasCopy(e) = decode(cmds::IOMMU_IOAS_COPY, 0, &c.0[..n], &c_out[..n], &[]) else {
            panic!()
        };
        let cut = |off: usize, v: u64, w: usize| if off + w <= n { v } else { 0 };
        prop_assert_eq!(e.size, size);
        prop_assert_eq!(u64::from(e.flags), cut(4, flags.into(), 4));
        prop_assert_eq!(u64::from(e.dst_ioas_id), cut(8, dst.into(), 4));
        prop_assert_eq!(u64::from(e.src_ioas_id), cut(12, src.into(), 4));
        prop_assert_eq!(e.length, cut(16, len, 8));
        prop_assert_eq!(e.dst_iova, cut(24, dst_iova, 8));
        prop_assert_eq!(e.src_iova, cut(32, src_iova, 8));
        prop_assert_eq!(e.out_dst_iova, cut(24, out_iova, 8));

        let inv = Le::default().u32(32).u32(hwpt).u64(ptr).u32(data_type).u32(entry_len).u32(num).u32(0);
        let EventKind::HwptInvalidate(e) = decode(cmds::IOMMU_HWPT_INVALIDATE, 0, &inv.0, &inv.0, &arr) else {
            panic!()
        };
        prop_assert_eq!((e.hwpt_id, e.data_uptr, e.data_type, e.entry_len, e.entry_num), (hwpt, ptr, data_type, entry_len, num));
        let len = entry_len as usize;
        let whole = arr.len().checked_div(len).map_or(0, |k| k.min(num as usize).min(8));
        prop_assert_eq!(e.entries.len(), whole);
        for (k, words) in e.entries.iter().enumerate() {
            prop_assert_eq!(words.len(), len / 8);
            for (w, x) in words.iter().enumerate() {
                let at = k * len + 8 * w;
                prop_assert_eq!(*x, u64::from_le_bytes(arr[at..at + 8].try_into().unwrap()));
            }
        }
        // The event survives the trace file and JSON.
        let ev = decode_record(&var(cmds::IOMMU_HWPT_INVALIDATE, 0, &inv.0, &inv.0, &arr), 0).unwrap();
        let json = serde_json::to_string(&ev.kind).unwrap();
        let back: EventKind = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(back, ev.kind);
    }
}
