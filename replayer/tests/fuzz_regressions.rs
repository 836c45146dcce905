//! Inputs that once made a fuzz target crash, hang or allocate without
//! bound (docs/fuzzing.md), fed through the same code path as the target on
//! every `cargo test`:
//!
//! - `tests/fuzz_regressions/vm/*`: vm target inputs (byte 0 = memory
//!   length, then the memory, then instruction bytes), run at full speed
//!   and step by step under the target's budgets, then undone.
//!
//! Each input must end in an error, a fault or an exit, never a panic.

use std::path::{Path, PathBuf};

use bpfrr_replayer::vm::*;
use bpfrr_trace::isa::{DisasmOptions, RawInsn, check, decode, encode, format_insn};

/// The vm target's budgets (fuzz/src/lib.rs).
const STEP_BUDGET: u64 = 10_000;
const MAY_GOTO_BUDGET: u64 = 1_000;

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

fn split_vm_input(data: &[u8]) -> (&[u8], &[u8]) {
    let Some((&mem_len, rest)) = data.split_first() else {
        return (&[], &[]);
    };
    let (mem, prog) = rest.split_at((mem_len as usize).min(rest.len()));
    (mem, &prog[..prog.len() / 8 * 8])
}

/// What the vm target does; returns how the run ended (Err: not loadable).
fn run_vm(mem: &[u8], prog: &[u8]) -> Result<Result<u64, Fault>, String> {
    let raw = RawInsn::parse_all(prog).map_err(|e| e.to_string())?;
    for pc in 0..raw.len() {
        if let Ok(insn) = decode(&raw, pc) {
            let _ = format_insn(&insn, pc, &DisasmOptions::default());
            let slots = encode(&insn);
            assert_eq!(slots[..], raw[pc..pc + slots.len()], "round trip at {pc}");
        }
    }
    let checked = check(&raw).map_err(|e| e.to_string())?;
    let program =
        Program::new(&checked, Limits { max_insns: 65_536 }).map_err(|e| e.to_string())?;
    let config = Config {
        step_budget: STEP_BUDGET,
        may_goto_budget: MAY_GOTO_BUDGET,
        ..Config::default()
    };
    let ctx = Context::memory(mem.to_vec());
    let mut fast = Machine::new(program.clone());
    fast.set_config(config);
    let fast_result = fast.run_context(&mut UbpfHelpers, &ctx);

    let mut stepped = Machine::new(program);
    stepped.set_config(config);
    stepped.start(0, &ctx).expect("program 0 exists");
    let initial = stepped.state().clone();
    let mut steps = Vec::new();
    let step_result = loop {
        assert!(steps.len() as u64 <= STEP_BUDGET + 1, "step budget ignored");
        let effects = stepped.step(&mut UbpfHelpers);
        let outcome = effects.outcome.clone();
        steps.push(effects);
        match outcome {
            StepOutcome::Running => {}
            StepOutcome::Exited(r0) => break Ok(r0),
            StepOutcome::Faulted(f) => break Err(f),
        }
    };
    assert_eq!(
        fast_result, step_result,
        "full speed and single steps differ"
    );
    for effects in steps.iter().rev() {
        stepped.undo(effects);
    }
    assert!(
        stepped.state() == &initial,
        "undo does not restore the start"
    );
    Ok(fast_result)
}

#[test]
fn vm_regressions_end_in_an_error_a_fault_or_an_exit() {
    let inputs = inputs("vm");
    assert!(!inputs.is_empty(), "the regression inputs are missing");
    for (path, bytes) in inputs {
        let (mem, prog) = split_vm_input(&bytes);
        match run_vm(mem, prog) {
            Ok(Err(fault)) => assert!(!fault.to_string().is_empty(), "{}", path.display()),
            Err(message) => assert!(!message.is_empty(), "{}", path.display()),
            Ok(Ok(_)) => {}
        }
    }
}

/// A trace's verifier info gives the stack depths; one beyond the kernel's
/// 512 bytes would make every run allocate it (u32::MAX also overflowed
/// the rounding), so it is refused.
#[test]
fn stack_depths_beyond_the_kernel_limit_are_refused() {
    // r0 = 0; exit
    let bytes = [0xb7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0];
    for depth in [513, 1 << 31, u32::MAX] {
        let mut p = Program::from_bytes(&bytes).unwrap();
        let e = p.set_stack_depths(&[depth]).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "subprogram 0 is given a stack depth of {depth} bytes, more than the kernel's limit of 512"
            )
        );
    }
    let mut p = Program::from_bytes(&bytes).unwrap();
    p.set_stack_depths(&[509]).unwrap();
    assert_eq!(p.subprograms()[0].stack_depth, 512);
}
