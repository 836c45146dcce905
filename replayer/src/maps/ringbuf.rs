//! BPF ring buffer (`ringbuf`): records reserved, then submitted or
//! discarded, read in order by a consumer.
//!
//! Space accounting follows kernel/bpf/ringbuf.c: each record takes an
//! 8-byte header plus its length, rounded up to 8; a reservation fails (NULL)
//! when the producer would get `size` bytes or more ahead of the consumer,
//! and records (even discarded ones) hold their space until the consumer
//! passes them. The consumer here is [`RingBufModel::drain`], which `bpfrr
//! run` calls after each input; nothing else consumes.

use std::collections::VecDeque;

use super::{MapError, ValueCell};

/// Header bytes the kernel puts before each record.
pub const RINGBUF_HDR_SZ: u64 = 8;
/// `BPF_RB_NO_WAKEUP` / `BPF_RB_FORCE_WAKEUP`: the only flags of output/submit/discard.
pub const BPF_RB_NO_WAKEUP: u64 = 1;
pub const BPF_RB_FORCE_WAKEUP: u64 = 2;
/// `bpf_ringbuf_query` flags.
pub const BPF_RB_AVAIL_DATA: u64 = 0;
pub const BPF_RB_RING_SIZE: u64 = 1;
pub const BPF_RB_CONS_POS: u64 = 2;
pub const BPF_RB_PROD_POS: u64 = 3;
/// The kernel's largest record (`RINGBUF_MAX_RECORD_SZ`).
const MAX_RECORD: u64 = (u32::MAX / 4) as u64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordState {
    Reserved,
    Submitted,
    Discarded,
}

#[derive(Clone, Debug)]
pub struct RingRecord {
    /// Sequence number of the reservation (0, 1, ...).
    pub id: u64,
    pub state: RecordState,
    /// The record's bytes, aliased by the VM region the program writes.
    pub cell: ValueCell,
    /// Bytes taken in the ring (header and padding included).
    span: u64,
}

#[derive(Clone, Debug)]
pub struct RingBufModel {
    size: u64,
    producer: u64,
    consumer: u64,
    next_id: u64,
    records: VecDeque<RingRecord>,
}

impl RingBufModel {
    /// A ring of `size` data bytes (the map's max_entries).
    pub fn new(size: u32) -> Self {
        RingBufModel {
            size: size as u64,
            producer: 0,
            consumer: 0,
            next_id: 0,
            records: VecDeque::new(),
        }
    }

    /// `bpf_ringbuf_reserve`: a zeroed record of `len` bytes, or None (the
    /// helper returns NULL) for bad flags or no room.
    pub fn reserve(&mut self, len: u64, flags: u64) -> Option<(u64, ValueCell)> {
        if flags != 0 || len > MAX_RECORD {
            return None;
        }
        let span = (len + RINGBUF_HDR_SZ).div_ceil(8) * 8;
        if span > self.size || self.producer + span - self.consumer > self.size - 1 {
            return None;
        }
        let id = self.next_id;
        self.next_id += 1;
        self.producer += span;
        let cell = ValueCell::zeroed(len as usize);
        self.records.push_back(RingRecord {
            id,
            state: RecordState::Reserved,
            cell: cell.clone(),
            span,
        });
        Some((id, cell))
    }

    fn reserved(&mut self, cell: &ValueCell) -> Result<&mut RingRecord, MapError> {
        self.records
            .iter_mut()
            .find(|r| r.state == RecordState::Reserved && r.cell.same_storage(cell))
            .ok_or(MapError::Invalid("not a reserved ring buffer record"))
    }

    /// `bpf_ringbuf_submit` of the record whose bytes are `cell`.
    pub fn submit(&mut self, cell: &ValueCell) -> Result<(), MapError> {
        self.reserved(cell)?.state = RecordState::Submitted;
        Ok(())
    }

    /// `bpf_ringbuf_discard` of the record whose bytes are `cell`.
    pub fn discard(&mut self, cell: &ValueCell) -> Result<(), MapError> {
        self.reserved(cell)?.state = RecordState::Discarded;
        Ok(())
    }

    /// `bpf_ringbuf_output`: reserve, copy, submit; `-EAGAIN` when full.
    pub fn output(&mut self, data: &[u8], flags: u64) -> Result<(), MapError> {
        if flags & !(BPF_RB_NO_WAKEUP | BPF_RB_FORCE_WAKEUP) != 0 {
            return Err(MapError::Invalid("unknown ring buffer flags"));
        }
        let (_, cell) = self.reserve(data.len() as u64, 0).ok_or(MapError::Again)?;
        cell.store(data);
        self.submit(&cell)
    }

    /// `bpf_ringbuf_query`.
    pub fn query(&self, flag: u64) -> u64 {
        match flag {
            BPF_RB_AVAIL_DATA => self.producer - self.consumer,
            BPF_RB_RING_SIZE => self.size,
            BPF_RB_CONS_POS => self.consumer,
            BPF_RB_PROD_POS => self.producer,
            _ => 0,
        }
    }

    /// The consumer: takes every finished record in order (up to the first
    /// still-reserved one) and returns the submitted ones' bytes.
    pub fn drain(&mut self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(r) = self.records.front() {
            if r.state == RecordState::Reserved {
                break;
            }
            let r = self.records.pop_front().expect("front exists");
            self.consumer += r.span;
            if r.state == RecordState::Submitted {
                out.push(r.cell.to_vec());
            }
        }
        out
    }

    /// Bytes the records not yet consumed take in the ring.
    pub fn footprint(&self) -> u64 {
        self.producer - self.consumer
    }

    /// Records not yet consumed, in ring order.
    pub fn pending(&self) -> impl Iterator<Item = &RingRecord> {
        self.records.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_submit_discard_drain() {
        let mut rb = RingBufModel::new(4096);
        let (_, a) = rb.reserve(5, 0).unwrap();
        a.store(b"hello");
        let (_, b) = rb.reserve(3, 0).unwrap();
        rb.output(b"xyz", BPF_RB_NO_WAKEUP).unwrap();
        assert_eq!(rb.query(BPF_RB_AVAIL_DATA), 16 + 16 + 16);
        rb.submit(&a).unwrap();
        // b still reserved: the consumer stops there.
        assert_eq!(rb.drain(), vec![b"hello".to_vec()]);
        rb.discard(&b).unwrap();
        assert_eq!(
            rb.submit(&b),
            Err(MapError::Invalid("not a reserved ring buffer record"))
        );
        assert_eq!(rb.drain(), vec![b"xyz".to_vec()]);
        assert_eq!(rb.query(BPF_RB_CONS_POS), 48);
        assert_eq!(rb.query(BPF_RB_PROD_POS), 48);
        assert_eq!(rb.query(BPF_RB_RING_SIZE), 4096);
        assert_eq!(rb.query(BPF_RB_AVAIL_DATA), 0);
    }

    #[test]
    fn full_ring_refuses() {
        let mut rb = RingBufModel::new(4096);
        assert!(rb.reserve(4096, 0).is_none(), "larger than the ring");
        assert!(rb.reserve(8, 1).is_none(), "flags must be 0");
        // 4088 + 8 = 4096 bytes would fill the ring completely: refused.
        assert!(rb.reserve(4088, 0).is_none());
        let (_, big) = rb.reserve(4080, 0).unwrap();
        assert_eq!(rb.output(&[1], 0), Err(MapError::Again));
        assert_eq!(
            rb.output(&[1], 4),
            Err(MapError::Invalid("unknown ring buffer flags"))
        );
        rb.discard(&big).unwrap();
        assert!(rb.drain().is_empty());
        rb.output(&[1], 0).unwrap();
    }
}
