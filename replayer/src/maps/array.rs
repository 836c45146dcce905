//! Array maps: `array` and `percpu_array` (also the global-data maps
//! `.data`, `.rodata`, `.bss`, which are one-element arrays).
//!
//! Semantics follow kernel/bpf/arraymap.c: keys are `u32` indexes; a
//! lookup past `max_entries` finds nothing; an update past it is `-E2BIG`,
//! with `BPF_NOEXIST` it is `-EEXIST` (every element always exists), unknown
//! flags are `-EINVAL`; delete is `-EINVAL`. Updates copy in place, so a
//! pointer from a lookup always shows the live value. A program on a
//! per-CPU array sees and updates its own CPU's value.
//!
//! Elements are created (zeroed) on first touch, so a large array costs
//! only what is used.

use std::collections::BTreeMap;

use super::def::{BPF_F_LOCK, BPF_NOEXIST, check_update_flags};
use super::hash::fit;
use super::{MapError, ValueCell};

#[derive(Clone, Debug)]
pub struct ArrayModel {
    value_size: usize,
    max_entries: u32,
    n_cpus: usize,
    per_cpu: bool,
    elements: BTreeMap<u32, Vec<ValueCell>>,
}

impl ArrayModel {
    pub fn new(value_size: u32, max_entries: u32, per_cpu: bool, n_cpus: u32) -> Self {
        ArrayModel {
            value_size: value_size as usize,
            max_entries,
            n_cpus: if per_cpu { n_cpus.max(1) as usize } else { 1 },
            per_cpu,
            elements: BTreeMap::new(),
        }
    }

    /// Bytes the elements touched so far hold (once per CPU).
    pub fn footprint(&self) -> u64 {
        self.elements.len() as u64 * self.n_cpus as u64 * self.value_size as u64
    }

    pub fn max_entries(&self) -> u32 {
        self.max_entries
    }

    fn index(key: &[u8]) -> Result<u32, MapError> {
        let b: [u8; 4] = key
            .try_into()
            .map_err(|_| MapError::Invalid("array keys are 4-byte indexes"))?;
        Ok(u32::from_le_bytes(b))
    }

    fn slot(&self, cpu: u32) -> usize {
        if self.per_cpu {
            (cpu as usize).min(self.n_cpus - 1)
        } else {
            0
        }
    }

    fn element(&mut self, index: u32) -> &mut Vec<ValueCell> {
        let (n, size) = (self.n_cpus, self.value_size);
        self.elements
            .entry(index)
            .or_insert_with(|| (0..n).map(|_| ValueCell::zeroed(size)).collect())
    }

    /// `bpf_map_lookup_elem`: the element's cell on `cpu`, or None past the end.
    pub fn lookup(&mut self, key: &[u8], cpu: u32) -> Option<ValueCell> {
        let index = Self::index(key).ok()?;
        self.lookup_index(index, cpu)
    }

    pub fn lookup_index(&mut self, index: u32, cpu: u32) -> Option<ValueCell> {
        if index >= self.max_entries {
            return None;
        }
        let slot = self.slot(cpu);
        Some(self.element(index)[slot].clone())
    }

    /// `bpf_map_update_elem` from a program on `cpu`.
    pub fn update(
        &mut self,
        key: &[u8],
        value: &[u8],
        flags: u64,
        cpu: u32,
    ) -> Result<(), MapError> {
        check_update_flags(flags)?;
        let index = Self::index(key)?;
        if index >= self.max_entries {
            return Err(MapError::TooBig);
        }
        if flags & !BPF_F_LOCK == BPF_NOEXIST {
            return Err(MapError::Exists);
        }
        let slot = self.slot(cpu);
        self.element(index)[slot].store(value);
        Ok(())
    }

    /// `bpf_map_delete_elem`: arrays cannot delete.
    pub fn delete(&mut self, _key: &[u8]) -> Result<(), MapError> {
        Err(MapError::Invalid("array elements cannot be deleted"))
    }

    /// A userspace update: one value, or one per CPU.
    pub fn seed(&mut self, key: &[u8], values: &[Vec<u8>]) -> Result<(), MapError> {
        let index = Self::index(key)?;
        if index >= self.max_entries {
            return Err(MapError::TooBig);
        }
        let size = self.value_size;
        for (c, cell) in self.element(index).iter().enumerate() {
            let v = values.get(c).or(values.first()).map(|v| fit(v, size));
            cell.store(&v.unwrap_or_else(|| vec![0; size]));
        }
        Ok(())
    }

    /// The elements that were ever touched or seeded (others are zero).
    pub fn entries(&self) -> Vec<(Vec<u8>, Vec<Vec<u8>>)> {
        self.elements
            .iter()
            .map(|(i, cells)| {
                (
                    i.to_le_bytes().to_vec(),
                    cells.iter().map(|c| c.to_vec()).collect(),
                )
            })
            .collect()
    }

    /// Every element's cell on `cpu`, in index order (for
    /// `bpf_for_each_map_elem`, which visits all `max_entries`).
    pub fn cells(&mut self, cpu: u32) -> Vec<(Vec<u8>, ValueCell)> {
        (0..self.max_entries)
            .map(|i| {
                (
                    i.to_le_bytes().to_vec(),
                    self.lookup_index(i, cpu).expect("in range"),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maps::def::{BPF_ANY, BPF_EXIST};

    fn k(n: u32) -> Vec<u8> {
        n.to_le_bytes().to_vec()
    }

    #[test]
    fn array_semantics() {
        let mut a = ArrayModel::new(4, 2, false, 1);
        assert_eq!(a.lookup(&k(0), 0).unwrap().to_vec(), vec![0; 4]);
        assert!(a.lookup(&k(2), 0).is_none());
        let p = a.lookup(&k(1), 0).unwrap();
        a.update(&k(1), &[1, 2, 3, 4], BPF_EXIST, 0).unwrap();
        assert_eq!(p.to_vec(), vec![1, 2, 3, 4], "updates are in place");
        assert_eq!(
            a.update(&k(1), &[0; 4], BPF_NOEXIST, 0),
            Err(MapError::Exists)
        );
        assert_eq!(a.update(&k(2), &[0; 4], BPF_ANY, 0), Err(MapError::TooBig));
        assert_eq!(
            a.update(&k(0), &[0; 4], 7, 0),
            Err(MapError::Invalid("unknown update flags"))
        );
        assert!(matches!(a.delete(&k(0)), Err(MapError::Invalid(_))));
        assert_eq!(a.entries().len(), 2);
    }

    #[test]
    fn per_cpu_array() {
        let mut a = ArrayModel::new(8, 1, true, 2);
        a.update(&k(0), &[1; 8], BPF_ANY, 1).unwrap();
        assert_eq!(a.lookup(&k(0), 0).unwrap().to_vec(), vec![0; 8]);
        assert_eq!(a.lookup(&k(0), 1).unwrap().to_vec(), vec![1; 8]);
        a.seed(&k(0), &[vec![3; 8], vec![4; 8]]).unwrap();
        assert_eq!(a.entries()[0].1, vec![vec![3; 8], vec![4; 8]]);
        assert_eq!(a.cells(1).len(), 1);
    }
}
