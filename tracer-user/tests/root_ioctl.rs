//! Root integration test on this machine's kernel: the test process issues
//! every ioctl vfio-trace decodes on an ordinary fd (they fail with ENOTTY,
//! but their arguments are real user memory) while `vfio-trace record
//! --pid <this process>` runs; then `vfio-trace export --format jsonl` must
//! show every call with every field, the errno, the pid, and no drops.
//!
//! Needs root and tracefs. Where it cannot run it says why and skips, except
//! under CI (`CI` set), where a skip is a failure: CI is root here.

use std::{os::fd::AsRawFd, process::Command};

use serde_json::Value;

mod root_support;

use root_support::{cannot_run, export_jsonl, ioctl, skip_or_fail, SelfRecording, BIN, ENOTTY};

fn le(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

#[test]
fn every_decoded_ioctl_matches_what_the_process_issued() {
    if let Some(why) = cannot_run() {
        return skip_or_fail("root_ioctl", &why);
    }
    let pid = std::process::id();
    let recording = SelfRecording::start("ioctl");

    // While the recorder runs its programs are in the kernel, and the
    // leftovers check must see them (so it can fail).
    let during = Command::new(BIN)
        .args(["probes", "--leftovers"])
        .output()
        .unwrap();
    assert_eq!(
        during.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&during.stdout)
    );

    // ---- the calls, with their ground truth ----
    let null = std::fs::File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
        .unwrap();
    let fd = null.as_raw_fd();
    let map = le(&[
        &32u32.to_le_bytes(),
        &3u32.to_le_bytes(),
        &0x7f2a_6e7c_f000u64.to_le_bytes(),
        &0x10_0000u64.to_le_bytes(),
        &0x2000u64.to_le_bytes(),
    ]);
    let unmap = le(&[
        &24u32.to_le_bytes(),
        &0u32.to_le_bytes(),
        &0x10_0000u64.to_le_bytes(),
        &0x4000u64.to_le_bytes(),
    ]);
    let irqs = le(&[
        &32u32.to_le_bytes(),
        &0x24u32.to_le_bytes(),
        &2u32.to_le_bytes(),
        &1u32.to_le_bytes(),
        &3u32.to_le_bytes(),
        &10i32.to_le_bytes(),
        &11i32.to_le_bytes(),
        &(-1i32).to_le_bytes(),
    ]);
    let mut info = le(&[
        &64u32.to_le_bytes(),
        &1u32.to_le_bytes(),
        &0x4020_1000u64.to_le_bytes(),
        &0u32.to_le_bytes(),
        &0u32.to_le_bytes(),
    ]);
    info.resize(64, 0);
    let region = le(&[
        &4u32.to_le_bytes(),
        &2u32.to_le_bytes(),
        &0x10_0000u64.to_le_bytes(),
        &0xff0_0000u64.to_le_bytes(),
        &0x7f2a_63f0_0000u64.to_le_bytes(),
    ]);
    let mut region2 = le(&[
        &(1u32 << 16 | 5).to_le_bytes(),
        &0u32.to_le_bytes(),
        &0xc000_0000u64.to_le_bytes(),
        &0x20_0000u64.to_le_bytes(),
        &0x7f00_0000_0000u64.to_le_bytes(),
    ]);
    region2.resize(160, 0);
    let ioas_map = le(&[
        &40u32.to_le_bytes(),
        &7u32.to_le_bytes(),
        &2u32.to_le_bytes(),
        &0u32.to_le_bytes(),
        &0x7f11_0000_0000u64.to_le_bytes(),
        &0x3000u64.to_le_bytes(),
        &0x80_0000u64.to_le_bytes(),
    ]);
    let ioas_unmap = le(&[
        &24u32.to_le_bytes(),
        &2u32.to_le_bytes(),
        &0x80_0000u64.to_le_bytes(),
        &0x3000u64.to_le_bytes(),
    ]);
    let p = |v: &Vec<u8>| v.as_ptr() as u64;
    let calls: Vec<(u32, u64)> = vec![
        (0x3B66, 3), // VFIO_SET_IOMMU, type1v2
        (0x3B70, p(&info)),
        (0x3B71, p(&map)),
        (0x3B72, p(&unmap)),
        (0x3B6E, p(&irqs)),
        (0x4020_AE46, p(&region)),
        (0x40A0_AE49, p(&region2)),
        (0x3B85, p(&ioas_map)),
        (0x3B86, p(&ioas_unmap)),
    ];
    for (cmd, arg) in &calls {
        assert_eq!(
            ioctl(fd, *cmd, *arg),
            -ENOTTY,
            "ioctl {cmd:#x} on /dev/null"
        );
    }
    // An ioctl that must NOT be traced (not one of ours).
    let mut ws = [0u16; 4];
    ioctl(fd, libc::TIOCGWINSZ as u32, ws.as_mut_ptr() as u64);

    // ---- stop the recorder (SIGINT path) and export ----
    let trace = recording.stop();
    // After SIGINT nothing of it may stay in the kernel.
    let after = Command::new(BIN)
        .args(["probes", "--leftovers"])
        .output()
        .unwrap();
    assert!(
        after.status.success(),
        "{}",
        String::from_utf8_lossy(&after.stdout)
    );

    let lines = export_jsonl(&trace);
    let kinds = |k: &str| -> Vec<&Value> { lines.iter().filter(|l| l["kind"] == k).collect() };

    // Every line carries the common fields.
    for l in &lines {
        for f in ["ts_ns", "node", "pid", "tid", "comm", "kind"] {
            assert!(l.get(f).is_some(), "{f} missing in {l}");
        }
    }
    let ours: Vec<&Value> = lines.iter().filter(|l| l["pid"] == pid).collect();
    assert_eq!(
        ours.len(),
        calls.len(),
        "exactly one event per traced ioctl of this process (TIOCGWINSZ is not traced): {ours:#?}"
    );
    let container = (u64::from(pid) << 32) | fd as u64;
    let one = |k: &str| -> &Value {
        let v = kinds(k);
        let v: Vec<_> = v.into_iter().filter(|l| l["pid"] == pid).collect();
        assert_eq!(v.len(), 1, "one {k}: {v:#?}");
        v[0]
    };
    let e = one("vfio_set_iommu");
    assert_eq!(
        (
            e["container"].as_u64(),
            e["iommu_type"].as_u64(),
            e["errno"].as_i64()
        ),
        (Some(container), Some(3), Some(ENOTTY))
    );
    let e = one("vfio_iommu_info");
    assert_eq!(e["container"].as_u64(), Some(container));
    assert_eq!(e["flags"].as_u64(), Some(1));
    assert_eq!(e["iova_pgsizes"].as_u64(), Some(0x4020_1000));
    assert_eq!(e["errno"].as_i64(), Some(ENOTTY));
    let e = one("vfio_map_dma");
    assert_eq!(e["container"].as_u64(), Some(container));
    assert_eq!(e["iova"].as_u64(), Some(0x10_0000));
    assert_eq!(e["vaddr"].as_u64(), Some(0x7f2a_6e7c_f000));
    assert_eq!(e["size"].as_u64(), Some(0x2000));
    assert_eq!(e["flags"].as_u64(), Some(3));
    assert_eq!(e["errno"].as_i64(), Some(ENOTTY));
    let e = one("vfio_unmap_dma");
    assert_eq!(e["iova"].as_u64(), Some(0x10_0000));
    assert_eq!(e["size"].as_u64(), Some(0x4000));
    assert_eq!(
        e["unmapped"].as_u64(),
        Some(0),
        "a failed UNMAP removed nothing"
    );
    assert_eq!(e["errno"].as_i64(), Some(ENOTTY));
    let e = one("vfio_set_irqs");
    assert_eq!(e["device"], format!("fd:{fd}"));
    assert_eq!(
        (
            e["index"].as_u64(),
            e["start"].as_u64(),
            e["count"].as_u64(),
            e["flags"].as_u64()
        ),
        (Some(2), Some(1), Some(3), Some(0x24))
    );
    assert_eq!(e["eventfds"], serde_json::json!([10, 11, -1]));
    assert_eq!(e["errno"].as_i64(), Some(ENOTTY));
    let slots = kinds("kvm_memslot");
    let slots: Vec<_> = slots.into_iter().filter(|l| l["pid"] == pid).collect();
    assert_eq!(slots.len(), 2);
    assert_eq!(
        (
            slots[0]["slot"].as_u64(),
            slots[0]["flags"].as_u64(),
            slots[0]["gpa"].as_u64(),
            slots[0]["size"].as_u64(),
            slots[0]["hva"].as_u64()
        ),
        (
            Some(4),
            Some(2),
            Some(0x10_0000),
            Some(0xff0_0000),
            Some(0x7f2a_63f0_0000)
        )
    );
    assert_eq!(
        (
            slots[1]["slot"].as_u64(),
            slots[1]["gpa"].as_u64(),
            slots[1]["size"].as_u64(),
            slots[1]["hva"].as_u64()
        ),
        (
            Some(1 << 16 | 5),
            Some(0xc000_0000),
            Some(0x20_0000),
            Some(0x7f00_0000_0000)
        )
    );
    assert_eq!(slots[0]["vm"].as_u64(), Some(container));
    let e = one("ioas_map");
    assert_eq!(
        (
            e["ioas"].as_u64(),
            e["flags"].as_u64(),
            e["user_va"].as_u64(),
            e["length"].as_u64(),
            e["iova"].as_u64(),
            e["errno"].as_i64()
        ),
        (
            Some(2),
            Some(7),
            Some(0x7f11_0000_0000),
            Some(0x3000),
            Some(0x80_0000),
            Some(ENOTTY)
        )
    );
    let e = one("ioas_unmap");
    assert_eq!(
        (
            e["ioas"].as_u64(),
            e["iova"].as_u64(),
            e["length"].as_u64(),
            e["unmapped"].as_u64()
        ),
        (Some(2), Some(0x80_0000), Some(0x3000), Some(0))
    );
    for e in &ours {
        assert_eq!(e["tid"].as_u64().map(|t| t > 0), Some(true));
        assert!(!e["comm"].as_str().unwrap_or("").is_empty());
    }
    // In issue order, timestamps increasing.
    let order: Vec<&str> = ours.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(
        order,
        [
            "vfio_set_iommu",
            "vfio_iommu_info",
            "vfio_map_dma",
            "vfio_unmap_dma",
            "vfio_set_irqs",
            "kvm_memslot",
            "kvm_memslot",
            "ioas_map",
            "ioas_unmap"
        ]
    );
    let ts: Vec<u64> = ours.iter().map(|e| e["ts_ns"].as_u64().unwrap()).collect();
    assert!(ts.windows(2).all(|w| w[0] <= w[1]), "{ts:?}");

    // Health: both probes attached and counted our calls; nothing dropped.
    let drops = kinds("drops");
    let last = drops.last().expect("drops records are in the stream");
    for f in ["ring_full", "pending_full", "read_failed", "undecodable"] {
        assert_eq!(last[f].as_u64(), Some(0), "{f} in {last}");
    }
    let status = kinds("probe_status");
    for probe in ["ioctl_enter", "ioctl_exit"] {
        let last = status
            .iter()
            .rev()
            .find(|s| s["probe"] == probe)
            .unwrap_or_else(|| panic!("{probe} status missing"));
        assert_eq!(last["status"], "attached");
        assert_eq!(
            last["hits"].as_u64(),
            Some(calls.len() as u64),
            "{probe}: {last}"
        );
    }
    let _ = std::fs::remove_dir_all(trace.parent().unwrap());
}
