//! The VM lab: boots real kernels in QEMU with VFIO and virtio-iommu.

#[derive(clap::Args, Debug)]
pub struct LabArgs {
    /// Scenario to run (see --list).
    pub scenario: Option<String>,
    /// List the scenarios.
    #[arg(long)]
    pub list: bool,
}

pub fn run(_args: &LabArgs) -> anyhow::Result<()> {
    anyhow::bail!("the lab is not built yet")
}
