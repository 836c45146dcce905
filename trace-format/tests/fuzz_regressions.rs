//! Inputs that once made a fuzz target crash, hang or allocate without
//! bound (docs/fuzzing.md), fed through the same code path as the target on
//! every `cargo test`:
//!
//! - `tests/fuzz_regressions/trace_reader/*`: trace files (for inputs found
//!   through the checksum-fixing half of the target, the file after fixing);
//! - `tests/fuzz_regressions/object_loader/*`: BPF objects and BTF blobs;
//! - `tests/fuzz_regressions/core_linker/*`: a `u32` object length, the
//!   object and a target BTF (empty: the object's own), linked with CO-RE.
//!
//! Each input must give an error or a value, never a panic; whatever opens
//! is used in full, as the fuzz targets use it.

use std::path::{Path, PathBuf};

use bpfrr_trace::btf::Btf;
use bpfrr_trace::isa::{DisasmOptions, check, decode, format_insn};
use bpfrr_trace::object::ObjectFile;
use bpfrr_trace::trace::Trace;

/// The files of `tests/fuzz_regressions/<target>/`, sorted, with their bytes.
fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz_regressions")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, bytes)
        })
        .collect()
}

/// What the trace_reader target does with one file.
fn read_whole_trace(bytes: Vec<u8>) -> Result<u64, String> {
    let trace = Trace::from_bytes(bytes).map_err(|e| e.to_string())?;
    let summary = trace.summary();
    assert_eq!(summary.invocation_count, trace.invocation_count());
    for p in trace.programs() {
        for f in &p.func_info {
            let _ = p.insns[f.insn as usize];
        }
        for l in &p.line_info {
            let _ = p.insns[l.insn as usize];
        }
    }
    let mut read = 0;
    for i in 0..trace.invocation_count().min(100_000) {
        if let Ok(inv) = trace.invocation(i) {
            let owned = inv.to_owned_invocation();
            let program = &trace.programs()[owned.program as usize];
            for e in &owned.events {
                let _ = program.insns[e.insn as usize];
            }
            read += 1;
        }
    }
    let iterated = trace.iter_invocations().take_while(Result::is_ok).count() as u64;
    assert!(iterated <= trace.invocation_count());
    Ok(read)
}

/// What the object_loader target does with one file.
fn load_object(bytes: &[u8]) -> Result<usize, String> {
    let object = ObjectFile::parse(bytes).map_err(|e| e.to_string())?;
    let maps = object.maps();
    for section in object.text_sections() {
        let n = section.insns.len().min(1024);
        for pc in 0..n {
            if let Ok(insn) = decode(&section.insns[..n], pc) {
                let _ = format_insn(&insn, pc, &DisasmOptions::default());
            }
        }
    }
    if let Some(btf) = object.btf() {
        format_every_type(btf, bytes);
    }
    let fds: Vec<i32> = (0..maps.len() as i32).collect();
    let mut linked = 0;
    for program in object.programs() {
        if let Ok(p) = object.link(&program.name, &fds) {
            assert!(p.functions.iter().all(|f| f.start + f.len <= p.insns.len()));
            let _ = check(&p.insns);
            linked += 1;
        }
        if !fds.is_empty() {
            let _ = object.link(&program.name, &fds[1..]);
        }
    }
    Ok(linked)
}

/// What the core_linker target does with one input: the error of every
/// CO-RE link of the object's first 8 programs (None when it linked).
fn link_with_core(data: &[u8]) -> Result<Vec<Option<String>>, String> {
    let len = u32::from_le_bytes(data[..4].try_into().unwrap()) as usize;
    let (object, btf) = data[4..].split_at(len.min(data.len() - 4));
    let obj = ObjectFile::parse(object).map_err(|e| e.to_string())?;
    let own = obj.btf_bytes().map(<[u8]>::to_vec).unwrap_or_default();
    let target = if btf.is_empty() { &own[..] } else { btf };
    let fds: Vec<i32> = (0..obj.maps().len() as i32).collect();
    Ok(obj
        .programs()
        .iter()
        .take(8)
        .map(|p| match obj.link_with_btf(&p.name, &fds, target) {
            Ok(linked) => {
                assert!(
                    linked
                        .functions
                        .iter()
                        .all(|f| f.start + f.len <= linked.insns.len())
                );
                None
            }
            Err(e) => Some(e.to_string()),
        })
        .collect())
}

fn format_every_type(btf: &Btf, data: &[u8]) {
    for (id, _) in btf.types() {
        let _ = btf.type_name(id);
        let _ = btf.resolve(id);
        let _ = btf.members(id);
        let size = btf.size_of(id).unwrap_or(0).min(256) as usize;
        let _ = btf.format_value(id, &data[..size.min(data.len())]);
    }
}

#[test]
fn trace_reader_regressions_give_an_error_or_a_trace() {
    let inputs = inputs("trace_reader");
    assert!(!inputs.is_empty(), "the regression inputs are missing");
    for (path, bytes) in inputs {
        match read_whole_trace(bytes) {
            Ok(_) => {}
            Err(message) => assert!(!message.is_empty(), "{}: empty error", path.display()),
        }
    }
}

#[test]
fn object_loader_regressions_give_an_error_or_an_object() {
    let inputs = inputs("object_loader");
    assert!(!inputs.is_empty(), "the regression inputs are missing");
    for (path, bytes) in inputs {
        if let Err(message) = load_object(&bytes) {
            assert!(!message.is_empty(), "{}: empty error", path.display());
        }
        if let Ok(btf) = Btf::parse(&bytes) {
            format_every_type(&btf, &bytes);
        }
    }
}

/// Function symbols outside their section made aya-obj panic (caught,
/// "internal panic"); they are refused before aya-obj sees them now.
/// Other aya-obj panics (`caught-*`) are still caught and reported.
#[test]
fn core_linker_regressions_give_an_error_or_a_program() {
    let inputs = inputs("core_linker");
    assert!(!inputs.is_empty(), "the regression inputs are missing");
    for (path, bytes) in inputs {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let errors = match link_with_core(&bytes) {
            Ok(errors) => errors,
            Err(message) => {
                assert!(!message.is_empty(), "{name}: empty error");
                assert!(!name.starts_with("panic-"), "{name} must parse: {message}");
                continue;
            }
        };
        for e in errors.iter().flatten() {
            assert!(!e.is_empty(), "{name}: empty error");
            // `caught-*`: aya-obj panics on these (malformed .BTF / .BTF.ext
            // bpfrr does not check itself yet); the panic is caught and
            // becomes an error. Every other input must not reach a panic.
            if !name.starts_with("caught-") {
                assert!(!e.contains("internal panic"), "{name}: {e}");
            }
        }

        if name.starts_with("panic-aya-obj-function") {
            assert!(
                errors
                    .iter()
                    .flatten()
                    .any(|e| e.contains("lies outside its section")),
                "{name}: {errors:?}"
            );
        }
    }
}

/// A 2 KB object whose `.bss` header claims 4 GiB made the loader allocate
/// it (libFuzzer: out-of-memory (malloc(4294967280))); now it is refused.
#[test]
fn a_huge_nobits_section_is_refused_before_allocation() {
    let (_, bytes) = inputs("object_loader")
        .into_iter()
        .find(|(p, _)| p.ends_with("oom-nobits-bss-of-4gib.bpf.o"))
        .expect("the regression input exists");
    let e = ObjectFile::parse(&bytes).unwrap_err().to_string();
    assert_eq!(
        e,
        "malformed or truncated BPF object: section .bss holds 4294967280 bytes of global data, more than the kernel's limit of 4194304 for a map value"
    );
}

/// Lost-record, partial and return-value counts of u64::MAX in a directory
/// overflowed the summary's sums (a panic in debug builds); they saturate.
#[test]
fn summary_sums_of_huge_counts_saturate() {
    let (_, bytes) = inputs("trace_reader")
        .into_iter()
        .find(|(p, _)| p.ends_with("edge-counts-overflow-summary-sums.bpfrr"))
        .expect("the regression input exists");
    let trace = Trace::from_bytes(bytes).unwrap();
    let s = trace.summary();
    assert_eq!(s.lost_total, u64::MAX);
    assert_eq!(s.partial_invocations, u64::MAX);
    assert_eq!(s.other_retvals, u64::MAX);
    assert!(s.retvals.iter().all(|r| r.count == u64::MAX));
}
