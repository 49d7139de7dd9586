//! `--metrics` and `--findings` refuse what they cannot do, at start, with
//! exit 2 and the value named (no root needed: agents-only sessions).

use std::{
    net::TcpListener,
    path::PathBuf,
    process::{Command, Output, Stdio},
};

const BIN: &str = env!("CARGO_BIN_EXE_vfio-trace");

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vt-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("VFIO_TRACE_TOKEN")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn example() -> String {
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/nested-l1-host.vtrace"
    )
    .to_string()
}

#[test]
fn bad_metrics_addresses_are_refused_naming_the_value() {
    for bad in ["", "99999", "host:9464", "tcp:9464", "127.0.0.1"] {
        let o = run(&["check", "--metrics", bad, &example()]);
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {o:?}");
        assert!(
            stderr(&o).contains(&format!("{bad:?}")),
            "{bad:?}: {}",
            stderr(&o)
        );
    }
}

#[test]
fn a_port_in_use_fails_at_start() {
    let d = tmpdir("metrics-busy");
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let sock = format!("unix:{}", d.join("a.sock").display());
    for cmd in ["live", "check", "record"] {
        let out = d.join(format!("{cmd}.vtrace"));
        let mut args = vec![
            cmd,
            "--listen",
            &sock,
            "--no-local",
            "--metrics",
            &addr,
            "--duration",
            "5s",
        ];
        if cmd == "live" {
            args.push("--no-tui");
        }
        let out = out.to_str().unwrap();
        if cmd == "record" {
            args.extend(["-o", out]);
        }
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{cmd}: {o:?}");
        assert!(
            stderr(&o).contains(&format!("--metrics: could not listen on {addr}")),
            "{cmd}: {}",
            stderr(&o)
        );
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_findings_file_that_cannot_be_opened_fails_at_start() {
    let d = tmpdir("findings-bad");
    let sock = format!("unix:{}", d.join("a.sock").display());
    let missing = d.join("no/such/dir/f.jsonl");
    let missing = missing.to_str().unwrap();
    let dir = d.to_str().unwrap();
    for target in [missing, dir] {
        let o = run(&["check", "--findings", target, &example()]);
        assert_eq!(o.status.code(), Some(2), "{o:?}");
        assert!(
            stderr(&o).contains(&format!(
                "--findings: could not open {target} for appending"
            )),
            "{}",
            stderr(&o)
        );
        let o = run(&[
            "live",
            "--no-tui",
            "--listen",
            &sock,
            "--no-local",
            "--duration",
            "5s",
            "--findings",
            target,
        ]);
        assert_eq!(o.status.code(), Some(2), "{o:?}");
        assert!(
            stderr(&o).contains("--findings: could not open"),
            "{}",
            stderr(&o)
        );
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn metrics_are_refused_for_a_check_of_files() {
    let o = run(&["check", "--metrics", "0", &example()]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(
        stderr(&o).contains("--metrics serves a live check"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_check_of_files_appends_its_report_findings() {
    let d = tmpdir("findings-report");
    let f = d.join("f.jsonl");
    std::fs::write(&f, "").unwrap();
    let lab = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tracer-core/tests/fixtures/lab/x86.vft"
    );
    for round in 1..=2 {
        let o = run(&[
            "check",
            "--format",
            "json",
            "--findings",
            f.to_str().unwrap(),
            lab,
        ]);
        assert_eq!(o.status.code(), Some(1), "{o:?}");
        let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let reported = report["findings"].as_array().unwrap();
        assert!(!reported.is_empty());
        let text = std::fs::read_to_string(&f).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        // Appended: each round adds the report's findings.
        assert_eq!(lines.len(), round * reported.len(), "{text}");
        for (line, rf) in lines[(round - 1) * reported.len()..].iter().zip(reported) {
            assert_eq!(line["source"], "report");
            for field in [
                "rule", "name", "severity", "message", "node", "address", "evidence",
            ] {
                assert_eq!(line[field], rf[field], "{field}");
            }
        }
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn an_agents_only_live_session_serves_metrics_and_stops_clean() {
    let d = tmpdir("metrics-live");
    let sock = format!("unix:{}", d.join("a.sock").display());
    let f = d.join("f.jsonl");
    let o = run(&[
        "live",
        "--no-tui",
        "--listen",
        &sock,
        "--no-local",
        "--duration",
        "1s",
        "--metrics",
        "127.0.0.1:0",
        "--findings",
        f.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let err = stderr(&o);
    assert!(
        err.contains("vfio-trace: metrics at http://127.0.0.1:"),
        "{err}"
    );
    assert!(
        err.contains(&format!("appending findings to {}", f.display())),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&f).unwrap(),
        "",
        "no finding, no line"
    );
    let _ = std::fs::remove_dir_all(&d);
}
