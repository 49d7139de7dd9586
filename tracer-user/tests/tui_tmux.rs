//! End to end in a real terminal: `vfio-trace replay FILE` under tmux on a
//! recorded trace with an EEXIST MAP_DMA and a broken IOVA→HPA hop; keys are
//! sent with `send-keys`, the screen read with `capture-pane`. Skips (with
//! the reason printed) only when tmux is not installed.

mod tui_fixture;

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
    thread::sleep,
    time::{Duration, Instant},
};

use tracer_core::tracefile::{TraceHeader, TraceWriter, WriterOptions};

/// A private tmux server (its own socket), killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("running tmux")
    }

    fn screen(&self) -> String {
        let o = self.run(&["capture-pane", "-p", "-t", "vt"]);
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        for k in keys {
            let o = self.run(&["send-keys", "-t", "vt", k]);
            assert!(o.status.success(), "send-keys {k}: {o:?}");
            sleep(Duration::from_millis(60));
        }
    }

    /// Waits until the screen satisfies `ok`; panics with the last screen.
    fn wait_for(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let s = self.screen();
            if ok(&s) {
                return s;
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for {what}; screen:\n{s}");
            }
            sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

fn write_trace(path: &Path) {
    let header = TraceHeader {
        nodes: tui_fixture::nodes(),
        tool_version: "test".into(),
        ..TraceHeader::default()
    };
    let mut w = TraceWriter::create(path, &header, WriterOptions::default()).expect("create");
    for e in tui_fixture::events() {
        w.append(&e).expect("append");
    }
    w.finish().expect("finish");
}

fn tmux_available() -> bool {
    Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn replay_shows_the_finding_and_the_broken_hop_then_quits_cleanly() {
    if !tmux_available() {
        println!("SKIPPED: tmux is not installed (apt-get install tmux)");
        return;
    }
    let dir = std::env::temp_dir().join(format!("vt-tui-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let trace: PathBuf = dir.join("fault.vtrace");
    write_trace(&trace);
    let log = dir.join("ui.log");
    let tmux = Tmux {
        socket: format!("vt-tui-e2e-{}", std::process::id()),
    };
    // The exit status is printed on the normal screen once the UI is gone.
    let cmd = format!(
        "VFIO_TRACE_LOG={} {} replay {}; echo vfio-trace-exited=$?; sleep 30",
        log.display(),
        env!("CARGO_BIN_EXE_vfio-trace"),
        trace.display()
    );
    let o = tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "vt",
        "-x",
        "180",
        "-y",
        "45",
        "-e",
        "TERM=xterm-256color",
        &cmd,
    ]);
    assert!(o.status.success(), "tmux new-session: {o:?}");

    tmux.wait_for("the UI", |s| {
        s.contains("vfio-trace") && s.contains("replay")
    });
    // Jump past the end of the trace: every event applied.
    tmux.keys(&["g", "9", "9", "Enter"]);
    tmux.wait_for("all events", |s| s.contains("event 20/20"));

    tmux.keys(&["4"]);
    let s = tmux.wait_for("the findings", |s| {
        s.contains("VT008") && s.contains("VT006")
    });
    assert!(s.contains("EEXIST"), "{s}");
    assert!(s.contains("map-failed") && s.contains("chain-break"), "{s}");

    // Newest first: VT003 (the MSI-X message), VT008, VT006. The chain of
    // the chain-break finding's address.
    tmux.keys(&["Down", "Down", "c"]);
    // The whole frame (a capture can land between two parts of a redraw).
    tmux.wait_for("the broken chain", |s| {
        s.contains("BROKEN at hop")
            && s.contains("disagrees: expected 0x200000000")
            && s.contains("IOVA→HPA")
    });

    // Evidence of the EEXIST in the Events view.
    tmux.keys(&["4", "Up", "Enter"]);
    let s = tmux.wait_for("the evidence", |s| s.contains("errno=17"));
    assert!(s.contains("evidence of VT008"), "{s}");

    tmux.keys(&["q"]);
    let s = tmux.wait_for("the exit", |s| s.contains("vfio-trace-exited="));
    assert!(s.contains("vfio-trace-exited=0"), "exit status:\n{s}");
    // Back on the normal screen: the UI is gone.
    assert!(!s.contains("1 Events"), "alternate screen not left:\n{s}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A replay of the lab's nested recordings ends with every mapping
/// unmapped: the Chains view says so and points to the history (`h`); the
/// history lists every mapping with its lifetime; narrowed to L2 (`n`),
/// Enter on L2's first guest mapping shows its complete chain across L2 and
/// L1 as it was.
#[test]
fn replay_history_reaches_the_l2_guest_mappings_complete_chain_after_the_end() {
    if !tmux_available() {
        println!("SKIPPED: tmux is not installed (apt-get install tmux)");
        return;
    }
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let tmux = Tmux {
        socket: format!("vt-tui-history-{}", std::process::id()),
    };
    let cmd = format!(
        "VFIO_TRACE_LOG=/dev/null {} replay {} {}; sleep 30",
        env!("CARGO_BIN_EXE_vfio-trace"),
        examples.join("nested-l1-host.vtrace").display(),
        examples.join("nested-l2-guest.vtrace").display(),
    );
    let o = tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "vt",
        "-x",
        "180",
        "-y",
        "45",
        "-e",
        "TERM=xterm-256color",
        &cmd,
    ]);
    assert!(o.status.success(), "tmux new-session: {o:?}");
    tmux.wait_for("the UI", |s| s.contains("replay"));
    tmux.keys(&["g", "9", "9", "9", "9", "Enter", "2"]);
    let s = tmux.wait_for("the hint", |s| {
        s.contains("no live mapping at this point of the replay") && s.contains("event 1769/1769")
    });
    assert!(s.contains("0 mappings"), "{s}");
    assert!(s.contains("Press h for the history"), "{s}");

    tmux.keys(&["h"]);
    let s = tmux.wait_for("the history", |s| {
        s.contains("history: every mapping of the recording")
    });
    assert!(s.contains("mapped ") && s.contains("unmapped "), "{s}");
    // Narrowed to l2 (all → l1 → l2): its first guest mapping is the third.
    tmux.keys(&["n", "n"]);
    let s = tmux.wait_for("l2's history", |s| {
        s.contains("history: every mapping of l2")
    });
    assert!(
        s.contains("l2 guest domain 4 0x101000-0x101fff → gpa 0xfc22000  mapped"),
        "{s}"
    );
    tmux.keys(&["Down", "Down"]);
    tmux.wait_for("the lifetime", |s| s.contains("mapped by event #1050"));
    tmux.keys(&["Enter"]);
    // Back in time (not at the last event any more), the mapping live.
    let s = tmux.wait_for("the chain as it was", |s| {
        s.contains("chain: l2 guest domain 4")
            && s.contains("0x101000-0x101fff: complete")
            && !s.contains("event 1769/1769")
            && s.contains("IOVA→HPA  iommu_map")
    });
    for hop in [
        "IOVA→GPA  guest MAP   0x101000 → 0xfc22000 (l2)",
        "GPA→HVA   KVM memslot 0xfc22000 → 0x7f8e6ee22000 (l1)",
        "IOVA→HVA  MAP_DMA     0x101000 → 0x7f8e6ee22000 (l1)",
        "HVA→HPA   VFIO pin    0x7f8e6ee22000 → 0x19a22000 (l1)",
        "IOVA→HPA  iommu_map   0x101000 → 0x19a22000 (l1)",
    ] {
        assert!(s.contains(hop), "{hop}:\n{s}");
    }
}
