//! Memory the program may read with `bpf_probe_read_*` but that is not
//! its own: a picture of user or kernel memory, given by the user as
//! segments (address, bytes). An address outside every segment reads as a
//! fault, as an unmapped address does in the kernel.

use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryImage {
    segments: BTreeMap<u64, Vec<u8>>,
}

impl MemoryImage {
    pub fn new() -> MemoryImage {
        MemoryImage::default()
    }

    /// Adds `bytes` at `addr` (a later segment at the same address replaces it).
    pub fn with(mut self, addr: u64, bytes: Vec<u8>) -> MemoryImage {
        self.insert(addr, bytes);
        self
    }

    pub fn insert(&mut self, addr: u64, bytes: Vec<u8>) {
        self.segments.insert(addr, bytes);
    }

    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// The `len` bytes at `addr`, if one segment holds all of them.
    pub fn read(&self, addr: u64, len: usize) -> Option<&[u8]> {
        let (start, bytes) = self.segments.range(..=addr).next_back()?;
        let off = usize::try_from(addr - start).ok()?;
        bytes.get(off..off.checked_add(len)?)
    }

    /// Bytes from `addr` up to (not including) a NUL, at most `max` of
    /// them; `complete` tells whether the NUL (or `max`) was reached before
    /// the mapped bytes ran out.
    pub fn read_str(&self, addr: u64, max: usize) -> (Vec<u8>, bool) {
        let mut out = Vec::new();
        while out.len() < max {
            match self.read(addr.wrapping_add(out.len() as u64), 1) {
                Some([0]) => return (out, true),
                Some(b) => out.push(b[0]),
                None => return (out, false),
            }
        }
        (out, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_inside_segments_only() {
        let m = MemoryImage::new()
            .with(0x1000, b"abc\0def".to_vec())
            .with(0x2000, vec![1, 2]);
        assert_eq!(m.read(0x1001, 2), Some(&b"bc"[..]));
        assert_eq!(m.read(0x1005, 4), None, "crosses the end");
        assert_eq!(m.read(0xfff, 1), None);
        assert_eq!(m.read(0x2001, 1), Some(&[2u8][..]));
        assert_eq!(m.read_str(0x1000, 16), (b"abc".to_vec(), true));
        assert_eq!(m.read_str(0x1004, 16), (b"def".to_vec(), false));
        assert_eq!(m.read_str(0x1004, 2), (b"de".to_vec(), true));
    }
}
