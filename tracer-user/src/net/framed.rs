//! Reading and writing whole frames on a byte stream.

use std::io;

use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tracer_core::wire::{encode_frame, parse_header, FrameHeader, Message, WireError, HEADER_LEN};

#[derive(Debug, Error)]
pub enum ReadError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("{0}")]
    Wire(#[from] WireError),
    #[error("connection closed inside a frame ({have} of {need} bytes)")]
    Eof { have: usize, need: usize },
}

/// Reads frames one at a time. `next` is cancel-safe (progress is kept in
/// `self` after every read), so it can sit in a `select!`.
pub struct FrameReader<R> {
    r: R,
    limit: u32,
    head: [u8; HEADER_LEN],
    header: Option<FrameHeader>,
    buf: Vec<u8>,
    have: usize,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// `limit`: largest payload accepted (`MAX_HELLO_PAYLOAD` until the peer
    /// is known).
    pub fn new(r: R, limit: u32) -> Self {
        FrameReader {
            r,
            limit,
            head: [0; HEADER_LEN],
            header: None,
            buf: Vec::new(),
            have: 0,
        }
    }

    pub fn set_limit(&mut self, limit: u32) {
        self.limit = limit;
    }

    /// Some bytes of a frame have arrived.
    pub fn started(&self) -> bool {
        self.have > 0 || self.header.is_some()
    }

    /// The next frame; `Ok(None)` when the peer closed between frames.
    pub async fn next(&mut self) -> Result<Option<Message>, ReadError> {
        loop {
            let Some(h) = self.header else {
                if self.have < HEADER_LEN {
                    let n = self.r.read(&mut self.head[self.have..]).await?;
                    if n == 0 {
                        if self.have == 0 {
                            return Ok(None);
                        }
                        return Err(ReadError::Eof {
                            have: self.have,
                            need: HEADER_LEN,
                        });
                    }
                    self.have += n;
                    // Garbage is refused from its first bytes.
                    let m = self.have.min(4);
                    if self.head[..m] != tracer_core::wire::MAGIC[..m] {
                        let mut found = [0; 4];
                        found[..m].copy_from_slice(&self.head[..m]);
                        return Err(WireError::BadMagic { found }.into());
                    }
                    continue;
                }
                // Validated (length within the limit) before any allocation.
                let h = parse_header(&self.head, self.limit)?;
                self.header = Some(h);
                self.buf.clear();
                self.buf.resize(h.len as usize, 0);
                self.have = 0;
                continue;
            };
            if self.have < self.buf.len() {
                let n = self.r.read(&mut self.buf[self.have..]).await?;
                if n == 0 {
                    return Err(ReadError::Eof {
                        have: HEADER_LEN + self.have,
                        need: HEADER_LEN + self.buf.len(),
                    });
                }
                self.have += n;
                continue;
            }
            self.header = None;
            self.have = 0;
            h.verify(&self.buf)?;
            return Ok(Some(Message::decode_payload(h.ftype, &self.buf)?));
        }
    }
}

/// Writes one message as a frame.
pub async fn write_msg<W: AsyncWrite + Unpin>(w: &mut W, msg: &Message) -> io::Result<()> {
    let mut b = Vec::new();
    encode_frame(msg, &mut b);
    w.write_all(&b).await?;
    w.flush().await
}

#[cfg(test)]
mod tests {
    use tracer_core::wire::{Ping, MAX_HELLO_PAYLOAD, MAX_PAYLOAD};

    use super::*;

    #[tokio::test]
    async fn reads_frames_split_at_every_byte() {
        let mut all = Vec::new();
        for i in 0..3 {
            encode_frame(&Message::Ping(Ping { seq: i, t_ns: 9 }), &mut all);
        }
        let (mut a, b) = tokio::io::duplex(1);
        let w = tokio::spawn(async move {
            for byte in all {
                a.write_all(&[byte]).await.unwrap();
            }
        });
        let mut r = FrameReader::new(b, MAX_PAYLOAD);
        for i in 0..3 {
            assert_eq!(
                r.next().await.unwrap(),
                Some(Message::Ping(Ping { seq: i, t_ns: 9 }))
            );
        }
        w.await.unwrap();
        assert!(r.next().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn garbage_oversize_and_truncation_are_errors() {
        let (mut a, b) = tokio::io::duplex(64);
        a.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        let e = FrameReader::new(b, MAX_PAYLOAD).next().await.unwrap_err();
        assert!(
            matches!(e, ReadError::Wire(WireError::BadMagic { .. })),
            "{e}"
        );

        let mut f = Vec::new();
        encode_frame(&Message::Ping(Ping { seq: 1, t_ns: 2 }), &mut f);
        f[8..12].copy_from_slice(&(MAX_HELLO_PAYLOAD + 1).to_le_bytes());
        let (mut a, b) = tokio::io::duplex(64);
        a.write_all(&f[..HEADER_LEN]).await.unwrap();
        let e = FrameReader::new(b, MAX_HELLO_PAYLOAD)
            .next()
            .await
            .unwrap_err();
        assert!(
            matches!(e, ReadError::Wire(WireError::Oversize { .. })),
            "{e}"
        );

        let mut f = Vec::new();
        encode_frame(&Message::Ping(Ping { seq: 1, t_ns: 2 }), &mut f);
        let (mut a, b) = tokio::io::duplex(64);
        a.write_all(&f[..f.len() - 1]).await.unwrap();
        drop(a);
        let e = FrameReader::new(b, MAX_PAYLOAD).next().await.unwrap_err();
        assert!(matches!(e, ReadError::Eof { .. }), "{e}");
    }
}
