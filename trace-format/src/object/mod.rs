//! BPF ELF objects (`clang -target bpf`, aya-ebpf): their instructions,
//! programs, maps, BTF, and linking one program into the instruction vector
//! the kernel loads.
//!
//! Why our own reader on top of the `object` crate rather than
//! `aya_obj::Object` for everything: aya-obj 0.3.0 panics on some malformed
//! inputs (`todo!()` and `unwrap()` in its call relocation), drops the
//! section/symbol layout that `bpfrr disasm` prints, and keeps func/line
//! info in a form without the source text. Reading sections, symbols and
//! relocations ourselves keeps every malformed file an error, and the linker
//! (`link.rs`) is small. aya-obj is still used for the one hard part, CO-RE
//! relocation against a target BTF (`core.rs`), where it is the reference.
//! Both are pure Rust and make no system calls, so this builds on any OS.

#[allow(dead_code)] // relocation tables are used by the linker, added next
mod elf;

use crate::isa::RawInsn;

/// Why a BPF object could not be read or a program linked. Each message is
/// one sentence saying what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ObjectError {
    #[error(
        "not an ELF file (no \\x7fELF magic); expected a BPF object built with clang -target bpf"
    )]
    NotElf,
    #[error("an ELF file for machine {machine}, not BPF (247); build it with clang -target bpf")]
    NotBpf { machine: u16 },
    #[error("malformed or truncated BPF object: {0}")]
    Malformed(String),
}

/// A named location inside a text section (a program or a subprogram).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Symbol {
    pub name: String,
    /// Start, in 8-byte instruction slots from the start of the section.
    pub offset_slots: usize,
    /// Length in 8-byte instruction slots (0 when the symbol has no size).
    pub size: usize,
    /// `STT_FUNC` (a program or a subprogram) rather than a plain label.
    pub is_function: bool,
    /// `STB_GLOBAL` (programs and global subprograms) rather than static.
    pub is_global: bool,
}

/// A section holding instructions, as in the file (before any linking).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextSection {
    pub name: String,
    /// ELF section index.
    pub index: usize,
    pub insns: Vec<RawInsn>,
    /// The symbols defined in this section, by increasing offset.
    pub symbols: Vec<Symbol>,
}

/// A parsed BPF object file.
#[derive(Clone, Debug)]
pub struct ObjectFile {
    elf: elf::ElfTables,
}

impl ObjectFile {
    /// Reads a BPF ELF object. Never panics: malformed or truncated input is
    /// an `ObjectError`.
    pub fn parse(bytes: &[u8]) -> Result<ObjectFile, ObjectError> {
        let elf = elf::read(bytes)?;
        let object = ObjectFile { elf };
        // Validate the instruction sections now so later calls cannot fail on them.
        for section in object.elf.sections.values().filter(|s| s.executable) {
            RawInsn::parse_all(&section.data)
                .map_err(|e| ObjectError::Malformed(format!("section {}: {e}", section.name)))?;
        }
        Ok(object)
    }

    /// Every section holding instructions, in file order, with its symbols.
    pub fn text_sections(&self) -> Vec<TextSection> {
        self.elf
            .sections
            .values()
            .filter(|s| s.executable && !s.data.is_empty())
            .map(|s| TextSection {
                name: s.name.clone(),
                index: s.index,
                insns: RawInsn::parse_all(&s.data).unwrap_or_default(),
                symbols: self.symbols_in(s.index),
            })
            .collect()
    }

    fn symbols_in(&self, section: usize) -> Vec<Symbol> {
        let mut symbols: Vec<Symbol> = self
            .elf
            .symbols
            .values()
            .filter(|s| {
                s.section == Some(section)
                    && !s.name.is_empty()
                    && s.kind != elf::ElfSymbolKind::Section
            })
            .map(|s| Symbol {
                name: s.name.clone(),
                offset_slots: (s.value / RawInsn::SIZE as u64) as usize,
                size: (s.size / RawInsn::SIZE as u64) as usize,
                is_function: s.kind == elf::ElfSymbolKind::Function,
                is_global: s.global,
            })
            .collect();
        symbols.sort_by(|a, b| {
            (a.offset_slots, !a.is_function, &a.name).cmp(&(
                b.offset_slots,
                !b.is_function,
                &b.name,
            ))
        });
        symbols
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_non_elf_and_short_input() {
        assert_eq!(ObjectFile::parse(b"").unwrap_err(), ObjectError::NotElf);
        assert_eq!(
            ObjectFile::parse(b"hello world").unwrap_err(),
            ObjectError::NotElf
        );
        assert!(matches!(
            ObjectFile::parse(b"\x7fELF\x02\x01").unwrap_err(),
            ObjectError::Malformed(_)
        ));
    }
}
