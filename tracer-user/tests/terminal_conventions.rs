//! Terminal conventions, end to end with the real binary:
//! - `record`'s status line: `\r` + erase-line only when stderr is a
//!   terminal (under `script`'s pty), plain lines otherwise (a pipe);
//! - the terminal UI without colour under `NO_COLOR` or `--color never`,
//!   with colour otherwise (tmux `capture-pane -e` shows the attributes);
//! - a recording made as root with `SUDO_UID`/`SUDO_GID` belongs to that
//!   user.
//!
//! A recorder with `--no-local` and a synthetic agent needs no root.

use std::{
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread::sleep,
    time::{Duration, Instant},
};

const BIN: &str = env!("CARGO_BIN_EXE_vfio-trace");

struct Reaped(Child);
impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vt-term-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs `record --no-local --listen unix:SOCK --duration 4s -o FILE`
/// through `shell_prefix` (e.g. `script` for a pty) with a synthetic agent
/// feeding it; returns the recorder's stderr as captured.
fn record_with_agent(dir: &Path, wrap_in_pty: bool, env: &[(&str, &str)]) -> (Vec<u8>, PathBuf) {
    let file = dir.join("rec.vtrace");
    let sock = dir.join("agg.sock");
    let listen = format!("unix:{}", sock.display());
    let record = format!(
        "{BIN} record --no-local --listen {listen} --duration 4s -o {}",
        file.display()
    );
    let mut c = if wrap_in_pty {
        // util-linux script: the command's stdio is a pty; the typescript
        // (everything written to the pty) goes to the log file.
        let mut c = Command::new("script");
        c.args(["-qefc", &record])
            .arg(dir.join("typescript"))
            .stdout(Stdio::null());
        c
    } else {
        let mut c = Command::new("sh");
        c.args([
            "-c",
            &format!("{record} 2>{}", dir.join("stderr").display()),
        ]);
        c
    };
    c.envs(env.iter().copied()).stdin(Stdio::null());
    let mut recorder = Reaped(c.spawn().unwrap());
    let deadline = Instant::now() + Duration::from_secs(60);
    while !sock.exists() {
        assert!(Instant::now() < deadline, "the recorder never listened");
        sleep(Duration::from_millis(50));
    }
    let _agent = Reaped(
        Command::new(BIN)
            .args(["agent", "--node", "termnode", "--connect", &listen])
            .args(["--synthetic", "500"])
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let status = recorder.0.wait().unwrap();
    assert!(status.success(), "record: {status}");
    let captured = if wrap_in_pty {
        std::fs::read(dir.join("typescript")).unwrap()
    } else {
        std::fs::read(dir.join("stderr")).unwrap()
    };
    (captured, file)
}

fn script_available() -> bool {
    Command::new("script")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn the_status_line_uses_escapes_only_on_a_terminal() {
    let dir = temp_dir("status-pipe");
    let (err, _) = record_with_agent(&dir, false, &[]);
    let text = String::from_utf8_lossy(&err);
    assert!(!err.contains(&0x1b), "an escape in a pipe: {text:?}");
    assert!(
        !err.contains(&b'\r'),
        "a carriage return in a pipe: {text:?}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("vfio-trace: ") && l.contains(" events ") && l.contains(" KiB")),
        "a plain status line: {text:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);

    if !script_available() {
        println!("SKIPPED the pty half: util-linux `script` is not installed");
        return;
    }
    let dir = temp_dir("status-pty");
    let (tty, _) = record_with_agent(&dir, true, &[]);
    let text = String::from_utf8_lossy(&tty);
    assert!(
        text.contains("\r\x1b[2K") && text.contains(" events "),
        "the in-place status line on a terminal: {text:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_recording_made_under_sudo_belongs_to_the_user() {
    let dir = temp_dir("sudo");
    let (_, file) = record_with_agent(&dir, false, &[("SUDO_UID", "12345"), ("SUDO_GID", "23456")]);
    let m = std::fs::metadata(&file).unwrap();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        assert_eq!((m.uid(), m.gid()), (12345, 23456));
    } else {
        println!("not root: checking only that the file is left to its maker");
        // SAFETY: as above.
        assert_eq!(m.uid(), unsafe { libc::geteuid() });
    }
    // An export under sudo too.
    let out = dir.join("out.jsonl");
    let o = Command::new(BIN)
        .args(["export", "--format", "jsonl", "-o"])
        .arg(&out)
        .arg(&file)
        .envs([("SUDO_UID", "12345"), ("SUDO_GID", "23456")])
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    let m = std::fs::metadata(&out).unwrap();
    // SAFETY: as above.
    if unsafe { libc::geteuid() } == 0 {
        assert_eq!((m.uid(), m.gid()), (12345, 23456));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The UI's screen with its attributes (`capture-pane -e`) under tmux.
fn ui_screen(name: &str, env: &str, args: &str, trace: &Path) -> String {
    let socket = format!("vt-term-{name}-{}", std::process::id());
    let tmux = |a: &[&str]| {
        Command::new("tmux")
            .arg("-L")
            .arg(&socket)
            .args(a)
            .output()
            .expect("tmux")
    };
    let cmd = format!(
        "{env} VFIO_TRACE_LOG=/dev/null {BIN} {args} replay {}; sleep 30",
        trace.display()
    );
    let o = tmux(&[
        "new-session",
        "-d",
        "-s",
        "vt",
        "-x",
        "160",
        "-y",
        "40",
        "-e",
        "TERM=xterm-256color",
        &cmd,
    ]);
    assert!(o.status.success(), "{o:?}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let screen = loop {
        let s = String::from_utf8_lossy(&tmux(&["capture-pane", "-e", "-p", "-t", "vt"]).stdout)
            .into_owned();
        if s.contains("replay") && s.contains("Events") {
            // One more frame for the rows.
            sleep(Duration::from_millis(500));
            break String::from_utf8_lossy(&tmux(&["capture-pane", "-e", "-p", "-t", "vt"]).stdout)
                .into_owned();
        }
        assert!(Instant::now() < deadline, "no UI: {s}");
        sleep(Duration::from_millis(100));
    };
    let _ = tmux(&["kill-server"]);
    screen
}

/// SGR sequences that set a foreground or background colour.
fn colours(screen: &str) -> Vec<String> {
    let mut found = vec![];
    for seq in screen.split("\x1b[").skip(1) {
        let Some(end) = seq.find('m') else { continue };
        let params = &seq[..end];
        if params.split(';').any(|p| {
            matches!(
                p.parse::<u32>(),
                Ok(30..=38 | 40..=48 | 90..=97 | 100..=107)
            )
        }) {
            found.push(params.to_string());
        }
    }
    found
}

#[test]
fn the_ui_has_no_colour_under_no_color_or_color_never() {
    if Command::new("tmux").arg("-V").output().is_err() {
        println!("SKIPPED: tmux is not installed");
        return;
    }
    let trace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/nested-l1-host.vtrace");
    let coloured = ui_screen("colour", "", "", &trace);
    assert!(
        !colours(&coloured).is_empty(),
        "colour by default:\n{coloured}"
    );
    for (name, env, args) in [
        ("nocolor", "NO_COLOR=1", ""),
        ("never", "", "--color never"),
    ] {
        let s = ui_screen(name, env, args, &trace);
        assert!(s.contains("Events"), "{name}: {s}");
        assert_eq!(colours(&s), Vec::<String>::new(), "{name}:\n{s}");
    }
    let forced = ui_screen("always", "NO_COLOR=1", "--color always", &trace);
    assert!(
        !colours(&forced).is_empty(),
        "--color always beats NO_COLOR"
    );
}
