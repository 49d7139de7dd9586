//! Damaged files: every truncation point and flipped bytes anywhere give a
//! typed error naming the offset after the good prefix (strict), or every
//! good chunk plus a warning (salvage). Never a panic.

use std::io::Cursor;

use tracer_core::event::Event;
use tracer_core::tracefile::synth::{all_kinds, sample_nodes, MapUnmapTrace};
use tracer_core::tracefile::*;

/// A file of several chunks, with each chunk's [start, end) offsets and
/// events, and where the end marker starts.
struct Sample {
    bytes: Vec<u8>,
    chunks: Vec<(u64, u64, Vec<Event>)>,
    data_start: u64,
    end_marker: u64,
}

fn sample(chunk_events: usize, total: usize) -> Sample {
    let header = TraceHeader {
        tool_version: "test".into(),
        nodes: sample_nodes(),
        ..Default::default()
    };
    let mut events = all_kinds();
    events.extend(MapUnmapTrace::new(3).take(total.saturating_sub(events.len())));
    let mut w = TraceWriter::new(Vec::new(), &header, WriterOptions::default()).unwrap();
    let data_start = w.bytes_written();
    let mut chunks = Vec::new();
    for part in events.chunks(chunk_events) {
        let start = w.bytes_written();
        for e in part {
            w.append(e).unwrap();
        }
        w.flush().unwrap();
        chunks.push((start, w.bytes_written(), part.to_vec()));
    }
    let end_marker = w.bytes_written();
    let bytes = w.finish().unwrap();
    Sample {
        bytes,
        chunks,
        data_start,
        end_marker,
    }
}

/// Reads strictly: the events before the first error, and the error.
fn strict(bytes: &[u8]) -> Result<(Vec<Event>, Option<TraceError>), TraceError> {
    let mut r = TraceReader::new(Cursor::new(bytes))?;
    let mut evs = Vec::new();
    for item in r.by_ref() {
        match item {
            Ok(e) => evs.push(e),
            Err(e) => {
                assert!(r.next().is_none(), "strict reader goes on after an error");
                return Ok((evs, Some(e)));
            }
        }
    }
    Ok((evs, None))
}

fn salvage(bytes: &[u8]) -> Result<(Vec<Event>, Vec<TraceWarning>), TraceError> {
    let mut r = TraceReader::with_mode(Cursor::new(bytes), ReadMode::Salvage)?;
    let evs = r.by_ref().collect::<Result<Vec<_>, _>>()?;
    Ok((evs, r.warnings().iter().map(clone_warning).collect()))
}

fn clone_warning(w: &TraceWarning) -> TraceWarning {
    TraceWarning {
        offset: w.offset,
        skipped: w.skipped,
        error: TraceError::Corrupt {
            offset: w.error.offset().unwrap_or(u64::MAX),
            what: "copy",
            detail: w.error.to_string(),
        },
    }
}

fn events_before(s: &Sample, chunk: usize) -> Vec<Event> {
    s.chunks[..chunk].iter().flat_map(|c| c.2.clone()).collect()
}

fn events_except(s: &Sample, chunk: usize) -> Vec<Event> {
    s.chunks
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != chunk)
        .flat_map(|(_, c)| c.2.clone())
        .collect()
}

/// Index of the chunk holding byte `p`, if any.
fn chunk_at(s: &Sample, p: u64) -> Option<usize> {
    s.chunks.iter().position(|c| c.0 <= p && p < c.1)
}

#[test]
fn sample_is_what_the_tests_assume() {
    let s = sample(50, 400);
    assert_eq!(s.chunks.len(), 8);
    assert_eq!(s.chunks[0].0, s.data_start);
    assert_eq!(s.chunks.last().unwrap().1, s.end_marker);
    assert_eq!(s.bytes.len() as u64, s.end_marker + 44);
    let (evs, err) = strict(&s.bytes).unwrap();
    assert!(err.is_none());
    assert_eq!(evs, events_before(&s, s.chunks.len()));
}

#[test]
fn truncation_at_every_chunk_boundary() {
    let s = sample(50, 400);
    for (i, c) in s.chunks.iter().enumerate() {
        let cut = &s.bytes[..c.0 as usize];
        let (evs, err) = strict(cut).unwrap();
        assert_eq!(evs, events_before(&s, i));
        let err = err.expect("a cut file is reported");
        assert!(matches!(err, TraceError::Truncated { .. }), "{err}");
        assert_eq!(err.offset(), Some(c.0), "{err}");
        let (evs, warns) = salvage(cut).unwrap();
        assert_eq!(evs, events_before(&s, i));
        assert_eq!(warns.len(), 1);
        assert_eq!(warns[0].offset, c.0);
    }
    // Cut right before the end marker: every event, still reported.
    let (evs, err) = strict(&s.bytes[..s.end_marker as usize]).unwrap();
    assert_eq!(evs.len(), 400);
    assert_eq!(err.unwrap().offset(), Some(s.end_marker));
}

#[test]
fn truncation_inside_chunks_and_header() {
    let s = sample(50, 400);
    for cut in 0..s.bytes.len() {
        let b = &s.bytes[..cut];
        let cut = cut as u64;
        if cut < s.data_start {
            let err = TraceReader::new(Cursor::new(b)).err().expect("header cut");
            assert!(matches!(err, TraceError::Truncated { .. }), "{cut}: {err}");
            continue;
        }
        let Some(k) = chunk_at(&s, cut) else {
            continue; // inside the end marker: tested above
        };
        let (evs, err) = strict(b).unwrap();
        assert_eq!(evs, events_before(&s, k), "cut at {cut}");
        let err = err.unwrap();
        assert_eq!(err.offset(), Some(s.chunks[k].0), "cut at {cut}: {err}");
        let (evs, warns) = salvage(b).unwrap();
        assert_eq!(evs, events_before(&s, k), "salvage, cut at {cut}");
        assert!(!warns.is_empty());
        assert_eq!(warns[0].offset, s.chunks[k].0);
    }
}

#[test]
fn flipped_bytes_anywhere() {
    let s = sample(40, 200);
    for p in 0..s.bytes.len() {
        for mask in [0x01u8, 0x80, 0xff] {
            let mut b = s.bytes.clone();
            b[p] ^= mask;
            let p = p as u64;
            check_flip(&s, &b, p, mask);
        }
    }
}

fn check_flip(s: &Sample, b: &[u8], p: u64, mask: u8) {
    let ctx = format!("byte {p} ^ {mask:#x}");
    if p < s.data_start {
        // Magic and version are fatal; the rest of the header is checksummed,
        // and salvage reads every chunk without it.
        match strict(b) {
            Err(e) => assert!(e.offset().is_some(), "{ctx}: {e}"),
            Ok(_) => panic!("{ctx}: damaged header accepted"),
        }
        if p >= 10 {
            let (evs, warns) = salvage(b).unwrap_or_else(|e| panic!("{ctx}: {e}"));
            assert_eq!(evs, events_before(s, s.chunks.len()), "{ctx}");
            assert_eq!(warns.len(), 1, "{ctx}");
        }
        return;
    }
    let (evs, err) = strict(b).unwrap();
    let err = err.unwrap_or_else(|| panic!("{ctx}: damage not detected"));
    match chunk_at(s, p) {
        Some(k) => {
            assert_eq!(evs, events_before(s, k), "{ctx}");
            assert_eq!(err.offset(), Some(s.chunks[k].0), "{ctx}: {err}");
            let (evs, warns) = salvage(b).unwrap();
            assert_eq!(evs, events_except(s, k), "{ctx}: salvage");
            assert_eq!(warns.len(), 1, "{ctx}: {:?}", warns);
            assert_eq!(warns[0].offset, s.chunks[k].0, "{ctx}");
            assert_eq!(warns[0].skipped, s.chunks[k].1 - s.chunks[k].0, "{ctx}");
        }
        None => {
            // The end marker.
            assert_eq!(evs.len(), 200, "{ctx}");
            assert_eq!(err.offset(), Some(s.end_marker), "{ctx}: {err}");
            let (evs, warns) = salvage(b).unwrap();
            assert_eq!(evs.len(), 200);
            assert!(!warns.is_empty(), "{ctx}");
        }
    }
}

#[test]
fn garbage_between_chunks_is_stepped_over() {
    let s = sample(50, 200);
    let at = s.chunks[2].0 as usize;
    let mut b = s.bytes[..at].to_vec();
    b.extend_from_slice(b"VTCKgarbage that spells the frame magic VTCK and more");
    b.extend_from_slice(&s.bytes[at..]);
    let (evs, err) = strict(&b).unwrap();
    assert_eq!(evs, events_before(&s, 2));
    assert_eq!(err.unwrap().offset(), Some(at as u64));
    let (evs, warns) = salvage(&b).unwrap();
    assert_eq!(evs.len(), 200);
    assert_eq!(warns.len(), 1);
    assert_eq!(warns[0].offset, at as u64);
    assert_eq!(warns[0].skipped, 53);
}

#[test]
fn hostile_lengths_do_not_allocate() {
    // A frame that claims the largest payload, then ends: read as truncated
    // without reserving 17 MiB for it (read_bounded grows with the data).
    let s = sample(50, 50);
    let at = s.chunks[0].0 as usize;
    let mut b = s.bytes[..at + 44].to_vec();
    b[at + 8..at + 12].copy_from_slice(&MAX_CHUNK_PAYLOAD.to_le_bytes());
    let crc = crc32(&b[at..at + 40]);
    b[at + 40..at + 44].copy_from_slice(&crc.to_le_bytes());
    let (evs, err) = strict(&b).unwrap();
    assert!(evs.is_empty());
    assert!(matches!(err, Some(TraceError::Truncated { .. })));
    // One past the limit is refused outright.
    b[at + 8..at + 12].copy_from_slice(&(MAX_CHUNK_PAYLOAD + 1).to_le_bytes());
    let crc = crc32(&b[at..at + 40]);
    b[at + 40..at + 44].copy_from_slice(&crc.to_le_bytes());
    let (_, err) = strict(&b).unwrap();
    assert!(matches!(err, Some(TraceError::Corrupt { .. })));
}

/// CRC-32 (IEEE), bitwise, to forge frames without a dependency.
fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xedb8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

#[test]
fn not_a_trace_file() {
    for b in [&b""[..], b"VFIO", b"{\"ts_ns\":1}\n", &[0u8; 100]] {
        assert!(TraceReader::new(Cursor::new(b)).is_err());
    }
}
