//! Agents → aggregator over loopback TCP and unix sockets, with the real
//! binary on both sides (agents fed synthetic events with the hidden
//! `--synthetic N`; the wire path is the real one). No root needed: the
//! aggregator runs `record --no-local`.

use std::{
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    thread,
    time::{Duration, Instant},
};

use tracer_core::tracefile::TraceReader;

const BIN: &str = env!("CARGO_BIN_EXE_vfio-trace");
const TOKEN: &str = "test-token-123";

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vt-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A child whose stderr lines are collected as they come.
struct Proc {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<thread::JoinHandle<()>>,
}

impl Proc {
    fn spawn(args: &[&str], envs: &[(&str, &str)]) -> Proc {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env("RUST_LOG", "info")
            .env_remove("VFIO_TRACE_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let err = child.stderr.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let l2 = lines.clone();
        let reader = thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                l2.lock().unwrap().push(line);
            }
        });
        Proc {
            child,
            lines,
            reader: Some(reader),
        }
    }

    fn text(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// Waits for a stderr line containing `pat`; returns it.
    fn wait_line(&self, pat: &str, within: Duration) -> String {
        let t = Instant::now();
        loop {
            if let Some(l) = self.lines.lock().unwrap().iter().find(|l| l.contains(pat)) {
                return l.clone();
            }
            assert!(
                t.elapsed() < within,
                "no line with {pat:?} within {within:?}; stderr:\n{}",
                self.text()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    /// Waits for exit (killing it after `within`); returns (code, stderr).
    fn wait(mut self, within: Duration) -> (Option<i32>, String) {
        let t = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if t.elapsed() > within {
                let _ = self.child.kill();
                panic!("process did not exit within {within:?}:\n{}", self.text());
            }
            thread::sleep(Duration::from_millis(20));
        };
        if let Some(r) = self.reader.take() {
            r.join().unwrap();
        }
        (status.code(), self.text())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `record --no-local` on loopback TCP and a unix socket; returns it and
/// its TCP address.
fn aggregator(dir: &Path, extra: &[&str]) -> (Proc, String) {
    let out = dir.join("out.vtrace");
    let sock = dir.join("agg.sock");
    let mut args = vec![
        "record",
        "--no-local",
        "--listen",
        "tcp:0",
        "--quiet",
        "-o",
        out.to_str().unwrap(),
    ];
    let unix = format!("unix:{}", sock.display());
    args.extend(["--listen", &unix]);
    args.extend(extra);
    let agg = Proc::spawn(&args, &[("VFIO_TRACE_TOKEN", TOKEN)]);
    let line = agg.wait_line("listening for agents on tcp:", Duration::from_secs(20));
    let tcp = line.rsplit(' ').next().unwrap().to_string();
    assert!(
        tcp.starts_with("tcp:127.0.0.1:"),
        "loopback by default: {line}"
    );
    agg.wait_line("recording to", Duration::from_secs(20));
    (agg, tcp)
}

/// The number in `sent N of` from an agent's summary line.
fn sent(text: &str) -> u64 {
    let l = text
        .lines()
        .find(|l| l.contains("vfio-trace agent: sent"))
        .unwrap_or_else(|| panic!("no summary:\n{text}"));
    l.split_whitespace().nth(3).unwrap().parse().unwrap()
}

fn field(text: &str, after: &str) -> u64 {
    let l = text
        .lines()
        .find(|l| l.contains("vfio-trace agent: sent"))
        .unwrap();
    let i = l.find(after).unwrap_or_else(|| panic!("{after:?} in {l}")) + after.len();
    l[i..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// Events per node that the agents sent (the recorder's own `stream_gap`
/// events, which mark where a node's stream lost events, are not theirs).
fn count_by_node(path: &Path) -> (Vec<String>, Vec<u64>) {
    let (names, counts, _) = count_by_node_and_gaps(path);
    (names, counts)
}

/// [`count_by_node`], and the `stream_gap` events per node.
fn count_by_node_and_gaps(path: &Path) -> (Vec<String>, Vec<u64>, Vec<u64>) {
    let mut r = TraceReader::open(path).unwrap();
    let events: Vec<_> = r.by_ref().map(Result::unwrap).collect();
    let names: Vec<String> = r.nodes().iter().map(|n| n.name.clone()).collect();
    let mut counts = vec![0u64; names.len()];
    let mut gaps = vec![0u64; names.len()];
    for e in &events {
        if matches!(e.kind, tracer_core::event::EventKind::StreamGap(_)) {
            gaps[usize::from(e.node)] += 1;
        } else {
            counts[usize::from(e.node)] += 1;
        }
    }
    (names, counts, gaps)
}

#[test]
fn two_agents_one_killed_mid_stream() {
    let dir = tmpdir("two");
    let (agg, tcp) = aggregator(&dir, &[]);
    let unix = format!("unix:{}", dir.join("agg.sock").display());
    let a = Proc::spawn(
        &[
            "agent",
            "--connect",
            &tcp,
            "--token",
            TOKEN,
            "--node",
            "ga",
            "--synthetic",
            "50000",
        ],
        &[],
    );
    let b = Proc::spawn(
        &[
            "agent",
            "--connect",
            &unix,
            "--node",
            "gb",
            "--synthetic",
            "50000",
            "--duration",
            "3s",
        ],
        &[],
    );
    a.wait_line("connected to", Duration::from_secs(10));
    b.wait_line("connected to", Duration::from_secs(10));
    thread::sleep(Duration::from_millis(800));
    a.signal(libc::SIGKILL);
    let (_, _) = a.wait(Duration::from_secs(5));
    // The aggregator reports the loss and keeps the other agent.
    let lost = agg.wait_line("agent ga", Duration::from_secs(1));
    let lost = if lost.contains("lost") {
        lost
    } else {
        agg.wait_line("lost:", Duration::from_secs(5))
    };
    assert!(
        lost.contains("ga") && lost.contains("without goodbye"),
        "{lost}"
    );
    let (code, btext) = b.wait(Duration::from_secs(15));
    assert_eq!(code, Some(0), "{btext}");
    agg.wait_line("agent gb", Duration::from_secs(5));
    agg.wait_line("said goodbye", Duration::from_secs(5));
    agg.signal(libc::SIGINT);
    let (code, atext) = agg.wait(Duration::from_secs(15));
    assert_eq!(code, Some(0), "{atext}");

    // Agent B delivered everything: nothing dropped, lost or left behind.
    assert_eq!(field(&btext, "dropped "), 0, "{btext}");
    assert_eq!(field(&btext, "lost "), 0, "{btext}");
    assert_eq!(field(&btext, "unsent "), 0, "{btext}");
    let b_sent = sent(&btext);
    assert!(b_sent > 50_000, "{btext}");

    let (names, counts) = count_by_node(&dir.join("out.vtrace"));
    let ia = names
        .iter()
        .position(|n| n == "ga")
        .expect("ga in the node table");
    let ib = names
        .iter()
        .position(|n| n == "gb")
        .expect("gb in the node table");
    assert_eq!(counts[ib], b_sent, "every event B sent is in the file");
    assert!(counts[ia] > 0, "A's events before the kill are kept");
    assert_eq!(counts[0], 0, "--no-local: no local events");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_peers_are_refused_by_name_and_the_aggregator_keeps_going() {
    let dir = tmpdir("bad");
    let (agg, tcp) = aggregator(&dir, &[]);
    let hostport = tcp.strip_prefix("tcp:").unwrap().to_string();
    let started = std::time::Instant::now();

    // Silent peers: over TCP refused after 5 s without a hello; on a unix
    // socket (a VMM's chardev connects long before the agent in its VM
    // speaks) the 5 s only start at the first byte.
    let silent_tcp = std::net::TcpStream::connect(&hostport).unwrap();
    let mut silent_unix = std::os::unix::net::UnixStream::connect(dir.join("agg.sock")).unwrap();

    // Garbage (an HTTP request).
    let mut s = std::net::TcpStream::connect(&hostport).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let l = agg.wait_line("bad magic", Duration::from_secs(5));
    assert!(l.contains("refused tcp:127.0.0.1:"), "{l}");
    drop(s);

    // A header announcing a 1 GiB hello: refused from the header alone.
    let mut h = Vec::new();
    h.extend_from_slice(b"VTAW");
    h.extend_from_slice(&[1, 1, 0, 0]);
    h.extend_from_slice(&(1u32 << 30).to_le_bytes());
    h.extend_from_slice(&[0; 4]);
    let mut s = std::net::TcpStream::connect(&hostport).unwrap();
    s.write_all(&h).unwrap();
    let l = agg.wait_line("exceeds the limit", Duration::from_secs(5));
    assert!(l.contains("1073741824"), "{l}");
    drop(s);

    // A future protocol version.
    let mut v = h.clone();
    v[4] = 9;
    v[8..12].copy_from_slice(&0u32.to_le_bytes());
    let mut s = std::net::TcpStream::connect(&hostport).unwrap();
    s.write_all(&v).unwrap();
    agg.wait_line("protocol version 9", Duration::from_secs(5));
    drop(s);

    // A real agent with the wrong token: refused, exits 2 and says why.
    let bad = Proc::spawn(
        &[
            "agent",
            "--connect",
            &tcp,
            "--token",
            "nope",
            "--node",
            "intruder",
            "--synthetic",
            "1000",
        ],
        &[],
    );
    let (code, text) = bad.wait(Duration::from_secs(10));
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("refused") && text.contains("token"), "{text}");
    agg.wait_line(
        "\"intruder\": missing or wrong token",
        Duration::from_secs(5),
    );

    // No token at all over TCP: the agent does not even try.
    let (code, text) = Proc::spawn(&["agent", "--connect", &tcp, "--synthetic", "1"], &[])
        .wait(Duration::from_secs(10));
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("needs the aggregator's token"), "{text}");

    let l = agg.wait_line("no hello within 5 s", Duration::from_secs(10));
    assert!(l.contains("refused tcp:127.0.0.1:"), "{l}");
    drop(silent_tcp);
    std::thread::sleep(Duration::from_secs(6).saturating_sub(started.elapsed()));
    assert!(
        !agg.text().contains("refused unix:"),
        "an idle unix peer is kept: {}",
        agg.text()
    );
    silent_unix.write_all(b"hello?").unwrap();
    let l = agg.wait_line("refused unix:", Duration::from_secs(5));
    assert!(l.contains("bad magic"), "{l}");
    drop(silent_unix);

    // The aggregator still works: a good agent (token from the environment).
    let good = Proc::spawn(
        &[
            "agent",
            "--connect",
            &tcp,
            "--node",
            "good",
            "--synthetic",
            "20000",
            "--duration",
            "1s",
        ],
        &[("VFIO_TRACE_TOKEN", TOKEN)],
    );
    let (code, text) = good.wait(Duration::from_secs(15));
    assert_eq!(code, Some(0), "{text}");
    let n = sent(&text);
    agg.wait_line("agent good", Duration::from_secs(5));
    agg.wait_line("said goodbye", Duration::from_secs(5));
    agg.signal(libc::SIGTERM);
    let (code, atext) = agg.wait(Duration::from_secs(15));
    assert_eq!(code, Some(0), "{atext}");
    let (names, counts) = count_by_node(&dir.join("out.vtrace"));
    assert_eq!(names.len(), 2, "refused peers get no node: {names:?}");
    assert_eq!(counts[1], n);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn agent_buffers_while_disconnected_reconnects_and_counts_drops() {
    let dir = tmpdir("buf");
    let sock = dir.join("agg.sock");
    let unix = format!("unix:{}", sock.display());
    // The agent starts first: nobody listens yet. 200k events/s into a
    // 1 MiB buffer overflows within the ~3 s before the aggregator comes.
    let agent = Proc::spawn(
        &[
            "agent",
            "--connect",
            &unix,
            "--node",
            "late",
            "--synthetic",
            "200000",
            "--buffer-mib",
            "1",
            "--duration",
            "7s",
        ],
        &[],
    );
    agent.wait_line("cannot reach aggregator", Duration::from_secs(10));
    thread::sleep(Duration::from_secs(3));
    let (agg, _) = aggregator(&dir, &[]);
    agent.wait_line("connected to", Duration::from_secs(10));
    let (code, text) = agent.wait(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("dropping new events"), "{text}");
    let dropped = field(&text, "dropped ");
    let n = sent(&text);
    assert!(dropped > 0, "{text}");
    assert_eq!(field(&text, "unsent "), 0, "{text}");
    // The aggregator heard about the drops from the agent's health frames
    // and from the missing batch numbers.
    let l = agg.wait_line("events dropped", Duration::from_secs(5));
    assert!(l.contains("late") && l.contains("batches missing"), "{l}");
    agg.wait_line("said goodbye", Duration::from_secs(5));
    agg.signal(libc::SIGINT);
    let (code, atext) = agg.wait(Duration::from_secs(15));
    assert_eq!(code, Some(0), "{atext}");
    let (names, counts, gaps) = count_by_node_and_gaps(&dir.join("out.vtrace"));
    assert_eq!(names[1], "late");
    assert_eq!(counts[1], n, "what was buffered arrived after the connect");
    assert!(gaps[1] > 0, "the recording marks the late node's drops");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `check --no-local --listen`: agents' events are checked, their nodes are
/// in the report, and an agent killed mid-stream makes it incomplete.
#[test]
fn check_takes_agents_and_a_lost_agent_makes_it_incomplete() {
    let dir = tmpdir("check");
    let sock = dir.join("check.sock");
    let unix = format!("unix:{}", sock.display());
    let check = Command::new(BIN)
        .args([
            "check",
            "--no-local",
            "--listen",
            &unix,
            "--duration",
            "6s",
            "--format",
            "json",
        ])
        .env_remove("VFIO_TRACE_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while !sock.exists() {
        assert!(t.elapsed() < Duration::from_secs(20), "no socket");
        thread::sleep(Duration::from_millis(50));
    }
    let good = Proc::spawn(
        &[
            "agent",
            "--connect",
            &unix,
            "--node",
            "ci-guest",
            "--synthetic",
            "2000",
            "--duration",
            "1s",
        ],
        &[],
    );
    let doomed = Proc::spawn(
        &[
            "agent",
            "--connect",
            &unix,
            "--node",
            "doomed",
            "--synthetic",
            "2000",
        ],
        &[],
    );
    doomed.wait_line("connected to", Duration::from_secs(10));
    thread::sleep(Duration::from_millis(500));
    doomed.signal(libc::SIGKILL);
    let (code, text) = good.wait(Duration::from_secs(15));
    assert_eq!(code, Some(0), "{text}");
    let out = check.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{stderr}", String::from_utf8_lossy(&out.stdout)));
    let s = &report["summary"];
    let names: Vec<&str> = s["node_names"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(
        names.contains(&"ci-guest") && names.contains(&"doomed"),
        "{names:?}"
    );
    assert!(s["events"].as_u64().unwrap() > 0, "{s}");
    assert_eq!(s["complete"], false, "{s}");
    let reasons = s["incomplete_reasons"].to_string();
    assert!(
        reasons.contains("doomed") && reasons.contains("lost"),
        "{reasons}\n{stderr}"
    );
    assert_ne!(out.status.code(), Some(0), "never clean: {stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A VMM's chardev in miniature: one connection to the aggregator that
/// outlives the agents; the agents that connect to `listen` in turn all
/// speak through it, the way a guest agent on a virtio-serial port does
/// when it is restarted. Returns after `agents` agents have come and gone.
fn relay(listen: &Path, upstream: &Path, agents: usize) -> thread::JoinHandle<()> {
    use std::io::{Read, Write};
    use std::os::unix::net::{UnixListener, UnixStream};
    let l = UnixListener::bind(listen).unwrap();
    let mut up = UnixStream::connect(upstream).unwrap();
    let down: Arc<Mutex<Option<UnixStream>>> = Arc::new(Mutex::new(None));
    let d2 = down.clone();
    let mut up_rd = up.try_clone().unwrap();
    // Aggregator → current agent; dropped while none is connected (a
    // guest port nobody has open).
    thread::spawn(move || {
        let mut buf = [0u8; 65536];
        while let Ok(n) = up_rd.read(&mut buf) {
            if n == 0 {
                break;
            }
            if let Some(d) = d2.lock().unwrap().as_mut() {
                let _ = d.write_all(&buf[..n]);
            }
        }
    });
    thread::spawn(move || {
        for conn in l.incoming().take(agents) {
            let mut conn = conn.unwrap();
            *down.lock().unwrap() = Some(conn.try_clone().unwrap());
            let mut buf = [0u8; 65536];
            while let Ok(n) = conn.read(&mut buf) {
                if n == 0 {
                    break;
                }
                up.write_all(&buf[..n]).unwrap();
            }
            *down.lock().unwrap() = None;
        }
    })
}

#[test]
fn agents_restarted_on_one_stream_rejoin_without_losing_events() {
    let dir = tmpdir("restart");
    let (agg, _) = aggregator(&dir, &[]);
    let port = dir.join("relay.sock");
    let relay = relay(&port, &dir.join("agg.sock"), 3);
    let via = format!("unix:{}", port.display());
    let agent = |rate: &str, duration: &str| {
        Proc::spawn(
            &[
                "agent",
                "--connect",
                &via,
                "--node",
                "guest",
                "--synthetic",
                rate,
                "--duration",
                duration,
            ],
            &[],
        )
    };
    // 1. An agent that ends with a goodbye: the stream stays open.
    let (code, a) = agent("20000", "1500ms").wait(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{a}");
    agg.wait_line("said goodbye", Duration::from_secs(5));
    // 2. One killed between frames (a slow trickle: it is idle at the kill).
    let b = agent("20", "30s");
    b.wait_line("connected to", Duration::from_secs(10));
    thread::sleep(Duration::from_millis(700));
    b.signal(libc::SIGKILL);
    let _ = b.wait(Duration::from_secs(5));
    // 3. The next one's hello arrives on the same stream with no goodbye
    // before it: the aggregator starts its session there.
    let (code, c) = agent("20000", "1500ms").wait(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{c}");
    let l = agg.wait_line("without a goodbye", Duration::from_secs(5));
    assert!(l.contains("lost"), "{l}");
    relay.join().unwrap();
    agg.signal(libc::SIGINT);
    let (code, atext) = agg.wait(Duration::from_secs(15));
    assert_eq!(code, Some(0), "{atext}");
    // Three sessions on one connection, all as node 1.
    assert_eq!(atext.matches(" joined from ").count(), 1, "{atext}");
    assert_eq!(atext.matches(" rejoined from ").count(), 2, "{atext}");
    assert!(!atext.contains("refused"), "{atext}");
    // Everything the clean agents sent is in the file, under one node.
    let (names, counts) = count_by_node(&dir.join("out.vtrace"));
    let i = names.iter().position(|n| n == "guest").expect("guest node");
    assert_eq!(
        names.iter().filter(|n| n.starts_with("guest")).count(),
        1,
        "{names:?}"
    );
    assert!(counts[i] >= sent(&a) + sent(&c), "{counts:?} {a} {c}");
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------
// Bounds: hostile or silent peers cost the aggregator a bounded amount of
// memory, connections and time; agents stop at their duration.

/// A hand-driven agent over loopback TCP: says hello and answers the clock
/// pings until the welcome, then does only what the test says.
struct RawAgent {
    s: std::net::TcpStream,
    buf: Vec<u8>,
}

impl RawAgent {
    /// Connects and completes the handshake; `Err` with the aggregator's
    /// goodbye message (or the I/O error) when it is refused.
    fn join(hostport: &str, token: &str, name: &str) -> Result<(RawAgent, u32), String> {
        use std::io::Read;
        use tracer_core::{
            event::{NodeInfo, NodeRole},
            wire::{decode_frame, encode_frame, Hello, Message, Pong, MAX_PAYLOAD},
        };
        let mut s = std::net::TcpStream::connect(hostport).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut f = Vec::new();
        encode_frame(
            &Message::Hello(Hello {
                tool_version: "test".into(),
                node: NodeInfo {
                    name: name.into(),
                    role: NodeRole::Guest,
                    kernel: "k".into(),
                    machine: "x86_64".into(),
                    clock_offset_ns: 0,
                },
                mono_ns: 1,
                token: token.into(),
                probes: vec![],
            }),
            &mut f,
        );
        s.write_all(&f).map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            while let Some((m, used)) =
                decode_frame(&buf, MAX_PAYLOAD).map_err(|e| e.to_string())?
            {
                buf.drain(..used);
                match m {
                    Message::Ping(p) => {
                        let mut f = Vec::new();
                        let pong = Pong {
                            seq: p.seq,
                            t_ns: p.t_ns,
                            agent_ns: p.t_ns,
                        };
                        encode_frame(&Message::Pong(pong), &mut f);
                        s.write_all(&f).map_err(|e| e.to_string())?;
                    }
                    Message::Welcome(w) => return Ok((RawAgent { s, buf }, w.max_payload)),
                    Message::Goodbye(g) => return Err(g.message),
                    m => return Err(format!("unexpected {m:?}")),
                }
            }
            let n = s.read(&mut chunk).map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("closed".into());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Reads until the aggregator's goodbye (its message) or the end.
    fn goodbye(&mut self) -> Option<String> {
        use std::io::Read;
        use tracer_core::wire::{decode_frame, Message, MAX_PAYLOAD};
        let mut chunk = [0u8; 4096];
        loop {
            while let Ok(Some((m, used))) = decode_frame(&self.buf, MAX_PAYLOAD) {
                self.buf.drain(..used);
                if let Message::Goodbye(g) = m {
                    return Some(g.message);
                }
            }
            match self.s.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

/// VmRSS of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let l = s.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    l.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The attack: many authenticated connections each declaring the
/// largest frame and sending (almost) nothing of it. The aggregator holds
/// memory for the bytes that came, not for the lengths declared; beyond
/// the connection cap (64) a connection is refused with a line naming it.
#[test]
fn many_connections_declaring_huge_frames_stay_bounded_and_the_cap_refuses_by_name() {
    const CONNS: usize = 150;
    let dir = tmpdir("bounded");
    let (agg, tcp) = aggregator(&dir, &[]);
    let hostport = tcp.strip_prefix("tcp:").unwrap().to_string();
    let pid = agg.child.id();
    thread::sleep(Duration::from_millis(300));
    let before = rss_kib(pid);

    let mut held = Vec::new();
    let mut refused = Vec::new();
    for i in 0..CONNS {
        match RawAgent::join(&hostport, TOKEN, &format!("hog{i}")) {
            Ok((mut a, max)) => {
                // A header declaring the largest frame the welcome allows,
                // then 1 KiB of it, then nothing.
                let mut h = Vec::new();
                h.extend_from_slice(b"VTAW");
                h.extend_from_slice(&[1, 3, 0, 0]);
                h.extend_from_slice(&max.to_le_bytes());
                h.extend_from_slice(&[0; 4]);
                h.extend_from_slice(&[0x55; 1024]);
                a.s.write_all(&h).unwrap();
                held.push(a);
            }
            Err(e) => refused.push(e),
        }
    }
    assert_eq!(held.len(), 64, "the default cap; refused: {refused:?}");
    assert_eq!(refused.len(), CONNS - 64);
    // The refused agents were told why (or, racing the close, reset).
    assert!(
        refused
            .iter()
            .any(|e| e.contains("connection limit reached")),
        "{refused:?}"
    );
    let l = agg.wait_line("connection limit reached", Duration::from_secs(5));
    assert!(l.contains("refused tcp:127.0.0.1:"), "names the peer: {l}");
    assert!(l.contains("64 connections already open"), "{l}");

    thread::sleep(Duration::from_millis(500));
    let after = rss_kib(pid);
    let grew = after.saturating_sub(before);
    eprintln!(
        "aggregator RSS: {before} KiB before, {after} KiB with {} connections each declaring \
         a {} KiB frame (+{grew} KiB)",
        held.len(),
        (1u32 << 20) / 1024
    );
    // Allocating the declared lengths would take 64 MiB (the old limit:
    // 256 MiB); what arrived is 64 KiB.
    assert!(grew < 24 << 10, "grew by {grew} KiB");

    // Closing them frees the slots: a real agent gets in and delivers.
    drop(held);
    let good = Proc::spawn(
        &[
            "agent",
            "--connect",
            &tcp,
            "--token",
            TOKEN,
            "--node",
            "after",
            "--synthetic",
            "1000",
            "--duration",
            "1s",
        ],
        &[],
    );
    let (code, text) = good.wait(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{text}");
    assert!(sent(&text) > 0, "{text}");
    agg.signal(libc::SIGINT);
    let (code, atext) = agg.wait(Duration::from_secs(15));
    assert_eq!(code, Some(0), "{atext}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// An agent that goes silent after its hello is dropped after
/// `--agent-timeout`, with a line naming it; one that only sends its
/// heartbeat (health, every second) is kept.
#[test]
fn a_silent_agent_is_dropped_after_the_idle_timeout_and_a_quiet_one_is_kept() {
    use tracer_core::wire::{encode_frame, AgentHealth, Message};
    let dir = tmpdir("idle");
    let (agg, tcp) = aggregator(&dir, &["--agent-timeout", "2s"]);
    let hostport = tcp.strip_prefix("tcp:").unwrap().to_string();
    let (mut mute, _) = RawAgent::join(&hostport, TOKEN, "mute").unwrap();
    let (mut quiet, _) = RawAgent::join(&hostport, TOKEN, "quiet").unwrap();
    let t = Instant::now();
    let beat = thread::spawn(move || {
        for _ in 0..5 {
            let mut f = Vec::new();
            encode_frame(&Message::Health(AgentHealth::default()), &mut f);
            quiet.s.write_all(&f).unwrap();
            thread::sleep(Duration::from_secs(1));
        }
        quiet
    });
    let l = agg.wait_line("lost: idle", Duration::from_secs(10));
    let took = t.elapsed();
    assert!(
        l.contains("mute") && l.contains("lost") && l.contains("tcp:127.0.0.1:"),
        "{l}"
    );
    assert!(took >= Duration::from_millis(1900), "{took:?}");
    assert!(took < Duration::from_secs(6), "{took:?}");
    let bye = mute.goodbye().unwrap_or_default();
    assert!(bye.contains("idle"), "the agent is told: {bye:?}");
    let quiet = beat.join().unwrap();
    assert!(
        !agg.text()
            .lines()
            .any(|l| l.contains("agent quiet") && (l.contains("lost") || l.contains("left"))),
        "heartbeats keep it: {}",
        agg.text()
    );
    drop(quiet);
    agg.signal(libc::SIGINT);
    let (code, atext) = agg.wait(Duration::from_secs(15));
    assert_eq!(code, Some(0), "{atext}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A listener other machines can reach refuses to start with a short
/// token (the one-space token on 0.0.0.0), naming the rule; out
/// of range limits are refused too.
#[test]
fn short_tokens_are_refused_on_listeners_other_machines_reach() {
    let out = tmpdir("token").join("x.vtrace");
    for token in [" ", "short-token"] {
        let (code, text) = Proc::spawn(
            &[
                "record",
                "--no-local",
                "--listen",
                "tcp:0.0.0.0:0",
                "--token",
                token,
                "-o",
                out.to_str().unwrap(),
            ],
            &[],
        )
        .wait(Duration::from_secs(20));
        assert_eq!(code, Some(2), "{text}");
        assert!(
            text.contains("at least 16 bytes") && text.contains("tcp:0.0.0.0:0"),
            "{text}"
        );
        assert!(!text.contains("recording to"), "{text}");
    }
    let (code, text) = Proc::spawn(
        &[
            "record",
            "--no-local",
            "--listen",
            "tcp:0",
            "--agent-timeout",
            "100ms",
            "-o",
            out.to_str().unwrap(),
        ],
        &[("VFIO_TRACE_TOKEN", TOKEN)],
    )
    .wait(Duration::from_secs(20));
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("--agent-timeout"), "{text}");
}

/// With nothing listening, `agent --duration 2s` stops at its duration
/// (not after the 5 s drain and a backoff) and exits 2 saying that nothing
/// was delivered.
#[test]
fn an_agent_that_reached_nobody_stops_at_its_duration_and_exits_2() {
    let dir = tmpdir("nobody");
    // A loopback port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let tcp = format!("tcp:127.0.0.1:{port}");
    let unix = format!("unix:{}", dir.join("nobody.sock").display());
    for addr in [&tcp, &unix] {
        let t = Instant::now();
        let a = Proc::spawn(
            &[
                "agent",
                "--connect",
                addr,
                "--token",
                TOKEN,
                "--synthetic",
                "1000",
                "--duration",
                "2s",
            ],
            &[],
        );
        let (code, text) = a.wait(Duration::from_secs(20));
        let took = t.elapsed();
        assert_eq!(code, Some(2), "{text}");
        assert!(
            text.contains("nothing was delivered") && text.contains("never connected"),
            "{text}"
        );
        assert_eq!(sent(&text), 0, "{text}");
        assert!(
            took < Duration::from_millis(3500),
            "{addr}: ran {took:?}\n{text}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
