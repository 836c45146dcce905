//! Our disassembler against llvm-objdump-19, the reference for the syntax.
//!
//! 1. Every instruction of every `samples/*.o`, as `llvm-objdump-19 -d
//!    --no-show-raw-insn --mcpu=v4` prints it, equals `format_insn` after
//!    whitespace normalization, jump labels included.
//! 2. A synthetic object holding every opcode with a spread of field values
//!    (written by this test, so no clang is needed) is compared the same way:
//!    this covers the encodings clang never emits.
//!
//! `--mcpu=v4` selects llvm-objdump's ALU32 view (`w1 = *(u32 *)...`), the
//! only one in which it names every instruction: without it, llvm-objdump-19
//! prints `<unknown>` for 32-bit fetching atomics (see `isa::disasm`).
//!
//! The tests fail, not skip, when llvm-objdump-19 is missing: CI installs it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use bpfrr_trace::isa::disasm::symbol_label;
use bpfrr_trace::isa::{DisasmOptions, Insn, RawInsn, decode, format_insn};
use bpfrr_trace::object::{ObjectError, ObjectFile, TextSection};

const OBJDUMP: &str = "llvm-objdump-19";

/// Runs llvm-objdump-19 on `path` and returns, per section name, the text of
/// each instruction by slot index.
fn objdump(path: &Path) -> BTreeMap<String, BTreeMap<usize, String>> {
    let output = Command::new(OBJDUMP)
        .args(["-d", "--no-show-raw-insn", "--mcpu=v4"])
        .arg(path)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {OBJDUMP} ({e}); it is the reference for the disassembler. \
                 Install it with `apt-get install llvm-19` (Debian/Ubuntu)."
            )
        });
    assert!(
        output.status.success(),
        "{OBJDUMP} failed on {}: {}",
        path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    parse_objdump(&String::from_utf8(output.stdout).expect("objdump prints UTF-8"))
}

fn parse_objdump(text: &str) -> BTreeMap<String, BTreeMap<usize, String>> {
    let mut sections: BTreeMap<String, BTreeMap<usize, String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if let Some(name) = line
            .strip_prefix("Disassembly of section ")
            .and_then(|s| s.strip_suffix(':'))
        {
            current = Some(name.to_string());
            sections.entry(name.to_string()).or_default();
            continue;
        }
        // Instruction lines: "      12:\tif r8 == 0x0 goto +0x38 <isa_coverage+0x228>".
        let Some((index, insn)) = line.split_once(':') else {
            continue;
        };
        let Ok(index) = index.trim().parse::<usize>() else {
            continue;
        };
        let section = current
            .as_ref()
            .expect("instruction before any section header");
        sections
            .get_mut(section)
            .expect("section entry exists")
            .insert(index, normalize(insn));
    }
    sections
}

fn normalize(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The label llvm-objdump prints for a target slot: the nearest symbol at or
/// before it (function symbols first among symbols at the same place).
fn objdump_label(section: &TextSection, target: usize) -> Option<String> {
    let sym = section
        .symbols
        .iter()
        .filter(|s| s.offset_slots <= target)
        .max_by_key(|s| (s.offset_slots, s.is_function))?;
    Some(symbol_label(&sym.name, sym.offset_slots, target))
}

/// Decodes `section` instruction by instruction (no whole-program check:
/// an unlinked object has relocated calls pointing nowhere yet) and compares
/// with objdump's lines. Returns the number of instructions compared.
fn compare_section(file: &str, section: &TextSection, expected: &BTreeMap<usize, String>) -> usize {
    let label = |target: usize| objdump_label(section, target);
    let opts = DisasmOptions {
        helper_names: false,
        label: Some(&label),
    };
    let mut ours = BTreeMap::new();
    let mut pc = 0;
    while pc < section.insns.len() {
        let insn = decode(&section.insns, pc).unwrap_or_else(|e| {
            panic!(
                "{file} section {}: {e} (objdump: {:?})",
                section.name,
                expected.get(&pc)
            )
        });
        ours.insert(pc, normalize(&format_insn(&insn, pc, &opts)));
        pc += insn.slots();
    }
    let mut mismatches = Vec::new();
    for (pc, text) in &ours {
        match expected.get(pc) {
            Some(want) if want == text => {}
            want => mismatches.push(format!(
                "  {pc}: ours {text:?}, objdump {want:?} ({:?})",
                section.insns[*pc]
            )),
        }
    }
    for pc in expected.keys().filter(|pc| !ours.contains_key(pc)) {
        mismatches.push(format!(
            "  {pc}: objdump prints {:?}, we see no instruction start",
            expected[pc]
        ));
    }
    assert!(
        mismatches.is_empty(),
        "{file} section {}: {} of {} instructions differ from {OBJDUMP}:\n{}",
        section.name,
        mismatches.len(),
        ours.len(),
        mismatches[..mismatches.len().min(40)].join("\n")
    );
    ours.len()
}

fn sample_objects() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples");
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "o"))
        .collect();
    out.sort();
    out
}

#[test]
fn every_sample_instruction_matches_llvm_objdump() {
    let objects = sample_objects();
    assert!(!objects.is_empty(), "no samples/*.o to compare");
    let mut total = 0;
    let mut files = 0;
    for path in objects {
        let file = path.display().to_string();
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {file}: {e}"));
        let obj = match ObjectFile::parse(&bytes) {
            Ok(obj) => obj,
            // A host object in samples/ (a uprobe target) is not ours to disassemble.
            Err(ObjectError::NotBpf { .. }) => continue,
            Err(e) => panic!("{file}: {e}"),
        };
        let dump = objdump(&path);
        for section in obj.text_sections() {
            let expected = dump
                .get(&section.name)
                .unwrap_or_else(|| panic!("{file}: {OBJDUMP} shows no section {}", section.name));
            total += compare_section(&file, &section, expected);
        }
        files += 1;
    }
    assert!(files > 0, "no BPF objects among samples/*.o");
    // isa_coverage alone has more than 32768 instructions (its gotol block).
    assert!(total > 32768, "only {total} instructions compared");
    eprintln!("{total} instructions in {files} objects match {OBJDUMP}");
}

// ---------------------------------------------------------------------------
// A synthetic object with every opcode.

/// The field values tried for every opcode: the interesting ones for each
/// kind of instruction (sizes of movsx and byte swaps, atomic operations,
/// pseudo sources, extremes).
fn candidate_slots() -> Vec<Vec<RawInsn>> {
    let regs = [0u8, 1, 10];
    let offs: [i16; 9] = [0, 1, 3, 8, 16, 32, -1, -8, i16::MIN];
    let imms: [i32; 18] = [
        0,
        1,
        -1,
        5,
        16,
        32,
        64,
        0x40,
        0x41,
        0x50,
        0x51,
        0xa0,
        0xa1,
        0xe1,
        0xf1,
        i32::MAX,
        i32::MIN,
        0x1234,
    ];
    let mut out = Vec::new();
    for code in 0..=255u8 {
        for &dst in &regs {
            for &src in &[0u8, 1, 2, 3, 4, 5, 6, 10] {
                for &off in &offs {
                    for &imm in &imms {
                        let slot = RawInsn::new(code, dst, src, off, imm);
                        // ld_imm64 takes a second slot whose imm is the high half
                        // (zero for map pointers).
                        out.push(vec![slot, RawInsn::new(0, 0, 0, 0, 0x1234_5678)]);
                        if code == 0x18 {
                            out.push(vec![slot, RawInsn::new(0, 0, 0, 0, 0)]);
                        }
                    }
                }
            }
        }
    }
    out
}

/// One ELF64 section header (`sh_addr` is always 0 in a relocatable file).
#[derive(Default)]
struct SectionHeader {
    name: u32,
    kind: u32,
    flags: u64,
    offset: u64,
    size: u64,
    link: u32,
    info: u32,
    align: u64,
    entsize: u64,
}

/// Writes a minimal relocatable BPF ELF with one `.text` section holding
/// `insns` and one global function symbol `f` covering it.
fn write_elf(insns: &[RawInsn]) -> Vec<u8> {
    let text: Vec<u8> = insns.iter().flat_map(|i| i.to_bytes()).collect();
    let strtab = b"\0f\0".to_vec();
    let shstrtab = b"\0.text\0.symtab\0.strtab\0.shstrtab\0".to_vec();
    let mut symtab = vec![0u8; 24];
    symtab.extend_from_slice(&1u32.to_le_bytes()); // st_name "f"
    symtab.push(0x12); // STB_GLOBAL, STT_FUNC
    symtab.push(0); // st_other
    symtab.extend_from_slice(&1u16.to_le_bytes()); // st_shndx .text
    symtab.extend_from_slice(&0u64.to_le_bytes()); // st_value
    symtab.extend_from_slice(&(text.len() as u64).to_le_bytes()); // st_size

    let mut elf = vec![0u8; 64];
    let place = |elf: &mut Vec<u8>, data: &[u8]| {
        while !elf.len().is_multiple_of(8) {
            elf.push(0);
        }
        let off = elf.len() as u64;
        elf.extend_from_slice(data);
        off
    };
    let text_off = place(&mut elf, &text);
    let symtab_off = place(&mut elf, &symtab);
    let strtab_off = place(&mut elf, &strtab);
    let shstrtab_off = place(&mut elf, &shstrtab);
    while !elf.len().is_multiple_of(8) {
        elf.push(0);
    }
    let shoff = elf.len() as u64;

    let headers = [
        SectionHeader::default(),
        SectionHeader {
            name: 1,
            kind: 1,
            flags: 0x6,
            offset: text_off,
            size: text.len() as u64,
            align: 8,
            ..Default::default()
        },
        SectionHeader {
            name: 7,
            kind: 2,
            offset: symtab_off,
            size: symtab.len() as u64,
            link: 3,
            info: 1,
            align: 8,
            entsize: 24,
            ..Default::default()
        },
        SectionHeader {
            name: 15,
            kind: 3,
            offset: strtab_off,
            size: strtab.len() as u64,
            align: 1,
            ..Default::default()
        },
        SectionHeader {
            name: 23,
            kind: 3,
            offset: shstrtab_off,
            size: shstrtab.len() as u64,
            align: 1,
            ..Default::default()
        },
    ];
    for h in headers {
        elf.extend_from_slice(&h.name.to_le_bytes());
        elf.extend_from_slice(&h.kind.to_le_bytes());
        elf.extend_from_slice(&h.flags.to_le_bytes());
        elf.extend_from_slice(&0u64.to_le_bytes()); // sh_addr
        elf.extend_from_slice(&h.offset.to_le_bytes());
        elf.extend_from_slice(&h.size.to_le_bytes());
        elf.extend_from_slice(&h.link.to_le_bytes());
        elf.extend_from_slice(&h.info.to_le_bytes());
        elf.extend_from_slice(&h.align.to_le_bytes());
        elf.extend_from_slice(&h.entsize.to_le_bytes());
    }

    let mut header = Vec::with_capacity(64);
    header.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    header.extend_from_slice(&1u16.to_le_bytes()); // ET_REL
    header.extend_from_slice(&247u16.to_le_bytes()); // EM_BPF
    header.extend_from_slice(&1u32.to_le_bytes()); // EV_CURRENT
    header.extend_from_slice(&0u64.to_le_bytes()); // e_entry
    header.extend_from_slice(&0u64.to_le_bytes()); // e_phoff
    header.extend_from_slice(&shoff.to_le_bytes());
    header.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    header.extend_from_slice(&64u16.to_le_bytes()); // e_ehsize
    header.extend_from_slice(&0u16.to_le_bytes()); // e_phentsize
    header.extend_from_slice(&0u16.to_le_bytes()); // e_phnum
    header.extend_from_slice(&64u16.to_le_bytes()); // e_shentsize
    header.extend_from_slice(&5u16.to_le_bytes()); // e_shnum
    header.extend_from_slice(&4u16.to_le_bytes()); // e_shstrndx
    elf[..64].copy_from_slice(&header);
    elf
}

/// Instructions where we print more than llvm-objdump-19 does, by design
/// (see `isa::disasm`): load-acquire/store-release, which it cannot decode,
/// and LD_IND with a non-zero immediate, whose immediate it drops.
fn objdump_loses_information(insn: &Insn) -> bool {
    use bpfrr_trace::isa::AtomicOp;
    match *insn {
        Insn::Atomic { op, .. } => matches!(op, AtomicOp::LoadAcquire | AtomicOp::StoreRelease),
        Insn::LoadPacket {
            src: Some(_), imm, ..
        } => imm != 0,
        _ => false,
    }
}

/// The kind of an instruction with its numbers blanked out
/// (`Alu { width: W32, op: Add, dst: _, src: Imm(_) }`).
fn shape(insn: &Insn) -> String {
    let mut out = String::new();
    let mut prev = ' ';
    let mut in_number = false;
    for c in format!("{insn:?}").chars() {
        let starts_number = (c.is_ascii_digit() || c == '-') && !prev.is_ascii_alphanumeric();
        if !(in_number && c.is_ascii_digit()) {
            in_number = starts_number;
            out.push(if starts_number { '_' } else { c });
        }
        prev = c;
    }
    out
}

/// `gotol` with a large negative offset would still land before the section.
fn jumps_before_padding(insn: &Insn) -> bool {
    matches!(*insn, Insn::Ja { off, long: true } if off < -0x7000)
}

#[test]
fn every_opcode_and_field_pattern_matches_llvm_objdump() {
    // Keep each distinct decoded instruction once, in a stable order.
    let mut seen = std::collections::HashSet::new();
    // Padding so that backward jumps (down to -0x8000) land inside the
    // section: for a target before the section llvm-objdump prints a wrapped
    // address (`<f+0xfffffffffffc0b78>`), where we print no label.
    let exit = RawInsn::new(0x95, 0, 0, 0, 0);
    let mut insns: Vec<RawInsn> = vec![exit; 0x8001];
    for slots in candidate_slots() {
        let Ok(insn) = decode(&slots, 0) else {
            continue;
        };
        if objdump_loses_information(&insn) || jumps_before_padding(&insn) || !seen.insert(insn) {
            continue;
        }
        insns.extend_from_slice(&slots[..insn.slots()]);
    }
    assert!(
        seen.len() > 5000,
        "only {} instructions generated",
        seen.len()
    );
    // Every kind of instruction is there (all of the ISA but acquire/release).
    let kinds: std::collections::HashSet<String> = seen.iter().map(shape).collect();
    assert_eq!(kinds.len(), 163, "kinds: {kinds:#?}");

    let dir = std::env::temp_dir().join(format!("bpfrr-objdump-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("every_opcode.o");
    std::fs::write(&path, write_elf(&insns)).unwrap();
    let dump = objdump(&path);
    let obj = ObjectFile::parse(&std::fs::read(&path).unwrap()).expect("our ELF parses");
    let sections = obj.text_sections();
    assert_eq!(sections.len(), 1);
    let n = compare_section("every_opcode.o", &sections[0], &dump[".text"]);
    std::fs::remove_dir_all(&dir).ok();
    eprintln!("{n} distinct instructions match {OBJDUMP}");
}
