//! Byte streams tokio has no type for: AF_VSOCK sockets and virtio-serial
//! character devices, as non-blocking fds driven by [`AsyncFd`].

use std::{
    io,
    mem::size_of,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    path::Path,
    pin::Pin,
    task::{ready, Context, Poll},
};

use tokio::io::{unix::AsyncFd, AsyncRead, AsyncWrite, ReadBuf};

/// A non-blocking fd read and written with read(2)/write(2).
pub struct FdStream {
    fd: AsyncFd<OwnedFd>,
    socket: bool,
}

fn cvt(n: libc::c_int) -> io::Result<libc::c_int> {
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n)
    }
}

fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: fcntl on an fd we own.
    let flags = cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) })?;
    // SAFETY: as above.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) })?;
    Ok(())
}

fn register(fd: OwnedFd) -> io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: an OwnedFd stays open and returns the same fd from as_raw_fd
    // until the AsyncFd that owns it is dropped.
    Ok(unsafe { AsyncFd::register(fd) }?)
}

impl FdStream {
    pub fn new(fd: OwnedFd, socket: bool) -> io::Result<Self> {
        set_nonblocking(&fd)?;
        Ok(FdStream {
            fd: register(fd)?,
            socket,
        })
    }

    /// Opens a virtio-serial port (`/dev/vportNpM`) or any pollable
    /// character device read-write.
    pub fn open_char_device(path: &Path) -> io::Result<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(path)?;
        FdStream::new(OwnedFd::from(file), false).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "{} cannot be polled (not a character device?): {e}",
                    path.display()
                ),
            )
        })
    }
}

impl AsyncRead for FdStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.fd.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            let r = guard.try_io(|fd| {
                // SAFETY: reads into an initialized buffer of that length.
                let n = unsafe {
                    libc::read(fd.as_raw_fd(), unfilled.as_mut_ptr().cast(), unfilled.len())
                };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(n as usize)
                }
            });
            match r {
                Ok(Ok(n)) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsyncWrite for FdStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            let mut guard = ready!(self.fd.poll_write_ready(cx))?;
            let r = guard.try_io(|fd| {
                // SAFETY: writes from a valid buffer of that length.
                let n = unsafe { libc::write(fd.as_raw_fd(), data.as_ptr().cast(), data.len()) };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(n as usize)
                }
            });
            match r {
                Ok(r) => return Poll::Ready(r),
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.socket {
            // SAFETY: shutdown on a socket fd we own.
            unsafe { libc::shutdown(self.fd.as_raw_fd(), libc::SHUT_WR) };
        }
        Poll::Ready(Ok(()))
    }
}

fn vsock_addr(cid: u32, port: u32) -> libc::sockaddr_vm {
    // SAFETY: sockaddr_vm is plain data; zero is a valid value.
    let mut a: libc::sockaddr_vm = unsafe { std::mem::zeroed() };
    a.svm_family = libc::AF_VSOCK as libc::sa_family_t;
    a.svm_cid = cid;
    a.svm_port = port;
    a
}

fn vsock_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2); the fd is owned right away.
    let fd = cvt(unsafe {
        libc::socket(
            libc::AF_VSOCK,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    })?;
    // SAFETY: a fresh fd nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Connects an AF_VSOCK stream socket to `cid:port`.
pub async fn vsock_connect(cid: u32, port: u32) -> io::Result<FdStream> {
    let fd = vsock_socket()?;
    let addr = vsock_addr(cid, port);
    // SAFETY: a valid sockaddr_vm and its size.
    let r = unsafe {
        libc::connect(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_vm).cast(),
            size_of::<libc::sockaddr_vm>() as libc::socklen_t,
        )
    };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINPROGRESS) {
            return Err(e);
        }
    }
    let stream = FdStream::new(fd, true)?;
    if r < 0 {
        stream.fd.writable().await?.retain_ready();
        let mut err: libc::c_int = 0;
        let mut len = size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: SO_ERROR into a c_int.
        cvt(unsafe {
            libc::getsockopt(
                stream.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_ERROR,
                (&mut err as *mut libc::c_int).cast(),
                &mut len,
            )
        })?;
        if err != 0 {
            return Err(io::Error::from_raw_os_error(err));
        }
    }
    Ok(stream)
}

/// A listening AF_VSOCK socket.
pub struct VsockListener {
    fd: AsyncFd<OwnedFd>,
    port: u32,
}

impl VsockListener {
    pub fn bind(cid: u32, port: u32) -> io::Result<Self> {
        let fd = vsock_socket()?;
        let addr = vsock_addr(cid, port);
        // SAFETY: a valid sockaddr_vm and its size.
        cvt(unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_vm).cast(),
                size_of::<libc::sockaddr_vm>() as libc::socklen_t,
            )
        })?;
        // SAFETY: listen on our socket.
        cvt(unsafe { libc::listen(fd.as_raw_fd(), 64) })?;
        let mut bound = vsock_addr(0, 0);
        let mut len = size_of::<libc::sockaddr_vm>() as libc::socklen_t;
        // SAFETY: getsockname into a sockaddr_vm.
        cvt(unsafe {
            libc::getsockname(
                fd.as_raw_fd(),
                (&mut bound as *mut libc::sockaddr_vm).cast(),
                &mut len,
            )
        })?;
        Ok(VsockListener {
            fd: register(fd)?,
            port: bound.svm_port,
        })
    }

    pub fn port(&self) -> u32 {
        self.port
    }

    /// The next connection and the peer's (cid, port).
    pub async fn accept(&self) -> io::Result<(FdStream, u32, u32)> {
        loop {
            let mut guard = self.fd.readable().await?;
            let r = guard.try_io(|fd| {
                let mut peer = vsock_addr(0, 0);
                let mut len = size_of::<libc::sockaddr_vm>() as libc::socklen_t;
                // SAFETY: accept4 into a sockaddr_vm.
                let n = cvt(unsafe {
                    libc::accept4(
                        fd.as_raw_fd(),
                        (&mut peer as *mut libc::sockaddr_vm).cast(),
                        &mut len,
                        libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                    )
                })?;
                // SAFETY: a fresh fd from accept4.
                Ok((
                    unsafe { OwnedFd::from_raw_fd(n) },
                    peer.svm_cid,
                    peer.svm_port,
                ))
            });
            match r {
                Ok(Ok((fd, cid, port))) => return Ok((FdStream::new(fd, true)?, cid, port)),
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    fn pair() -> (OwnedFd, OwnedFd) {
        let mut fds = [0; 2];
        // SAFETY: socketpair into a 2-int array.
        let r = unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, fds.as_mut_ptr()) };
        assert_eq!(r, 0);
        // SAFETY: fresh fds.
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
    }

    #[tokio::test]
    async fn fd_stream_moves_bytes_both_ways_and_sees_eof() {
        let (a, b) = pair();
        let mut a = FdStream::new(a, true).unwrap();
        let mut b = FdStream::new(b, true).unwrap();
        let big = vec![7u8; 1 << 20];
        let w = tokio::spawn(async move {
            a.write_all(&big).await.unwrap();
            a.shutdown().await.unwrap();
            a
        });
        let mut got = Vec::new();
        b.read_to_end(&mut got).await.unwrap();
        assert_eq!(got.len(), 1 << 20);
        let mut a = w.await.unwrap();
        b.write_all(b"pong").await.unwrap();
        let mut four = [0u8; 4];
        a.read_exact(&mut four).await.unwrap();
        assert_eq!(&four, b"pong");
    }

    #[tokio::test]
    async fn vsock_loopback_when_available() {
        // VMADDR_CID_LOCAL needs the vsock_loopback module; skip without it.
        let Ok(l) = VsockListener::bind(libc::VMADDR_CID_LOCAL, libc::VMADDR_PORT_ANY) else {
            eprintln!("skipped: no AF_VSOCK loopback on this machine");
            return;
        };
        let port = l.port();
        let acc = tokio::spawn(async move { l.accept().await.map(|(s, _, _)| s) });
        let Ok(mut c) = vsock_connect(libc::VMADDR_CID_LOCAL, port).await else {
            eprintln!("skipped: vsock loopback connect failed");
            return;
        };
        let mut s = acc.await.unwrap().unwrap();
        c.write_all(b"hi").await.unwrap();
        let mut two = [0u8; 2];
        s.read_exact(&mut two).await.unwrap();
        assert_eq!(&two, b"hi");
    }
}
