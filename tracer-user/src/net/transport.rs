//! Connecting and listening on every transport, as one boxed byte stream.

use std::{io, path::PathBuf, time::Duration};

use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::{TcpListener, TcpStream, UnixListener, UnixStream},
};

use super::{
    addr::Addr,
    fd::{vsock_connect, FdStream, VsockListener},
};

pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Any transport's byte stream.
pub type Stream = Box<dyn Io>;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens a stream to `addr` (for a serial port: opens the device).
pub async fn connect(addr: &Addr) -> io::Result<Stream> {
    let fut = async {
        Ok::<Stream, io::Error>(match addr {
            Addr::Tcp(hp) => {
                let s = TcpStream::connect(hp.as_str()).await?;
                s.set_nodelay(true)?;
                Box::new(s)
            }
            Addr::Unix(p) => Box::new(UnixStream::connect(p).await?),
            Addr::Vsock { cid, port } => Box::new(vsock_connect(*cid, *port).await?),
            Addr::Serial(p) => Box::new(FdStream::open_char_device(p)?),
        })
    };
    tokio::time::timeout(CONNECT_TIMEOUT, fut)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))?
}

/// A bound listener.
pub enum Listener {
    Tcp(TcpListener),
    /// Removes its socket file when dropped.
    Unix(UnixListener, PathBuf),
    Vsock(VsockListener, u32),
}

impl Listener {
    /// Binds `addr` (call inside the runtime). A stale unix socket file
    /// (nobody accepting) is replaced; a live one is an error.
    pub fn bind(addr: &Addr) -> io::Result<Listener> {
        match addr {
            Addr::Tcp(hp) => {
                let l = std::net::TcpListener::bind(hp.as_str())?;
                l.set_nonblocking(true)?;
                Ok(Listener::Tcp(TcpListener::from_std(l)?))
            }
            Addr::Unix(p) => {
                if std::fs::symlink_metadata(p).is_ok() {
                    match std::os::unix::net::UnixStream::connect(p) {
                        Ok(_) => {
                            return Err(io::Error::new(
                                io::ErrorKind::AddrInUse,
                                format!("{} is in use by a running listener", p.display()),
                            ))
                        }
                        Err(_) => std::fs::remove_file(p)?,
                    }
                }
                Ok(Listener::Unix(UnixListener::bind(p)?, p.clone()))
            }
            Addr::Vsock { cid, port } => {
                let l = VsockListener::bind(*cid, *port)?;
                let cid = *cid;
                Ok(Listener::Vsock(l, cid))
            }
            Addr::Serial(_) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "cannot listen on a serial port",
            )),
        }
    }

    /// Where it listens, with the real port (`tcp:127.0.0.1:41234`).
    pub fn local(&self) -> Addr {
        match self {
            Listener::Tcp(l) => Addr::Tcp(
                l.local_addr()
                    .map_or_else(|_| "?".to_string(), |a| a.to_string()),
            ),
            Listener::Unix(_, p) => Addr::Unix(p.clone()),
            Listener::Vsock(l, cid) => Addr::Vsock {
                cid: *cid,
                port: l.port(),
            },
        }
    }

    /// The IP address a TCP listener is bound to (`None` for others).
    pub fn local_ip(&self) -> Option<std::net::IpAddr> {
        match self {
            Listener::Tcp(l) => l.local_addr().ok().map(|a| a.ip()),
            _ => None,
        }
    }

    /// The next connection and a name for its peer.
    pub async fn accept(&self) -> io::Result<(Stream, String)> {
        match self {
            Listener::Tcp(l) => {
                let (s, peer) = l.accept().await?;
                s.set_nodelay(true)?;
                Ok((Box::new(s), format!("tcp:{peer}")))
            }
            Listener::Unix(l, p) => {
                let (s, _) = l.accept().await?;
                let who = s
                    .peer_cred()
                    .ok()
                    .and_then(|c| c.pid())
                    .map_or_else(String::new, |pid| format!(" (pid {pid})"));
                Ok((Box::new(s), format!("unix:{}{who}", p.display())))
            }
            Listener::Vsock(l, _) => {
                let (s, cid, port) = l.accept().await?;
                Ok((Box::new(s), format!("vsock:{cid}:{port}")))
            }
        }
    }

    /// Connections here must carry the shared token.
    pub fn needs_token(&self) -> bool {
        matches!(self, Listener::Tcp(_))
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, p) = self {
            let _ = std::fs::remove_file(p);
        }
    }
}
