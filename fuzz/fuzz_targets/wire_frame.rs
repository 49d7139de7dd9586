//! Fuzzes the agent protocol's frame decoder: a byte stream as an aggregator
//! would read it (frame after frame until an error or the end), and the
//! same bytes re-framed with a valid header and checksum so the payload
//! decoders (hello, event batches, ...) are reached. Must never panic.
//!
//!   cargo +nightly fuzz run wire_frame

#![no_main]

use libfuzzer_sys::fuzz_target;
use tracer_core::wire::{
    decode_frame, Message, MAGIC, MAX_HELLO_PAYLOAD, MAX_PAYLOAD, PROTOCOL_VERSION,
};

fn drain(mut buf: &[u8], limit: u32) {
    while let Ok(Some((msg, used))) = decode_frame(buf, limit) {
        if let Message::Events(batch) = msg {
            let _ = batch.decode(Some(1));
        }
        buf = &buf[used..];
    }
}

fuzz_target!(|data: &[u8]| {
    drain(data, MAX_HELLO_PAYLOAD);
    drain(data, MAX_PAYLOAD);
    if let Some((&ftype, payload)) = data.split_first() {
        let mut b = Vec::with_capacity(16 + payload.len());
        b.extend_from_slice(&MAGIC);
        b.push(PROTOCOL_VERSION);
        b.push(ftype % 8);
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        let mut h = crc32fast::Hasher::new();
        h.update(&b);
        h.update(payload);
        b.extend_from_slice(&h.finalize().to_le_bytes());
        b.extend_from_slice(payload);
        drain(&b, MAX_PAYLOAD);
    }
});
