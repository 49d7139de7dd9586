//! The agent protocol: how a `vfio-trace agent` (a guest, or another host)
//! streams its events to an aggregator (`live`/`record --listen`). Pure
//! framing and payload codecs, no I/O: `tracer-user/src/net` drives them
//! over vsock, TCP, unix sockets and virtio-serial. The byte layout is
//! documented in `docs/agent-protocol.md`.
//!
//! Every frame is a 16-byte [`FrameHeader`] then a payload:
//!
//! ```text
//! magic    4 B  "VTAW"
//! version  u8   PROTOCOL_VERSION (1)
//! type     u8   FrameType
//! flags    u16  reserved, 0
//! len      u32  payload bytes (≤ the reader's limit, at most MAX_PAYLOAD)
//! crc      u32  CRC-32 (IEEE) over header bytes 0..12, then the payload
//! ```
//!
//! A reader validates the header (magic, version, type, flags, length
//! against its limit) *before* it allocates or reads the payload, then the
//! checksum, then the payload's own fields; every failure is a typed
//! [`WireError`] naming the offending value. Nothing here panics on input.
//!
//! Conversation: agent → `Hello`; aggregator → `Ping`s (clock sync), agent →
//! `Pong`s; aggregator → `Welcome` (the node id it assigned) or `Goodbye`
//! (why not); then agent → `Events`/`Health`, aggregator → `Ping` every
//! second; either side → `Goodbye` before closing.

mod batch;
mod clock;
mod error;
mod frame;
mod message;

pub use batch::{BatchEncoder, EventBatch, MIN_EVENT_BYTES};
pub use clock::{ClockEstimate, ClockSample};
pub use error::WireError;
pub use frame::{
    decode_frame, encode_frame, parse_header, FrameHeader, FrameType, HEADER_LEN, MAGIC,
    MAX_HELLO_PAYLOAD, MAX_PAYLOAD, PROTOCOL_VERSION,
};
pub use message::{
    AgentHealth, ByeCode, Goodbye, Hello, Message, Ping, Pong, Welcome, MAX_NAME_LEN, MAX_TOKEN_LEN,
};
