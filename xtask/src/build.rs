#[derive(clap::Args, Debug)]
pub struct BuildArgs {}

pub fn run(_a: &BuildArgs) -> anyhow::Result<()> {
    anyhow::bail!("not built yet")
}
