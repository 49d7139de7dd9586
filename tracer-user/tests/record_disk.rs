//! `record` and the file system: the byte count it prints is the file's
//! size; a full disk (a small tmpfs, mounted by the test: root) stops the
//! recording with an error naming the file, where it ends and the events
//! kept and lost, exit 2, and a file that keeps every complete chunk, reads
//! to its last event and does not look complete.
//!
//! The tmpfs test needs root (mount). Where it cannot run it says why and
//! skips, except under CI (`CI` set), where a skip is a failure.

mod record_support;

use std::time::Duration;

use record_support::{agent, number_after, read, recorder, temp_dir, Tmpfs};

#[test]
fn the_byte_count_printed_is_the_files_size() {
    let dir = temp_dir("rec-size");
    let file = dir.join("sized.vtrace");
    let (mut rec, mut lines, listen) = recorder(&dir, &file, &["--duration", "3s"]);
    let _agent = agent(&listen, 20000);
    let st = rec.0.wait().expect("wait");
    let stderr = lines.rest();
    assert_eq!(st.code(), Some(0), "{stderr}");
    let last = stderr
        .lines()
        .rfind(|l| l.contains("recorded "))
        .unwrap_or_else(|| panic!("no summary line in {stderr}"));
    let printed: u64 = last
        .split(" bytes)")
        .next()
        .and_then(|t| t.rsplit('(').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no byte count in {last}"));
    let size = std::fs::metadata(&file).expect("stat").len();
    assert_eq!(printed, size, "{last}");
    let events = number_after(last, "recorded ");
    let r = read(&file);
    assert!(r.complete && r.error_at.is_none(), "{last}");
    assert_eq!(r.ts.len() as u64, events, "{last}");
    assert!(events > 0, "{last}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_full_disk_stops_the_recording_and_keeps_every_complete_chunk() {
    let Some(fs) = Tmpfs::mount_or_skip("full-disk", "1m") else {
        return;
    };
    let file = fs.mnt.join("full.vtrace");
    // The socket outside the tmpfs, the file in it.
    let (mut rec, mut lines, listen) = recorder(&fs.dir, &file, &[]);
    // ~300 KiB of chunks a second: a few complete chunks, then the disk is full.
    let _agent = agent(&listen, 50000);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let st = loop {
        if let Some(st) = rec.0.try_wait().expect("wait") {
            break st;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the recorder did not stop on a full disk"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let stderr = lines.rest();
    println!("{stderr}");
    assert_eq!(st.code(), Some(2), "a full disk is an error: {stderr}");
    let err = stderr
        .lines()
        .find(|l| l.contains("vfio-trace: error:"))
        .unwrap_or_else(|| panic!("no error line in {stderr}"));
    assert!(
        err.contains(&file.display().to_string()) && err.contains("No space left on device"),
        "the error names the file and the cause: {err}"
    );
    assert_eq!(err.matches("os error").count(), 1, "said once: {err}");
    assert!(
        err.contains("no end marker") || err.contains("incomplete"),
        "{err}"
    );
    let offset = number_after(err, "at byte ");
    let kept = number_after(err, "kept ");
    let lost = number_after(err, "lost ");
    assert!(
        kept > 0,
        "complete chunks before the full disk are kept: {err}"
    );
    assert!(lost > 0, "{err}");

    let size = std::fs::metadata(&file).expect("stat").len();
    assert_eq!(size, offset, "cut back to the last complete chunk: {err}");
    let r = read(&file);
    assert_eq!(r.ts.len() as u64, kept, "every kept event reads: {err}");
    assert!(
        !r.complete,
        "a file cut by a full disk never looks complete"
    );
    assert_eq!(r.error_at, Some(offset), "readers say where it was cut");
}
