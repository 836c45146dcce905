//! Program array (`prog_array`): tail-call targets by index.
//!
//! Programs cannot read or write it (the verifier forbids it); userspace
//! fills it, here through `seed` with a `u32` program number as the value.
//! `bpf_tail_call` to an empty or out-of-range slot falls through.

use std::collections::BTreeMap;

use super::MapError;

#[derive(Clone, Debug)]
pub struct ProgArrayModel {
    max_entries: u32,
    slots: BTreeMap<u32, u32>,
}

impl ProgArrayModel {
    pub fn new(max_entries: u32) -> Self {
        ProgArrayModel {
            max_entries,
            slots: BTreeMap::new(),
        }
    }

    /// The program in slot `index`, if any.
    pub fn target(&self, index: u32) -> Option<u32> {
        self.slots.get(&index).copied()
    }

    /// Userspace: puts program `prog` in slot `index`.
    pub fn set(&mut self, index: u32, prog: u32) -> Result<(), MapError> {
        if index >= self.max_entries {
            return Err(MapError::TooBig);
        }
        self.slots.insert(index, prog);
        Ok(())
    }

    /// Userspace: empties slot `index`.
    pub fn clear(&mut self, index: u32) -> Result<(), MapError> {
        self.slots
            .remove(&index)
            .map(|_| ())
            .ok_or(MapError::NotFound)
    }

    pub fn entries(&self) -> Vec<(Vec<u8>, Vec<Vec<u8>>)> {
        self.slots
            .iter()
            .map(|(i, p)| (i.to_le_bytes().to_vec(), vec![p.to_le_bytes().to_vec()]))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots() {
        let mut p = ProgArrayModel::new(4);
        assert_eq!(p.target(1), None);
        p.set(1, 7).unwrap();
        assert_eq!(p.target(1), Some(7));
        assert_eq!(p.set(4, 7), Err(MapError::TooBig));
        p.clear(1).unwrap();
        assert_eq!(p.clear(1), Err(MapError::NotFound));
        assert_eq!(p.target(1), None);
    }
}
