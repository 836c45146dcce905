//! The public conformance vectors against `isa::check`, `decode` and `encode`.
//!
//! - The 45 `unused-*` programs of bpf_conformance's negative suite set a
//!   reserved field; each is rejected with `ReservedField` naming instruction
//!   0 and the very field the file name says.
//! - Every bpf_conformance program (313) and every uBPF execution program
//!   passes `check`, and every instruction encodes back to its bytes.
//! - uBPF's error vectors are split into load-time errors, which `check`
//!   rejects (each with the expected reason), errors of function structure,
//!   which the replayer's loader rejects, and run-time errors, which are
//!   well-formed programs that must fail while running (the VM's job).
//!
//! The vectors are read from ../shared/conformance at test time.

use std::path::PathBuf;

use bpfrr_trace::isa::{CheckError, DecodeError, RawInsn, check, encode};
use serde_json::Value;

fn manifest(name: &str) -> Vec<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/conformance/manifests")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read the conformance manifest {} ({e}); the vectors live in \
             ../shared/conformance next to the workspace",
            path.display()
        )
    });
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("manifest lines are JSON"))
        .collect()
}

fn name(record: &Value) -> &str {
    record["name"].as_str().expect("every record has a name")
}

fn program(record: &Value) -> Vec<RawInsn> {
    let hex = record["program"].as_str().expect("record has a program");
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("program is hex"))
        .collect();
    RawInsn::parse_all(&bytes).expect("program is whole slots")
}

fn expects_result(record: &Value) -> bool {
    record["expect"]["kind"] == "result"
}

/// Checks `raw` and re-encodes every instruction; panics naming `what`.
fn check_and_round_trip(what: &str, raw: &[RawInsn]) {
    let prog = check(raw).unwrap_or_else(|e| panic!("{what}: {e}"));
    for (pc, insn) in prog.insns.iter().enumerate() {
        let Some(insn) = insn else { continue };
        let slots = encode(insn);
        assert_eq!(
            slots,
            raw[pc..pc + slots.len()],
            "{what}: instruction {pc} ({insn:?}) does not encode back to its bytes"
        );
    }
}

#[test]
fn every_unused_field_vector_is_rejected_naming_the_field() {
    let records = manifest("bpf_conformance_negative.jsonl");
    let mut rejected = 0;
    for record in records
        .iter()
        .filter(|r| r["category"] == "reserved_field_nonzero")
    {
        let name = name(record);
        // "bpf_conformance/negative/unused-add64_imm-offset.data" -> "offset"
        let suffix = name
            .trim_end_matches(".data")
            .rsplit('-')
            .next()
            .expect("name has a field suffix");
        let field = match suffix {
            "offset" => "off",
            "src" => "src_reg",
            "dst" => "dst_reg",
            "imm" => "imm",
            other => panic!("{name}: unexpected field suffix {other:?}"),
        };
        match check(&program(record)) {
            Err(CheckError::Decode(DecodeError::ReservedField {
                pc: 0, field: f, ..
            })) if f == field => {}
            other => {
                panic!("{name}: expected reserved field {field} at instruction 0, got {other:?}")
            }
        }
        // The message names the instruction and the field.
        let message = check(&program(record)).unwrap_err().to_string();
        assert!(
            message.starts_with("instruction 0:") && message.contains(field),
            "{name}: {message}"
        );
        rejected += 1;
    }
    assert_eq!(rejected, 45, "expected the 45 unused-* vectors");
}

#[test]
fn every_bpf_conformance_program_checks_and_round_trips() {
    let records = manifest("bpf_conformance.jsonl");
    assert_eq!(records.len(), 313);
    for record in &records {
        check_and_round_trip(name(record), &program(record));
    }
}

#[test]
fn every_ubpf_execution_program_checks_and_round_trips() {
    let records = manifest("ubpf.jsonl");
    let mut n = 0;
    for record in records
        .iter()
        .filter(|r| r["category"] == "execution" && expects_result(r))
    {
        check_and_round_trip(name(record), &program(record));
        n += 1;
    }
    assert!(n >= 50, "only {n} uBPF execution records");
}

/// uBPF error vectors that are malformed programs: rejected before running,
/// as the kernel would, with the reason we give.
fn load_time_error(file: &str) -> Option<fn(&CheckError) -> bool> {
    use CheckError as C;
    use DecodeError as D;
    Some(match file {
        "err-endian-size" => |e| matches!(e, C::Decode(D::BadField { pc: 0, .. })),
        "err-incomplete-lddw" | "err-incomplete-lddw2" => {
            |e| matches!(e, C::Decode(D::BadLdImm64Tail { pc: 0 }))
        }
        "err-lddw-second-half-invalid"
        | "err-lddw-second-half-invalid-all"
        | "err-lddw-second-half-invalid-dst-offset"
        | "err-lddw-second-half-invalid-offset"
        | "err-lddw-second-half-invalid-src"
        | "err-lddw-second-half-invalid-src-offset" => {
            |e| matches!(e, C::Decode(D::BadLdImm64Tail { pc: 0 }))
        }
        "err-invalid-reg-dst" => |e| matches!(e, C::Decode(D::BadRegister { pc: 0, reg: 11 })),
        "err-invalid-reg-src" => |e| matches!(e, C::Decode(D::BadRegister { pc: 0, reg: 11 })),
        "err-jmp-lddw" => |e| matches!(e, C::JumpIntoLdImm64 { pc: 0, target: 2 }),
        "err-jmp-out" => |e| {
            matches!(
                e,
                C::JumpOutOfRange {
                    pc: 0,
                    target: 3,
                    ..
                }
            )
        },
        // ld_imm64 with src_reg 1 is a valid map-fd load for Linux; the
        // program is still malformed: it ends without exit.
        "err-lddw-invalid-src" => |e| matches!(e, C::FallsOffEnd { pc: 0 }),
        _ => return None,
    })
}

/// uBPF error vectors that are well-formed programs failing while they run:
/// memory faults, helpers the environment does not provide, a loop that
/// never ends (the kernel's verifier proves that by analysis, not by a
/// structural check), and uBPF's own 65536-instruction limit (Linux allows
/// a million). `check` accepts them; the VM reports the failure.
const RUN_TIME_ERRORS: &[&str] = &[
    "err-address-overflow-offset",
    "err-address-underflow",
    "err-integer-overflow-bounds",
    "err-stack-oob",
    "err-call-bad-imm",
    "err-call-unreg",
    "err-infinite-loop",
    "err-too-many-instructions",
];

/// uBPF error vectors that are malformed only given the program's function
/// structure: a function falling into the next (`err-call0`), a jump from a
/// subprogram back into the main program (`err-call-invalid-jump`), a write
/// to r10. The kernel rejects them before verification, and so does the
/// replayer's loader (`bpfrr_replayer::vm::program`, which splits functions
/// and has its own tests); `isa::check` knows no functions and accepts them.
const LOADER_ERRORS: &[&str] = &["err-call0", "err-call-invalid-jump", "err-write-r10"];

/// uBPF API behaviour with no meaning for a single program.
const NOT_APPLICABLE: &[&str] = &["reload"];

#[test]
fn ubpf_error_vectors_are_rejected_at_load_time_or_left_to_run_time() {
    let records = manifest("ubpf.jsonl");
    let mut load_time = 0;
    for record in records
        .iter()
        .filter(|r| r["category"] == "ubpf_error_policy")
    {
        let name = name(record);
        let file = name.rsplit('/').next().unwrap();
        let file = file.split('.').next().unwrap();
        let raw = program(record);
        if let Some(is_expected) = load_time_error(file) {
            match check(&raw) {
                Err(e) if is_expected(&e) => {
                    assert!(e.to_string().contains("instruction "), "{name}: {e}");
                    load_time += 1;
                }
                other => panic!("{name}: expected a load-time error, got {other:?}"),
            }
        } else if RUN_TIME_ERRORS.contains(&file) || LOADER_ERRORS.contains(&file) {
            check_and_round_trip(name, &raw);
        } else {
            assert!(
                NOT_APPLICABLE.contains(&file),
                "{name}: a uBPF error vector not classified as load-time or run-time"
            );
        }
    }
    assert_eq!(load_time, 14, "load-time uBPF error vectors");
}

#[test]
fn stale_ubpf_unknown_opcode_vector_is_a_valid_gotol() {
    // err-unknown-opcode predates ISA v4: 0x06 is now `gotol +0`.
    let records = manifest("ubpf.jsonl");
    let stale = records
        .iter()
        .find(|r| r["category"] == "stale")
        .expect("the stale vector is in the manifest");
    check_and_round_trip(name(stale), &program(stale));
}
