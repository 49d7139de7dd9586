//! A real `vfio-trace record` fed by a real agent of synthetic events over
//! a unix socket (no probes, so no root needed), for the recording tests.

#![allow(dead_code, reason = "each test uses part of it")]

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, ChildStderr, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use tracer_core::tracefile::TraceReader;

pub const BIN: &str = env!("CARGO_BIN_EXE_vfio-trace");

/// A child killed and reaped when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    /// SIGKILL; returns this machine's CLOCK_MONOTONIC just before it.
    pub fn kill9(&mut self) -> u64 {
        let at = monotonic_ns();
        // SAFETY: SIGKILL to our own child.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGKILL) };
        let st = self.0.wait().expect("wait");
        assert_eq!(st.code(), None, "killed by a signal");
        at
    }
}

/// CLOCK_MONOTONIC, the clock synthetic events are stamped with.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// A fresh temporary directory for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vfio-trace-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// Lines of a child's stderr, as they come.
pub struct Lines {
    rx: mpsc::Receiver<String>,
    pub seen: Vec<String>,
}

impl Lines {
    pub fn new(stderr: ChildStderr) -> Self {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(stderr).lines() {
                let Ok(l) = l else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Lines {
            rx,
            seen: Vec::new(),
        }
    }

    /// Waits (up to `within`) for a line containing `what`.
    pub fn wait_for(&mut self, what: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if l.contains(what) {
                        return l;
                    }
                }
                Err(_) => panic!("no line with {what:?} in {:#?}", self.seen),
            }
        }
    }

    /// Every line until the child closes its stderr.
    pub fn rest(&mut self) -> String {
        while let Ok(l) = self.rx.recv_timeout(Duration::from_secs(60)) {
            self.seen.push(l);
        }
        self.seen.join("\n")
    }
}

/// `vfio-trace record --no-local` listening on a unix socket in `dir`,
/// started: its "recording to" line was seen. Returns the socket address.
pub fn recorder(dir: &Path, file: &Path, extra: &[&str]) -> (Proc, Lines, String) {
    let listen = format!("unix:{}", dir.join("agg.sock").display());
    let mut child = Command::new(BIN)
        .args(["record", "--no-local", "--quiet", "--listen", &listen])
        .args(extra)
        .arg("-o")
        .arg(file)
        .stderr(Stdio::piped())
        .spawn()
        .expect("start vfio-trace record");
    let mut lines = Lines::new(child.stderr.take().expect("piped"));
    lines.wait_for("recording to", Duration::from_secs(60));
    (Proc(child), lines, listen)
}

/// `vfio-trace agent --synthetic RATE` connected to `listen`: its
/// "connected to" line was seen.
pub fn agent(listen: &str, rate: u64) -> (Proc, Lines) {
    let mut child = Command::new(BIN)
        .args(["agent", "--node", "synthetic", "--connect", listen])
        .args(["--synthetic", &rate.to_string()])
        .stderr(Stdio::piped())
        .spawn()
        .expect("start vfio-trace agent");
    let mut lines = Lines::new(child.stderr.take().expect("piped"));
    lines.wait_for("connected to", Duration::from_secs(60));
    (Proc(child), lines)
}

/// What a strict read of `file` gives: the events' `ts_ns` up to the first
/// error, the error's offset, and whether the file read as complete.
pub struct Read {
    pub ts: Vec<u64>,
    pub error_at: Option<u64>,
    pub complete: bool,
}

pub fn read(file: &Path) -> Read {
    let mut r = TraceReader::open(file).expect("the header is readable");
    let mut ts = Vec::new();
    let mut error_at = None;
    for ev in r.by_ref() {
        match ev {
            Ok(e) => ts.push(e.ts_ns),
            Err(e) => {
                error_at = Some(e.offset().unwrap_or(u64::MAX));
                break;
            }
        }
    }
    Read {
        ts,
        error_at,
        complete: r.is_complete(),
    }
}

/// The first number after `after` in `text`.
pub fn number_after(text: &str, after: &str) -> u64 {
    text.split(after)
        .nth(1)
        .and_then(|t| t.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number after {after:?} in {text}"))
}

/// A tmpfs of a given size mounted at `dir/mnt` (a small disk to fill);
/// unmounted, and `dir` removed, on drop. Needs root: where it cannot be
/// mounted the test says why and skips, except under CI (`CI` set), where
/// a skip is a failure.
pub struct Tmpfs {
    pub dir: PathBuf,
    pub mnt: PathBuf,
}

impl Tmpfs {
    /// `None`: skipped (said on stderr).
    pub fn mount_or_skip(name: &str, size: &str) -> Option<Self> {
        let skip = |why: String| {
            if std::env::var_os("CI").is_some() {
                panic!("the full-disk test {name} must run under CI but cannot: {why}");
            }
            eprintln!("SKIPPED full-disk test {name}: {why}");
            None
        };
        // SAFETY: no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return skip("not root (mounting a tmpfs)".into());
        }
        let dir = temp_dir(name);
        let mnt = dir.join("mnt");
        std::fs::create_dir_all(&mnt).expect("mount point");
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}"),
                "vfio-trace-test",
            ])
            .arg(&mnt)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs { dir, mnt }),
            Ok(o) => skip(format!(
                "mount -t tmpfs failed: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            )),
            Err(e) => skip(format!("mount: {e}")),
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.mnt).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
