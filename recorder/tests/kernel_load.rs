//! Loading every sample object the way the recorder does: maps and global
//! data created, each program loaded as written with the level-2 verifier
//! log, its statistics and stack depths captured, its xlated and JIT images
//! read back.
#![cfg(target_os = "linux")]

mod common;

use std::path::PathBuf;

use bpfrr_recorder::load::{LoadError, LoadOptions, LoadedObject};
use bpfrr_recorder::testrun::{RunInput, RunKind, run};

fn samples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../samples")
}

fn sample_objects() -> Vec<PathBuf> {
    let mut objs: Vec<PathBuf> = std::fs::read_dir(samples_dir())
        .expect("samples/ exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".bpf.o"))
        .collect();
    objs.sort();
    objs
}

#[test]
fn every_sample_program_loads_with_its_log() {
    if !common::kernel_tests_enabled("every_sample_program_loads_with_its_log") {
        return;
    }
    let objs = sample_objects();
    assert!(
        !objs.is_empty(),
        "no samples/*.bpf.o: run `make -C samples`"
    );
    let mut loaded = 0;
    for path in objs {
        let mut obj =
            LoadedObject::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            obj.btf.is_some(),
            "{}: BTF not loaded: {:?}",
            path.display(),
            obj.btf_warning
        );
        for def in obj.maps.iter().filter(|m| m.def.read_only) {
            // .rodata is frozen: user space can no longer write it.
            let value = vec![0u8; def.map.value_buffer_len()];
            assert!(def.map.update(&0u32.to_le_bytes(), &value, 0).is_err());
        }
        for name in obj.program_names() {
            let prog = obj
                .load_program(&name, &LoadOptions::default())
                .unwrap_or_else(|e| panic!("{} {name}: {e}", path.display()));
            let what = format!("{} {name}", path.display());
            assert!(!prog.log_truncated, "{what}");
            let stats = prog
                .stats
                .as_ref()
                .unwrap_or_else(|| panic!("{what}: no statistics"));
            assert!(stats.insns_processed > 0, "{what}");
            // One stack depth per function the JIT produced.
            assert_eq!(
                prog.stack_depths().len(),
                prog.info.nr_jited_ksyms().max(1),
                "{what}: {:?}",
                prog.stack_depths()
            );
            assert_eq!(
                prog.linked.functions.len(),
                prog.stack_depths().len(),
                "{what}"
            );
            // Level 2 prints the state at each instruction, with source lines
            // from line_info.
            assert!(prog.log.contains("R10=fp0"), "{what}");
            if !prog.linked.line_info.is_empty() {
                assert!(
                    prog.log.lines().any(|l| l.starts_with("; ")),
                    "{what}: no source lines"
                );
                assert!(
                    !prog.info.jited_line_info.is_empty(),
                    "{what}: no JIT line table"
                );
            }
            assert!(!prog.info.xlated.is_empty(), "{what}");
            assert!(!prog.info.jited.is_empty(), "{what}");
            assert_eq!(prog.info.prog_type, prog.linked.prog_type, "{what}");
            loaded += 1;
        }
    }
    assert!(loaded >= 6, "only {loaded} programs loaded");
}

#[test]
fn rejected_program_reports_the_log_tail() {
    if !common::kernel_tests_enabled("rejected_program_reports_the_log_tail") {
        return;
    }
    // xdp_fw's program with its first instruction replaced by `r0 = r5`
    // (r5 is not set at entry): the verifier must refuse it.
    let bytes = std::fs::read(samples_dir().join("xdp_fw.bpf.o")).expect("xdp_fw.bpf.o");
    let obj = bpfrr_trace::object::ObjectFile::parse(&bytes).unwrap();
    let fake_fds: Vec<i32> = (0..obj.maps().len() as i32).collect();
    let mut linked = obj.link("xdp_firewall", &fake_fds).unwrap();
    linked.insns = vec![
        bpfrr_trace::isa::RawInsn::new(0xbf, 0, 5, 0, 0),
        bpfrr_trace::isa::RawInsn::new(0x95, 0, 0, 0, 0),
    ];
    let err = bpfrr_recorder::sys::ProgLoad::new(linked.prog_type, &linked.insns)
        .load()
        .unwrap_err();
    let log = err.log().expect("a rejection carries the log");
    assert!(log.contains("R5 !read_ok"), "{err}");
    assert!(err.to_string().contains("R5 !read_ok"), "{err}");
    // The object loader's error names the program and points to `bpfrr verify`.
    let e = LoadError::Rejected {
        program: "xdp_firewall".into(),
        errno: "EACCES".into(),
        tail: bpfrr_recorder::sys::log_tail(log, 20),
        log: log.to_string(),
    };
    let text = e.to_string();
    assert!(
        text.contains("R5 !read_ok") && text.contains("bpfrr verify"),
        "{text}"
    );
}

fn read_hex(path: &std::path::Path) -> Vec<u8> {
    let text = std::fs::read_to_string(path).unwrap();
    let hex: String = text.split_whitespace().collect();
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn xdp_sample_test_run() {
    if !common::kernel_tests_enabled("xdp_sample_test_run") {
        return;
    }
    let path = samples_dir().join("xdp_fw.bpf.o");
    let mut obj = LoadedObject::open(&path).unwrap();
    let prog = obj
        .load_program("xdp_firewall", &LoadOptions::default())
        .unwrap();
    // The documented verdicts (samples/README.md). The TCP port (23) comes
    // from .rodata, so these also prove global data was set up.
    for (input, verdict) in [
        ("xdp_fw-udp-dns", 2),
        ("xdp_fw-tcp23", 1),
        ("xdp_fw-tcp23-ipopts", 2),
        ("xdp_fw-ipv6-tcp23", 1),
    ] {
        let frame = read_hex(&samples_dir().join(format!("inputs/{input}.hex")));
        let out = run(
            &prog.fd,
            RunKind::Xdp,
            RunInput::Packet {
                frame: &frame,
                ctx: None,
            },
            1,
        )
        .unwrap();
        assert_eq!(out.retval, verdict, "{input}");
        assert_eq!(
            out.data_out, frame,
            "{input}: the firewall does not rewrite"
        );
    }
    // rule_stats (per-CPU array) counted the drops by port: rule 3, twice.
    let stats = obj
        .maps
        .iter()
        .find(|m| m.def.name == "rule_stats")
        .unwrap();
    let per_cpu = stats
        .map
        .lookup_per_cpu(&3u32.to_le_bytes())
        .unwrap()
        .unwrap();
    let packets: u64 = per_cpu
        .iter()
        .map(|v| u64::from_le_bytes(v[..8].try_into().unwrap()))
        .sum();
    assert_eq!(packets, 2);
}
