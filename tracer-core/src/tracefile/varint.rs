//! LEB128 varints, zigzag, and a bounds-checked cursor over a decoded chunk.
//!
//! Every read is checked against the end of the buffer: a hostile payload can
//! make a read fail, never panic or allocate past what the buffer holds.

/// Appends `v` as an unsigned LEB128 varint (1..=10 bytes).
#[inline]
pub(crate) fn put_u64(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[inline]
pub(crate) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[inline]
pub(crate) fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

#[inline]
pub(crate) fn put_i64(out: &mut Vec<u8>, v: i64) {
    put_u64(out, zigzag(v));
}

/// Why a read from a [`Cursor`] failed, and where (offset in the buffer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DecodeError {
    pub pos: usize,
    pub detail: String,
}

pub(crate) type DecodeResult<T> = Result<T, DecodeError>;

/// A read position in a byte buffer.
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(buf: &'a [u8], pos: usize) -> Self {
        Cursor { buf, pos }
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    pub fn err<T>(&self, detail: impl Into<String>) -> DecodeResult<T> {
        Err(DecodeError {
            pos: self.pos,
            detail: detail.into(),
        })
    }

    #[inline]
    pub fn u8(&mut self) -> DecodeResult<u8> {
        match self.buf.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => self.err("unexpected end of chunk data"),
        }
    }

    pub fn bytes(&mut self, n: usize) -> DecodeResult<&'a [u8]> {
        if n > self.remaining() {
            return self.err(format!("{n} bytes announced, {} left", self.remaining()));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    #[inline]
    pub fn u64(&mut self) -> DecodeResult<u64> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            if shift == 63 && b > 1 {
                return self.err("varint overflows u64");
            }
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        self.err("varint longer than 10 bytes")
    }

    #[inline]
    pub fn i64(&mut self) -> DecodeResult<i64> {
        Ok(unzigzag(self.u64()?))
    }

    pub fn u32(&mut self) -> DecodeResult<u32> {
        let v = self.u64()?;
        u32::try_from(v).or_else(|_| self.err(format!("{v} does not fit u32")))
    }

    pub fn u16(&mut self) -> DecodeResult<u16> {
        let v = self.u64()?;
        u16::try_from(v).or_else(|_| self.err(format!("{v} does not fit u16")))
    }

    pub fn i32(&mut self) -> DecodeResult<i32> {
        let v = self.i64()?;
        i32::try_from(v).or_else(|_| self.err(format!("{v} does not fit i32")))
    }

    pub fn bool(&mut self) -> DecodeResult<bool> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            b => self.err(format!("bad bool {b}")),
        }
    }

    /// A length prefix for a list whose elements take at least one byte each:
    /// bounded by what is left, so a hostile length cannot over-allocate.
    pub fn len(&mut self) -> DecodeResult<usize> {
        let n = self.u64()?;
        if n > self.remaining() as u64 {
            return self.err(format!(
                "length {n} exceeds the {} bytes left",
                self.remaining()
            ));
        }
        Ok(n as usize)
    }

    pub fn string(&mut self) -> DecodeResult<String> {
        let n = self.len()?;
        let b = self.bytes(n)?;
        match std::str::from_utf8(b) {
            Ok(s) => Ok(s.to_owned()),
            Err(e) => self.err(format!("string is not UTF-8: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        let vals = [0, 1, 127, 128, 300, u32::MAX as u64, u64::MAX - 1, u64::MAX];
        let mut b = Vec::new();
        for &v in &vals {
            put_u64(&mut b, v);
            put_i64(&mut b, v as i64);
        }
        let mut c = Cursor::new(&b, 0);
        for &v in &vals {
            assert_eq!(c.u64().unwrap(), v);
            assert_eq!(c.i64().unwrap(), v as i64);
        }
        assert_eq!(c.remaining(), 0);
    }

    #[test]
    fn overlong_varint_is_an_error() {
        let b = [0xffu8; 11];
        assert!(Cursor::new(&b, 0).u64().is_err());
        let b = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert!(Cursor::new(&b, 0).u64().is_err());
    }

    #[test]
    fn hostile_length_is_bounded() {
        let mut b = Vec::new();
        put_u64(&mut b, u64::MAX);
        assert!(Cursor::new(&b, 0).len().is_err());
    }
}
