//! A node whose stream stops early makes a recording incomplete: a real
//! recorder with a real agent over a unix socket (synthetic events, no
//! root needed); the agent is killed with SIGKILL mid-stream, the recorder
//! stopped cleanly. The file itself is whole (end marker), but it holds a
//! `stream_gap` event on the agent's node, so `check` on it is never clean.

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_vfio-trace");

struct Reaped(Child);
impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn signal(c: &Child, sig: i32) {
    // SAFETY: a signal to our own child.
    unsafe { libc::kill(c.id() as i32, sig) };
}

#[test]
fn an_agent_lost_mid_stream_leaves_a_gap_in_the_recording() {
    let dir = std::env::temp_dir().join(format!("vfio-trace-lost-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("lost.vtrace");
    let sock = dir.join("agg.sock");
    let listen = format!("unix:{}", sock.display());

    let mut recorder = Reaped(
        Command::new(BIN)
            .args(["record", "--no-local", "--quiet", "--listen", &listen, "-o"])
            .arg(&file)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !sock.exists() {
        assert!(Instant::now() < deadline, "the recorder never listened");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut agent = Reaped(
        Command::new(BIN)
            .args(["agent", "--node", "lostnode", "--connect", &listen])
            .args(["--synthetic", "2000"])
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Let events flow into the file, then kill the agent mid-stream.
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0) < 8 * 1024 {
        assert!(Instant::now() < deadline, "the recording did not grow");
        std::thread::sleep(Duration::from_millis(100));
    }
    signal(&agent.0, libc::SIGKILL);
    let _ = agent.0.wait();
    std::thread::sleep(Duration::from_millis(1500));
    signal(&recorder.0, libc::SIGINT);
    let out = std::mem::replace(&mut recorder.0, Command::new("true").spawn().unwrap())
        .wait_with_output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "the recorder stops cleanly: {stderr}"
    );

    let export = Command::new(BIN)
        .args(["export", "--format", "jsonl"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(export.status.code(), Some(0), "the file itself is whole");
    let gaps: Vec<Value> = String::from_utf8_lossy(&export.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["kind"] == "stream_gap")
        .collect();
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    assert_eq!(gaps[0]["node"], "lostnode");
    assert!(gaps[0]["cause"]
        .as_str()
        .unwrap()
        .starts_with("agent lost mid-stream"));

    let check = Command::new(BIN)
        .args(["check", "--format", "json"])
        .arg(&file)
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&check.stdout).unwrap();
    assert_ne!(check.status.code(), Some(0));
    assert_eq!(report["summary"]["complete"], false);
    assert_ne!(report["summary"]["verdict"], "clean");
    let reasons = report["summary"]["incomplete_reasons"].to_string();
    assert!(
        reasons.contains("node lostnode: stream gap: agent lost mid-stream"),
        "{reasons}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
