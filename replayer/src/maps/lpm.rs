//! Longest-prefix-match trie (`lpm_trie`).
//!
//! Keys are `struct bpf_lpm_trie_key { u32 prefixlen; u8 data[]; }`: a
//! little-endian prefix length in bits, then `key_size - 4` data bytes
//! compared most significant bit first (network order for addresses).
//! Semantics follow kernel/bpf/lpm_trie.c (6.13 and later):
//! - lookup returns the entry with the longest prefix that matches the
//!   key's first `prefixlen` bits (only entries no longer than the key's
//!   own prefixlen can match);
//! - update: unknown flags or a prefixlen above `8 * data size` are
//!   `-EINVAL`; an existing exact entry with `BPF_NOEXIST` is `-EEXIST`; a
//!   missing one with `BPF_EXIST` is `-ENOENT`; a new entry in a full trie is
//!   `-ENOSPC` (not `-E2BIG`); replacing installs a new node;
//! - delete of a missing exact entry is `-ENOENT`.
//!
//! Entries are listed in the kernel's `get_next_key` order: more specific
//! prefixes before the prefixes that contain them, 0-branches first.

use std::cmp::Ordering;

use super::def::{BPF_EXIST, check_existence};
use super::hash::fit;
use super::{MapError, ValueCell};

#[derive(Clone, Debug)]
struct LpmEntry {
    prefixlen: u32,
    data: Vec<u8>,
    cell: ValueCell,
}

#[derive(Clone, Debug)]
pub struct LpmTrieModel {
    data_size: usize,
    value_size: usize,
    max_entries: usize,
    entries: Vec<LpmEntry>,
}

fn bit(data: &[u8], i: u32) -> u8 {
    (data[(i / 8) as usize] >> (7 - (i % 8))) & 1
}

/// Number of leading bits equal in `a` and `b`, up to `limit`.
fn common_bits(a: &[u8], b: &[u8], limit: u32) -> u32 {
    (0..limit)
        .find(|&i| bit(a, i) != bit(b, i))
        .unwrap_or(limit)
}

/// The kernel's postorder: descendants first, 0-branch before 1-branch.
fn postorder(a: (u32, &[u8]), b: (u32, &[u8])) -> Ordering {
    let limit = a.0.min(b.0);
    let common = common_bits(a.1, b.1, limit);
    if common < limit {
        return bit(a.1, common).cmp(&bit(b.1, common));
    }
    b.0.cmp(&a.0)
}

impl LpmTrieModel {
    /// Bytes the entries hold (prefix length, data and value).
    pub fn footprint(&self) -> u64 {
        self.entries.len() as u64 * (4 + self.data_size as u64 + self.value_size as u64)
    }

    pub fn new(key_size: u32, value_size: u32, max_entries: u32) -> Self {
        LpmTrieModel {
            data_size: key_size.saturating_sub(4) as usize,
            value_size: value_size as usize,
            max_entries: max_entries as usize,
            entries: Vec::new(),
        }
    }

    fn max_prefixlen(&self) -> u32 {
        (self.data_size * 8) as u32
    }

    fn split<'k>(&self, key: &'k [u8]) -> Result<(u32, &'k [u8]), MapError> {
        if key.len() != 4 + self.data_size {
            return Err(MapError::Invalid("key size does not match the trie"));
        }
        let prefixlen = u32::from_le_bytes(key[..4].try_into().expect("4 bytes"));
        Ok((prefixlen, &key[4..]))
    }

    fn exact(&self, prefixlen: u32, data: &[u8]) -> Option<usize> {
        self.entries.iter().position(|e| {
            e.prefixlen == prefixlen && common_bits(&e.data, data, prefixlen) == prefixlen
        })
    }

    /// `bpf_map_lookup_elem`: the longest matching prefix.
    pub fn lookup(&self, key: &[u8]) -> Option<ValueCell> {
        let (prefixlen, data) = self.split(key).ok()?;
        let limit = prefixlen.min(self.max_prefixlen());
        self.entries
            .iter()
            .filter(|e| {
                e.prefixlen <= limit && common_bits(&e.data, data, e.prefixlen) == e.prefixlen
            })
            .max_by_key(|e| e.prefixlen)
            .map(|e| e.cell.clone())
    }

    pub fn update(&mut self, key: &[u8], value: &[u8], flags: u64) -> Result<(), MapError> {
        if flags > BPF_EXIST {
            return Err(MapError::Invalid("unknown update flags"));
        }
        let (prefixlen, data) = self.split(key)?;
        if prefixlen > self.max_prefixlen() {
            return Err(MapError::Invalid("prefixlen is longer than the key data"));
        }
        let found = self.exact(prefixlen, data);
        check_existence(flags, found.is_some())?;
        let entry = LpmEntry {
            prefixlen,
            data: data.to_vec(),
            cell: ValueCell::new(fit(value, self.value_size)),
        };
        match found {
            Some(i) => self.entries[i] = entry,
            None => {
                if self.entries.len() >= self.max_entries {
                    return Err(MapError::NoSpace);
                }
                self.entries.push(entry);
                self.entries
                    .sort_by(|a, b| postorder((a.prefixlen, &a.data), (b.prefixlen, &b.data)));
            }
        }
        Ok(())
    }

    pub fn delete(&mut self, key: &[u8]) -> Result<(), MapError> {
        let (prefixlen, data) = self.split(key)?;
        if prefixlen > self.max_prefixlen() {
            return Err(MapError::Invalid("prefixlen is longer than the key data"));
        }
        let i = self.exact(prefixlen, data).ok_or(MapError::NotFound)?;
        self.entries.remove(i);
        Ok(())
    }

    /// Entries as (key bytes, value), in `get_next_key` order.
    pub fn entries(&self) -> Vec<(Vec<u8>, Vec<Vec<u8>>)> {
        self.entries
            .iter()
            .map(|e| {
                let mut k = e.prefixlen.to_le_bytes().to_vec();
                k.extend_from_slice(&e.data);
                (k, vec![e.cell.to_vec()])
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maps::def::{BPF_ANY, BPF_NOEXIST};

    fn key(prefixlen: u32, addr: [u8; 4]) -> Vec<u8> {
        let mut k = prefixlen.to_le_bytes().to_vec();
        k.extend_from_slice(&addr);
        k
    }

    #[test]
    fn longest_prefix_wins() {
        let mut t = LpmTrieModel::new(8, 1, 8);
        t.update(&key(8, [10, 0, 0, 0]), &[8], BPF_ANY).unwrap();
        t.update(&key(16, [10, 1, 0, 0]), &[16], BPF_ANY).unwrap();
        t.update(&key(24, [10, 1, 2, 0]), &[24], BPF_ANY).unwrap();
        let v = |t: &LpmTrieModel, p, a| t.lookup(&key(p, a)).map(|c| c.to_vec()[0]);
        assert_eq!(v(&t, 32, [10, 1, 2, 3]), Some(24));
        assert_eq!(v(&t, 32, [10, 1, 3, 3]), Some(16));
        assert_eq!(v(&t, 32, [10, 2, 3, 3]), Some(8));
        assert_eq!(v(&t, 32, [11, 1, 2, 3]), None);
        // A lookup key with a shorter prefixlen only matches entries no longer than it.
        assert_eq!(v(&t, 20, [10, 1, 2, 3]), Some(16));
        // Data bits beyond the prefix do not matter for exact matches.
        t.update(&key(8, [10, 99, 0, 0]), &[80], BPF_EXIST).unwrap();
        assert_eq!(v(&t, 32, [10, 2, 3, 3]), Some(80));
    }

    #[test]
    fn update_and_delete_errors() {
        let mut t = LpmTrieModel::new(8, 1, 2);
        assert_eq!(
            t.update(&key(33, [0; 4]), &[1], BPF_ANY),
            Err(MapError::Invalid("prefixlen is longer than the key data"))
        );
        assert_eq!(
            t.update(&key(8, [1, 0, 0, 0]), &[1], BPF_EXIST),
            Err(MapError::NotFound)
        );
        t.update(&key(8, [1, 0, 0, 0]), &[1], BPF_NOEXIST).unwrap();
        assert_eq!(
            t.update(&key(8, [1, 0, 0, 0]), &[1], BPF_NOEXIST),
            Err(MapError::Exists)
        );
        assert_eq!(
            t.update(&key(8, [1, 0, 0, 0]), &[1], 4),
            Err(MapError::Invalid("unknown update flags"))
        );
        t.update(&key(16, [1, 2, 0, 0]), &[2], BPF_ANY).unwrap();
        assert_eq!(
            t.update(&key(24, [1, 2, 3, 0]), &[3], BPF_ANY),
            Err(MapError::NoSpace)
        );
        // Replacing in a full trie works.
        t.update(&key(16, [1, 2, 0, 0]), &[4], BPF_ANY).unwrap();
        assert_eq!(t.delete(&key(24, [1, 2, 3, 0])), Err(MapError::NotFound));
        t.delete(&key(16, [1, 2, 0, 0])).unwrap();
        assert_eq!(t.entries().len(), 1);
    }

    #[test]
    fn entries_in_kernel_postorder() {
        let mut t = LpmTrieModel::new(8, 1, 8);
        // The example from lpm_trie.c's get_next_key comment.
        for (p, a) in [
            (16, [192, 168, 0, 0]),
            (24, [192, 168, 0, 0]),
            (24, [192, 168, 128, 0]),
            (24, [192, 168, 1, 0]),
        ] {
            t.update(&key(p, a), &[0], BPF_ANY).unwrap();
        }
        let order: Vec<_> = t.entries().into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            order,
            vec![
                key(24, [192, 168, 0, 0]),
                key(24, [192, 168, 1, 0]),
                key(24, [192, 168, 128, 0]),
                key(16, [192, 168, 0, 0])
            ]
        );
    }
}
