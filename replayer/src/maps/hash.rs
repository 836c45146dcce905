//! Hash maps: `hash`, `percpu_hash`, `lru_hash`, `lru_percpu_hash` (and the
//! redirect maps keyed like them).
//!
//! Semantics follow kernel/bpf/hashtab.c:
//! - update flags: unknown bits `-EINVAL`, `BPF_NOEXIST` on an existing key
//!   `-EEXIST`, `BPF_EXIST` on a missing key `-ENOENT`;
//! - a new key in a full (non-LRU) map is `-E2BIG`; replacing a key in a
//!   full map works;
//! - replacing a key of a plain hash map installs a *new* element (the kernel
//!   allocates one and frees the old after RCU), so a pointer obtained by an
//!   earlier lookup keeps showing the old value; per-CPU maps and
//!   `BPF_F_LOCK` updates copy in place;
//! - per-CPU maps: a program sees and updates the current CPU's value; a new
//!   element starts with the program's value on the current CPU and zeros
//!   on the others.
//!
//! LRU eviction is an approximation of the kernel's (documented in
//! [`LruOrder`]): the kernel evicts from per-CPU free lists in batches,
//! which depends on timing we do not model.
//!
//! Iteration (display, `bpf_for_each_map_elem`) is in key-byte order; the
//! kernel's order depends on a random hash seed and cannot be reproduced.

use std::collections::BTreeMap;

use super::def::{BPF_EXIST, BPF_F_LOCK, check_existence, check_update_flags};
use super::{MapError, ValueCell};

#[derive(Clone, Debug)]
struct HashEntry {
    /// One cell, or one per CPU for per-CPU maps.
    cells: Vec<ValueCell>,
    /// LRU: referenced since it was last considered for eviction.
    referenced: bool,
    /// LRU: position in the recency order (higher is newer).
    stamp: u64,
}

/// Eviction order of LRU hash maps: a "second chance" list that mirrors the
/// kernel's inactive/active lists with their reference bit. Lookups and
/// in-place updates set the reference bit; when a new element is needed in
/// a full map, the oldest element is taken, unless it was referenced, in
/// which case its bit is cleared and it moves to the newest position.
///
/// As in the kernel, an update needs a free element before it looks for the
/// key (except a `BPF_EXIST` update of a per-CPU LRU map), so updating an
/// existing key of a full map can evict another key, or the key itself.
/// The kernel frees elements in batches (`target_free`); this model evicts
/// exactly one.
#[derive(Clone, Debug, Default)]
struct LruOrder {
    next_stamp: u64,
    by_stamp: BTreeMap<u64, Vec<u8>>,
}

/// A hash-table map model.
#[derive(Clone, Debug)]
pub struct HashModel {
    key_size: usize,
    value_size: usize,
    max_entries: usize,
    n_cpus: usize,
    per_cpu: bool,
    entries: BTreeMap<Vec<u8>, HashEntry>,
    lru: Option<LruOrder>,
    /// Keys evicted by LRU since the last `take_evicted`, for the change log.
    evicted: Vec<Vec<u8>>,
}

impl HashModel {
    /// Bytes the entries hold (key, and the value once per CPU).
    pub fn footprint(&self) -> u64 {
        let cells = if self.per_cpu { self.n_cpus as u64 } else { 1 };
        self.entries.len() as u64 * (self.key_size as u64 + cells * self.value_size as u64)
    }

    /// A copy that shares no value cell with this model: a later write
    /// through either one leaves the other as it was (replay checkpoints).
    pub fn deep_clone(&self) -> HashModel {
        let mut copy = self.clone();
        for entry in copy.entries.values_mut() {
            for cell in &mut entry.cells {
                *cell = ValueCell::new(cell.to_vec());
            }
        }
        copy
    }

    pub fn new(
        key_size: u32,
        value_size: u32,
        max_entries: u32,
        per_cpu: bool,
        lru: bool,
        n_cpus: u32,
    ) -> Self {
        HashModel {
            key_size: key_size as usize,
            value_size: value_size as usize,
            max_entries: max_entries as usize,
            n_cpus: if per_cpu { n_cpus.max(1) as usize } else { 1 },
            per_cpu,
            entries: BTreeMap::new(),
            lru: lru.then(LruOrder::default),
            evicted: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn cpu_slot(&self, cpu: u32) -> usize {
        if self.per_cpu {
            (cpu as usize).min(self.n_cpus - 1)
        } else {
            0
        }
    }

    fn check_key(&self, key: &[u8]) -> Result<(), MapError> {
        if key.len() != self.key_size {
            return Err(MapError::Invalid("key size does not match the map"));
        }
        Ok(())
    }

    fn new_stamp(&mut self, key: &[u8]) -> u64 {
        match &mut self.lru {
            Some(lru) => {
                let s = lru.next_stamp;
                lru.next_stamp += 1;
                lru.by_stamp.insert(s, key.to_vec());
                s
            }
            None => 0,
        }
    }

    fn forget_stamp(&mut self, stamp: u64) {
        if let Some(lru) = &mut self.lru {
            lru.by_stamp.remove(&stamp);
        }
    }

    /// The value a program sees for `key` on `cpu` (`bpf_map_lookup_elem`).
    pub fn lookup(&mut self, key: &[u8], cpu: u32) -> Option<ValueCell> {
        let slot = self.cpu_slot(cpu);
        let e = self.entries.get_mut(key)?;
        e.referenced = true;
        Some(e.cells[slot].clone())
    }

    /// Evicts one element (second chance), for an LRU map that is full.
    fn evict_one(&mut self) {
        loop {
            let Some(lru) = &mut self.lru else { return };
            let Some((_, key)) = lru.by_stamp.pop_first() else {
                return;
            };
            let e = self
                .entries
                .get_mut(&key)
                .expect("LRU order holds only live keys");
            if e.referenced {
                e.referenced = false;
                let s = lru.next_stamp;
                lru.next_stamp += 1;
                lru.by_stamp.insert(s, key);
                e.stamp = s;
                continue;
            }
            self.entries.remove(&key);
            self.evicted.push(key);
            return;
        }
    }

    /// `bpf_map_update_elem` from a program running on `cpu`.
    pub fn update(
        &mut self,
        key: &[u8],
        value: &[u8],
        flags: u64,
        cpu: u32,
    ) -> Result<(), MapError> {
        self.check_key(key)?;
        check_update_flags(flags)?;
        let slot = self.cpu_slot(cpu);
        if self.lru.is_some() {
            let needs_free = !(self.per_cpu && flags == BPF_EXIST);
            if needs_free && self.entries.len() >= self.max_entries {
                self.evict_one();
            }
        }
        let exists = self.entries.contains_key(key);
        check_existence(flags, exists)?;
        if !exists && self.lru.is_none() && self.entries.len() >= self.max_entries {
            return Err(MapError::TooBig);
        }
        let in_place = self.per_cpu || flags & BPF_F_LOCK != 0;
        if exists && in_place {
            let e = self.entries.get_mut(key).expect("exists");
            e.referenced = true;
            e.cells[slot].store(value);
            return Ok(());
        }
        let cells = (0..self.n_cpus)
            .map(|c| {
                if c == slot {
                    ValueCell::new(fit(value, self.value_size))
                } else {
                    ValueCell::zeroed(self.value_size)
                }
            })
            .collect();
        self.insert_fresh(key, cells);
        Ok(())
    }

    /// Installs a new element for `key`, replacing any old one.
    fn insert_fresh(&mut self, key: &[u8], cells: Vec<ValueCell>) {
        if let Some(old) = self.entries.remove(key) {
            self.forget_stamp(old.stamp);
        }
        let stamp = self.new_stamp(key);
        self.entries.insert(
            key.to_vec(),
            HashEntry {
                cells,
                referenced: false,
                stamp,
            },
        );
    }

    /// `bpf_map_delete_elem`.
    pub fn delete(&mut self, key: &[u8]) -> Result<(), MapError> {
        self.check_key(key)?;
        match self.entries.remove(key) {
            Some(e) => {
                self.forget_stamp(e.stamp);
                Ok(())
            }
            None => Err(MapError::NotFound),
        }
    }

    /// A userspace update (BPF_MAP_UPDATE_ELEM, `BPF_ANY`): seeds the map
    /// from a snapshot. `values` holds one value, or one per CPU.
    pub fn seed(&mut self, key: &[u8], values: &[Vec<u8>]) -> Result<(), MapError> {
        self.check_key(key)?;
        if !self.entries.contains_key(key) && self.entries.len() >= self.max_entries {
            return Err(MapError::TooBig);
        }
        let cells = (0..self.n_cpus)
            .map(|c| {
                let v = values
                    .get(c)
                    .or(values.first())
                    .map(|v| fit(v, self.value_size));
                ValueCell::new(v.unwrap_or_else(|| vec![0; self.value_size]))
            })
            .collect();
        self.insert_fresh(key, cells);
        Ok(())
    }

    /// Every element: key and its value(s) (one per CPU for per-CPU maps).
    pub fn entries(&self) -> Vec<(Vec<u8>, Vec<Vec<u8>>)> {
        self.entries
            .iter()
            .map(|(k, e)| (k.clone(), e.cells.iter().map(|c| c.to_vec()).collect()))
            .collect()
    }

    /// The live cells a program on `cpu` would see, in iteration order.
    pub fn cells(&self, cpu: u32) -> Vec<(Vec<u8>, ValueCell)> {
        let slot = self.cpu_slot(cpu);
        self.entries
            .iter()
            .map(|(k, e)| (k.clone(), e.cells[slot].clone()))
            .collect()
    }

    /// Keys LRU eviction removed since the last call.
    pub fn take_evicted(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.evicted)
    }
}

/// `value` cut or zero-padded to `len` bytes.
pub(crate) fn fit(value: &[u8], len: usize) -> Vec<u8> {
    let mut v = value[..value.len().min(len)].to_vec();
    v.resize(len, 0);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maps::def::{BPF_ANY, BPF_NOEXIST};

    fn k(n: u32) -> Vec<u8> {
        n.to_le_bytes().to_vec()
    }

    #[test]
    fn flags_and_capacity() {
        let mut h = HashModel::new(4, 8, 2, false, false, 1);
        assert_eq!(
            h.update(&k(1), &[1; 8], BPF_EXIST, 0),
            Err(MapError::NotFound)
        );
        h.update(&k(1), &[1; 8], BPF_NOEXIST, 0).unwrap();
        assert_eq!(
            h.update(&k(1), &[2; 8], BPF_NOEXIST, 0),
            Err(MapError::Exists)
        );
        h.update(&k(1), &[2; 8], BPF_EXIST, 0).unwrap();
        h.update(&k(2), &[3; 8], BPF_ANY, 0).unwrap();
        assert_eq!(h.update(&k(3), &[3; 8], BPF_ANY, 0), Err(MapError::TooBig));
        // Replacing in a full map is fine.
        h.update(&k(2), &[4; 8], BPF_ANY, 0).unwrap();
        assert_eq!(
            h.update(&k(2), &[4; 8], 3, 0),
            Err(MapError::Invalid("unknown update flags"))
        );
        assert_eq!(h.lookup(&k(1), 0).unwrap().to_vec(), vec![2; 8]);
        assert_eq!(h.delete(&k(1)), Ok(()));
        assert_eq!(h.delete(&k(1)), Err(MapError::NotFound));
        assert!(h.lookup(&k(1), 0).is_none());
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn lookup_pointer_aliases_the_element_until_replaced() {
        let mut h = HashModel::new(4, 4, 4, false, false, 1);
        h.update(&k(1), &[1, 0, 0, 0], BPF_ANY, 0).unwrap();
        let p = h.lookup(&k(1), 0).unwrap();
        p.bytes_mut()[0] = 7; // a store through the pointer
        assert_eq!(h.lookup(&k(1), 0).unwrap().to_vec(), vec![7, 0, 0, 0]);
        // A replacing update installs a new element: the old pointer is stale.
        h.update(&k(1), &[9, 9, 9, 9], BPF_ANY, 0).unwrap();
        assert_eq!(p.to_vec(), vec![7, 0, 0, 0]);
        assert_eq!(h.lookup(&k(1), 0).unwrap().to_vec(), vec![9; 4]);
        // BPF_F_LOCK updates in place.
        let q = h.lookup(&k(1), 0).unwrap();
        h.update(&k(1), &[5; 4], BPF_F_LOCK, 0).unwrap();
        assert_eq!(q.to_vec(), vec![5; 4]);
        // A deleted element stays readable through an old pointer.
        h.delete(&k(1)).unwrap();
        assert_eq!(q.to_vec(), vec![5; 4]);
    }

    #[test]
    fn per_cpu_values() {
        let mut h = HashModel::new(4, 4, 4, true, false, 3);
        h.update(&k(1), &[1; 4], BPF_ANY, 1).unwrap();
        assert_eq!(h.entries()[0].1, vec![vec![0; 4], vec![1; 4], vec![0; 4]]);
        let p = h.lookup(&k(1), 1).unwrap();
        h.update(&k(1), &[2; 4], BPF_ANY, 1).unwrap(); // in place
        assert_eq!(p.to_vec(), vec![2; 4]);
        h.update(&k(1), &[3; 4], BPF_ANY, 2).unwrap();
        assert_eq!(h.entries()[0].1, vec![vec![0; 4], vec![2; 4], vec![3; 4]]);
        assert_eq!(h.lookup(&k(1), 0).unwrap().to_vec(), vec![0; 4]);
        h.seed(&k(2), &[vec![4; 4], vec![5; 4], vec![6; 4]])
            .unwrap();
        assert_eq!(h.lookup(&k(2), 2).unwrap().to_vec(), vec![6; 4]);
    }

    #[test]
    fn lru_evicts_oldest_unreferenced() {
        let mut h = HashModel::new(4, 4, 3, false, true, 1);
        for i in 1..=3 {
            h.update(&k(i), &[i as u8; 4], BPF_ANY, 0).unwrap();
        }
        // 1 is referenced: it gets a second chance, 2 is evicted.
        h.lookup(&k(1), 0);
        h.update(&k(4), &[4; 4], BPF_ANY, 0).unwrap();
        assert_eq!(h.take_evicted(), vec![k(2)]);
        let keys: Vec<_> = h.entries().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, vec![k(1), k(3), k(4)]);
        // Never E2BIG; next victim is 3 (1 lost its reference bit but moved to the back).
        h.update(&k(5), &[5; 4], BPF_NOEXIST, 0).unwrap();
        assert_eq!(h.take_evicted(), vec![k(3)]);
        // Updating an existing key of a full LRU map evicts another one, as the kernel does.
        h.update(&k(5), &[6; 4], BPF_ANY, 0).unwrap();
        assert_eq!(h.take_evicted(), vec![k(1)]);
        assert_eq!(h.len(), 2);
    }

    #[test]
    fn lru_update_may_evict_the_key_itself() {
        let mut h = HashModel::new(4, 4, 2, false, true, 1);
        h.update(&k(1), &[1; 4], BPF_ANY, 0).unwrap();
        h.update(&k(2), &[2; 4], BPF_ANY, 0).unwrap();
        // Key 1 is the oldest: it is evicted to make room, then BPF_EXIST fails.
        assert_eq!(
            h.update(&k(1), &[3; 4], BPF_EXIST, 0),
            Err(MapError::NotFound)
        );
        assert_eq!(h.take_evicted(), vec![k(1)]);
    }

    #[test]
    fn wrong_key_size_is_invalid() {
        let mut h = HashModel::new(4, 4, 2, false, false, 1);
        assert!(matches!(
            h.update(&[1, 2], &[0; 4], BPF_ANY, 0),
            Err(MapError::Invalid(_))
        ));
        assert!(matches!(h.delete(&[1]), Err(MapError::Invalid(_))));
    }
}
