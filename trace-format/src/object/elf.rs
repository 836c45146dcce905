//! The ELF layer: sections, symbols and relocations of a BPF object, read
//! with the `object` crate into plain owned tables.
//!
//! Everything downstream (programs, maps, linking) works on these tables
//! only, so the rules about what a well-formed BPF object looks like live in
//! one place and every malformed input becomes an `ObjectError` here.

use std::collections::BTreeMap;

use object::read::elf::ElfFile64;
use object::{Endianness, Object, ObjectSection, ObjectSymbol, RelocationFlags, SectionKind};

use super::ObjectError;

/// `R_BPF_64_64`: a 64-bit immediate of an `ld_imm64` (map or function address).
pub(crate) const R_BPF_64_64: u32 = 1;
/// `R_BPF_64_32`: the immediate of a `call` (bpf-to-bpf call).
pub(crate) const R_BPF_64_32: u32 = 10;

/// `SHF_EXECINSTR`: the section holds instructions.
const SHF_EXECINSTR: u64 = 0x4;

/// One section of the ELF file, with its bytes (empty for NOBITS, see `size`).
#[derive(Clone, Debug)]
pub(crate) struct ElfSection {
    pub index: usize,
    pub name: String,
    pub data: Vec<u8>,
    /// Size in memory (for .bss, larger than `data`, which is empty).
    pub size: u64,
    /// `sh_addr` (0 in relocatable objects; aya-obj subtracts it).
    pub address: u64,
    pub executable: bool,
    pub nobits: bool,
}

/// What an ELF symbol names, reduced to what BPF objects use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ElfSymbolKind {
    Function,
    Data,
    Section,
    Other,
}

#[derive(Clone, Debug)]
pub(crate) struct ElfSymbol {
    pub name: String,
    pub section: Option<usize>,
    pub value: u64,
    pub size: u64,
    pub kind: ElfSymbolKind,
    pub global: bool,
}

/// One relocation entry (keyed by the byte offset it patches in its section).
#[derive(Clone, Copy, Debug)]
pub(crate) struct ElfRelocation {
    pub symbol: usize,
    pub r_type: u32,
}

/// The tables read from one ELF file.
#[derive(Clone, Debug)]
pub(crate) struct ElfTables {
    /// Sections by ELF index.
    pub sections: BTreeMap<usize, ElfSection>,
    /// Symbols by ELF symbol index.
    pub symbols: BTreeMap<usize, ElfSymbol>,
    /// Relocations by the index of the section they patch, by byte offset.
    pub relocations: BTreeMap<usize, BTreeMap<u64, ElfRelocation>>,
}

impl ElfTables {
    pub fn section_by_name(&self, name: &str) -> Option<&ElfSection> {
        self.sections.values().find(|s| s.name == name)
    }
}

/// `EM_BPF`.
const EM_BPF: u16 = 247;

pub(crate) fn read(bytes: &[u8]) -> Result<ElfTables, ObjectError> {
    if bytes.len() < 4 || &bytes[..4] != b"\x7fELF" {
        return Err(ObjectError::NotElf);
    }
    if bytes.len() < 64 {
        return Err(ObjectError::Malformed(format!(
            "the file is {} bytes long, shorter than an ELF header",
            bytes.len()
        )));
    }
    if bytes[4] != 2 {
        return Err(ObjectError::Malformed(
            "it is a 32-bit ELF file; BPF objects are 64-bit".into(),
        ));
    }
    if bytes[5] != 1 {
        return Err(ObjectError::Malformed(
            "it is a big-endian ELF file (clang -target bpfeb); only little-endian BPF objects are supported".into(),
        ));
    }
    let machine = u16::from_le_bytes([bytes[18], bytes[19]]);
    if machine != EM_BPF {
        return Err(ObjectError::NotBpf { machine });
    }
    let file = ElfFile64::<Endianness>::parse(bytes).map_err(malformed)?;

    let mut sections = BTreeMap::new();
    let mut relocations = BTreeMap::new();
    for section in file.sections() {
        let index = section.index().0;
        let name = section.name().map_err(malformed)?.to_string();
        let nobits = section.kind() == SectionKind::UninitializedData;
        let data = if nobits {
            Vec::new()
        } else {
            section.data().map_err(malformed)?.to_vec()
        };
        let sh_flags = match section.flags() {
            object::SectionFlags::Elf { sh_flags } => sh_flags,
            _ => 0,
        };
        let mut relocs = BTreeMap::new();
        for (offset, rel) in section.relocations() {
            let symbol = match rel.target() {
                object::RelocationTarget::Symbol(s) => s.0,
                _ => continue,
            };
            let r_type = match rel.flags() {
                RelocationFlags::Elf { r_type } => r_type,
                _ => continue,
            };
            relocs.insert(offset, ElfRelocation { symbol, r_type });
        }
        if !relocs.is_empty() {
            relocations.insert(index, relocs);
        }
        sections.insert(
            index,
            ElfSection {
                index,
                name,
                data,
                size: section.size(),
                address: section.address(),
                executable: sh_flags & SHF_EXECINSTR != 0,
                nobits,
            },
        );
    }

    let mut symbols = BTreeMap::new();
    for symbol in file.symbols() {
        let name = symbol.name().unwrap_or("").to_string();
        let kind = match symbol.kind() {
            object::SymbolKind::Text => ElfSymbolKind::Function,
            object::SymbolKind::Data => ElfSymbolKind::Data,
            object::SymbolKind::Section => ElfSymbolKind::Section,
            _ => ElfSymbolKind::Other,
        };
        symbols.insert(
            symbol.index().0,
            ElfSymbol {
                name,
                section: symbol.section_index().map(|i| i.0),
                value: symbol.address(),
                size: symbol.size(),
                kind,
                global: symbol.is_global(),
            },
        );
    }

    Ok(ElfTables {
        sections,
        symbols,
        relocations,
    })
}

fn malformed(e: object::Error) -> ObjectError {
    ObjectError::Malformed(e.to_string())
}
