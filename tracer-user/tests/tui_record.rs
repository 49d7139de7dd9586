//! `r` in the live view: the ingest side records every event it receives
//! between two presses, and hands an unfinished recording back when the UI
//! quits. Drives `Ingest::run` with a live channel and `UiState` changes,
//! then reads the files back with `TraceReader`. As root, a full disk (a
//! small tmpfs) while recording.

#[allow(dead_code, reason = "shared with the binary; only the UI's uses here")]
#[path = "../src/node.rs"]
mod node;
mod record_support;
#[allow(dead_code, reason = "shared with the binary; only the UI's uses here")]
#[path = "../src/sudo_owner.rs"]
mod sudo_owner;
#[allow(dead_code, reason = "the tests use part of the UI module")]
#[path = "../src/tui/mod.rs"]
mod tui;
mod tui_fixture;

use std::{path::PathBuf, sync::Arc, time::Duration};

use tokio::sync::{mpsc, watch};
use tracer_core::{event::Event, tracefile::TraceReader};
use tui::{ingest::Ingest, record::RecordConfig, snapshot::Snapshot, ui_state::UiState};

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vt-tui-rec-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn read(path: &std::path::Path) -> Vec<Event> {
    let mut r = TraceReader::open(path).expect("open recording");
    let out = r.by_ref().collect::<Result<Vec<_>, _>>().expect("read");
    assert!(r.is_complete(), "{}: no end marker", path.display());
    assert_eq!(r.nodes(), tui_fixture::nodes().as_slice());
    out
}

fn files(d: &std::path::Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(d)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .collect();
    v.sort();
    v
}

/// Waits (up to 10 s) for a snapshot that satisfies `ok`.
async fn until(rx: &mut watch::Receiver<Arc<Snapshot>>, ok: impl Fn(&Snapshot) -> bool) {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if ok(&rx.borrow_and_update()) {
                return;
            }
            rx.changed().await.expect("ingest side alive");
        }
    })
    .await
    .expect("the snapshot never showed it");
}

fn press_r(tx: &watch::Sender<UiState>) {
    tx.send_modify(|u| {
        u.record_toggles += 1;
        u.generation += 1;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_records_what_arrives_between_two_presses_and_quit_hands_it_back() {
    let d = dir("toggle");
    let evs = tui_fixture::events();
    assert!(evs.len() >= 6, "fixture too small");
    let third = evs.len() / 3;
    let (before, rest) = evs.split_at(third);
    let (during, after) = rest.split_at(third);

    let (ui_tx, ui_rx) = watch::channel(UiState::new(false));
    let (snap_tx, mut snap_rx) = watch::channel(Arc::new(Snapshot::default()));
    let (ev_tx, mut ev_rx) = mpsc::channel::<Vec<Event>>(16);
    let cfg = RecordConfig {
        dir: d.clone(),
        probes: vec![],
    };
    let ingest = tokio::spawn(async move {
        let mut ingest = Ingest::new(tui_fixture::nodes(), 1000);
        ingest.record = Some(cfg);
        ingest
            .run(
                ui_rx,
                snap_tx,
                Some(&mut ev_rx),
                None,
                std::future::pending(),
            )
            .await;
        ingest.take_recorder()
    });
    let seen = |n: usize| move |s: &Snapshot| s.header.events == n as u64;

    // Before `r`: applied, not recorded.
    ev_tx.send(before.to_vec()).await.expect("send");
    until(&mut snap_rx, seen(before.len())).await;
    assert!(files(&d).is_empty());

    // `r`: recording; the header shows it and counts what it wrote.
    press_r(&ui_tx);
    until(&mut snap_rx, |s| s.header.recording.is_some()).await;
    let (one, two) = during.split_at(during.len() / 2);
    ev_tx.send(one.to_vec()).await.expect("send");
    ev_tx.send(two.to_vec()).await.expect("send");
    until(&mut snap_rx, |s| {
        s.header
            .recording
            .as_ref()
            .is_some_and(|r| r.events == during.len() as u64)
    })
    .await;
    let rec = snap_rx
        .borrow()
        .header
        .recording
        .clone()
        .expect("recording");
    assert!(
        rec.file.starts_with("vfio-trace-") && rec.file.ends_with(".vtrace"),
        "{}",
        rec.file
    );
    // Flushed within a second or so, before it is stopped.
    let path = d.join(&rec.file);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // (No end marker yet: the strict reader ends with an error after them.)
    let partial = TraceReader::open(&path).expect("open while recording");
    let n = partial.take_while(Result::is_ok).count();
    assert_eq!(n, during.len(), "flushed at least every second");

    // `r` again: finished; later events are not in it.
    press_r(&ui_tx);
    until(&mut snap_rx, |s| {
        s.header.recording.is_none() && s.header.record_note.is_some()
    })
    .await;
    let (note, failed) = snap_rx.borrow().header.record_note.clone().expect("note");
    assert!(!failed, "{note}");
    ev_tx.send(after.to_vec()).await.expect("send");
    until(&mut snap_rx, seen(evs.len())).await;
    assert_eq!(files(&d), vec![path.clone()]);
    assert_eq!(read(&path), during, "every event received while recording");

    // `r`, then quit: the recording comes back unfinished, to be finished
    // by the caller (after the events still draining).
    press_r(&ui_tx);
    until(&mut snap_rx, |s| s.header.recording.is_some()).await;
    ev_tx.send(before.to_vec()).await.expect("send");
    until(&mut snap_rx, |s| {
        s.header.recording.as_ref().is_some_and(|r| r.events > 0)
    })
    .await;
    drop(ui_tx);
    let mut rec = ingest
        .await
        .expect("ingest")
        .expect("recording handed back");
    rec.append(after).expect("append drained");
    let second = rec.path().to_path_buf();
    tui::finish_recording(rec).expect("finish");
    assert_ne!(
        second, path,
        "a second recording never overwrites the first"
    );
    let mut both = before.to_vec();
    both.extend_from_slice(after);
    assert_eq!(read(&second), both);
    std::fs::remove_dir_all(&d).expect("cleanup");
}

#[tokio::test]
async fn r_does_nothing_in_replay_mode_and_a_bad_dir_shows_an_error() {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let r = KeyEvent::new(KeyCode::Char('r'), KeyModifiers::NONE);
    let mut u = UiState::new(true);
    tui::input::handle_key(&mut u, &Snapshot::default(), r);
    assert_eq!(u.record_toggles, 0);
    let mut u = UiState::new(false);
    tui::input::handle_key(&mut u, &Snapshot::default(), r);
    assert_eq!(u.record_toggles, 1);

    let (ui_tx, ui_rx) = watch::channel(UiState::new(false));
    let (snap_tx, mut snap_rx) = watch::channel(Arc::new(Snapshot::default()));
    let (_ev_tx, mut ev_rx) = mpsc::channel::<Vec<Event>>(1);
    let ingest = tokio::spawn(async move {
        let mut ingest = Ingest::new(tui_fixture::nodes(), 10);
        ingest.record = Some(RecordConfig {
            dir: PathBuf::from("/nonexistent/vfio-trace-test"),
            probes: vec![],
        });
        ingest
            .run(
                ui_rx,
                snap_tx,
                Some(&mut ev_rx),
                None,
                std::future::pending(),
            )
            .await;
        ingest.take_recorder().is_none()
    });
    press_r(&ui_tx);
    until(&mut snap_rx, |s| {
        s.header
            .record_note
            .as_ref()
            .is_some_and(|(n, failed)| *failed && n.contains("/nonexistent"))
    })
    .await;
    assert!(snap_rx.borrow().header.recording.is_none());
    drop(ui_tx);
    assert!(ingest.await.expect("ingest"));
}

/// A full disk while `r` records (the same recorder as `vfio-trace
/// record`): the header's note says the recording failed, naming the file,
/// where it ends and the events kept and lost; the file keeps every
/// complete chunk and does not look complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_on_a_full_disk_stops_and_says_what_the_file_kept() {
    use tracer_core::tracefile::synth::MapUnmapTrace;
    let Some(fs) = record_support::Tmpfs::mount_or_skip("tui-full-disk", "512k") else {
        return;
    };
    let (ui_tx, ui_rx) = watch::channel(UiState::new(false));
    let (snap_tx, mut snap_rx) = watch::channel(Arc::new(Snapshot::default()));
    let (ev_tx, mut ev_rx) = mpsc::channel::<Vec<Event>>(4);
    let cfg = RecordConfig {
        dir: fs.mnt.clone(),
        probes: vec![],
    };
    let ingest = tokio::spawn(async move {
        let mut ingest = Ingest::new(tui_fixture::nodes(), 1000);
        ingest.record = Some(cfg);
        ingest
            .run(
                ui_rx,
                snap_tx,
                Some(&mut ev_rx),
                None,
                std::future::pending(),
            )
            .await;
        ingest.take_recorder().is_none()
    });
    press_r(&ui_tx);
    until(&mut snap_rx, |s| s.header.recording.is_some()).await;
    // A chunk holds 64 Ki events (~450 KB of these): the second one fails.
    let feeder = tokio::spawn(async move {
        let mut gen = MapUnmapTrace::new(5);
        loop {
            let batch: Vec<Event> = gen.by_ref().take(8192).collect();
            if ev_tx.send(batch).await.is_err() {
                break;
            }
        }
    });
    let failed = |s: &Snapshot| s.header.record_note.as_ref().is_some_and(|(_, f)| *f);
    tokio::time::timeout(Duration::from_secs(120), async {
        while !failed(&snap_rx.borrow_and_update()) {
            snap_rx.changed().await.expect("ingest side alive");
        }
    })
    .await
    .expect("the recording never failed on a full disk");
    feeder.abort();
    let (note, _) = snap_rx.borrow().header.record_note.clone().expect("note");
    assert!(snap_rx.borrow().header.recording.is_none(), "{note}");
    let file = files(&fs.mnt).pop().expect("the recording");
    assert!(
        note.contains(&file.display().to_string()) && note.contains("No space left on device"),
        "{note}"
    );
    let offset = record_support::number_after(&note, "at byte ");
    let kept = record_support::number_after(&note, "kept ");
    let lost = record_support::number_after(&note, "lost ");
    assert!(kept > 0 && lost > 0, "{note}");
    assert_eq!(
        std::fs::metadata(&file).expect("stat").len(),
        offset,
        "{note}"
    );
    let r = record_support::read(&file);
    assert_eq!(r.ts.len() as u64, kept, "{note}");
    assert!(!r.complete, "{note}");
    drop(ui_tx);
    assert!(ingest.await.expect("ingest"));
}
