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

/// Payload memory is allocated as its bytes arrive, in steps of this much
/// (or, for larger frames, of what already arrived: the buffer at most
/// doubles per step): a header that declares a large frame costs nothing
/// until the bytes come, and a peer that trickles holds at most twice what
/// it sent (never more than the frame, never more than the limit).
pub const GROW_STEP: usize = 64 << 10;

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

    /// Bytes this reader holds for frames (its payload buffer's capacity).
    #[cfg(test)]
    pub fn buffered_capacity(&self) -> usize {
        self.buf.capacity()
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
                // Validated (length within the limit) before anything else;
                // the payload's memory comes as its bytes do.
                let h = parse_header(&self.head, self.limit)?;
                self.header = Some(h);
                self.buf.clear();
                self.have = 0;
                continue;
            };
            let need = h.len as usize;
            if self.have < need {
                if self.have == self.buf.len() {
                    let step = GROW_STEP.max(self.have).min(need - self.have);
                    self.buf.reserve_exact(step);
                    self.buf.resize(self.have + step, 0);
                }
                let n = self.r.read(&mut self.buf[self.have..]).await?;
                if n == 0 {
                    return Err(ReadError::Eof {
                        have: HEADER_LEN + self.have,
                        need: HEADER_LEN + need,
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

    /// A header declaring the largest frame, then a trickle: the buffer
    /// grows with the bytes, not with the declared length.
    #[tokio::test]
    async fn memory_follows_the_bytes_not_the_declared_length() {
        let payload: Vec<u8> = (0..MAX_PAYLOAD - 3).map(|i| i as u8).collect();
        let mut f = Vec::new();
        tracer_core::wire::encode_frame(
            &Message::Events(tracer_core::wire::EventBatch {
                seq: 1,
                count: 0,
                ts_first: 0,
                data: payload,
            }),
            &mut f,
        );
        let (mut a, b) = tokio::io::duplex(8 << 20);
        let mut r = FrameReader::new(b, MAX_PAYLOAD);
        a.write_all(&f[..HEADER_LEN + 10]).await.unwrap();
        let got = tokio::time::timeout(std::time::Duration::from_millis(50), r.next()).await;
        assert!(got.is_err(), "incomplete frame");
        assert!(r.started());
        assert!(
            r.buffered_capacity() <= GROW_STEP,
            "{} bytes held for 10 received",
            r.buffered_capacity()
        );
        // Half the frame: at most twice that held.
        let half = f.len() / 2;
        a.write_all(&f[HEADER_LEN + 10..half]).await.unwrap();
        let got = tokio::time::timeout(std::time::Duration::from_millis(50), r.next()).await;
        assert!(got.is_err(), "incomplete frame");
        assert!(
            r.buffered_capacity() <= 2 * half,
            "{}",
            r.buffered_capacity()
        );
        let w = tokio::spawn(async move {
            a.write_all(&f[half..]).await.unwrap();
            a
        });
        let m = r.next().await.unwrap().unwrap();
        assert!(matches!(m, Message::Events(b) if b.data.len() == MAX_PAYLOAD as usize - 3));
        assert!(r.buffered_capacity() <= MAX_PAYLOAD as usize);
        drop(w.await.unwrap());
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
