//! `syscalls:sys_enter_ioctl` / `sys_exit_ioctl`: the VFIO, KVM and iommufd
//! ioctls, their argument structs copied from user memory on enter, what the
//! kernel wrote back copied on exit, paired per thread, sent as one record.
//!
//! Tracepoints work on every kernel this tool runs on (kprobes may not), and
//! the syscall boundary sees exactly what the VMM asked and was answered.

use core::ffi::c_void;

use aya_ebpf::{
    helpers::{
        bpf_get_current_pid_tgid, bpf_ktime_get_ns,
        generated::{bpf_probe_read_kernel, bpf_probe_read_user},
    },
    macros::{map, tracepoint},
    maps::{HashMap, PerCpuArray},
    programs::TracePointContext,
};
use tracer_common::{
    drop_reason,
    ioctl::{
        array_plan, copy_plan, ArrayLen, IoctlHead, IoctlVarBuf, PendingIoctl, ReadLen,
        ARRAY_DATA_MAX, IOCTL_DATA_MAX, VFIO_DEVICE_SET_IRQS,
    },
    kind,
    kprobe::DEV_NAME_LEN,
    probe::{SYS_ENTER_IOCTL, SYS_EXIT_IOCTL},
};

use crate::{
    emit::{done, emit_bytes, OrMissing, Outcome, TOO_BIG},
    maps::{dropped, fill_header, hit, wanted},
    probes::vfio::IRQS_DEVICE,
};

#[inline(always)]
fn pid_tgid_now() -> u64 {
    bpf_get_current_pid_tgid()
}

// Field offsets in the syscall tracepoints' records (the `format` files:
// every syscall argument is widened to 8 bytes after the 8-byte common
// header and the 4-byte `__syscall_nr`).
const ENTER_FD: usize = 16;
const ENTER_CMD: usize = 24;
const ENTER_ARG: usize = 32;
const EXIT_RET: usize = 16;

/// Enter half of each traced ioctl in flight, keyed by pid_tgid.
#[map]
static PENDING: HashMap<u64, PendingIoctl> = HashMap::with_max_entries(16384, 0);

/// Per-CPU scratch to build a `PendingIoctl` (too big for the 512-byte stack).
#[map]
static SCRATCH: PerCpuArray<PendingIoctl> = PerCpuArray::with_max_entries(1, 0);

/// Per-CPU scratch where the exit probe builds the record it sends.
#[map]
static OUT: PerCpuArray<IoctlVarBuf> = PerCpuArray::with_max_entries(1, 0);

#[tracepoint(category = "syscalls", name = "sys_enter_ioctl")]
pub fn sys_enter_ioctl(ctx: TracePointContext) -> u32 {
    done(try_sys_enter_ioctl(&ctx))
}

#[tracepoint(category = "syscalls", name = "sys_exit_ioctl")]
pub fn sys_exit_ioctl(ctx: TracePointContext) -> u32 {
    done(try_sys_exit_ioctl(&ctx))
}

fn try_sys_enter_ioctl(ctx: &TracePointContext) -> Outcome {
    // SAFETY: offsets of the sys_enter_ioctl record, read with a checked helper.
    let cmd = unsafe { ctx.read_at::<u64>(ENTER_CMD) }? as u32;
    let Some((on_enter, _)) = copy_plan(cmd) else {
        return Ok(());
    };
    let pid_tgid = bpf_get_current_pid_tgid();
    if !wanted(pid_tgid) {
        return Ok(());
    }
    hit(SYS_ENTER_IOCTL);
    // SAFETY: as above.
    let fd = unsafe { ctx.read_at::<u64>(ENTER_FD) }?;
    // SAFETY: as above.
    let arg = unsafe { ctx.read_at::<u64>(ENTER_ARG) }?;
    let p = SCRATCH.get_ptr_mut(0).or_missing()?;
    // SAFETY: per-CPU scratch slot, nothing else uses it during this program.
    let p = unsafe { &mut *p };
    // SAFETY: helper without preconditions.
    p.enter_ns = unsafe { bpf_ktime_get_ns() };
    p.arg = arg;
    p.fd = fd as u32;
    p.cmd = cmd;
    p.in_len = read_user(p.in_data.as_mut_ptr(), arg, on_enter);
    if PENDING.insert(&pid_tgid, &*p, 0).is_err() {
        dropped(drop_reason::PENDING_FULL);
    }
    Ok(())
}

fn try_sys_exit_ioctl(ctx: &TracePointContext) -> Outcome {
    let pid_tgid = bpf_get_current_pid_tgid();
    let Some(p) = PENDING.get_ptr(&pid_tgid) else {
        return Ok(());
    };
    hit(SYS_EXIT_IOCTL);
    let outcome = send(ctx, p);
    let _ = PENDING.remove(&pid_tgid);
    outcome
}

/// Builds the record in a per-CPU buffer and sends only its used prefix:
/// the head, the bytes read at enter, the bytes read at exit
/// (`kind::IOCTL_VAR`). A MAP_DMA is 144 bytes, not a 1136-byte record
/// mostly made of two unused 512-byte arrays.
fn send(ctx: &TracePointContext, p: *const PendingIoctl) -> Outcome {
    // SAFETY: offset of `ret` in the sys_exit_ioctl record.
    let ret = unsafe { ctx.read_at::<i64>(EXIT_RET) }?;
    let o = OUT.get_ptr_mut(0).or_missing()?;
    // SAFETY: `o` is this CPU's scratch slot, nothing else uses it while
    // this program runs; `p` points at a live map value. Every byte sent
    // (head, then `in_len` + `out_len` data bytes) is written below.
    unsafe {
        let h = &mut (*o).head;
        fill_header(&mut h.hdr, kind::IOCTL_VAR, SYS_EXIT_IOCTL);
        let cmd = (*p).cmd;
        h.enter_ns = (*p).enter_ns;
        h.arg = (*p).arg;
        h.ret = ret;
        h.fd = (*p).fd;
        h.cmd = cmd;
        // The device a kernel probe saw inside this ioctl (SET_IRQS only:
        // no hash lookups on the MAP/UNMAP path).
        h.dev = [0; DEV_NAME_LEN];
        if cmd == VFIO_DEVICE_SET_IRQS {
            let tid = pid_tgid_now() as u32;
            if let Some(name) = IRQS_DEVICE.get(&tid) {
                h.dev = *name;
            }
            let _ = IRQS_DEVICE.remove(&tid);
        }
        let mut in_len = (*p).in_len;
        if in_len > IOCTL_DATA_MAX as u32 {
            in_len = IOCTL_DATA_MAX as u32;
        }
        let data = (*o).data.as_mut_ptr();
        if in_len > 0
            && bpf_probe_read_kernel(
                data.cast::<c_void>(),
                in_len,
                (*p).in_data.as_ptr().cast::<c_void>(),
            ) != 0
        {
            in_len = 0;
        }
        let on_exit = match copy_plan(cmd) {
            Some((_, on_exit)) => on_exit,
            None => ReadLen::None,
        };
        let mut out_len = read_user(data.add(in_len as usize), (*p).arg, on_exit);
        if out_len > IOCTL_DATA_MAX as u32 {
            out_len = 0;
        }
        // The user array the struct points at (iommufd only), after both
        // struct copies: its pointer and length from the enter copy.
        let arr_len = match array_plan(cmd) {
            Some(plan) => read_array(data.add((in_len + out_len) as usize), data, in_len, plan),
            None => 0,
        };
        h.in_len = in_len;
        h.out_len = out_len;
        h.arr_len = arr_len;
        h._pad = 0;
        let len = IoctlHead::SIZE + in_len as usize + out_len as usize + arr_len as usize;
        if len > core::mem::size_of::<IoctlVarBuf>() {
            return Err(TOO_BIG);
        }
        emit_bytes(core::slice::from_raw_parts(o.cast::<u8>(), len))
    }
}

/// Copies the user struct at `src` into `dst` (room for [`IOCTL_DATA_MAX`]
/// bytes) as `plan` says; returns the number of bytes copied (0 when the
/// read faulted, counted in `DROPS`).
#[inline(always)]
fn read_user(dst: *mut u8, src: u64, plan: ReadLen) -> u32 {
    let (want, min): (u64, u64) = match plan {
        ReadLen::None => return 0,
        ReadLen::Fixed(n) => (u64::from(n), u64::from(n)),
        ReadLen::Argsz { min } => {
            // SAFETY: a checked user-memory read.
            let argsz =
                unsafe { aya_ebpf::helpers::bpf_probe_read_user(src as *const u32) }.unwrap_or(0);
            let mut n = u64::from(argsz);
            if n < u64::from(min) {
                n = u64::from(min);
            }
            (n, u64::from(min))
        }
        ReadLen::Size { known } => {
            // SAFETY: a checked user-memory read.
            let Ok(size) = (unsafe { aya_ebpf::helpers::bpf_probe_read_user(src as *const u32) })
            else {
                dropped(drop_reason::READ_FAILED);
                return 0;
            };
            // min(size, known), never below the 4 bytes of `size` itself.
            let mut n = u64::from(size);
            if n > u64::from(known) {
                n = u64::from(known);
            }
            if n < 4 {
                n = 4;
            }
            (n, 4)
        }
    };
    let n = copy_user(dst, src, want);
    if n != 0 {
        return n as u32;
    }
    // `argsz` may claim more than is mapped: fall back to the fixed header.
    if want != min {
        let n = copy_user(dst, src, min);
        if n != 0 {
            return n as u32;
        }
    }
    dropped(drop_reason::READ_FAILED);
    0
}

/// Copies `n` bytes (clamped to [`IOCTL_DATA_MAX`]) of user memory at
/// `src` to `dst`; returns the bytes copied, 0 if none. Not inlined, so the
/// verifier sees the bound checked on the very register passed to the
/// helper (inlined, LLVM compared a zero-extended copy and passed the
/// original, which the verifier rejects as unbounded).
#[inline(never)]
fn copy_user(dst: *mut u8, src: u64, n: u64) -> u64 {
    let mut n = n;
    if n > IOCTL_DATA_MAX as u64 {
        n = IOCTL_DATA_MAX as u64;
    }
    if n == 0 {
        return 0;
    }
    // SAFETY: `dst` has room for IOCTL_DATA_MAX bytes; the helper checks the
    // user address.
    if unsafe { bpf_probe_read_user(dst.cast::<c_void>(), n as u32, src as *const c_void) } == 0 {
        n
    } else {
        0
    }
}

/// [`copy_user`] for a user array: at most [`ARRAY_DATA_MAX`] bytes.
#[inline(never)]
fn copy_array(dst: *mut u8, src: u64, n: u64) -> u64 {
    let mut n = n;
    if n > ARRAY_DATA_MAX as u64 {
        n = ARRAY_DATA_MAX as u64;
    }
    if n == 0 {
        return 0;
    }
    // SAFETY: `dst` has room for ARRAY_DATA_MAX bytes; the helper checks
    // the user address.
    if unsafe { bpf_probe_read_user(dst.cast::<c_void>(), n as u32, src as *const c_void) } == 0 {
        n
    } else {
        0
    }
}

/// Reads the user array of `plan` into `dst` (room for [`ARRAY_DATA_MAX`]
/// bytes): its pointer and count come from `st`, the `st_len` bytes of the
/// struct read at enter (fields the caller did not pass are not used).
/// Returns the bytes copied, at most [`ARRAY_DATA_MAX`] (0: no array, or
/// the read faulted, counted in `DROPS`).
#[inline(always)]
fn read_array(
    dst: *mut u8,
    st: *const u8,
    st_len: u32,
    plan: tracer_common::ioctl::ArrayPlan,
) -> u32 {
    let ptr = field::<u64>(st, st_len, plan.ptr_off);
    let count = u64::from(field::<u32>(st, st_len, plan.count_off));
    let each = match plan.len {
        ArrayLen::Entries(n) => u64::from(n),
        ArrayLen::EntriesOf(off) => u64::from(field::<u32>(st, st_len, off)),
    };
    let n = count * each;
    if ptr == 0 || n == 0 {
        return 0;
    }
    let got = copy_array(dst, ptr, n);
    if got == 0 {
        dropped(drop_reason::READ_FAILED);
    }
    got as u32
}

/// The little-endian field at `off` of the `len` captured struct bytes at
/// `st` (a map value), or 0 when the caller's struct did not reach it.
#[inline(always)]
fn field<T: Default>(st: *const u8, len: u32, off: u32) -> T {
    let size = core::mem::size_of::<T>() as u32;
    let mut v = T::default();
    if off + size > len || off + size > IOCTL_DATA_MAX as u32 {
        return v;
    }
    // SAFETY: `[off, off + size)` is within the captured bytes of the map
    // value at `st`; a kernel read of them into a stack value.
    let rc = unsafe {
        bpf_probe_read_kernel(
            (&mut v as *mut T).cast::<c_void>(),
            size,
            st.add(off as usize).cast::<c_void>(),
        )
    };
    if rc != 0 {
        return T::default();
    }
    v
}
