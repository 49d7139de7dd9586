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
    kind,
    kprobe::{mod_offset, ViommuReqRecord, VIOMMU_PROPS_MAX, VIOMMU_REQ_MAX},
    probe::*,
};

use crate::{
    maps::{fill_header, hit, reserve, SUBMIT_FLAGS},
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
    hit(VIOMMU_ADD_REQ_ENTRY);
    let Some(p) = ADDING.get_ptr_mut(0) else {
        return 0;
    };
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
        crate::maps::dropped(tracer_common::drop_reason::READ_FAILED);
    }
    0
}

#[kretprobe]
pub fn viommu_add_req_return(ctx: RetProbeContext) -> u32 {
    hit(VIOMMU_ADD_REQ_RETURN);
    let Some(p) = ADDING.get_ptr_mut(0) else {
        return 0;
    };
    // SAFETY: this CPU's slot, filled by the entry probe of this call.
    let p = unsafe { &mut *p };
    if p.viommu == 0 {
        return 0;
    }
    let ret: i64 = ctx.ret();
    if ret != 0 {
        emit(p, ret as i32, NOT_QUEUED, 0);
    } else if let (Some(requests), Some(list)) = (
        module(mod_offset::VIOMMU_DEV_REQUESTS),
        module(mod_offset::VIOMMU_REQ_LIST),
    ) {
        // list_add_tail() made the new request `viommu->requests.prev`.
        if let Some(prev) = read::<u64>(p.viommu + requests + 8) {
            let req = prev - list;
            if IN_FLIGHT.insert(&req, &*p, 0).is_err() {
                crate::maps::dropped(tracer_common::drop_reason::PENDING_FULL);
            }
        }
    }
    p.viommu = 0;
    0
}

/// `void *virtqueue_get_buf_ctx(struct virtqueue *vq, unsigned int *len,
/// void **ctx)` returns the token passed when queueing: for virtio-iommu
/// requests, the `struct viommu_request *`. Other virtio devices' tokens
/// simply miss in `IN_FLIGHT`.
#[kretprobe]
pub fn virtqueue_get_buf_ctx_return(ctx: RetProbeContext) -> u32 {
    completed(ctx.ret(), VIRTQUEUE_GET_BUF_CTX_RETURN)
}

/// `void *virtqueue_get_buf(struct virtqueue *vq, unsigned int *len)`, which
/// the driver calls: it wraps `virtqueue_get_buf_ctx()`, which the compiler
/// may inline into it. Whichever return sees the token first reports it.
#[kretprobe]
pub fn virtqueue_get_buf_return(ctx: RetProbeContext) -> u32 {
    completed(ctx.ret(), VIRTQUEUE_GET_BUF_RETURN)
}

/// `virtqueue_get_buf_ctx()` as an fexit program: the same, through a BPF
/// trampoline instead of a return probe on every virtio completion of every
/// device. Preferred when the kernel has trampolines.
#[fexit(function = "virtqueue_get_buf_ctx")]
pub fn virtqueue_get_buf_ctx_exit(ctx: FExitContext) -> u32 {
    completed(ctx.ret::<u64>().unwrap_or(0), VIRTQUEUE_GET_BUF_CTX_RETURN)
}

/// `virtqueue_get_buf()` as an fexit program.
#[fexit(function = "virtqueue_get_buf")]
pub fn virtqueue_get_buf_exit(ctx: FExitContext) -> u32 {
    completed(ctx.ret::<u64>().unwrap_or(0), VIRTQUEUE_GET_BUF_RETURN)
}

#[inline(always)]
fn completed(token: u64, probe: u16) -> u32 {
    let Some(p) = IN_FLIGHT.get_ptr(&token) else {
        return 0;
    };
    hit(probe);
    // SAFETY: live map value, read before removal below.
    let p = unsafe { &*p };
    let (Some(buf_off), len) = (module(mod_offset::VIOMMU_REQ_BUF), p.len) else {
        let _ = IN_FLIGHT.remove(&token);
        return 0;
    };
    let buf = token + buf_off;
    // The tail `{u8 status; u8 reserved[3]}` closes the request.
    let status = if len >= 4 {
        u32::from(read::<u8>(buf + u64::from(len) - 4).unwrap_or(0))
    } else {
        0
    };
    emit(p, 0, status, buf);
    let _ = IN_FLIGHT.remove(&token);
    0
}

/// Sends one request record; PROBE properties are copied from `buf`.
#[inline(always)]
fn emit(p: &PendingReq, add_ret: i32, status: u32, buf: u64) {
    let Some(mut e) = reserve::<ViommuReqRecord>() else {
        return;
    };
    let r = e.as_mut_ptr();
    // SAFETY: exclusively owned ring slot; every field written.
    unsafe {
        fill_header(&mut (*r).hdr, kind::VIOMMU_REQ, VIRTQUEUE_GET_BUF_RETURN);
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
    e.submit(SUBMIT_FLAGS);
}
