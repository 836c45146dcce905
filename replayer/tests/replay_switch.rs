//! Switching invocations: starting invocations in any order gives the same
//! replays as going in order, and (once the replayer has been that far)
//! starting one fast-forwards at most `CHECKPOINT_EVERY - 1` invocations.

mod model_support;
mod replay_support;

use bpfrr_replayer::replay::checkpoint::CHECKPOINT_EVERY;
use bpfrr_replayer::replay::{FidelityReport, Replayer};
use bpfrr_replayer::session::Session;
use bpfrr_trace::isa::{AluOp, Insn, Operand, Size, Width};
use bpfrr_trace::trace::Trace;
use model_support::*;
use replay_support::*;

const RAW_TP: u32 = 17;
const HASH: u32 = 1;
const ARRAY: u32 = 2;
const RINGBUF: u32 = 27;
const LRU_HASH: u32 = 9;
const QUEUE: u32 = 22;
const INVOCATIONS: usize = 2000;

/// Counts invocations in .bss (map 1) and stores each count in hash map 0
/// under `count & 63`; returns the count. Both maps change every run, and
/// the return value depends on all the runs before.
fn program() -> Vec<Insn> {
    vec![
        ld_map_value(6, 1, 0),  // r6 = &.bss
        ldx(Size::DW, 7, 6, 0), // r7 = count
        add(7, 1),              // count += 1
        stx(Size::DW, 6, 0, 7), // .bss = count
        mov_reg(8, 7),          // key = count & 63
        Insn::Alu {
            width: Width::W64,
            op: AluOp::And,
            dst: 8,
            src: Operand::Imm(63),
        },
        stx(Size::W, 10, -4, 8),   // key on the stack
        stx(Size::DW, 10, -16, 7), // value on the stack
        ld_map(1, 0),
        mov_reg(2, 10),
        add(2, -4),
        mov_reg(3, 10),
        add(3, -16),
        mov(4, 0),
        call("map_update_elem"),
        mov_reg(0, 7),
        exit(),
    ]
}

fn counting_trace(n: usize) -> Trace {
    let mut p = trace_program(0, "count", RAW_TP, &program());
    p.verifier = verifier(&[16]);
    let hash = trace_map(0, "last", HASH, (4, 8, 64), vec![]);
    let mut bss = trace_map(1, ".bss", ARRAY, (4, 8, 1), vec![]);
    bss.initial_data = Some(vec![0; 8]);
    let inputs = vec![
        Input {
            ctx: vec![0; 16],
            ..Input::default()
        };
        n
    ];
    record(&[p], &[hash, bss], &inputs, |_| {})
}

/// A fixed pseudo-random permutation of `0..n` (xorshift, Fisher-Yates).
fn shuffled(n: usize, mut seed: u64) -> Vec<u64> {
    let mut v: Vec<u64> = (0..n as u64).collect();
    for i in (1..n).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        v.swap(i, (seed % (i as u64 + 1)) as usize);
    }
    v
}

fn in_order(trace: &Trace) -> Vec<FidelityReport> {
    let mut r = Replayer::new(trace);
    (0..trace.invocation_count())
        .map(|i| r.replay(i).expect("replays"))
        .collect()
}

#[test]
fn the_trace_changes_its_world_every_invocation() {
    let trace = counting_trace(200);
    let retvals: Vec<u64> = invocations(&trace).iter().map(|i| i.retval).collect();
    assert_eq!(retvals, (1..=200).collect::<Vec<u64>>());
    for r in in_order(&trace) {
        assert!(r.is_identical(), "{r}");
    }
}

#[test]
fn random_order_replays_exactly_as_in_order_with_bounded_fast_forward() {
    let trace = counting_trace(INVOCATIONS);
    let expected = in_order(&trace);
    assert!(expected.iter().all(|r| r.is_identical()));

    // A fresh replayer, invocations in random order.
    let mut r = Replayer::new(&trace);
    let mut furthest = 0;
    for k in shuffled(INVOCATIONS, 0x9e37_79b9_7f4a_7c15) {
        let before = r.invocations_fast_forwarded();
        let got = r.replay(k).expect("replays");
        assert_eq!(got, expected[k as usize], "invocation {k}");
        let ran = r.invocations_fast_forwarded() - before;
        if k <= furthest {
            assert!(
                ran < CHECKPOINT_EVERY,
                "starting {k} fast-forwarded {ran} invocations"
            );
        }
        furthest = furthest.max(k + 1);
    }
    // One per CHECKPOINT_EVERY invocations, plus at most the furthest.
    let grid = (INVOCATIONS - 1) / CHECKPOINT_EVERY as usize;
    assert!(r.checkpoint_count() >= grid, "{}", r.checkpoint_count());
    assert!(r.checkpoint_count() <= grid + 1, "{}", r.checkpoint_count());
}

#[test]
fn after_check_all_any_invocation_starts_within_one_checkpoint_interval() {
    let trace = counting_trace(INVOCATIONS);
    let mut r = Replayer::new(&trace);
    assert!(r.check_all().all_identical());
    let after_check = r.invocations_fast_forwarded();
    assert_eq!(after_check, 0, "going in order never fast-forwards");
    for k in shuffled(INVOCATIONS, 7).into_iter().take(300) {
        let before = r.invocations_fast_forwarded();
        let run = r.start(k).expect("starts");
        let ran = r.invocations_fast_forwarded() - before;
        assert!(ran < CHECKPOINT_EVERY, "starting {k} fast-forwarded {ran}");
        // From the nearest checkpoint at or before k (a multiple of
        // CHECKPOINT_EVERY, or a world kept when going back), or from the
        // current world when that is nearer.
        assert!(
            ran <= k % CHECKPOINT_EVERY,
            "starting {k} fast-forwarded {ran}"
        );
        r.finish(run);
    }
}

#[test]
fn sessions_in_random_order_end_as_recorded() {
    let trace = counting_trace(300);
    let mut r = Replayer::new(&trace);
    for k in shuffled(300, 99) {
        let mut s = Session::for_invocation(&mut r, k).expect("session opens");
        s.run_to_end();
        assert_eq!(s.regs()[0], k + 1, "invocation {k} returns its count");
        s.finish_into(&mut r, k);
    }
}

/// The counting program, which also sends each count to a ring buffer (map
/// 2), stores it in a 4-entry LRU hash under `count & 63` (map 3: every run
/// evicts), pushes it on an 8-entry queue, overwriting the oldest (map 4),
/// and adds 1000 in place to the previous run's LRU value.
fn counting_program_with_stateful_maps() -> Vec<Insn> {
    let mut p = program();
    let tail = p.len() - 2; // before `r0 = count; exit`
    p.splice(
        tail..tail,
        [
            ld_map(1, 2),
            mov_reg(2, 10),
            add(2, -16),
            mov(3, 8),
            mov(4, 0),
            call("ringbuf_output"),
            ld_map(1, 3),
            mov_reg(2, 10),
            add(2, -4),
            mov_reg(3, 10),
            add(3, -16),
            mov(4, 0),
            call("map_update_elem"),
            ld_map(1, 4),
            mov_reg(2, 10),
            add(2, -16),
            mov(3, 2), // BPF_EXIST: a full queue drops its oldest value
            call("map_push_elem"),
            // The previous run's LRU entry, changed in place through the
            // pointer the lookup returned.
            mov_reg(8, 7),
            add(8, -1),
            Insn::Alu {
                width: Width::W64,
                op: AluOp::And,
                dst: 8,
                src: Operand::Imm(63),
            },
            stx(Size::W, 10, -24, 8),
            ld_map(1, 3),
            mov_reg(2, 10),
            add(2, -24),
            call("map_lookup_elem"),
            jeq(0, 0, 3),
            ldx(Size::DW, 1, 0, 0),
            add(1, 1000),
            stx(Size::DW, 0, 0, 1),
        ],
    );
    p
}

#[test]
fn ring_buffer_lru_and_queue_maps_are_checkpointed_faithfully() {
    const N: usize = 500;
    let mut p = trace_program(0, "count", RAW_TP, &counting_program_with_stateful_maps());
    p.verifier = verifier(&[24]);
    let hash = trace_map(0, "last", HASH, (4, 8, 64), vec![]);
    let mut bss = trace_map(1, ".bss", ARRAY, (4, 8, 1), vec![]);
    bss.initial_data = Some(vec![0; 8]);
    let rb = trace_map(2, "events", RINGBUF, (0, 0, 4096), vec![]);
    let lru = trace_map(3, "recent", LRU_HASH, (4, 8, 4), vec![]);
    let queue = trace_map(4, "history", QUEUE, (0, 8, 8), vec![]);
    let inputs = vec![
        Input {
            ctx: vec![0; 16],
            ..Input::default()
        };
        N
    ];
    let trace = record(&[p], &[hash, bss, rb, lru, queue], &inputs, |_| {});
    let expected = in_order(&trace);
    assert!(expected.iter().all(|r| r.is_identical()));

    let mut r = Replayer::new(&trace);
    let mut furthest = 0;
    for k in shuffled(N, 0x5eed) {
        let before = r.invocations_fast_forwarded();
        let got = r.replay(k).expect("replays");
        assert_eq!(got, expected[k as usize], "invocation {k}");
        let ran = r.invocations_fast_forwarded() - before;
        if k <= furthest {
            assert!(ran < CHECKPOINT_EVERY, "starting {k} fast-forwarded {ran}");
        }
        furthest = furthest.max(k + 1);
    }
    assert!(r.checkpoint_count() >= (N - 1) / CHECKPOINT_EVERY as usize);
}
