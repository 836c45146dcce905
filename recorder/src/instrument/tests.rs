//! Instrumenter tests, without the kernel: the rewritten program keeps every
//! original instruction (with moved offsets), every branch lands on its
//! target's new place, the function tables agree, probes stay in their
//! scratch slots, and `isa::check` accepts the result.

use super::*;
use crate::wire::*;
use bpfrr_trace::isa::opcode::*;
use bpfrr_trace::isa::{decode, opcode};
use bpfrr_trace::object::ObjectFile;

const RB_FD: i32 = 900;
const STATE_FD: i32 = 901;
const MAP_FD: i32 = 50;
const PROG_ARRAY_FD: i32 = 51;

fn ins(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> RawInsn {
    RawInsn::new(code, dst, src, off, imm)
}

fn cfg(packet: PacketAccess) -> ProbeConfig {
    ProbeConfig {
        prog_id: 3,
        ringbuf_fd: RB_FD,
        state_fd: STATE_FD,
        ctx: CtxCapture::Fields {
            image_len: 24,
            fields: vec![CtxField { off: 12, size: 4 }, CtxField { off: 16, size: 4 }],
        },
        packet,
        packet_cap: 256,
        meta_cap: 32,
        output_cap: 128,
        sites: LogSites::default(),
        scratch: 64 << 10,
        inline_copy_max: 0,
        reuse_state: true,
        packet_unchanged: false,
        batch_bytes: 4096,
        entry_clock: true,
    }
}

fn maps() -> Vec<MapShape> {
    vec![
        MapShape {
            fd: MAP_FD,
            index: 0,
            map_type: MapType::Hash.number(),
            key_size: 4,
            value_size: 16,
        },
        MapShape {
            fd: PROG_ARRAY_FD,
            index: 1,
            map_type: MapType::ProgArray.number(),
            key_size: 4,
            value_size: 4,
        },
    ]
}

/// main: map lookup, a loop-free branch over calls, a call to `sub`, a
/// bpf_loop with callback `cb`, a tail call, two exits. sub and cb each
/// call helpers.
fn sample_program() -> LinkedProgram {
    let mov = |d, i| ins(CLASS_ALU64 | ALU_MOV | SRC_K, d, 0, 0, i);
    let movr = |d, s| ins(CLASS_ALU64 | ALU_MOV | SRC_X, d, s, 0, 0);
    let call = |id| ins(CLASS_JMP | JMP_CALL, 0, 0, 0, id);
    let exit = ins(CLASS_JMP | JMP_EXIT, 0, 0, 0, 0);
    let insns = vec![
        /* 0 */ movr(6, 1),
        /* 1 */ ins(CLASS_ST | MODE_MEM | SIZE_W, 10, 0, -4, 0),
        /* 2 */ movr(2, 10),
        /* 3 */ ins(CLASS_ALU64 | ALU_ADD | SRC_K, 2, 0, 0, -4),
        /* 4 */ ins(CLASS_LD | SIZE_DW | MODE_IMM, 1, PSEUDO_MAP_FD, 0, MAP_FD),
        /* 5 */ ins(0, 0, 0, 0, 0),
        /* 6 */ call(1), // map_lookup_elem
        /* 7 */ ins(CLASS_JMP | JMP_JEQ | SRC_K, 0, 0, 3, 0), // -> 11
        /* 8 */ movr(1, 10),
        /* 9 */ ins(CLASS_ALU64 | ALU_ADD | SRC_K, 1, 0, 0, -16),
        /* 10 */ ins(CLASS_JMP | JMP_CALL, 0, PSEUDO_CALL_LOCAL, 0, 13), // -> sub at 24
        /* 11 */ mov(1, 4),
        /* 12 */
        ins(CLASS_LD | SIZE_DW | MODE_IMM, 2, PSEUDO_FUNC, 0, 14), // -> cb at 27
        /* 13 */ ins(0, 0, 0, 0, 0),
        /* 14 */ mov(3, 0),
        /* 15 */ mov(4, 0),
        /* 16 */ call(181), // bpf_loop
        /* 17 */ movr(1, 6),
        /* 18 */
        ins(
            CLASS_LD | SIZE_DW | MODE_IMM,
            2,
            PSEUDO_MAP_FD,
            0,
            PROG_ARRAY_FD,
        ),
        /* 19 */ ins(0, 0, 0, 0, 0),
        /* 20 */ mov(3, 0),
        /* 21 */ call(12), // tail call
        /* 22 */ mov(0, 2),
        /* 23 */ exit,
        // sub(r1 = buffer): bpf_get_current_comm(buf, 16)
        /* 24 */ mov(2, 16),
        /* 25 */ call(16),
        /* 26 */ exit,
        // cb(index, ctx): r0 = ktime; if r0 > 5 goto +0 ; return 0
        /* 27 */ call(5),
        /* 28 */ ins(CLASS_JMP | JMP_JGT | SRC_K, 0, 0, 0, 5),
        /* 29 */ mov(0, 0),
        /* 30 */ exit,
    ];
    LinkedProgram {
        name: "main".into(),
        section: "xdp".into(),
        prog_type: 6,
        expected_attach_type: None,
        attach_point: String::new(),
        insns,
        functions: vec![
            LinkedFunction {
                name: "main".into(),
                start: 0,
                len: 24,
            },
            LinkedFunction {
                name: "sub".into(),
                start: 24,
                len: 3,
            },
            LinkedFunction {
                name: "cb".into(),
                start: 27,
                len: 4,
            },
        ],
        func_info: vec![
            FuncInfo {
                insn: 0,
                type_id: 1,
                name: "main".into(),
            },
            FuncInfo {
                insn: 24,
                type_id: 2,
                name: "sub".into(),
            },
            FuncInfo {
                insn: 27,
                type_id: 3,
                name: "cb".into(),
            },
        ],
        line_info: [0usize, 4, 7, 11, 17, 22, 24, 26, 27, 29]
            .iter()
            .map(|&i| LineInfo {
                insn: i,
                file: "x.c".into(),
                line: i as u32 + 1,
                col: 1,
                text: format!("line {i}"),
            })
            .collect(),
        license: "GPL".into(),
        btf: None,
        btf_ext: None,
    }
}

/// Every structural property the instrumented program must have.
fn check_invariants(orig: &LinkedProgram, depths: &[u32], out: &Instrumented) {
    let o = check(&orig.insns).expect("original passes");
    let new = check(&out.program.insns).expect("instrumented program passes isa::check");
    assert_eq!(out.new_to_orig.len(), out.program.insns.len());
    assert_eq!(out.orig_to_new.len(), orig.insns.len());

    let n = orig.insns.len();
    for pc in 0..n {
        let np = out.orig_to_new[pc] as usize;
        assert_eq!(out.new_to_orig[np], pc as u32, "new_to_orig of {pc}");
        let Some(insn) = o.insns[pc] else { continue };
        let got = new.insns[np].expect("an original instruction decodes");
        match branch_target(&insn, pc) {
            None => assert_eq!(got, insn, "instruction {pc} kept as is"),
            Some(t) => {
                // Same kind of instruction, target = start of t's code.
                let nt = branch_target(&got, np).unwrap() as usize;
                assert_eq!(
                    out.new_to_orig[nt], t as u32,
                    "branch at {pc} goes to code of {t}"
                );
                // Nothing of an earlier instruction between the landing
                // point and t itself: everything from nt to t's slot belongs to t.
                let tp = out.orig_to_new[t as usize] as usize;
                assert!(nt <= tp);
                assert!((nt..=tp).all(|i| out.new_to_orig[i] == t as u32));
                if t > 0 {
                    assert_ne!(out.new_to_orig[nt - 1], t as u32, "lands at the start");
                }
            }
        }
        // ld_imm64 second slots follow their first.
        if matches!(insn, Insn::LoadImm64 { .. }) {
            assert_eq!(out.program.insns[np + 1], orig.insns[pc + 1]);
        }
    }
    // new_to_orig is monotone (probes sit next to their instruction).
    assert!(out.new_to_orig.windows(2).all(|w| w[0] <= w[1]));

    // Functions: contiguous, cover the program, start where func_info says.
    let mut fs = out.program.functions.clone();
    fs.sort_by_key(|f| f.start);
    assert_eq!(fs[0].start, 0);
    for w in fs.windows(2) {
        assert_eq!(
            w[0].start + w[0].len,
            w[1].start,
            "functions are contiguous"
        );
    }
    let last = fs.last().unwrap();
    assert_eq!(last.start + last.len, out.program.insns.len());
    let fi: Vec<usize> = out.program.func_info.iter().map(|f| f.insn).collect();
    let fstarts: Vec<usize> = fs.iter().map(|f| f.start).collect();
    assert_eq!(fi, fstarts, "func_info at function starts");
    for (a, b) in orig.func_info.iter().zip(&out.program.func_info) {
        assert_eq!((a.type_id, &a.name), (b.type_id, &b.name));
    }
    // Local calls and callback addresses land on function starts.
    for (pc, insn) in new.insns.iter().enumerate() {
        let Some(insn) = insn else { continue };
        if matches!(
            insn,
            Insn::Call(CallTarget::Local(_))
                | Insn::LoadImm64 {
                    kind: Imm64Kind::Func,
                    ..
                }
        ) {
            let t = branch_target(insn, pc).unwrap() as usize;
            assert!(
                fstarts.contains(&t),
                "call at {pc} to {t} is a function start"
            );
        }
    }
    // Line info: same count, strictly increasing, first at 0, one at each
    // function start when the original had one there.
    let li: Vec<usize> = out.program.line_info.iter().map(|l| l.insn).collect();
    assert_eq!(li.len(), orig.line_info.len());
    assert!(li.windows(2).all(|w| w[0] < w[1]), "{li:?}");
    if !li.is_empty() {
        assert_eq!(li[0], 0);
    }
    for (a, b) in orig.line_info.iter().zip(&out.program.line_info) {
        assert_eq!((a.line, &a.text), (b.line, &b.text));
        assert_eq!(out.new_to_orig[b.insn], a.insn as u32);
    }

    // Probe code: r10-relative accesses stay in the frame's scratch slots;
    // maps loaded are bpfrr's; nothing writes r6-r9.
    let starts: Vec<usize> = {
        let mut s: Vec<usize> = orig.functions.iter().map(|f| f.start).collect();
        s.sort();
        s
    };
    let fn_of = |pc: usize| starts.partition_point(|&s| s <= pc) - 1;
    for (np, insn) in new.insns.iter().enumerate() {
        let Some(insn) = insn else { continue };
        let orig_pc = out.new_to_orig[np] as usize;
        if out.orig_to_new[orig_pc] as usize == np
            || (orig.insns[orig_pc].code == (CLASS_LD | SIZE_DW | MODE_IMM)
                && out.orig_to_new[orig_pc] as usize + 1 == np)
        {
            continue; // an original instruction
        }
        let fr = probes::Frame::new(depths[fn_of(orig_pc)]);
        let check_fp = |off: i16| {
            let off = off as i64;
            assert!(
                off >= fr.lowest() && off < -fr.depth,
                "probe at {np} uses r10{off:+}, outside scratch [{}, {})",
                fr.lowest(),
                -fr.depth
            );
        };
        match *insn {
            Insn::Load { src: 10, off, .. } => check_fp(off),
            Insn::Store { dst: 10, off, .. } => check_fp(off),
            Insn::Alu {
                dst: 2,
                op: bpfrr_trace::isa::AluOp::Add,
                src: Operand::Imm(i),
                ..
            } if i < 0 => check_fp(i as i16),
            Insn::LoadImm64 {
                kind: Imm64Kind::MapFd,
                imm,
                ..
            } => assert!(imm == RB_FD as u64 || imm == STATE_FD as u64),
            _ => {}
        }
        let writes = match *insn {
            Insn::Alu { dst, .. } | Insn::Load { dst, .. } | Insn::LoadImm64 { dst, .. } => {
                Some(dst)
            }
            _ => None,
        };
        if let Some(d) = writes {
            assert!(d <= 5, "probe at {np} writes r{d}");
        }
    }
}

use bpfrr_trace::isa::Operand;

#[test]
fn the_sample_program_is_instrumented_consistently() {
    let p = sample_program();
    let depths = [16, 0, 8];
    let out = instrument(&p, &depths, &maps(), &cfg(PacketAccess::Xdp)).unwrap();
    check_invariants(&p, &depths, &out);
    // map lookup, get_current_comm, bpf_loop, ktime (tail call counted apart).
    assert_eq!(out.helper_probes, 4);
    assert_eq!(out.tail_call_probes, 1);
    assert_eq!(out.exit_probes, 1, "only main's exit is recorded");
    assert!(out.unprobed_calls.is_empty());
}

#[test]
fn helper_records_carry_original_indices_and_right_sizes() {
    let p = sample_program();
    let out = instrument(&p, &[16, 0, 8], &maps(), &cfg(PacketAccess::Xdp)).unwrap();
    let new = check(&out.program.insns).unwrap();
    // Collect (record insn index written, record size) per probe: the
    // header's stores through the record (r2) of its first word (kind,
    // flags, size in 8-byte units), then of HDR_INSN.
    let mut headers = Vec::new();
    let mut last_size = None;
    for insn in new.insns.iter().flatten() {
        match *insn {
            Insn::Store {
                dst: 2,
                off,
                src: Operand::Imm(w),
                ..
            } if off == HDR_KIND => last_size = Some(((w as u32) >> 16) as i32 * 8),
            Insn::Store {
                dst: 2,
                off,
                src: Operand::Imm(i),
                ..
            } if off == HDR_INSN => headers.push((i, Some(last_size.take().unwrap()))),
            _ => {}
        }
    }
    let insns: Vec<i32> = headers.iter().map(|h| h.0).collect();
    // entry (0) and tail entry (0), lookup (6), get_current_comm (25)
    // inside sub, ktime (27) inside cb, bpf_loop (16), tail call (21),
    // exit (23): in program order.
    assert_eq!(insns, vec![0, 0, 6, 16, 21, 23, 25, 27]);
    assert_eq!(
        headers[0].1.unwrap() as usize,
        probes::entry_size(&cfg(PacketAccess::Xdp))
    );
    assert_eq!(
        headers[1].1.unwrap() as usize,
        TAIL_ENTRY_LEN,
        "a tail entry has no packet"
    );
    let size_of = |insn: i32| headers.iter().find(|h| h.0 == insn).unwrap().1.unwrap();
    // lookup: one returned-memory output of the map's 16-byte value.
    assert_eq!(size_of(6) as usize, HELPER_OUTPUTS + OUT_HEADER_LEN + 16);
    // get_current_comm: size 16 is a constant in r2.
    assert_eq!(size_of(25) as usize, HELPER_OUTPUTS + OUT_HEADER_LEN + 16);
    assert_eq!(size_of(27) as usize, HELPER_OUTPUTS);
    assert_eq!(size_of(21) as usize, TAIL_LEN);
    assert_eq!(size_of(23) as usize, EXIT_PKT + 256);
}

#[test]
fn tail_call_probe_names_the_program_array_and_restores_arguments() {
    let p = sample_program();
    let out = instrument(&p, &[16, 0, 8], &maps(), &cfg(PacketAccess::Xdp)).unwrap();
    let new = check(&out.program.insns).unwrap();
    let call_at = out.orig_to_new[21] as usize;
    // The three instructions before the call reload r1, r2, r3.
    for (k, r) in (1..=3u8).enumerate() {
        match new.insns[call_at - 3 + k].unwrap() {
            Insn::Load { dst, src: 10, .. } => assert_eq!(dst, r),
            other => panic!("{other:?}"),
        }
    }
    let map_store = new
        .insns
        .iter()
        .flatten()
        .find_map(|i| match *i {
            // The tail-call probe writes its payload through r0.
            Insn::Store {
                size: bpfrr_trace::isa::Size::W,
                dst: 0,
                off,
                src: Operand::Imm(m),
            } if off == TAIL_MAP => Some(m),
            _ => None,
        })
        .unwrap();
    assert_eq!(map_store, 1, "object index of the prog array");
}

#[test]
fn wrong_stack_depth_count_is_an_error() {
    let p = sample_program();
    let e = instrument(&p, &[16], &maps(), &cfg(PacketAccess::Xdp)).unwrap_err();
    assert!(matches!(
        e,
        InstrumentError::StackDepths { got: 1, want: 3 }
    ));
    assert!(e.to_string().contains("3 functions"));
}

#[test]
fn too_deep_stacks_are_reported_with_the_chain() {
    let p = sample_program();
    let e = instrument(&p, &[400, 8, 8], &maps(), &cfg(PacketAccess::Xdp)).unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, InstrumentError::StackTooDeep { .. }), "{text}");
    assert!(text.contains("main -> "), "{text}");
}

#[test]
fn long_jumps_are_detected() {
    // if r0 == 0 goto +N over many helper calls: fine while it fits.
    let mut insns = vec![ins(CLASS_JMP | JMP_JEQ | SRC_K, 1, 0, 2000, 0)];
    for _ in 0..2000 {
        insns.push(ins(CLASS_JMP | JMP_CALL, 0, 0, 0, 5));
    }
    insns.push(ins(CLASS_ALU64 | ALU_MOV | SRC_K, 0, 0, 0, 0));
    insns.push(ins(CLASS_JMP | JMP_EXIT, 0, 0, 0, 0));
    let mut p = sample_program();
    p.insns = insns;
    p.functions = vec![LinkedFunction {
        name: "main".into(),
        start: 0,
        len: p.insns.len(),
    }];
    p.func_info.truncate(1);
    p.line_info.truncate(1);
    let e = instrument(&p, &[0], &maps(), &cfg(PacketAccess::None)).unwrap_err();
    assert!(
        matches!(e, InstrumentError::JumpTooFar { insn: 0, .. }),
        "{e}"
    );
}

#[test]
fn skb_and_raw_contexts_use_their_capture_code() {
    let p = sample_program();
    let mut c = cfg(PacketAccess::Skb);
    let out = instrument(&p, &[16, 0, 8], &maps(), &c).unwrap();
    check_invariants(&p, &[16, 0, 8], &out);
    let calls = |out: &Instrumented, id: i32| {
        check(&out.program.insns)
            .unwrap()
            .insns
            .iter()
            .flatten()
            .filter(|i| **i == Insn::Call(CallTarget::Helper(id)))
            .count()
    };
    assert_eq!(
        calls(&out, probes::HELPER_SKB_LOAD_BYTES),
        2,
        "entry + exit"
    );
    c.packet = PacketAccess::None;
    c.ctx = CtxCapture::Bytes(48);
    let out = instrument(&p, &[16, 0, 8], &maps(), &c).unwrap();
    check_invariants(&p, &[16, 0, 8], &out);
    assert_eq!(calls(&out, probes::HELPER_SKB_LOAD_BYTES), 0);
    // One probe_read for the context, one per output (lookup, comm).
    assert_eq!(calls(&out, probes::HELPER_PROBE_READ_KERNEL), 3);
}

#[test]
fn the_entry_reads_the_clock_only_when_asked() {
    let p = sample_program();
    let ktime_calls = |c: &ProbeConfig| {
        let out = instrument(&p, &[16, 0, 8], &maps(), c).unwrap();
        check_invariants(&p, &[16, 0, 8], &out);
        check(&out.program.insns)
            .unwrap()
            .insns
            .iter()
            .flatten()
            .filter(|i| **i == Insn::Call(CallTarget::Helper(probes::HELPER_KTIME_GET_NS)))
            .count()
    };
    let mut c = cfg(PacketAccess::Xdp);
    let with_clock = ktime_calls(&c);
    c.entry_clock = false;
    let without = ktime_calls(&c);
    // The program's own call (in its callback) stays; the entry's goes.
    assert_eq!(without, 1);
    assert_eq!(with_clock, without + 1);
}

/// Every program of every sample object, linked with stand-in fds.
#[test]
fn every_sample_program_is_instrumented_consistently() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if !path.to_string_lossy().ends_with(".bpf.o") {
            continue;
        }
        let obj = ObjectFile::parse(&std::fs::read(&path).unwrap()).unwrap();
        let defs = obj.maps();
        let fds: Vec<i32> = (0..defs.len() as i32).map(|i| 100 + i).collect();
        let shapes: Vec<MapShape> = defs
            .iter()
            .enumerate()
            .map(|(i, d)| MapShape {
                fd: fds[i],
                index: i as u32,
                map_type: d.map_type,
                key_size: d.key_size,
                value_size: d.value_size,
            })
            .collect();
        for prog in obj.programs() {
            let linked = obj.link(&prog.name, &fds).unwrap();
            let depths: Vec<u32> = linked.functions.iter().map(|_| 64).collect();
            let out = instrument(&linked, &depths, &shapes, &cfg(PacketAccess::Skb))
                .unwrap_or_else(|e| panic!("{}: {}: {e}", path.display(), prog.name));
            check_invariants(&linked, &depths, &out);
            assert!(out.exit_probes >= 1, "{}", prog.name);
            count += 1;
        }
    }
    assert!(count >= 7, "found only {count} sample programs");
}

#[test]
fn probe_ld_imm64_decodes_as_a_map_load() {
    let mut b = asm::Block::new();
    b.ld_map_fd(1, RB_FD);
    let insns = b.finish();
    assert_eq!(
        decode(&insns, 0).unwrap(),
        Insn::LoadImm64 {
            kind: Imm64Kind::MapFd,
            dst: 1,
            imm: RB_FD as u64
        }
    );
    let _ = opcode::PSEUDO_MAP_FD;
}

/// A tp_btf-like program: a context load, a load through the BTF pointer
/// it gave (r3 = task->pid, r4 live across it), a kfunc taking r1.
fn btf_program() -> LinkedProgram {
    let insns = vec![
        /* 0 */ ins(CLASS_LDX | SIZE_DW | MODE_MEM, 2, 1, 8, 0),
        /* 1 */ ins(CLASS_ALU64 | ALU_MOV | SRC_K, 4, 0, 0, 5),
        /* 2 */ ins(CLASS_LDX | SIZE_W | MODE_MEM, 3, 2, 1234, 0),
        /* 3 */ ins(CLASS_ALU64 | ALU_ADD | SRC_X, 3, 4, 0, 0),
        /* 4 */ ins(CLASS_ALU64 | ALU_MOV | SRC_X, 1, 3, 0, 0),
        /* 5 */ ins(CLASS_JMP | JMP_CALL, 0, PSEUDO_CALL_KFUNC, 0, 777),
        /* 6 */ ins(CLASS_LDX | SIZE_W | MODE_MEM, 7, 2, 16, 0),
        /* 7 */ ins(CLASS_ALU64 | ALU_MOV | SRC_K, 0, 0, 0, 0),
        /* 8 */ ins(CLASS_JMP | JMP_EXIT, 0, 0, 0, 0),
    ];
    let mut p = sample_program();
    p.functions = vec![LinkedFunction {
        name: "main".into(),
        start: 0,
        len: insns.len(),
    }];
    p.insns = insns;
    p.func_info.truncate(1);
    p.line_info.truncate(1);
    p
}

fn btf_cfg() -> ProbeConfig {
    let mut c = cfg(PacketAccess::None);
    c.ctx = CtxCapture::Bytes(16);
    c.sites = LogSites {
        btf_loads: vec![
            BtfLoadSite {
                insn: 2,
                dst: 3,
                keep: 1 << 3 | 1 << 4,
            },
            // r7 = *(u32 *)(r2 + 16): the destination is callee-saved.
            BtfLoadSite {
                insn: 6,
                dst: 7,
                keep: 0,
            },
        ],
        kfuncs: vec![KfuncSite {
            insn: 5,
            name: Some("bpf_task_from_pid".into()),
            returns_value: true,
        }],
        unrecorded_loads: Vec::new(),
    };
    c
}

#[test]
fn btf_loads_are_recorded_with_their_live_registers_kept() {
    let p = btf_program();
    let out = instrument(&p, &[0], &maps(), &btf_cfg()).unwrap();
    check_invariants(&p, &[0], &out);
    assert_eq!(out.btf_load_probes, 2);
    assert_eq!(out.kfunc_probes, 1);
    assert!(out.unprobed_calls.is_empty());
    let new = check(&out.program.insns).unwrap();
    let fr = probes::Frame::new(0);
    // The probe after the load at 2: its code maps to 2 and sits right
    // after the load; it saves r3 and r4 first and restores them last.
    let load_at = out.orig_to_new[2] as usize;
    let probe: Vec<Insn> = (load_at + 1..out.orig_to_new[3] as usize)
        .filter_map(|i| new.insns[i])
        .collect();
    assert!(
        (load_at + 1..out.orig_to_new[3] as usize).all(|i| out.new_to_orig[i] == 2),
        "the probe belongs to the load"
    );
    assert_eq!(
        &probe[..2],
        &[
            Insn::Store {
                size: bpfrr_trace::isa::Size::DW,
                dst: 10,
                off: fr.arg(2) as i16,
                src: Operand::Reg(3)
            },
            Insn::Store {
                size: bpfrr_trace::isa::Size::DW,
                dst: 10,
                off: fr.arg(3) as i16,
                src: Operand::Reg(4)
            },
        ]
    );
    let n = probe.len();
    assert_eq!(
        &probe[n - 2..],
        &[
            Insn::Load {
                size: bpfrr_trace::isa::Size::DW,
                signed: false,
                dst: 3,
                src: 10,
                off: fr.arg(2) as i16
            },
            Insn::Load {
                size: bpfrr_trace::isa::Size::DW,
                signed: false,
                dst: 4,
                src: 10,
                off: fr.arg(3) as i16
            },
        ]
    );
    // It writes a BtfLoad record for instruction 2 with the saved r3 (the
    // header through the record pointer `reserve` leaves in r2, the
    // payload through r0).
    let has_store = |probe: &[Insn], off: i16, v: i32| {
        probe.iter().any(|i| {
            matches!(*i, Insn::Store { dst: 0 | 2, off: o, src: Operand::Imm(x), .. } if o == off && x == v)
        })
    };
    assert!(has_store(
        &probe,
        HDR_KIND,
        header_word(RecordKind::BtfLoad, 0, BTF_LOAD_LEN)
    ));
    assert!(has_store(&probe, HDR_INSN, 2));
    assert!(probe.iter().any(|i| matches!(
        *i,
        Insn::Store { dst: 0, off, src: Operand::Reg(2), .. } if off == BTF_LOAD_VALUE
    )));
    // The load at 6 into r7 keeps nothing and stores r7 itself.
    let at6 = out.orig_to_new[6] as usize;
    let probe6: Vec<Insn> = (at6 + 1..out.orig_to_new[7] as usize)
        .filter_map(|i| new.insns[i])
        .collect();
    assert!(has_store(&probe6, HDR_INSN, 6));
    assert!(probe6.iter().any(|i| matches!(
        *i,
        Insn::Store { dst: 0, off, src: Operand::Reg(7), .. } if off == BTF_LOAD_VALUE
    )));
    let kept_slots: Vec<i16> = std::iter::once(fr.r0())
        .chain((0..5).map(|a| fr.arg(a)))
        .map(|o| o as i16)
        .collect();
    assert!(
        !probe6
            .iter()
            .any(|i| matches!(*i, Insn::Store { dst: 10, off, .. } if kept_slots.contains(&off))),
        "no register is kept around the load into r7"
    );
    // The kfunc probe: a helper record flagged kfunc, with its BTF id.
    let at5 = out.orig_to_new[5] as usize;
    let probe5: Vec<Insn> = (at5 + 1..out.orig_to_new[6] as usize)
        .filter_map(|i| new.insns[i])
        .collect();
    assert!(has_store(&probe5, HELPER_ID, 777));
    assert!(has_store(
        &probe5,
        HDR_KIND,
        header_word(RecordKind::Helper, FLAG_KFUNC, HELPER_OUTPUTS)
    ));
    // A void kfunc: r0 is neither saved nor restored.
    let mut c = btf_cfg();
    c.sites.kfuncs[0].returns_value = false;
    let out = instrument(&p, &[0], &maps(), &c).unwrap();
    let new = check(&out.program.insns).unwrap();
    let at5 = out.orig_to_new[5] as usize;
    assert!(
        (at5 + 1..out.orig_to_new[6] as usize)
            .filter_map(|i| new.insns[i])
            .all(|i| !matches!(i, Insn::Store { dst: 10, src: Operand::Reg(0), off, .. } if off as i64 == fr.r0())),
        "a void kfunc's r0 is not read"
    );
}

#[test]
fn kfuncs_unknown_to_the_log_or_under_a_lock_are_not_probed() {
    let p = btf_program();
    let mut c = btf_cfg();
    c.sites.kfuncs.clear();
    let out = instrument(&p, &[0], &maps(), &c).unwrap();
    assert_eq!(out.kfunc_probes, 0);
    assert_eq!(out.unprobed_calls.len(), 1);
    assert!(out.unprobed_calls[0].1.contains("verifier log"));
    let mut c = btf_cfg();
    c.sites.kfuncs[0].name = Some("bpf_rbtree_add_impl".into());
    let out = instrument(&p, &[0], &maps(), &c).unwrap();
    assert!(out.unprobed_calls[0].1.contains("spin lock"));
}

/// The BTF-load probe in the main function shares the entry's state
/// lookup (reuse_state) and leaves the slots other probes rely on alone:
/// the registers it keeps go to slots apart from the state, record, key
/// and context slots, and it never rewrites the state slot.
#[test]
fn btf_load_probes_respect_the_shared_state_slot() {
    let p = btf_program();
    let fr = probes::Frame::main(0);
    let shared = [fr.state(), fr.rec(), fr.key(), fr.ctx()];
    for r in 0..=5u8 {
        let slot = if r == 0 { fr.r0() } else { fr.arg(r - 1) };
        assert!(!shared.contains(&slot), "r{r} is kept in a shared slot");
        assert!(slot >= fr.lowest());
    }
    let probe_at = |c: &ProbeConfig| {
        let out = instrument(&p, &[0], &maps(), c).unwrap();
        check_invariants(&p, &[0], &out);
        let new = check(&out.program.insns).unwrap();
        (out.orig_to_new[2] as usize + 1..out.orig_to_new[3] as usize)
            .filter_map(|i| new.insns[i])
            .collect::<Vec<Insn>>()
    };
    let lookups = |probe: &[Insn]| {
        probe
            .iter()
            .filter(|i| {
                matches!(
                    i,
                    Insn::Call(CallTarget::Helper(id)) if *id == probes::HELPER_MAP_LOOKUP_ELEM
                )
            })
            .count()
    };
    let writes_state = |probe: &[Insn]| {
        probe
            .iter()
            .any(|i| matches!(*i, Insn::Store { dst: 10, off, .. } if off as i64 == fr.state()))
    };
    let mut c = btf_cfg();
    c.reuse_state = true;
    let shared_probe = probe_at(&c);
    assert_eq!(lookups(&shared_probe), 0, "the entry's lookup is reused");
    assert!(!writes_state(&shared_probe));
    assert!(shared_probe.iter().any(|i| matches!(
        *i,
        Insn::Load { dst: 0, src: 10, off, .. } if off as i64 == fr.state()
    )));
    c.reuse_state = false;
    let own_probe = probe_at(&c);
    assert_eq!(lookups(&own_probe), 1, "without reuse the probe looks up");
}
