#[derive(clap::Args, Debug)]
pub struct TestArgs {}

pub fn run(_a: &TestArgs) -> anyhow::Result<()> {
    anyhow::bail!("not built yet")
}
