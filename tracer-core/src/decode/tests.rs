use tracer_common::ioctl::{self as cmds, IoctlHead, IoctlRecord, IOCTL_DATA_MAX};

use super::encode::{bytes_of, ioctl_record, Le};
use super::*;
use crate::event::*;

const PID: u32 = 4242;

fn header(kind: u16) -> EventHeader {
    EventHeader {
        kind,
        probe: 1,
        cpu: 1,
        ts_ns: 123_456,
        pid: PID,
        tid: PID + 1,
        comm: *b"qemu-system-x86\0",
    }
}

fn record(cmd: u32, fd: u32, arg: u64, ret: i64, data_in: &[u8], data_out: &[u8]) -> Vec<u8> {
    let rec = ioctl_record(header(kind::IOCTL), fd, cmd, arg, ret, data_in, data_out).unwrap();
    bytes_of(&rec).to_vec()
}

/// The same ioctl as the variable-length record the probes send
/// (`kind::IOCTL_VAR`): the head, then the captured bytes only.
fn to_var(fixed: &[u8]) -> Vec<u8> {
    let rec: IoctlRecord = read_struct(fixed).unwrap();
    let mut b = Vec::new();
    super::encode::push_ioctl(&rec, &mut b);
    b
}

/// Decodes a record; an ioctl record is also decoded in its
/// variable-length form, which must give the same event.
fn kind_of(bytes: &[u8]) -> EventKind {
    let ev = decode_record(bytes, 3).expect("decodes");
    if ev_is_ioctl(bytes) {
        let var = decode_record(&to_var(bytes), 3).expect("variable-length form decodes");
        assert_eq!(var, ev, "both record forms decode the same");
    }
    ev.kind
}

fn ev_is_ioctl(bytes: &[u8]) -> bool {
    bytes.len() == IoctlRecord::SIZE && bytes[0..2] == kind::IOCTL.to_le_bytes()
}

#[test]
fn variable_length_ioctl_records_carry_only_the_captured_bytes() {
    let map = Le::default()
        .u32(32)
        .u32(3)
        .u64(0x7f00_0000_0000)
        .u64(0x10_0000)
        .u64(0x1000);
    let fixed = record(cmds::VFIO_IOMMU_MAP_DMA, 7, 0x5000, 0, &map.0, &[]);
    let var = to_var(&fixed);
    assert_eq!(IoctlHead::SIZE, 120);
    assert_eq!(var.len(), 120 + 32);
    assert_eq!(decode_record(&var, 3), decode_record(&fixed, 3));
    // UNMAP: 24 bytes in, 24 written back.
    let unmap = Le::default().u32(24).u32(0).u64(0x10_0000).u64(0x1000);
    let fixed = record(cmds::VFIO_IOMMU_UNMAP_DMA, 7, 0, 0, &unmap.0, &unmap.0);
    assert_eq!(to_var(&fixed).len(), 120 + 48);
    kind_of(&fixed);
}

#[test]
fn variable_length_ioctl_records_with_wrong_lengths_are_typed_errors() {
    let unmap = Le::default().u32(24).u32(0).u64(0x10_0000).u64(0x1000);
    let var = to_var(&record(
        cmds::VFIO_IOMMU_UNMAP_DMA,
        7,
        0,
        0,
        &unmap.0,
        &unmap.0,
    ));
    // Shorter or longer than head + in_len + out_len.
    for len in [IoctlHead::SIZE, var.len() - 1, var.len() + 1, var.len() + 8] {
        let mut b = var.clone();
        b.resize(len, 0);
        let e = decode_record(&b, 0).unwrap_err();
        assert_eq!(
            e,
            DecodeError::VarLength {
                cmd: cmds::VFIO_IOMMU_UNMAP_DMA,
                head: IoctlHead::SIZE,
                in_len: 24,
                out_len: 24,
                arr_len: 0,
                got: len
            }
        );
        assert!(e.to_string().contains("in_len 24 + out_len 24"), "{e}");
    }
    // Shorter than the head itself.
    assert!(matches!(
        decode_record(&var[..IoctlHead::SIZE - 1], 0),
        Err(DecodeError::NotEnoughBytes { need: 120, .. })
    ));
    // A length above what a probe can capture, even if the bytes are there.
    let out_len_at = EventHeader::SIZE + 8 + 8 + 8 + 4 + 4 + 4;
    let mut b = var.clone();
    b[out_len_at..out_len_at + 4].copy_from_slice(&(IOCTL_DATA_MAX as u32 + 1).to_le_bytes());
    b.resize(IoctlHead::SIZE + 24 + IOCTL_DATA_MAX + 1, 0);
    assert!(matches!(
        decode_record(&b, 0),
        Err(DecodeError::BadLength {
            field: "out_len",
            ..
        })
    ));
}

#[test]
fn wire_sizes_have_no_hidden_padding() {
    assert_eq!(EventHeader::SIZE, 40);
    assert_eq!(
        IoctlRecord::SIZE,
        40 + 8 + 8 + 8 + 4 * 4 + 32 + 2 * IOCTL_DATA_MAX
    );
}

#[test]
fn header_fields_reach_the_event() {
    let map = Le::default()
        .u32(32)
        .u32(3)
        .u64(0x7f00_0000_0000)
        .u64(0x10_0000)
        .u64(0x1000);
    let ev = decode_record(
        &record(cmds::VFIO_IOMMU_MAP_DMA, 7, 0x5000, 0, &map.0, &[]),
        3,
    )
    .unwrap();
    assert_eq!(ev.ts_ns, 123_456);
    assert_eq!(ev.node, 3);
    assert_eq!(ev.pid, PID);
    assert_eq!(ev.tid, PID + 1);
    assert_eq!(ev.comm.as_str(), "qemu-system-x86");
}

#[test]
fn map_dma() {
    let map = Le::default()
        .u32(32)
        .u32(3)
        .u64(0x7f2a_6e7c_f000)
        .u64(0x10_0000)
        .u64(0x2000);
    let k = kind_of(&record(
        cmds::VFIO_IOMMU_MAP_DMA,
        7,
        0x5000,
        -17,
        &map.0,
        &[],
    ));
    assert_eq!(
        k,
        EventKind::VfioMapDma(VfioMapDma {
            container: fd_handle(PID, 7),
            iova: 0x10_0000,
            vaddr: 0x7f2a_6e7c_f000,
            size: 0x2000,
            flags: 3,
            errno: 17,
        })
    );
}

#[test]
fn unmap_dma_reports_the_size_written_back() {
    let req = Le::default().u32(24).u32(0).u64(0x10_0000).u64(0x4000);
    let back = Le::default().u32(24).u32(0).u64(0x10_0000).u64(0x1000);
    let k = kind_of(&record(
        cmds::VFIO_IOMMU_UNMAP_DMA,
        7,
        0,
        0,
        &req.0,
        &back.0,
    ));
    let EventKind::VfioUnmapDma(u) = k else {
        panic!("{k:?}")
    };
    assert_eq!(
        (u.iova, u.size, u.unmapped, u.errno),
        (0x10_0000, 0x4000, 0x1000, 0)
    );

    // A failed UNMAP removed nothing, whatever the buffer says.
    let k = kind_of(&record(
        cmds::VFIO_IOMMU_UNMAP_DMA,
        7,
        0,
        -22,
        &req.0,
        &back.0,
    ));
    let EventKind::VfioUnmapDma(u) = k else {
        panic!("{k:?}")
    };
    assert_eq!((u.unmapped, u.errno), (0, 22));
}

#[test]
fn set_irqs_with_eventfds() {
    let d = Le::default()
        .u32(32)
        .u32(0x24)
        .u32(2)
        .u32(0)
        .u32(3)
        .i32(10)
        .i32(11)
        .i32(-1);
    let k = kind_of(&record(cmds::VFIO_DEVICE_SET_IRQS, 9, 0, 0, &d.0, &[]));
    assert_eq!(
        k,
        EventKind::VfioSetIrqs(VfioSetIrqs {
            device: Device::Fd(9),
            index: 2,
            start: 0,
            count: 3,
            flags: 0x24,
            eventfds: vec![10, 11, -1],
            eventfds_truncated: false,
            errno: 0,
        })
    );
}

#[test]
fn set_irqs_with_more_vectors_than_captured_is_marked_truncated() {
    let d = Le::default()
        .u32(20 + 4 * 200)
        .u32(0x24)
        .u32(2)
        .u32(0)
        .u32(200)
        .i32(5);
    let k = kind_of(&record(cmds::VFIO_DEVICE_SET_IRQS, 9, 0, 0, &d.0, &[]));
    let EventKind::VfioSetIrqs(s) = k else {
        panic!()
    };
    assert_eq!(s.eventfds, vec![5]);
    assert!(s.eventfds_truncated);
}

#[test]
fn set_irqs_data_none_has_no_eventfds() {
    let d = Le::default().u32(20).u32(0x21).u32(1).u32(0).u32(0);
    let EventKind::VfioSetIrqs(s) =
        kind_of(&record(cmds::VFIO_DEVICE_SET_IRQS, 9, 0, 0, &d.0, &[]))
    else {
        panic!()
    };
    assert!(s.eventfds.is_empty() && !s.eventfds_truncated);
}

fn info_with_ranges(ranges: &[(u64, u64)]) -> Vec<u8> {
    // header (24) + cap at 24: {id 1, version 1, next 0, nr, reserved, ranges}
    let mut d = Le::default()
        .u32(0)
        .u32(IOMMU_INFO_CAPS_FOR_TEST | 1)
        .u64(0x4020_1000)
        .u32(24)
        .u32(0)
        .u16(1)
        .u16(1)
        .u32(0)
        .u32(ranges.len() as u32)
        .u32(0);
    for (s, e) in ranges {
        d = d.u64(*s).u64(*e);
    }
    let len = d.0.len() as u32;
    d.0[..4].copy_from_slice(&len.to_le_bytes());
    d.0
}
const IOMMU_INFO_CAPS_FOR_TEST: u32 = 2;

#[test]
fn iommu_info_iova_ranges() {
    let d = info_with_ranges(&[(0, 0xfedf_ffff), (0xfef0_0000, 0x7f_ffff_ffff)]);
    let k = kind_of(&record(cmds::VFIO_IOMMU_GET_INFO, 7, 0, 0, &[], &d));
    assert_eq!(
        k,
        EventKind::VfioIommuInfo(VfioIommuInfo {
            container: fd_handle(PID, 7),
            flags: 3,
            iova_pgsizes: 0x4020_1000,
            iova_ranges: vec![
                Range {
                    start: 0,
                    end: 0xfedf_ffff
                },
                Range {
                    start: 0xfef0_0000,
                    end: 0x7f_ffff_ffff
                }
            ],
            errno: 0,
        })
    );
}

#[test]
fn iommu_info_with_a_looping_or_out_of_bounds_chain_stops() {
    let mut d = info_with_ranges(&[(0, 0xfff)]);
    // next = 24: points at itself
    d[28..32].copy_from_slice(&24u32.to_le_bytes());
    let EventKind::VfioIommuInfo(i) = kind_of(&record(cmds::VFIO_IOMMU_GET_INFO, 7, 0, 0, &[], &d))
    else {
        panic!()
    };
    assert_eq!(i.iova_ranges.len(), 1);
    // cap_offset beyond what was captured
    let mut d = info_with_ranges(&[]);
    d[16..20].copy_from_slice(&4000u32.to_le_bytes());
    let EventKind::VfioIommuInfo(i) = kind_of(&record(cmds::VFIO_IOMMU_GET_INFO, 7, 0, 0, &[], &d))
    else {
        panic!()
    };
    assert!(i.iova_ranges.is_empty());
    // nr_iovas far larger than the buffer
    let mut d = info_with_ranges(&[(0, 0xfff)]);
    d[32..36].copy_from_slice(&u32::MAX.to_le_bytes());
    let EventKind::VfioIommuInfo(i) = kind_of(&record(cmds::VFIO_IOMMU_GET_INFO, 7, 0, 0, &[], &d))
    else {
        panic!()
    };
    assert_eq!(
        i.iova_ranges,
        vec![Range {
            start: 0,
            end: 0xfff
        }]
    );
}

#[test]
fn set_iommu_type_is_the_argument() {
    let k = kind_of(&record(cmds::VFIO_SET_IOMMU, 7, 3, 0, &[], &[]));
    assert_eq!(
        k,
        EventKind::VfioSetIommu(VfioSetIommu {
            container: fd_handle(PID, 7),
            iommu_type: 3,
            errno: 0
        })
    );
}

#[test]
fn kvm_memslots() {
    let r = Le::default()
        .u32(4)
        .u32(2)
        .u64(0x10_0000)
        .u64(0xff0_0000)
        .u64(0x7f2a_63f0_0000);
    for cmd in [
        cmds::KVM_SET_USER_MEMORY_REGION,
        cmds::KVM_SET_USER_MEMORY_REGION2,
    ] {
        let mut d = r.0.clone();
        if cmd == cmds::KVM_SET_USER_MEMORY_REGION2 {
            d.resize(160, 0);
        }
        let k = kind_of(&record(cmd, 11, 0, 0, &d, &[]));
        assert_eq!(
            k,
            EventKind::KvmMemslot(KvmMemslot {
                vm: fd_handle(PID, 11),
                slot: 4,
                gpa: 0x10_0000,
                size: 0xff0_0000,
                hva: 0x7f2a_63f0_0000,
                flags: 2,
                errno: 0,
            })
        );
    }
}

#[test]
fn ioas_map_takes_the_iova_the_kernel_chose() {
    let req = Le::default()
        .u32(40)
        .u32(6)
        .u32(2)
        .u32(0)
        .u64(0x7f00_0000_0000)
        .u64(0x1000)
        .u64(0);
    let back = Le::default()
        .u32(40)
        .u32(6)
        .u32(2)
        .u32(0)
        .u64(0x7f00_0000_0000)
        .u64(0x1000)
        .u64(0x8000);
    let EventKind::IoasMap(m) = kind_of(&record(cmds::IOMMU_IOAS_MAP, 5, 0, 0, &req.0, &back.0))
    else {
        panic!()
    };
    assert_eq!(
        (m.ioas, m.flags, m.user_va, m.length, m.iova),
        (2, 6, 0x7f00_0000_0000, 0x1000, 0x8000)
    );
    let req = Le::default().u32(24).u32(2).u64(0x8000).u64(0x2000);
    let back = Le::default().u32(24).u32(2).u64(0x8000).u64(0x1000);
    let EventKind::IoasUnmap(u) =
        kind_of(&record(cmds::IOMMU_IOAS_UNMAP, 5, 0, 0, &req.0, &back.0))
    else {
        panic!()
    };
    assert_eq!(
        (u.ioas, u.iova, u.length, u.unmapped),
        (2, 0x8000, 0x2000, 0x1000)
    );
}

#[test]
fn a_faulted_read_yields_zero_fields_not_garbage() {
    let k = kind_of(&record(cmds::VFIO_IOMMU_MAP_DMA, 7, 0, -14, &[], &[]));
    let EventKind::VfioMapDma(m) = k else {
        panic!()
    };
    assert_eq!((m.iova, m.size, m.errno), (0, 0, 14));
}

#[test]
fn truncated_and_oversized_records_are_typed_errors() {
    let good = record(cmds::VFIO_IOMMU_MAP_DMA, 7, 0, 0, &[0; 32], &[]);
    for cut in [0, 1, EventHeader::SIZE - 1] {
        assert!(matches!(
            decode_record(&good[..cut], 0),
            Err(DecodeError::NotEnoughBytes { .. })
        ));
    }
    for len in [EventHeader::SIZE, good.len() - 1, good.len() + 8] {
        let mut b = good.clone();
        b.resize(len, 0);
        assert_eq!(
            decode_record(&b, 0),
            Err(DecodeError::SizeMismatch {
                kind: kind::IOCTL,
                expected: IoctlRecord::SIZE,
                got: len
            })
        );
    }
}

#[test]
fn unknown_kinds_commands_and_lengths_are_typed_errors() {
    let mut b = record(cmds::VFIO_IOMMU_MAP_DMA, 7, 0, 0, &[], &[]);
    b[0..2].copy_from_slice(&999u16.to_le_bytes());
    assert_eq!(decode_record(&b, 0), Err(DecodeError::UnknownKind(999)));

    let b = record(0x1234, 7, 0, 0, &[], &[]);
    assert_eq!(decode_record(&b, 0), Err(DecodeError::UnknownIoctl(0x1234)));

    let mut b = record(cmds::VFIO_IOMMU_MAP_DMA, 7, 0, 0, &[], &[]);
    let in_len_at = EventHeader::SIZE + 8 + 8 + 8 + 4 + 4;
    b[in_len_at..in_len_at + 4].copy_from_slice(&(IOCTL_DATA_MAX as u32 + 1).to_le_bytes());
    assert!(matches!(
        decode_record(&b, 0),
        Err(DecodeError::BadLength {
            field: "in_len",
            ..
        })
    ));
}

#[test]
fn arbitrary_bytes_never_panic() {
    // Deterministic pseudo-random records of every length around the real size.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for len in 0..IoctlRecord::SIZE + 16 {
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let _ = decode_record(&bytes, 0);
        if len >= 2 {
            let mut v = bytes.clone();
            v[0..2].copy_from_slice(&kind::IOCTL_VAR.to_le_bytes());
            let _ = decode_record(&v, 0);
        }
    }
}

// ---- kernel-function probe records ----

use tracer_common::kprobe::*;

fn as_bytes<T: WireStruct>(r: &T) -> Vec<u8> {
    bytes_of(r).to_vec()
}

fn name(s: &str) -> [u8; DEV_NAME_LEN] {
    let mut b = [0u8; DEV_NAME_LEN];
    b[..s.len()].copy_from_slice(s.as_bytes());
    b
}

fn viommu(req: &[u8], status: u32, props: &[u8]) -> ViommuReqRecord {
    let mut r = ViommuReqRecord {
        hdr: header(kind::VIOMMU_REQ),
        add_ns: 1,
        len: req.len() as u32 + 4,
        add_ret: 0,
        status,
        props_len: props.len() as u32,
        req: [0; VIOMMU_REQ_MAX],
        props: [0; VIOMMU_PROPS_MAX],
    };
    r.req[..req.len()].copy_from_slice(req);
    r.props[..props.len()].copy_from_slice(props);
    r
}

#[test]
fn kprobe_wire_sizes_have_no_hidden_padding() {
    assert_eq!(std::mem::size_of::<IommuMapRecord>(), 40 + 40);
    assert_eq!(std::mem::size_of::<MsiWriteRecord>(), 40 + 32 + 16);
    assert_eq!(std::mem::size_of::<ResvEntry>(), 24);
    assert_eq!(std::mem::size_of::<ResvRecord>(), 40 + 8 + 24 * MAX_RESV);
    assert_eq!(
        std::mem::size_of::<ViommuReqRecord>(),
        40 + 8 + 16 + VIOMMU_REQ_MAX + VIOMMU_PROPS_MAX
    );
}

#[test]
fn viommu_map_from_the_wire() {
    // The nested lab's L2 map: domain 3, 0x100000..0x100fff → 0xa9cf000, R|W.
    let req = Le::default()
        .u32(3)
        .u32(3)
        .u64(0x10_0000)
        .u64(0x10_0fff)
        .u64(0xa9c_f000)
        .u32(3);
    let k = kind_of(&as_bytes(&viommu(&req.0, 0, &[])));
    assert_eq!(
        k,
        EventKind::ViommuReq(ViommuReq {
            op: ViommuOp::Map,
            domain: 3,
            endpoint: 0,
            virt_start: 0x10_0000,
            virt_end: 0x10_0fff,
            phys_start: 0xa9c_f000,
            flags: 3,
            status: 0,
            resv: vec![],
        })
    );
}

#[test]
fn viommu_attach_unmap_and_not_queued() {
    let attach = Le::default().u32(1).u32(5).u32(0x10).u32(0);
    let EventKind::ViommuReq(a) = kind_of(&as_bytes(&viommu(&attach.0, 0, &[]))) else {
        panic!()
    };
    assert_eq!(
        (a.op, a.domain, a.endpoint, a.flags),
        (ViommuOp::Attach, 5, 0x10, 0)
    );
    let unmap = Le::default().u32(4).u32(5).u64(0x1000).u64(0x1fff);
    let mut rec = viommu(&unmap.0, 4, &[]);
    let EventKind::ViommuReq(u) = kind_of(&as_bytes(&rec)) else {
        panic!()
    };
    assert_eq!(
        (u.op, u.domain, u.virt_start, u.virt_end, u.status),
        (ViommuOp::Unmap, 5, 0x1000, 0x1fff, 4)
    );
    rec.add_ret = -12;
    let EventKind::ViommuReq(u) = kind_of(&as_bytes(&rec)) else {
        panic!()
    };
    assert_eq!(u.status, VIOMMU_NOT_QUEUED);
}

#[test]
fn viommu_probe_resv_mem_properties() {
    let probe = Le::default().u32(5).u32(0x10);
    // RESV_MEM MSI 0xfee00000-0xfeefffff, RESV_MEM RESERVED 0x8000000-0x80fffff,
    // an unknown property (type 7) to skip, then NONE.
    let props = Le::default()
        .u16(1)
        .u16(20)
        .u32(1)
        .u64(0xfee0_0000)
        .u64(0xfeef_ffff)
        .u16(7)
        .u16(4)
        .u32(0xdead)
        .u16(1)
        .u16(20)
        .u32(0)
        .u64(0x800_0000)
        .u64(0x80f_ffff)
        .u16(0)
        .u16(0);
    let EventKind::ViommuReq(p) = kind_of(&as_bytes(&viommu(&probe.0, 0, &props.0))) else {
        panic!()
    };
    assert_eq!((p.op, p.endpoint), (ViommuOp::Probe, 0x10));
    assert_eq!(
        p.resv,
        vec![
            ResvMem {
                subtype: 1,
                start: 0xfee0_0000,
                end: 0xfeef_ffff
            },
            ResvMem {
                subtype: 0,
                start: 0x800_0000,
                end: 0x80f_ffff
            }
        ]
    );
    // A property claiming more than was captured stops the walk, no panic.
    let bad = Le::default().u16(1).u16(0xffff).u32(1);
    let EventKind::ViommuReq(p) = kind_of(&as_bytes(&viommu(&probe.0, 0, &bad.0))) else {
        panic!()
    };
    assert!(p.resv.is_empty());
    // props_len larger than the array is clamped.
    let mut r = viommu(&probe.0, 0, &props.0);
    r.props_len = u32::MAX;
    assert!(decode_record(&as_bytes(&r), 0).is_ok());
}

#[test]
fn viommu_unknown_op_is_an_error() {
    let r = viommu(&[9, 0, 0, 0], 0, &[]);
    assert_eq!(
        decode_record(&as_bytes(&r), 0),
        Err(DecodeError::UnknownViommuOp(9))
    );
}

#[test]
fn iommu_map_pin_and_doorbell() {
    let r = IommuMapRecord {
        hdr: header(kind::IOMMU_MAP),
        domain: 0xffff_8880_0123_4000,
        iova: 0x10_0000,
        paddr: 0x127c_f000,
        size: 0x1000,
        prot: 3,
        ret: -22,
    };
    assert_eq!(
        kind_of(&as_bytes(&r)),
        EventKind::IommuMap(IommuMap {
            domain: 0xffff_8880_0123_4000,
            iova: 0x10_0000,
            paddr: 0x127c_f000,
            size: 0x1000,
            prot: 3,
            errno: 22
        })
    );
    let p = PinRecord {
        hdr: header(kind::VFIO_PIN),
        vaddr: 0x7f2a_6e7c_f000,
        npage: 4,
        pfn: 0x127cf,
        pinned: 2,
    };
    assert_eq!(
        kind_of(&as_bytes(&p)),
        EventKind::VfioPin(VfioPin {
            vaddr: 0x7f2a_6e7c_f000,
            npages: 2,
            pfn: 0x127cf
        })
    );
    let failed = PinRecord { pinned: -14, ..p };
    let EventKind::VfioPin(f) = kind_of(&as_bytes(&failed)) else {
        panic!()
    };
    assert_eq!(f.npages, 0);
    let d = DoorbellMapRecord {
        hdr: header(kind::DOORBELL_MAP),
        dev: name("0000:00:01.0"),
        domain: 7,
        iova: 0x800_0000,
        paddr: 0x809_0000,
        msi_addr: 0x809_0040,
    };
    assert_eq!(
        kind_of(&as_bytes(&d)),
        EventKind::MsiDoorbellMap(MsiDoorbellMap {
            device: Device::Pci {
                seg: 0,
                bus: 0,
                dev: 1,
                func: 0
            },
            domain: 7,
            iova: 0x800_0000,
            doorbell_paddr: 0x809_0000
        })
    );
}

#[test]
fn msi_messages_and_vectors() {
    let w = MsiWriteRecord {
        hdr: header(kind::MSI_WRITE),
        dev: name("0000:00:02.0"),
        index: 0,
        address_lo: 0xfee0_1000,
        address_hi: 0,
        data: 0x23,
    };
    assert_eq!(
        kind_of(&as_bytes(&w)),
        EventKind::MsiWrite(MsiWrite {
            device: Device::Pci {
                seg: 0,
                bus: 0,
                dev: 2,
                func: 0
            },
            vector: 0,
            address: 0xfee0_1000,
            data: 0x23
        })
    );
    let v = MsiVectorRecord {
        hdr: header(kind::MSI_VECTOR),
        dev: name("0000:00:03.0"),
        vector: 2,
        fd: 17,
        msix: 1,
        ret: 0,
    };
    let EventKind::MsiVector(m) = kind_of(&as_bytes(&v)) else {
        panic!()
    };
    assert_eq!((m.index, m.vector, m.eventfd, m.enabled), (2, 2, 17, true));
    let off = MsiVectorRecord {
        fd: -1,
        msix: 0,
        ..v
    };
    let EventKind::MsiVector(m) = kind_of(&as_bytes(&off)) else {
        panic!()
    };
    assert_eq!((m.index, m.enabled), (1, false));
    // A non-PCI device name is unknown, not garbage.
    let odd = MsiWriteRecord {
        dev: name("platform-thing"),
        ..w
    };
    let EventKind::MsiWrite(m) = kind_of(&as_bytes(&odd)) else {
        panic!()
    };
    assert_eq!(m.device, Device::Unknown);
}

#[test]
fn a_groups_reserved_regions_become_one_event_each() {
    let mut r = ResvRecord {
        hdr: header(kind::RESV_REGIONS),
        group: 4,
        count: 2,
        entries: [ResvEntry {
            start: 0,
            length: 0,
            rtype: 0,
            prot: 0,
        }; MAX_RESV],
    };
    r.entries[0] = ResvEntry {
        start: 0xfee0_0000,
        length: 0x10_0000,
        rtype: resv_type::MSI,
        prot: 0,
    };
    r.entries[1] = ResvEntry {
        start: 0x800_0000,
        length: 0x10_0000,
        rtype: resv_type::SW_MSI,
        prot: 0,
    };
    let mut out = Vec::new();
    assert_eq!(decode_into(&as_bytes(&r), 2, &mut out), Ok(2));
    let kinds: Vec<_> = out.into_iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        vec![
            EventKind::ResvRegion(ResvRegion {
                group: 4,
                device: Device::Unknown,
                start: 0xfee0_0000,
                end: 0xfeef_ffff,
                rtype: ResvType::Msi
            }),
            EventKind::ResvRegion(ResvRegion {
                group: 4,
                device: Device::Unknown,
                start: 0x800_0000,
                end: 0x80f_ffff,
                rtype: ResvType::SwMsi
            }),
        ]
    );
    r.count = MAX_RESV as u32 + 1;
    assert!(matches!(
        decode_into(&as_bytes(&r), 2, &mut Vec::new()),
        Err(DecodeError::BadCount { .. })
    ));
}

#[test]
fn every_kind_rejects_wrong_sizes() {
    for k in 1..=10u16 {
        let mut b = vec![0u8; 4096];
        b[0..2].copy_from_slice(&k.to_le_bytes());
        assert!(
            matches!(decode_record(&b, 0), Err(DecodeError::SizeMismatch { .. })),
            "kind {k}"
        );
    }
}
