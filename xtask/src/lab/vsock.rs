//! The vsock transport on a real kernel: in the nested lab's L1 (which has
//! `vsock_loopback`), `vfio-trace record --no-local --listen vsock:PORT`
//! takes an agent connecting to `vsock:1:PORT` (VMADDR_CID_LOCAL); every
//! event the agent says it sent must be in the recording under its node.
//! This machine has no vhost-vsock, so guest↔host vsock is not tried.

use std::{fs, path::Path};

use anyhow::{anyhow, Context, Result};
use tracer_core::tracefile::TraceReader;

use super::rules::Line;

/// /init commands (L1, after its main work); results in $LAB_OUT/vsock-*.
pub const L1_SCRIPT: &str = r#"
vsock_check() {
  [ -x $LAB_BIN/vfio-trace ] || return 0
  say "vsock: an agent to an aggregator over vsock loopback at $(up)s"
  $LAB_BIN/vfio-trace record --no-local --listen vsock:5000 --quiet -o $LAB_OUT/vsock.vft > $LAB_OUT/vsock-aggregator.log 2>&1 &
  VA=$!
  sleep 1
  $LAB_BIN/vfio-trace agent --connect vsock:1:5000 --node vsock-agent --synthetic 20000 --duration 2s > $LAB_OUT/vsock-agent.log 2>&1
  echo $? > $LAB_OUT/vsock-agent.rc
  kill -INT $VA
  wait $VA
  echo $? > $LAB_OUT/vsock-aggregator.rc
}
"#;

pub fn check(out: &Path) -> Line {
    let name = "vsock transport (L1 loopback): every event the agent sent is recorded".to_string();
    (name, judge(out))
}

fn judge(out: &Path) -> Result<String> {
    let rd = |f: &str| fs::read_to_string(out.join(f)).unwrap_or_default();
    let (agent_rc, agg_rc) = (rd("vsock-agent.rc"), rd("vsock-aggregator.rc"));
    if agent_rc.trim() != "0" || agg_rc.trim() != "0" {
        return Err(anyhow!(
            "agent exit {:?}, aggregator exit {:?}: {} | {}",
            agent_rc.trim(),
            agg_rc.trim(),
            rd("vsock-agent.log").trim(),
            rd("vsock-aggregator.log").trim()
        ));
    }
    let log = rd("vsock-agent.log");
    let sent: u64 = log
        .split("sent ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("no `sent N` in the agent's log: {log}"))?;
    let mut r = TraceReader::open(out.join("vsock.vft")).map_err(|e| anyhow!("vsock.vft: {e}"))?;
    let mut counts = Vec::<u64>::new();
    for e in r.by_ref() {
        let e = e.map_err(|e| anyhow!("vsock.vft: {e}"))?;
        let i = usize::from(e.node);
        if counts.len() <= i {
            counts.resize(i + 1, 0);
        }
        counts[i] += 1;
    }
    let node = r
        .nodes()
        .iter()
        .position(|n| n.name == "vsock-agent")
        .context("no node vsock-agent in the recording")?;
    let got = counts.get(node).copied().unwrap_or(0);
    if sent == 0 || got != sent {
        return Err(anyhow!("agent sent {sent}, recorded {got}"));
    }
    Ok(format!(
        "{sent} events sent over vsock:1:5000, {got} recorded"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The verdict's failure text is what the `String` errors read.
    #[test]
    fn failures_read_as_before() {
        let dir = std::env::temp_dir().join(format!("xtask-vsock-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let put = |f: &str, t: &str| fs::write(dir.join(f), t).unwrap();
        let why = || format!("{:#}", check(&dir).1.unwrap_err());
        put("vsock-agent.rc", "1\n");
        put("vsock-aggregator.rc", "0\n");
        put("vsock-agent.log", "refused\n");
        put("vsock-aggregator.log", "listening\n");
        assert_eq!(
            why(),
            r#"agent exit "1", aggregator exit "0": refused | listening"#
        );
        put("vsock-agent.rc", "0\n");
        put("vsock-agent.log", "no count\n");
        assert_eq!(why(), "no `sent N` in the agent's log: no count\n");
        put("vsock-agent.log", "sent 20 events\n");
        let e = TraceReader::open(dir.join("vsock.vft")).err().unwrap();
        assert_eq!(why(), format!("vsock.vft: {e}"));
        fs::remove_dir_all(&dir).unwrap();
    }
}
