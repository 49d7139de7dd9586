//! Fuzzes the trace file reader, strict and salvaging: no input may make it
//! panic, hang or allocate without bound.
//!
//! Input byte 0 picks what the rest is:
//! - even: a whole file, as is (seed with tracer-core/tests/fixtures);
//! - odd: the uncompressed payload of one event chunk (bytes 1..5: event
//!   count, little-endian), wrapped here in a valid header and frame with
//!   correct checksums, so the fuzzer reaches the event decoder instead of
//!   stopping at a checksum.
#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use tracer_core::tracefile::{ReadMode, TraceHeader, TraceReader, TraceWriter, WriterOptions};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let file = if sel & 1 == 0 {
        rest.to_vec()
    } else {
        wrap_payload(rest)
    };
    for mode in [ReadMode::Strict, ReadMode::Salvage] {
        if let Ok(mut r) = TraceReader::with_mode(Cursor::new(&file), mode) {
            for item in r.by_ref() {
                let _ = item;
            }
            let _ = r.warnings().len();
        }
    }
});

/// A file whose only chunk carries `rest[4..]` as its raw payload and
/// `rest[..4]` as its event count (see docs/trace-format.md).
fn wrap_payload(rest: &[u8]) -> Vec<u8> {
    if rest.len() < 4 {
        return Vec::new();
    }
    let count = u32::from_le_bytes(rest[..4].try_into().unwrap());
    let raw = &rest[4..];
    let w = TraceWriter::new(Vec::new(), &TraceHeader::default(), WriterOptions::default())
        .expect("header");
    let mut file = w.finish().expect("finish");
    file.truncate(file.len() - 44); // drop the end marker; appended again below
    let payload = zstd::bulk::compress(raw, 1).expect("compress");
    let mut frame = Vec::with_capacity(44);
    frame.extend_from_slice(b"VTCK");
    frame.extend_from_slice(&[1, 0, 0, 0]);
    frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    frame.extend_from_slice(&(raw.len() as u32).to_le_bytes());
    frame.extend_from_slice(&count.to_le_bytes());
    frame.extend_from_slice(&1_000u64.to_le_bytes());
    frame.extend_from_slice(&2_000u64.to_le_bytes());
    frame.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    let crc = crc32fast::hash(&frame);
    frame.extend_from_slice(&crc.to_le_bytes());
    file.extend_from_slice(&frame);
    file.extend_from_slice(&payload);
    let mut end = vec![0u8; 40];
    end[..4].copy_from_slice(b"VTCK");
    end[4] = 3;
    end[36..40].copy_from_slice(&crc32fast::hash(&[]).to_le_bytes());
    let crc = crc32fast::hash(&end);
    end.extend_from_slice(&crc.to_le_bytes());
    file.extend_from_slice(&end);
    file
}
