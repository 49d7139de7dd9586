//! The pure core of vfio-trace.
//!
//! Data flows one way: probe records → `decode` → typed [`event::Event`] →
//! engine → views. Everything here is deterministic and runs without root, so
//! it is tested on hand-built and recorded inputs.

pub mod check;
pub mod decode;
pub mod engine;
pub mod event;
pub mod export;
pub mod tracefile;
pub mod wire;
