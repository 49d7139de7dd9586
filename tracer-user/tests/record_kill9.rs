//! Crash safety of `record`: a real recorder, fed by a real agent over a
//! unix socket (synthetic events, so no root is needed), is killed with
//! SIGKILL mid-run. The file must still open: `export` yields every event up
//! to the last complete chunk and warns naming the byte offset where the
//! recording stopped; `--salvage` reads the same prefix.
//!
//! The loss window (the kill's time minus the newest event's `ts_ns` in the
//! file: synthetic events are stamped with this machine's CLOCK_MONOTONIC)
//! is printed and must stay under 1.5 s (chunks are flushed at least every
//! second), in the first seconds of a recording too.

mod record_support;

use std::{
    path::PathBuf,
    process::Command,
    time::{Duration, Instant},
};

use record_support::{agent, read, recorder, temp_dir, BIN};

/// Events generated more than this long before the kill are in the file.
const MAX_LOSS: Duration = Duration::from_millis(1500);

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

/// The kill's time minus the newest event's, asserted under [`MAX_LOSS`].
fn loss_window(file: &std::path::Path, killed_at: u64, what: &str) -> Duration {
    let r = read(file);
    let newest = r.ts.iter().copied().max().unwrap_or(0);
    let window = Duration::from_nanos(killed_at.saturating_sub(newest));
    println!(
        "loss window after kill -9 ({what}): {:.3} s ({} events in the file)",
        window.as_secs_f64(),
        r.ts.len()
    );
    assert!(
        window <= MAX_LOSS,
        "{what}: the newest event in the file is {:.3} s older than the kill ({} events)",
        window.as_secs_f64(),
        r.ts.len()
    );
    window
}

#[test]
fn a_recorder_killed_with_sigkill_leaves_a_readable_file() {
    let dir = temp_dir("kill9");
    let file = dir.join("killed.vtrace");
    let (mut rec, _rec_err, listen) = recorder(&dir, &file, &[]);
    let _agent = agent(&listen, 20000);
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
    let killed_at = rec.kill9();
    loss_window(&file, killed_at, "after a few seconds");

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

#[test]
fn killed_in_its_first_seconds_the_header_and_first_events_are_on_disk() {
    // Three phases against the flush schedule: 1.2 s after the first events
    // (the first chunk must be written by then), 1.5 s and 1.8 s.
    for (i, after_ms) in [1200u64, 1500, 1800].into_iter().enumerate() {
        let dir = temp_dir(&format!("kill9-early{i}"));
        let file = dir.join("early.vtrace");
        let (mut rec, _rec_err, listen) = recorder(&dir, &file, &[]);
        // The header is written before the recorder says it is recording.
        let r = read(&file);
        assert!(
            r.ts.is_empty() && !r.complete,
            "a header and nothing else yet"
        );
        let (_agent, _agent_err) = agent(&listen, 20000);
        // Events flow from here (the agent made some before it connected).
        std::thread::sleep(Duration::from_millis(after_ms));
        let killed_at = rec.kill9();
        let what = format!("{:.1} s after the first events", after_ms as f64 / 1000.0);
        loss_window(&file, killed_at, &what);
        assert!(!read(&file).ts.is_empty(), "{what}: no event on disk");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
