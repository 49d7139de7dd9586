//! Little-endian reads from the bytes a probe captured: a read past what was
//! captured yields zero, the same value the kernel's failed probe read leaves.

/// The captured prefix of a user struct.
#[derive(Clone, Copy)]
pub struct Bytes<'a>(pub &'a [u8]);

impl Bytes<'_> {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `[off, off + n)` was captured.
    pub fn has(&self, off: usize, n: usize) -> bool {
        off.checked_add(n).is_some_and(|end| end <= self.0.len())
    }

    pub fn u16(&self, off: usize) -> u16 {
        self.array::<2>(off).map(u16::from_le_bytes).unwrap_or(0)
    }

    pub fn u32(&self, off: usize) -> u32 {
        self.array::<4>(off).map(u32::from_le_bytes).unwrap_or(0)
    }

    pub fn i32(&self, off: usize) -> i32 {
        self.array::<4>(off).map(i32::from_le_bytes).unwrap_or(0)
    }

    pub fn u64(&self, off: usize) -> u64 {
        self.array::<8>(off).map(u64::from_le_bytes).unwrap_or(0)
    }

    fn array<const N: usize>(&self, off: usize) -> Option<[u8; N]> {
        let end = off.checked_add(N)?;
        self.0.get(off..end)?.try_into().ok()
    }
}
