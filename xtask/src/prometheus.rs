//! Debian's `prometheus` (the server and `promtool`) for the metrics test
//! (`tracer-user/tests/metrics_prometheus.rs`): installed with apt when
//! missing (idempotent). On a machine running systemd, the service the
//! package enables is stopped and disabled again: the test starts its own
//! server on a free loopback port with a temporary config and data dir.

use anyhow::{bail, Result};

use crate::step::{self, cmd};

const BINARIES: [&str; 2] = ["prometheus", "promtool"];

fn on_path(bin: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()))
}

pub fn ensure_installed() -> Result<()> {
    if BINARIES.iter().all(|b| on_path(b)) {
        let v = step::output(&mut cmd("prometheus", ["--version"])).unwrap_or_default();
        eprintln!(
            "    prometheus present: {}",
            v.lines().next().unwrap_or("(version unknown)")
        );
        return Ok(());
    }
    if !step::is_root() {
        bail!(
            "prometheus is not installed and this is not root: run\n  \
             sudo apt-get install -y --no-install-recommends prometheus"
        );
    }
    eprintln!("    installing Debian's prometheus (server and promtool) for the metrics test");
    step::run(cmd("apt-get", ["update", "-q"]).env("DEBIAN_FRONTEND", "noninteractive"))?;
    step::run(
        cmd(
            "apt-get",
            [
                "install",
                "-y",
                "-q",
                "--no-install-recommends",
                "prometheus",
            ],
        )
        .env("DEBIAN_FRONTEND", "noninteractive"),
    )?;
    if std::path::Path::new("/run/systemd/system").is_dir() {
        eprintln!("    the test runs its own server: stopping the service the package started");
        step::run(&mut cmd(
            "systemctl",
            ["disable", "--now", "prometheus.service"],
        ))?;
    }
    if let Some(b) = BINARIES.iter().find(|b| !on_path(b)) {
        bail!("`{b}` is still not on PATH after installing prometheus");
    }
    Ok(())
}
