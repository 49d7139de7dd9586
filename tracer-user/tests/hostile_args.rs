//! No panic on user input: every subcommand of the built binary, run with
//! hostile values (huge, negative, zero and garbage durations; missing,
//! directory, empty, garbage and device files; absurd sizes; bad addresses,
//! pairs and rules; odd strings), fails with exit 2 (or a clap usage error,
//! also 2) and a message naming the offending value, never exit 101 or
//! "panicked". Every case fails at argument or input validation, before any
//! probe attaches or tracing starts, and is bounded by a timeout.
//!
//! Then the unprivileged path: run as `nobody` without capabilities (via
//! `setpriv` or `capsh` when this test runs as root), commands that need the probes
//! say which capability is missing and the command to run.

use std::{
    ffi::OsString,
    io::Read,
    os::unix::ffi::OsStringExt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

const BIN: &str = env!("CARGO_BIN_EXE_vfio-trace");
const TIMEOUT: Duration = Duration::from_secs(20);
const EXAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../examples/nested-l1-host.vtrace"
);

struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `cmd` (stdin from /dev/null) with a deadline; a hung case is
/// killed and fails the test.
fn run_cmd(mut cmd: Command, what: &str) -> Outcome {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_remove("VFIO_TRACE_TOKEN")
        .env("RUST_BACKTRACE", "0")
        .env("TERM", "dumb");
    let mut child = cmd.spawn().expect("start vfio-trace");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {TIMEOUT:?} (it must fail at validation)");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Outcome {
        code: status.code(),
        stdout: String::from_utf8_lossy(&t_out.join().unwrap()).into_owned(),
        stderr: String::from_utf8_lossy(&t_err.join().unwrap()).into_owned(),
    }
}

fn run(args: &[OsString]) -> Outcome {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    run_cmd(cmd, &format!("{args:?}"))
}

/// One hostile invocation and the text its error must contain (the
/// offending value, or None where it cannot be printed as given).
struct Case {
    args: Vec<OsString>,
    names: Option<String>,
    /// Only "no panic": the exit code and message are another test's
    /// (salvaging reads of garbage: the reader's completeness tests).
    lenient: bool,
}

fn case(args: &[&str], names: &str) -> Case {
    Case {
        args: args.iter().map(OsString::from).collect(),
        names: Some(names.to_string()),
        lenient: false,
    }
}

fn os(s: impl Into<OsString>) -> OsString {
    s.into()
}

/// Runs one case; what is wrong with its outcome, if anything.
fn check(c: &Case) -> Result<(), String> {
    let o = run(&c.args);
    let what = format!(
        "{:?}\n  stdout: {}\n  stderr: {}",
        c.args,
        o.stdout,
        o.stderr.trim_end()
    );
    if o.code == Some(101) || o.stderr.contains("panicked") {
        return Err(format!("panicked: {what}"));
    }
    if o.code.is_none() {
        return Err(format!("killed by a signal: {what}"));
    }
    if c.lenient {
        return Ok(());
    }
    if o.code != Some(2) {
        return Err(format!("exit {:?}, not 2: {what}", o.code));
    }
    if let Some(n) = &c.names {
        if !o.stderr.contains(n.as_str()) {
            return Err(format!("the error does not name {n:?}: {what}"));
        }
    }
    // Each cause once: no OS error text repeated.
    for line in o.stderr.lines() {
        if let Some(i) = line.find("(os error") {
            let tail = &line[i..];
            let tag = &tail[..tail.find(')').map_or(tail.len(), |j| j + 1)];
            if line.matches(tag).count() != 1 {
                return Err(format!("repeated {tag}: {what}"));
            }
        }
    }
    Ok(())
}

struct Dir(PathBuf);
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Hostile input files: (description, path).
fn bad_files(d: &Path) -> Vec<(&'static str, PathBuf)> {
    let empty = d.join("empty.vtrace");
    std::fs::write(&empty, b"").unwrap();
    let garbage = d.join("garbage.vtrace");
    std::fs::write(
        &garbage,
        (0..4096u32)
            .map(|i| (i * 7919 % 251) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let header_only = d.join("cut-header.vtrace");
    let ex = std::fs::read(EXAMPLE).unwrap();
    std::fs::write(&header_only, &ex[..12]).unwrap();
    let magic_garbage = d.join("magic-garbage.vtrace");
    let mut mg = ex[..16].to_vec();
    mg.extend_from_slice(&[0xff; 64]);
    std::fs::write(&magic_garbage, mg).unwrap();
    let dir = d.join("a-directory");
    std::fs::create_dir_all(&dir).unwrap();
    vec![
        ("missing", d.join("no-such-file.vtrace")),
        ("directory", dir),
        ("empty", empty),
        ("garbage", garbage),
        ("cut in its header", header_only),
        ("magic then garbage", magic_garbage),
        ("/dev/null", PathBuf::from("/dev/null")),
    ]
}

const BAD_DURATIONS: &[&str] = &[
    "18446744073709551615s",
    "18446744073709551615",
    "99999999999999999999999999",
    "1e400",
    "11y",
    "0",
    "0ms",
    "-5s",
    "5parsecs",
    "nan",
    "inf",
    "1.",
    "½s",
    "\u{202e}5s",
];

#[test]
fn no_subcommand_panics_on_hostile_values() {
    let d = Dir(std::env::temp_dir().join(format!("vt-hostile-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&d.0);
    std::fs::create_dir_all(&d.0).unwrap();
    let dir = d.0.to_str().unwrap().to_string();
    let new_out = format!("{dir}/new.vtrace");
    let sock = format!("unix:{dir}/agg.sock");
    let mut cases: Vec<Case> = Vec::new();

    // Durations, on every command that takes one.
    for dur in BAD_DURATIONS {
        let flag = format!("--duration={dur}");
        cases.push(case(&["live", "--no-tui", &flag], dur));
        cases.push(case(&["--no-tui", &flag], dur));
        cases.push(case(&["record", "-o", &new_out, &flag], dur));
        cases.push(case(&["check", &flag], dur));
        cases.push(case(&["agent", "--connect", &sock, &flag], dur));
    }
    cases.push(case(
        &["record", "-o", &new_out, "--duration", ""],
        "--duration",
    ));
    cases.push(case(
        &["record", "-o", &new_out, "--duration"],
        "--duration",
    ));

    // Numbers.
    for pid in ["0", "-1", "4294967296", "99999999999999999999", "abc"] {
        let flag = format!("--pid={pid}");
        cases.push(case(&["live", "--no-tui", &flag], pid));
        cases.push(case(&["record", "-o", &new_out, &flag], pid));
        cases.push(case(&["probes", &flag], pid));
    }
    for mib in [
        "0",
        "-1",
        "65537",
        "18446744073709551615",
        "99999999999999999999999",
        "1e3",
    ] {
        let flag = format!("--buffer-mib={mib}");
        cases.push(case(&["agent", "--connect", &sock, &flag], mib));
    }

    // Names and strings.
    let long = "n".repeat(300);
    for node in ["", "a b", "tab\there", &long, "bell\u{7}"] {
        let flag = format!("--node={node}");
        let shown = if node.is_empty() {
            "empty node name".to_string()
        } else {
            node.chars().take(20).collect()
        };
        let mut c = case(&["live", "--no-tui", &flag], "");
        c.names = Some(if node.contains(['\t', '\u{7}']) {
            "--node".to_string()
        } else {
            shown
        });
        cases.push(c);
    }
    cases.push(case(
        &["live", "--no-tui", "--probe", "no_such_probe"],
        "no_such_probe",
    ));
    cases.push(case(&["probes", "--probe", "ünïcödé☃"], "ünïcödé☃"));
    cases.push(case(&["probes", "--format", "xml"], "xml"));
    cases.push(case(&["probes", "--leftovers", "--format", "yaml"], "yaml"));

    // Addresses.
    let long_sock = format!("unix:{dir}/{}", "s".repeat(200));
    for addr in [
        "garbage",
        "tcp:",
        "tcp:99999",
        "tcp:-1",
        "tcp:host:port",
        "tcp:256.256.256.256:1",
        "vsock:abc",
        "vsock:4294967296",
        "unix:",
        &long_sock,
        "serial:/dev/null",
        "http://example.com",
        "",
    ] {
        let shown = if addr.is_empty() { "\"\"" } else { addr };
        cases.push(case(
            &["live", "--no-tui", "--no-local", "--listen", addr],
            &shown[..shown.len().min(40)],
        ));
        cases.push(case(
            &["record", "--no-local", "-o", &new_out, "--listen", addr],
            &shown[..shown.len().min(40)],
        ));
    }
    cases.push(case(
        &[
            "record",
            "--no-local",
            "-o",
            &new_out,
            "--listen",
            &format!("unix:{dir}/no/such/dir/s"),
        ],
        "no/such/dir",
    ));
    cases.push(case(&["live", "--no-local", "--no-tui"], "--no-local"));
    cases.push(case(&["check", "--no-local"], "--no-local"));
    for addr in [
        "garbage",
        "tcp:",
        "tcp:127.0.0.1",
        "tcp:127.0.0.1:99999",
        "vsock:x:y",
        "vsock:1",
        "serial:",
        "unix:",
        &long_sock,
        "",
    ] {
        let shown = if addr.is_empty() { "\"\"" } else { addr };
        cases.push(case(
            &["agent", "--connect", addr],
            &shown[..shown.len().min(40)],
        ));
    }
    cases.push(case(&["agent", "--connect", "tcp:127.0.0.1:9"], "token"));
    cases.push(case(
        &["agent", "--connect", &sock, "--listen", "tcp:0"],
        "--listen",
    ));
    cases.push(case(&["agent"], "--connect"));
    let long_token = "t".repeat(300);
    cases.push(case(
        &["agent", "--connect", &sock, "--token", &long_token],
        "--token",
    ));
    cases.push(case(
        &[
            "live",
            "--no-local",
            "--listen",
            &sock,
            "--token",
            &long_token,
        ],
        "--token",
    ));

    // Input files: replay, check, export; alone and next to a good file.
    for (what, f) in bad_files(&d.0) {
        let f = f.to_str().unwrap();
        let name = if what == "/dev/null" { "/dev/null" } else { f };
        for args in [
            vec!["replay", "--print", f],
            vec!["replay", f],
            vec!["replay", "--print", "--salvage", f],
            vec!["check", f],
            vec!["check", "--format", "json", f],
            vec!["check", "--format", "junit", "--salvage", f],
            vec!["check", EXAMPLE, f],
            vec!["export", f],
            vec!["export", "--format", "perfetto", f],
            vec!["export", "--salvage", f],
            vec!["export", EXAMPLE, f],
        ] {
            let mut c = case(&args, name);
            c.lenient = args.contains(&"--salvage");
            cases.push(c);
        }
    }
    // A path that is not UTF-8.
    cases.push(Case {
        args: vec![
            os("export"),
            OsString::from_vec(b"/nonexistent/\xff\xfe.vtrace".to_vec()),
        ],
        names: Some("/nonexistent/".into()),
        lenient: false,
    });
    cases.push(Case {
        args: vec![
            os("check"),
            os("--rule"),
            OsString::from_vec(b"\xff".to_vec()),
            os(EXAMPLE),
        ],
        names: None,
        lenient: false,
    });

    // Rules and pairs on a good file.
    for rule in ["VT999", "no-such-rule", "", ",", " , ", "☃"] {
        cases.push(case(
            &["check", "--rule", rule, EXAMPLE],
            &format!("{rule:?}"),
        ));
        cases.push(case(
            &["check", "--allow", rule, EXAMPLE],
            &format!("{rule:?}"),
        ));
    }
    for pair in [
        "garbage",
        "l2:",
        "l2:0000:00:04.0",
        "=",
        "l2:zz:zz.z=yy",
        ":=:",
        "l2:00:01.0=☃",
    ] {
        cases.push(case(&["check", "--pair", pair, EXAMPLE], pair));
    }
    cases.push(case(&["check", "--format", "xml", EXAMPLE], "xml"));
    cases.push(case(&["export", "--format", "csv", EXAMPLE], "csv"));

    // Outputs: an input, an existing file, a directory, a missing directory.
    let mine = format!("{dir}/mine.vtrace");
    std::fs::copy(EXAMPLE, &mine).unwrap();
    let before = std::fs::read(&mine).unwrap();
    let link = format!("{dir}/link.vtrace");
    std::fs::hard_link(&mine, &link).unwrap();
    let existing = format!("{dir}/existing.jsonl");
    std::fs::write(&existing, b"keep me").unwrap();
    cases.push(case(&["export", &mine, "-o", &mine], &mine));
    cases.push(case(&["export", &mine, "-o", &mine, "--force"], &mine));
    cases.push(case(&["export", &mine, "-o", &link, "--force"], &link));
    cases.push(case(
        &[
            "export",
            &mine,
            "-o",
            &format!("{dir}/./mine.vtrace"),
            "--force",
        ],
        "mine.vtrace",
    ));
    cases.push(case(
        &["export", "--format", "perfetto", &mine, "-o", &existing],
        &existing,
    ));
    cases.push(case(&["export", &mine, "-o", &dir], &dir));
    cases.push(case(&["export", &mine, "-o", ""], "--output"));
    cases.push(case(
        &["export", &mine, "-o", &format!("{dir}/no/such/out.jsonl")],
        "no/such",
    ));
    cases.push(case(&["record", "-o", &existing], &existing));
    cases.push(case(
        &["record", "-o", &mine, "--no-local", "--listen", &sock],
        &mine,
    ));
    cases.push(case(&["record", "-o", &dir], &dir));
    cases.push(case(
        &["record", "-o", &format!("{dir}/no/such/r.vtrace")],
        "no/such",
    ));
    cases.push(case(&["record"], "--output"));
    // A full disk.
    for f in ["jsonl", "perfetto"] {
        cases.push(case(
            &["export", "--format", f, EXAMPLE, "-o", "/dev/full"],
            "/dev/full",
        ));
    }
    // An input that fails to open: the new output is not left behind.
    let fresh = format!("{dir}/fresh.jsonl");
    let missing = format!("{dir}/no-such-input.vtrace");
    cases.push(case(&["export", &missing, "-o", &fresh], &missing));
    cases.push(case(
        &["export", "--format", "perfetto", &missing, "-o", &fresh],
        &missing,
    ));

    // Unknown things.
    cases.push(case(&["frobnicate"], "frobnicate"));
    cases.push(case(&["replay"], "FILE"));
    cases.push(case(&["replay", "--duration", "5s", EXAMPLE], "--duration"));
    cases.push(case(&["export", "--force"], "FILE"));

    let failed: Vec<String> = cases.iter().filter_map(|c| check(c).err()).collect();
    assert!(
        failed.is_empty(),
        "{} of {} hostile invocations went wrong:\n{}",
        failed.len(),
        cases.len(),
        failed.join("\n")
    );
    // Nothing was destroyed, and no temporary file was left.
    assert_eq!(std::fs::read(&mine).unwrap(), before, "the input is intact");
    assert_eq!(std::fs::read(&existing).unwrap(), b"keep me");
    assert!(!Path::new(&new_out).exists(), "no recording was started");
    assert!(
        !Path::new(&fresh).exists(),
        "a failed export leaves no output"
    );
    let left: Vec<_> = std::fs::read_dir(&d.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
    eprintln!("{} hostile invocations, none panicked", cases.len());
}

/// `export -o` and `record -o`: an existing file is kept without --force,
/// replaced whole with it; an input is never an output.
#[test]
fn outputs_never_destroy_input() {
    let d = Dir(std::env::temp_dir().join(format!("vt-outputs-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&d.0);
    std::fs::create_dir_all(&d.0).unwrap();
    let mine = d.0.join("mine.vtrace");
    std::fs::copy(EXAMPLE, &mine).unwrap();
    let out = d.0.join("out.jsonl");
    let export = |extra: &[&str]| {
        let mut args = vec![os("export"), os(&mine), os("-o"), os(&out)];
        args.extend(extra.iter().map(OsString::from));
        run(&args)
    };
    let o = export(&[]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let first = std::fs::read(&out).unwrap();
    assert!(first.len() > 1000);
    let o = export(&[]);
    assert_eq!(o.code, Some(2), "{}", o.stderr);
    assert!(o.stderr.contains("--force"), "{}", o.stderr);
    std::fs::write(&out, b"old").unwrap();
    let o = export(&["--force"]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert_eq!(std::fs::read(&out).unwrap(), first);
    let names: Vec<_> = std::fs::read_dir(&d.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "no temporary file left: {names:?}");
}

/// As `nobody` with no capabilities: privilege errors name the missing
/// capability and the command to run; the tracefs warning is true.
#[test]
fn unprivileged_errors_name_the_capability_and_the_command() {
    // SAFETY: no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let find = |names: &[&'static str]| names.iter().copied().find(|p| Path::new(p).exists());
    let setpriv = find(&["/usr/bin/setpriv", "/bin/setpriv", "/usr/sbin/setpriv"]);
    let capsh = find(&["/usr/sbin/capsh", "/sbin/capsh", "/usr/bin/capsh"]);
    if root && setpriv.is_none() && capsh.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must be able to drop privileges: install setpriv (util-linux) or capsh (libcap2-bin)"
        );
        eprintln!(
            "SKIPPED unprivileged errors: root, and neither setpriv nor capsh to drop privileges"
        );
        return;
    }
    // A copy of the binary that nobody can run (the build tree may not be
    // reachable for it).
    let d = Dir(std::env::temp_dir().join(format!("vt-unpriv-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&d.0);
    std::fs::create_dir_all(&d.0).unwrap();
    let bin = d.0.join("vfio-trace");
    std::fs::copy(BIN, &bin).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&d.0, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let unprivileged = |args: &[&str]| {
        let mut cmd = if !root {
            // Already without privileges.
            Command::new(&bin)
        } else if let Some(sp) = setpriv {
            let mut c = Command::new(sp);
            c.args([
                "--reuid=nobody",
                "--regid=nogroup",
                "--clear-groups",
                "--inh-caps=-all",
                "--bounding-set=-all",
            ])
            .arg(&bin);
            c
        } else {
            // capsh switches to nobody (dropping every capability) and
            // runs the binary through a shell.
            let mut c = Command::new(capsh.unwrap());
            c.args(["--user=nobody", "--", "-c", "exec \"$0\" \"$@\""])
                .arg(&bin);
            c
        };
        cmd.args(args).current_dir(&d.0);
        cmd
    };
    // The copy was just written: a child forked by another test thread
    // while its write handle was open holds it until that child execs, and
    // executing the copy then fails with ETXTBSY. Retry briefly.
    let unprivileged = |args: &[&str]| {
        let mut tries = 0;
        loop {
            let o = run_cmd(unprivileged(args), &format!("unprivileged {args:?}"));
            tries += 1;
            if o.code == Some(126) && o.stderr.contains("Text file busy") && tries < 50 {
                std::thread::sleep(std::time::Duration::from_millis(100));
                continue;
            }
            return o;
        }
    };
    let out = format!("{}/r.vtrace", d.0.display());
    for args in [
        vec!["probes"],
        vec!["live", "--no-tui", "--duration", "1s"],
        vec!["record", "-o", &out, "--duration", "1s"],
        vec!["check", "--duration", "1s"],
    ] {
        let o = unprivileged(&args);
        let what = format!("{args:?}: {}", o.stderr);
        assert_eq!(o.code, Some(2), "{what}");
        assert!(!o.stderr.contains("panicked"), "{what}");
        assert!(o.stderr.contains("CAP_BPF"), "names the capability: {what}");
        assert!(
            o.stderr.contains("CAP_PERFMON"),
            "names the capability: {what}"
        );
        assert!(
            o.stderr.contains("sudo "),
            "says the command to run: {what}"
        );
        assert!(
            o.stderr.contains(args[0]),
            "the command to run is this one: {what}"
        );
        let tracefs_mounted = std::fs::read_to_string("/proc/self/mounts")
            .unwrap_or_default()
            .lines()
            .any(|l| l.split_whitespace().nth(2) == Some("tracefs"));
        if tracefs_mounted {
            assert!(
                !o.stderr.contains("not mounted"),
                "tracefs is mounted: {what}"
            );
        }
    }
    assert!(
        !Path::new(&out).exists(),
        "a refused recording leaves no file"
    );
    let o = unprivileged(&["probes", "--leftovers"]);
    let what = o.stderr.clone();
    assert_eq!(
        o.code,
        Some(2),
        "could not check is not 'none left': {what}"
    );
    assert!(
        !o.stdout.contains("no vfio-trace BPF program"),
        "{}",
        o.stdout
    );
    assert!(o.stderr.contains("run it as root: sudo "), "{what}");
    assert!(o.stderr.contains("probes --leftovers"), "{what}");
}
