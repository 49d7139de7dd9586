//! One module per subsystem.

pub mod ioctl;
pub mod iommu;
pub mod msi;
pub mod vfio;
pub mod viommu;
