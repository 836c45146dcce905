//! Packet dynptrs in replay and in the model, without a kernel: the
//! dynptr kfuncs are known by name (the trace's `Program::kfuncs`), carried
//! out on the VM's memory; a slice is the VM address of the packet bytes,
//! never the recorded kernel pointer; the recorded r0 checks each call (a
//! different result is a divergence naming the kfunc or helper);
//! bpf_dynptr_write changes the VM's packet and a session undoes it; and
//! dynptrs of other kinds (a local one from bpf_dynptr_from_mem) still
//! replay from the recording.

mod model_support;
mod replay_support;

use bpfrr_replayer::replay::{DivergenceKind, Replayer, check_all, replay_invocation};
use bpfrr_replayer::session::{Session, StopReason};
use bpfrr_replayer::vm::{Context, FaultKind, XdpMd};
use bpfrr_trace::isa::{CallTarget, Insn, Size};
use bpfrr_trace::trace::{EventKind, HelperEvent, HelperOutput, Invocation, KfuncName, Trace};
use model_support::*;
use replay_support::*;

const XDP: u32 = 6;
/// BTF ids of the recording kernel (any numbers: only the names count).
const FROM_XDP: i32 = 72_001;
const SLICE: i32 = 72_002;
const CLONE: i32 = 72_003;
/// Where the kernel's slice pointed: its packet.
const KERNEL_PACKET: u64 = 0xffff_8880_1234_5000;
const EINVAL_R0: u64 = (-22i32) as u32 as u64;

fn kfunc(btf_id: i32) -> Insn {
    Insn::Call(CallTarget::Kfunc { btf_id, module: 0 })
}

/// `int prog(struct xdp_md *ctx) { struct bpf_dynptr d; u16 b = 0x0b0a;
///   bpf_dynptr_from_xdp(ctx, 0, &d); bpf_dynptr_write(&d, 2, &b, 2, 0);
///   u8 *p = bpf_dynptr_slice(&d, 0, buf, 4); return p ? p[3] : 99; }`
/// (r8: the write's result).
fn program_insns() -> Vec<Insn> {
    let [d0, d1] = fp(7, -16);
    let [b0, b1] = fp(3, -32);
    let [s0, s1] = fp(3, -32);
    vec![
        st(Size::H, 10, -32, 0x0b0a), // 0: the bytes to write
        d0,                           // 1: r7 = r10
        d1,                           // 2: r7 += -16 (the dynptr)
        mov(2, 0),                    // 3: flags (r1 = ctx already)
        mov_reg(3, 7),                // 4
        kfunc(FROM_XDP),              // 5
        mov_reg(1, 7),                // 6
        mov(2, 2),                    // 7: offset
        b0,                           // 8
        b1,                           // 9: r3 = the bytes
        mov(4, 2),                    // 10: len
        mov(5, 0),                    // 11: flags
        call("dynptr_write"),         // 12
        mov_reg(8, 0),                // 13
        mov_reg(1, 7),                // 14
        mov(2, 0),                    // 15: offset
        s0,                           // 16
        s1,                           // 17: r3 = buffer
        mov(4, 4),                    // 18: len
        kfunc(SLICE),                 // 19
        jeq(0, 0, 2),                 // 20: -> 23
        ldx(Size::B, 0, 0, 3),        // 21: p[3]
        exit(),                       // 22
        mov(0, 99),                   // 23
        exit(),                       // 24
    ]
}

fn kfunc_names() -> Vec<KfuncName> {
    [
        (FROM_XDP, "bpf_dynptr_from_xdp"),
        (SLICE, "bpf_dynptr_slice"),
    ]
    .iter()
    .map(|&(id, name)| KfuncName {
        btf_id: id as u32,
        name: name.into(),
    })
    .collect()
}

fn xdp_program() -> bpfrr_trace::trace::Program {
    let mut p = trace_program(0, "dynptr", XDP, &program_insns());
    p.verifier = verifier(&[32]);
    p.kfuncs = kfunc_names();
    p
}

fn input(packet: &[u8]) -> Input {
    Input {
        ctx: vec![0; 24],
        packet: Some(packet.to_vec()),
        ..Input::default()
    }
}

/// A model recording of the program on a 6-byte and a 2-byte packet.
fn recorded() -> Trace {
    record(
        &[xdp_program()],
        &[],
        &[input(&[1, 2, 3, 4, 5, 6]), input(&[7, 8])],
        |_| {},
    )
}

/// The recording's first invocation, with the event at `insn` changed.
fn edit_event(insn: u32, f: impl FnOnce(&mut HelperEvent)) -> Trace {
    let t = recorded();
    let mut invs = invocations(&t);
    invs.truncate(1);
    let e = invs[0].events.iter_mut().find(|e| e.insn == insn).unwrap();
    f(e);
    with_invocations(&t, invs)
}

#[test]
fn packet_dynptr_programs_record_and_replay_identically() {
    let t = recorded();
    let invs = invocations(&t);
    // The write landed at offset 2; the slice read byte 3 (0x0b).
    assert_eq!(invs[0].retval, 0x0b);
    assert_eq!(
        invs[0].final_packet.as_deref(),
        Some(&[1, 2, 0x0a, 0x0b, 5, 6][..])
    );
    // 2 bytes: the write is -E2BIG, the slice NULL.
    assert_eq!(invs[1].retval, 99);
    let kinds: Vec<(u32, EventKind, u64)> = invs[1]
        .events
        .iter()
        .map(|e| (e.insn, e.kind, e.ret))
        .collect();
    assert_eq!(
        kinds,
        [
            (5, EventKind::Kfunc, 0),
            (12, EventKind::Helper, (-7i64) as u64),
            (19, EventKind::Kfunc, 0)
        ]
    );
    let summary = check_all(&t);
    assert!(summary.all_identical() && summary.total == 2, "{summary:?}");
}

#[test]
fn slices_are_vm_addresses_into_the_packet_not_the_kernels() {
    // The kernel's slice pointed into its own memory.
    let t = edit_event(19, |e| e.ret = KERNEL_PACKET);
    let summary = check_all(&t);
    assert!(summary.all_identical(), "{summary:?}");
    let mut r = Replayer::new(&t);
    let mut s = Session::for_invocation(&mut r, 0).unwrap();
    s.goto_visit(20, None, true);
    let p = s.regs()[0];
    assert_ne!(p, KERNEL_PACKET);
    let packet = s.machine().memory().packet().unwrap();
    assert_eq!(p, packet.data, "r0 is the VM address of the packet data");
    assert_eq!(s.continue_().reason, StopReason::Exited { r0: 0x0b });
}

#[test]
fn a_slice_null_in_the_recording_only_is_a_divergence() {
    let t = edit_event(19, |e| e.ret = 0);
    let d = replay_invocation(&t, 0).unwrap().divergence.unwrap();
    assert_eq!(d.at.insn, 19);
    assert!(matches!(d.kind, DivergenceKind::Call { .. }), "{d:?}");
    assert!(
        d.message
            .contains("bpf_dynptr_slice returns a pointer in the replay, NULL in the recording"),
        "{d}"
    );
}

#[test]
fn other_results_than_the_kernels_are_divergences_naming_the_call() {
    let t = edit_event(5, |e| e.ret = EINVAL_R0);
    let d = replay_invocation(&t, 0).unwrap().divergence.unwrap();
    assert!(
        d.message
            .contains("bpf_dynptr_from_xdp returns 0 in the replay, -22 in the recording"),
        "{d}"
    );
    let t = edit_event(12, |e| e.ret = (-7i64) as u64);
    let d = replay_invocation(&t, 0).unwrap().divergence.unwrap();
    assert_eq!(d.at.insn, 12);
    assert!(
        d.message
            .contains("bpf_dynptr_write returns 0 in the replay, -7 in the recording"),
        "{d}"
    );
}

#[test]
fn sessions_undo_dynptr_writes_and_slices_exactly() {
    let t = recorded();
    let mut r = Replayer::new(&t);
    let mut s = Session::for_invocation(&mut r, 0).unwrap();
    let start = s.machine().state().clone();
    s.goto_visit(5, None, true);
    let before = s.machine().state().clone();
    s.step(); // from_xdp writes the dynptr on the stack
    let dynptr = s.regs()[7];
    let bytes = s.machine().memory().read(dynptr, 16).unwrap().to_vec();
    assert_eq!(bytes[8..12], (6u32 | 4 << 28).to_le_bytes(), "size 6, XDP");
    s.reverse_step();
    assert!(before == *s.machine().state(), "the dynptr is undone");
    s.goto_visit(12, None, true);
    s.step(); // the write changes the packet
    assert_eq!(
        s.machine().memory().packet_data().unwrap(),
        [1, 2, 0x0a, 0x0b, 5, 6]
    );
    s.reverse_step();
    assert_eq!(
        s.machine().memory().packet_data().unwrap(),
        [1, 2, 3, 4, 5, 6]
    );
    assert_eq!(s.continue_().reason, StopReason::Exited { r0: 0x0b });
    assert_eq!(s.reverse_continue().reason, StopReason::Start);
    assert!(start == *s.machine().state(), "back at the start");
}

#[test]
fn the_model_runs_packet_dynptrs_by_name_and_only_vmlinux_ones() {
    let mut e = env(Vec::new());
    e.set_kfunc_names(
        kfunc_names()
            .into_iter()
            .map(|k| (k.btf_id, k.name))
            .collect::<Vec<_>>(),
    );
    let ctx = Context::xdp(&[9, 9, 9, 9, 9], &[], XdpMd::default());
    assert_eq!(run_once(&mut e, &program_insns(), &ctx), Ok(0x0b));
    // A module's BTF ids are its own: the same number in module 1 is
    // another kfunc.
    let insns: Vec<Insn> = program_insns()
        .into_iter()
        .map(|i| match i {
            Insn::Call(CallTarget::Kfunc {
                btf_id: FROM_XDP, ..
            }) => Insn::Call(CallTarget::Kfunc {
                btf_id: FROM_XDP,
                module: 1,
            }),
            other => other,
        })
        .collect();
    let f = run_once(&mut e, &insns, &ctx).unwrap_err();
    assert!(
        matches!(
            f.kind,
            FaultKind::UnknownKfunc {
                btf_id: FROM_XDP,
                module: 1
            }
        ),
        "{f:?}"
    );
}

#[test]
fn local_dynptrs_still_replay_from_the_recording() {
    // bpf_dynptr_from_mem(buf, 4, 0, &d); bpf_dynptr_clone(&d, &c);
    // bpf_dynptr_read(out, 4, &c, 0, 0); return *(u32 *)out. The recording
    // holds the kernel's dynptr bytes (a LOCAL dynptr with a kernel
    // address), clone's result and what the read wrote: the clone gets the
    // kernel bytes, so the read on it replays from the recording too.
    let [d0, d1] = fp(4, -16);
    let [m0, m1] = fp(1, -24);
    let [o0, o1] = fp(1, -32);
    let [r0, r1] = fp(3, -48);
    let [c0, c1] = fp(1, -16);
    let [c2, c3] = fp(2, -48);
    let clone = vec![c0, c1, c2, c3, kfunc(CLONE)]; // 7-11
    let mut insns = vec![
        m0,
        m1,
        mov(2, 4),
        mov(3, 0),
        d0,
        d1,
        call("dynptr_from_mem"), // 6
        o0,
        o1,
        mov(2, 4),
        r0,
        r1,
        mov(4, 0),
        mov(5, 0),
        call("dynptr_read"), // 14 + 5
        ldx(Size::W, 0, 10, -32),
        exit(),
    ];
    insns.splice(7..7, clone);
    let mut kernel_dynptr = 0xffff_c900_0000_7fe8u64.to_le_bytes().to_vec();
    kernel_dynptr.extend((4u32 | 1 << 28).to_le_bytes());
    kernel_dynptr.extend(0u32.to_le_bytes());
    let event = |insn: u32, name: &str, arg: u8, bytes: Vec<u8>| HelperEvent {
        insn,
        kind: EventKind::Helper,
        id: helper_id(name),
        ret: 0,
        outputs: vec![HelperOutput { arg, bytes }],
    };
    let mut p = trace_program(0, "local", 26, &insns);
    p.verifier = verifier(&[48]);
    p.kfuncs = vec![KfuncName {
        btf_id: CLONE as u32,
        name: "bpf_dynptr_clone".into(),
    }];
    let clone_event = HelperEvent {
        insn: 11,
        kind: EventKind::Kfunc,
        id: CLONE as u32,
        ret: 0,
        outputs: Vec::new(),
    };
    let inv = Invocation {
        ctx: vec![0; 16],
        events: vec![
            event(6, "dynptr_from_mem", 4, kernel_dynptr.clone()),
            clone_event,
            event(19, "dynptr_read", 1, vec![1, 2, 3, 4]),
        ],
        retval: 0x0403_0201,
        ..Invocation::default()
    };
    let t = write_trace(&[p], &[], vec![inv]);
    let summary = check_all(&t);
    assert!(summary.all_identical(), "{summary:?}");
    let mut r = Replayer::new(&t);
    let mut s = Session::for_invocation(&mut r, 0).unwrap();
    s.goto_visit(12, None, true);
    let clone = s.machine().memory().read(s.regs()[10] - 48, 16).unwrap();
    assert_eq!(
        clone,
        &kernel_dynptr[..],
        "the clone holds the kernel's bytes"
    );
}
