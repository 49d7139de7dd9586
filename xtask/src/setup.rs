#[derive(clap::Args, Debug)]
pub struct SetupArgs {}

pub fn run(_a: &SetupArgs) -> anyhow::Result<()> {
    anyhow::bail!("not built yet")
}
