//! Event sources. Every source yields batches of the same typed `Event`s.

pub mod groups;
pub mod health;
pub mod live;
