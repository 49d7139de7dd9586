//! Live probes: the declarative attach table, loading and attaching the eBPF
//! object, and reading its health counters.

pub mod btf;
pub mod loader;
pub mod table;
pub mod tracefs;

pub use loader::{LoadOptions, Probes};
