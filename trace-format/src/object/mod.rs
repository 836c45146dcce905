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

mod core;
mod elf;
mod link;
mod maps;
mod section_names;

use std::collections::HashMap;

use crate::btf::{Btf, BtfExt, BtfKind, TypeData};
use crate::catalog::ProgType;
use crate::isa::RawInsn;

use link::{FunctionLoc, KfuncLinking};
use maps::{LocatedMap, MapPlace};

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
    #[error("the object's BTF cannot be read: {0}")]
    Btf(#[from] crate::btf::BtfError),
    #[error("no program named {name:?} in the object; it has: {}", available.join(", "))]
    UnknownProgram {
        name: String,
        available: Vec<String>,
    },
    #[error("map {index} ({name}) needs a file descriptor but only {given} were given")]
    MissingMapFd {
        index: usize,
        name: String,
        given: usize,
    },
    #[error("CO-RE relocation failed: {0}")]
    Core(String),
    /// A call to a kernel function with no kernel BTF to resolve it in.
    #[error(
        "{program}: instruction {insn} calls the kernel function {kfunc} (a kfunc), which can only be resolved against the kernel's BTF (/sys/kernel/btf/vmlinux): run this on a Linux machine whose kernel has BTF"
    )]
    KfuncNeedsKernelBtf {
        program: String,
        insn: usize,
        kfunc: String,
    },
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

/// A program: a function in a program section (`SEC("xdp")`), not `.text`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgramInfo {
    pub name: String,
    /// The ELF section name, e.g. `tracepoint/syscalls/sys_enter_openat`.
    pub section: String,
    /// The kernel's `enum bpf_prog_type` number (see `catalog::ProgType`);
    /// 0 (unspec) when libbpf would not know the section name either.
    pub prog_type: u32,
    /// The kernel's `enum bpf_attach_type` number libbpf passes at load
    /// (see `catalog::AttachType`), when there is one.
    pub expected_attach_type: Option<u32>,
    /// What follows the section prefix: `syscalls/sys_enter_openat`,
    /// `/bin/app:main`, `ingress`; empty when there is none.
    pub attach_point: String,
}

/// A map the object defines, in the form `BPF_MAP_CREATE` takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapDef {
    /// The variable name, or the section name (`.rodata`, `.bss`) for global data.
    pub name: String,
    /// The kernel's `enum bpf_map_type` number (see `catalog::MapType`).
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    /// `map_flags` (`BPF_F_RDONLY_PROG` for .rodata and .kconfig).
    pub flags: u32,
    /// Type ids in the object's BTF (0 when unknown); for global data the
    /// value type is the section's DATASEC.
    pub btf_key_type_id: u32,
    pub btf_value_type_id: u32,
    /// The initial contents of a global-data map (.data, .rodata, zeros for
    /// .bss and .kconfig); `None` for ordinary maps.
    pub initial_data: Option<Vec<u8>>,
    /// Global data the program may not write (.rodata, .kconfig).
    pub read_only: bool,
}

/// `bpf_func_info` of a linked program, with the function's name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FuncInfo {
    /// Instruction index in the linked program.
    pub insn: usize,
    /// The BTF `FUNC` type id in the object's BTF.
    pub type_id: u32,
    pub name: String,
}

/// `bpf_line_info` of a linked program, with the source text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineInfo {
    /// Instruction index in the linked program.
    pub insn: usize,
    pub file: String,
    pub line: u32,
    pub col: u32,
    /// The source line as clang recorded it in the BTF strings.
    pub text: String,
}

/// Where a function ended up in a linked program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkedFunction {
    pub name: String,
    /// First instruction index in the linked program.
    pub start: usize,
    /// Length in instruction slots.
    pub len: usize,
}

/// One program ready to load: the program's function followed by every
/// subprogram it reaches, with map references resolved to the given fds.
/// (`Default`: an empty program, for tools and tests that build one by hand.)
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkedProgram {
    pub name: String,
    pub section: String,
    pub prog_type: u32,
    pub expected_attach_type: Option<u32>,
    pub attach_point: String,
    pub insns: Vec<RawInsn>,
    /// The program (first, at 0) and its subprograms, in linked order.
    pub functions: Vec<LinkedFunction>,
    /// Sorted by `insn`.
    pub func_info: Vec<FuncInfo>,
    /// Sorted by `insn`.
    pub line_info: Vec<LineInfo>,
    pub license: String,
    /// The object's `.BTF`, with DATASEC sizes and offsets filled in (what
    /// `BPF_BTF_LOAD` accepts); `None` when the object has no BTF.
    pub btf: Option<Vec<u8>>,
    /// The object's raw `.BTF.ext`.
    pub btf_ext: Option<Vec<u8>>,
}

/// A parsed BPF object file.
#[derive(Clone, Debug)]
pub struct ObjectFile {
    /// The file itself, kept for CO-RE (aya-obj reads it again).
    bytes: Vec<u8>,
    elf: elf::ElfTables,
    btf: Option<Btf>,
    btf_ext: Option<BtfExt>,
    /// `.BTF` with DATASEC layout filled in.
    btf_fixed: Option<Vec<u8>>,
    license: String,
    /// Every function (programs and subprograms) in the text sections.
    functions: Vec<FunctionLoc>,
    /// Programs, each with the index of its function in `functions`.
    programs: Vec<(ProgramInfo, usize)>,
    maps: Vec<LocatedMap>,
    /// Instruction slots of each text section, by ELF index.
    section_insns: HashMap<usize, Vec<RawInsn>>,
}

impl ObjectFile {
    /// Reads a BPF ELF object. Never panics: malformed or truncated input is
    /// an `ObjectError`.
    pub fn parse(bytes: &[u8]) -> Result<ObjectFile, ObjectError> {
        let elf = elf::read(bytes)?;
        let mut section_insns = HashMap::new();
        for section in elf.sections.values().filter(|s| s.executable) {
            let insns = RawInsn::parse_all(&section.data)
                .map_err(|e| ObjectError::Malformed(format!("section {}: {e}", section.name)))?;
            section_insns.insert(section.index, insns);
        }
        let btf_raw = elf.section_by_name(".BTF").map(|s| s.data.clone());
        let btf = btf_raw.as_deref().map(Btf::parse).transpose()?;
        let btf_ext = match (&btf, elf.section_by_name(".BTF.ext")) {
            (Some(b), Some(s)) => Some(BtfExt::parse(&s.data, b)?),
            _ => None,
        };
        let license = elf
            .section_by_name("license")
            .map(|s| {
                let end = s.data.iter().position(|&b| b == 0).unwrap_or(s.data.len());
                String::from_utf8_lossy(&s.data[..end]).into_owned()
            })
            .unwrap_or_default();
        let functions = functions(&elf);
        let maps = maps::collect(&elf, btf.as_ref())?;
        let mut object = ObjectFile {
            bytes: bytes.to_vec(),
            elf,
            btf,
            btf_ext,
            btf_fixed: None,
            license,
            functions,
            programs: Vec::new(),
            maps,
            section_insns,
        };
        object.programs = object.find_programs();
        object.btf_fixed = match (&object.btf, &btf_raw) {
            (Some(b), Some(raw)) => Some(object.fill_datasec_layout(b, raw)),
            _ => None,
        };
        Ok(object)
    }

    /// The programs, in file order (section, then offset).
    pub fn programs(&self) -> Vec<ProgramInfo> {
        self.programs.iter().map(|(p, _)| p.clone()).collect()
    }

    /// The maps, in map-index order: the order `link` indexes `map_fds` by.
    pub fn maps(&self) -> Vec<MapDef> {
        self.maps.iter().map(|m| m.def.clone()).collect()
    }

    /// The `license` section's string (empty when there is none).
    pub fn license(&self) -> &str {
        &self.license
    }

    /// The parsed `.BTF`, if the object has one.
    pub fn btf(&self) -> Option<&Btf> {
        self.btf.as_ref()
    }

    /// The raw `.BTF` section as in the file.
    pub fn btf_bytes(&self) -> Option<&[u8]> {
        self.elf.section_by_name(".BTF").map(|s| s.data.as_slice())
    }

    /// The raw `.BTF.ext` section as in the file.
    pub fn btf_ext_bytes(&self) -> Option<&[u8]> {
        self.elf
            .section_by_name(".BTF.ext")
            .map(|s| s.data.as_slice())
    }

    /// Links program `prog_name` with `map_fds[i]` as the fd of map `i`
    /// (the order of `maps()`). Model runs (the replayer, `bpfrr run`) pass
    /// the map indices themselves, `[0, 1, 2, ...]`, so an `ld_imm64`'s imm
    /// names the map; the recorder passes real fds. CO-RE relocations keep
    /// the offsets clang compiled (correct when the program was built
    /// against the running kernel's vmlinux.h); see `link_with_btf`.
    pub fn link(&self, prog_name: &str, map_fds: &[i32]) -> Result<LinkedProgram, ObjectError> {
        self.link_sections(
            prog_name,
            map_fds,
            &self.section_insns,
            KfuncLinking::Refuse,
        )
        .map(|(l, _)| l)
    }

    /// Like `link`, after applying CO-RE relocations against `target_btf`
    /// (e.g. the bytes of `/sys/kernel/btf/vmlinux`).
    pub fn link_with_btf(
        &self,
        prog_name: &str,
        map_fds: &[i32],
        target_btf: &[u8],
    ) -> Result<LinkedProgram, ObjectError> {
        self.program_index(prog_name)?;
        let sections = core::relocate(&self.bytes, &self.elf, &self.section_insns, target_btf)?;
        self.link_sections(
            prog_name,
            map_fds,
            &sections,
            KfuncLinking::Resolve(target_btf),
        )
        .map(|(l, _)| l)
    }

    /// Like `link`, with calls to kernel functions (`__ksym` kfuncs)
    /// resolved by name to their BTF ids in `kernel_btf` (e.g. the bytes of
    /// `/sys/kernel/btf/vmlinux`), and no CO-RE relocations: what model
    /// runs need for programs that call kfuncs.
    pub fn link_with_kfuncs(
        &self,
        prog_name: &str,
        map_fds: &[i32],
        kernel_btf: &[u8],
    ) -> Result<LinkedProgram, ObjectError> {
        self.link_sections(
            prog_name,
            map_fds,
            &self.section_insns,
            KfuncLinking::Resolve(kernel_btf),
        )
        .map(|(l, _)| l)
    }

    /// Like `link`, for listings: no kernel needed. Calls to kernel
    /// functions (`__ksym` kfuncs) stay kfunc calls with id 0, and come back
    /// as (instruction, name) pairs.
    pub fn link_for_listing(
        &self,
        prog_name: &str,
        map_fds: &[i32],
    ) -> Result<(LinkedProgram, Vec<(usize, String)>), ObjectError> {
        self.link_sections(
            prog_name,
            map_fds,
            &self.section_insns,
            KfuncLinking::Unresolved,
        )
    }

    fn program_index(&self, prog_name: &str) -> Result<usize, ObjectError> {
        self.programs
            .iter()
            .position(|(p, _)| p.name == prog_name)
            .ok_or_else(|| ObjectError::UnknownProgram {
                name: prog_name.to_string(),
                available: self.programs.iter().map(|(p, _)| p.name.clone()).collect(),
            })
    }

    fn link_sections(
        &self,
        prog_name: &str,
        map_fds: &[i32],
        sections: &HashMap<usize, Vec<RawInsn>>,
        kfuncs: KfuncLinking<'_>,
    ) -> Result<(LinkedProgram, Vec<(usize, String)>), ObjectError> {
        let (info, func) = &self.programs[self.program_index(prog_name)?];
        let linked = link::link(self, sections, *func, map_fds, kfuncs)?;
        let program = LinkedProgram {
            name: info.name.clone(),
            section: info.section.clone(),
            prog_type: info.prog_type,
            expected_attach_type: info.expected_attach_type,
            attach_point: info.attach_point.clone(),
            insns: linked.insns,
            functions: linked.functions,
            func_info: linked.func_info,
            line_info: linked.line_info,
            license: self.license.clone(),
            btf: self.btf_fixed.clone(),
            btf_ext: self.btf_ext_bytes().map(<[u8]>::to_vec),
        };
        Ok((program, linked.kfunc_calls))
    }

    fn find_programs(&self) -> Vec<(ProgramInfo, usize)> {
        self.functions
            .iter()
            .enumerate()
            .filter(|(_, f)| self.section_name(f.section) != ".text")
            .map(|(i, f)| {
                let section = self.section_name(f.section).to_string();
                let meaning = section_names::section_meaning(&section);
                let info = ProgramInfo {
                    name: f.name.clone(),
                    prog_type: meaning
                        .as_ref()
                        .map_or(ProgType::Unspec.number(), |m| m.prog_type.number()),
                    expected_attach_type: meaning
                        .as_ref()
                        .and_then(|m| m.expected_attach_type)
                        .map(|a| a.number()),
                    attach_point: meaning.map(|m| m.attach_point).unwrap_or_default(),
                    section,
                };
                (info, i)
            })
            .collect()
    }

    pub(crate) fn section_name(&self, index: usize) -> &str {
        self.elf
            .sections
            .get(&index)
            .map_or("?", |s| s.name.as_str())
    }

    /// The map a relocation's symbol points into, and for global data the
    /// byte offset of the symbol in the map's value.
    pub(crate) fn map_for_symbol(
        &self,
        section: usize,
        value: u64,
    ) -> Option<(usize, Option<u32>)> {
        self.maps
            .iter()
            .enumerate()
            .find_map(|(i, m)| match m.place {
                MapPlace::Definition { section: s, offset } if s == section && offset == value => {
                    Some((i, None))
                }
                // A section symbol (offset 0, the var's offset is in imm) or a variable.
                MapPlace::DataSection { section: s } if s == section => {
                    Some((i, Some(u32::try_from(value).ok()?)))
                }
                _ => None,
            })
    }

    /// The `.kconfig` map and the offset of extern variable `name` in it:
    /// variables in DATASEC order, each aligned to its size (at most 8).
    pub(crate) fn kconfig_slot(&self, name: &str) -> Option<(usize, u32)> {
        let index = self
            .maps
            .iter()
            .position(|m| m.place == MapPlace::Kconfig)?;
        let btf = self.btf.as_ref()?;
        let id = btf.find_by_name(BtfKind::DataSec, ".kconfig")?;
        let TypeData::DataSec { vars, .. } = &btf.type_by_id(id)?.data else {
            return None;
        };
        let mut offset = 0u32;
        for v in vars {
            let size = v.size.max(1);
            offset = offset.checked_next_multiple_of(size.min(8).next_power_of_two())?;
            if btf.type_by_id(v.type_id).is_some_and(|t| t.name == name) {
                return Some((index, offset));
            }
            offset = offset.saturating_add(size);
        }
        None
    }

    /// The `.BTF` bytes with DATASEC sizes from the ELF sections and
    /// variable offsets from the ELF symbols.
    fn fill_datasec_layout(&self, btf: &Btf, raw: &[u8]) -> Vec<u8> {
        let section_size = |name: &str| {
            let s = self.elf.section_by_name(name)?;
            u32::try_from(s.size).ok()
        };
        let var_offset = |section: &str, var: &str| {
            let s = self.elf.section_by_name(section)?;
            let sym = self
                .elf
                .symbols
                .values()
                .find(|sym| sym.section == Some(s.index) && sym.name == var)?;
            u32::try_from(sym.value).ok()
        };
        btf.with_datasec_layout(raw, section_size, var_offset)
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

/// Every function symbol in a text section, with its extent in slots.
/// A symbol without a size runs to the next symbol or the section end.
fn functions(elf: &elf::ElfTables) -> Vec<FunctionLoc> {
    let mut out = Vec::new();
    for section in elf.sections.values().filter(|s| s.executable) {
        let total = section.data.len() / RawInsn::SIZE;
        let mut starts: Vec<(usize, usize, String)> = elf
            .symbols
            .values()
            .filter(|s| s.section == Some(section.index) && s.kind == elf::ElfSymbolKind::Function)
            .map(|s| {
                (
                    (s.value / RawInsn::SIZE as u64) as usize,
                    (s.size / RawInsn::SIZE as u64) as usize,
                    s.name.clone(),
                )
            })
            .filter(|(start, _, _)| *start < total)
            .collect();
        starts.sort();
        starts.dedup_by(|a, b| a.0 == b.0);
        for (i, (start, size, name)) in starts.iter().enumerate() {
            let next = starts.get(i + 1).map_or(total, |n| n.0);
            let len = if *size == 0 {
                next - start
            } else {
                (*size).min(total - start)
            };
            out.push(FunctionLoc {
                name: name.clone(),
                section: section.index,
                start: *start,
                len,
            });
        }
    }
    out
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
