//! `arm64-swmsi`: virt + GICv3 ITS, virtio-iommu on virtio-mmio (patched
//! DTB) so MSIs go through the software-MSI window at 0x8000000.

use anyhow::{bail, Result};

use super::Scenario;
use crate::lab::Ctx;

pub const SCENARIO: Scenario = Scenario {
    name: "arm64-swmsi",
    about: "arm64 virt + GICv3 ITS, virtio-iommu on virtio-mmio, MSIs via the SW-MSI window 0x8000000; ~60 s",
    run,
};

fn run(_ctx: &Ctx) -> Result<()> {
    bail!("arm64-swmsi is not built yet")
}
