//! Crash safety of `record`: a real recorder, fed by a real agent over a
//! unix socket (synthetic events, so no root is needed), is killed with
//! SIGKILL mid-run. The file must still open: `export` yields every event up
//! to the last complete chunk and warns naming the byte offset where the
//! recording stopped; `--salvage` reads the same prefix.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

const BIN: &str = env!("CARGO_BIN_EXE_vfio-trace");

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn export(file: &PathBuf, extra: &[&str]) -> (Option<i32>, usize, String) {
    let out = Command::new(BIN)
        .args(["export", "--format", "jsonl"])
        .args(extra)
        .arg(file)
        .output()
        .unwrap();
    let lines = String::from_utf8_lossy(&out.stdout).lines().count();
    (
        out.status.code(),
        lines,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_recorder_killed_with_sigkill_leaves_a_readable_file() {
    let dir = std::env::temp_dir().join(format!("vfio-trace-kill9-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("killed.vtrace");
    let sock = dir.join("agg.sock");
    let listen = format!("unix:{}", sock.display());

    let recorder = Killed(
        Command::new(BIN)
            .args(["record", "--no-local", "--quiet", "--listen", &listen, "-o"])
            .arg(&file)
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !sock.exists() {
        assert!(Instant::now() < deadline, "the recorder never listened");
        std::thread::sleep(Duration::from_millis(50));
    }
    let agent = Killed(
        Command::new(BIN)
            .args([
                "agent",
                "--node",
                "synthetic",
                "--connect",
                &listen,
                "--synthetic",
                "20000",
            ])
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Chunks are flushed at least every second: wait for a few.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let len = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
        if len > 64 * 1024 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the recording did not grow ({len} bytes)"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(1500));
    let mut recorder = recorder;
    // SAFETY: SIGKILL to our own child.
    unsafe { libc::kill(recorder.0.id() as i32, libc::SIGKILL) };
    let st = recorder.0.wait().unwrap();
    assert_eq!(st.code(), None, "killed by a signal");
    drop(agent);

    let size = std::fs::metadata(&file).unwrap().len();
    let (code, events, stderr) = export(&file, &[]);
    assert_eq!(code, Some(0), "a killed recording opens: {stderr}");
    assert!(
        events > 1000,
        "events up to the last complete chunk: {events}"
    );
    assert!(
        stderr.contains("warning") && stderr.contains("byte "),
        "the warning names the offset where the recording stopped: {stderr}"
    );
    let offset: u64 = stderr
        .split("byte ")
        .nth(1)
        .and_then(|t| t.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no offset in {stderr}"));
    assert!(
        offset <= size,
        "offset {offset} inside the {size}-byte file"
    );

    let (code, salvaged, stderr) = export(&file, &["--salvage"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(salvaged, events, "salvage reads the same good prefix");
    let _ = std::fs::remove_dir_all(&dir);
}
