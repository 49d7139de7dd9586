//! What the root ioctl tests share: whether they can run here, the raw
//! ioctl, and a `vfio-trace record --pid <this process>` started (probes
//! attached), stopped on SIGINT and exported as JSON Lines.

#![allow(dead_code)]

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_vfio-trace");
pub const ENOTTY: i64 = 25;

/// Why a root probe test cannot run here, if it cannot.
pub fn cannot_run() -> Option<String> {
    // SAFETY: no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root".into());
    }
    if !Path::new("/sys/kernel/btf/vmlinux").exists() && !Path::new("/sys/fs/bpf").exists() {
        return Some("no BPF support visible (/sys/fs/bpf missing)".into());
    }
    None
}

/// Skips `test` with the reason, except under CI (`CI` set), where a skip
/// is a failure: CI is root here.
pub fn skip_or_fail(test: &str, why: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("the {test} test must run under CI but cannot: {why}");
    }
    eprintln!("SKIPPED {test}: {why}");
}

/// `ioctl(2)`: the result, or minus the errno.
pub fn ioctl(fd: i32, cmd: u32, arg: u64) -> i64 {
    // SAFETY: the callers pass arguments pointing at live memory of at least
    // the size the command declares (or plain values); they issue them on
    // /dev/null, which rejects every one.
    let rc = unsafe { libc::ioctl(fd, cmd as _, arg) };
    if rc < 0 {
        -(std::io::Error::last_os_error().raw_os_error().unwrap_or(0) as i64)
    } else {
        rc as i64
    }
}

/// `vfio-trace record --pid <this process>` into a fresh temp file.
pub struct SelfRecording {
    rec: Child,
    stderr_rest: JoinHandle<String>,
    pub trace: PathBuf,
}

impl SelfRecording {
    /// Starts the recorder and returns once its probes are attached
    /// ("recording to" on stderr), or panics after 60 s.
    pub fn start(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("vfio-trace-root-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let trace = dir.join(format!("{name}.vtrace"));
        let pid = std::process::id();
        let mut rec = Command::new(BIN)
            .args(["record", "--quiet", "--pid", &pid.to_string(), "-o"])
            .arg(&trace)
            .stderr(Stdio::piped())
            .spawn()
            .expect("start vfio-trace record");
        let mut stderr = BufReader::new(rec.stderr.take().unwrap());
        let mut line = String::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            line.clear();
            if stderr.read_line(&mut line).unwrap() == 0 || Instant::now() > deadline {
                let _ = rec.kill();
                panic!("vfio-trace record did not start: {line}");
            }
            if line.contains("recording to") {
                break;
            }
        }
        let stderr_rest = std::thread::spawn(move || {
            let mut rest = String::new();
            for l in stderr.lines() {
                rest += &l.unwrap_or_default();
                rest.push('\n');
            }
            rest
        });
        SelfRecording {
            rec,
            stderr_rest,
            trace,
        }
    }

    /// Stops the recorder the way a user does (SIGINT); it must exit 0.
    /// Returns the trace file.
    pub fn stop(mut self) -> PathBuf {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.rec.id() as i32, libc::SIGINT) };
        let st = self.rec.wait().unwrap();
        let rest = self.stderr_rest.join().unwrap();
        assert!(st.success(), "record exited with {st}: {rest}");
        self.trace
    }
}

/// `vfio-trace export --format jsonl FILE`, one JSON value per line.
pub fn export_jsonl(trace: &Path) -> Vec<Value> {
    let out = Command::new(BIN)
        .args(["export", "--format", "jsonl"])
        .arg(trace)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "export failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}
