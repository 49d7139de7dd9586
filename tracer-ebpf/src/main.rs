//! vfio-trace's eBPF probes. One file per subsystem under `probes/`; shared
//! maps and helpers in `maps.rs`. Every program is a thin entry point over a
//! fallible `try_` body and sends its records through `emit.rs`; it counts
//! its runs in `HITS` and its losses in `DROPS`.
#![no_std]
#![no_main]

mod emit;
mod maps;
mod offsets;
mod probes;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // The verifier rejects any program that could reach this.
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
