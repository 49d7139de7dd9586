//! Remote sources: agents stream their events to an aggregator over vsock,
//! TCP, unix sockets or virtio-serial, in the framing of
//! `tracer_core::wire` (docs/agent-protocol.md).
//!
//! - [`agent`]: the client (`vfio-trace agent --connect ADDR`).
//! - [`aggregator`]: the listener side (`live`/`record --listen ADDR`), a
//!   source next to the local probes.
//! - [`transport`], [`fd`], [`addr`]: byte streams on every transport.
//!
//! Only `crate::node` is used from the rest of the crate, so benches and
//! tests can include this module by path.

pub mod addr;
pub mod agent;
pub mod aggregator;
pub mod fd;
pub mod framed;
pub mod transport;

pub use addr::Addr;
