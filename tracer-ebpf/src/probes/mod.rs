//! One module per subsystem.

pub mod ioctl;
