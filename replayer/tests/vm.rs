//! The machine's semantics corner by corner: arithmetic, memory, calls,
//! callbacks, tail calls, may_goto, legacy packet loads, contexts, faults,
//! and exact undo of recorded steps.

use std::borrow::Cow;

use bpfrr_replayer::vm::*;
use bpfrr_trace::isa::opcode::*;
use bpfrr_trace::isa::{Imm64Kind, RawInsn, check};

// ---- a tiny assembler over the shared opcode names -------------------------

fn ins(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> RawInsn {
    RawInsn::new(code, dst, src, off, imm)
}
fn mov(d: u8, imm: i32) -> RawInsn {
    ins(CLASS_ALU64 | ALU_MOV | SRC_K, d, 0, 0, imm)
}
fn movr(d: u8, s: u8) -> RawInsn {
    ins(CLASS_ALU64 | ALU_MOV | SRC_X, d, s, 0, 0)
}
fn alu64(op: u8, d: u8, imm: i32) -> RawInsn {
    ins(CLASS_ALU64 | op | SRC_K, d, 0, 0, imm)
}
fn alu64r(op: u8, d: u8, s: u8) -> RawInsn {
    ins(CLASS_ALU64 | op | SRC_X, d, s, 0, 0)
}
fn alu32(op: u8, d: u8, imm: i32) -> RawInsn {
    ins(CLASS_ALU | op | SRC_K, d, 0, 0, imm)
}
fn alu32r(op: u8, d: u8, s: u8) -> RawInsn {
    ins(CLASS_ALU | op | SRC_X, d, s, 0, 0)
}
fn lddw(d: u8, v: u64) -> [RawInsn; 2] {
    [
        ins(CLASS_LD | MODE_IMM | SIZE_DW, d, 0, 0, v as u32 as i32),
        ins(0, 0, 0, 0, (v >> 32) as u32 as i32),
    ]
}
fn ld_func(d: u8, rel: i32) -> [RawInsn; 2] {
    [
        ins(CLASS_LD | MODE_IMM | SIZE_DW, d, PSEUDO_FUNC, 0, rel),
        ins(0, 0, 0, 0, 0),
    ]
}
fn ld_map(d: u8, kind: u8, fd: i32, off: i32) -> [RawInsn; 2] {
    [
        ins(CLASS_LD | MODE_IMM | SIZE_DW, d, kind, 0, fd),
        ins(0, 0, 0, 0, off),
    ]
}
fn ldx(size: u8, d: u8, s: u8, off: i16) -> RawInsn {
    ins(CLASS_LDX | MODE_MEM | size, d, s, off, 0)
}
fn ldxs(size: u8, d: u8, s: u8, off: i16) -> RawInsn {
    ins(CLASS_LDX | MODE_MEMSX | size, d, s, off, 0)
}
fn stx(size: u8, d: u8, s: u8, off: i16) -> RawInsn {
    ins(CLASS_STX | MODE_MEM | size, d, s, off, 0)
}
fn st(size: u8, d: u8, off: i16, imm: i32) -> RawInsn {
    ins(CLASS_ST | MODE_MEM | size, d, 0, off, imm)
}
fn atomic(size: u8, d: u8, s: u8, off: i16, op: i32) -> RawInsn {
    ins(CLASS_STX | MODE_ATOMIC | size, d, s, off, op)
}
fn jmp(op: u8, d: u8, imm: i32, off: i16) -> RawInsn {
    ins(CLASS_JMP | op | SRC_K, d, 0, off, imm)
}
fn jmpr(op: u8, d: u8, s: u8, off: i16) -> RawInsn {
    ins(CLASS_JMP | op | SRC_X, d, s, off, 0)
}
fn ja(off: i16) -> RawInsn {
    ins(CLASS_JMP | JMP_JA, 0, 0, off, 0)
}
fn call(id: i32) -> RawInsn {
    ins(CLASS_JMP | JMP_CALL, 0, PSEUDO_CALL_HELPER, 0, id)
}
fn call_local(rel: i32) -> RawInsn {
    ins(CLASS_JMP | JMP_CALL, 0, PSEUDO_CALL_LOCAL, 0, rel)
}
fn callx(r: u8) -> RawInsn {
    ins(CLASS_JMP | JMP_CALL | SRC_X, r, 0, 0, 0)
}
fn may_goto(off: i16) -> RawInsn {
    ins(CLASS_JMP | JMP_JCOND, 0, MAY_GOTO, off, 0)
}
fn exit() -> RawInsn {
    ins(CLASS_JMP | JMP_EXIT, 0, 0, 0, 0)
}

fn program(slots: &[RawInsn]) -> Program {
    Program::new(&check(slots).expect("program checks"), Limits::default())
        .expect("program prepares")
}

fn run_with(slots: &[RawInsn], env: &mut dyn Env, ctx: &Context) -> Result<u64, Fault> {
    let mut m = Machine::new(program(slots));
    m.run_context(env, ctx)
}

fn run(slots: &[RawInsn]) -> Result<u64, Fault> {
    run_with(slots, &mut NoHelpers, &Context::none())
}

fn r0(slots: &[RawInsn]) -> u64 {
    run(slots).unwrap_or_else(|f| panic!("unexpected fault: {f}"))
}

// ---- arithmetic ------------------------------------------------------------

#[test]
fn alu32_results_are_zero_extended() {
    assert_eq!(r0(&[mov(0, -1), alu32(ALU_ADD, 0, 1), exit()]), 0);
    assert_eq!(
        r0(&[mov(0, -1), alu32(ALU_MOV, 0, -1), exit()]),
        0xffff_ffff
    );
    assert_eq!(
        r0(&[mov(0, -1), movr(1, 0), alu32r(ALU_MOV, 0, 1), exit()]),
        0xffff_ffff
    );
    assert_eq!(
        r0(&[mov(0, 5), ins(CLASS_ALU | ALU_NEG, 0, 0, 0, 0), exit()]),
        0xffff_fffb
    );
}

#[test]
fn division_and_modulo_by_zero() {
    assert_eq!(
        r0(&[mov(0, 7), mov(1, 0), alu64r(ALU_DIV, 0, 1), exit()]),
        0
    );
    assert_eq!(
        r0(&[mov(0, -7), mov(1, 0), alu64r(ALU_MOD, 0, 1), exit()]),
        -7i64 as u64
    );
    assert_eq!(
        r0(&[mov(0, 7), mov(1, 0), alu32r(ALU_DIV, 0, 1), exit()]),
        0
    );
    // 32-bit modulo by zero leaves the low half, zero-extended.
    assert_eq!(
        r0(&[mov(0, -7), mov(1, 0), alu32r(ALU_MOD, 0, 1), exit()]),
        0xffff_fff9
    );
    // Signed forms (off = 1).
    let sdiv = |w: u8| ins(w | ALU_DIV | SRC_X, 0, 1, 1, 0);
    let smod = |w: u8| ins(w | ALU_MOD | SRC_X, 0, 1, 1, 0);
    assert_eq!(r0(&[mov(0, -7), mov(1, 0), sdiv(CLASS_ALU64), exit()]), 0);
    assert_eq!(
        r0(&[mov(0, -7), mov(1, 0), smod(CLASS_ALU64), exit()]),
        -7i64 as u64
    );
    assert_eq!(
        r0(&[mov(0, -7), mov(1, 2), sdiv(CLASS_ALU64), exit()]),
        -3i64 as u64
    );
    assert_eq!(
        r0(&[mov(0, -7), mov(1, 2), smod(CLASS_ALU64), exit()]),
        -1i64 as u64
    );
    assert_eq!(
        r0(&[mov(0, -7), mov(1, 0), smod(CLASS_ALU), exit()]),
        0xffff_fff9
    );
}

#[test]
fn int_min_divided_by_minus_one() {
    let min64 = lddw(0, i64::MIN as u64);
    let sdiv = |w: u8| ins(w | ALU_DIV | SRC_X, 0, 1, 1, 0);
    let smod = |w: u8| ins(w | ALU_MOD | SRC_X, 0, 1, 1, 0);
    assert_eq!(
        r0(&[min64[0], min64[1], mov(1, -1), sdiv(CLASS_ALU64), exit()]),
        i64::MIN as u64
    );
    assert_eq!(
        r0(&[min64[0], min64[1], mov(1, -1), smod(CLASS_ALU64), exit()]),
        0
    );
    assert_eq!(
        r0(&[mov(0, i32::MIN), mov(1, -1), sdiv(CLASS_ALU), exit()]),
        0x8000_0000
    );
    assert_eq!(
        r0(&[mov(0, i32::MIN), mov(1, -1), smod(CLASS_ALU), exit()]),
        0
    );
    // Immediate divisor too.
    assert_eq!(
        r0(&[
            mov(0, i32::MIN),
            ins(CLASS_ALU | ALU_DIV, 0, 0, 1, -1),
            exit()
        ]),
        0x8000_0000
    );
}

#[test]
fn shift_counts_are_masked() {
    assert_eq!(
        r0(&[mov(0, 1), mov(1, 65), alu64r(ALU_LSH, 0, 1), exit()]),
        2
    );
    assert_eq!(
        r0(&[mov(0, 1), mov(1, 33), alu32r(ALU_LSH, 0, 1), exit()]),
        2
    );
    assert_eq!(
        r0(&[mov(0, -8), mov(1, 66), alu64r(ALU_ARSH, 0, 1), exit()]),
        -2i64 as u64
    );
    assert_eq!(
        r0(&[mov(0, -8), mov(1, 34), alu32r(ALU_ARSH, 0, 1), exit()]),
        0xffff_fffe
    );
    assert_eq!(r0(&[mov(0, -1), alu32(ALU_RSH, 0, 28), exit()]), 0xf);
}

#[test]
fn sign_extending_moves_and_loads() {
    let movsx = |w: u8, bits: i16| ins(w | ALU_MOV | SRC_X, 0, 1, bits, 0);
    assert_eq!(
        r0(&[mov(1, 0x80), movsx(CLASS_ALU64, 8), exit()]),
        -128i64 as u64
    );
    assert_eq!(
        r0(&[mov(1, 0x8000), movsx(CLASS_ALU64, 16), exit()]),
        -32768i64 as u64
    );
    assert_eq!(
        r0(&[
            mov(1, -1),
            alu64(ALU_RSH, 1, 32),
            movsx(CLASS_ALU64, 32),
            exit()
        ]),
        u64::MAX
    );
    assert_eq!(
        r0(&[mov(1, 0x80), movsx(CLASS_ALU, 8), exit()]),
        0xffff_ff80
    );
    // ldxs from the stack.
    let prog = [st(SIZE_B, 10, -1, 0xfe), ldxs(SIZE_B, 0, 10, -1), exit()];
    assert_eq!(r0(&prog), -2i64 as u64);
    let prog = [st(SIZE_H, 10, -2, 0x8001), ldxs(SIZE_H, 0, 10, -2), exit()];
    assert_eq!(r0(&prog), 0xffff_ffff_ffff_8001);
    let prog = [st(SIZE_W, 10, -4, -5), ldxs(SIZE_W, 0, 10, -4), exit()];
    assert_eq!(r0(&prog), -5i64 as u64);
    let prog = [st(SIZE_W, 10, -4, -5), ldx(SIZE_W, 0, 10, -4), exit()];
    assert_eq!(r0(&prog), 0xffff_fffb);
}

#[test]
fn byte_order_operations() {
    let v = lddw(0, 0x0102_0304_0506_0708);
    let le = |bits| ins(CLASS_ALU | ALU_END | SRC_K, 0, 0, 0, bits);
    let be = |bits| ins(CLASS_ALU | ALU_END | SRC_X, 0, 0, 0, bits);
    let bswap = |bits| ins(CLASS_ALU64 | ALU_END, 0, 0, 0, bits);
    assert_eq!(r0(&[v[0], v[1], le(16), exit()]), 0x0708);
    assert_eq!(r0(&[v[0], v[1], le(32), exit()]), 0x0506_0708);
    assert_eq!(r0(&[v[0], v[1], le(64), exit()]), 0x0102_0304_0506_0708);
    assert_eq!(r0(&[v[0], v[1], be(16), exit()]), 0x0807);
    assert_eq!(r0(&[v[0], v[1], be(32), exit()]), 0x0807_0605);
    assert_eq!(r0(&[v[0], v[1], be(64), exit()]), 0x0807_0605_0403_0201);
    assert_eq!(r0(&[v[0], v[1], bswap(16), exit()]), 0x0807);
    assert_eq!(r0(&[v[0], v[1], bswap(64), exit()]), 0x0807_0605_0403_0201);
}

#[test]
fn jumps_signed_unsigned_and_32_bit() {
    // if r1 s> -1 goto +1 (r1 = -2: not taken)
    let p = [
        mov(0, 0),
        mov(1, -2),
        jmp(JMP_JSGT, 1, -1, 1),
        mov(0, 1),
        exit(),
    ];
    assert_eq!(r0(&p), 1);
    // unsigned: -2 > 5
    let p = [
        mov(0, 0),
        mov(1, -2),
        jmp(JMP_JGT, 1, 5, 1),
        mov(0, 1),
        exit(),
    ];
    assert_eq!(r0(&p), 0);
    // jmp32 looks at the low half only: r1 = 0x1_0000_0000 == 0 in 32 bits.
    let v = lddw(1, 1 << 32);
    let p = [
        mov(0, 0),
        v[0],
        v[1],
        ins(CLASS_JMP32 | JMP_JEQ, 1, 0, 1, 0),
        mov(0, 1),
        exit(),
    ];
    assert_eq!(r0(&p), 0);
    // gotol: 32-bit offset in imm.
    let p = [
        mov(0, 1),
        ins(CLASS_JMP32 | JMP_JA, 0, 0, 0, 1),
        mov(0, 2),
        exit(),
    ];
    assert_eq!(r0(&p), 1);
    let p = [
        mov(0, 3),
        mov(1, 3),
        jmpr(JMP_JSET, 0, 1, 1),
        mov(0, 9),
        exit(),
    ];
    assert_eq!(r0(&p), 3);
}

// ---- atomics ---------------------------------------------------------------

#[test]
fn atomics_fetch_old_values_and_cmpxchg_uses_r0() {
    // *(u64 *)(r10 - 8) = 10; r1 = 5; fetch_add: r1 = old (10), mem = 15; r0 = mem + r1 = 25
    let p = [
        st(SIZE_DW, 10, -8, 10),
        mov(1, 5),
        atomic(SIZE_DW, 10, 1, -8, ATOMIC_ADD | ATOMIC_FETCH),
        ldx(SIZE_DW, 0, 10, -8),
        alu64r(ALU_ADD, 0, 1),
        exit(),
    ];
    assert_eq!(r0(&p), 25);
    // Non-fetching add leaves src alone.
    let p = [
        st(SIZE_DW, 10, -8, 10),
        mov(1, 5),
        atomic(SIZE_DW, 10, 1, -8, ATOMIC_ADD),
        movr(0, 1),
        exit(),
    ];
    assert_eq!(r0(&p), 5);
    // cmpxchg success: r0 == mem -> store src, r0 = old.
    let p = [
        st(SIZE_DW, 10, -8, 7),
        mov(0, 7),
        mov(1, 99),
        atomic(SIZE_DW, 10, 1, -8, ATOMIC_CMPXCHG),
        ldx(SIZE_DW, 2, 10, -8),
        alu64(ALU_LSH, 0, 8),
        alu64r(ALU_OR, 0, 2),
        exit(),
    ];
    assert_eq!(r0(&p), (7 << 8) | 99);
    // cmpxchg failure: memory unchanged, r0 = old.
    let p = [
        st(SIZE_DW, 10, -8, 7),
        mov(0, 8),
        mov(1, 99),
        atomic(SIZE_DW, 10, 1, -8, ATOMIC_CMPXCHG),
        ldx(SIZE_DW, 2, 10, -8),
        alu64(ALU_LSH, 0, 8),
        alu64r(ALU_OR, 0, 2),
        exit(),
    ];
    assert_eq!(r0(&p), (7 << 8) | 7);
    // 32-bit fetch results are zero-extended; xchg returns the old value.
    let p = [
        st(SIZE_W, 10, -4, -1),
        mov(1, 0),
        atomic(SIZE_W, 10, 1, -4, ATOMIC_XCHG),
        movr(0, 1),
        exit(),
    ];
    assert_eq!(r0(&p), 0xffff_ffff);
    let p = [
        st(SIZE_W, 10, -4, -1),
        mov(1, 1),
        atomic(SIZE_W, 10, 1, -4, ATOMIC_OR | ATOMIC_FETCH),
        movr(0, 1),
        exit(),
    ];
    assert_eq!(r0(&p), 0xffff_ffff);
    // and/xor
    let p = [
        st(SIZE_DW, 10, -8, 0b1100),
        mov(1, 0b1010),
        atomic(SIZE_DW, 10, 1, -8, ATOMIC_XOR),
        ldx(SIZE_DW, 0, 10, -8),
        exit(),
    ];
    assert_eq!(r0(&p), 0b0110);
    let p = [
        st(SIZE_DW, 10, -8, 0b1100),
        mov(1, 0b1010),
        atomic(SIZE_DW, 10, 1, -8, ATOMIC_AND),
        ldx(SIZE_DW, 0, 10, -8),
        exit(),
    ];
    assert_eq!(r0(&p), 0b1000);
}

#[test]
fn load_acquire_and_store_release() {
    // store_release: *(u16 *)(r10 - 2) = r1; load_acquire: r0 = *(u16 *)(r10 - 2)
    let p = [
        mov(1, 0x12345),
        atomic(SIZE_H, 10, 1, -2, ATOMIC_STORE_REL),
        movr(2, 10),
        atomic(SIZE_H, 0, 2, -2, ATOMIC_LOAD_ACQ),
        exit(),
    ];
    assert_eq!(r0(&p), 0x2345);
}

// ---- memory and faults -----------------------------------------------------

#[test]
fn memory_faults_name_region_offset_size_and_instruction() {
    let f = run(&[st(SIZE_B, 10, 0, 0), exit()]).unwrap_err();
    assert_eq!(f.pc, 0);
    assert!(
        matches!(
            f.kind,
            FaultKind::OutOfBounds {
                region: RegionKind::Stack { frame: 0 },
                offset: 512,
                size: 1,
                ..
            }
        ),
        "{f}"
    );
    let f = run(&[ldx(SIZE_DW, 0, 10, -520), exit()]).unwrap_err();
    assert!(
        matches!(
            f.kind,
            FaultKind::OutOfBounds {
                offset: -8,
                size: 8,
                ..
            }
        ),
        "{f}"
    );
    assert!(
        f.to_string().contains("offset -8 of the stack of frame 0"),
        "{f}"
    );
    let f = run(&[mov(1, 0), ldx(SIZE_W, 0, 1, 16), exit()]).unwrap_err();
    assert_eq!(f.pc, 1);
    assert!(
        matches!(
            f.kind,
            FaultKind::NoRegion {
                addr: 16,
                size: 4,
                write: false
            }
        ),
        "{f}"
    );
    // Input memory: r1/r2 set, accesses bounded.
    let ctx = Context::memory(vec![1, 2, 3]);
    assert_eq!(
        run_with(
            &[ldx(SIZE_B, 0, 1, 2), alu64r(ALU_ADD, 0, 2), exit()],
            &mut NoHelpers,
            &ctx
        )
        .unwrap(),
        6
    );
    let f = run_with(&[ldx(SIZE_H, 0, 1, 2), exit()], &mut NoHelpers, &ctx).unwrap_err();
    assert!(
        matches!(
            f.kind,
            FaultKind::OutOfBounds {
                region: RegionKind::Input,
                ..
            }
        ),
        "{f}"
    );
}

#[test]
fn faults_carry_source_lines() {
    let mut p = program(&[mov(0, 0), st(SIZE_B, 10, 8, 0), exit()]);
    p.set_lines([
        (
            0,
            SourceLine {
                file: "x.c".into(),
                line: 3,
                column: 1,
                text: "int x = 0;".into(),
            },
        ),
        (
            1,
            SourceLine {
                file: "x.c".into(),
                line: 4,
                column: 1,
                text: "buf[520] = 0;".into(),
            },
        ),
    ]);
    let mut m = Machine::new(p);
    let f = m.run_context(&mut NoHelpers, &Context::none()).unwrap_err();
    assert_eq!(f.line.as_ref().map(|l| l.line), Some(4));
    assert!(
        f.to_string()
            .starts_with("instruction 1 (x.c:4: buf[520] = 0;)"),
        "{f}"
    );
}

#[test]
fn step_budget_and_unknown_helper_are_faults() {
    let mut m = Machine::new(program(&[ja(-1), exit()]));
    m.set_config(Config {
        step_budget: 1000,
        ..Config::default()
    });
    let f = m.run_context(&mut NoHelpers, &Context::none()).unwrap_err();
    assert_eq!(f.kind, FaultKind::StepBudget { steps: 1000 });
    assert_eq!(m.steps(), 1000);
    let f = run(&[call(1), exit()]).unwrap_err();
    assert_eq!(f.kind, FaultKind::UnknownHelper { id: 1 });
}

#[test]
fn stepping_faults_at_the_budget_and_after_the_end_without_changing_anything() {
    // Straight-line steps take `step`'s inline path; the step that would
    // pass the budget, and a step after the exit, must fault exactly as the
    // general path does, with no effects and the machine untouched.
    let mut m = Machine::new(program(&[mov(1, 1), mov(2, 2), mov(3, 3), exit()]));
    m.set_config(Config {
        step_budget: 2,
        ..Config::default()
    });
    m.start(0, &Context::none()).unwrap();
    for pc in 0..2 {
        let s = m.step(&mut NoHelpers);
        assert_eq!((s.pc, &s.outcome), (pc, &StepOutcome::Running));
        assert_eq!(s.effects.len(), 1);
    }
    let state = m.state().clone();
    let s = m.step(&mut NoHelpers);
    assert!(
        matches!(&s.outcome, StepOutcome::Faulted(f) if f.kind == FaultKind::StepBudget { steps: 2 }),
        "{:?}",
        s.outcome
    );
    assert!(s.effects.is_empty());
    assert_eq!(m.state(), &state);

    m.set_config(Config::default());
    m.start(0, &Context::none()).unwrap();
    let mut steps = Vec::new();
    loop {
        let s = m.step(&mut NoHelpers);
        let done = s.outcome != StepOutcome::Running;
        steps.push(s);
        if done {
            break;
        }
    }
    assert_eq!(steps.last().unwrap().outcome, StepOutcome::Exited(0));
    let end = m.state().clone();
    let s = m.step(&mut NoHelpers);
    assert!(
        matches!(&s.outcome, StepOutcome::Faulted(f) if f.kind == FaultKind::NotRunning),
        "{:?}",
        s.outcome
    );
    assert_eq!(m.state(), &end);
    // Undone newest first, the inline steps restore the start exactly.
    for s in steps.iter().rev() {
        m.undo(s);
    }
    assert_eq!((m.pc(), m.steps(), m.reg(1), m.reg(3)), (0, 0, 0, 0));
    assert_eq!(m.status(), Status::Running);
}

#[test]
fn a_mov_then_add_pair_counts_as_two_steps_and_can_be_entered_or_paused_between() {
    // r2 = r1; r2 += 3 runs as one dispatch at full speed; counting,
    // pausing between the two and jumping to the add must not notice.
    let slots = [
        mov(1, 5),
        movr(2, 1),
        alu64(ALU_ADD, 2, 3),
        jmp(JMP_JEQ, 2, 11, 2), // second time round: done
        mov(1, 8),
        ja(-4), // into the add: r2 = 8 + 3 (r2 of the first pass)
        movr(0, 2),
        exit(),
    ];
    let mut m = Machine::new(program(&slots));
    m.start(0, &Context::none()).unwrap();
    assert_eq!(m.run_steps(&mut NoHelpers, 2).unwrap(), RunStop::Paused);
    assert_eq!((m.pc(), m.steps(), m.reg(2)), (2, 2, 5));
    assert_eq!(m.run(&mut NoHelpers).unwrap(), 11);
    let full_steps = m.steps();
    assert_eq!(full_steps, 10);
    // Stepping gives the same count, one register write per instruction.
    m.start(0, &Context::none()).unwrap();
    let mut n = 0;
    loop {
        let s = m.step(&mut NoHelpers);
        n += 1;
        if s.pc == 1 {
            assert_eq!(s.effects.len(), 1);
            assert_eq!(m.reg(2), 5);
        }
        if s.outcome != StepOutcome::Running {
            assert_eq!(s.outcome, StepOutcome::Exited(11));
            break;
        }
    }
    assert_eq!((n, m.steps()), (full_steps, full_steps));
}

#[test]
fn an_add_then_jump_pair_counts_as_two_steps_and_can_be_entered_or_paused_between() {
    // r1 += 1; if r1 < 4 goto loop runs as one dispatch at full speed, and
    // so does r3 += -2; if r3 s> -5 goto (signed, negative immediates);
    // counting, pausing between add and jump, and jumping straight to the
    // jump (skipping the add) must not notice.
    let slots = [
        mov(1, 0),
        mov(3, 0),
        mov(0, 0),
        alu64(ALU_ADD, 0, 10),    // 3: loop
        alu64(ALU_ADD, 1, 1),     // 4
        jmp(JMP_JLT, 1, 4, -3),   // 5: to 3
        alu64(ALU_ADD, 3, -2),    // 6
        jmp(JMP_JSGT, 3, -5, -2), // 7: to 6 (r3: -2, -4, -6)
        jmp(JMP_JEQ, 1, 5, 2),    // 8: second time here: done
        mov(1, 5),                // 9
        ja(-6),                   // 10: into the jump at 5 (r1 = 5: falls through)
        alu64r(ALU_ADD, 0, 3),    // 11
        exit(),
    ];
    let mut m = Machine::new(program(&slots));
    m.start(0, &Context::none()).unwrap();
    // Pause between the first add and its jump.
    assert_eq!(m.run_steps(&mut NoHelpers, 5).unwrap(), RunStop::Paused);
    assert_eq!((m.pc(), m.steps(), m.reg(1)), (5, 5, 1));
    let r0 = m.run(&mut NoHelpers).unwrap();
    // 4 rounds of r0 += 10, then r3 = -8 (three times round, once more
    // after the entry into slot 5).
    assert_eq!(r0, 32);
    let full_steps = m.steps();
    assert_eq!(full_steps, 30);
    // Every count of steps paused at gives the same end.
    for n in 1..full_steps {
        m.start(0, &Context::none()).unwrap();
        assert_eq!(m.run_steps(&mut NoHelpers, n).unwrap(), RunStop::Paused);
        assert_eq!(m.steps(), n);
        assert_eq!(m.run(&mut NoHelpers).unwrap(), r0);
        assert_eq!(m.steps(), full_steps);
    }
    // Stepping gives the same count and result, one register write per add.
    m.start(0, &Context::none()).unwrap();
    let mut n = 0;
    let mut pcs = Vec::new();
    loop {
        let s = m.step(&mut NoHelpers);
        n += 1;
        pcs.push(s.pc);
        if s.pc == 4 || s.pc == 6 {
            assert_eq!(s.effects.len(), 1);
        }
        if s.outcome != StepOutcome::Running {
            assert_eq!(s.outcome, StepOutcome::Exited(r0));
            break;
        }
    }
    assert_eq!((n, m.steps()), (full_steps, full_steps));
    // The entry into the jump slot happened: 10 is followed by 5.
    assert!(pcs.windows(2).any(|w| w == [10, 5]));
    // The entry at 5 falls through to the add at 6 once more.
    assert_eq!(pcs.iter().filter(|&&p| p == 6).count(), 4);
}

/// Runs `p` every way and checks each agrees with stepping it (the
/// reference: single steps never run a superinstruction): paused after
/// every count from 0 to past its end then run on, under every step budget,
/// logged with the same pauses, at full speed in one go; the same machine
/// state (registers, pc, count, status, memory) at every pause and at the
/// end, the same fault at the same instruction and count. A logged run
/// undoes back to the start exactly. Returns the end: r0, or the fault,
/// and the count.
fn agrees_with_stepping_in_every_mode(p: &[RawInsn]) -> (Result<u64, Fault>, u64) {
    let ctx = Context::none();
    let mut reference = Vec::new();
    let mut m = Machine::new(program(p));
    m.start(0, &ctx).unwrap();
    let start = m.state().clone();
    reference.push(m.state().clone());
    let end = loop {
        let s = m.step(&mut NoHelpers);
        match s.outcome {
            StepOutcome::Running => reference.push(m.state().clone()),
            StepOutcome::Exited(r0) => {
                reference.push(m.state().clone());
                break Ok(r0);
            }
            StepOutcome::Faulted(f) => break Err(f),
        }
    };
    let end_state = m.state().clone();
    let steps = m.steps();
    // Steps that complete (an exit included; a fault's step not).
    let done = reference.len() as u64 - 1;
    let ends = |m: &Machine, r: Result<u64, Fault>, what: &str| {
        assert_eq!(r, end, "{what}");
        assert_eq!(m.state(), &end_state, "{what}");
    };
    let mut m = Machine::new(program(p));
    m.start(0, &ctx).unwrap();
    let r = m.run(&mut NoHelpers);
    ends(&m, r, "one run");
    for n in 0..=done + 2 {
        let pauses = n < done || (n == done && end.is_err());
        // Paused after n instructions, then run on.
        let mut m = Machine::new(program(p));
        m.start(0, &ctx).unwrap();
        let r = m.run_steps(&mut NoHelpers, n);
        if pauses {
            assert_eq!(r, Ok(RunStop::Paused), "paused after {n}");
            assert_eq!(m.state(), &reference[n as usize], "paused after {n}");
            let r = m.run(&mut NoHelpers);
            ends(&m, r, &format!("run on after {n}"));
        } else {
            let r = r.map(|stop| match stop {
                RunStop::Exited(r0) => r0,
                other => panic!("{other:?} after {n}"),
            });
            ends(&m, r, &format!("run of {n}"));
        }
        // Logged, paused after n, then logged to the end, then undone.
        let mut m = Machine::new(program(p));
        m.start(0, &ctx).unwrap();
        let mut log = StepLog::new();
        let r = m.run_logged(&mut NoHelpers, n, &mut log);
        if pauses {
            assert_eq!(r, Ok(RunStop::Paused), "logged, paused after {n}");
            assert_eq!(
                m.state(),
                &reference[n as usize],
                "logged, paused after {n}"
            );
            let r = m.run_logged(&mut NoHelpers, u64::MAX, &mut log);
            let r = r.map(|stop| match stop {
                RunStop::Exited(r0) => r0,
                other => panic!("{other:?}"),
            });
            ends(&m, r, &format!("logged on after {n}"));
            while m.undo_logged(&mut log) {}
            assert_eq!(m.state(), &start, "undone after a pause at {n}");
        }
        // A step budget of n: a budget fault in the state stepping n
        // times gives, or the run's own end.
        let mut m = Machine::new(program(p));
        m.set_config(Config {
            step_budget: n,
            ..Config::default()
        });
        let r = m.run_context(&mut NoHelpers, &ctx);
        if pauses {
            let f = r.unwrap_err();
            assert_eq!(f.kind, FaultKind::StepBudget { steps: n });
            assert_eq!(m.state(), &reference[n as usize], "budget {n}");
        } else {
            ends(&m, r, &format!("budget {n}"));
        }
    }
    (end, steps)
}

/// The pcs of `p`'s instructions, stepped from the start to its end.
fn stepped_pcs(p: &[RawInsn]) -> Vec<usize> {
    let mut m = Machine::new(program(p));
    m.start(0, &Context::none()).unwrap();
    let mut pcs = Vec::new();
    loop {
        let s = m.step(&mut NoHelpers);
        pcs.push(s.pc);
        if s.outcome != StepOutcome::Running {
            return pcs;
        }
    }
}

#[test]
fn superinstructions_agree_with_stepping_wherever_they_are_entered_paused_or_cut() {
    // Groups the straight-line loop runs as one dispatch at full speed
    // (`MovAdd64`, `AddJmp64I`, `program::fuse`) or that a superinstruction
    // may cover (BENCHMARKS.md, tenth round: bounds checks, `mov` then an
    // ALU op, an ALU op then a jump on its result).
    // Bounds checks `d = s; d += k; if d > r goto`: taken, not taken,
    // `s == d`, `r == d`, `s == r10`, `r == r10`, a negative constant.
    let bounds = [
        mov(2, 100),             // 0
        mov(3, 120),             // 1
        movr(4, 2),              // 2: 114 > 120? no
        alu64(ALU_ADD, 4, 14),   // 3
        jmpr(JMP_JGT, 4, 3, 12), // 4: to 17 (drop)
        movr(4, 4),              // 5: s == d: 124 > 120, taken
        alu64(ALU_ADD, 4, 10),   // 6
        jmpr(JMP_JGT, 4, 3, 1),  // 7: to 9
        mov(0, 99),              // 8: skipped
        movr(5, 3),              // 9: r == d: never taken
        alu64(ALU_ADD, 5, -1),   // 10
        jmpr(JMP_JGT, 5, 5, 6),  // 11
        movr(6, 10),             // 12: s == r10: r10 - 8 > r10? no
        alu64(ALU_ADD, 6, -8),   // 13
        jmpr(JMP_JGT, 6, 10, 3), // 14
        alu64r(ALU_ADD, 0, 5),   // 15: r0 = 0 + 119
        exit(),                  // 16
        mov(0, 1),               // 17: drop
        exit(),                  // 18
    ];
    let (r, steps) = agrees_with_stepping_in_every_mode(&bounds);
    assert_eq!((r, steps), (Ok(119), 16));

    // Entered in the 2nd and 3rd slots of each kind of group: a counter in
    // r9 sends the program back into the add, then the jump, of the bounds
    // check; into the shift of `mov; rsh; jcc` and the jump of `rsh; jcc`;
    // into the and of `mov; and` and the jump of `and; jcc`.
    let entries = [
        mov(9, 0),                 // 0
        mov(2, 0x1234),            // 1
        mov(3, 0x1240),            // 2
        movr(4, 2),                // 3: mov; add; jgt (0x123c: not taken)
        alu64(ALU_ADD, 4, 8),      // 4
        jmpr(JMP_JGT, 4, 3, 20),   // 5: to 26
        alu64(ALU_ADD, 9, 1),      // 6
        jmp(JMP_JEQ, 9, 1, -4),    // 7: r9 = 1: into the add at 4 (0x1244: taken)
        movr(6, 2),                // 8: mov; rsh
        alu64(ALU_RSH, 6, 4),      // 9: rsh; jne
        jmp(JMP_JNE, 6, 0x123, 3), // 10: to 14
        mov(0, 7),                 // 11
        alu64(ALU_ADD, 9, 1),      // 12
        jmp(JMP_JLT, 9, 6, -5),    // 13: into the shift at 9
        movr(1, 2),                // 14: mov; and
        alu64(ALU_AND, 1, -16),    // 15: and; jset
        jmp(JMP_JSET, 1, 8, 2),    // 16: to 19 (0x1230 & 8: not taken)
        alu64r(ALU_ADD, 0, 1),     // 17
        ja(0),                     // 18
        alu64(ALU_ADD, 9, 1),      // 19
        jmp(JMP_JEQ, 9, 6, -5),    // 20: r9 = 6: into the jump at 16
        jmp(JMP_JEQ, 9, 5, -7),    // 21: r9 = 5: into the and at 15
        movr(1, 9),                // 22: mov; lsh
        alu64(ALU_LSH, 1, 62),     // 23
        alu64r(ALU_ADD, 0, 1),     // 24
        exit(),                    // 25
        alu64(ALU_ADD, 9, 1),      // 26
        jmp(JMP_JEQ, 9, 2, -23),   // 27: r9 = 2: into the jump at 5 (taken again)
        ja(-22),                   // 28: to the jump at 7
    ];
    let (r, _) = agrees_with_stepping_in_every_mode(&entries);
    assert_eq!(r, Ok(0xc000_0000_0000_0000 + 0x1237 + 0x1230 + 0x1230));
    let pcs = stepped_pcs(&entries);
    for entry in [[7, 4], [27, 5], [13, 9], [21, 15], [20, 16]] {
        assert!(pcs.windows(2).any(|w| w == entry), "{entry:?} in {pcs:?}");
    }

    // Shifts and masks at their edges, signed and unsigned conditions,
    // negative immediates, `s == d`.
    let mut edges = vec![
        lddw(1, 0x8000_0000_0000_00f1)[0],
        lddw(1, 0x8000_0000_0000_00f1)[1],
    ];
    edges.extend([
        movr(2, 1),              // 2: mov; rsh 63
        alu64(ALU_RSH, 2, 63),   // 3
        movr(3, 1),              // 4: mov; and -1
        alu64(ALU_AND, 3, -1),   // 5: and; jslt against a negative immediate
        jmp(JMP_JSLT, 3, -2, 1), // 6: to 8
        mov(0, 50),              // 7: skipped
        movr(4, 1),              // 8: mov; lsh 63
        alu64(ALU_LSH, 4, 63),   // 9
        movr(1, 1),              // 10: s == d
        alu64(ALU_RSH, 1, 60),   // 11: rsh; jge
        jmp(JMP_JGE, 1, 8, 1),   // 12: to 14
        mov(0, 60),              // 13: skipped
        alu64(ALU_AND, 2, 1),    // 14: and; jeq
        jmp(JMP_JEQ, 2, 0, 1),   // 15: not taken
        alu64r(ALU_ADD, 0, 2),   // 16
        alu64r(ALU_ADD, 0, 4),   // 17
        alu64r(ALU_ADD, 0, 1),   // 18
        exit(),                  // 19
    ]);
    let (r, steps) = agrees_with_stepping_in_every_mode(&edges);
    assert_eq!((r, steps), (Ok(1 + 0x8000_0000_0000_0000 + 8), 17));

    // A fault right after a group: the count and instruction at the fault
    // are those of stepping.
    let faulting = [
        mov(2, 0),               // 0
        mov(3, 64),              // 1
        movr(4, 2),              // 2: mov; add; jgt, not taken
        alu64(ALU_ADD, 4, 8),    // 3
        jmpr(JMP_JGT, 4, 3, 3),  // 4
        movr(5, 4),              // 5: mov; and
        alu64(ALU_AND, 5, 0xff), // 6
        ldx(SIZE_DW, 0, 5, 0),   // 7: address 8: no region
        exit(),                  // 8
    ];
    let (r, steps) = agrees_with_stepping_in_every_mode(&faulting);
    let f = r.unwrap_err();
    // The faulting load is counted, as stepping counts it.
    assert_eq!((f.pc, steps), (7, 8));
}

/// A loop of `rounds` rounds whose body is one long stretch (no jump taken
/// but the loop's own): a 64-bit immediate and a function address (one
/// instruction in two slots each), a `mov; add` and an `add; jcc` group, with
/// `general` an atomic (for the general loop) in the middle, a jump to the next slot
/// taken in odd rounds, an r10-based store when `frame`, and a load through
/// r6, which walks down the stack by 64 bytes a round: with `fault` it
/// leaves the stack in the 8th round.
fn stretch_loop(rounds: i32, general: bool, frame: bool, fault: bool) -> Vec<RawInsn> {
    let mut p = vec![mov(1, 0), mov(0, 0), movr(6, 10), movr(8, 10)];
    let head = p.len();
    p.extend(lddw(2, 0x1_0000_0001));
    p.extend([
        alu64r(ALU_ADD, 0, 2),
        movr(3, 1),
        alu64(ALU_ADD, 3, 7),
        alu64r(ALU_ADD, 0, 3),
        if general {
            atomic(SIZE_DW, 10, 1, -8, ATOMIC_ADD)
        } else {
            stx(SIZE_DW, 8, 1, -8)
        },
        jmp(JMP_JSET, 1, 1, 0),
    ]);
    let func = p.len();
    p.extend(ld_func(5, 0)); // the target is patched below
    p.extend([
        if frame {
            stx(SIZE_DW, 10, 0, -16)
        } else {
            movr(7, 0)
        },
        alu64(ALU_ADD, 6, if fault { -64 } else { 0 }),
        ldx(SIZE_DW, 4, 6, -8),
        alu64r(ALU_ADD, 0, 4),
        alu64(ALU_ADD, 1, 1),
    ]);
    let back = p.len();
    p.push(jmp(JMP_JLT, 1, rounds, (head as i16) - (back as i16) - 1));
    p.extend([ldx(SIZE_DW, 4, 8, -8), alu64r(ALU_ADD, 0, 4), exit()]);
    let sub = p.len();
    p[func] = ld_func(5, (sub - func - 1) as i32)[0];
    p.extend([mov(0, 77), exit()]);
    p
}

#[test]
fn long_straight_stretches_agree_with_stepping_under_every_budget_and_pause() {
    // At full speed the counter is kept per stretch (`run_stretches`) while
    // it covers a whole stretch, and per instruction after: runs, pauses and
    // budgets above and below the program's length in slots, stops for the
    // general loop in the middle of a stretch and faults in one must all
    // give the counts stepping gives.
    // Without `general` a stretch runs from the loop's head to its jump
    // with no stop, so a counter that runs out inside one shows.
    for (general, frame) in [(true, false), (true, true), (false, false), (false, true)] {
        let what = format!("general: {general}, frame: {frame}");
        let rounds = 12;
        let p = stretch_loop(rounds, general, frame, false);
        let (r, steps) = agrees_with_stepping_in_every_mode(&p);
        let rounds = rounds as u64;
        // 14 instructions a round; 4 before the loop, 3 after.
        assert!(
            steps > 5 * p.len() as u64,
            "{steps} steps, {} slots",
            p.len()
        );
        assert_eq!(steps, 4 + 14 * rounds + 3, "{what}");
        // Per round i: the immediate, r1 + 7, and the load of r10 - 8 where
        // the atomic has summed 0..=i so far (the store: put i); at the end
        // that once more.
        let sums = rounds * (rounds - 1) / 2;
        let (running, last) = if general {
            ((rounds - 1) * rounds * (rounds + 1) / 6, sums)
        } else {
            (sums, rounds - 1)
        };
        assert_eq!(
            r,
            Ok(rounds * 0x1_0000_0001 + sums + 7 * rounds + running + last),
            "{what}"
        );

        let p = stretch_loop(rounds as i32, general, frame, true);
        let (r, steps) = agrees_with_stepping_in_every_mode(&p);
        let f = r.unwrap_err();
        // The load of the 8th round, its step counted.
        assert!(
            matches!(
                f.kind,
                FaultKind::OutOfBounds { .. } | FaultKind::NoRegion { .. }
            ),
            "{f}"
        );
        assert_eq!((f.pc, steps), (16, 4 + 14 * 7 + 11), "{what}");
    }
}

/// An environment with global data maps: map fd 1 is a writable `.data`,
/// map fd 2 a read-only `.rodata`; helper 1 returns a fresh 8-byte buffer and
/// helper 2 frees the region r1 points into.
#[derive(Default)]
struct GlobalsEnv {
    regions: std::collections::HashMap<u64, u64>,
}

impl Env for GlobalsEnv {
    fn call_helper(&mut self, id: i32, call: &mut HelperCall<'_>) -> Result<HelperOutcome, Fault> {
        match id {
            1 => Ok(HelperOutcome::Return(
                call.alloc(RegionKind::HelperBuffer { helper: 1 }, vec![7; 8], true)
                    .1,
            )),
            2 => {
                let (rid, _, _) = call
                    .region_of(call.arg(1))
                    .ok_or_else(|| call.error(2, "not a pointer"))?;
                call.free(rid);
                Ok(HelperOutcome::Return(0))
            }
            _ => Err(call.fault(FaultKind::UnknownHelper { id })),
        }
    }
    fn resolve_imm64(
        &mut self,
        kind: Imm64Kind,
        imm: u64,
        call: &mut HelperCall<'_>,
    ) -> Result<u64, Fault> {
        assert_eq!(kind, Imm64Kind::MapValue);
        let fd = imm & 0xffff_ffff;
        let off = imm >> 32;
        let base = match self.regions.get(&fd) {
            Some(&a) => a,
            None => {
                let (_, a) = call.alloc(
                    RegionKind::GlobalData { map: fd as u32 },
                    vec![0; 16],
                    fd == 1,
                );
                self.regions.insert(fd, a);
                a
            }
        };
        Ok(base + off)
    }
}

#[test]
fn global_data_rodata_is_read_only_and_freed_regions_fault() {
    let data = ld_map(1, PSEUDO_MAP_VALUE, 1, 8);
    let rodata = ld_map(1, PSEUDO_MAP_VALUE, 2, 0);
    let p = [
        data[0],
        data[1],
        st(SIZE_DW, 1, 0, 42),
        ldx(SIZE_DW, 0, 1, 0),
        exit(),
    ];
    assert_eq!(
        run_with(&p, &mut GlobalsEnv::default(), &Context::none()).unwrap(),
        42
    );
    let p = [data[0], data[1], st(SIZE_DW, 1, 8, 42), exit()];
    let f = run_with(&p, &mut GlobalsEnv::default(), &Context::none()).unwrap_err();
    assert!(
        matches!(
            f.kind,
            FaultKind::OutOfBounds {
                region: RegionKind::GlobalData { map: 1 },
                offset: 16,
                ..
            }
        ),
        "{f}"
    );
    let p = [rodata[0], rodata[1], st(SIZE_W, 1, 0, 1), exit()];
    let f = run_with(&p, &mut GlobalsEnv::default(), &Context::none()).unwrap_err();
    assert!(
        matches!(
            f.kind,
            FaultKind::ReadOnly {
                region: RegionKind::GlobalData { map: 2 },
                ..
            }
        ),
        "{f}"
    );
    // A helper buffer, used, freed, used again.
    let p = [
        call(1),
        movr(6, 0),
        ldx(SIZE_B, 7, 6, 0),
        movr(1, 6),
        call(2),
        ldx(SIZE_B, 0, 6, 0),
        exit(),
    ];
    let f = run_with(&p, &mut GlobalsEnv::default(), &Context::none()).unwrap_err();
    assert_eq!(f.pc, 5);
    assert!(
        matches!(
            f.kind,
            FaultKind::Freed {
                region: RegionKind::HelperBuffer { helper: 1 },
                ..
            }
        ),
        "{f}"
    );
    // Unresolved map references are faults in an environment without maps.
    let f = run(&[data[0], data[1], exit()]).unwrap_err();
    assert!(matches!(f.kind, FaultKind::UnresolvedImm64 { .. }), "{f}");
}

// ---- calls -----------------------------------------------------------------

#[test]
fn local_calls_preserve_r6_to_r9_and_get_their_own_stack() {
    // main: r6 = 6; *(r10-8) = 1; call f; r0 += r6; r0 += *(r10-8); exit
    // f:    r6 = 100; *(r10-8) = 50; r0 = *(r10-8); exit
    let p = [
        mov(6, 6),
        st(SIZE_DW, 10, -8, 1),
        call_local(3),
        alu64r(ALU_ADD, 0, 6),
        ldx(SIZE_DW, 1, 10, -8),
        alu64r(ALU_ADD, 0, 1),
        exit(),
        mov(6, 100),
        st(SIZE_DW, 10, -8, 50),
        ldx(SIZE_DW, 0, 10, -8),
        exit(),
    ];
    // Fix the call offset: target is slot 7 = 2 + 1 + 4.
    let mut p = p.to_vec();
    p[2] = call_local(4);
    assert_eq!(r0(&p), 50 + 6 + 1);
}

#[test]
fn call_depth_is_limited_to_8_frames() {
    // f calls itself forever.
    let p = [call_local(-1), exit()];
    let p = [call_local(0), exit(), p[0], p[1]];
    let mut p = p.to_vec();
    p[0] = call_local(1);
    p[2] = call_local(-1);
    let f = run(&p).unwrap_err();
    assert_eq!(f.kind, FaultKind::CallDepth { frames: 9 });
}

#[test]
fn combined_stack_limit_applies_when_depths_are_known() {
    // main calls f which calls g; each frame 256 bytes -> 768 > 512.
    let p = [
        call_local(1),
        exit(),
        call_local(1),
        exit(),
        mov(0, 1),
        exit(),
    ];
    let mut prog = program(&p);
    prog.set_stack_depths(&[256, 256, 256]).unwrap();
    let mut m = Machine::new(prog.clone());
    m.enforce_stack_limit(true);
    let f = m.run_context(&mut NoHelpers, &Context::none()).unwrap_err();
    assert_eq!(
        f.kind,
        FaultKind::StackLimit {
            needed: 768,
            limit: 512
        }
    );
    prog.set_stack_depths(&[256, 128, 128]).unwrap();
    let mut m = Machine::new(prog);
    m.enforce_stack_limit(true);
    assert_eq!(m.run_context(&mut NoHelpers, &Context::none()).unwrap(), 1);
    assert_eq!(
        m.memory().region(ids::STACK0 + 2).unwrap().bytes().len(),
        128
    );
}

#[test]
fn callx_calls_a_function_address() {
    // r1 = &f; callx r1; exit   f: r0 = 77; exit
    let f = ld_func(1, 3);
    let p = [f[0], f[1], callx(1), exit(), mov(0, 77), exit()];
    assert_eq!(r0(&p), 77);
    let p = [
        mov(1, 0),
        lddw(1, code_address(0, 1))[0],
        lddw(1, code_address(0, 1))[1],
        callx(1),
        exit(),
    ];
    let e = run(&p).unwrap_err();
    assert!(matches!(e.kind, FaultKind::BadCallTarget { .. }), "{e}");
}

/// `bpf_loop(n, callback, ctx, flags)` as helper 181, and a tail-call helper 12.
struct LoopEnv {
    tail_target: Option<usize>,
}

impl Env for LoopEnv {
    fn call_helper(&mut self, id: i32, call: &mut HelperCall<'_>) -> Result<HelperOutcome, Fault> {
        match id {
            181 => self.resume(Callee::Helper(181), 0, 0, call),
            12 => Ok(self
                .tail_target
                .map_or(HelperOutcome::KeepR0, HelperOutcome::TailCall)),
            _ => Err(call.fault(FaultKind::UnknownHelper { id })),
        }
    }
    fn resume(
        &mut self,
        callee: Callee,
        state: u64,
        r0: u64,
        call: &mut HelperCall<'_>,
    ) -> Result<HelperOutcome, Fault> {
        assert_eq!(callee, Callee::Helper(181));
        let [n, cb, ctx, _, _] = call.args();
        let done = state; // iterations finished so far
        if done > 0 && r0 == 1 || done >= n {
            return Ok(HelperOutcome::Return(done));
        }
        Ok(HelperOutcome::Callback {
            target: cb,
            args: [done, ctx, 0, 0, 0],
            state: done + 1,
        })
    }
}

fn bpf_loop_program(n: i32) -> Vec<RawInsn> {
    // main: *(u64 *)(r10-8) = 0; r1 = n; r2 = &cb; r3 = r10 - 8; r4 = 0; call bpf_loop;
    //       r0 = r0 << 32 | *(r10-8); exit
    // cb(i, ctx): *(u64 *)ctx += i; r0 = (i == 4); exit
    let f = ld_func(2, 10);
    vec![
        st(SIZE_DW, 10, -8, 0),
        mov(1, n),
        f[0],
        f[1],
        movr(3, 10),
        alu64(ALU_ADD, 3, -8),
        mov(4, 0),
        call(181),
        alu64(ALU_LSH, 0, 32),
        ldx(SIZE_DW, 1, 10, -8),
        alu64r(ALU_OR, 0, 1),
        exit(),
        // cb at slot 12 (ld_func at slot 2: 2 + 1 + 10 = 13?) -> see assertion below
        ldx(SIZE_DW, 4, 2, 0),
        alu64r(ALU_ADD, 4, 1),
        stx(SIZE_DW, 2, 4, 0),
        mov(0, 0),
        jmp(JMP_JNE, 1, 4, 1),
        mov(0, 1),
        exit(),
    ]
}

#[test]
fn callbacks_run_the_subprogram_per_iteration() {
    let mut p = bpf_loop_program(3);
    // The callback starts at slot 12; ld_imm64 at slot 2 jumps relative to slot 3.
    p[2] = ld_func(2, 9)[0];
    assert_eq!(
        run_with(&p, &mut LoopEnv { tail_target: None }, &Context::none()).unwrap(),
        (3 << 32) | 3
    );
    // The callback stops the loop by returning 1 at i == 4.
    let mut p = bpf_loop_program(10);
    p[2] = ld_func(2, 9)[0];
    assert_eq!(
        run_with(&p, &mut LoopEnv { tail_target: None }, &Context::none()).unwrap(),
        (5 << 32) | 10
    );
}

#[test]
fn tail_calls_switch_programs_and_stop_after_33() {
    // prog 0: r6 = 1; tail_call; r0 = 100 (only if the tail call failed); exit
    // prog 1: tail-calls itself; when that fails: r0 = 7; exit
    let p0 = program(&[mov(6, 1), call(12), mov(0, 100), exit()]);
    let p1 = program(&[alu64(ALU_ADD, 6, 1), call(12), movr(0, 6), exit()]);
    let mut m = Machine::with_programs(vec![p0.clone(), p1]);
    m.start(0, &Context::none()).unwrap();
    let r = m
        .run(&mut LoopEnv {
            tail_target: Some(1),
        })
        .unwrap();
    assert_eq!(m.tail_calls(), 33);
    // r6 counts program 1's runs: 1 + 33.
    assert_eq!(r, 34);
    // An empty slot: continue after the call.
    let mut m = Machine::new(p0);
    assert_eq!(
        m.run_context(&mut LoopEnv { tail_target: None }, &Context::none())
            .unwrap(),
        100
    );
}

#[test]
fn single_steps_follow_tail_calls_into_other_programs_and_undo_back() {
    // As above: each step runs (and reports) the program its frame runs.
    let p0 = program(&[mov(6, 1), call(12), mov(0, 100), exit()]);
    let p1 = program(&[alu64(ALU_ADD, 6, 1), call(12), movr(0, 6), exit()]);
    let mut env = LoopEnv {
        tail_target: Some(1),
    };
    let mut m = Machine::with_programs(vec![p0, p1]);
    m.start(0, &Context::none()).unwrap();
    let start_regs = m.regs().to_vec();
    let mut steps = Vec::new();
    let r0 = loop {
        let s = m.step(&mut env);
        match s.outcome {
            StepOutcome::Running => steps.push(s),
            StepOutcome::Exited(r0) => {
                steps.push(s);
                break r0;
            }
            StepOutcome::Faulted(f) => panic!("{f}"),
        }
    };
    assert_eq!(r0, 34);
    assert_eq!(m.tail_calls(), 33);
    // Program 0 runs its first two instructions, then program 1, entered 33
    // times: 32 times add and call, then add, call (failing), mov, exit.
    let progs: Vec<(usize, usize)> = steps.iter().map(|s| (s.prog, s.pc)).collect();
    assert_eq!(progs[..4], [(0, 0), (0, 1), (1, 0), (1, 1)]);
    assert_eq!(progs[progs.len() - 2..], [(1, 2), (1, 3)]);
    assert!(progs[2..].iter().all(|&(prog, _)| prog == 1));
    assert_eq!(steps.len(), 2 + 2 * 32 + 4);
    while let Some(s) = steps.pop() {
        m.undo(&s);
        assert_eq!(m.current_prog(), s.prog);
        assert_eq!(m.pc(), s.pc);
    }
    assert_eq!(m.regs(), &start_regs[..]);
    assert_eq!(m.tail_calls(), 0);
    assert_eq!(m.current_prog(), 0);
}

#[test]
fn may_goto_falls_through_for_the_budget_then_jumps() {
    // r0 = 0; loop: may_goto +2; r0 += 1; ja loop; exit
    let p = [mov(0, 0), may_goto(2), alu64(ALU_ADD, 0, 1), ja(-3), exit()];
    let mut m = Machine::new(program(&p));
    m.set_config(Config {
        may_goto_budget: 1000,
        ..Config::default()
    });
    assert_eq!(
        m.run_context(&mut NoHelpers, &Context::none()).unwrap(),
        1000
    );
    assert_eq!(r0(&p), MAY_GOTO_BUDGET);
}

#[test]
fn logged_runs_across_may_goto_and_tail_calls_keep_each_steps_counters_and_undo_exactly() {
    // The counters a logged step starts with (may_goto budget, tail calls,
    // program) change only at general-path instructions and are kept once
    // per stretch of steps that share them: each step's undo must still
    // restore its own. Program 0 stores in a may_goto loop, then
    // tail-calls program 1, which stores and tail-calls itself to the limit.
    let p0 = program(&[
        mov(0, 0),
        may_goto(3),
        stx(SIZE_DW, 10, 0, -8),
        alu64(ALU_ADD, 0, 1),
        ja(-4),
        mov(6, 1),
        call(12),
        mov(0, 100),
        exit(),
    ]);
    let p1 = program(&[
        alu64(ALU_ADD, 6, 1),
        stx(SIZE_DW, 10, 6, -16),
        call(12),
        movr(0, 6),
        exit(),
    ]);
    let fresh = || {
        let mut m = Machine::with_programs(vec![p0.clone(), p1.clone()]);
        m.set_config(Config {
            may_goto_budget: 5,
            ..Config::default()
        });
        m.start(0, &Context::none()).unwrap();
        m
    };
    let mut env = LoopEnv {
        tail_target: Some(1),
    };
    let mut m = fresh();
    let mut snapshots = vec![m.state().clone()];
    let mut steps = Vec::new();
    loop {
        let s = m.step(&mut env);
        let running = s.outcome == StepOutcome::Running;
        steps.push(s);
        snapshots.push(m.state().clone());
        if !running {
            break;
        }
    }
    assert_eq!(steps.last().unwrap().outcome, StepOutcome::Exited(34));
    for chunk in [1, 2, 3, 5, 8, u64::MAX] {
        let mut lm = fresh();
        let mut log = StepLog::new();
        while let RunStop::Paused = lm.run_logged(&mut env, chunk, &mut log).unwrap() {
            assert_eq!(lm.state(), &snapshots[log.len()], "chunk {chunk}");
        }
        assert_eq!(lm.state(), m.state(), "chunk {chunk}");
        assert_eq!(log.len(), steps.len(), "chunk {chunk}");
        for (i, s) in steps.iter().enumerate() {
            let (prog, pc, effects) = log.step(i).unwrap();
            let effects: Vec<Effect> = effects.map(|e| e.into_owned()).collect();
            let expected: Vec<Effect> = s.effects.iter().map(|e| e.into_owned()).collect();
            assert_eq!(
                (prog, pc, effects),
                (s.prog, s.pc, expected),
                "chunk {chunk}, step {i}"
            );
        }
        while lm.undo_logged(&mut log) {
            assert_eq!(
                lm.state(),
                &snapshots[log.len()],
                "chunk {chunk}: undoing step {}",
                log.len()
            );
        }
    }
}

// ---- packets and contexts --------------------------------------------------

const FRAME: [u8; 18] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x00, 0xde, 0xad, 0xbe, 0xef,
];

#[test]
fn ld_abs_and_ld_ind_are_big_endian_and_end_the_program_when_out_of_bounds() {
    let ctx = Context::skb(SkbProgram::SocketFilter, &FRAME, SkBuff::default());
    let abs = |size, imm| ins(CLASS_LD | MODE_ABS | size, 0, 0, 0, imm);
    let ind = |size, s, imm| ins(CLASS_LD | MODE_IND | size, 0, s, 0, imm);
    let go = |p: &[RawInsn]| run_with(p, &mut NoHelpers, &ctx).unwrap();
    assert_eq!(go(&[abs(SIZE_H, 12), exit()]), 0x0800);
    assert_eq!(go(&[abs(SIZE_W, 14), exit()]), 0xdead_beef);
    assert_eq!(go(&[mov(7, 10), ind(SIZE_B, 7, 5), exit()]), 0xad);
    // Out of bounds: the program ends at once with r0 = 0.
    assert_eq!(go(&[abs(SIZE_W, 15), mov(0, 9), exit()]), 0);
    assert_eq!(go(&[mov(7, -1), ind(SIZE_B, 7, 0), mov(0, 9), exit()]), 0);
}

#[test]
fn xdp_context_loads_yield_packet_pointers() {
    // r0 = data_end - data; plus meta length in the high half.
    let p = [
        ldx(SIZE_W, 2, 1, 0),
        ldx(SIZE_W, 3, 1, 4),
        ldx(SIZE_W, 4, 1, 8),
        movr(0, 3),
        alu64r(ALU_SUB, 0, 2),
        alu64r(ALU_SUB, 2, 4),
        alu64(ALU_LSH, 2, 32),
        alu64r(ALU_OR, 0, 2),
        exit(),
    ];
    let ctx = Context::xdp(
        &FRAME,
        &[1, 2, 3, 4],
        XdpMd {
            ingress_ifindex: 3,
            rx_queue_index: 1,
            egress_ifindex: 0,
        },
    );
    assert_eq!(run_with(&p, &mut NoHelpers, &ctx).unwrap(), (4 << 32) | 18);
    assert_eq!(
        run_with(&[ldx(SIZE_W, 0, 1, 12), exit()], &mut NoHelpers, &ctx).unwrap(),
        3
    );
    // Reading the metadata through data_meta.
    assert_eq!(
        run_with(
            &[ldx(SIZE_W, 2, 1, 8), ldx(SIZE_B, 0, 2, 3), exit()],
            &mut NoHelpers,
            &ctx
        )
        .unwrap(),
        4
    );
    // 8-byte load of a pointer field and any write are refused.
    let f = run_with(&[ldx(SIZE_DW, 0, 1, 0), exit()], &mut NoHelpers, &ctx).unwrap_err();
    assert!(
        matches!(
            f.kind,
            FaultKind::BadContextAccess {
                offset: 0,
                size: 8,
                write: false,
                ..
            }
        ),
        "{f}"
    );
    let f = run_with(&[st(SIZE_W, 1, 12, 0), exit()], &mut NoHelpers, &ctx).unwrap_err();
    assert!(
        matches!(f.kind, FaultKind::BadContextAccess { write: true, .. }),
        "{f}"
    );
    // The packet is writable; one byte past data_end is not.
    let p = [
        ldx(SIZE_W, 2, 1, 0),
        st(SIZE_B, 2, 17, 0x11),
        ldx(SIZE_B, 0, 2, 17),
        exit(),
    ];
    assert_eq!(run_with(&p, &mut NoHelpers, &ctx).unwrap(), 0x11);
    let p = [ldx(SIZE_W, 2, 1, 0), ldx(SIZE_B, 0, 2, 18), exit()];
    let f = run_with(&p, &mut NoHelpers, &ctx).unwrap_err();
    assert!(
        matches!(f.kind, FaultKind::OutOfBounds { region: RegionKind::Packet, offset, .. } if offset == XDP_HEADROOM as i64 + 18),
        "{f}"
    );
}

#[test]
fn sk_buff_fields_follow_the_program_type() {
    let fields = SkBuff {
        mark: 5,
        protocol: 0x0008,
        cb: [1, 2, 3, 4, 5],
        tstamp: 1 << 40,
        ..SkBuff::default()
    };
    let tc = Context::skb(SkbProgram::Tc, &FRAME, fields);
    let sock = Context::skb(SkbProgram::SocketFilter, &FRAME, fields);
    let go = |p: &[RawInsn], c: &Context| run_with(p, &mut NoHelpers, c);
    assert_eq!(
        go(&[ldx(SIZE_W, 0, 1, sk_buff::LEN as i16), exit()], &tc).unwrap(),
        18
    );
    assert_eq!(
        go(&[ldx(SIZE_W, 0, 1, sk_buff::MARK as i16), exit()], &tc).unwrap(),
        5
    );
    // Narrow loads of plain fields, 8-byte loads of tstamp, 8-byte cb access.
    assert_eq!(
        go(&[ldx(SIZE_B, 0, 1, sk_buff::PROTOCOL as i16), exit()], &tc).unwrap(),
        0x08
    );
    assert_eq!(
        go(&[ldx(SIZE_DW, 0, 1, sk_buff::TSTAMP as i16), exit()], &tc).unwrap(),
        1 << 40
    );
    assert_eq!(
        go(&[ldx(SIZE_DW, 0, 1, sk_buff::CB as i16), exit()], &tc).unwrap(),
        (2 << 32) | 1
    );
    // data_end - data.
    let p = [
        ldx(SIZE_W, 2, 1, 76),
        ldx(SIZE_W, 0, 1, 80),
        alu64r(ALU_SUB, 0, 2),
        exit(),
    ];
    assert_eq!(go(&p, &tc).unwrap(), 18);
    // TC may write mark; a socket filter may not, and may not read data.
    let p = [
        st(SIZE_W, 1, sk_buff::MARK as i16, 9),
        ldx(SIZE_W, 0, 1, sk_buff::MARK as i16),
        exit(),
    ];
    assert_eq!(go(&p, &tc).unwrap(), 9);
    assert!(matches!(
        go(&p, &sock).unwrap_err().kind,
        FaultKind::BadContextAccess { write: true, .. }
    ));
    assert!(matches!(
        go(&[ldx(SIZE_W, 0, 1, 76), exit()], &sock)
            .unwrap_err()
            .kind,
        FaultKind::BadContextAccess { .. }
    ));
    // Socket filters may write cb; nobody may write len.
    let p = [
        st(SIZE_W, 1, sk_buff::CB as i16 + 16, 9),
        ldx(SIZE_W, 0, 1, sk_buff::CB as i16 + 16),
        exit(),
    ];
    assert_eq!(go(&p, &sock).unwrap(), 9);
    assert!(go(&[st(SIZE_W, 1, 0, 1), exit()], &tc).is_err());
    // TC may write the packet; a cgroup_skb program may not.
    let cg = Context::skb(SkbProgram::CgroupSkb, &FRAME, fields);
    let p = [
        ldx(SIZE_W, 2, 1, 76),
        st(SIZE_B, 2, 0, 1),
        mov(0, 1),
        exit(),
    ];
    assert_eq!(go(&p, &tc).unwrap(), 1);
    assert!(matches!(
        go(&p, &cg).unwrap_err().kind,
        FaultKind::ReadOnly {
            region: RegionKind::Packet,
            ..
        }
    ));
}

#[test]
fn context_loads_among_straight_line_code_agree_in_every_mode() {
    // Context loads run inside the straight-line loop; running, pausing
    // after every instruction, stepping and logging must give the same
    // values, counts and faults as before, and undo exactly.
    let fields = SkBuff {
        mark: 7,
        ..SkBuff::default()
    };
    let tc = Context::skb(SkbProgram::Tc, &FRAME, fields);
    let good = [
        mov(6, 1),
        ldx(SIZE_W, 2, 1, sk_buff::DATA as i16),
        alu64(ALU_ADD, 6, 2),
        ldx(SIZE_W, 3, 1, sk_buff::DATA_END as i16),
        ldx(SIZE_W, 4, 1, sk_buff::LEN as i16),
        ldx(SIZE_H, 5, 1, sk_buff::MARK as i16),
        movr(0, 3),
        alu64r(ALU_SUB, 0, 2),
        alu64(ALU_LSH, 0, 8),
        alu64r(ALU_OR, 0, 5),
        alu64(ALU_LSH, 0, 8),
        alu64r(ALU_OR, 0, 4),
        exit(),
    ];
    // data_end - data = 18, mark = 7, len = 18.
    let expect = (18 << 16) | (7 << 8) | 18;
    // A refused load (8 bytes of a packet pointer) after straight-line code.
    let bad = [
        mov(0, 1),
        ldx(SIZE_W, 2, 1, sk_buff::DATA as i16),
        alu64(ALU_ADD, 0, 2),
        ldx(SIZE_DW, 3, 1, sk_buff::DATA_END as i16),
        exit(),
    ];
    for (slots, want) in [(&good[..], Ok(expect)), (&bad[..], Err(3usize))] {
        let mut m = Machine::new(program(slots));
        let full = m.run_context(&mut NoHelpers, &tc);
        let full_steps = m.steps();
        match (&full, want) {
            (Ok(r0), Ok(w)) => assert_eq!(*r0, w, "{r0:#x}"),
            (Err(f), Err(pc)) => {
                assert_eq!(f.pc, pc);
                assert!(
                    matches!(
                        f.kind,
                        FaultKind::BadContextAccess {
                            offset: 80,
                            size: 8,
                            ..
                        }
                    ),
                    "{f}"
                );
            }
            other => panic!("unexpected {other:?}"),
        }
        // One instruction at a time.
        m.start(0, &tc).unwrap();
        let paused = loop {
            match m.run_steps(&mut NoHelpers, 1) {
                Ok(RunStop::Paused) => {}
                Ok(RunStop::Exited(r0)) => break Ok(r0),
                Err(f) => break Err(f),
            }
        };
        assert_eq!(paused, full);
        assert_eq!(m.steps(), full_steps);
        // Stepping: a context load writes one register, with its old value.
        m.start(0, &tc).unwrap();
        let fresh = m.state().clone();
        let mut steps = Vec::new();
        let stepped = loop {
            let s = m.step(&mut NoHelpers);
            let outcome = s.outcome.clone();
            if s.pc == 1 {
                assert_eq!(s.effects.len(), 1);
                assert_eq!(m.reg(2), m.memory().packet().unwrap().data);
            }
            steps.push(s);
            match outcome {
                StepOutcome::Running => {}
                StepOutcome::Exited(r0) => break Ok(r0),
                StepOutcome::Faulted(f) => break Err(f),
            }
        };
        assert_eq!(stepped.as_ref().ok(), full.as_ref().ok());
        assert_eq!(
            stepped.as_ref().err().map(|f| (f.pc, &f.kind)),
            full.as_ref().err().map(|f| (f.pc, &f.kind))
        );
        for s in steps.iter().rev() {
            m.undo(s);
        }
        assert_eq!(m.state(), &fresh);
        // Logged, then undone step by step.
        let mut log = StepLog::new();
        let logged = loop {
            match m.run_logged(&mut NoHelpers, u64::MAX, &mut log) {
                Ok(RunStop::Paused) => {}
                Ok(RunStop::Exited(r0)) => break Ok(r0),
                Err(f) => break Err(f),
            }
        };
        assert_eq!(logged.as_ref().ok(), full.as_ref().ok());
        assert_eq!(m.steps(), full_steps);
        while m.undo_logged(&mut log) {}
        assert_eq!(m.state(), &fresh);
    }
}

#[test]
fn tracing_contexts_are_read_only_raw_bytes() {
    let mut regs = [0u64; 21];
    regs[14] = 0xabc; // rdi
    let ctx = Context::pt_regs(&regs);
    assert_eq!(
        run_with(&[ldx(SIZE_DW, 0, 1, 112), exit()], &mut NoHelpers, &ctx).unwrap(),
        0xabc
    );
    assert!(run_with(&[st(SIZE_DW, 1, 112, 0), exit()], &mut NoHelpers, &ctx).is_err());
    assert!(run_with(&[ldx(SIZE_DW, 0, 1, 168), exit()], &mut NoHelpers, &ctx).is_err());
    let ctx = Context::raw_tracepoint(&[5, 6]);
    assert_eq!(
        run_with(&[ldx(SIZE_DW, 0, 1, 8), exit()], &mut NoHelpers, &ctx).unwrap(),
        6
    );
    let ctx = Context::tracepoint(vec![1, 0, 0, 0, 9, 0, 0, 0]);
    assert_eq!(
        run_with(&[ldx(SIZE_W, 0, 1, 4), exit()], &mut NoHelpers, &ctx).unwrap(),
        9
    );
    // Misaligned loads are refused, as the kernel does.
    assert!(run_with(&[ldx(SIZE_W, 0, 1, 2), exit()], &mut NoHelpers, &ctx).is_err());
}

/// Helper 44 moves the XDP data pointer by r2 bytes (like xdp_adjust_head).
struct AdjustEnv;

impl Env for AdjustEnv {
    fn call_helper(&mut self, id: i32, call: &mut HelperCall<'_>) -> Result<HelperOutcome, Fault> {
        let (meta, data, end, _) = call
            .memory()
            .packet_window()
            .ok_or_else(|| call.error(id, "no packet"))?;
        let new = (data as i64 + call.arg(2) as i64) as u32;
        call.set_packet_window(meta.min(new), new, end)?;
        Ok(HelperOutcome::Return(0))
    }
}

#[test]
fn context_pointers_follow_packet_adjustments() {
    // adjust by +14, then r0 = data_end - data.
    let p = [
        movr(6, 1),
        mov(2, 14),
        call(44),
        ldx(SIZE_W, 2, 6, 0),
        ldx(SIZE_W, 0, 6, 4),
        alu64r(ALU_SUB, 0, 2),
        exit(),
    ];
    let ctx = Context::xdp(&FRAME, &[], XdpMd::default());
    assert_eq!(run_with(&p, &mut AdjustEnv, &ctx).unwrap(), 4);
}

// ---- stepping and undo -----------------------------------------------------

#[test]
fn stepping_gives_the_same_result_as_running() {
    let mut p = bpf_loop_program(6);
    p[2] = ld_func(2, 9)[0];
    let mut m = Machine::new(program(&p));
    m.start(0, &Context::none()).unwrap();
    let mut env = LoopEnv { tail_target: None };
    let mut steps = 0;
    let r = loop {
        let s = m.step(&mut env);
        steps += 1;
        match s.outcome {
            StepOutcome::Running => {}
            StepOutcome::Exited(r0) => break r0,
            StepOutcome::Faulted(f) => panic!("{f}"),
        }
    };
    let full = run_with(&p, &mut LoopEnv { tail_target: None }, &Context::none()).unwrap();
    assert_eq!(r, full);
    assert_eq!(m.steps(), steps);
    assert_eq!(m.status(), Status::Exited(full));
}

/// An environment answering everything the program of `everything_machine` calls.
struct Everything(LoopEnv, GlobalsEnv);

impl Env for Everything {
    fn call_helper(&mut self, id: i32, call: &mut HelperCall<'_>) -> Result<HelperOutcome, Fault> {
        match id {
            181 | 12 => self.0.call_helper(id, call),
            44 => AdjustEnv.call_helper(id, call),
            _ => self.1.call_helper(id, call),
        }
    }
    fn resume(
        &mut self,
        c: Callee,
        s: u64,
        r0: u64,
        call: &mut HelperCall<'_>,
    ) -> Result<HelperOutcome, Fault> {
        self.0.resume(c, s, r0, call)
    }
    fn resolve_imm64(
        &mut self,
        k: Imm64Kind,
        imm: u64,
        call: &mut HelperCall<'_>,
    ) -> Result<u64, Fault> {
        self.1.resolve_imm64(k, imm, call)
    }
}

/// A started machine whose program changes everything a step can change:
/// calls, callbacks, stack and packet stores, helper allocations and frees,
/// packet window moves.
fn everything_machine() -> (Machine, Everything) {
    let mut p = bpf_loop_program(5);
    p[2] = ld_func(2, 9)[0];
    // Prefix: allocate a buffer, write it, free it, store into the packet, adjust the head.
    let data = ld_map(6, PSEUDO_MAP_VALUE, 1, 0);
    let mut prefix = vec![
        movr(9, 1),
        call(1),
        st(SIZE_DW, 0, 0, 3),
        movr(1, 0),
        call(2),
        data[0],
        data[1],
        st(SIZE_DW, 6, 0, 77),
        ldx(SIZE_W, 2, 9, 0),
        st(SIZE_B, 2, 0, 0x55),
        mov(2, 2),
        call(44),
    ];
    prefix.extend(p);
    let mut m = Machine::new(program(&prefix));
    m.start(0, &Context::xdp(&FRAME, &[9, 9], XdpMd::default()))
        .unwrap();
    let env = Everything(LoopEnv { tail_target: None }, GlobalsEnv::default());
    (m, env)
}

#[test]
fn undoing_every_recorded_step_restores_the_exact_state() {
    let (mut m, mut env) = everything_machine();
    let mut snapshots = vec![m.state().clone()];
    let mut log = Vec::new();
    loop {
        let s = m.step(&mut env);
        let done = !matches!(s.outcome, StepOutcome::Running);
        if let StepOutcome::Faulted(f) = &s.outcome {
            panic!("{f}");
        }
        log.push(s);
        snapshots.push(m.state().clone());
        if done {
            break;
        }
    }
    assert!(log.len() > 40, "the program ran {} steps", log.len());
    assert!(log.iter().any(|s| {
        s.effects
            .iter()
            .any(|e| matches!(*e, Effect::FramePopped { .. }))
    }));
    assert!(log.iter().any(|s| {
        s.effects
            .iter()
            .any(|e| matches!(*e, Effect::RegionCreated { .. }))
    }));
    // Undo newest first; after each undo the state equals the recorded snapshot.
    while let Some(s) = log.pop() {
        m.undo(&s);
        assert_eq!(
            m.state(),
            &snapshots[log.len()],
            "after undoing step at pc {}",
            s.pc
        );
    }
    assert_eq!(m.state(), &snapshots[0]);
}

#[test]
fn a_logged_run_holds_every_step_and_undoes_exactly() {
    // Reference: step by step, with a snapshot before each step.
    let (mut m, mut env) = everything_machine();
    let mut snapshots = vec![m.state().clone()];
    let mut steps = Vec::new();
    loop {
        let s = m.step(&mut env);
        let done = !matches!(s.outcome, StepOutcome::Running);
        steps.push(s);
        snapshots.push(m.state().clone());
        if done {
            break;
        }
    }
    // The same run logged, in uneven chunks.
    let (mut lm, mut lenv) = everything_machine();
    let mut log = StepLog::new();
    let r0 = loop {
        match lm.run_logged(&mut lenv, 7, &mut log).unwrap() {
            RunStop::Paused => assert_eq!(lm.state(), &snapshots[log.len()]),
            RunStop::Exited(r0) => break r0,
        }
    };
    assert_eq!(
        Some(&StepOutcome::Exited(r0)),
        steps.last().map(|s| &s.outcome)
    );
    assert_eq!(lm.state(), m.state());
    assert_eq!(log.len(), steps.len());
    for (i, s) in steps.iter().enumerate() {
        let (prog, pc, effects) = log.step(i).unwrap();
        let effects: Vec<Effect> = effects.map(|e| e.into_owned()).collect();
        let expected: Vec<Effect> = s.effects.iter().map(Cow::into_owned).collect();
        assert_eq!((prog, pc, effects), (s.prog, s.pc, expected), "step {i}");
    }
    // Undo newest first; after each undo the state equals the snapshot.
    while lm.undo_logged(&mut log) {
        assert_eq!(
            lm.state(),
            &snapshots[log.len()],
            "after undoing step {}",
            log.len()
        );
    }
    assert_eq!(lm.state(), &snapshots[0]);
    assert!(log.is_empty());
}

#[test]
fn straight_line_register_writes_and_stores_record_their_exact_old_values() {
    // The straight-line loop records register writes and stores as plain
    // data (`push_reg`/`push_store`); single steps and logged runs must
    // both report each one with the value or bytes it replaced.
    let mut slots = Vec::new();
    slots.extend(lddw(1, 0x1122_3344_5566_7788));
    slots.extend([
        stx(SIZE_DW, 10, 1, -8), // stack bytes -8..0: 88 77 66 55 44 33 22 11
        mov(2, 0x1aa),
        stx(SIZE_B, 10, 2, -8),  // replaces 0x88
        stx(SIZE_H, 10, 2, -6),  // replaces 66 55
        stx(SIZE_W, 10, 2, -4),  // replaces 44 33 22 11
        st(SIZE_DW, 10, -8, -2), // replaces aa 77 aa 01 aa 01 00 00
        ldx(SIZE_W, 0, 10, -8),
        exit(),
    ]);
    let top = 512u32; // the stack depth the machine assumes without BTF
    let store = |offset: u32, len: u8, old: u64| {
        Effect::Store(SmallWrite {
            region: ids::STACK0,
            offset,
            len,
            old,
        })
    };
    let expected = vec![
        vec![Effect::Reg { reg: 1, old: 0 }],
        vec![store(top - 8, 8, 0)],
        vec![Effect::Reg { reg: 2, old: 0 }],
        vec![store(top - 8, 1, 0x88)],
        vec![store(top - 6, 2, 0x5566)],
        vec![store(top - 4, 4, 0x1122_3344)],
        vec![store(top - 8, 8, 0x0000_01aa_01aa_77aa)],
        vec![Effect::Reg { reg: 0, old: 0 }],
        vec![],
    ];

    let mut m = Machine::new(program(&slots));
    m.start(0, &Context::none()).unwrap();
    let mut snapshots = vec![m.state().clone()];
    let mut stepped = Vec::new();
    loop {
        let s = m.step(&mut NoHelpers);
        stepped.push(s.effects.iter().map(Cow::into_owned).collect::<Vec<_>>());
        snapshots.push(m.state().clone());
        if s.outcome != StepOutcome::Running {
            assert_eq!(s.outcome, StepOutcome::Exited(0xffff_fffe));
            break;
        }
    }
    assert_eq!(stepped, expected);

    let mut lm = Machine::new(program(&slots));
    lm.start(0, &Context::none()).unwrap();
    let mut log = StepLog::new();
    assert_eq!(
        lm.run_logged(&mut NoHelpers, u64::MAX, &mut log).unwrap(),
        RunStop::Exited(0xffff_fffe)
    );
    let logged: Vec<Vec<Effect>> = (0..log.len())
        .map(|i| log.step(i).unwrap().2.map(|e| e.into_owned()).collect())
        .collect();
    assert_eq!(logged, expected);
    while lm.undo_logged(&mut log) {
        assert_eq!(
            lm.state(),
            &snapshots[log.len()],
            "undoing step {}",
            log.len()
        );
    }
    assert_eq!(lm.state(), &snapshots[0]);
}

#[test]
fn loads_of_every_size_near_the_stack_top_agree_running_stepping_and_logging() {
    // Loads read eight bytes and mask them when the region holds eight from
    // the address, else the exact bytes (the last seven of a stack frame).
    let mut slots = Vec::new();
    slots.extend(lddw(1, 0x1122_3344_5566_7788));
    slots.extend(lddw(2, 0x99aa_bbcc_ddee_ff01));
    slots.extend([stx(SIZE_DW, 10, 1, -16), stx(SIZE_DW, 10, 2, -8), mov(0, 0)]);
    let mut want = 0u64;
    let stack: Vec<u8> = [0x1122_3344_5566_7788u64, 0x99aa_bbcc_ddee_ff01]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    for (size, n) in [(SIZE_B, 1), (SIZE_H, 2), (SIZE_W, 4), (SIZE_DW, 8)] {
        for off in -16i16..=-(n as i16) {
            slots.extend([
                ldx(size, 3, 10, off),
                alu64(ALU_LSH, 0, 3),
                alu64r(ALU_XOR, 0, 3),
            ]);
            let at = (16 + off) as usize;
            let mut a = [0u8; 8];
            a[..n].copy_from_slice(&stack[at..at + n]);
            want = (want << 3) ^ u64::from_le_bytes(a);
        }
    }
    slots.push(exit());
    assert_eq!(r0(&slots), want);

    let mut m = Machine::new(program(&slots));
    m.start(0, &Context::none()).unwrap();
    let stepped = loop {
        match m.step(&mut NoHelpers).outcome {
            StepOutcome::Running => {}
            StepOutcome::Exited(r0) => break r0,
            StepOutcome::Faulted(f) => panic!("{f}"),
        }
    };
    let mut lm = Machine::new(program(&slots));
    lm.start(0, &Context::none()).unwrap();
    let mut log = StepLog::new();
    assert_eq!(
        lm.run_logged(&mut NoHelpers, u64::MAX, &mut log).unwrap(),
        RunStop::Exited(want)
    );
    assert_eq!(stepped, want);
    assert_eq!((lm.steps(), log.len() as u64), (m.steps(), m.steps()));
    // A load one byte past the frame's top still faults.
    let f = run(&[ldx(SIZE_H, 0, 10, -1), exit()]).unwrap_err();
    assert!(matches!(f.kind, FaultKind::OutOfBounds { .. }), "{f}");
}

// ---- runs after runs: every run starts from the same state ------------------

/// r0 = the OR of every 8-byte word of a stack of `words` words (reads
/// only: a program without stores, whose runs leave the stack untouched).
fn stack_reader(words: i32) -> Vec<RawInsn> {
    vec![
        mov(0, 0),
        movr(2, 10),
        alu64(ALU_SUB, 2, words * 8),
        ldx(SIZE_DW, 3, 2, 0),
        alu64r(ALU_OR, 0, 3),
        alu64(ALU_ADD, 2, 8),
        jmpr(JMP_JLT, 2, 10, -4),
        exit(),
    ]
}

/// Writes non-zero bytes into a 512-byte stack, each way a run can:
/// 0: plain stores (the straight-line loop); 1: an atomic add (the general
/// loop); 2: a helper writing through a stack pointer (helper 1 with
/// r1 = r10 - 32), the program itself storing nothing.
fn stack_writer(how: u8) -> Vec<RawInsn> {
    let mut p = match how {
        0 => vec![st(SIZE_DW, 10, -8, -1), st(SIZE_B, 10, -512, 0x5a)],
        1 => vec![mov(1, 3), atomic(SIZE_DW, 10, 1, -256, ATOMIC_ADD)],
        _ => vec![movr(1, 10), alu64(ALU_ADD, 1, -32), call(1)],
    };
    p.extend([mov(0, 7), exit()]);
    p
}

/// Helper 1 writes eight 0xee bytes where r1 points.
struct StackScribbler;

impl Env for StackScribbler {
    fn call_helper(&mut self, id: i32, call: &mut HelperCall<'_>) -> Result<HelperOutcome, Fault> {
        if id != 1 {
            return Err(call.fault(FaultKind::UnknownHelper { id }));
        }
        call.write(call.arg(1), &[0xee; 8])?;
        Ok(HelperOutcome::Return(0))
    }
}

/// How a run is driven: at full speed, one `step` at a time, logged.
#[derive(Clone, Copy, Debug)]
enum Drive {
    Full,
    Step,
    Logged,
}

/// Runs program `entry` of `m` to its end as `drive` says: (r0, steps).
fn drive(m: &mut Machine, entry: usize, ctx: &Context, drive: Drive) -> (u64, u64) {
    let env = &mut StackScribbler;
    m.start(entry, ctx).expect("the run starts");
    let r0 = match drive {
        Drive::Full => m.run(env).unwrap_or_else(|f| panic!("fault: {f}")),
        Drive::Step => loop {
            match m.step(env).outcome {
                StepOutcome::Running => {}
                StepOutcome::Exited(r0) => break r0,
                StepOutcome::Faulted(f) => panic!("fault: {f}"),
            }
        },
        Drive::Logged => {
            let mut log = StepLog::new();
            match m.run_logged(env, u64::MAX, &mut log) {
                Ok(RunStop::Exited(r0)) => r0,
                other => panic!("the logged run did not exit: {other:?}"),
            }
        }
    };
    (r0, m.steps())
}

#[test]
fn every_run_starts_on_a_zeroed_stack_whatever_the_runs_before_wrote() {
    let mut small = program(&stack_reader(8));
    small.set_stack_depths(&[64]).unwrap();
    let overwriter = [
        st(SIZE_DW, 10, -8, -1),
        st(SIZE_DW, 10, -8, 0),
        mov(0, 0),
        exit(),
    ];
    let mut m = Machine::with_programs(vec![
        program(&stack_reader(64)),
        program(&stack_writer(0)),
        program(&stack_writer(1)),
        program(&stack_writer(2)),
        small,
        program(&overwriter),
    ]);
    let (reader, small) = (0, 4);
    let ctx = Context::none();
    let reader_steps = 3 + 64 * 4 + 1;
    let modes = [Drive::Full, Drive::Step, Drive::Logged];
    // The writers really write (at offsets 0 and 504, 256, 480).
    for (writer, offset, byte) in [(1, 0, 0x5a), (1, 504, 0xff), (2, 256, 3), (3, 480, 0xee)] {
        for mode in modes {
            drive(&mut m, reader, &ctx, mode);
            assert_eq!(drive(&mut m, writer, &ctx, mode).0, 7);
            let stack = m.memory().region(ids::STACK0).unwrap().bytes();
            assert_eq!(stack[offset], byte, "writer {writer}, {mode:?}");
        }
    }
    for writer_mode in modes {
        for reader_mode in modes {
            for writer in [1, 2, 3] {
                // A reader after a reader, after a writer, after a reader.
                assert_eq!(drive(&mut m, reader, &ctx, reader_mode), (0, reader_steps));
                assert_eq!(drive(&mut m, writer, &ctx, writer_mode).0, 7);
                assert_eq!(drive(&mut m, reader, &ctx, reader_mode), (0, reader_steps));
                assert_eq!(drive(&mut m, reader, &ctx, reader_mode), (0, reader_steps));
                // A smaller frame after a writer, then the full one again.
                drive(&mut m, writer, &ctx, writer_mode);
                assert_eq!(drive(&mut m, small, &ctx, reader_mode), (0, 3 + 8 * 4 + 1));
                assert_eq!(
                    m.memory().region(ids::STACK0).unwrap().bytes(),
                    &[0; 64][..]
                );
                drive(&mut m, writer, &ctx, writer_mode);
                assert_eq!(drive(&mut m, small, &ctx, reader_mode), (0, 3 + 8 * 4 + 1));
                assert_eq!(drive(&mut m, reader, &ctx, reader_mode), (0, reader_steps));
            }
        }
    }
    // Written between runs (a session editing memory), then a new run.
    drive(&mut m, reader, &ctx, Drive::Full);
    let top = address(ids::STACK0, 512);
    m.memory_mut().write(top - 16, &[9; 8]).unwrap();
    assert_eq!(drive(&mut m, reader, &ctx, Drive::Full), (0, reader_steps));
    // A store undone after a reader ran: the undo writes its old bytes
    // (0xff) back into the stack, which the next run must not see.
    m.start(5, &ctx).unwrap();
    m.step(&mut StackScribbler);
    let second = m.step(&mut StackScribbler);
    assert_eq!(drive(&mut m, reader, &ctx, Drive::Full), (0, reader_steps));
    m.undo(&second);
    assert_eq!(m.memory().read(top - 8, 8).unwrap(), &[0xff; 8]);
    assert_eq!(drive(&mut m, reader, &ctx, Drive::Full), (0, reader_steps));
}

/// The state a run ended in, for comparing two machines.
fn end_state(m: &Machine) -> (Vec<u64>, usize, u64, Status) {
    (m.regs().to_vec(), m.pc(), m.steps(), m.status())
}

#[test]
fn full_speed_runs_end_as_stepped_runs_whatever_the_pause_or_budget() {
    // Straight-line only; with a helper call in the middle; with a local
    // call (the callee's exit is not the run's); with a fault.
    let straight = [mov(0, 1), mov(1, 2), alu64r(ALU_ADD, 0, 1), exit()];
    let with_helper = [
        mov(6, 5),
        movr(1, 10),
        alu64(ALU_ADD, 1, -8),
        call(1),
        ldx(SIZE_DW, 0, 10, -8),
        alu64r(ALU_ADD, 0, 6),
        exit(),
    ];
    let with_local_call = [
        mov(6, 1),
        call_local(2),
        alu64r(ALU_ADD, 0, 6),
        exit(),
        mov(0, 40),
        exit(),
    ];
    let faulting = [mov(0, 1), ldx(SIZE_DW, 0, 0, 0), exit()];
    let expected_r0 = [Some(3), Some(0xeeee_eeee_eeee_eeee + 5), Some(41), None];
    let programs = [&straight[..], &with_helper, &with_local_call, &faulting];
    for (p, expected_r0) in programs.into_iter().zip(expected_r0) {
        // The reference: one step at a time; the state after each step.
        let mut reference = Vec::new();
        let mut m = Machine::new(program(p));
        m.start(0, &Context::none()).unwrap();
        reference.push(end_state(&m));
        let fault = loop {
            match m.step(&mut StackScribbler).outcome {
                StepOutcome::Running => reference.push(end_state(&m)),
                StepOutcome::Exited(r0) => {
                    reference.push(end_state(&m));
                    assert_eq!(Some(r0), expected_r0);
                    break None;
                }
                StepOutcome::Faulted(f) => break Some((f, m.pc(), m.steps())),
            }
        };
        assert_eq!(fault.is_none(), expected_r0.is_some());
        // Steps that complete (an exit included; a fault's step not).
        let done = reference.len() as u64 - 1;
        for n in 0..=done + 2 {
            // Paused after n instructions, then run to the end.
            let mut m = Machine::new(program(p));
            m.start(0, &Context::none()).unwrap();
            let r = m.run_steps(&mut StackScribbler, n);
            if n < done || (n == done && fault.is_some()) {
                assert_eq!(r, Ok(RunStop::Paused), "{p:?} paused after {n}");
                assert_eq!(end_state(&m), reference[n as usize], "paused after {n}");
                let r = m.run(&mut StackScribbler);
                match &fault {
                    None => {
                        assert_eq!(r.ok(), expected_r0);
                        assert_eq!(&end_state(&m), reference.last().unwrap());
                    }
                    Some((f, pc, steps)) => {
                        assert_eq!(r.as_ref(), Err(f));
                        assert_eq!((m.pc(), m.steps()), (*pc, *steps));
                    }
                }
            } else {
                match &fault {
                    None => {
                        assert_eq!(r, Ok(RunStop::Exited(expected_r0.unwrap())));
                        assert_eq!(&end_state(&m), reference.last().unwrap());
                    }
                    Some((f, pc, steps)) => {
                        assert_eq!(r.as_ref(), Err(f));
                        assert_eq!((m.pc(), m.steps()), (*pc, *steps));
                    }
                }
            }
            // A step budget of n: a budget fault in the same state as
            // stepping n times, or the run's own end.
            let mut m = Machine::new(program(p));
            m.set_config(Config {
                step_budget: n,
                ..Config::default()
            });
            let r = m.run_context(&mut StackScribbler, &Context::none());
            if n < done || (n == done && fault.is_some()) {
                let f = r.unwrap_err();
                assert_eq!(f.kind, FaultKind::StepBudget { steps: n });
                assert_eq!(end_state(&m), reference[n as usize], "budget {n}");
            } else {
                match &fault {
                    None => {
                        assert_eq!(r.ok(), expected_r0);
                        assert_eq!(&end_state(&m), reference.last().unwrap());
                    }
                    Some((f, pc, steps)) => {
                        assert_eq!(r.as_ref(), Err(f));
                        assert_eq!((m.pc(), m.steps()), (*pc, *steps));
                    }
                }
            }
        }
    }
}

// ---- r10-relative accesses: the frame checked once per loop entry -----------

/// How a run is advanced: `Full` and `Logged` by `run_steps`/`run_logged`
/// (the straight-line loop's frame shortcut), `Step` one `step` at a time.
/// `n` steps, or to the end with `u64::MAX`: Ok(Some(r0)) at the exit,
/// Ok(None) when paused.
fn advance(m: &mut Machine, drive: Drive, n: u64, log: &mut StepLog) -> Result<Option<u64>, Fault> {
    let stop = match drive {
        Drive::Full => m.run_steps(&mut NoHelpers, n)?,
        Drive::Logged => m.run_logged(&mut NoHelpers, n, log)?,
        Drive::Step => {
            for _ in 0..n {
                match m.step(&mut NoHelpers).outcome {
                    StepOutcome::Running => {}
                    StepOutcome::Exited(r0) => return Ok(Some(r0)),
                    StepOutcome::Faulted(f) => return Err(f),
                }
            }
            RunStop::Paused
        }
    };
    Ok(match stop {
        RunStop::Exited(r0) => Some(r0),
        _ => None,
    })
}

#[test]
fn r10_relative_accesses_agree_in_every_mode_whatever_r10_holds_or_becomes() {
    // Stores and loads of every size through r10 with constant offsets at
    // the frame's edges, then one access past the top (`top_past`) or below
    // the bottom (`bottom_past`) that faults when r10 is the frame's top.
    let mut body = Vec::new();
    body.extend(lddw(1, 0x1122_3344_5566_7788));
    body.extend([
        stx(SIZE_DW, 10, 1, -8),
        stx(SIZE_W, 10, 1, -12),
        stx(SIZE_H, 10, 1, -14),
        stx(SIZE_B, 10, 1, -15),
        st(SIZE_DW, 10, -512, -2),
        st(SIZE_B, 10, -1, 0x5a),
        st(SIZE_W, 10, -508, 0x7eed),
        ldx(SIZE_DW, 2, 10, -8),
        ldx(SIZE_W, 3, 10, -12),
        ldx(SIZE_H, 4, 10, -14),
        ldx(SIZE_B, 5, 10, -1),
        ldx(SIZE_DW, 6, 10, -512),
        ldx(SIZE_W, 7, 10, -4),
        movr(0, 2),
        alu64r(ALU_XOR, 0, 3),
        alu64r(ALU_ADD, 0, 4),
        alu64r(ALU_XOR, 0, 5),
        alu64r(ALU_ADD, 0, 6),
        alu64r(ALU_XOR, 0, 7),
    ]);
    let plain = [&body[..], &[exit()]].concat();
    let top_past = [&body[..], &[ldx(SIZE_DW, 8, 10, -4), exit()]].concat();
    let bottom_past = [&body[..], &[st(SIZE_B, 10, -513, 1), exit()]].concat();
    let store_past = [&body[..], &[stx(SIZE_H, 10, 1, -1), exit()]].concat();

    // What r10 holds: the frame's top as `start` sets it; 8 below and 8
    // above it (the shortcut is off, the general check decides); the top of
    // the input memory (another plain, writable region: the shortcut
    // applies to it); its middle; the top of a read-only region (stores
    // fault there, loads do not); the null address; a dead frame's top.
    let ctx = Context::memory(vec![0u8; 600]);
    let fresh = |p: &[RawInsn]| {
        let mut m = Machine::new(program(p));
        m.start(0, &ctx).unwrap();
        let id = m.memory_mut().alloc(
            RegionKind::HelperBuffer { helper: 1 },
            vec![0x3c; 520],
            false,
        );
        (m, address(id, 520))
    };

    for p in [&plain[..], &top_past, &bottom_past, &store_past] {
        let (probe, read_only_top) = fresh(p);
        let (top, mem) = (probe.reg(10), probe.reg(1));
        let values = [
            top,
            top - 8,
            top + 8,
            mem + 600,
            mem + 300,
            read_only_top,
            0,
            top + (1u64 << 40),
        ];
        // Every pair (r10 from the start, r10 set by a session after k
        // steps), the reference stepping both parts.
        for &first in &values {
            for &second in &values {
                for k in [0u64, 1, 3, 6, 9, 14, 20] {
                    let outcome = |a: Drive, b: Drive| {
                        let (mut m, _) = fresh(p);
                        m.set_reg(10, first);
                        let mut log = StepLog::new();
                        let r = match advance(&mut m, a, k, &mut log) {
                            Ok(None) => {
                                m.set_reg(10, second);
                                advance(&mut m, b, u64::MAX, &mut log)
                            }
                            other => other,
                        };
                        (r, m.state().clone())
                    };
                    let reference = outcome(Drive::Step, Drive::Step);
                    for a in [Drive::Full, Drive::Logged, Drive::Step] {
                        for b in [Drive::Full, Drive::Logged, Drive::Step] {
                            assert_eq!(
                                outcome(a, b),
                                reference,
                                "r10 {first:#x} then {second:#x} after {k} steps, {a:?} then {b:?}"
                            );
                        }
                    }
                }
            }
            // A logged run from `first` undoes to the state it began in.
            let (mut m, _) = fresh(p);
            m.set_reg(10, first);
            let begin = m.state().clone();
            let mut log = StepLog::new();
            let mut snapshots = vec![begin.clone()];
            while let Ok(RunStop::Paused) = m.run_logged(&mut NoHelpers, 1, &mut log) {
                snapshots.push(m.state().clone());
            }
            let (mut lm, _) = fresh(p);
            lm.set_reg(10, first);
            let mut whole = StepLog::new();
            let _ = lm.run_logged(&mut NoHelpers, u64::MAX, &mut whole);
            while lm.undo_logged(&mut whole) {
                if let Some(s) = snapshots.get(whole.len()) {
                    assert_eq!(
                        lm.state(),
                        s,
                        "r10 {first:#x}: undoing step {}",
                        whole.len()
                    );
                }
            }
            assert_eq!(lm.state(), &begin, "r10 {first:#x}: undone to the start");
        }
        // A read-only region's top: the first store faults at full speed too.
        let (mut m, _) = fresh(p);
        m.set_reg(10, read_only_top);
        let f = m.run(&mut NoHelpers).unwrap_err();
        assert_eq!(f.pc, 2, "{f}");
    }
    // The faults themselves, with r10 as `start` sets it: region, offset,
    // size and instruction as the general check reports them.
    let at = body.len(); // the slot after the body
    for (p, kind) in [
        (&top_past, "top"),
        (&bottom_past, "bottom"),
        (&store_past, "store"),
    ] {
        let f = run(p).unwrap_err();
        assert!(
            matches!(f.kind, FaultKind::OutOfBounds { .. }),
            "{kind}: {f}"
        );
        assert_eq!(f.pc, at, "{kind}: {f}");
    }
    // r2..r7 = 0x5a22_3344_5566_7788, 0x5566_7788, 0x7788, 0x5a,
    // 0x7eed_ffff_fffe, 0x5a22_3344: ((((r2 ^ r3) + r4) ^ r5) + r6) ^ r7.
    assert_eq!(r0(&plain), 0x5a22_b232_5a22_4494);
}

#[test]
fn r10_accesses_mixed_with_other_bases_and_across_calls_agree_in_every_mode() {
    // The caller stores through r10 with every size, then through r2 (r10
    // - 32) into the same frame, reads both kinds back both ways, and passes
    // a pointer into its frame to a callee, which writes its own frame
    // through r10 and the caller's through that pointer. `fault` (if any)
    // goes at the slot marked in the callee or in the caller.
    let build = |in_caller: Option<RawInsn>, in_callee: Option<RawInsn>| {
        let mut main = Vec::new();
        main.extend(lddw(1, 0x1122_3344_5566_7788));
        main.extend([
            stx(SIZE_DW, 10, 1, -8),
            st(SIZE_H, 10, -10, 0x1234),
            st(SIZE_W, 10, -16, 0x7eed),
            st(SIZE_B, 10, -17, 0x5a),
            st(SIZE_DW, 10, -32, -2),
            movr(2, 10),
            alu64(ALU_ADD, 2, -32),
            stx(SIZE_W, 2, 1, 4),     // r10-28: r1's low word
            ldx(SIZE_DW, 3, 10, -32), // both stores' bytes
            ldx(SIZE_H, 4, 2, 22),    // r10-10, stored through r10
            ldx(SIZE_B, 5, 10, -17),
            st(SIZE_DW, 10, -64, 0),
            movr(1, 10),
            alu64(ALU_ADD, 1, -64),
        ]);
        let call_at = main.len();
        main.push(call_local(0)); // target fixed below
        main.extend([
            movr(8, 0),
            ldx(SIZE_DW, 6, 10, -64), // written by the callee through r1
            ldx(SIZE_DW, 7, 10, -8),  // the callee's own -8 is elsewhere
            movr(0, 3),
            alu64r(ALU_XOR, 0, 4),
            alu64r(ALU_ADD, 0, 5),
            alu64r(ALU_XOR, 0, 6),
            alu64r(ALU_ADD, 0, 7),
            alu64r(ALU_XOR, 0, 8),
        ]);
        main.extend(in_caller);
        main.push(exit());
        let callee = main.len();
        main[call_at] = call_local((callee - call_at - 1) as i32);
        main.extend([
            stx(SIZE_DW, 10, 1, -8),
            ldx(SIZE_DW, 2, 10, -8),
            st(SIZE_DW, 2, 0, 0x99),
            st(SIZE_H, 10, -2, 0x77),
            ldx(SIZE_H, 0, 10, -2),
        ]);
        main.extend(in_callee);
        main.push(exit());
        main
    };
    let plain = build(None, None);
    // ((((r3 ^ r4) + r5) ^ r6) + r7) ^ r8 with r3 = 0x5566_7788_ffff_fffe,
    // r4 = 0x1234, r5 = 0x5a, r6 = 0x99, r7 = 0x1122_3344_5566_7788, r8 = 0x77.
    assert_eq!(r0(&plain), 0x6688_aacd_5566_6632);
    // Faults through r10-based ops: a 4-byte store over the caller's top,
    // a load at the callee's top, an 8-byte store below the caller's bottom.
    let faulting = [
        (build(Some(st(SIZE_W, 10, -2, 1)), None), 0, 510, 4, true),
        (build(None, Some(ldx(SIZE_W, 0, 10, 0))), 1, 512, 4, false),
        (build(Some(stx(SIZE_DW, 10, 1, -520)), None), 0, -8, 8, true),
    ];
    for (p, frame, at, bytes, store) in &faulting {
        let f = run(p).unwrap_err();
        let expected_pc = if *frame == 0 {
            p.len() - 8 // the caller's slot before its exit
        } else {
            p.len() - 2 // the callee's slot before its exit
        };
        assert_eq!(f.pc, expected_pc, "{f}");
        assert!(
            matches!(
                f.kind,
                FaultKind::OutOfBounds { region: RegionKind::Stack { frame: fr }, offset, size, write, .. }
                    if fr == *frame && offset == *at && size == *bytes && write == *store
            ),
            "{f}"
        );
    }

    // r10 as `start` sets it; the top of the input memory (plain and
    // writable: the frame view takes it too); in an XDP packet, the end of
    // its data (the accesses land in the packet's window) and 512 bytes
    // past it (in the buffer's tailroom, outside the window: every access
    // faults, which no shortcut may miss). Every pause point, each part
    // run at full speed, logged or stepped, against stepping both.
    let input = Context::memory(vec![0u8; 600]);
    let xdp = Context::xdp(&[0x42; 64], &[], XdpMd::default());
    let data_end = address(ids::PACKET, (XDP_HEADROOM + 64) as u64);
    let programs = [&plain][..]
        .iter()
        .map(|p| p.to_vec())
        .chain(faulting.iter().map(|f| f.0.clone()))
        .collect::<Vec<_>>();
    for p in &programs {
        let fresh = |ctx: &Context| {
            let mut m = Machine::new(program(p));
            m.start(0, ctx).unwrap();
            m
        };
        let (frame_top, memory_top) = (fresh(&input).reg(10), fresh(&input).reg(1) + 600);
        for (ctx, r10) in [
            (&input, frame_top),
            (&input, memory_top),
            (&xdp, data_end),
            (&xdp, data_end + 512),
        ] {
            for k in 0..=p.len() as u64 + 2 {
                let outcome = |a: Drive, b: Drive| {
                    let mut m = fresh(ctx);
                    m.set_reg(10, r10);
                    let mut log = StepLog::new();
                    let r = match advance(&mut m, a, k, &mut log) {
                        Ok(None) => advance(&mut m, b, u64::MAX, &mut log),
                        other => other,
                    };
                    (r, m.state().clone())
                };
                let reference = outcome(Drive::Step, Drive::Step);
                for a in [Drive::Full, Drive::Logged, Drive::Step] {
                    for b in [Drive::Full, Drive::Logged, Drive::Step] {
                        assert_eq!(
                            outcome(a, b),
                            reference,
                            "r10 {r10:#x}, paused after {k} steps, {a:?} then {b:?}"
                        );
                    }
                }
            }
        }
    }
}

// ---- a run's set-up: xdp_md's pointers, frames, packet, context -------------

/// How a run ended: (r0, steps) or (the faulting instruction, the fault).
type Ending = Result<(u64, u64), (usize, FaultKind)>;

/// Starts program `entry` of `m` on `ctx`, lets `edit` change the machine
/// as a session could, and runs to the end as `mode` says (`None`: one
/// `run_steps` instruction at a time).
fn ending(
    m: &mut Machine,
    entry: usize,
    ctx: &Context,
    mode: Option<Drive>,
    edit: &dyn Fn(&mut Machine),
) -> Ending {
    let env = &mut NoHelpers;
    m.start(entry, ctx).expect("the run starts");
    edit(m);
    let end = match mode {
        Some(Drive::Full) => m.run(env),
        Some(Drive::Step) => loop {
            match m.step(env).outcome {
                StepOutcome::Running => {}
                StepOutcome::Exited(r0) => break Ok(r0),
                StepOutcome::Faulted(f) => break Err(f),
            }
        },
        Some(Drive::Logged) => {
            let mut log = StepLog::new();
            match m.run_logged(env, u64::MAX, &mut log) {
                Ok(RunStop::Exited(r0)) => Ok(r0),
                Ok(RunStop::Paused) => panic!("an unlimited logged run paused"),
                Err(f) => Err(f),
            }
        }
        None => loop {
            match m.run_steps(env, 1) {
                Ok(RunStop::Paused) => {}
                Ok(RunStop::Exited(r0)) => break Ok(r0),
                Err(f) => break Err(f),
            }
        },
    };
    end.map(|r0| (r0, m.steps())).map_err(|f| (f.pc, f.kind))
}

const EVERY_MODE: [Option<Drive>; 4] = [
    Some(Drive::Full),
    None,
    Some(Drive::Step),
    Some(Drive::Logged),
];

#[test]
fn xdp_packet_pointer_loads_agree_in_every_mode_and_fault_as_the_layout_says() {
    let ctx = Context::xdp(
        &FRAME,
        &[1, 2, 3, 4],
        XdpMd {
            ingress_ifindex: 3,
            rx_queue_index: 1,
            egress_ifindex: 0,
        },
    );
    // r0 = data_end - data | (data - data_meta) << 16 | ingress << 32
    //      | the packet's first byte << 40, among straight-line code.
    let good = [
        mov(0, 0),
        ldx(SIZE_W, 2, 1, xdp_md::DATA as i16),
        ldx(SIZE_W, 3, 1, xdp_md::DATA_END as i16),
        ldx(SIZE_W, 4, 1, xdp_md::DATA_META as i16),
        ldx(SIZE_W, 5, 1, xdp_md::INGRESS_IFINDEX as i16),
        ldx(SIZE_B, 6, 2, 0),
        movr(0, 3),
        alu64r(ALU_SUB, 0, 2),
        alu64r(ALU_SUB, 2, 4),
        alu64(ALU_LSH, 2, 16),
        alu64r(ALU_OR, 0, 2),
        alu64(ALU_LSH, 5, 32),
        alu64r(ALU_OR, 0, 5),
        alu64(ALU_LSH, 6, 40),
        alu64r(ALU_OR, 0, 6),
        exit(),
    ];
    let want = 18 | (4 << 16) | (3 << 32) | ((FRAME[0] as u64) << 40);
    let unedited: &dyn Fn(&mut Machine) = &|_| {};
    for mode in EVERY_MODE {
        let mut m = Machine::new(program(&good));
        assert_eq!(
            ending(&mut m, 0, &ctx, mode, unedited),
            Ok((want, good.len() as u64)),
            "{mode:?}"
        );
    }
    // Loads the layout refuses, after straight-line code: the wrong size
    // of a pointer field, a misaligned one, past the structure's end.
    for (size, offset) in [
        (SIZE_H, xdp_md::DATA),
        (SIZE_B, xdp_md::DATA_END),
        (SIZE_DW, xdp_md::DATA_META),
        (SIZE_W, 2),
        (SIZE_W, 6),
        (SIZE_W, xdp_md::SIZE as i64),
    ] {
        let slots = [
            mov(0, 1),
            alu64(ALU_ADD, 0, 2),
            ldx(size, 2, 1, offset as i16),
            exit(),
        ];
        let bytes = match size {
            SIZE_B => 1,
            SIZE_H => 2,
            SIZE_W => 4,
            _ => 8,
        };
        for mode in EVERY_MODE {
            let mut m = Machine::new(program(&slots));
            match ending(&mut m, 0, &ctx, mode, unedited) {
                Err((
                    2,
                    FaultKind::BadContextAccess {
                        offset: o,
                        size: s,
                        write: false,
                        ..
                    },
                )) if o == offset && s == bytes => {}
                other => panic!("{size:#x} at {offset}, {mode:?}: {other:?}"),
            }
        }
    }
    // A session shortens the context to 6 bytes: data (0..4) still reads,
    // data_end (4..8) lies outside the structure now.
    let shorten: &dyn Fn(&mut Machine) = &|m| {
        m.memory_mut().set_bytes(ids::CONTEXT, vec![0; 6]).unwrap();
    };
    let data_then_end = [
        ldx(SIZE_W, 2, 1, xdp_md::DATA as i16),
        movr(0, 2),
        ldx(SIZE_W, 3, 1, xdp_md::DATA_END as i16),
        exit(),
    ];
    let data = address(ids::PACKET, XDP_HEADROOM as u64);
    for mode in EVERY_MODE {
        let mut m = Machine::new(program(&data_then_end));
        assert_eq!(
            ending(&mut m, 0, &ctx, mode, unedited),
            Ok((data, 4)),
            "{mode:?}"
        );
        match ending(&mut m, 0, &ctx, mode, shorten) {
            Err((
                2,
                FaultKind::BadContextAccess {
                    offset: 4,
                    size: 4,
                    write: false,
                    ..
                },
            )) => {}
            other => panic!("{mode:?}: {other:?}"),
        }
        assert_eq!(m.reg(0), data, "{mode:?}");
    }
}

/// Calls itself with r1 + 1 until r1 reaches `deepest`, each frame storing
/// r1 at the top of its stack; r0 = r1 of the deepest frame. Entered with
/// r1 = 1 from frame 0, so `deepest` 7 fills all 8 frames and 8 faults.
fn recursion(deepest: i32, before: &[RawInsn]) -> Vec<RawInsn> {
    let mut p = before.to_vec();
    let f = p.len() as i32 + 3;
    p.extend([mov(1, 1), call_local(f - (p.len() as i32 + 2)), exit()]);
    p.extend([
        stx(SIZE_DW, 10, 1, -8),
        jmp(JMP_JGE, 1, deepest, 2),
        alu64(ALU_ADD, 1, 1),
        call_local(-4),
        movr(0, 1),
        exit(),
    ]);
    p
}

#[test]
fn every_run_starts_from_a_fresh_machines_state_whatever_the_run_before_did() {
    // Writes into the packet (first and last byte of the window) and into
    // the context-derived registers, then recurses to the depth limit.
    let packet_writer = [
        ldx(SIZE_W, 2, 1, xdp_md::DATA as i16),
        ldx(SIZE_W, 3, 1, xdp_md::DATA_END as i16),
        st(SIZE_DW, 2, 0, -1),
        st(SIZE_B, 3, -1, 0x77),
    ];
    let programs = || {
        vec![
            program(&recursion(7, &[])),
            program(&recursion(8, &[])),
            program(&recursion(8, &packet_writer)),
            program(&recursion(3, &[])),
        ]
    };
    let xdp = |packet: &[u8], meta: &[u8]| Context::xdp(packet, meta, XdpMd::default());
    let long: Vec<u8> = (0..200u8).collect();
    let contexts = [
        xdp(&FRAME, &[1, 2, 3, 4]),
        xdp(&long, &[]),
        xdp(&FRAME[..14], &[9; 8]),
        Context::skb(SkbProgram::Tc, &long, SkBuff::default()),
        Context::memory(vec![5; 40]),
        Context::none(),
    ];
    // The state right after `start`, and each program's ending, on a fresh machine.
    let fresh = |entry: usize, ctx: &Context| {
        let mut m = Machine::with_programs(programs());
        m.start(entry, ctx).unwrap();
        let state = m.state().clone();
        let end = ending(&mut m, entry, ctx, Some(Drive::Full), &|_| {});
        (state, end)
    };
    let deep = fresh(0, &contexts[0]).1;
    // main: mov, call; frames 1-6: store, jump, add, call; frame 7: store,
    // jump, mov, exit; frames 6-1: mov, exit; main: exit.
    assert_eq!(deep, Ok((7, 2 + 6 * 4 + 4 + 6 * 2 + 1)));
    assert!(matches!(
        fresh(1, &contexts[0]).1,
        Err((_, FaultKind::CallDepth { frames: 9 }))
    ));
    assert!(matches!(
        fresh(2, &contexts[0]).1,
        Err((_, FaultKind::CallDepth { frames: 9 }))
    ));
    // A session pausing a run in frame 3 and editing registers, the
    // paused frame's stack and the packet.
    let pause_and_edit = |m: &mut Machine, mode: Drive| {
        let env = &mut NoHelpers;
        // main: 2 steps, frames 1 and 2: 4 each; frame 3 has begun.
        for _ in 0..10 {
            match mode {
                Drive::Full => assert_eq!(m.run_steps(env, 1), Ok(RunStop::Paused)),
                Drive::Step => assert_eq!(m.step(env).outcome, StepOutcome::Running),
                Drive::Logged => assert_eq!(
                    m.run_logged(env, 1, &mut StepLog::new()),
                    Ok(RunStop::Paused)
                ),
            }
        }
        assert_eq!(m.frames().len(), 4);
        for r in 0..=10 {
            m.set_reg(r, 0xdead_0000 + r as u64);
        }
        let top = address(ids::STACK0 + 3, 512);
        m.memory_mut().write(top - 8, &[0xab; 8]).unwrap();
        // Bytes given to a frame no call has made live.
        m.memory_mut()
            .set_bytes(ids::STACK0 + 5, vec![1; 16])
            .unwrap();
        if let Some(p) = m.memory().packet() {
            m.memory_mut().write(p.data, &[0xcd; 4]).unwrap();
            m.memory_mut()
                .set_bytes(ids::CONTEXT, vec![0xee; 24])
                .unwrap();
        }
    };
    let mut m = Machine::with_programs(programs());
    for before in 0..4 {
        for before_mode in [Drive::Full, Drive::Step, Drive::Logged] {
            for before_ctx in &contexts {
                for (i, ctx) in contexts.iter().enumerate() {
                    for entry in [0, 3] {
                        let what = format!(
                            "program {before} in {before_mode:?}, then {entry} on context {i}"
                        );
                        if before == 3 {
                            m.start(3, before_ctx).unwrap();
                            pause_and_edit(&mut m, before_mode);
                        } else {
                            let _ = ending(&mut m, before, before_ctx, Some(before_mode), &|_| {});
                        }
                        m.start(entry, ctx).unwrap();
                        let (state, end) = fresh(entry, ctx);
                        assert!(m.state() == &state, "{what}: the state after start differs");
                        assert_eq!(
                            ending(&mut m, entry, ctx, Some(Drive::Full), &|_| {}),
                            end,
                            "{what}"
                        );
                    }
                }
            }
        }
    }
    // Frames brought back to life by undo after a new run started: the
    // steps of a run that went 4 frames deep, undone newest first once
    // another run has started, put frames 3, 2, 1 back (live, with bytes).
    for ctx in &contexts {
        let mut steps = Vec::new();
        m.start(3, ctx).unwrap();
        loop {
            let s = m.step(&mut NoHelpers);
            let done = !matches!(s.outcome, StepOutcome::Running);
            steps.push(s);
            if done {
                break;
            }
        }
        m.start(0, ctx).unwrap();
        // Undone until frame 3's exit is undone (its frame back).
        let frame3 = |m: &Machine| m.memory().region(ids::STACK0 + 3).unwrap().live();
        for s in steps.iter().rev() {
            m.undo(s);
            if frame3(&m) {
                break;
            }
        }
        assert!(frame3(&m));
        assert!(m.memory().region(ids::STACK0 + 1).unwrap().live());
        m.start(0, ctx).unwrap();
        let (state, end) = fresh(0, ctx);
        assert!(
            m.state() == &state,
            "after undo: the state after start differs"
        );
        assert_eq!(ending(&mut m, 0, ctx, Some(Drive::Full), &|_| {}), end);
    }
}
