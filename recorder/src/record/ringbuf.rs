//! Draining `bpfrr_rb` through aya's ring buffer consumer (memory-mapped,
//! no system call per record).

use std::os::fd::AsFd;

use aya::maps::{Map, MapData, RingBuf};

use crate::sys::BpfMap;

/// Reads records from bpfrr's ring buffer.
pub struct RingReader {
    ring: RingBuf<MapData>,
    /// Bytes of records read so far.
    pub bytes: u64,
}

impl std::fmt::Debug for RingReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RingReader")
            .field("bytes", &self.bytes)
            .finish()
    }
}

impl RingReader {
    /// Opens a consumer on `map` (a duplicate of its fd is handed to aya).
    pub fn new(map: &BpfMap) -> Result<RingReader, String> {
        let fd = map
            .fd
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| format!("cannot duplicate the ring buffer's fd: {e}"))?;
        let data = MapData::from_fd(fd)
            .map_err(|e| format!("cannot open the ring buffer with aya: {e}"))?;
        let map = Map::from_map_data(data)
            .map_err(|e| format!("cannot open the ring buffer with aya: {e}"))?;
        let ring =
            RingBuf::try_from(map).map_err(|e| format!("cannot map the ring buffer: {e}"))?;
        Ok(RingReader { ring, bytes: 0 })
    }

    /// Hands every record available now to `f`, in ring order.
    pub fn drain(&mut self, mut f: impl FnMut(&[u8])) -> usize {
        let mut n = 0;
        while let Some(item) = self.ring.next() {
            self.bytes += item.len() as u64;
            f(&item);
            n += 1;
        }
        n
    }
}
