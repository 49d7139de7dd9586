//! The agent protocol's framing: every frame type round trips; every class
//! of malformed input is a typed error naming the value, never a panic.

use proptest::prelude::*;
use tracer_core::event::{NodeInfo, NodeRole, ProbeState, ProbeStatus};
use tracer_core::tracefile::synth::{all_kinds, MapUnmapTrace};
use tracer_core::wire::*;

fn hello() -> Hello {
    Hello {
        tool_version: "0.1.0".into(),
        node: NodeInfo {
            name: "guest0".into(),
            role: NodeRole::Guest,
            kernel: "6.12.95+deb12-amd64".into(),
            machine: "x86_64".into(),
            clock_offset_ns: -1_700_000_000_123_456_789,
        },
        mono_ns: 123_456_789_012,
        token: "s3cret".into(),
        probes: vec![
            ProbeStatus {
                probe: "vfio_ioctl".into(),
                attach: "tracepoint:syscalls:sys_enter_ioctl".into(),
                status: ProbeState::Attached,
                required: true,
                reason: String::new(),
                hits: u64::MAX,
            },
            ProbeStatus {
                probe: "viommu_map".into(),
                attach: "kprobe:viommu_map_pages".into(),
                status: ProbeState::MissingSymbol,
                required: false,
                reason: "no such symbol".into(),
                hits: 0,
            },
        ],
    }
}

fn every_message() -> Vec<Message> {
    vec![
        Message::Hello(hello()),
        Message::Hello(Hello {
            token: String::new(),
            probes: vec![],
            ..hello()
        }),
        Message::Welcome(Welcome {
            node_id: 3,
            aggregator: "host".into(),
            tool_version: "0.1.0".into(),
            max_payload: MAX_PAYLOAD,
        }),
        Message::Events(EventBatch::from_events(1, &all_kinds())),
        Message::Events(EventBatch::from_events(u64::MAX, &[])),
        Message::Health(AgentHealth {
            events_sent: 1,
            events_dropped: 2,
            events_lost: 3,
            reconnects: 4,
            buffered_events: 5,
            buffered_bytes: u64::MAX,
        }),
        Message::Ping(Ping {
            seq: 7,
            t_ns: u64::MAX,
        }),
        Message::Pong(Pong {
            seq: u32::MAX,
            t_ns: 1,
            agent_ns: 2,
        }),
        Message::Goodbye(Goodbye {
            code: ByeCode::Done,
            message: "stopping".into(),
        }),
        Message::Goodbye(Goodbye {
            code: ByeCode::Other(200),
            message: String::new(),
        }),
    ]
}

fn frame(m: &Message) -> Vec<u8> {
    let mut b = Vec::new();
    encode_frame(m, &mut b);
    b
}

#[test]
fn every_frame_type_round_trips() {
    for m in every_message() {
        let b = frame(&m);
        let (got, used) = decode_frame(&b, MAX_PAYLOAD).unwrap().unwrap();
        assert_eq!(used, b.len());
        assert_eq!(got, m);
    }
}

#[test]
fn frames_decode_back_to_back_and_prefixes_ask_for_more() {
    let mut stream = Vec::new();
    let msgs = every_message();
    for m in &msgs {
        encode_frame(m, &mut stream);
    }
    // Every strict prefix of the first frame is "need more", not an error.
    let first = frame(&msgs[0]);
    for n in 0..first.len() {
        assert_eq!(
            decode_frame(&stream[..n], MAX_PAYLOAD),
            Ok(None),
            "prefix {n}"
        );
    }
    let mut pos = 0;
    let mut got = Vec::new();
    while pos < stream.len() {
        let (m, used) = decode_frame(&stream[pos..], MAX_PAYLOAD).unwrap().unwrap();
        got.push(m);
        pos += used;
    }
    assert_eq!(got, msgs);
}

#[test]
fn event_batches_decode_to_the_same_events_renumbered() {
    let events: Vec<_> = MapUnmapTrace::new(1).take(10_000).collect();
    let mut enc = BatchEncoder::new();
    for e in &events {
        enc.push(e);
    }
    assert_eq!(enc.count(), 10_000);
    let mut b = Vec::new();
    assert_eq!(enc.finish(42, &mut b), 10_000);
    assert_eq!(enc.count(), 0);
    assert_eq!(enc.finish(43, &mut b), 0, "an empty batch writes nothing");
    let (m, _) = decode_frame(&b, MAX_PAYLOAD).unwrap().unwrap();
    let Message::Events(batch) = m else {
        panic!("not events")
    };
    assert_eq!(batch.seq, 42);
    assert_eq!(batch.clone().decode(None).unwrap(), events);
    let renumbered = batch.decode(Some(5)).unwrap();
    assert!(renumbered.iter().all(|e| e.node == 5));
    // Compact: the codec's few bytes per event, not JSON.
    assert!(b.len() < events.len() * 16, "{} bytes", b.len());
}

#[test]
fn bad_magic() {
    let mut b = frame(&every_message()[0]);
    b[0] = b'X';
    assert_eq!(
        decode_frame(&b, MAX_PAYLOAD),
        Err(WireError::BadMagic { found: *b"XTAW" })
    );
    // Detected from the first byte, before a whole header arrived.
    assert!(matches!(
        decode_frame(b"G", MAX_PAYLOAD),
        Err(WireError::BadMagic { .. })
    ));
    assert!(matches!(
        decode_frame(b"GET / HTTP/1.1\r\n\r\n", MAX_PAYLOAD),
        Err(WireError::BadMagic { .. })
    ));
}

#[test]
fn bad_version() {
    let mut b = frame(&every_message()[0]);
    b[4] = 9;
    let e = decode_frame(&b, MAX_PAYLOAD).unwrap_err();
    assert_eq!(
        e,
        WireError::UnsupportedVersion {
            found: 9,
            supported: PROTOCOL_VERSION
        }
    );
    assert!(e.to_string().contains("version 9"), "{e}");
}

#[test]
fn unknown_type_and_reserved_flags() {
    let mut b = frame(&every_message()[0]);
    b[5] = 77;
    assert_eq!(
        decode_frame(&b, MAX_PAYLOAD),
        Err(WireError::UnknownFrameType(77))
    );
    let mut b = frame(&every_message()[0]);
    b[6] = 1;
    assert_eq!(
        decode_frame(&b, MAX_PAYLOAD),
        Err(WireError::ReservedFlags(1))
    );
}

#[test]
fn oversize_is_refused_from_the_header_alone() {
    // A header announcing 4 GiB: refused without the payload (nothing is
    // allocated or awaited).
    let mut b = frame(&Message::Ping(Ping { seq: 1, t_ns: 2 }));
    b[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
    let head: [u8; HEADER_LEN] = b[..HEADER_LEN].try_into().unwrap();
    let e = parse_header(&head, MAX_PAYLOAD).unwrap_err();
    assert_eq!(
        e,
        WireError::Oversize {
            frame: "ping",
            len: u32::MAX,
            max: MAX_PAYLOAD
        }
    );
    assert!(e.to_string().contains("4294967295"), "{e}");
    // The per-state limit: a big hello before authentication.
    let mut big = hello();
    big.probes[0].reason = "x".repeat(MAX_HELLO_PAYLOAD as usize);
    let b = frame(&Message::Hello(big));
    assert!(matches!(
        decode_frame(&b, MAX_HELLO_PAYLOAD),
        Err(WireError::Oversize { frame: "hello", .. })
    ));
    // A limit above MAX_PAYLOAD is capped.
    let mut b = frame(&Message::Ping(Ping { seq: 1, t_ns: 2 }));
    b[8..12].copy_from_slice(&(MAX_PAYLOAD + 1).to_le_bytes());
    assert!(matches!(
        decode_frame(&b, u32::MAX),
        Err(WireError::Oversize { .. })
    ));
}

#[test]
fn bad_checksum() {
    for m in every_message() {
        let mut b = frame(&m);
        let last = b.len() - 1;
        if last < HEADER_LEN {
            continue;
        }
        b[last] ^= 0x40;
        assert!(
            matches!(
                decode_frame(&b, MAX_PAYLOAD),
                Err(WireError::BadChecksum { .. })
            ),
            "{m:?}"
        );
    }
    // The header's length is covered too.
    let mut b = frame(&every_message()[0]);
    b[12] ^= 1;
    assert!(matches!(
        decode_frame(&b, MAX_PAYLOAD),
        Err(WireError::BadChecksum { frame: "hello", .. })
    ));
}

/// Re-frames a payload with a valid checksum, so the payload checks are
/// reached.
fn reframe(ftype: u8, payload: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&MAGIC);
    b.push(PROTOCOL_VERSION);
    b.push(ftype);
    b.extend_from_slice(&[0, 0]);
    b.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    let h = crc32_ieee(&b, payload);
    b.extend_from_slice(&h.to_le_bytes());
    b.extend_from_slice(payload);
    b
}

fn crc32_ieee(head: &[u8], payload: &[u8]) -> u32 {
    // CRC-32 (IEEE), bitwise: the test does not trust the implementation.
    let mut crc = !0u32;
    for &byte in head.iter().chain(payload) {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn checksum_is_crc32_ieee_over_header_and_payload() {
    let m = Message::Ping(Ping { seq: 1, t_ns: 2 });
    let b = frame(&m);
    assert_eq!(reframe(5, &b[HEADER_LEN..]), b);
}

#[test]
fn truncated_payloads_are_malformed() {
    for m in every_message() {
        let b = frame(&m);
        let payload = &b[HEADER_LEN..];
        for cut in 0..payload.len() {
            let r = decode_frame(&reframe(b[5], &payload[..cut]), MAX_PAYLOAD);
            match r {
                Err(WireError::Malformed { .. }) => {}
                // A batch whose header survived: its events fail to decode.
                Ok(Some((Message::Events(b), _))) => {
                    assert!(b.decode(None).is_err(), "{m:?} cut at {cut}")
                }
                other => panic!("{m:?} cut at {cut}: {other:?}"),
            }
        }
    }
}

#[test]
fn hostile_counts_and_names() {
    // An events batch announcing 2^32-1 events in 3 bytes.
    let mut p = Vec::new();
    p.extend_from_slice(&[1]); // seq
    p.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]); // count
    p.extend_from_slice(&[0, 0, 0, 0]);
    let e = decode_frame(&reframe(3, &p), MAX_PAYLOAD).unwrap_err();
    assert!(e.to_string().contains("4294967295"), "{e}");
    // Events whose codec bytes are garbage.
    let b = EventBatch {
        seq: 1,
        count: 2,
        ts_first: 0,
        data: vec![0x1f, 0, 0x1f, 0],
    };
    assert!(matches!(
        b.decode(None),
        Err(WireError::Malformed {
            frame: "events",
            ..
        })
    ));
    // A hello whose node name has a newline, or is empty.
    for name in ["bad\nname", "", &"n".repeat(MAX_NAME_LEN + 1)] {
        let mut h = hello();
        h.node.name = name.into();
        let e = decode_frame(&frame(&Message::Hello(h)), MAX_PAYLOAD).unwrap_err();
        assert!(
            matches!(e, WireError::Malformed { frame: "hello", .. }),
            "{name:?}: {e}"
        );
    }
    let mut h = hello();
    h.token = "t".repeat(MAX_TOKEN_LEN + 1);
    assert!(decode_frame(&frame(&Message::Hello(h)), MAX_PAYLOAD).is_err());
}

#[test]
fn fatal_goodbyes() {
    assert!(ByeCode::Auth.is_fatal());
    assert!(ByeCode::Version.is_fatal());
    assert!(!ByeCode::Done.is_fatal());
    assert!(!ByeCode::Malformed.is_fatal());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode_frame(&bytes, MAX_PAYLOAD);
        let mut framed = bytes.clone();
        for t in 1..=7u8 {
            framed = reframe(t, &bytes);
            if let Ok(Some((Message::Events(b), _))) = decode_frame(&framed, MAX_PAYLOAD) {
                let _ = b.decode(Some(1));
            }
        }
        let _ = framed;
    }

    #[test]
    fn mutated_frames_never_panic(idx in any::<usize>(), val in any::<u8>(), which in 0usize..10) {
        let msgs = every_message();
        let m = &msgs[which % msgs.len()];
        let mut b = frame(m);
        let i = idx % b.len();
        b[i] = val;
        if let Ok(Some((Message::Events(batch), _))) = decode_frame(&b, MAX_PAYLOAD) {
            let _ = batch.decode(None);
        }
        // Also with a fixed-up checksum, to reach the payload decoders.
        let fixed = reframe(b[5], &b[HEADER_LEN..]);
        if let Ok(Some((Message::Events(batch), _))) = decode_frame(&fixed, MAX_PAYLOAD) {
            let _ = batch.decode(None);
        }
    }
}
