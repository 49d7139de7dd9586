//! `nested`: an L1 host (KVM inside TCG via AMD SVM) passes edu through to
//! an L2 guest with its own virtio-iommu; the exerciser runs in L2.

use anyhow::{bail, Result};

use super::Scenario;
use crate::lab::Ctx;

pub const SCENARIO: Scenario = Scenario {
    name: "nested",
    about: "L1 host (KVM in TCG) passes edu to an L2 guest with its own virtio-iommu; exerciser in L2; ~90 s",
    run,
};

fn run(_ctx: &Ctx) -> Result<()> {
    bail!("nested is not built yet")
}
