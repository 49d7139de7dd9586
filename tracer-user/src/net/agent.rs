//! The agent side: events from this machine's source are encoded into
//! batches, kept in a bounded buffer, and written to the aggregator by a
//! connection task that reconnects with exponential backoff.
//!
//! ```text
//! source ──Vec<Event>──► run(): BatchEncoder ──frames──► Queue (≤ buffer_bytes)
//!                                                          │ writer (control first)
//!                        connection(): hello, pongs, welcome ▼ ──► aggregator
//! ```
//!
//! The buffer holds what the aggregator has not taken yet (disconnected, or
//! slower than the probes). When it is full, new batches are dropped and
//! counted: the oldest events (mappings set up first, which the chains need)
//! are kept. Frames being written when a connection dies are counted as
//! lost. Both counts are logged, sent in `Health` frames, and returned.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use thiserror::Error;
use tokio::{
    io::{AsyncWriteExt, BufReader, BufWriter},
    sync::{mpsc, Notify},
    time::{interval, sleep, timeout, Instant, MissedTickBehavior},
};
use tracer_core::{
    event::{Event, NodeInfo, ProbeStatus},
    wire::{
        encode_frame, AgentHealth, BatchEncoder, ByeCode, Goodbye, Hello, Message, Pong,
        MAX_HELLO_PAYLOAD,
    },
};

use super::{
    addr::Addr,
    framed::{write_msg, FrameReader},
    transport::connect,
};
use crate::node::monotonic_ns;

/// How the agent batches, buffers and reconnects.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    pub addr: Addr,
    pub node: NodeInfo,
    pub probes: Vec<ProbeStatus>,
    /// Empty: none.
    pub token: String,
    /// Most encoded bytes held for the aggregator.
    pub buffer_bytes: usize,
    /// A batch is closed at this many events...
    pub batch_events: u32,
    /// ...or encoded bytes...
    pub batch_bytes: usize,
    /// ...or after this long.
    pub flush_every: Duration,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// After the source ended, while connected: how long to keep
    /// delivering the rest.
    pub drain_timeout: Duration,
    /// After the source ended, while not connected: one immediate attempt
    /// (no backoff) for at most this long; connected within it, the rest
    /// is delivered (up to `drain_timeout`), else the agent gives up.
    pub last_try: Duration,
    pub health_every: Duration,
}

impl AgentConfig {
    pub fn new(addr: Addr, node: NodeInfo, probes: Vec<ProbeStatus>, token: String) -> Self {
        AgentConfig {
            addr,
            node,
            probes,
            token,
            buffer_bytes: 64 << 20,
            batch_events: 8192,
            batch_bytes: 256 << 10,
            flush_every: Duration::from_millis(20),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            drain_timeout: Duration::from_secs(5),
            last_try: Duration::from_secs(1),
            health_every: Duration::from_secs(1),
        }
    }
}

/// What an agent did, at the end.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AgentReport {
    /// Events the source produced.
    pub events_in: u64,
    /// Events written to a connection.
    pub sent: u64,
    /// Dropped because the buffer was full.
    pub dropped: u64,
    /// In frames being written when a connection died.
    pub lost: u64,
    /// Still buffered when the agent gave up at the end.
    pub unsent: u64,
    /// Successful handshakes.
    pub connects: u64,
    /// Why the last connection (or attempt) failed, if one did.
    pub last_error: Option<String>,
}

impl AgentReport {
    /// Nothing reached the aggregator: never connected, or none of the
    /// events the source produced was written. `None` when something was
    /// delivered, else why not.
    pub fn nothing_delivered(&self) -> Option<String> {
        let last = self
            .last_error
            .as_deref()
            .map_or_else(String::new, |e| format!(" (last error: {e})"));
        if self.connects == 0 {
            Some(format!("never connected{last}"))
        } else if self.events_in > 0 && self.sent == 0 {
            Some(format!("none of {} events was sent{last}", self.events_in))
        } else {
            None
        }
    }
}

#[derive(Debug, Error)]
pub enum AgentError {
    #[error("aggregator at {addr} refused this agent ({code:?}): {message}")]
    Refused {
        addr: Addr,
        code: ByeCode,
        message: String,
        report: AgentReport,
    },
}

#[derive(Default)]
struct Queue {
    control: VecDeque<Vec<u8>>,
    data: VecDeque<(Vec<u8>, u32)>,
    data_bytes: usize,
    data_events: u64,
    /// Events in frames the writer took and has not finished writing.
    in_flight: u64,
    sent: u64,
    dropped: u64,
    lost: u64,
    connects: u64,
    connected: bool,
    /// The source ended: say goodbye once the data is written.
    closing: bool,
}

#[derive(Default)]
struct Shared {
    q: Mutex<Queue>,
    notify: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.q.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push_control(&self, msg: &Message) {
        let mut f = Vec::new();
        encode_frame(msg, &mut f);
        self.lock().control.push_back(f);
        self.notify.notify_one();
    }

    /// Frames for the writer: control first, then data up to ~`max` bytes.
    fn take(&self, max: usize, out: &mut Vec<Vec<u8>>) {
        let mut q = self.lock();
        out.extend(q.control.drain(..));
        let mut bytes = 0;
        while bytes < max {
            let Some((f, n)) = q.data.pop_front() else {
                break;
            };
            bytes += f.len();
            q.data_bytes -= f.len();
            q.data_events -= u64::from(n);
            q.in_flight += u64::from(n);
            out.push(f);
        }
    }

    fn written(&self) {
        let mut q = self.lock();
        q.sent += q.in_flight;
        q.in_flight = 0;
    }

    fn health(&self) -> AgentHealth {
        let q = self.lock();
        AgentHealth {
            events_sent: q.sent,
            events_dropped: q.dropped,
            events_lost: q.lost,
            reconnects: q.connects.saturating_sub(1),
            buffered_events: q.data_events,
            buffered_bytes: q.data_bytes as u64,
        }
    }
}

enum ConnEnd {
    /// Everything was written and the goodbye sent.
    Finished,
    /// The aggregator refused the hello.
    Refused(Goodbye),
    Lost {
        connected: bool,
        why: String,
    },
}

/// Streams `events` to the aggregator until the channel closes and what is
/// buffered is delivered (or `drain_timeout` passes). Errors only when the
/// aggregator refuses the agent for good (token, version, name).
pub async fn run(
    cfg: AgentConfig,
    mut events: mpsc::Receiver<Vec<Event>>,
) -> Result<AgentReport, AgentError> {
    let cfg = Arc::new(cfg);
    let shared = Arc::new(Shared::default());
    let mut enc = BatchEncoder::new();
    let mut seq = 0u64;
    let mut events_in = 0u64;
    let mut dropping = Dropping::default();
    let mut conn = tokio::spawn(connection(cfg.clone(), shared.clone(), Duration::ZERO));
    let mut failures = 0u32;
    let mut flush = interval(cfg.flush_every);
    flush.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut health = interval(cfg.health_every);
    health.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut source_open = true;
    // When the source ended, and until when to keep delivering.
    let mut ended: Option<Instant> = None;
    let mut deadline: Option<Instant> = None;
    let mut last_error: Option<String> = None;
    let refused = loop {
        tokio::select! {
            b = events.recv(), if source_open => match b {
                Some(batch) => {
                    events_in += batch.len() as u64;
                    for ev in &batch {
                        enc.push(ev);
                        if enc.count() >= cfg.batch_events || enc.bytes() >= cfg.batch_bytes {
                            seal(&mut enc, &mut seq, &shared, &cfg, &mut dropping);
                        }
                    }
                }
                None => {
                    source_open = false;
                    seal(&mut enc, &mut seq, &shared, &cfg, &mut dropping);
                    let connected = {
                        let mut q = shared.lock();
                        q.closing = true;
                        q.connected
                    };
                    shared.notify.notify_one();
                    let now = Instant::now();
                    ended = Some(now);
                    if connected {
                        deadline = Some(now + cfg.drain_timeout);
                    } else {
                        // Not connected (waiting out a backoff, or still
                        // trying): one last attempt now, briefly.
                        conn.abort();
                        conn = tokio::spawn(connection(cfg.clone(), shared.clone(), Duration::ZERO));
                        deadline = Some(now + cfg.last_try.min(cfg.drain_timeout));
                    }
                }
            },
            _ = flush.tick() => seal(&mut enc, &mut seq, &shared, &cfg, &mut dropping),
            _ = health.tick() => {
                if shared.lock().connected {
                    shared.push_control(&Message::Health(shared.health()));
                }
            }
            end = &mut conn => {
                let end = end.unwrap_or_else(|e| ConnEnd::Lost {
                    connected: false,
                    why: format!("connection task failed: {e}"),
                });
                {
                    let mut q = shared.lock();
                    let n = std::mem::take(&mut q.in_flight);
                    if n > 0 {
                        q.lost += n;
                        log::warn!("{n} events were being written when the connection died (lost or partly delivered)");
                    }
                }
                let retry_now = match &end {
                    ConnEnd::Finished => break None,
                    ConnEnd::Refused(g) if g.code.is_fatal() => break Some(g.clone()),
                    ConnEnd::Refused(g) => {
                        last_error = Some(format!("aggregator said goodbye ({:?}): {}", g.code, g.message));
                        false
                    }
                    ConnEnd::Lost { connected, why } => {
                        last_error = Some(why.clone());
                        *connected
                    }
                };
                if !source_open {
                    // The end: a connection lost while delivering is tried
                    // again at once (until the deadline); a failed attempt
                    // is the last one.
                    if !retry_now || deadline.is_some_and(|d| Instant::now() >= d) {
                        log::warn!(
                            "could not deliver the rest to {}: {}",
                            cfg.addr,
                            last_error.as_deref().unwrap_or("?")
                        );
                        break None;
                    }
                    conn = tokio::spawn(connection(cfg.clone(), shared.clone(), Duration::ZERO));
                    continue;
                }
                match end {
                    ConnEnd::Finished => break None,
                    ConnEnd::Refused(g) if g.code.is_fatal() => break Some(g),
                    ConnEnd::Refused(g) => {
                        failures += 1;
                        log::warn!("aggregator {} said goodbye ({:?}): {}", cfg.addr, g.code, g.message);
                    }
                    ConnEnd::Lost { connected, why } => {
                        let q = shared.lock();
                        if connected {
                            failures = 1;
                            log::warn!(
                                "connection to {} lost: {why}; reconnecting ({} events buffered)",
                                cfg.addr, q.data_events
                            );
                        } else {
                            failures += 1;
                            if failures == 1 {
                                log::warn!(
                                    "cannot reach aggregator {}: {why}; retrying with backoff, buffering up to {} MiB",
                                    cfg.addr, cfg.buffer_bytes >> 20
                                );
                            } else {
                                log::debug!("attempt {failures} to reach {}: {why}", cfg.addr);
                            }
                        }
                    }
                }
                let delay = backoff(&cfg, failures);
                conn = tokio::spawn(connection(cfg.clone(), shared.clone(), delay));
            }
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                // Connected during the last try: deliver the rest.
                let full = ended.map(|t| t + cfg.drain_timeout);
                if shared.lock().connected && full.is_some_and(|f| Instant::now() < f) {
                    deadline = full;
                    continue;
                }
                conn.abort();
                let waited = ended.map_or(Duration::ZERO, |t| t.elapsed());
                log::warn!("gave up delivering to {} {waited:?} after the end", cfg.addr);
                break None;
            }
        }
    };
    dropping.end();
    let q = shared.lock();
    let report = AgentReport {
        events_in,
        sent: q.sent,
        dropped: q.dropped,
        lost: q.lost + q.in_flight,
        unsent: q.data_events + u64::from(enc.count()),
        connects: q.connects,
        last_error,
    };
    match refused {
        Some(g) => Err(AgentError::Refused {
            addr: cfg.addr.clone(),
            code: g.code,
            message: g.message,
            report,
        }),
        None => Ok(report),
    }
}

fn backoff(cfg: &AgentConfig, failures: u32) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    let exp = failures.saturating_sub(1).min(16);
    cfg.backoff_min
        .saturating_mul(1 << exp)
        .min(cfg.backoff_max)
}

/// Logs the start and end of a run of drops (not one line per batch).
#[derive(Default)]
struct Dropping {
    since: Option<u64>,
    total_before: u64,
}

impl Dropping {
    fn dropped(&mut self, n: u64, total: u64, limit: usize) {
        if self.since.is_none() {
            log::warn!(
                "agent buffer full ({} MiB): dropping new events until the aggregator catches up",
                limit >> 20
            );
            self.since = Some(total - n);
        }
        self.total_before = total;
    }

    fn kept(&mut self) {
        self.end();
    }

    fn end(&mut self) {
        if let Some(start) = self.since.take() {
            log::warn!(
                "dropped {} events while the buffer was full ({} in total)",
                self.total_before - start,
                self.total_before
            );
        }
    }
}

/// Closes the pending batch into the queue, or drops it when the buffer is
/// full. Every batch takes a sequence number, so the aggregator sees gaps.
fn seal(
    enc: &mut BatchEncoder,
    seq: &mut u64,
    shared: &Shared,
    cfg: &AgentConfig,
    dropping: &mut Dropping,
) {
    if enc.count() == 0 {
        return;
    }
    *seq += 1;
    let full = shared.lock().data_bytes + enc.bytes() > cfg.buffer_bytes;
    if full {
        let n = u64::from(enc.discard());
        let total = {
            let mut q = shared.lock();
            q.dropped += n;
            q.dropped
        };
        dropping.dropped(n, total, cfg.buffer_bytes);
        return;
    }
    let mut f = Vec::with_capacity(enc.bytes() + 48);
    let n = enc.finish(*seq, &mut f);
    {
        let mut q = shared.lock();
        q.data_bytes += f.len();
        q.data_events += u64::from(n);
        q.data.push_back((f, n));
    }
    shared.notify.notify_one();
    dropping.kept();
}

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// After the goodbye: how long to wait for the aggregator to close.
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// Largest write round of data frames (control frames go between rounds).
const WRITE_ROUND: usize = 512 << 10;

async fn connection(cfg: Arc<AgentConfig>, shared: Arc<Shared>, delay: Duration) -> ConnEnd {
    sleep(delay).await;
    let lost = |why: String| ConnEnd::Lost {
        connected: false,
        why,
    };
    let stream = match connect(&cfg.addr).await {
        Ok(s) => s,
        Err(e) => return lost(e.to_string()),
    };
    let (rd, wr) = tokio::io::split(stream);
    let mut rd = FrameReader::new(BufReader::with_capacity(16 << 10, rd), MAX_HELLO_PAYLOAD);
    let mut wr = BufWriter::with_capacity(256 << 10, wr);
    let hello = Message::Hello(Hello {
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        node: cfg.node.clone(),
        mono_ns: monotonic_ns(),
        token: cfg.token.clone(),
        probes: cfg.probes.clone(),
    });
    let handshake = async {
        write_msg(&mut wr, &hello)
            .await
            .map_err(|e| lost(format!("sending hello: {e}")))?;
        loop {
            match rd.next().await {
                Ok(Some(Message::Ping(p))) => {
                    let pong = Message::Pong(Pong {
                        seq: p.seq,
                        t_ns: p.t_ns,
                        agent_ns: monotonic_ns(),
                    });
                    write_msg(&mut wr, &pong)
                        .await
                        .map_err(|e| lost(format!("sending pong: {e}")))?;
                }
                Ok(Some(Message::Welcome(w))) => return Ok(w),
                Ok(Some(Message::Goodbye(g))) => return Err(ConnEnd::Refused(g)),
                Ok(Some(m)) => {
                    return Err(lost(format!(
                        "unexpected {} frame before welcome",
                        m.frame_type().name()
                    )))
                }
                Ok(None) => return Err(lost("aggregator closed the connection".into())),
                Err(e) => return Err(lost(format!("reading welcome: {e}"))),
            }
        }
    };
    let welcome = match timeout(HANDSHAKE_TIMEOUT, handshake).await {
        Ok(Ok(w)) => w,
        Ok(Err(end)) => return end,
        Err(_) => return lost("no welcome within 10 s".into()),
    };
    {
        let mut q = shared.lock();
        q.connected = true;
        q.connects += 1;
        // Stale pongs and health of an earlier connection mean nothing now.
        q.control.clear();
    }
    // On stderr whatever the log level: scripts wait for this line (the lab
    // starts its exerciser once the agent's events reach the aggregator).
    eprintln!(
        "vfio-trace agent: connected to {} ({}) as node {} ({})",
        cfg.addr, welcome.aggregator, welcome.node_id, cfg.node.name
    );
    let reader = async {
        loop {
            match rd.next().await {
                Ok(Some(Message::Ping(p))) => shared.push_control(&Message::Pong(Pong {
                    seq: p.seq,
                    t_ns: p.t_ns,
                    agent_ns: monotonic_ns(),
                })),
                Ok(Some(Message::Goodbye(g))) => {
                    return format!("aggregator said goodbye ({:?}): {}", g.code, g.message)
                }
                Ok(Some(m)) => return format!("unexpected {} frame", m.frame_type().name()),
                Ok(None) => return "aggregator closed the connection".to_string(),
                Err(e) => return format!("reading: {e}"),
            }
        }
    };
    let writer = async {
        let mut frames = Vec::new();
        loop {
            frames.clear();
            shared.take(WRITE_ROUND, &mut frames);
            if frames.is_empty() {
                if shared.lock().closing {
                    let bye = Message::Goodbye(Goodbye {
                        code: ByeCode::Done,
                        message: "agent stopping".into(),
                    });
                    write_msg(&mut wr, &bye).await?;
                    let _ = wr.shutdown().await;
                    return Ok(());
                }
                wr.flush().await?;
                shared.notify.notified().await;
                continue;
            }
            for f in &frames {
                wr.write_all(f).await?;
            }
            shared.written();
        }
    };
    tokio::pin!(reader, writer);
    let end = tokio::select! {
        why = &mut reader => ConnEnd::Lost { connected: true, why },
        r = &mut writer => match r {
            Ok(()) => {
                // Goodbye sent and our side shut: wait for the aggregator to
                // close, so nothing unread here turns our close into a reset
                // that could discard our last frames on its side.
                let _ = timeout(CLOSE_WAIT, &mut reader).await;
                ConnEnd::Finished
            }
            Err::<(), std::io::Error>(e) => ConnEnd::Lost { connected: true, why: format!("writing: {e}") },
        },
    };
    shared.lock().connected = false;
    end
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::aggregator::{Aggregator, AggregatorConfig, Limits, Notice};

    /// An agent with no events at all stays connected past the
    /// aggregator's idle timeout: its health frames are its heartbeat. Its
    /// report says it delivered (it connected; there was nothing to send).
    #[tokio::test]
    async fn a_quiet_agent_outlives_the_idle_timeout_on_its_heartbeat() {
        let dir = std::env::temp_dir().join(format!("vt-quiet-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let listen = Addr::Unix(dir.join("agg.sock"));
        let local = crate::node::local(Some("agg"), tracer_core::event::NodeRole::Host);
        let (tx, mut events) = mpsc::channel(16);
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut agg = Aggregator::start(
            AggregatorConfig {
                listen: vec![listen.clone()],
                token: None,
                local,
                ping_every: Duration::from_secs(1),
                limits: Limits {
                    idle_timeout: Duration::from_secs(2),
                    ..Limits::default()
                },
            },
            tx,
            stop_rx,
        )
        .unwrap();
        let mut notices = agg.take_notices();
        let node = crate::node::local(Some("quiet"), tracer_core::event::NodeRole::Guest);
        let (etx, erx) = mpsc::channel(1);
        let agent = tokio::spawn(run(
            AgentConfig::new(listen, node, vec![], String::new()),
            erx,
        ));
        // Twice the idle timeout with nothing to send.
        let end = Instant::now() + Duration::from_secs(4);
        let mut joined = false;
        loop {
            tokio::select! {
                n = notices.recv() => match n.unwrap() {
                    Notice::Joined { .. } => joined = true,
                    n => panic!("unexpected notice: {n}"),
                },
                _ = events.recv() => {}
                _ = tokio::time::sleep_until(end) => break,
            }
        }
        assert!(joined);
        drop(etx);
        let report = agent.await.unwrap().unwrap();
        assert_eq!((report.connects, report.sent, report.unsent), (1, 0, 0));
        assert_eq!(report.nothing_delivered(), None);
        let n = notices.recv().await.unwrap();
        assert!(
            matches!(&n, Notice::Left { clean: true, .. }),
            "left cleanly: {n}"
        );
        let _ = stop_tx.send(true);
        agg.finish().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn nothing_delivered_says_why() {
        let mut r = AgentReport {
            events_in: 10,
            last_error: Some("Connection refused (os error 111)".into()),
            ..AgentReport::default()
        };
        let why = r.nothing_delivered().unwrap();
        assert!(
            why.contains("never connected") && why.contains("refused"),
            "{why}"
        );
        r.connects = 1;
        assert!(r.nothing_delivered().unwrap().contains("none of 10 events"));
        r.sent = 1;
        assert_eq!(r.nothing_delivered(), None);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let node = crate::node::local(Some("t"), tracer_core::event::NodeRole::Guest);
        let cfg = AgentConfig::new(Addr::Unix("/x".into()), node, vec![], String::new());
        assert_eq!(backoff(&cfg, 0), Duration::ZERO);
        assert_eq!(backoff(&cfg, 1), Duration::from_millis(100));
        assert_eq!(backoff(&cfg, 2), Duration::from_millis(200));
        assert_eq!(backoff(&cfg, 4), Duration::from_millis(800));
        assert_eq!(backoff(&cfg, 40), Duration::from_secs(5));
    }
}
