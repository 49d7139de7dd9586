//! Exporters: JSON Lines (the user contract), a one-line-per-event text
//! printer, and Perfetto / Chrome trace-event JSON.

pub mod jsonl;
pub mod perfetto;
pub mod text;

pub use jsonl::{to_jsonl_line, JsonlWriter};
pub use perfetto::{Evidence, Finding, PerfettoWriter};
pub use text::{format_event, TextWriter};
