//! Frame payloads. Integers are LEB128 varints (`v`), signed ones zigzag
//! (`z`); strings are `v` length + UTF-8 (`s`). Control frames (all but
//! `Events`) may grow new fields at their end: readers ignore trailing bytes.

use super::batch::EventBatch;
use super::error::WireError;
use super::frame::FrameType;
use crate::event::{NodeId, NodeInfo, NodeRole, ProbeState, ProbeStatus};
use crate::tracefile::varint::{put_i64, put_u64, Cursor, DecodeResult};

/// Longest node name (bytes).
pub const MAX_NAME_LEN: usize = 64;
/// Longest shared token (bytes).
pub const MAX_TOKEN_LEN: usize = 256;

/// Every frame, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    Hello(Hello),
    Welcome(Welcome),
    Events(EventBatch),
    Health(AgentHealth),
    Ping(Ping),
    Pong(Pong),
    Goodbye(Goodbye),
}

/// Agent → aggregator, first frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hello {
    /// The agent's `vfio-trace` version.
    pub tool_version: String,
    /// Name, role, kernel, machine and CLOCK_REALTIME − CLOCK_MONOTONIC.
    pub node: NodeInfo,
    /// The agent's CLOCK_MONOTONIC when it sent the hello.
    pub mono_ns: u64,
    /// Shared secret (required over TCP), empty when none.
    pub token: String,
    /// The agent's probes at attach time.
    pub probes: Vec<ProbeStatus>,
}

/// Aggregator → agent: accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Welcome {
    /// The id the aggregator gave this node (events are renumbered to it).
    pub node_id: NodeId,
    /// The aggregator's node name.
    pub aggregator: String,
    pub tool_version: String,
    /// Largest payload the aggregator accepts.
    pub max_payload: u32,
}

/// Agent → aggregator, every second: the agent's own transport counters
/// (probe drops travel as ordinary `drops` events). All cumulative.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AgentHealth {
    /// Events written to a connection.
    pub events_sent: u64,
    /// Events dropped because the buffer was full while disconnected/slow.
    pub events_dropped: u64,
    /// Events in frames being written when a connection died (may or may
    /// not have arrived).
    pub events_lost: u64,
    pub reconnects: u64,
    /// Events and bytes waiting in the agent's buffer.
    pub buffered_events: u64,
    pub buffered_bytes: u64,
}

/// Aggregator → agent: a clock probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ping {
    pub seq: u32,
    /// The aggregator's CLOCK_MONOTONIC at send.
    pub t_ns: u64,
}

/// Agent → aggregator: the answer, sent as soon as the ping is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pong {
    pub seq: u32,
    /// The ping's `t_ns`, echoed.
    pub t_ns: u64,
    /// The agent's CLOCK_MONOTONIC when it answered.
    pub agent_ns: u64,
}

/// Why a side closes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByeCode {
    /// Normal end (the agent or aggregator is stopping).
    Done,
    /// Protocol version not spoken.
    Version,
    /// Missing or wrong token.
    Auth,
    /// A frame failed validation.
    Malformed,
    /// The hello was refused (bad name, ...).
    Rejected,
    /// A code this build does not know.
    Other(u8),
}

impl ByeCode {
    fn to_u8(self) -> u8 {
        match self {
            ByeCode::Done => 0,
            ByeCode::Version => 1,
            ByeCode::Auth => 2,
            ByeCode::Malformed => 3,
            ByeCode::Rejected => 4,
            ByeCode::Other(c) => c,
        }
    }

    fn from_u8(c: u8) -> Self {
        match c {
            0 => ByeCode::Done,
            1 => ByeCode::Version,
            2 => ByeCode::Auth,
            3 => ByeCode::Malformed,
            4 => ByeCode::Rejected,
            c => ByeCode::Other(c),
        }
    }

    /// A refusal the agent should not retry (it would be refused again).
    pub fn is_fatal(self) -> bool {
        matches!(self, ByeCode::Version | ByeCode::Auth | ByeCode::Rejected)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Goodbye {
    pub code: ByeCode,
    pub message: String,
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_u64(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn role_id(r: NodeRole) -> u8 {
    match r {
        NodeRole::Host => 0,
        NodeRole::Guest => 1,
        NodeRole::Mixed => 2,
    }
}

fn state_id(s: ProbeState) -> u8 {
    match s {
        ProbeState::Attached => 0,
        ProbeState::MissingSymbol => 1,
        ProbeState::Unsupported => 2,
        ProbeState::Failed => 3,
        ProbeState::Detached => 4,
    }
}

/// Checks a node name: 1..=64 bytes, no control characters or whitespace.
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("node name is empty".into());
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!(
            "node name of {} bytes is longer than {MAX_NAME_LEN}",
            name.len()
        ));
    }
    if let Some(c) = name.chars().find(|c| c.is_control() || c.is_whitespace()) {
        return Err(format!("node name {name:?} contains {c:?}"));
    }
    Ok(())
}

impl Message {
    pub fn frame_type(&self) -> FrameType {
        match self {
            Message::Hello(_) => FrameType::Hello,
            Message::Welcome(_) => FrameType::Welcome,
            Message::Events(_) => FrameType::Events,
            Message::Health(_) => FrameType::Health,
            Message::Ping(_) => FrameType::Ping,
            Message::Pong(_) => FrameType::Pong,
            Message::Goodbye(_) => FrameType::Goodbye,
        }
    }

    pub(crate) fn encode_payload(&self, out: &mut Vec<u8>) {
        match self {
            Message::Hello(h) => {
                put_str(out, &h.tool_version);
                put_str(out, &h.node.name);
                out.push(role_id(h.node.role));
                put_str(out, &h.node.kernel);
                put_str(out, &h.node.machine);
                put_i64(out, h.node.clock_offset_ns);
                put_u64(out, h.mono_ns);
                put_str(out, &h.token);
                put_u64(out, h.probes.len() as u64);
                for p in &h.probes {
                    put_str(out, &p.probe);
                    put_str(out, &p.attach);
                    out.push(state_id(p.status));
                    out.push(u8::from(p.required));
                    put_str(out, &p.reason);
                    put_u64(out, p.hits);
                }
            }
            Message::Welcome(w) => {
                put_u64(out, u64::from(w.node_id));
                put_str(out, &w.aggregator);
                put_str(out, &w.tool_version);
                put_u64(out, u64::from(w.max_payload));
            }
            Message::Events(b) => b.encode_payload(out),
            Message::Health(h) => {
                for v in [
                    h.events_sent,
                    h.events_dropped,
                    h.events_lost,
                    h.reconnects,
                    h.buffered_events,
                    h.buffered_bytes,
                ] {
                    put_u64(out, v);
                }
            }
            Message::Ping(p) => {
                put_u64(out, u64::from(p.seq));
                put_u64(out, p.t_ns);
            }
            Message::Pong(p) => {
                put_u64(out, u64::from(p.seq));
                put_u64(out, p.t_ns);
                put_u64(out, p.agent_ns);
            }
            Message::Goodbye(g) => {
                out.push(g.code.to_u8());
                put_str(out, &g.message);
            }
        }
    }

    /// Decodes a payload whose header and checksum were already validated.
    pub fn decode_payload(ftype: FrameType, p: &[u8]) -> Result<Message, WireError> {
        if ftype == FrameType::Events {
            return EventBatch::decode_payload(p).map(Message::Events);
        }
        let mut c = Cursor::new(p, 0);
        let r = match ftype {
            FrameType::Hello => decode_hello(&mut c).map(Message::Hello),
            FrameType::Welcome => decode_welcome(&mut c).map(Message::Welcome),
            FrameType::Health => decode_health(&mut c).map(Message::Health),
            FrameType::Ping => (|| {
                Ok(Message::Ping(Ping {
                    seq: c.u32()?,
                    t_ns: c.u64()?,
                }))
            })(),
            FrameType::Pong => (|| {
                Ok(Message::Pong(Pong {
                    seq: c.u32()?,
                    t_ns: c.u64()?,
                    agent_ns: c.u64()?,
                }))
            })(),
            FrameType::Goodbye => (|| {
                Ok(Message::Goodbye(Goodbye {
                    code: ByeCode::from_u8(c.u8()?),
                    message: c.string()?,
                }))
            })(),
            FrameType::Events => unreachable!("handled above"),
        };
        r.map_err(|e| WireError::malformed(ftype.name(), e))
    }
}

fn decode_hello(c: &mut Cursor<'_>) -> DecodeResult<Hello> {
    let tool_version = c.string()?;
    let name = c.string()?;
    if let Err(e) = check_name(&name) {
        return c.err(e);
    }
    let role = match c.u8()? {
        0 => NodeRole::Host,
        1 => NodeRole::Guest,
        2 => NodeRole::Mixed,
        r => return c.err(format!("unknown node role {r}")),
    };
    let kernel = c.string()?;
    let machine = c.string()?;
    let clock_offset_ns = c.i64()?;
    let mono_ns = c.u64()?;
    let token = c.string()?;
    if token.len() > MAX_TOKEN_LEN {
        return c.err(format!(
            "token of {} bytes is longer than {MAX_TOKEN_LEN}",
            token.len()
        ));
    }
    // Each entry takes at least 7 bytes, so `len` bounds the allocation.
    let n = c.len()?;
    let mut probes = Vec::with_capacity(n / 7);
    for _ in 0..n {
        let probe = c.string()?;
        let attach = c.string()?;
        let status = match c.u8()? {
            0 => ProbeState::Attached,
            1 => ProbeState::MissingSymbol,
            2 => ProbeState::Unsupported,
            3 => ProbeState::Failed,
            4 => ProbeState::Detached,
            s => return c.err(format!("unknown probe state {s}")),
        };
        let required = c.bool()?;
        let reason = c.string()?;
        let hits = c.u64()?;
        probes.push(ProbeStatus {
            probe,
            attach,
            status,
            required,
            reason,
            hits,
        });
    }
    Ok(Hello {
        tool_version,
        node: NodeInfo {
            name,
            role,
            kernel,
            machine,
            clock_offset_ns,
        },
        mono_ns,
        token,
        probes,
    })
}

fn decode_welcome(c: &mut Cursor<'_>) -> DecodeResult<Welcome> {
    Ok(Welcome {
        node_id: c.u16()?,
        aggregator: c.string()?,
        tool_version: c.string()?,
        max_payload: c.u32()?,
    })
}

fn decode_health(c: &mut Cursor<'_>) -> DecodeResult<AgentHealth> {
    Ok(AgentHealth {
        events_sent: c.u64()?,
        events_dropped: c.u64()?,
        events_lost: c.u64()?,
        reconnects: c.u64()?,
        buffered_events: c.u64()?,
        buffered_bytes: c.u64()?,
    })
}
