//! Programs, maps and linking on every committed sample object, checked
//! against aya-obj's linker (an independent implementation of libbpf's
//! algorithm) and against the program checks of `isa::check`.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use bpfrr_trace::catalog::{MapType, ProgType};
use bpfrr_trace::isa::opcode::{PSEUDO_FUNC, PSEUDO_MAP_FD, PSEUDO_MAP_VALUE};
use bpfrr_trace::isa::{RawInsn, check};
use bpfrr_trace::object::{ObjectError, ObjectFile};

fn samples() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../samples");
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".bpf.o"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no samples/*.bpf.o");
    out
}

const LD_IMM64: u8 = 0x18;
const CALL: u8 = 0x85;

#[test]
fn every_program_links_into_a_checked_program() {
    for (file, bytes) in samples() {
        let obj = ObjectFile::parse(&bytes).unwrap();
        let maps = obj.maps();
        let fds: Vec<i32> = (0..maps.len() as i32).collect();
        assert!(!obj.programs().is_empty(), "{file}: no programs");
        for prog in obj.programs() {
            assert_ne!(
                prog.prog_type,
                ProgType::Unspec.number(),
                "{file}: {} in {}",
                prog.name,
                prog.section
            );
            let linked = obj
                .link(&prog.name, &fds)
                .unwrap_or_else(|e| panic!("{file}: {}: {e}", prog.name));
            let ctx = format!("{file}: {}", prog.name);
            check(&linked.insns).unwrap_or_else(|e| panic!("{ctx}: {e}"));
            assert_eq!(linked.license, obj.license());
            assert_eq!(linked.functions[0].name, prog.name);
            assert_eq!(linked.functions[0].start, 0);
            let total: usize = linked.functions.iter().map(|f| f.len).sum();
            assert_eq!(
                total,
                linked.insns.len(),
                "{ctx}: functions cover the program"
            );
            let starts: HashSet<usize> = linked.functions.iter().map(|f| f.start).collect();

            let mut pc = 0;
            while pc < linked.insns.len() {
                let i = linked.insns[pc];
                if i.code == LD_IMM64 {
                    match i.src {
                        PSEUDO_MAP_FD => assert!((i.imm as usize) < maps.len(), "{ctx}: pc {pc}"),
                        PSEUDO_MAP_VALUE => {
                            let m = &maps[i.imm as usize];
                            assert!(
                                m.initial_data.is_some(),
                                "{ctx}: pc {pc} value of non-data map"
                            );
                            assert!(
                                (linked.insns[pc + 1].imm as u32) < m.value_size,
                                "{ctx}: pc {pc}"
                            );
                        }
                        PSEUDO_FUNC => {
                            let target = pc as i64 + i.imm as i64 + 1;
                            assert!(starts.contains(&(target as usize)), "{ctx}: pc {pc}");
                        }
                        0 => {}
                        other => panic!("{ctx}: pc {pc}: unexpected ld_imm64 source {other}"),
                    }
                    pc += 2;
                    continue;
                }
                if i.code == CALL && i.src == 1 {
                    let target = pc as i64 + i.imm as i64 + 1;
                    assert!(
                        starts.contains(&(target as usize)),
                        "{ctx}: call at {pc} to {target}"
                    );
                }
                pc += 1;
            }

            // func_info: one per function, at its start; line info sorted, in range, with text.
            assert_eq!(linked.func_info.len(), linked.functions.len(), "{ctx}");
            for (fi, f) in linked.func_info.iter().zip(&linked.functions) {
                assert_eq!(fi.insn, f.start, "{ctx}");
                assert_eq!(fi.name, f.name, "{ctx}");
            }
            assert!(!linked.line_info.is_empty(), "{ctx}");
            assert!(linked.line_info.windows(2).all(|w| w[0].insn <= w[1].insn));
            assert!(linked.line_info.iter().all(|l| l.insn < linked.insns.len()));
            assert_eq!(
                linked.line_info[0].insn, 0,
                "{ctx}: first instruction has a line"
            );
            assert!(
                linked
                    .line_info
                    .iter()
                    .any(|l| !l.text.is_empty() && l.line > 0)
            );
            assert!(linked.btf.is_some() && linked.btf_ext.is_some());
        }
    }
}

/// aya-obj links with the same algorithm (subprograms appended depth-first
/// at first use); both must produce the same instructions for the same fds.
#[test]
fn linking_matches_aya_obj() {
    for (file, bytes) in samples() {
        let ours = ObjectFile::parse(&bytes).unwrap();
        let mut aya =
            aya_obj::Object::parse(&bytes).unwrap_or_else(|e| panic!("{file}: aya-obj: {e}"));
        let index: HashMap<String, i32> = ours
            .maps()
            .iter()
            .enumerate()
            .map(|(i, m)| (m.name.clone(), 100 + i as i32))
            .collect();
        let fds: Vec<i32> = (0..ours.maps().len() as i32).map(|i| 100 + i).collect();
        let text: HashSet<usize> = ours.text_sections().iter().map(|s| s.index).collect();
        let aya_maps: Vec<(String, i32, aya_obj::Map)> = aya
            .maps
            .iter()
            .map(|(name, m)| {
                let fd = *index
                    .get(name)
                    .unwrap_or_else(|| panic!("{file}: aya-obj has map {name}, we do not"));
                (name.clone(), fd, m.clone())
            })
            .collect();
        assert_eq!(aya_maps.len(), ours.maps().len(), "{file}: map count");
        aya.relocate_maps(
            aya_maps.iter().map(|(n, fd, m)| (n.as_str(), *fd, m)),
            &text,
        )
        .unwrap();
        aya.relocate_calls(&text).unwrap();
        for prog in ours.programs() {
            let linked = ours.link(&prog.name, &fds).unwrap();
            let p = &aya.programs[&prog.name];
            let f = &aya.functions[&p.function_key()];
            let theirs: Vec<RawInsn> = f
                .instructions
                .iter()
                .map(|i| RawInsn::new(i.code, i.dst_reg(), i.src_reg(), i.off, i.imm))
                .collect();
            assert_eq!(linked.insns.len(), theirs.len(), "{file}: {}", prog.name);
            for (pc, (a, b)) in linked.insns.iter().zip(&theirs).enumerate() {
                assert_eq!(
                    a, b,
                    "{file}: {} differs from aya-obj at instruction {pc}",
                    prog.name
                );
            }
            assert_eq!(
                linked.line_info.len(),
                f.line_info.line_info.len(),
                "{file}: {}",
                prog.name
            );
            for (ours, theirs) in linked.line_info.iter().zip(&f.line_info.line_info) {
                assert_eq!(ours.insn, theirs.insn_off as usize);
            }
        }
    }
}

#[test]
fn maps_are_described_consistently() {
    for (file, bytes) in samples() {
        let obj = ObjectFile::parse(&bytes).unwrap();
        let btf = obj.btf().unwrap();
        for m in obj.maps() {
            let ctx = format!("{file}: map {}", m.name);
            let ty = MapType::from_number(m.map_type)
                .unwrap_or_else(|| panic!("{ctx}: type {}", m.map_type));
            assert!(m.max_entries > 0, "{ctx}");
            if ty != MapType::Ringbuf {
                assert!(m.value_size > 0 || ty == MapType::PerfEventArray, "{ctx}");
            }
            if m.btf_key_type_id != 0 {
                assert_eq!(
                    btf.size_of(m.btf_key_type_id),
                    Some(m.key_size as u64),
                    "{ctx}"
                );
            }
            if m.btf_value_type_id != 0 && m.initial_data.is_none() {
                assert_eq!(
                    btf.size_of(m.btf_value_type_id),
                    Some(m.value_size as u64),
                    "{ctx}"
                );
            }
            match &m.initial_data {
                Some(data) => {
                    assert_eq!(ty, MapType::Array, "{ctx}");
                    assert_eq!((m.key_size, m.max_entries), (4, 1), "{ctx}");
                    assert_eq!(data.len(), m.value_size as usize, "{ctx}");
                    assert_eq!(m.read_only, m.name.starts_with(".rodata"), "{ctx}");
                    if m.name.starts_with(".bss") {
                        assert!(data.iter().all(|&b| b == 0), "{ctx}");
                    }
                }
                None => assert!(!m.name.starts_with('.'), "{ctx}"),
            }
        }
    }
}

#[test]
fn unknown_program_and_missing_fds_are_clear_errors() {
    for (file, bytes) in samples() {
        let obj = ObjectFile::parse(&bytes).unwrap();
        let err = obj.link("no_such_prog", &[]).unwrap_err();
        let ObjectError::UnknownProgram { available, .. } = &err else {
            panic!("{file}: {err}")
        };
        assert_eq!(available.len(), obj.programs().len());
        assert!(err.to_string().contains(&obj.programs()[0].name), "{err}");
        for prog in obj.programs() {
            let full = obj
                .link(
                    &prog.name,
                    &(0..obj.maps().len() as i32).collect::<Vec<_>>(),
                )
                .unwrap();
            let uses_maps = full.insns.iter().any(|i| {
                i.code == LD_IMM64 && (i.src == PSEUDO_MAP_FD || i.src == PSEUDO_MAP_VALUE)
            });
            match obj.link(&prog.name, &[]) {
                Err(ObjectError::MissingMapFd { given: 0, .. }) => assert!(uses_maps),
                Ok(_) => assert!(!uses_maps, "{file}: {}", prog.name),
                Err(e) => panic!("{file}: {e}"),
            }
        }
    }
}

/// CO-RE against the running kernel's BTF: samples are built against this
/// kernel's headers, so relocating must succeed and keep a valid program.
#[test]
fn link_with_vmlinux_btf() {
    let Ok(vmlinux) = std::fs::read("/sys/kernel/btf/vmlinux") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "no /sys/kernel/btf/vmlinux, which CI must have"
        );
        eprintln!("no /sys/kernel/btf/vmlinux; nothing to check");
        return;
    };
    for (file, bytes) in samples() {
        let obj = ObjectFile::parse(&bytes).unwrap();
        let fds: Vec<i32> = (0..obj.maps().len() as i32).collect();
        for prog in obj.programs() {
            let plain = obj.link(&prog.name, &fds).unwrap();
            let core = obj
                .link_with_btf(&prog.name, &fds, &vmlinux)
                .unwrap_or_else(|e| panic!("{file}: {}: {e}", prog.name));
            assert_eq!(core.insns.len(), plain.insns.len());
            check(&core.insns).unwrap();
            assert_eq!(core.line_info, plain.line_info);
        }
    }
    let obj = ObjectFile::parse(&samples()[0].1).unwrap();
    let name = obj.programs()[0].name.clone();
    assert!(matches!(
        obj.link_with_btf(&name, &[0; 16], b"garbage"),
        Err(ObjectError::Core(_))
    ));
}

#[test]
fn btf_given_to_the_kernel_has_datasec_layout_filled_in() {
    use bpfrr_trace::btf::{Btf, TypeData};
    for (file, bytes) in samples() {
        let obj = ObjectFile::parse(&bytes).unwrap();
        let Some(prog) = obj.programs().first().cloned() else {
            continue;
        };
        let fds: Vec<i32> = (0..obj.maps().len() as i32).collect();
        let linked = obj.link(&prog.name, &fds).unwrap();
        let fixed = Btf::parse(linked.btf.as_deref().unwrap()).unwrap();
        for m in obj
            .maps()
            .iter()
            .filter(|m| m.initial_data.is_some() && m.name != ".kconfig")
        {
            let id = m.btf_value_type_id;
            let Some(TypeData::DataSec { size, vars }) = fixed.type_by_id(id).map(|t| &t.data)
            else {
                panic!("{file}: {} has no DATASEC", m.name)
            };
            assert_eq!(*size, m.value_size, "{file}: {}", m.name);
            assert!(
                vars.iter().all(|v| v.offset + v.size <= *size),
                "{file}: {}",
                m.name
            );
        }
    }
}
