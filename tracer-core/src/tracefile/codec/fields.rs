//! Reading and writing one event's fields in a chunk (the codings are
//! listed in kinds.rs's doc). Each kind's module (event/kinds/) says which
//! coding each of its fields uses.

use super::SLOTS;
use crate::event::Device;
use crate::tracefile::varint::{put_i64, put_u64, Cursor, DecodeResult};

/// Writes fields of one kind.
pub(crate) struct FieldWriter<'a> {
    pub(super) out: &'a mut Vec<u8>,
    pub(super) prev: &'a mut [u64; SLOTS],
}

impl FieldWriter<'_> {
    /// Delta to the same slot of the previous event of this kind.
    pub fn d(&mut self, slot: usize, v: u64) {
        put_i64(self.out, v.wrapping_sub(self.prev[slot]) as i64);
        self.prev[slot] = v;
    }
    pub fn v(&mut self, v: impl Into<u64>) {
        put_u64(self.out, v.into());
    }
    pub fn z(&mut self, v: i32) {
        put_i64(self.out, i64::from(v));
    }
    pub fn b(&mut self, v: u8) {
        self.out.push(v);
    }
    pub fn bool(&mut self, v: bool) {
        self.b(u8::from(v));
    }
    pub fn s(&mut self, s: &str) {
        put_u64(self.out, s.len() as u64);
        self.out.extend_from_slice(s.as_bytes());
    }
    /// A list: its length, then each element.
    pub fn list<T>(&mut self, items: &[T], mut each: impl FnMut(&mut Self, &T)) {
        self.v(items.len() as u64);
        for i in items {
            each(self, i);
        }
    }
    pub fn dev(&mut self, d: Device) {
        match d {
            Device::Pci {
                seg,
                bus,
                dev,
                func,
            } => {
                self.b(0);
                self.v(seg);
                self.out.extend_from_slice(&[bus, dev, func]);
            }
            Device::Fd(fd) => {
                self.b(1);
                self.v(fd);
            }
            Device::Unknown => self.b(2),
        }
    }
}

/// Reads fields of one kind.
pub(crate) struct FieldReader<'c, 'a> {
    pub(super) c: &'c mut Cursor<'a>,
    pub(super) prev: &'c mut [u64; SLOTS],
}

impl FieldReader<'_, '_> {
    pub fn d(&mut self, slot: usize) -> DecodeResult<u64> {
        let v = self.prev[slot].wrapping_add(self.c.i64()? as u64);
        self.prev[slot] = v;
        Ok(v)
    }
    pub fn v(&mut self) -> DecodeResult<u64> {
        self.c.u64()
    }
    pub fn v32(&mut self) -> DecodeResult<u32> {
        self.c.u32()
    }
    pub fn z(&mut self) -> DecodeResult<i32> {
        self.c.i32()
    }
    pub fn b(&mut self) -> DecodeResult<u8> {
        self.c.u8()
    }
    pub fn bool(&mut self) -> DecodeResult<bool> {
        self.c.bool()
    }
    pub fn s(&mut self) -> DecodeResult<String> {
        self.c.string()
    }
    /// A list written by [`FieldWriter::list`].
    pub fn list<T>(
        &mut self,
        mut each: impl FnMut(&mut Self) -> DecodeResult<T>,
    ) -> DecodeResult<Vec<T>> {
        let n = self.c.len()?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(each(self)?);
        }
        Ok(v)
    }
    pub fn dev(&mut self) -> DecodeResult<Device> {
        Ok(match self.b()? {
            0 => {
                let seg = self.c.u16()?;
                let b = self.c.bytes(3)?;
                Device::Pci {
                    seg,
                    bus: b[0],
                    dev: b[1],
                    func: b[2],
                }
            }
            1 => Device::Fd(self.v32()?),
            2 => Device::Unknown,
            t => return self.c.err(format!("bad device tag {t}")),
        })
    }
    /// A small enum stored as its index in `all`.
    pub fn pick<T: Copy>(&mut self, all: &[T], what: &str) -> DecodeResult<T> {
        let i = self.b()?;
        match all.get(usize::from(i)) {
            Some(v) => Ok(*v),
            None => self.c.err(format!("bad {what} {i}")),
        }
    }
    pub fn err<T>(&self, detail: impl Into<String>) -> DecodeResult<T> {
        self.c.err(detail)
    }
}
