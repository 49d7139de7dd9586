//! `--metrics` and `--findings` end to end, with Debian's real Prometheus:
//! `vfio-trace check --listen --no-local --metrics --findings` runs as the
//! service does; an agent (this test, speaking the agent protocol)
//! streams a lab recording with findings (the x86 scenario's fault
//! steps); Prometheus scrapes vfio-trace and its HTTP API returns the
//! findings counters, which must equal what `vfio-trace check` reports
//! for the same recording. `promtool check metrics` must be clean on the
//! scraped page and `promtool check rules` on docs/prometheus-rules.yml.
//!
//! Needs `prometheus` and `promtool` on PATH (`cargo xtask test` installs
//! them); without them the test says so and passes, except under CI
//! (`CI=true`), where it fails.

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    thread,
    time::{Duration, Instant},
};

use tracer_core::{
    event::{Event, NodeInfo, NodeRole},
    tracefile::read_all,
    wire::{
        decode_frame, encode_frame, AgentHealth, ByeCode, EventBatch, Goodbye, Hello, Message, Pong,
    },
};

const BIN: &str = env!("CARGO_BIN_EXE_vfio-trace");
const TOKEN: &str = "metrics-test-token";
const NODE: &str = "lab-x86";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn recording() -> PathBuf {
    root().join("tracer-core/tests/fixtures/lab/x86.vft")
}

fn on_path(bin: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()))
}

/// Whether prometheus is here; fails under CI when it is not.
fn have_prometheus() -> bool {
    let missing: Vec<&str> = ["prometheus", "promtool"]
        .into_iter()
        .filter(|b| !on_path(b))
        .collect();
    if missing.is_empty() {
        return true;
    }
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    assert!(
        !ci,
        "{missing:?} not on PATH under CI: `cargo xtask test` installs Debian's prometheus"
    );
    eprintln!(
        "skipping: {missing:?} not on PATH (apt-get install prometheus, or `cargo xtask test`)"
    );
    false
}

/// A child whose stderr lines are collected; killed when dropped.
struct Proc {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    fn spawn(mut cmd: Command) -> Proc {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let err = child.stderr.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let l2 = lines.clone();
        thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                l2.lock().unwrap().push(line);
            }
        });
        Proc { child, lines }
    }

    fn text(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    fn wait_line(&self, pat: &str, within: Duration) -> String {
        let t = Instant::now();
        loop {
            if let Some(l) = self.lines.lock().unwrap().iter().find(|l| l.contains(pat)) {
                return l.clone();
            }
            assert!(
                t.elapsed() < within,
                "no line with {pat:?}; stderr:\n{}",
                self.text()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain HTTP/1.0 GET; returns (status line, body).
fn try_get(addr: SocketAddr, target: &str) -> std::io::Result<(String, String)> {
    let mut c = TcpStream::connect(addr)?;
    c.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(c, "GET {target} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut out = String::new();
    c.read_to_string(&mut out)?;
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    Ok((
        head.lines().next().unwrap_or_default().to_string(),
        body.to_string(),
    ))
}

fn http_get(addr: SocketAddr, target: &str) -> (String, String) {
    try_get(addr, target).unwrap_or_else(|e| panic!("GET http://{addr}{target}: {e}"))
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The agent side of the protocol, enough to stream a recording.
struct Agent {
    conn: TcpStream,
    seq: u64,
}

impl Agent {
    fn connect(addr: &str, node: NodeInfo, mono_ns: u64) -> Agent {
        let mut conn = TcpStream::connect(addr).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let hello = Message::Hello(Hello {
            tool_version: "metrics-test".into(),
            node,
            mono_ns,
            token: TOKEN.into(),
            probes: Vec::new(),
        });
        let mut out = Vec::new();
        encode_frame(&hello, &mut out);
        let started = Instant::now();
        conn.write_all(&out).unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        'welcome: loop {
            let n = conn.read(&mut chunk).unwrap();
            assert!(n > 0, "the aggregator closed before its welcome");
            buf.extend_from_slice(&chunk[..n]);
            while let Some((msg, used)) = decode_frame(&buf, 1 << 20).unwrap() {
                buf.drain(..used);
                match msg {
                    Message::Welcome(_) => break 'welcome,
                    Message::Ping(p) => {
                        // The clock sync: this agent's clock runs on from
                        // the recording's last event.
                        let pong = Message::Pong(Pong {
                            seq: p.seq,
                            t_ns: p.t_ns,
                            agent_ns: mono_ns + started.elapsed().as_nanos() as u64,
                        });
                        let mut out = Vec::new();
                        encode_frame(&pong, &mut out);
                        conn.write_all(&out).unwrap();
                    }
                    m => panic!("before the welcome: {m:?}"),
                }
            }
        }
        // Whatever comes next (a ping a second) is read and dropped.
        conn.set_read_timeout(None).unwrap();
        let mut drain = conn.try_clone().unwrap();
        thread::spawn(move || while matches!(drain.read(&mut chunk), Ok(n) if n > 0) {});
        Agent { conn, seq: 0 }
    }

    /// Health every second (the agent's heartbeat) until `stop` is set.
    fn heartbeat(
        &self,
        sent: u64,
        stop: Arc<std::sync::atomic::AtomicBool>,
    ) -> thread::JoinHandle<()> {
        let mut conn = self.conn.try_clone().unwrap();
        thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let mut out = Vec::new();
                let health = AgentHealth {
                    events_sent: sent,
                    ..Default::default()
                };
                encode_frame(&Message::Health(health), &mut out);
                if conn.write_all(&out).is_err() {
                    break;
                }
                thread::sleep(Duration::from_millis(500));
            }
        })
    }

    fn send(&mut self, msg: &Message) {
        let mut out = Vec::new();
        encode_frame(msg, &mut out);
        self.conn.write_all(&out).unwrap();
    }

    fn events(&mut self, events: &[Event]) {
        for chunk in events.chunks(256) {
            self.seq += 1;
            self.send(&Message::Events(EventBatch::from_events(self.seq, chunk)));
        }
        self.send(&Message::Health(AgentHealth {
            events_sent: events.len() as u64,
            ..Default::default()
        }));
    }
}

/// What `vfio-trace check` reports for the recording: findings per rule.
fn reported_findings() -> BTreeMap<String, u64> {
    let out = Command::new(BIN)
        .args(["check", "--format", "json"])
        .arg(recording())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "the recording has findings: {out:?}"
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut by_rule = BTreeMap::new();
    for f in report["findings"].as_array().unwrap() {
        *by_rule
            .entry(f["rule"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
    }
    by_rule
}

/// `sum by (rule) (vfio_trace_findings_total{node=NODE})` through
/// Prometheus' HTTP API.
fn queried_findings(prom: SocketAddr) -> Option<BTreeMap<String, u64>> {
    let q = format!("sum by (rule) (vfio_trace_findings_total{{node=\"{NODE}\"}})");
    let (status, body) = try_get(prom, &format!("/api/v1/query?query={}", urlencode(&q))).ok()?;
    if !status.contains(" 200") {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    let result = v["data"]["result"].as_array()?;
    if result.is_empty() {
        return None;
    }
    Some(
        result
            .iter()
            .map(|r| {
                let rule = r["metric"]["rule"].as_str().unwrap_or_default().to_string();
                let n: f64 = r["value"][1]
                    .as_str()
                    .unwrap_or("nan")
                    .parse()
                    .unwrap_or(f64::NAN);
                (rule, n as u64)
            })
            .collect(),
    )
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn promtool(args: &[&str], stdin: Option<&str>) -> std::process::Output {
    let mut c = Command::new("promtool");
    c.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    child.wait_with_output().unwrap()
}

#[test]
fn rules_file_passes_promtool() {
    if !have_prometheus() {
        return;
    }
    let rules = root().join("docs/prometheus-rules.yml");
    let out = promtool(&["check", "rules", rules.to_str().unwrap()], None);
    assert!(out.status.success(), "promtool check rules: {out:?}");
}

#[test]
fn prometheus_scrapes_the_findings_of_a_lab_recording() {
    if !have_prometheus() {
        return;
    }
    let expected = reported_findings();
    assert!(!expected.is_empty());
    let dir = std::env::temp_dir().join(format!("vt-metrics-prom-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let findings = dir.join("findings.jsonl");

    // vfio-trace as the service runs it (no local probes: no root needed).
    let mut cmd = Command::new(BIN);
    cmd.args([
        "check",
        "--listen",
        "tcp:0",
        "--no-local",
        "--metrics",
        "127.0.0.1:0",
        "--findings",
    ])
    .arg(&findings)
    .env("VFIO_TRACE_TOKEN", TOKEN)
    .env("RUST_LOG", "info");
    let mut tracer = Proc::spawn(cmd);
    let line = tracer.wait_line("metrics at http://", Duration::from_secs(20));
    let metrics: SocketAddr = line
        .split("http://")
        .nth(1)
        .and_then(|s| s.strip_suffix("/metrics"))
        .unwrap()
        .parse()
        .unwrap();
    let line = tracer.wait_line("listening for agents on tcp:", Duration::from_secs(20));
    let agents = line.rsplit("tcp:").next().unwrap().to_string();

    // Wrong paths and methods, before any event.
    assert!(http_get(metrics, "/").0.contains(" 404"));
    let (status, page) = http_get(metrics, "/metrics");
    assert!(status.contains(" 200"), "{status}");
    assert!(page.contains("vfio_trace_agents_connected 0\n"), "{page}");

    // The agent streams the recording.
    let (header, events) = read_all(recording()).unwrap();
    let mut node = header.nodes[0].clone();
    node.name = NODE.into();
    node.role = NodeRole::Host;
    let mono = events.last().map_or(0, |e| e.ts_ns);
    let mut agent = Agent::connect(&agents, node, mono);
    agent.events(&events);
    let stop_beat = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let beat = agent.heartbeat(events.len() as u64, stop_beat.clone());

    // Prometheus scrapes it.
    let prom: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: vfio-trace\n    scrape_interval: 1s\n    \
             static_configs:\n      - targets: ['{metrics}']\n"
        ),
    )
    .unwrap();
    let mut pcmd = Command::new("prometheus");
    pcmd.arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address={prom}"));
    let server = Proc::spawn(pcmd);
    let t = Instant::now();
    let got = loop {
        match queried_findings(prom) {
            Some(got) if got == expected => break got,
            _ if t.elapsed() > Duration::from_secs(90) => panic!(
                "Prometheus did not return {expected:?} (last: {:?});\nprometheus:\n{}\nvfio-trace:\n{}",
                queried_findings(prom),
                server.text(),
                tracer.text()
            ),
            _ => thread::sleep(Duration::from_millis(500)),
        }
    };
    assert_eq!(got, expected);
    eprintln!(
        "Prometheus returned the findings per rule {got:?} after {:.1}s",
        t.elapsed().as_secs_f64()
    );
    // The agent is seen connected, and every event counted.
    let up = |q: &str| {
        let (_, body) = http_get(prom, &format!("/api/v1/query?query={}", urlencode(q)));
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["data"]["result"][0]["value"][1]
            .as_str()
            .map(str::to_string)
    };
    assert_eq!(up("vfio_trace_agents_connected").as_deref(), Some("1"));
    assert_eq!(
        up(&format!("sum(vfio_trace_events_total{{node=\"{NODE}\"}})")).as_deref(),
        Some(events.len().to_string().as_str())
    );
    assert_eq!(up("up{job=\"vfio-trace\"}").as_deref(), Some("1"));

    // The page lints clean.
    let (_, page) = http_get(metrics, "/metrics");
    eprintln!("--- scraped page ---\n{page}");
    let out = promtool(&["check", "metrics"], Some(&page));
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {out:?}\n{page}"
    );

    // The findings file: one line per finding, as raised.
    let text = std::fs::read_to_string(&findings).unwrap();
    let mut by_rule = BTreeMap::new();
    for l in text.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["node"], NODE, "{l}");
        assert_eq!(v["source"], "live", "{l}");
        assert!(v["time"].as_str().is_some_and(|t| t.ends_with('Z')), "{l}");
        assert!(!v["evidence"].as_array().unwrap().is_empty(), "{l}");
        *by_rule
            .entry(v["rule"].as_str().unwrap().to_string())
            .or_insert(0u64) += 1;
    }
    assert_eq!(by_rule, expected, "{text}");

    // The agent leaves; the check ends on SIGINT with the findings' exit code.
    stop_beat.store(true, std::sync::atomic::Ordering::SeqCst);
    beat.join().unwrap();
    agent.send(&Message::Goodbye(Goodbye {
        code: ByeCode::Done,
        message: "done".into(),
    }));
    drop(agent);
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(tracer.child.id() as i32, libc::SIGINT) };
    let t = Instant::now();
    let status = loop {
        if let Some(st) = tracer.child.try_wait().unwrap() {
            break st;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "check did not stop:\n{}",
            tracer.text()
        );
        thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(1), "{}", tracer.text());
    let after = std::fs::read_to_string(&findings).unwrap();
    assert_eq!(
        after.lines().count(),
        text.lines().count(),
        "nothing raised twice:\n{after}"
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
