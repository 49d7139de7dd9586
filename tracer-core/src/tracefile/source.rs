//! A byte stream with an offset counter and push-back, so the reader can name
//! the offset of every error and a salvaging reader can rescan bytes it
//! already consumed.

use std::collections::VecDeque;
use std::io::{self, Read};

use super::error::TraceError;

pub(crate) struct Source<R> {
    inner: R,
    back: VecDeque<u8>,
    offset: u64,
}

impl<R: Read> Source<R> {
    pub fn new(inner: R) -> Self {
        Source {
            inner,
            back: VecDeque::new(),
            offset: 0,
        }
    }

    /// Offset in the file of the next byte to be read.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    fn io(&self, source: io::Error) -> TraceError {
        TraceError::Io {
            offset: self.offset,
            source,
        }
    }

    /// Fills `buf` as far as the stream goes; returns the bytes read (fewer
    /// than `buf.len()` only at the end of the stream).
    pub fn read_up_to(&mut self, buf: &mut [u8]) -> Result<usize, TraceError> {
        let mut n = 0;
        while n < buf.len() {
            if let Some(b) = self.back.pop_front() {
                buf[n] = b;
                n += 1;
                self.offset += 1;
                continue;
            }
            match self.inner.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => {
                    n += k;
                    self.offset += k as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io(e)),
            }
        }
        Ok(n)
    }

    /// Reads up to `n` bytes, growing the buffer as data arrives, so a
    /// hostile length on a short file allocates only what the file holds.
    pub fn read_bounded(&mut self, n: usize) -> Result<Vec<u8>, TraceError> {
        const STEP: usize = 256 << 10;
        let mut out = Vec::with_capacity(n.min(STEP));
        while out.len() < n {
            let start = out.len();
            let want = (n - start).min(STEP);
            out.resize(start + want, 0);
            let got = self.read_up_to(&mut out[start..])?;
            out.truncate(start + got);
            if got < want {
                break;
            }
        }
        Ok(out)
    }

    /// Puts `bytes` back in front of the stream (they were the last read).
    pub fn unread(&mut self, bytes: &[u8]) {
        for &b in bytes.iter().rev() {
            self.back.push_front(b);
        }
        self.offset -= bytes.len() as u64;
    }
}
