//! `--metrics ADDR` and `--findings FILE` for live sessions (`live`,
//! `record`, `check`, and the aggregator of `--listen`).
//!
//! Data flows one way: the session's events → [`observer::Observer`]
//! (an engine of its own, counts, findings raised once) → a published
//! copy of [`counts::Counts`] → [`server`] renders it in the Prometheus
//! text format ([`text`]) per scrape. The event path never waits for a
//! scraper.

pub mod counts;
pub mod observer;
pub mod server;
pub mod text;

pub use observer::{ObserveConfig, Observer};
