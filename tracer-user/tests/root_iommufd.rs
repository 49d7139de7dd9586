//! Root integration test on this machine's kernel: the test process issues
//! every iommufd and VFIO-cdev ioctl vfio-trace decodes, with random field
//! values and random `size`/`argsz` (the newest layout's, an older caller's
//! shorter one, a newer caller's longer one), on an ordinary fd (they fail
//! with ENOTTY, but their arguments are real user memory) while `vfio-trace
//! record --pid <this process>` runs; then `vfio-trace export --format
//! jsonl` must show every call with every field exactly as the layout
//! tables below (an independent transcription of include/uapi/linux/
//! iommufd.h and vfio.h) say, and no drops.
//!
//! Each struct ends exactly at a page followed by an inaccessible page, so a
//! probe that read one byte beyond the `size` the caller declared would
//! fault, lose the struct and fail the comparison.
//!
//! Needs root and tracefs. Where it cannot run it says why and skips, except
//! under CI (`CI` set), where a skip is a failure: CI is root here.

use std::{os::fd::AsRawFd, time::SystemTime};

use serde_json::{json, Value};

mod root_support;

use root_support::{cannot_run, export_jsonl, ioctl, skip_or_fail, SelfRecording, ENOTTY};
/// The probe's bound on a user array (tracer-common ARRAY_DATA_MAX).
const ARRAY_MAX: usize = 128;
/// The decoder's bound on invalidation entries.
const MAX_ENTRIES: usize = 8;
const PAGE: usize = 4096;

#[derive(Clone, Copy)]
enum Src {
    /// Read at enter.
    In,
    /// Read at exit.
    Out,
}

/// One field: JSON name, offset, width in bytes, signed, when it is read.
#[derive(Clone, Copy)]
struct F(&'static str, usize, usize, bool, Src);

const fn i(name: &'static str, off: usize, w: usize) -> F {
    F(name, off, w, false, Src::In)
}
const fn s(name: &'static str, off: usize) -> F {
    F(name, off, 4, true, Src::In)
}
const fn o(name: &'static str, off: usize, w: usize) -> F {
    F(name, off, w, false, Src::Out)
}

#[derive(Clone, Copy, PartialEq)]
enum Shape {
    /// `iommu_iova_range`s as `{start, last}`.
    Ranges,
    /// Entries of `entry_len` (u32 at `len_at`) bytes, as u64 words.
    Entries { len_at: usize },
    /// Raw bytes.
    Bytes,
}

/// A user array: pointer offset, count offset, bytes per count (0: see
/// shape), JSON name.
#[derive(Clone, Copy)]
struct Arr {
    ptr: usize,
    count: usize,
    each: usize,
    json: &'static str,
    shape: Shape,
}

struct Cmd {
    cmd: u32,
    kind: &'static str,
    /// The newest layout's size.
    known: usize,
    /// The fd's JSON name and the size field's.
    handle: &'static str,
    size: &'static str,
    fields: &'static [F],
    arr: Option<Arr>,
}

const fn ranges(json: &'static str) -> Option<Arr> {
    Some(Arr {
        ptr: 16,
        count: 8,
        each: 16,
        json,
        shape: Shape::Ranges,
    })
}

const fn bytes(ptr: usize, count: usize) -> Option<Arr> {
    Some(Arr {
        ptr,
        count,
        each: 1,
        json: "data",
        shape: Shape::Bytes,
    })
}

const CMDS: &[Cmd] = &[
    Cmd {
        cmd: 0x3B80,
        kind: "iommufd_destroy",
        known: 8,
        handle: "iommufd",
        size: "size",
        fields: &[i("id", 4, 4)],
        arr: None,
    },
    Cmd {
        cmd: 0x3B81,
        kind: "ioas_alloc",
        known: 12,
        handle: "iommufd",
        size: "size",
        fields: &[i("flags", 4, 4), o("out_ioas_id", 8, 4)],
        arr: None,
    },
    Cmd {
        cmd: 0x3B82,
        kind: "ioas_allow_iovas",
        known: 24,
        handle: "iommufd",
        size: "size",
        fields: &[
            i("ioas_id", 4, 4),
            i("num_iovas", 8, 4),
            i("allowed_iovas", 16, 8),
        ],
        arr: ranges("iovas"),
    },
    Cmd {
        cmd: 0x3B83,
        kind: "ioas_copy",
        known: 40,
        handle: "iommufd",
        size: "size",
        fields: &[
            i("flags", 4, 4),
            i("dst_ioas_id", 8, 4),
            i("src_ioas_id", 12, 4),
            i("length", 16, 8),
            i("dst_iova", 24, 8),
            i("src_iova", 32, 8),
            o("out_dst_iova", 24, 8),
        ],
        arr: None,
    },
    Cmd {
        cmd: 0x3B84,
        kind: "ioas_iova_ranges",
        known: 32,
        handle: "iommufd",
        size: "size",
        fields: &[
            i("ioas_id", 4, 4),
            i("num_iovas", 8, 4),
            i("allowed_iovas", 16, 8),
            o("out_num_iovas", 8, 4),
            o("out_iova_alignment", 24, 8),
        ],
        arr: ranges("iovas"),
    },
    Cmd {
        cmd: 0x3B87,
        kind: "iommufd_option",
        known: 24,
        handle: "iommufd",
        size: "size",
        fields: &[
            i("option_id", 4, 4),
            i("op", 8, 2),
            i("object_id", 12, 4),
            i("val64", 16, 8),
            o("out_val64", 16, 8),
        ],
        arr: None,
    },
    Cmd {
        cmd: 0x3B89,
        kind: "hwpt_alloc",
        known: 48,
        handle: "iommufd",
        size: "size",
        fields: &[
            i("flags", 4, 4),
            i("dev_id", 8, 4),
            i("pt_id", 12, 4),
            o("out_hwpt_id", 16, 4),
            i("data_type", 24, 4),
            i("data_len", 28, 4),
            i("data_uptr", 32, 8),
            i("fault_id", 40, 4),
        ],
        arr: bytes(32, 28),
    },
    Cmd {
        cmd: 0x3B8A,
        kind: "iommufd_hw_info",
        known: 40,
        handle: "iommufd",
        size: "size",
        fields: &[
            i("flags", 4, 4),
            i("dev_id", 8, 4),
            i("data_len", 12, 4),
            i("data_uptr", 16, 8),
            i("in_data_type", 24, 4),
            o("out_data_len", 12, 4),
            o("out_data_type", 24, 4),
            o("out_max_pasid_log2", 28, 1),
            o("out_capabilities", 32, 8),
        ],
        arr: bytes(16, 12),
    },
    Cmd {
        cmd: 0x3B8B,
        kind: "hwpt_set_dirty_tracking",
        known: 16,
        handle: "iommufd",
        size: "size",
        fields: &[i("flags", 4, 4), i("hwpt_id", 8, 4)],
        arr: None,
    },
    Cmd {
        cmd: 0x3B8C,
        kind: "hwpt_get_dirty_bitmap",
        known: 48,
        handle: "iommufd",
        size: "size",
        fields: &[
            i("hwpt_id", 4, 4),
            i("flags", 8, 4),
            i("iova", 16, 8),
            i("length", 24, 8),
            i("page_size", 32, 8),
            i("data", 40, 8),
        ],
        arr: None,
    },
    Cmd {
        cmd: 0x3B8D,
        kind: "hwpt_invalidate",
        known: 32,
        handle: "iommufd",
        size: "size",
        fields: &[
            i("hwpt_id", 4, 4),
            i("data_uptr", 8, 8),
            i("data_type", 16, 4),
            i("entry_len", 20, 4),
            i("entry_num", 24, 4),
            o("out_entry_num", 24, 4),
        ],
        arr: Some(Arr {
            ptr: 8,
            count: 24,
            each: 0,
            json: "entries",
            shape: Shape::Entries { len_at: 20 },
        }),
    },
    Cmd {
        cmd: 0x3B8E,
        kind: "fault_queue_alloc",
        known: 16,
        handle: "iommufd",
        size: "size",
        fields: &[
            i("flags", 4, 4),
            o("out_fault_id", 8, 4),
            o("out_fault_fd", 12, 4),
        ],
        arr: None,
    },
    Cmd {
        cmd: 0x3B8F,
        kind: "ioas_map_file",
        known: 40,
        handle: "iommufd",
        size: "size",
        fields: &[
            i("flags", 4, 4),
            i("ioas_id", 8, 4),
            s("fd", 12),
            i("start", 16, 8),
            i("length", 24, 8),
            i("iova", 32, 8),
            o("out_iova", 32, 8),
        ],
        arr: None,
    },
    Cmd {
        cmd: 0x3B90,
        kind: "viommu_alloc",
        known: 40,
        handle: "iommufd",
        size: "size",
        fields: &[
            i("flags", 4, 4),
            i("type", 8, 4),
            i("dev_id", 12, 4),
            i("hwpt_id", 16, 4),
            o("out_viommu_id", 20, 4),
            i("data_len", 24, 4),
            i("data_uptr", 32, 8),
        ],
        arr: bytes(32, 24),
    },
    Cmd {
        cmd: 0x3B91,
        kind: "vdevice_alloc",
        known: 24,
        handle: "iommufd",
        size: "size",
        fields: &[
            i("viommu_id", 4, 4),
            i("dev_id", 8, 4),
            o("out_vdevice_id", 12, 4),
            i("virt_id", 16, 8),
        ],
        arr: None,
    },
    Cmd {
        cmd: 0x3B93,
        kind: "veventq_alloc",
        known: 32,
        handle: "iommufd",
        size: "size",
        fields: &[
            i("flags", 4, 4),
            i("viommu_id", 8, 4),
            i("type", 12, 4),
            i("veventq_depth", 16, 4),
            o("out_veventq_id", 20, 4),
            o("out_veventq_fd", 24, 4),
        ],
        arr: None,
    },
    Cmd {
        cmd: 0x3B76,
        kind: "vfio_bind_iommufd",
        known: 24,
        handle: "device",
        size: "argsz",
        fields: &[
            i("flags", 4, 4),
            s("iommufd", 8),
            o("out_devid", 12, 4),
            i("token_uuid_ptr", 16, 8),
        ],
        arr: None,
    },
    Cmd {
        cmd: 0x3B77,
        kind: "vfio_attach_pt",
        known: 16,
        handle: "device",
        size: "argsz",
        fields: &[
            i("flags", 4, 4),
            i("pt_id", 8, 4),
            o("out_pt_id", 8, 4),
            i("pasid", 12, 4),
        ],
        arr: None,
    },
    Cmd {
        cmd: 0x3B78,
        kind: "vfio_detach_pt",
        known: 12,
        handle: "device",
        size: "argsz",
        fields: &[i("flags", 4, 4), i("pasid", 8, 4)],
        arr: None,
    },
];

/// xorshift64*: the test's randomness, seeded from the clock (printed).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn fill(&mut self, b: &mut [u8]) {
        for x in b {
            *x = self.next() as u8;
        }
    }
}

/// Little-endian `w` bytes at `off`, 0 past the end.
fn rd(b: &[u8], off: usize, w: usize) -> u64 {
    if off + w > b.len() {
        return 0;
    }
    let mut v = [0u8; 8];
    v[..w].copy_from_slice(&b[off..off + w]);
    u64::from_le_bytes(v)
}

fn put(b: &mut [u8], off: usize, w: usize, v: u64) {
    if off + w <= b.len() {
        b[off..off + w].copy_from_slice(&v.to_le_bytes()[..w]);
    }
}

/// Two pages, the second inaccessible: a struct of `len` bytes placed at
/// `base + PAGE - len` ends exactly at the guard.
struct Guarded(*mut u8);

impl Guarded {
    fn new() -> Self {
        // SAFETY: an anonymous private mapping; checked below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                2 * PAGE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED);
        // SAFETY: the second page of the mapping just made.
        let rc = unsafe { libc::mprotect(p.cast::<u8>().add(PAGE).cast(), PAGE, libc::PROT_NONE) };
        assert_eq!(rc, 0);
        Guarded(p.cast())
    }

    /// Copies `b` so that it ends at the guard page; returns its address.
    fn place(&self, b: &[u8]) -> u64 {
        assert!(b.len() <= PAGE);
        // SAFETY: within the accessible first page.
        unsafe {
            let at = self.0.add(PAGE - b.len());
            std::ptr::copy_nonoverlapping(b.as_ptr(), at, b.len());
            at as u64
        }
    }

    /// The `n` bytes ending at the guard (after the call).
    fn read_back(&self, n: usize) -> Vec<u8> {
        // SAFETY: within the accessible first page.
        unsafe { std::slice::from_raw_parts(self.0.add(PAGE - n), n).to_vec() }
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`.
        unsafe { libc::munmap(self.0.cast(), 2 * PAGE) };
    }
}

/// One issued call and what its event must say.
struct Call {
    kind: &'static str,
    /// The JSON name of the fd's handle.
    handle: &'static str,
    expect: Vec<(&'static str, Value)>,
}

/// The sizes a caller may pass: the newest layout's, 4 (only `size`), an
/// older caller's shorter struct, a newer caller's longer one.
fn sizes(known: usize, rng: &mut Rng) -> [usize; 4] {
    [
        known,
        4,
        4 + rng.below((known - 4) as u64) as usize,
        known + 1 + rng.below(64) as usize,
    ]
}

/// Builds one call of `c` with `size`, issues it, and returns what its
/// event must say.
fn issue(
    c: &Cmd,
    size: usize,
    fd: i32,
    page: &Guarded,
    arrays: &mut Vec<Vec<u8>>,
    rng: &mut Rng,
) -> Call {
    let mut st = vec![0u8; size];
    rng.fill(&mut st);
    put(&mut st, 0, 4, size as u64);
    // Arrays: a real buffer of random bytes (or no pointer), a small count.
    let mut array = Vec::new();
    if let Some(a) = c.arr {
        if rng.below(5) != 0 {
            let mut buf = vec![0u8; 256];
            rng.fill(&mut buf);
            put(&mut st, a.ptr, 8, buf.as_ptr() as u64);
            array = buf.clone();
            arrays.push(buf);
        } else {
            put(&mut st, a.ptr, 8, 0);
        }
        let count = match a.shape {
            Shape::Bytes => rng.below(200),
            _ => rng.below(12),
        };
        put(&mut st, a.count, 4, count);
        if let Shape::Entries { len_at } = a.shape {
            let len = [0u64, 8, 13, 16, 24, 32, 40][rng.below(7) as usize];
            put(&mut st, len_at, 4, len);
        }
        if c.kind == "hwpt_alloc" {
            put(&mut st, 24, 4, rng.below(4));
        }
    }
    let addr = page.place(&st);
    assert_eq!(ioctl(fd, c.cmd, addr), -ENOTTY, "{} on /dev/null", c.kind);
    let after = page.read_back(size);

    // What the probe captures: min(size, known) bytes at enter and at exit.
    let n = size.min(c.known);
    let (cin, cout) = (&st[..n], &after[..n]);
    let mut expect: Vec<(&'static str, Value)> =
        vec![(c.size, json!(size)), ("errno", json!(ENOTTY))];
    for &F(name, off, w, signed, src) in c.fields {
        let v = rd(if matches!(src, Src::In) { cin } else { cout }, off, w);
        let v = if signed {
            json!(v as u32 as i32)
        } else {
            json!(v)
        };
        expect.push((name, v));
    }
    if let Some(a) = c.arr {
        let ptr = rd(cin, a.ptr, 8);
        let count = rd(cin, a.count, 4);
        let each = match a.shape {
            Shape::Entries { len_at } => rd(cin, len_at, 4),
            _ => a.each as u64,
        };
        let got = if ptr == 0 {
            0
        } else {
            (count * each).min(ARRAY_MAX as u64) as usize
        };
        let arr = &array[..got.min(array.len())];
        let v = match a.shape {
            Shape::Bytes => json!(arr),
            Shape::Ranges => {
                let mut k = count as usize;
                if c.kind == "ioas_iova_ranges" {
                    k = k.min(rd(cout, a.count, 4) as usize);
                }
                let r: Vec<Value> = (0..k)
                    .take_while(|j| 16 * j + 16 <= arr.len())
                    .map(|j| json!({"start": rd(arr, 16 * j, 8), "last": rd(arr, 16 * j + 8, 8)}))
                    .collect();
                json!(r)
            }
            Shape::Entries { .. } => {
                let len = each as usize;
                let e: Vec<Value> = if len == 0 {
                    Vec::new()
                } else {
                    (0..count as usize)
                        .take(MAX_ENTRIES)
                        .take_while(|j| (j + 1) * len <= arr.len())
                        .map(|j| {
                            json!((0..len / 8)
                                .map(|k| rd(arr, j * len + 8 * k, 8))
                                .collect::<Vec<_>>())
                        })
                        .collect()
                };
                json!(e)
            }
        };
        expect.push((a.json, v));
        if c.kind == "hwpt_alloc" {
            let t = rd(cin, 24, 4);
            let ste: Vec<u64> = if t == 2 {
                (0..2)
                    .filter(|k| 8 * k + 8 <= arr.len())
                    .map(|k| rd(arr, 8 * k, 8))
                    .collect()
            } else {
                Vec::new()
            };
            let vtd = t == 1;
            expect.push(("ste", json!(ste)));
            expect.push(("pgtbl_addr", json!(if vtd { rd(arr, 8, 8) } else { 0 })));
            expect.push(("addr_width", json!(if vtd { rd(arr, 16, 4) } else { 0 })));
            expect.push(("s1_flags", json!(if vtd { rd(arr, 0, 8) } else { 0 })));
        }
    }
    Call {
        kind: c.kind,
        handle: c.handle,
        expect,
    }
}

#[test]
fn random_iommufd_and_cdev_ioctls_are_decoded_with_every_field() {
    if let Some(why) = cannot_run() {
        return skip_or_fail("root_iommufd", &why);
    }
    let seed = std::env::var("ROOT_IOMMUFD_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("root_iommufd: seed {seed} (ROOT_IOMMUFD_SEED to repeat)");
    let mut rng = Rng(seed);

    let pid = std::process::id();
    let recording = SelfRecording::start("iommufd");

    let null = std::fs::File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
        .unwrap();
    let fd = null.as_raw_fd();
    let page = Guarded::new();
    let mut arrays = Vec::new();
    let mut calls = Vec::new();
    for c in CMDS {
        for size in sizes(c.known, &mut rng) {
            calls.push(issue(c, size, fd, &page, &mut arrays, &mut rng));
        }
    }

    let trace = recording.stop();
    let lines = export_jsonl(&trace);
    let ours: Vec<&Value> = lines.iter().filter(|l| l["pid"] == pid).collect();
    assert_eq!(
        ours.len(),
        calls.len(),
        "one event per call (seed {seed}): {ours:#?}"
    );
    let handle = (u64::from(pid) << 32) | fd as u64;
    let mut wrong = Vec::new();
    for (call, ev) in calls.iter().zip(&ours) {
        if ev["kind"] != call.kind {
            wrong.push(format!("expected a {} event, got {ev}", call.kind));
            continue;
        }
        let mut expect = call.expect.clone();
        expect.push((call.handle, json!(handle)));
        for (field, want) in &expect {
            if &ev[*field] != want {
                wrong.push(format!(
                    "{} {field}: want {want}, got {} in {ev}",
                    call.kind, ev[*field]
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "seed {seed}: {} mismatches:\n{}",
        wrong.len(),
        wrong.join("\n")
    );

    // Health: nothing dropped, both probes counted every call.
    let drops: Vec<&Value> = lines.iter().filter(|l| l["kind"] == "drops").collect();
    let last = drops.last().expect("drops records are in the stream");
    for f in ["ring_full", "pending_full", "read_failed", "undecodable"] {
        assert_eq!(last[f].as_u64(), Some(0), "{f} in {last}");
    }
    for probe in ["ioctl_enter", "ioctl_exit"] {
        let last = lines
            .iter()
            .rev()
            .find(|s| s["kind"] == "probe_status" && s["probe"] == probe)
            .unwrap_or_else(|| panic!("{probe} status missing"));
        assert_eq!(
            last["hits"].as_u64(),
            Some(calls.len() as u64),
            "{probe}: {last}"
        );
    }
    drop(arrays);
    let _ = std::fs::remove_dir_all(trace.parent().unwrap());
}
