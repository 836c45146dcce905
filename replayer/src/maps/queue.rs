//! `queue` (FIFO) and `stack` (LIFO) maps, after
//! kernel/bpf/queue_stack_maps.c: push with `BPF_ANY` into a full map is
//! `-E2BIG`, with `BPF_EXIST` it drops the oldest element; `BPF_NOEXIST` or
//! unknown flags are `-EINVAL`; pop and peek of an empty map are `-ENOENT`.

use std::collections::VecDeque;

use super::MapError;
use super::def::{BPF_EXIST, BPF_NOEXIST};
use super::hash::fit;

#[derive(Clone, Debug)]
pub struct QueueStackModel {
    lifo: bool,
    value_size: usize,
    max_entries: usize,
    /// Oldest first.
    items: VecDeque<Vec<u8>>,
}

impl QueueStackModel {
    /// Bytes the queued values hold.
    pub fn footprint(&self) -> u64 {
        self.items.len() as u64 * self.value_size as u64
    }

    pub fn new(value_size: u32, max_entries: u32, lifo: bool) -> Self {
        QueueStackModel {
            lifo,
            value_size: value_size as usize,
            max_entries: max_entries as usize,
            items: VecDeque::new(),
        }
    }

    pub fn push(&mut self, value: &[u8], flags: u64) -> Result<(), MapError> {
        if flags & BPF_NOEXIST != 0 || flags > BPF_EXIST {
            return Err(MapError::Invalid("push flags must be BPF_ANY or BPF_EXIST"));
        }
        if self.items.len() >= self.max_entries {
            if flags & BPF_EXIST == 0 {
                return Err(MapError::TooBig);
            }
            self.items.pop_front();
        }
        self.items.push_back(fit(value, self.value_size));
        Ok(())
    }

    pub fn peek(&self) -> Result<Vec<u8>, MapError> {
        let v = if self.lifo {
            self.items.back()
        } else {
            self.items.front()
        };
        v.cloned().ok_or(MapError::NotFound)
    }

    pub fn pop(&mut self) -> Result<Vec<u8>, MapError> {
        let v = if self.lifo {
            self.items.pop_back()
        } else {
            self.items.pop_front()
        };
        v.ok_or(MapError::NotFound)
    }

    /// Elements oldest first, keyed by their position.
    pub fn entries(&self) -> Vec<(Vec<u8>, Vec<Vec<u8>>)> {
        self.items
            .iter()
            .enumerate()
            .map(|(i, v)| ((i as u32).to_le_bytes().to_vec(), vec![v.clone()]))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maps::def::BPF_ANY;

    #[test]
    fn queue_is_fifo_and_exist_overwrites_oldest() {
        let mut q = QueueStackModel::new(1, 2, false);
        assert_eq!(q.pop(), Err(MapError::NotFound));
        assert_eq!(q.peek(), Err(MapError::NotFound));
        q.push(&[1], BPF_ANY).unwrap();
        q.push(&[2], BPF_ANY).unwrap();
        assert_eq!(q.push(&[3], BPF_ANY), Err(MapError::TooBig));
        q.push(&[3], BPF_EXIST).unwrap();
        assert_eq!(q.peek(), Ok(vec![2]));
        assert_eq!(q.pop(), Ok(vec![2]));
        assert_eq!(q.pop(), Ok(vec![3]));
        assert!(matches!(
            q.push(&[1], BPF_NOEXIST),
            Err(MapError::Invalid(_))
        ));
        assert!(matches!(q.push(&[1], 4), Err(MapError::Invalid(_))));
    }

    #[test]
    fn stack_is_lifo() {
        let mut s = QueueStackModel::new(1, 2, true);
        s.push(&[1], BPF_ANY).unwrap();
        s.push(&[2], BPF_ANY).unwrap();
        s.push(&[3], BPF_EXIST).unwrap(); // drops the oldest (1)
        assert_eq!(s.peek(), Ok(vec![3]));
        assert_eq!(s.pop(), Ok(vec![3]));
        assert_eq!(s.pop(), Ok(vec![2]));
        assert_eq!(s.pop(), Err(MapError::NotFound));
    }
}
