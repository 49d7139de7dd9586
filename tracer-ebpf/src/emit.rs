//! The one way a probe sends a record, and the shape every probe has.
//!
//! A program is a thin entry point (`#[kprobe] fn x(ctx) -> u32 {
//! done(try_x(&ctx)) }`) over a fallible body (`fn try_x(ctx: &C) ->
//! Outcome`). A body returns early with `?` when there is nothing to report
//! (an argument, an offset or a pending entry missing), and sends its record
//! with [`emit`]: reserve a ring slot, fill the common header, let the probe
//! fill the rest, submit. Losses are counted in `DROPS` where they happen,
//! never at the entry point, so an `Err` only says "stopped early".

use aya_ebpf::maps::ring_buf::RingBufEntry;
use tracer_common::{
    drop_reason,
    kprobe::{
        DoorbellMapRecord, IommuMapRecord, IommuUnmapRecord, MsiCookieRecord, MsiMaskRecord,
        MsiVectorRecord, MsiWriteRecord, PinRecord, ResvRecord, ViommuReqRecord,
    },
    EventHeader,
};

use crate::maps::{dropped, fill_header, EVENTS, SUBMIT_FLAGS};

/// What a probe body returns: `Err` carries a negative errno (a helper's own,
/// or one of the constants below) and only ends the body early.
pub type Outcome = Result<(), i64>;

/// Nothing to report: an argument, a kernel offset, a map entry missing.
pub const MISSING: i64 = -2; // -ENOENT
/// The events ring had no room (what `bpf_ringbuf_output()` says then).
pub const RING_FULL: i64 = -11; // -EAGAIN
/// A record would not fit its buffer.
pub const TOO_BIG: i64 = -7; // -E2BIG

/// The program's return value, whatever its body's outcome (every program
/// returns 0; losses were counted where they happened).
#[inline(always)]
pub fn done(_outcome: Outcome) -> u32 {
    0
}

/// `Option` → [`Outcome`]-style `Result`: `None` is [`MISSING`].
pub trait OrMissing<T> {
    fn or_missing(self) -> Result<T, i64>;
}

impl<T> OrMissing<T> for Option<T> {
    #[inline(always)]
    fn or_missing(self) -> Result<T, i64> {
        self.ok_or(MISSING)
    }
}

/// A fixed-size ring record: `#[repr(C)]`, starting with `hdr: EventHeader`.
pub trait Record: 'static {
    /// The header of the record at `r`.
    ///
    /// # Safety
    /// `r` points at (possibly uninitialised) memory for a `Self`.
    unsafe fn header(r: *mut Self) -> *mut EventHeader;
}

macro_rules! records {
    ($($t:ty),* $(,)?) => {$(
        impl Record for $t {
            #[inline(always)]
            unsafe fn header(r: *mut Self) -> *mut EventHeader {
                // SAFETY: the caller's pointer; no reference is made.
                unsafe { &raw mut (*r).hdr }
            }
        }
    )*};
}

records!(
    IommuMapRecord,
    IommuUnmapRecord,
    PinRecord,
    MsiVectorRecord,
    MsiWriteRecord,
    MsiMaskRecord,
    MsiCookieRecord,
    DoorbellMapRecord,
    ResvRecord,
    ViommuReqRecord,
);

/// Sends one `T`: reserves it in `EVENTS` (a full ring counts a
/// `RING_FULL` drop and returns [`RING_FULL`]), fills its header (`kind`,
/// `probe`, this task, CPU and time), lets `fill` write the rest, submits.
///
/// `fill` gets the slot as a raw pointer: the ring memory is not
/// initialised, so it writes fields (`(*r).x = ..`), never reads them; the
/// bytes it leaves unwritten go out as the ring had them.
#[inline(always)]
pub fn emit<T: Record>(kind: u16, probe: u16, fill: impl FnOnce(*mut T)) -> Outcome {
    let Some(mut e): Option<RingBufEntry<T>> = EVENTS.reserve::<T>(0) else {
        dropped(drop_reason::RING_FULL);
        return Err(RING_FULL);
    };
    let r = e.as_mut_ptr();
    // SAFETY: `r` is the exclusively owned ring slot of one `T`.
    fill_header(unsafe { &mut *T::header(r) }, kind, probe);
    fill(r);
    e.submit(SUBMIT_FLAGS);
    Ok(())
}

/// Sends `bytes` (a variable-length record whose header the caller filled
/// with [`fill_header`]) by copying them into the ring; a full ring counts a
/// `RING_FULL` drop.
#[inline(always)]
pub fn emit_bytes(bytes: &[u8]) -> Outcome {
    if EVENTS.output::<[u8]>(bytes, SUBMIT_FLAGS).is_err() {
        dropped(drop_reason::RING_FULL);
        return Err(RING_FULL);
    }
    Ok(())
}
