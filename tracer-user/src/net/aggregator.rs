//! The aggregator: listens for agents, checks each hello (version, token),
//! measures the agent's clock, gives the node an id, and forwards its events
//! (renumbered to that id) into the session's event channel next to the
//! local probes. A malformed, oversized or unauthenticated peer is
//! disconnected with a log line naming it; the others go on.
//!
//! Everything a peer can make it hold is bounded ([`Limits`]): connections
//! at once, a frame's payload (allocated as its bytes arrive, never from
//! the declared length), the time to say hello and, after it, the time
//! between two frames; queued notices and refusal log lines too.

use std::{
    net::IpAddr,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc, Mutex, MutexGuard,
    },
    time::Duration,
};

use anyhow::{bail, Context, Result};
use tokio::{
    io::{AsyncWrite, BufReader},
    sync::{mpsc, watch},
    task::{JoinHandle, JoinSet},
    time::{interval_at, sleep, timeout, Instant, MissedTickBehavior},
};
use tracer_core::{
    event::{Comm, Event, EventKind, NodeId, NodeInfo, StreamGap},
    wire::{
        AgentHealth, ByeCode, ClockEstimate, ClockSample, Goodbye, Hello, Message, Ping, Welcome,
        WireError, MAX_HELLO_PAYLOAD, MAX_PAYLOAD,
    },
};

use super::{
    addr::Addr,
    framed::{write_msg, FrameReader, ReadError},
    transport::{Listener, Stream},
};
use crate::node::{clock_offset_ns, monotonic_ns};

/// Round trips measured before the welcome.
const SYNC_PINGS: u32 = 4;
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// A rejoining node keeps its id when its clock offset moved less than this
/// (else it rebooted or is another machine: it gets a new `name#N` entry).
const REJOIN_TOLERANCE_NS: i64 = 50_000_000;
/// Most nodes in one session.
const MAX_NODES: usize = 1024;
/// Notices kept for a consumer that has not taken them (yet, or ever: the
/// terminal UI logs them instead); beyond this they are only logged.
const MAX_UNSHOWN_NOTICES: usize = 4096;
/// Refusals logged per second; the rest are counted and the count is said
/// with the next one logged (a flood of connections cannot flood the log).
const REFUSALS_LOGGED_PER_SEC: u32 = 20;

/// Default [`Limits::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 64;
/// Default [`Limits::idle_timeout`]: 30 of the agents' 1 s health frames.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Default [`Limits::max_frame`]: 4 times the largest frame an agent
/// writes (a batch is closed at 256 KiB).
pub const DEFAULT_MAX_FRAME: u32 = 1 << 20;
/// A TCP listener other machines can reach needs a token this long.
pub const MIN_NETWORK_TOKEN_LEN: usize = 16;

/// What any one peer, and all of them together, can cost the aggregator.
/// At most `max_connections × (max_frame + 64 KiB read buffer)` of frame
/// memory, and that only while bytes keep arriving: a header declaring a
/// large frame allocates nothing until its payload comes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most connections open at once over every listener (agents, and
    /// peers that have not said hello yet). Another one is answered with a
    /// goodbye (not fatal: an agent retries with backoff) and closed, with
    /// a log line naming the peer.
    pub max_connections: usize,
    /// An agent from which no whole frame arrived for this long after its
    /// hello is dropped, with a log line naming it. Agents send `health`
    /// every second, so this is a multiple of their heartbeat.
    pub idle_timeout: Duration,
    /// Largest frame payload accepted after the hello (≤ the protocol's
    /// 4 MiB; sent to the agent in its welcome).
    pub max_frame: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_frame: DEFAULT_MAX_FRAME,
        }
    }
}

pub struct AggregatorConfig {
    pub listen: Vec<Addr>,
    /// Required from TCP agents; checked when offered on other transports.
    pub token: Option<String>,
    /// This machine: node 0.
    pub local: NodeInfo,
    pub ping_every: Duration,
    pub limits: Limits,
}

/// Shortest and longest [`Limits::idle_timeout`]: at least two of the
/// agents' heartbeats; a day at most.
pub const IDLE_TIMEOUT_RANGE: (Duration, Duration) =
    (Duration::from_secs(2), Duration::from_secs(24 * 3600));

/// The limits from the command line (`--max-agents`, `--agent-timeout`),
/// defaults for what is not given.
pub fn limits(max_agents: Option<u32>, idle: Option<Duration>) -> Result<Limits, String> {
    let mut l = Limits::default();
    if let Some(n) = max_agents {
        if n == 0 {
            return Err("--max-agents must be at least 1".into());
        }
        l.max_connections = n as usize;
    }
    if let Some(d) = idle {
        let (lo, hi) = IDLE_TIMEOUT_RANGE;
        if d < lo || d > hi {
            return Err(format!(
                "--agent-timeout {d:?} is out of range: between {lo:?} (agents send health every \
                 second) and {hi:?}"
            ));
        }
        l.idle_timeout = d;
    }
    Ok(l)
}

/// The token rule for a listener: TCP needs a token; a TCP listener bound
/// to an address other machines can reach (`bound` not loopback, or not
/// known) needs one of at least [`MIN_NETWORK_TOKEN_LEN`] bytes that is
/// not only whitespace. Unix and vsock listeners need none (their peers
/// are this machine's processes and VMs); a token offered there is checked.
pub fn check_listen_token(
    listen: &Addr,
    bound: Option<IpAddr>,
    token: Option<&str>,
) -> Result<(), String> {
    if !listen.needs_token() {
        return Ok(());
    }
    let t = token.unwrap_or("");
    if t.is_empty() {
        return Err(format!(
            "--listen {listen} needs a shared token: --token T or VFIO_TRACE_TOKEN"
        ));
    }
    let loopback = bound.is_some_and(|ip| ip.to_canonical().is_loopback());
    if !loopback && (t.len() < MIN_NETWORK_TOKEN_LEN || t.trim().is_empty()) {
        let what = if t.trim().is_empty() {
            format!("{} byte(s) of whitespace", t.len())
        } else {
            format!("{} byte(s)", t.len())
        };
        return Err(format!(
            "refusing to listen on {listen} with a token of {what}: a TCP listener that other \
             machines can reach (not loopback) needs a token of at least \
             {MIN_NETWORK_TOKEN_LEN} bytes, not only whitespace (make one with \
             `head -c 24 /dev/urandom | base64`); tcp:PORT listens on loopback only"
        ));
    }
    Ok(())
}

/// What happened to remote nodes, in order. Sent before the node's first
/// event is forwarded, so a consumer that sees an event of an unknown node
/// finds its `Joined` with `try_recv`.
#[derive(Clone, Debug)]
pub enum Notice {
    Joined {
        id: NodeId,
        info: NodeInfo,
        peer: String,
        /// Same name and clock as a node that left: same id, no new entry.
        rejoined: bool,
    },
    /// The agent's own counters went up, or batches were missing.
    AgentDrops {
        id: NodeId,
        name: String,
        dropped: u64,
        lost: u64,
        missing_batches: u64,
    },
    Left {
        id: NodeId,
        name: String,
        peer: String,
        clean: bool,
        why: String,
        events: u64,
    },
    Refused {
        peer: String,
        why: String,
    },
}

impl Notice {
    /// The `stream_gap` event this notice means for its node's data: an
    /// agent lost mid-stream, or events an agent dropped or lost on the
    /// way. Stamped now, in that node's clock (`nodes` has its offset), so
    /// a recording says where its data has a gap.
    pub fn stream_gap(&self, nodes: &[NodeInfo]) -> Option<Event> {
        let (id, gap) = match self {
            Notice::Left {
                id,
                clean: false,
                why,
                ..
            } => (
                *id,
                StreamGap {
                    cause: format!("agent lost mid-stream: {why}"),
                    dropped: 0,
                    lost: 0,
                    missing_batches: 0,
                },
            ),
            Notice::AgentDrops {
                id,
                dropped,
                lost,
                missing_batches,
                ..
            } if dropped + lost + missing_batches > 0 => (
                *id,
                StreamGap {
                    cause: "agent dropped or lost events".into(),
                    dropped: *dropped,
                    lost: *lost,
                    missing_batches: *missing_batches,
                },
            ),
            _ => return None,
        };
        let wall =
            i128::from(crate::node::monotonic_ns()) + i128::from(crate::node::clock_offset_ns());
        let offset = nodes.get(usize::from(id)).map_or(0, |n| n.clock_offset_ns);
        let ts_ns = u64::try_from(wall - i128::from(offset)).unwrap_or(0);
        Some(Event {
            ts_ns,
            node: id,
            pid: 0,
            tid: 0,
            comm: Comm::new("vfio-trace"),
            kind: EventKind::StreamGap(gap),
        })
    }
}

impl std::fmt::Display for Notice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Notice::Joined {
                id,
                info,
                peer,
                rejoined,
            } => write!(
                f,
                "agent {} ({:?}, {} {}) {} from {peer} as node {id}",
                info.name,
                info.role,
                info.machine,
                info.kernel,
                if *rejoined { "rejoined" } else { "joined" }
            ),
            Notice::AgentDrops {
                id,
                name,
                dropped,
                lost,
                missing_batches,
                ..
            } => write!(
                f,
                "agent {name} (node {id}): {dropped} events dropped (its buffer was full), {lost} lost with a connection, {missing_batches} batches missing"
            ),
            Notice::Left {
                id,
                name,
                peer,
                clean,
                why,
                events,
            } => {
                if *clean {
                    write!(f, "agent {name} (node {id}, {peer}) left: {why}; {events} events received")
                } else {
                    write!(
                        f,
                        "agent {name} (node {id}, {peer}) lost: {why}; {events} events received; other sources continue"
                    )
                }
            }
            Notice::Refused { peer, why } => write!(f, "refused {peer}: {why}"),
        }
    }
}

struct Slot {
    info: NodeInfo,
    connected: bool,
    last_seq: u64,
}

/// The session's node table: id = index. Node 0 is this machine.
#[derive(Clone)]
pub struct NodeTable(Arc<Mutex<Vec<Slot>>>);

impl NodeTable {
    fn new(local: NodeInfo) -> Self {
        NodeTable(Arc::new(Mutex::new(vec![Slot {
            info: local,
            connected: true,
            last_seq: 0,
        }])))
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Slot>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every node so far (index = id).
    pub fn snapshot(&self) -> Vec<NodeInfo> {
        self.lock().iter().map(|s| s.info.clone()).collect()
    }

    /// Agents connected now (node 0, this machine, is not one).
    pub fn connected_agents(&self) -> usize {
        self.lock().iter().skip(1).filter(|s| s.connected).count()
    }

    /// A node for `info`: the same id for a node rejoining with the same
    /// name and clock, else a new entry (renamed `name#2`... when the name is
    /// taken). Returns (id, the entry's info, rejoined, last batch seq).
    fn join(&self, mut info: NodeInfo) -> Result<(NodeId, NodeInfo, bool, u64), String> {
        let mut t = self.lock();
        if let Some((i, s)) = t
            .iter_mut()
            .enumerate()
            .find(|(_, s)| s.info.name == info.name)
        {
            let close = (s.info.clock_offset_ns.saturating_sub(info.clock_offset_ns)).abs()
                < REJOIN_TOLERANCE_NS;
            if i != 0 && !s.connected && close {
                s.connected = true;
                return Ok((i as NodeId, s.info.clone(), true, s.last_seq));
            }
            let base = info.name.clone();
            let mut k = 2;
            while t.iter().any(|s| s.info.name == format!("{base}#{k}")) {
                k += 1;
            }
            info.name = format!("{base}#{k}");
        }
        if t.len() >= MAX_NODES {
            return Err(format!("node table is full ({MAX_NODES} nodes)"));
        }
        t.push(Slot {
            info: info.clone(),
            connected: true,
            last_seq: 0,
        });
        Ok(((t.len() - 1) as NodeId, info, false, 0))
    }

    fn leave(&self, id: NodeId, last_seq: u64) {
        if let Some(s) = self.lock().get_mut(usize::from(id)) {
            s.connected = false;
            s.last_seq = last_seq;
        }
    }
}

/// A running aggregator.
pub struct Aggregator {
    /// Where it listens, with real ports.
    pub bound: Vec<Addr>,
    pub nodes: NodeTable,
    notices: mpsc::UnboundedReceiver<Notice>,
    /// Someone took the notices and shows them: log them at debug only.
    shown: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

struct Ctx {
    token: Option<String>,
    local_name: String,
    nodes: NodeTable,
    events: mpsc::Sender<Vec<Event>>,
    notices: mpsc::UnboundedSender<Notice>,
    ping_every: Duration,
    limits: Limits,
    /// Connections open (every listener).
    conns: Mutex<usize>,
    shown: Arc<AtomicBool>,
    /// Notices queued while nobody had taken them.
    unshown: AtomicUsize,
    refusals: Mutex<RefusalLog>,
}

/// Counts refusals per second so that only the first few are logged.
struct RefusalLog {
    window: Instant,
    logged: u32,
    /// Refusals not logged since the last one logged.
    quiet: u64,
}

impl RefusalLog {
    /// Whether to log this refusal, and how many were not logged before it.
    fn admit(&mut self, now: Instant) -> Option<u64> {
        if now.duration_since(self.window) >= Duration::from_secs(1) {
            self.window = now;
            self.logged = 0;
        }
        if self.logged >= REFUSALS_LOGGED_PER_SEC {
            self.quiet += 1;
            return None;
        }
        self.logged += 1;
        Some(std::mem::take(&mut self.quiet))
    }
}

impl Ctx {
    /// Logs a notice (losses and refusals as warnings) unless its consumer
    /// shows it, and queues it. Refusals beyond a few a second are counted
    /// and said with the next one.
    fn notice(&self, mut n: Notice) {
        if let Notice::Refused { why, .. } = &mut n {
            let admitted = self
                .refusals
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .admit(Instant::now());
            match admitted {
                None => return,
                Some(0) => {}
                Some(k) => why.push_str(&format!(
                    " ({k} more connection(s) refused before this one and not logged)"
                )),
            }
        }
        let shown = self.shown.load(Ordering::Relaxed);
        if shown {
            log::debug!("{n}");
        } else if matches!(n, Notice::Joined { .. } | Notice::Left { clean: true, .. }) {
            log::info!("{n}");
        } else {
            log::warn!("{n}");
        }
        if shown || self.unshown.fetch_add(1, Ordering::Relaxed) < MAX_UNSHOWN_NOTICES {
            let _ = self.notices.send(n);
        }
    }
}

impl Aggregator {
    /// Binds every listener (inside the runtime) and starts accepting.
    /// Stops accepting, says goodbye to the agents and drops its event
    /// senders when `stop` turns true.
    pub fn start(
        cfg: AggregatorConfig,
        events: mpsc::Sender<Vec<Event>>,
        stop: watch::Receiver<bool>,
    ) -> Result<Aggregator> {
        let mut listeners = Vec::new();
        for a in &cfg.listen {
            if a.needs_token() && cfg.token.as_deref().is_none_or(str::is_empty) {
                bail!("--listen {a} needs a shared token: --token T or VFIO_TRACE_TOKEN");
            }
            let l = Listener::bind(a).with_context(|| format!("listening on {a}"))?;
            // Where it really listens (a host name resolves to loopback or
            // not): checked before the first accept.
            check_listen_token(a, l.local_ip(), cfg.token.as_deref())
                .map_err(anyhow::Error::msg)?;
            listeners.push(l);
        }
        if cfg.limits.max_connections == 0 {
            bail!("the connection limit must be at least 1");
        }
        if cfg.limits.idle_timeout > IDLE_TIMEOUT_RANGE.1 {
            bail!(
                "the idle timeout {:?} is longer than {:?}",
                cfg.limits.idle_timeout,
                IDLE_TIMEOUT_RANGE.1
            );
        }
        let bound: Vec<Addr> = listeners.iter().map(Listener::local).collect();
        let nodes = NodeTable::new(cfg.local.clone());
        let (ntx, notices) = mpsc::unbounded_channel();
        let shown = Arc::new(AtomicBool::new(false));
        let ctx = Arc::new(Ctx {
            token: cfg.token,
            local_name: cfg.local.name,
            nodes: nodes.clone(),
            events,
            notices: ntx,
            ping_every: cfg.ping_every,
            limits: Limits {
                max_frame: cfg.limits.max_frame.min(MAX_PAYLOAD),
                ..cfg.limits
            },
            conns: Mutex::new(0),
            shown: shown.clone(),
            unshown: AtomicUsize::new(0),
            refusals: Mutex::new(RefusalLog {
                window: Instant::now(),
                logged: 0,
                quiet: 0,
            }),
        });
        let task = tokio::spawn(async move {
            let mut accepting = JoinSet::new();
            for l in listeners {
                accepting.spawn(accept_loop(l, ctx.clone(), stop.clone()));
            }
            drop(ctx);
            while accepting.join_next().await.is_some() {}
        });
        Ok(Aggregator {
            bound,
            nodes,
            notices,
            shown,
            task,
        })
    }

    /// The notices, for a consumer that shows them (the aggregator then
    /// stops logging them above debug). Later calls get a closed channel.
    pub fn take_notices(&mut self) -> mpsc::UnboundedReceiver<Notice> {
        self.shown.store(true, Ordering::Relaxed);
        let (_, closed) = mpsc::unbounded_channel();
        std::mem::replace(&mut self.notices, closed)
    }

    /// Waits until every listener and connection is done (after `stop`).
    pub async fn finish(self) {
        let _ = self.task.await;
    }
}

async fn accept_loop(l: Listener, ctx: Arc<Ctx>, mut stop: watch::Receiver<bool>) {
    let mut conns = JoinSet::new();
    let needs_token = l.needs_token();
    loop {
        tokio::select! {
            r = l.accept() => match r {
                Ok((mut s, peer)) => {
                    let max = ctx.limits.max_connections;
                    let full = {
                        let mut n = ctx.conns.lock().unwrap_or_else(|p| p.into_inner());
                        if *n >= max { true } else { *n += 1; false }
                    };
                    if full {
                        let why = format!(
                            "connection limit reached: {max} connections already open (--max-agents)"
                        );
                        // Not fatal to an agent: it retries with backoff.
                        // Written only if the socket takes it at once.
                        let m = bye(ByeCode::Done, format!("aggregator busy, try again later: {why}"));
                        let _ = timeout(Duration::ZERO, write_msg(&mut s, &m)).await;
                        drop(s);
                        ctx.notice(Notice::Refused { peer, why });
                        continue;
                    }
                    let ctx2 = ctx.clone();
                    let stop2 = stop.clone();
                    conns.spawn(async move {
                        serve(s, peer, needs_token, &ctx2, stop2).await;
                        *ctx2.conns.lock().unwrap_or_else(|p| p.into_inner()) -= 1;
                    });
                }
                Err(e) => {
                    log::warn!("accepting on {}: {e}", l.local());
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            _ = stop.changed() => break,
        }
        if *stop.borrow() {
            break;
        }
    }
    drop(l);
    while conns.join_next().await.is_some() {}
}

fn ct_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut d = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        d |= usize::from(a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0));
    }
    d == 0
}

async fn send<W: AsyncWrite + Unpin>(w: &mut W, m: &Message) -> Result<(), String> {
    match timeout(WRITE_TIMEOUT, write_msg(w, m)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("writing {}: {e}", m.frame_type().name())),
        Err(_) => Err(format!("writing {}: timed out", m.frame_type().name())),
    }
}

fn bye(code: ByeCode, message: impl Into<String>) -> Message {
    Message::Goodbye(Goodbye {
        code,
        message: message.into(),
    })
}

fn bye_for(e: &ReadError) -> Message {
    match e {
        ReadError::Wire(WireError::UnsupportedVersion { .. }) => {
            bye(ByeCode::Version, e.to_string())
        }
        _ => bye(ByeCode::Malformed, e.to_string()),
    }
}

/// How one agent session on a connection ended.
enum Next {
    /// The connection is done (closed, refused, broken, stopping).
    Stop,
    /// The agent said goodbye: on a local stream another agent may follow.
    Goodbye,
    /// A new agent's hello arrived mid-stream (the previous one died
    /// without a goodbye): its session starts at once.
    Hello(Hello),
}

/// Read buffer of a connection (frames larger than it are read straight
/// into their own buffer, which grows as their bytes arrive).
const READ_BUFFER: usize = 64 << 10;

/// One connection: agent sessions one after another. A VMM's chardev
/// (unix, vsock, a serial port's host side) stays connected while the
/// agent inside the guest stops and starts again, so after a goodbye, or a
/// hello in the middle of a stream, the next agent's session begins on the
/// same connection. TCP agents connect anew instead.
async fn serve(
    stream: Stream,
    peer: String,
    needs_token: bool,
    ctx: &Ctx,
    mut stop: watch::Receiver<bool>,
) {
    let (rd, mut wr) = tokio::io::split(stream);
    let mut rd = FrameReader::new(BufReader::with_capacity(READ_BUFFER, rd), MAX_HELLO_PAYLOAD);
    let mut pending = None;
    loop {
        rd.set_limit(MAX_HELLO_PAYLOAD);
        let next = session(
            &mut rd,
            &mut wr,
            pending.take(),
            &peer,
            needs_token,
            ctx,
            &mut stop,
        )
        .await;
        match next {
            Next::Stop => return,
            Next::Goodbye if needs_token => return,
            Next::Goodbye => log::debug!("{peer}: waiting for the next agent on this stream"),
            Next::Hello(h) => {
                log::info!(
                    "{peer}: a new agent ({:?}) started on this stream",
                    h.node.name
                );
                pending = Some(h);
            }
        }
        if *stop.borrow() {
            return;
        }
    }
}

/// One agent's session, from its hello (read here, or `pending` when it
/// arrived during the previous session) to its end.
async fn session<R, W>(
    rd: &mut FrameReader<R>,
    wr: &mut W,
    pending: Option<Hello>,
    peer: &str,
    needs_token: bool,
    ctx: &Ctx,
    stop: &mut watch::Receiver<bool>,
) -> Next
where
    R: tokio::io::AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let refuse = |why: String| {
        ctx.notice(Notice::Refused {
            peer: peer.to_string(),
            why,
        });
        Next::Stop
    };

    // 1. The hello, within the hello-sized limit. On local transports (unix,
    // vsock) the 5 s start at its first byte: a VMM's chardev connects
    // when the VM starts, and the agent inside speaks once the VM booted.
    let hello = match pending {
        Some(h) => Some(Ok(Ok(Some(Message::Hello(h))))),
        None => {
            let first = async {
                loop {
                    match timeout(HANDSHAKE_TIMEOUT, rd.next()).await {
                        Err(_) if !needs_token && !rd.started() => {}
                        r => return r,
                    }
                }
            };
            tokio::select! {
                r = first => Some(r),
                _ = stop.changed() => None,
            }
        }
    };
    let Some(hello) = hello else {
        log::debug!("{peer}: stopped before its hello");
        return Next::Stop;
    };
    let hello = match hello {
        Err(_) => return refuse("no hello within 5 s".into()),
        Ok(Ok(None)) => {
            log::debug!("{peer} closed before its hello");
            return Next::Stop;
        }
        Ok(Err(e)) => {
            let _ = send(wr, &bye_for(&e)).await;
            return refuse(format!("bad hello: {e}"));
        }
        Ok(Ok(Some(Message::Hello(h)))) => h,
        Ok(Ok(Some(m))) => {
            let _ = send(wr, &bye(ByeCode::Malformed, "expected hello")).await;
            return refuse(format!(
                "sent a {} frame before its hello",
                m.frame_type().name()
            ));
        }
    };
    let name = hello.node.name.clone();

    // 2. The token: required over TCP; checked whenever one is offered.
    let auth = match (&ctx.token, needs_token, hello.token.is_empty()) {
        (Some(t), _, false) => ct_eq(t, &hello.token),
        (_, true, _) => false,
        (None, false, false) | (_, false, true) => true,
    };
    if !auth {
        let _ = send(wr, &bye(ByeCode::Auth, "missing or wrong token")).await;
        return refuse(format!("agent {name:?}: missing or wrong token"));
    }

    // 3. Clock: a few round trips before anything else flows.
    let mut clock = ClockEstimate::new(hello.node.clock_offset_ns, clock_offset_ns());
    let sync = async {
        for seq in 0..SYNC_PINGS {
            let t_ns = monotonic_ns();
            send(wr, &Message::Ping(Ping { seq, t_ns })).await?;
            match rd.next().await {
                Ok(Some(Message::Pong(p))) if p.seq == seq && p.t_ns == t_ns => {
                    clock.add(ClockSample {
                        sent_ns: t_ns,
                        agent_ns: p.agent_ns,
                        recv_ns: monotonic_ns(),
                    });
                }
                Ok(Some(m)) => {
                    return Err(format!("expected pong {seq}, got {:?}", m.frame_type()))
                }
                Ok(None) => return Err("closed during clock sync".into()),
                Err(e) => return Err(format!("clock sync: {e}")),
            }
        }
        Ok(())
    };
    match timeout(HANDSHAKE_TIMEOUT, sync).await {
        Ok(Ok(())) => {}
        Ok(Err(why)) => {
            let _ = send(wr, &bye(ByeCode::Malformed, why.clone())).await;
            return refuse(format!("agent {name:?}: {why}"));
        }
        Err(_) => return refuse(format!("agent {name:?}: clock sync timed out")),
    }

    // 4. An id, announced before any of its events.
    let mut info = hello.node.clone();
    info.clock_offset_ns = clock.offset_ns();
    let (id, info, rejoined, mut last_seq) = match ctx.nodes.join(info) {
        Ok(j) => j,
        Err(why) => {
            let _ = send(wr, &bye(ByeCode::Rejected, why.clone())).await;
            return refuse(format!("agent {name:?}: {why}"));
        }
    };
    if let Some(skew) = clock.wall_skew_ns().filter(|s| s.abs() > 1_000_000) {
        log::info!(
            "agent {}: wall clock {:+.3} ms from this machine's; aligned by round trips (±{} µs)",
            info.name,
            skew as f64 / 1e6,
            clock.uncertainty_ns().unwrap_or(0) / 1000
        );
    }
    ctx.notice(Notice::Joined {
        id,
        info: info.clone(),
        peer: peer.to_string(),
        rejoined,
    });
    let welcome = Message::Welcome(Welcome {
        node_id: id,
        aggregator: ctx.local_name.clone(),
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        max_payload: ctx.limits.max_frame,
    });
    let mut events = 0u64;
    let (clean, why, next) = match send(wr, &welcome).await {
        Err(e) => (false, e, Next::Stop),
        Ok(()) => {
            rd.set_limit(ctx.limits.max_frame);
            let mut s = Streaming {
                id,
                name: &info.name,
                ctx,
                last_seq: &mut last_seq,
                health: AgentHealth::default(),
                missing: 0,
                events: &mut events,
                clock: &mut clock,
            };
            s.run(rd, wr, stop).await
        }
    };
    ctx.nodes.leave(id, last_seq);
    ctx.notice(Notice::Left {
        id,
        name: info.name.clone(),
        peer: peer.to_string(),
        clean,
        why,
        events,
    });
    next
}

/// The streaming phase of one agent.
struct Streaming<'a> {
    id: NodeId,
    name: &'a str,
    ctx: &'a Ctx,
    last_seq: &'a mut u64,
    health: AgentHealth,
    missing: u64,
    events: &'a mut u64,
    clock: &'a mut ClockEstimate,
}

impl Streaming<'_> {
    async fn run<R, W>(
        &mut self,
        rd: &mut FrameReader<R>,
        wr: &mut W,
        stop: &mut watch::Receiver<bool>,
    ) -> (bool, String, Next)
    where
        R: tokio::io::AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let every = self.ctx.ping_every;
        let mut ping = interval_at(Instant::now() + every, every);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut ping_seq = SYNC_PINGS;
        // A failed write ends the pings, not the connection: what the agent
        // sent before closing (its last events, its goodbye) is still read.
        let mut can_write = true;
        // Agents send health every second: a whole frame must come within
        // the idle timeout (bytes trickling into one frame do not count).
        let idle_after = self.ctx.limits.idle_timeout;
        let idle = sleep(idle_after);
        tokio::pin!(idle);
        loop {
            tokio::select! {
                m = rd.next() => {
                    idle.as_mut().reset(Instant::now() + idle_after);
                    match m {
                    Ok(Some(Message::Events(b))) => {
                        self.check_seq(b.seq);
                        match b.decode(Some(self.id)) {
                            Ok(v) => {
                                *self.events += v.len() as u64;
                                if self.ctx.events.send(v).await.is_err() {
                                    return (true, "the session stopped".into(), Next::Stop);
                                }
                            }
                            Err(e) => {
                                let _ = send(wr, &bye(ByeCode::Malformed, e.to_string())).await;
                                return (false, format!("malformed events: {e}"), Next::Stop);
                            }
                        }
                    }
                    Ok(Some(Message::Health(h))) => self.health(h),
                    Ok(Some(Message::Pong(p))) => {
                        self.clock.add(ClockSample { sent_ns: p.t_ns, agent_ns: p.agent_ns, recv_ns: monotonic_ns() });
                    }
                    Ok(Some(Message::Goodbye(g))) => {
                        return (true, format!("said goodbye: {}", g.message), Next::Goodbye)
                    }
                    // The agent restarted on this stream without a goodbye
                    // (killed between frames): this session ends here.
                    Ok(Some(Message::Hello(h))) => {
                        return (false, "a new agent started on this stream without a goodbye".into(), Next::Hello(h))
                    }
                    Ok(Some(m)) => {
                        let _ = send(wr, &bye(ByeCode::Malformed, "unexpected frame")).await;
                        return (false, format!("unexpected {} frame", m.frame_type().name()), Next::Stop);
                    }
                    Ok(None) => return (false, "connection closed without goodbye".into(), Next::Stop),
                    Err(e) => {
                        if matches!(e, ReadError::Wire(_)) {
                            let _ = send(wr, &bye_for(&e)).await;
                        }
                        return (false, e.to_string(), Next::Stop);
                    }
                }},
                () = &mut idle => {
                    let why = format!(
                        "idle: no whole frame for {idle_after:?} after its hello (agents send \
                         health every second); dropped"
                    );
                    let _ = send(wr, &bye(ByeCode::Done, why.clone())).await;
                    return (false, why, Next::Stop);
                }
                _ = ping.tick(), if can_write => {
                    let p = Message::Ping(Ping { seq: ping_seq, t_ns: monotonic_ns() });
                    ping_seq = ping_seq.wrapping_add(1);
                    if let Err(e) = send(wr, &p).await {
                        log::debug!("agent {}: {e}; reading what is left", self.name);
                        can_write = false;
                    }
                }
                _ = stop.changed() => {
                    let _ = send(wr, &bye(ByeCode::Done, "aggregator stopping")).await;
                    return (true, "aggregator stopping".into(), Next::Stop);
                }
            }
        }
    }

    fn check_seq(&mut self, seq: u64) {
        let expected = *self.last_seq + 1;
        if seq > expected {
            let gap = seq - expected;
            self.missing += gap;
            self.ctx.notice(Notice::AgentDrops {
                id: self.id,
                name: self.name.to_string(),
                dropped: self.health.events_dropped,
                lost: self.health.events_lost,
                missing_batches: self.missing,
            });
        }
        // A lower seq: the agent restarted; count from there.
        *self.last_seq = seq;
    }

    fn health(&mut self, h: AgentHealth) {
        let worse = h.events_dropped > self.health.events_dropped
            || h.events_lost > self.health.events_lost;
        self.health = h;
        if worse {
            self.ctx.notice(Notice::AgentDrops {
                id: self.id,
                name: self.name.to_string(),
                dropped: self.health.events_dropped,
                lost: self.health.events_lost,
                missing_batches: self.missing,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use tracer_core::event::NodeRole;

    use super::*;

    fn node(name: &str, off: i64) -> NodeInfo {
        NodeInfo {
            name: name.into(),
            role: NodeRole::Guest,
            kernel: "k".into(),
            machine: "x86_64".into(),
            clock_offset_ns: off,
        }
    }

    #[test]
    fn node_ids_by_name_rejoin_and_clash() {
        let t = NodeTable::new(node("host", 0));
        let (a, _, re, _) = t.join(node("g", 1000)).unwrap();
        assert_eq!((a, re), (1, false));
        // Same name while connected: a new entry.
        let (b, info, _, _) = t.join(node("g", 1000)).unwrap();
        assert_eq!((b, info.name.as_str()), (2, "g#2"));
        t.leave(a, 17);
        // Rejoin with the same clock: same id, last seq remembered.
        assert_eq!(
            t.join(node("g", 2000)).unwrap(),
            (1, node("g", 1000), true, 17)
        );
        t.leave(a, 17);
        // Rebooted (monotonic clock restarted): a new entry.
        let (c, info, re, _) = t.join(node("g", 10_000_000_000)).unwrap();
        assert_eq!((c, info.name.as_str(), re), (3, "g#3", false));
        // The local node's name is never taken over.
        let (d, info, _, _) = t.join(node("host", 0)).unwrap();
        assert_eq!((d, info.name.as_str()), (4, "host#2"));
        assert_eq!(t.snapshot().len(), 5);
    }

    #[test]
    fn tokens_on_listeners_other_machines_reach_are_long() {
        let any: IpAddr = "0.0.0.0".parse().unwrap();
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let lo6: IpAddr = "::1".parse().unwrap();
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        let tcp = Addr::parse_listen("tcp:0.0.0.0:7000").unwrap();
        let good = "0123456789abcdef";
        // TCP without a token: never.
        for ip in [Some(any), Some(lo), None] {
            let e = check_listen_token(&tcp, ip, None).unwrap_err();
            assert!(e.contains("needs a shared token"), "{e}");
            assert!(check_listen_token(&tcp, ip, Some("")).is_err());
        }
        // Reachable from other machines: 16 bytes, not only whitespace.
        for t in [" ", "short", "0123456789abcde", "                "] {
            let e = check_listen_token(&tcp, Some(any), Some(t)).unwrap_err();
            assert!(e.contains("at least 16 bytes"), "{e}");
            assert!(e.contains("tcp:0.0.0.0:7000"), "{e}");
            assert!(e.contains(&format!("{} byte(s)", t.len())), "{e}");
            // Unknown address: treated as reachable.
            assert!(check_listen_token(&tcp, None, Some(t)).is_err());
        }
        assert!(check_listen_token(&tcp, Some(any), Some(" "))
            .unwrap_err()
            .contains("whitespace"));
        check_listen_token(&tcp, Some(any), Some(good)).unwrap();
        // Loopback: any non-empty token (as before).
        for ip in [lo, lo6, mapped] {
            check_listen_token(&tcp, Some(ip), Some("t")).unwrap();
        }
        // Local transports need none.
        let unix = Addr::parse_listen("unix:/x").unwrap();
        check_listen_token(&unix, None, None).unwrap();
        check_listen_token(&unix, None, Some(" ")).unwrap();
    }

    #[test]
    fn refusals_are_logged_a_few_a_second_and_the_rest_counted() {
        let t0 = Instant::now();
        let mut r = RefusalLog {
            window: t0,
            logged: 0,
            quiet: 0,
        };
        for _ in 0..REFUSALS_LOGGED_PER_SEC {
            assert_eq!(r.admit(t0), Some(0));
        }
        for _ in 0..100 {
            assert_eq!(r.admit(t0 + Duration::from_millis(500)), None);
        }
        // The next second: logged, with the count of those not logged.
        assert_eq!(r.admit(t0 + Duration::from_millis(1001)), Some(100));
        assert_eq!(r.admit(t0 + Duration::from_millis(1002)), Some(0));
    }

    #[test]
    fn token_compare() {
        assert!(ct_eq("abc", "abc"));
        assert!(!ct_eq("abc", "abd"));
        assert!(!ct_eq("abc", "abcd"));
        assert!(!ct_eq("", "a"));
    }
}
