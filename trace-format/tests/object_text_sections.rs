//! `ObjectFile::parse` and `text_sections` on every committed sample object,
//! checked against the ELF facts llvm-objdump would show.

use std::path::PathBuf;

use bpfrr_trace::object::{ObjectError, ObjectFile};

fn sample_objects() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../samples");
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.to_string_lossy().ends_with(".bpf.o"))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

#[test]
fn every_sample_parses_and_has_programs_with_symbols() {
    let objects = sample_objects();
    assert!(!objects.is_empty(), "no samples/*.bpf.o found");
    for path in objects {
        let bytes = std::fs::read(&path).unwrap();
        let obj = ObjectFile::parse(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let sections = obj.text_sections();
        assert!(!sections.is_empty(), "{}: no text sections", path.display());
        for s in &sections {
            assert!(
                !s.insns.is_empty(),
                "{}: {} is empty",
                path.display(),
                s.name
            );
            // Every function symbol lies inside its section, in increasing order.
            let mut last = 0;
            for sym in &s.symbols {
                assert!(
                    sym.offset_slots < s.insns.len(),
                    "{}: {} outside {}",
                    path.display(),
                    sym.name,
                    s.name
                );
                assert!(sym.offset_slots + sym.size <= s.insns.len());
                assert!(sym.offset_slots >= last);
                last = sym.offset_slots;
            }
            // A program section (not .text) starts with its program's function symbol.
            if s.name != ".text" {
                let first = s
                    .symbols
                    .iter()
                    .find(|f| f.is_function)
                    .expect("a function symbol");
                assert_eq!(first.offset_slots, 0, "{}: {}", path.display(), s.name);
                assert!(first.is_global);
            }
            // The first slot of every function decodes as a real opcode (non-zero).
            for sym in s.symbols.iter().filter(|f| f.is_function) {
                assert_ne!(s.insns[sym.offset_slots].code, 0, "{}", sym.name);
            }
        }
    }
}

#[test]
fn truncated_and_garbage_copies_are_errors_not_panics() {
    for path in sample_objects() {
        let bytes = std::fs::read(&path).unwrap();
        let step = (bytes.len() / 97).max(1);
        for len in (0..bytes.len()).step_by(step) {
            if let Err(e) = ObjectFile::parse(&bytes[..len]) {
                let msg = e.to_string();
                assert!(!msg.is_empty() && !msg.contains('\n'), "{msg}");
            }
        }
        // Flip bytes through the whole file: errors or a parse, never a panic.
        for i in (0..bytes.len()).step_by(step) {
            let mut b = bytes.clone();
            b[i] ^= 0xa5;
            let _ = ObjectFile::parse(&b).map(|o| o.text_sections());
        }
    }
}

#[test]
fn non_bpf_elf_is_named() {
    // Our own test binary is an ELF for the host machine.
    let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    if exe.starts_with(b"\x7fELF") {
        let err = ObjectFile::parse(&exe).unwrap_err();
        assert!(
            matches!(err, ObjectError::NotBpf { .. } | ObjectError::Malformed(_)),
            "{err}"
        );
    }
}
