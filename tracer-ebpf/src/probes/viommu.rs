//! The guest's virtio-iommu driver (drivers/iommu/virtio-iommu.c). Every
//! request goes through `__viommu_add_req(viommu, buf, len, writeback)`,
//! which copies `buf` (the wire request) into a `struct viommu_request` and
//! queues it. The driver never checks the status of asynchronous MAP/UNMAP
//! requests, so the status is read where the device hands the request back:
//! `virtqueue_get_buf_ctx()` returning that `viommu_request *`.

use aya_ebpf::{
    helpers::bpf_ktime_get_ns,
    macros::{fexit, kprobe, kretprobe, map},
    maps::{HashMap, PerCpuArray},
    programs::{FExitContext, ProbeContext, RetProbeContext},
};
use tracer_common::{
    drop_reason, kind,
    kprobe::{mod_offset, ViommuReqRecord, VIOMMU_PROPS_MAX, VIOMMU_REQ_MAX},
    probe::*,
};

use crate::{
    emit::{done, emit, OrMissing, Outcome, MISSING},
    maps::{dropped, hit},
    offsets::{copy_kernel, module, read},
};

/// VIRTIO_IOMMU_T_PROBE.
const T_PROBE: u8 = 5;
/// PROBE properties start after head (4), endpoint (4) and 64 reserved bytes.
const PROBE_PROPS_AT: u32 = 72;
/// Marks a request the device never answered (`status` field).
const NOT_QUEUED: u32 = 0xff;

/// A request between `__viommu_add_req` entry and its completion.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct PendingReq {
    viommu: u64,
    add_ns: u64,
    len: u32,
    _pad: u32,
    req: [u8; VIOMMU_REQ_MAX],
}

/// The request `__viommu_add_req` is adding on this CPU. Its callers hold
/// `viommu->request_lock` with interrupts off (`spin_lock_irqsave`), so entry
/// and return run on one CPU with nothing in between: a per-CPU slot pairs
/// them without a hash map. `viommu == 0` marks the slot empty.
#[map]
static ADDING: PerCpuArray<PendingReq> = PerCpuArray::with_max_entries(1, 0);
/// Keyed by `struct viommu_request *` while the device holds it.
#[map]
static IN_FLIGHT: HashMap<u64, PendingReq> = HashMap::with_max_entries(8192, 0);

/// `static int __viommu_add_req(struct viommu_dev *viommu, void *buf,
/// size_t len, bool writeback)`
#[kprobe]
pub fn viommu_add_req_entry(ctx: ProbeContext) -> u32 {
    done(try_viommu_add_req_entry(&ctx))
}

#[inline(always)]
fn try_viommu_add_req_entry(ctx: &ProbeContext) -> Outcome {
    hit(VIOMMU_ADD_REQ_ENTRY);
    let p = ADDING.get_ptr_mut(0).or_missing()?;
    // SAFETY: this CPU's slot; its only other user is the return probe,
    // which cannot run until this function returns on this CPU.
    let p = unsafe { &mut *p };
    p.viommu = ctx.arg::<u64>(0).unwrap_or(0);
    let buf = ctx.arg::<u64>(1).unwrap_or(0);
    p.len = ctx.arg::<u64>(2).unwrap_or(0) as u32;
    // SAFETY: helper without preconditions.
    p.add_ns = unsafe { bpf_ktime_get_ns() };
    let mut n = p.len;
    if n > VIOMMU_REQ_MAX as u32 {
        n = VIOMMU_REQ_MAX as u32;
    }
    p.req = [0; VIOMMU_REQ_MAX];
    if !copy_kernel(&mut p.req, buf, n) {
        dropped(drop_reason::READ_FAILED);
    }
    Ok(())
}

#[kretprobe]
pub fn viommu_add_req_return(ctx: RetProbeContext) -> u32 {
    done(try_viommu_add_req_return(&ctx))
}

#[inline(always)]
fn try_viommu_add_req_return(ctx: &RetProbeContext) -> Outcome {
    hit(VIOMMU_ADD_REQ_RETURN);
    let p = ADDING.get_ptr_mut(0).or_missing()?;
    // SAFETY: this CPU's slot, filled by the entry probe of this call.
    let p = unsafe { &mut *p };
    if p.viommu == 0 {
        return Ok(());
    }
    let ret: i64 = ctx.ret();
    let outcome = if ret != 0 {
        send(p, ret as i32, NOT_QUEUED, 0)
    } else {
        queued(p)
    };
    p.viommu = 0;
    outcome
}

/// Keeps a queued request in `IN_FLIGHT` under its `viommu_request *`.
#[inline(always)]
fn queued(p: &PendingReq) -> Outcome {
    let requests = module(mod_offset::VIOMMU_DEV_REQUESTS).or_missing()?;
    let list = module(mod_offset::VIOMMU_REQ_LIST).or_missing()?;
    // list_add_tail() made the new request `viommu->requests.prev`.
    let prev = read::<u64>(p.viommu + requests + 8).or_missing()?;
    let req = prev - list;
    if IN_FLIGHT.insert(&req, p, 0).is_err() {
        dropped(drop_reason::PENDING_FULL);
    }
    Ok(())
}

/// `void *virtqueue_get_buf_ctx(struct virtqueue *vq, unsigned int *len,
/// void **ctx)` returns the token passed when queueing: for virtio-iommu
/// requests, the `struct viommu_request *`. Other virtio devices' tokens
/// simply miss in `IN_FLIGHT`.
#[kretprobe]
pub fn virtqueue_get_buf_ctx_return(ctx: RetProbeContext) -> u32 {
    done(try_completed(ctx.ret(), VIRTQUEUE_GET_BUF_CTX_RETURN))
}

/// `void *virtqueue_get_buf(struct virtqueue *vq, unsigned int *len)`, which
/// the driver calls: it wraps `virtqueue_get_buf_ctx()`, which the compiler
/// may inline into it. Whichever return sees the token first reports it.
#[kretprobe]
pub fn virtqueue_get_buf_return(ctx: RetProbeContext) -> u32 {
    done(try_completed(ctx.ret(), VIRTQUEUE_GET_BUF_RETURN))
}

/// `virtqueue_get_buf_ctx()` as an fexit program: the same, through a BPF
/// trampoline instead of a return probe on every virtio completion of every
/// device. Preferred when the kernel has trampolines.
#[fexit(function = "virtqueue_get_buf_ctx")]
pub fn virtqueue_get_buf_ctx_exit(ctx: FExitContext) -> u32 {
    done(try_completed(
        ctx.ret::<u64>().unwrap_or(0),
        VIRTQUEUE_GET_BUF_CTX_RETURN,
    ))
}

/// `virtqueue_get_buf()` as an fexit program.
#[fexit(function = "virtqueue_get_buf")]
pub fn virtqueue_get_buf_exit(ctx: FExitContext) -> u32 {
    done(try_completed(
        ctx.ret::<u64>().unwrap_or(0),
        VIRTQUEUE_GET_BUF_RETURN,
    ))
}

/// Body of every completion probe: `token` is the returned pointer.
#[inline(always)]
fn try_completed(token: u64, probe: u16) -> Outcome {
    let p = IN_FLIGHT.get_ptr(&token).or_missing()?;
    hit(probe);
    // SAFETY: live map value, read before removal below.
    let p = unsafe { &*p };
    let outcome = match module(mod_offset::VIOMMU_REQ_BUF) {
        Some(buf_off) => {
            let len = p.len;
            let buf = token + buf_off;
            // The tail `{u8 status; u8 reserved[3]}` closes the request.
            let status = if len >= 4 {
                u32::from(read::<u8>(buf + u64::from(len) - 4).unwrap_or(0))
            } else {
                0
            };
            send(p, 0, status, buf)
        }
        None => Err(MISSING),
    };
    let _ = IN_FLIGHT.remove(&token);
    outcome
}

/// Sends one request record; PROBE properties are copied from `buf`.
#[inline(always)]
fn send(p: &PendingReq, add_ret: i32, status: u32, buf: u64) -> Outcome {
    emit::<ViommuReqRecord>(kind::VIOMMU_REQ, VIRTQUEUE_GET_BUF_RETURN, |r| {
        // SAFETY: the slot `emit` reserved; every field written (`props`
        // up to `props_len`).
        unsafe {
            (*r).add_ns = p.add_ns;
            (*r).len = p.len;
            (*r).add_ret = add_ret;
            (*r).status = status;
            (*r).req = p.req;
            (*r).props_len = 0;
            if buf != 0 && p.req[0] == T_PROBE && p.len > PROBE_PROPS_AT + 4 {
                let mut n = p.len - PROBE_PROPS_AT - 4;
                if n > VIOMMU_PROPS_MAX as u32 {
                    n = VIOMMU_PROPS_MAX as u32;
                }
                if copy_kernel(&mut (*r).props, buf + u64::from(PROBE_PROPS_AT), n) {
                    (*r).props_len = n;
                }
            }
        }
    })
}
