//! The `/metrics` endpoint: a minimal HTTP/1.x server on tokio. It reads
//! the latest published [`Counts`] (a `watch` channel: the event path
//! publishes and never waits for a scraper) and renders it per request.
//! Requests are bounded (a head of at most [`MAX_HEAD`] bytes within
//! [`READ_TIMEOUT`], at most [`MAX_CONNECTIONS`] at once); one response
//! per connection.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use anyhow::{Context, Result};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::{watch, Semaphore},
    task::JoinHandle,
};

use super::{counts::Counts, text::CONTENT_TYPE};

/// Largest request head read (request line and headers).
pub const MAX_HEAD: usize = 8 << 10;
/// Time a client has to send its request head.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once; more are closed at once.
pub const MAX_CONNECTIONS: usize = 16;

/// `--metrics ADDR`: `PORT` (loopback, 127.0.0.1), `HOST:PORT` with HOST
/// an IP address or `localhost`, `[IPv6]:PORT`. Another machine can reach
/// it only when the user names such an address (e.g. `0.0.0.0:9464`).
pub fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    let t = s.trim();
    if let Ok(port) = t.parse::<u16>() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    if let Some(port) = t.strip_prefix("localhost:") {
        if let Ok(port) = port.parse::<u16>() {
            return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
        }
    }
    t.parse::<SocketAddr>().map_err(|_| {
        format!(
            "bad metrics address {s:?}: expected PORT (loopback), HOST:PORT or [IPv6]:PORT, e.g. 9464 or 127.0.0.1:9464"
        )
    })
}

/// What a request head asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// `GET /metrics` (`head_only` for HEAD).
    Metrics {
        head_only: bool,
    },
    NotFound,
    MethodNotAllowed,
    BadRequest,
    TooLarge,
}

/// Routes a request head (the bytes up to the blank line, or all that was
/// read when there was none).
pub fn route(head: &[u8], complete: bool) -> Route {
    if !complete {
        return if head.len() >= MAX_HEAD {
            Route::TooLarge
        } else {
            Route::BadRequest
        };
    }
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let Ok(line) = std::str::from_utf8(line) else {
        return Route::BadRequest;
    };
    let mut parts = line.trim_end_matches('\r').split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Route::BadRequest;
    };
    if !version.starts_with("HTTP/1.") {
        return Route::BadRequest;
    }
    let path = target.split(['?', '#']).next().unwrap_or_default();
    match (method, path) {
        ("GET", "/metrics") => Route::Metrics { head_only: false },
        ("HEAD", "/metrics") => Route::Metrics { head_only: true },
        (_, "/metrics") => Route::MethodNotAllowed,
        _ if !target.starts_with('/') => Route::BadRequest,
        ("GET" | "HEAD", _) => Route::NotFound,
        _ => Route::MethodNotAllowed,
    }
}

/// The response to `route`, from `page` (rendered only when asked for).
pub fn respond(route: &Route, page: impl FnOnce() -> String) -> Vec<u8> {
    let (status, ctype, body, head_only) = match route {
        Route::Metrics { head_only } => ("200 OK", CONTENT_TYPE, page(), *head_only),
        Route::NotFound => (
            "404 Not Found",
            "text/plain",
            "not found: metrics are at /metrics\n".into(),
            false,
        ),
        Route::MethodNotAllowed => (
            "405 Method Not Allowed",
            "text/plain",
            "only GET and HEAD\n".into(),
            false,
        ),
        Route::BadRequest => (
            "400 Bad Request",
            "text/plain",
            "bad request\n".into(),
            false,
        ),
        Route::TooLarge => (
            "431 Request Header Fields Too Large",
            "text/plain",
            "request head too large\n".into(),
            false,
        ),
    };
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n{}\r\n",
        body.len(),
        if matches!(route, Route::MethodNotAllowed) {
            "Allow: GET, HEAD\r\n"
        } else {
            ""
        }
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

/// A running `/metrics` server.
pub struct Server {
    /// The address bound (the real port when 0 was asked for).
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    /// Binds `addr` now (so a taken port fails before anything starts) and
    /// serves `page` in a task. Must be called inside a tokio runtime.
    pub fn start(addr: SocketAddr, page: watch::Receiver<Arc<Counts>>) -> Result<Server> {
        let std = std::net::TcpListener::bind(addr)
            .with_context(|| format!("--metrics: could not listen on {addr}"))?;
        std.set_nonblocking(true)?;
        let bound = std.local_addr()?;
        let listener = TcpListener::from_std(std)?;
        let task = tokio::spawn(accept_loop(listener, page));
        Ok(Server { addr: bound, task })
    }
}

async fn accept_loop(listener: TcpListener, page: watch::Receiver<Arc<Counts>>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (conn, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors and the like: try again shortly.
                log::warn!("metrics: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            log::warn!("metrics: {MAX_CONNECTIONS} connections open, closing {peer}");
            continue;
        };
        let page = page.clone();
        tokio::spawn(async move {
            if let Err(e) = serve(conn, page).await {
                log::debug!("metrics: {peer}: {e}");
            }
            drop(permit);
        });
    }
}

async fn serve(mut conn: TcpStream, page: watch::Receiver<Arc<Counts>>) -> std::io::Result<()> {
    let (head, complete) = match tokio::time::timeout(READ_TIMEOUT, read_head(&mut conn)).await {
        Ok(r) => r?,
        Err(_) => (Vec::new(), false),
    };
    if head.is_empty() && !complete {
        return Ok(()); // nothing asked (a port probe) or too slow
    }
    let r = route(&head, complete);
    // Clone the Arc and let go of the channel before rendering.
    let counts = page.borrow().clone();
    let out = respond(&r, || counts.render());
    conn.write_all(&out).await?;
    conn.shutdown().await
}

/// Reads up to the blank line ending a request head, at most [`MAX_HEAD`]
/// bytes; `complete` when the blank line came.
async fn read_head(conn: &mut TcpStream) -> std::io::Result<(Vec<u8>, bool)> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            return Ok((buf, false));
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = find_blank_line(&buf) {
            buf.truncate(end);
            return Ok((buf, true));
        }
        if buf.len() >= MAX_HEAD {
            return Ok((buf, false));
        }
    }
}

fn find_blank_line(b: &[u8]) -> Option<usize> {
    let crlf = b.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    let lf = b.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(parse_addr("9464").unwrap().to_string(), "127.0.0.1:9464");
        assert_eq!(
            parse_addr("localhost:9464").unwrap().to_string(),
            "127.0.0.1:9464"
        );
        assert_eq!(
            parse_addr("0.0.0.0:9464").unwrap().to_string(),
            "0.0.0.0:9464"
        );
        assert_eq!(parse_addr("[::1]:9464").unwrap().to_string(), "[::1]:9464");
        for bad in ["", "65536", "host:9464", "127.0.0.1", ":9464", "tcp:9464"] {
            let e = parse_addr(bad).expect_err(bad);
            assert!(e.contains(&format!("{bad:?}")), "{e}");
        }
    }

    #[test]
    fn routes() {
        let r = |s: &str| route(s.as_bytes(), true);
        assert_eq!(
            r("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Route::Metrics { head_only: false }
        );
        assert_eq!(
            r("GET /metrics?x=1 HTTP/1.0\n\n"),
            Route::Metrics { head_only: false }
        );
        assert_eq!(
            r("HEAD /metrics HTTP/1.1\r\n\r\n"),
            Route::Metrics { head_only: true }
        );
        assert_eq!(r("GET / HTTP/1.1\r\n\r\n"), Route::NotFound);
        assert_eq!(r("GET /metricsx HTTP/1.1\r\n\r\n"), Route::NotFound);
        assert_eq!(r("POST /metrics HTTP/1.1\r\n\r\n"), Route::MethodNotAllowed);
        assert_eq!(r("GET /metrics\r\n\r\n"), Route::BadRequest);
        assert_eq!(r("GET /metrics SPDY/3\r\n\r\n"), Route::BadRequest);
        assert_eq!(
            r("GET http://x/metrics HTTP/1.1\r\n\r\n"),
            Route::BadRequest
        );
        assert_eq!(
            route(b"\xff\xfe /metrics HTTP/1.1\r\n\r\n", true),
            Route::BadRequest
        );
        assert_eq!(route(&[b'a'; MAX_HEAD], false), Route::TooLarge);
        assert_eq!(route(b"GET /metr", false), Route::BadRequest);
    }

    #[test]
    fn responses() {
        let ok = String::from_utf8(respond(&Route::Metrics { head_only: false }, || {
            "x 1\n".into()
        }))
        .unwrap();
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
        assert!(ok.contains("Content-Length: 4\r\n"));
        assert!(ok.ends_with("\r\n\r\nx 1\n"));
        let head = String::from_utf8(respond(&Route::Metrics { head_only: true }, || {
            "x 1\n".into()
        }))
        .unwrap();
        assert!(
            head.ends_with("Content-Length: 4\r\nConnection: close\r\n\r\n"),
            "{head}"
        );
        let nf =
            String::from_utf8(respond(&Route::NotFound, || unreachable!("not rendered"))).unwrap();
        assert!(nf.starts_with("HTTP/1.1 404 Not Found\r\n"));
        let m = String::from_utf8(respond(&Route::MethodNotAllowed, String::new)).unwrap();
        assert!(m.contains("Allow: GET, HEAD\r\n"));
    }

    #[test]
    fn blank_lines() {
        assert_eq!(find_blank_line(b"GET / HTTP/1.1\r\n\r\nbody"), Some(18));
        assert_eq!(find_blank_line(b"GET / HTTP/1.0\n\n"), Some(16));
        assert_eq!(find_blank_line(b"GET / HTTP/1.1\r\n"), None);
    }

    #[tokio::test]
    async fn serves_over_tcp_and_bounds_requests() {
        let (tx, rx) = watch::channel(Arc::new(Counts::new("h")));
        let s = Server::start("127.0.0.1:0".parse().unwrap(), rx).unwrap();
        let addr = s.addr;
        let get = |req: Vec<u8>| async move {
            let mut c = TcpStream::connect(addr).await.unwrap();
            c.write_all(&req).await.unwrap();
            let mut out = String::new();
            c.read_to_string(&mut out).await.unwrap();
            out
        };
        let page = get(b"GET /metrics HTTP/1.1\r\n\r\n".to_vec()).await;
        assert!(page.contains("vfio_trace_agents_connected 0\n"), "{page}");
        tx.send_modify(|c| Arc::make_mut(c).agents_connected = 2);
        let page = get(b"GET /metrics HTTP/1.1\r\n\r\n".to_vec()).await;
        assert!(page.contains("vfio_trace_agents_connected 2\n"), "{page}");
        let nf = get(b"GET /other HTTP/1.1\r\n\r\n".to_vec()).await;
        assert!(nf.starts_with("HTTP/1.1 404"), "{nf}");
        let mut big = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
        big.extend(std::iter::repeat_n(b'a', MAX_HEAD));
        let tl = get(big).await;
        assert!(tl.starts_with("HTTP/1.1 431"), "{tl}");
    }
}
