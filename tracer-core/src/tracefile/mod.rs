//! The `.vtrace` file: a checksummed self-describing header, then framed,
//! checksummed, zstd-compressed chunks of compactly encoded events. See
//! `docs/trace-format.md` for the byte layout.
//!
//! - [`TraceWriter`]: append events, `flush()` at least every second.
//! - [`Recorder`]: a file recorded live (`record`, the UI's `r`) over a
//!   `TraceWriter`: flush cadence, node table, full-disk handling.
//! - [`TraceReader`]: a streaming iterator of `Result<Event, TraceError>`,
//!   strict or salvaging ([`ReadMode`]).
//! - [`merge`]: several files (host + guests) as one timeline.

pub mod align;
pub(crate) mod codec;
mod error;
mod frame;
mod header;
pub mod inputs;
pub mod merge;
mod reader;
mod recorder;
mod source;
pub mod synth;
pub(crate) mod varint;
mod writer;

pub use error::{TraceError, TraceWarning};
pub use frame::{MAX_CHUNK_PAYLOAD, MAX_CHUNK_RAW};
pub use header::{node_name, TraceHeader, FORMAT_VERSION, MAGIC, MAX_HEADER_LEN, MIN_READ_VERSION};
pub use inputs::{read_inputs, InputReport, OpenError, ReadReport};
pub use merge::{aligned_ns, Timeline};
pub use reader::{read_all, ReadMode, TraceReader};
pub use recorder::{RecordError, Recorded, Recorder, FLUSH_EVERY, FLUSH_TICK};
pub use writer::{TraceWriter, Truncate, WriteFailure, WriterOptions, MAX_EVENT_BYTES};

/// The conventional file name extension.
pub const FILE_EXTENSION: &str = "vtrace";
