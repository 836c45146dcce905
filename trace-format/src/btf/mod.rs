//! A small, panic-free BTF reader: types, strings and `.BTF.ext` func/line
//! info, plus printing a value of a given type in C-like syntax.
//!
//! The replayer uses it on any OS to show map keys and values, contexts and
//! memory as their BTF types. It reads a whole vmlinux BTF (~5 MB, ~150k
//! types) in well under a second; lookups by name are linear scans, which
//! is fast enough for interactive use and keeps parsing cheap.

mod ext;
mod format;
mod parse;
mod types;

pub use ext::{BtfExt, ExtFuncInfo, ExtLineInfo};
pub use types::*;

/// Why a BTF blob could not be read. One sentence each.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BtfError {
    #[error("not BTF data: magic is {found:#06x}, expected 0xeb9f")]
    BadMagic { found: u16 },
    #[error("big-endian BTF is not supported")]
    BigEndian,
    #[error("BTF version {version} is not supported (only version 1)")]
    UnsupportedVersion { version: u8 },
    #[error("truncated BTF: the {what} ends early (near byte {offset})")]
    Truncated { what: &'static str, offset: usize },
    #[error("malformed BTF: {0}")]
    Malformed(String),
}

/// Types deeper than this (through typedefs, arrays, members) are treated
/// as a cycle: real C types nest far less, and this bounds recursion on
/// hostile input.
pub(crate) const MAX_DEPTH: usize = 32;

/// Parsed BTF: type 0 is `void`, type ids 1.. index `types`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Btf {
    strings: Vec<u8>,
    types: Vec<BtfType>,
    offsets: Vec<usize>,
}

impl Btf {
    /// Parses a `.BTF` section or `/sys/kernel/btf/vmlinux`. Never panics.
    pub fn parse(bytes: &[u8]) -> Result<Btf, BtfError> {
        let parsed = parse::parse(bytes)?;
        Ok(Btf {
            strings: parsed.strings,
            types: parsed.types,
            offsets: parsed.offsets,
        })
    }

    /// A copy of `raw` (the blob this `Btf` was parsed from) with every
    /// DATASEC's size and its variables' offsets filled in, as libbpf does
    /// before loading: clang leaves them 0 in objects and only the ELF
    /// section sizes and symbol values know them. `section_size(name)` and
    /// `var_offset(section, var)` answer from the ELF file; `None` keeps
    /// what is there.
    pub fn with_datasec_layout(
        &self,
        raw: &[u8],
        section_size: impl Fn(&str) -> Option<u32>,
        var_offset: impl Fn(&str, &str) -> Option<u32>,
    ) -> Vec<u8> {
        let mut out = raw.to_vec();
        let mut put = |at: usize, v: u32| {
            if let Some(dst) = at.checked_add(4).and_then(|end| out.get_mut(at..end)) {
                dst.copy_from_slice(&v.to_le_bytes());
            }
        };
        for (t, &at) in self.types.iter().zip(&self.offsets) {
            let TypeData::DataSec { vars, .. } = &t.data else {
                continue;
            };
            if let Some(size) = section_size(&t.name) {
                put(at + 8, size);
            }
            for (i, v) in vars.iter().enumerate() {
                let var_name = self.type_by_id(v.type_id).map_or("", |t| t.name.as_str());
                if let Some(off) = var_offset(&t.name, var_name) {
                    put(at + 12 + 12 * i + 4, off);
                }
            }
        }
        out
    }

    /// Number of types, not counting `void` (so the largest id is `len()`).
    pub fn len(&self) -> usize {
        self.types.len()
    }

    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }

    /// The type with this id; `None` for 0 (void) and ids past the end.
    pub fn type_by_id(&self, id: u32) -> Option<&BtfType> {
        (id as usize).checked_sub(1).and_then(|i| self.types.get(i))
    }

    /// All types with their ids.
    pub fn types(&self) -> impl Iterator<Item = (u32, &BtfType)> {
        self.types
            .iter()
            .enumerate()
            .map(|(i, t)| (i as u32 + 1, t))
    }

    /// The string at `offset` of the string section.
    pub fn string_at(&self, offset: u32) -> Option<&str> {
        parse::string_at(&self.strings, offset)
    }

    /// The id of the first type of this kind with this name.
    pub fn find_by_name(&self, kind: BtfKind, name: &str) -> Option<u32> {
        self.types()
            .find(|(_, t)| t.name == name && t.kind() == kind)
            .map(|(id, _)| id)
    }

    /// Follows typedef, const, volatile, restrict and type_tag to the type
    /// that gives the layout. Returns `id` itself when it is none of those,
    /// and 0 (void) when the chain is broken or too deep.
    pub fn resolve(&self, id: u32) -> u32 {
        let mut id = id;
        for _ in 0..MAX_DEPTH {
            match self.type_by_id(id).and_then(BtfType::modifier_target) {
                Some(next) => id = next,
                None => return id,
            }
        }
        0
    }

    /// Size in bytes of a value of type `id`; `None` for void, functions,
    /// forward declarations and broken types.
    pub fn size_of(&self, id: u32) -> Option<u64> {
        self.size_of_depth(id, 0)
    }

    fn size_of_depth(&self, id: u32, depth: usize) -> Option<u64> {
        if depth > MAX_DEPTH {
            return None;
        }
        let t = self.type_by_id(self.resolve(id))?;
        match &t.data {
            TypeData::Int { size, .. }
            | TypeData::Struct { size, .. }
            | TypeData::Union { size, .. }
            | TypeData::Enum { size, .. }
            | TypeData::DataSec { size, .. }
            | TypeData::Float { size } => Some(*size as u64),
            TypeData::Ptr { .. } => Some(8),
            TypeData::Array { elem, len, .. } => self
                .size_of_depth(*elem, depth + 1)?
                .checked_mul(*len as u64),
            TypeData::Var { type_id, .. } => self.size_of_depth(*type_id, depth + 1),
            _ => None,
        }
    }

    /// The members of a struct or union (after `resolve`), else `None`.
    pub fn members(&self, id: u32) -> Option<&[Member]> {
        match &self.type_by_id(self.resolve(id))?.data {
            TypeData::Struct { members, .. } | TypeData::Union { members, .. } => Some(members),
            _ => None,
        }
    }

    /// The member called `name` of a struct or union, looking into anonymous
    /// members, with its bit offset from the start of the outer aggregate.
    pub fn member_by_name(&self, id: u32, name: &str) -> Option<Member> {
        self.member_by_name_depth(id, name, 0)
    }

    fn member_by_name_depth(&self, id: u32, name: &str, depth: usize) -> Option<Member> {
        if depth > MAX_DEPTH {
            return None;
        }
        for m in self.members(id)? {
            if m.name == name {
                return Some(m.clone());
            }
            if m.name.is_empty()
                && let Some(inner) = self.member_by_name_depth(m.type_id, name, depth + 1)
            {
                return Some(Member {
                    bit_offset: m.bit_offset.saturating_add(inner.bit_offset),
                    ..inner
                });
            }
        }
        None
    }

    /// The C spelling of a type: `struct iphdr`, `__u32 *`, `char[16]`.
    pub fn type_name(&self, id: u32) -> String {
        format::type_name(self, id, 0)
    }

    /// A value of type `id` held in `bytes`, in C-like syntax:
    /// `{ .saddr = 0x0100000a, .protocol = 6 }`, `[1, 2, 3]`, enums by
    /// name, pointers in hex. Short input is said, not guessed.
    pub fn format_value(&self, id: u32, bytes: &[u8]) -> String {
        format::format_value(self, id, bytes)
    }
}

#[cfg(test)]
mod tests;
