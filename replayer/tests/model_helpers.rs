//! Non-map helpers through the VM with `ModelEnv`: printk, bpf_loop,
//! for_each_map_elem, tail calls, probe_read, task and time helpers, and
//! the fault for helpers the model does not implement.

mod model_support;

use bpfrr_replayer::env::{MemoryImage, ModelConfig, ModelEnv, ModelEvent};
use bpfrr_replayer::maps::MapType;
use bpfrr_replayer::vm::{Context, Machine};
use bpfrr_trace::isa::{Imm64Kind, Insn, Size};
use model_support::*;

fn imm64(dst: u8, v: u64) -> Insn {
    Insn::LoadImm64 {
        kind: Imm64Kind::Imm,
        dst,
        imm: v,
    }
}

fn bytes_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a[..b.len()].copy_from_slice(b);
    u64::from_le_bytes(a)
}

#[test]
fn trace_printk_is_formatted_and_logged() {
    let mut e = env(vec![]);
    let mut p = vec![imm64(1, bytes_u64(b"n=%d\n\0")), stx(Size::DW, 10, -8, 1)];
    p.extend(fp(1, -8));
    p.extend([mov(2, 6), mov(3, -5), call("trace_printk"), exit()]);
    assert_eq!(
        run_once(&mut e, &p, &Context::none()).unwrap(),
        5,
        "length of \"n=-5\\n\""
    );
    assert_eq!(e.take_events(), vec![ModelEvent::Printk("n=-5".into())]);
    // A bad format is -EINVAL and prints nothing.
    let mut bad = vec![imm64(1, bytes_u64(b"%q\0")), stx(Size::DW, 10, -8, 1)];
    bad.extend(fp(1, -8));
    bad.extend([mov(2, 3), mov(3, 1), call("trace_printk"), exit()]);
    assert_eq!(
        run_once(&mut e, &bad, &Context::none()).unwrap() as i64,
        -22
    );
    assert!(e.take_events().is_empty());
}

#[test]
fn snprintf_writes_the_buffer() {
    let mut e = env(vec![]);
    // fmt "%u-%s" at fp-8; args [7, &"ab"] at fp-32; "ab" at fp-40; out at fp-56 (16 bytes)
    let mut p = vec![imm64(1, bytes_u64(b"%u-%s\0")), stx(Size::DW, 10, -8, 1)];
    p.extend([imm64(1, bytes_u64(b"ab\0")), stx(Size::DW, 10, -40, 1)]);
    p.push(st(Size::DW, 10, -32, 7));
    p.extend(fp(1, -40));
    p.push(stx(Size::DW, 10, -24, 1));
    p.extend(fp(1, -56));
    p.push(mov(2, 16));
    p.extend(fp(3, -8));
    p.extend(fp(4, -32));
    p.extend([
        mov(5, 16),
        call("snprintf"),
        mov_reg(6, 0),
        ldx(Size::DW, 0, 10, -56),
        exit(),
    ]);
    let r = run_once(&mut e, &p, &Context::none()).unwrap();
    assert_eq!(r, bytes_u64(b"7-ab\0"));
}

#[test]
fn bpf_loop_runs_the_callback() {
    let mut e = env(vec![]);
    // main: ctx=0; r0 = loop(5, cb, &ctx, 0); return ctx + 1000 * r0
    let main = vec![
        st(Size::DW, 10, -8, 0), // 0
        mov(1, 5),               // 1
        ld_func(2, 9),           // 2-3: cb at 2 + 1 + 9 = 12
        mov_reg(3, 10),          // 4
        add(3, -8),              // 5
        mov(4, 0),               // 6
        call("loop"),            // 7
        Insn::Alu {
            width: bpfrr_trace::isa::Width::W64,
            op: bpfrr_trace::isa::AluOp::Mul,
            dst: 0,
            src: bpfrr_trace::isa::Operand::Imm(1000),
        }, // 8
        ldx(Size::DW, 1, 10, -8), // 9
        add_reg(0, 1),           // 10
        exit(),                  // 11
        // cb(index r1, ctx r2): *ctx += index
        ldx(Size::DW, 3, 2, 0), // 12
        add_reg(3, 1),
        stx(Size::DW, 2, 0, 3),
        mov(0, 0),
        exit(),
    ];
    assert_eq!(run_once(&mut e, &main, &Context::none()).unwrap(), 5010);
    // A callback returning 1 stops the loop: count is the iterations done.
    let mut stop = main.clone();
    stop[14] = mov(0, 1);
    assert_eq!(run_once(&mut e, &stop, &Context::none()).unwrap(), 1000);
}

#[test]
fn for_each_map_elem_visits_every_array_element() {
    let mut a = map("a", MapType::Array, 4, 8, 4);
    for i in 0..4u32 {
        a.seed(&i.to_le_bytes(), &(i as u64 + 1).to_le_bytes())
            .unwrap();
    }
    let mut e = env(vec![a]);
    let p = vec![
        st(Size::DW, 10, -8, 0),   // 0
        ld_map(1, 0),              // 1-2
        ld_func(2, 8),             // 3-4: cb at 3 + 1 + 8 = 12
        mov_reg(3, 10),            // 5
        add(3, -8),                // 6
        mov(4, 0),                 // 7
        call("for_each_map_elem"), // 8
        ldx(Size::DW, 1, 10, -8),  // 9: sum
        add_reg(0, 1),             // 10: count + sum
        exit(),                    // 11
        // cb(map, key, value, ctx): *ctx += *value; *value *= 10 (written through the pointer)
        ldx(Size::DW, 5, 3, 0), // 12
        ldx(Size::DW, 6, 4, 0),
        add_reg(6, 5),
        stx(Size::DW, 4, 0, 6),
        st(Size::DW, 3, 0, 0),
        mov(0, 0),
        exit(),
    ];
    assert_eq!(run_once(&mut e, &p, &Context::none()).unwrap(), 4 + 10);
    // Values were zeroed through the callback's value pointers.
    assert!(
        e.maps()[0]
            .entries()
            .iter()
            .all(|(_, v)| v[0] == vec![0; 8])
    );
}

#[test]
fn tail_call_through_a_program_array() {
    let caller = vec![
        ld_map(2, 0),
        mov(3, 0),
        call("tail_call"),
        mov(0, 7),
        exit(),
    ];
    let callee = vec![mov(0, 42), exit()];
    let mut e = env(vec![map("jmp", MapType::ProgArray, 4, 4, 2)]);
    let mut m = Machine::with_programs(vec![program(&caller), program(&callee)]);
    assert_eq!(
        e.run(&mut m, 0, &Context::none()).unwrap(),
        7,
        "empty slot falls through"
    );
    e.maps_mut()[0]
        .seed(&0u32.to_le_bytes(), &1u32.to_le_bytes())
        .unwrap();
    assert_eq!(e.run(&mut m, 0, &Context::none()).unwrap(), 42);
    let ev = e.take_events();
    assert_eq!(
        ev.last(),
        Some(&ModelEvent::TailCall {
            map: 0,
            index: 0,
            prog: Some(1)
        })
    );
}

#[test]
fn unmodelled_helpers_fault_with_their_name() {
    let mut e = env(vec![]);
    let f = run_once(
        &mut e,
        &[call("get_current_task"), exit()],
        &Context::none(),
    )
    .unwrap_err();
    assert!(
        f.to_string()
            .contains("bpf_get_current_task is not modelled"),
        "{f}"
    );
    let f = run_once(
        &mut e,
        &[
            Insn::Call(bpfrr_trace::isa::CallTarget::Helper(9999)),
            exit(),
        ],
        &Context::none(),
    )
    .unwrap_err();
    assert!(f.to_string().contains("no helper 9999"), "{f}");
}

#[test]
fn probe_read_user_from_the_given_image() {
    let config = ModelConfig {
        user_memory: MemoryImage::new().with(0x7000_0000, b"hello\0junk".to_vec()),
        ..ModelConfig::default()
    };
    let mut e = ModelEnv::new(vec![], config);
    // Returns the helper's result, or the buffer's bytes.
    let read_str = |src: i32, want_len: bool| {
        let mut p = vec![st(Size::DW, 10, -8, -1)];
        p.extend(fp(1, -8));
        p.extend([mov(2, 8), mov(3, src), call("probe_read_user_str")]);
        if !want_len {
            p.push(ldx(Size::DW, 0, 10, -8));
        }
        p.push(exit());
        p
    };
    let run =
        |e: &mut ModelEnv, src, want| run_once(e, &read_str(src, want), &Context::none()).unwrap();
    assert_eq!(run(&mut e, 0x7000_0000, true), 6, "length with the NUL");
    assert_eq!(
        run(&mut e, 0x7000_0000, false),
        bytes_u64(b"hello\0\xff\xff"),
        "bytes after the NUL untouched"
    );
    assert_eq!(run(&mut e, 0x1000, true) as i64, -14, "-EFAULT");
    assert_eq!(run(&mut e, 0x1000, false), 0, "buffer zeroed");
    // probe_read_kernel can read the program's own stack.
    let mut k = vec![st(Size::DW, 10, -16, 99)];
    k.extend(fp(1, -8));
    k.push(mov(2, 8));
    k.extend(fp(3, -16));
    k.extend([call("probe_read_kernel"), ldx(Size::DW, 0, 10, -8), exit()]);
    assert_eq!(run_once(&mut e, &k, &Context::none()).unwrap(), 99);
}

#[test]
fn task_clock_and_random_are_deterministic() {
    let mut e = env(vec![]);
    let pid = run_once(
        &mut e,
        &[call("get_current_pid_tgid"), exit()],
        &Context::none(),
    )
    .unwrap();
    assert_eq!(pid, e.config().task.pid_tgid());
    let mut comm = vec![];
    comm.extend(fp(1, -16));
    comm.extend([
        mov(2, 16),
        call("get_current_comm"),
        ldx(Size::DW, 0, 10, -16),
        exit(),
    ]);
    assert_eq!(
        run_once(&mut e, &comm, &Context::none()).unwrap(),
        bytes_u64(b"bpfrr\0\0\0")
    );
    let delta = vec![
        call("ktime_get_ns"),
        mov_reg(6, 0),
        call("ktime_get_ns"),
        Insn::Alu {
            width: bpfrr_trace::isa::Width::W64,
            op: bpfrr_trace::isa::AluOp::Sub,
            dst: 0,
            src: bpfrr_trace::isa::Operand::Reg(6),
        },
        exit(),
    ];
    assert_eq!(run_once(&mut e, &delta, &Context::none()).unwrap(), 1000);
    let rnd = [call("get_prandom_u32"), exit()];
    let a = run_once(&mut env(vec![]), &rnd, &Context::none()).unwrap();
    let b = run_once(&mut env(vec![]), &rnd, &Context::none()).unwrap();
    assert_eq!(a, b);
    let c = run_once(&mut e, &rnd, &Context::none()).unwrap();
    let d = run_once(&mut e, &rnd, &Context::none()).unwrap();
    assert_ne!(c, d);
}
