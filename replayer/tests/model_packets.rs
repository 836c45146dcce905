//! Packet helpers through the VM with `ModelEnv`: XDP head/tail/meta
//! adjustment, redirects, and the skb byte helpers.

mod model_support;

use bpfrr_replayer::env::RedirectTarget;
use bpfrr_replayer::maps::MapType;
use bpfrr_replayer::vm::{Context, Machine, SkbProgram, XdpMd};
use bpfrr_trace::isa::{AluOp, Insn, Operand, Size, Width};
use model_support::*;

fn frame(len: usize) -> Vec<u8> {
    (0..len).map(|i| i as u8).collect()
}

/// After an adjust helper (delta in r2), returns `ret << 32 | (data_end - data)`.
fn adjust(helper: &str, delta: i32) -> Vec<Insn> {
    vec![
        mov_reg(6, 1),
        mov(2, delta),
        call(helper),
        mov_reg(7, 0),
        Insn::Alu {
            width: Width::W64,
            op: AluOp::Lsh,
            dst: 7,
            src: Operand::Imm(32),
        },
        ldx(Size::W, 2, 6, 0), // data
        ldx(Size::W, 3, 6, 4), // data_end
        Insn::Alu {
            width: Width::W64,
            op: AluOp::Sub,
            dst: 3,
            src: Operand::Reg(2),
        },
        mov_reg(0, 3),
        add_reg(0, 7),
        exit(),
    ]
}

fn xdp(len: usize) -> Context {
    Context::xdp(&frame(len), &[], XdpMd::default())
}

#[test]
fn xdp_adjust_head_tail_meta() {
    let mut e = env(vec![]);
    let r = |e: &mut _, h, d| run_once(e, &adjust(h, d), &xdp(60)).unwrap();
    assert_eq!(r(&mut e, "xdp_adjust_head", -14), 74, "14 bytes prepended");
    assert_eq!(r(&mut e, "xdp_adjust_head", 20), 40);
    assert_eq!(
        r(&mut e, "xdp_adjust_head", 50) >> 32,
        (-22i64 as u64) & 0xffff_ffff,
        "would leave < 14 bytes"
    );
    assert_eq!(
        r(&mut e, "xdp_adjust_head", -300) >> 32,
        (-22i64 as u64) & 0xffff_ffff,
        "past the headroom"
    );
    assert_eq!(r(&mut e, "xdp_adjust_tail", 10), 70);
    assert_eq!(
        r(&mut e, "xdp_adjust_tail", -50) >> 32,
        (-22i64 as u64) & 0xffff_ffff
    );
    assert_eq!(
        r(&mut e, "xdp_adjust_tail", 5000) >> 32,
        (-22i64 as u64) & 0xffff_ffff
    );
    assert_eq!(r(&mut e, "xdp_adjust_meta", -8) & 0xffff_ffff, 60);
    assert_eq!(r(&mut e, "xdp_adjust_meta", -8) >> 32, 0);
    assert_eq!(
        r(&mut e, "xdp_adjust_meta", -6) >> 32,
        (-13i64 as u64) & 0xffff_ffff,
        "not a multiple of 4"
    );
    assert_eq!(
        r(&mut e, "xdp_adjust_meta", -36) >> 32,
        (-13i64 as u64) & 0xffff_ffff,
        "more than 32 bytes"
    );
    // Grown tail bytes are zero.
    let mut m = Machine::new(program(&adjust("xdp_adjust_tail", 4)));
    e.run(&mut m, 0, &xdp(60)).unwrap();
    let data = m.memory().packet_data().unwrap();
    assert_eq!(&data[56..], &[56, 57, 58, 59, 0, 0, 0, 0]);
}

#[test]
fn redirects() {
    let mut e = env(vec![]);
    let p = [mov(1, 3), mov(2, 0), call("redirect"), exit()];
    assert_eq!(run_once(&mut e, &p, &xdp(60)).unwrap(), 4, "XDP_REDIRECT");
    assert_eq!(
        e.last_redirect(),
        Some(&RedirectTarget::Ifindex {
            ifindex: 3,
            flags: 0
        })
    );
    let bad = [mov(1, 3), mov(2, 1), call("redirect"), exit()];
    assert_eq!(
        run_once(&mut e, &bad, &xdp(60)).unwrap(),
        0,
        "XDP_ABORTED on flags"
    );
    let tc = Context::skb_test_run(SkbProgram::Tc, &frame(60));
    assert_eq!(
        run_once(&mut e, &bad, &tc).unwrap(),
        7,
        "TC_ACT_REDIRECT (BPF_F_INGRESS)"
    );

    let mut dev = map("tx", MapType::Devmap, 4, 4, 8);
    dev.seed(&2u32.to_le_bytes(), &9u32.to_le_bytes()).unwrap();
    let mut e = env(vec![dev]);
    let rm = |key: i32, flags: i32| {
        [
            ld_map(1, 0),
            mov(2, key),
            mov(3, flags),
            call("redirect_map"),
            exit(),
        ]
    };
    assert_eq!(run_once(&mut e, &rm(2, 0), &xdp(60)).unwrap(), 4);
    assert_eq!(
        e.last_redirect(),
        Some(&RedirectTarget::Map {
            map: 0,
            key: 2,
            flags: 0
        })
    );
    assert_eq!(
        run_once(&mut e, &rm(3, 2), &xdp(60)).unwrap(),
        2,
        "missing entry: the fallback action"
    );
    assert_eq!(
        run_once(&mut e, &rm(2, 1 << 6), &xdp(60)).unwrap(),
        0,
        "unknown flag: XDP_ABORTED"
    );
}

#[test]
fn skb_load_and_store_bytes() {
    let mut e = env(vec![]);
    // load 4 bytes at offset r2 into fp-8; return them (or the error).
    let load = |off: i32| {
        let mut p = vec![st(Size::DW, 10, -8, -1), mov(2, off)];
        p.extend(fp(3, -8));
        p.extend([
            mov(4, 4),
            call("skb_load_bytes"),
            jne(0, 0, 1),
            ldx(Size::DW, 0, 10, -8),
            exit(),
        ]);
        p
    };
    let sock = Context::skb_test_run(SkbProgram::SocketFilter, &frame(60));
    // A socket filter sees the frame from byte 14 on.
    assert_eq!(
        run_once(&mut e, &load(0), &sock).unwrap(),
        0xffff_ffff_1110_0f0e
    );
    assert_eq!(
        run_once(&mut e, &load(44), &sock).unwrap() as i64,
        -14,
        "past skb->len"
    );
    let mut store = vec![st(Size::W, 10, -4, 0x0a0b_0c0d), mov(2, 1)];
    store.extend(fp(3, -4));
    store.extend([mov(4, 4), mov(5, 0), call("skb_store_bytes"), exit()]);
    let tc = Context::skb_test_run(SkbProgram::Tc, &frame(60));
    let mut m = Machine::new(program(&store));
    assert_eq!(e.run(&mut m, 0, &tc).unwrap(), 0);
    assert_eq!(
        &m.memory().packet_data().unwrap()[..6],
        &[0, 0x0d, 0x0c, 0x0b, 0x0a, 5]
    );
    store[5] = mov(5, 4);
    assert_eq!(
        run_once(&mut e, &store, &tc).unwrap() as i64,
        -22,
        "unknown flags"
    );
}

#[test]
fn xdp_load_and_store_bytes() {
    let mut e = env(vec![]);
    // load 4 bytes at offset r2 into fp-8; return them (or the error).
    let load = |off: i32| {
        let mut p = vec![st(Size::DW, 10, -8, -1), mov(2, off)];
        p.extend(fp(3, -8));
        p.extend([
            mov(4, 4),
            call("xdp_load_bytes"),
            jne(0, 0, 1),
            ldx(Size::DW, 0, 10, -8),
            exit(),
        ]);
        p
    };
    assert_eq!(
        run_once(&mut e, &load(0), &xdp(60)).unwrap(),
        0xffff_ffff_0302_0100
    );
    assert_eq!(
        run_once(&mut e, &load(57), &xdp(60)).unwrap() as i64,
        -22,
        "past the packet's end"
    );
    assert_eq!(
        run_once(&mut e, &load(0x10000), &xdp(60)).unwrap() as i64,
        -14,
        "offset beyond 0xffff"
    );
    let mut store = vec![st(Size::W, 10, -4, 0x0a0b_0c0d), mov(2, 1)];
    store.extend(fp(3, -4));
    store.extend([mov(4, 4), call("xdp_store_bytes"), exit()]);
    let mut m = Machine::new(program(&store));
    assert_eq!(e.run(&mut m, 0, &xdp(60)).unwrap(), 0);
    assert_eq!(
        &m.memory().packet_data().unwrap()[..6],
        &[0, 0x0d, 0x0c, 0x0b, 0x0a, 5]
    );
}
