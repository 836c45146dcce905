//! The bpf(2) wrappers against the running kernel.
#![cfg(target_os = "linux")]

mod common;

use bpfrr_recorder::sys::{
    BpfMap, LogLevel, MapSpec, ProgLoad, SysError, load_btf, possible_cpus, prog_info,
};
use bpfrr_recorder::testrun::{RunInput, RunKind, run};
use bpfrr_recorder::verifier_stats::VerifierStats;
use bpfrr_trace::isa::RawInsn;
use bpfrr_trace::isa::opcode::*;

const XDP: u32 = 6;
const SOCKET_FILTER: u32 = 1;
const SCHED_CLS: u32 = 3;
const RAW_TRACEPOINT: u32 = 17;

fn mov_imm(dst: u8, imm: i32) -> RawInsn {
    RawInsn::new(CLASS_ALU64 | ALU_MOV | SRC_K, dst, 0, 0, imm)
}
fn exit() -> RawInsn {
    RawInsn::new(CLASS_JMP | JMP_EXIT, 0, 0, 0, 0)
}
fn ldx(size: u8, dst: u8, src: u8, off: i16) -> RawInsn {
    RawInsn::new(CLASS_LDX | MODE_MEM | size, dst, src, off, 0)
}

fn frame(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + 3) as u8).collect()
}

#[test]
fn xdp_program_loads_with_log_statistics_and_info() {
    if !common::kernel_tests_enabled("xdp_program_loads_with_log_statistics_and_info") {
        return;
    }
    // *(u64 *)(r10 - 16) = 0; r0 = 2 (XDP_PASS); exit
    let insns = [
        RawInsn::new(CLASS_ST | MODE_MEM | SIZE_DW, REG_FP, 0, -16, 0),
        mov_imm(0, 2),
        exit(),
    ];
    let mut load = ProgLoad::new(XDP, &insns);
    load.name = "bpfrr-test/xdp";
    load.log_level = LogLevel::FULL;
    let prog = load.load().expect("a trivial XDP program loads");
    assert!(!prog.log_truncated);
    assert!(
        prog.log.contains("r0 = 2"),
        "level 2 shows each instruction:\n{}",
        prog.log
    );
    let stats = VerifierStats::parse(&prog.log).expect("statistics line");
    assert_eq!(stats.insns_processed, 3);
    assert_eq!(stats.insn_limit, 1_000_000);
    assert_eq!(stats.stack_depths, vec![16]);
    assert!(stats.verification_time_usec.is_some());

    let info = prog_info(&prog.fd).expect("prog info");
    assert_eq!(info.prog_type, XDP);
    assert_eq!(info.name, "bpfrrtestxdp");
    assert_eq!(info.xlated.len(), 3);
    assert_eq!(info.xlated[1], insns[1]);
    assert!(!info.jited.is_empty(), "JIT is always on here");
    assert_eq!(info.nr_jited_ksyms(), 1);
    assert_eq!(info.jited_func_lens.len(), 1);
    assert_eq!(info.jited_func_lens[0] as usize, info.jited.len());
    assert!(info.verified_insns >= 3);

    let packet = frame(60);
    let out = run(
        &prog.fd,
        RunKind::Xdp,
        RunInput::Packet {
            frame: &packet,
            ctx: None,
        },
        1,
    )
    .expect("test run");
    assert_eq!(out.retval, 2);
    assert_eq!(out.data_out, packet);
}

#[test]
fn rejected_program_carries_errno_and_log() {
    if !common::kernel_tests_enabled("rejected_program_carries_errno_and_log") {
        return;
    }
    // r0 = r2 (never initialised); exit
    let insns = [
        RawInsn::new(CLASS_ALU64 | ALU_MOV | SRC_X, 0, 2, 0, 0),
        exit(),
    ];
    let err = ProgLoad::new(XDP, &insns).load().unwrap_err();
    match &err {
        SysError::Rejected { errno, log } => {
            assert_eq!(*errno, libc_eacces());
            assert!(log.contains("R2 !read_ok"), "{log}");
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("EACCES") && text.contains("R2 !read_ok"),
        "{text}"
    );
}

fn libc_eacces() -> i32 {
    13
}

#[test]
fn log_buffer_grows_until_a_big_log_fits() {
    if !common::kernel_tests_enabled("log_buffer_grows_until_a_big_log_fits") {
        return;
    }
    // ~40000 straight-line instructions: a level-2 log of several MiB,
    // more than the first 1 MiB buffer.
    let mut insns = vec![mov_imm(0, 0)];
    insns.extend((0..40_000).map(|_| RawInsn::new(CLASS_ALU64 | ALU_ADD | SRC_K, 0, 0, 0, 1)));
    insns.push(exit());
    let mut load = ProgLoad::new(XDP, &insns);
    load.log_level = LogLevel::FULL;
    let prog = load.load().expect("long program loads");
    assert!(prog.log.len() > 1 << 20, "log is {} bytes", prog.log.len());
    assert!(!prog.log_truncated);
    // The whole log is there: its first and last instructions and the statistics.
    assert!(prog.log.contains("0: (b7) r0 = 0"));
    assert!(prog.log.contains("40001: (95) exit"));
    let stats = VerifierStats::parse(&prog.log).unwrap();
    assert_eq!(stats.insns_processed, 40_002);
}

#[test]
fn map_operations() {
    if !common::kernel_tests_enabled("map_operations") {
        return;
    }
    let hash = BpfMap::create(&MapSpec {
        map_type: 1,
        key_size: 4,
        value_size: 8,
        max_entries: 4,
        name: "t_hash".into(),
        ..MapSpec::default()
    })
    .unwrap();
    assert_eq!(hash.lookup(&7u32.to_le_bytes()).unwrap(), None);
    hash.update(&7u32.to_le_bytes(), &99u64.to_le_bytes(), 0)
        .unwrap();
    hash.update(&8u32.to_le_bytes(), &100u64.to_le_bytes(), 0)
        .unwrap();
    assert_eq!(
        hash.lookup(&7u32.to_le_bytes()).unwrap(),
        Some(99u64.to_le_bytes().to_vec())
    );
    // BPF_NOEXIST on an existing key fails with EEXIST.
    let e = hash
        .update(&7u32.to_le_bytes(), &1u64.to_le_bytes(), 1)
        .unwrap_err();
    assert_eq!(e.errno(), Some(17));
    let mut keys = hash.keys().unwrap();
    keys.sort();
    assert_eq!(
        keys,
        vec![7u32.to_le_bytes().to_vec(), 8u32.to_le_bytes().to_vec()]
    );
    assert_eq!(hash.entries().unwrap().len(), 2);
    assert!(hash.delete(&7u32.to_le_bytes()).unwrap());
    assert!(!hash.delete(&7u32.to_le_bytes()).unwrap());
    assert!(
        hash.lookup(&[0u8; 3]).is_err(),
        "wrong key size is an error"
    );
    let info = bpfrr_recorder::sys::map_info(&hash.fd).unwrap();
    assert_eq!(
        (
            info.map_type,
            info.key_size,
            info.value_size,
            info.max_entries
        ),
        (1, 4, 8, 4)
    );
    assert_eq!(info.name, "t_hash");

    // Per-CPU values: round_up(value_size, 8) bytes per possible CPU.
    let percpu = BpfMap::create(&MapSpec {
        map_type: 6,
        key_size: 4,
        value_size: 4,
        max_entries: 2,
        name: "t_percpu".into(),
        ..MapSpec::default()
    })
    .unwrap();
    let cpus = possible_cpus();
    assert_eq!(percpu.value_buffer_len(), 8 * cpus);
    let mut value = vec![0u8; 8 * cpus];
    for c in 0..cpus {
        value[8 * c..8 * c + 4].copy_from_slice(&(c as u32 + 10).to_le_bytes());
    }
    percpu.update(&1u32.to_le_bytes(), &value, 0).unwrap();
    let per = percpu.lookup_per_cpu(&1u32.to_le_bytes()).unwrap().unwrap();
    assert_eq!(per.len(), cpus);
    for (c, v) in per.iter().enumerate() {
        assert_eq!(v, &(c as u32 + 10).to_le_bytes());
    }

    // A frozen array refuses updates from user space.
    let ro = BpfMap::create(&MapSpec {
        map_type: 2,
        key_size: 4,
        value_size: 16,
        max_entries: 1,
        map_flags: bpfrr_recorder::sys::BPF_F_RDONLY_PROG,
        name: ".rodata".into(),
        ..MapSpec::default()
    })
    .unwrap();
    ro.update(&0u32.to_le_bytes(), &[5u8; 16], 0).unwrap();
    ro.freeze().unwrap();
    assert!(ro.update(&0u32.to_le_bytes(), &[6u8; 16], 0).is_err());
    assert_eq!(ro.lookup(&0u32.to_le_bytes()).unwrap(), Some(vec![5u8; 16]));
}

#[test]
fn test_runs_per_program_type() {
    if !common::kernel_tests_enabled("test_runs_per_program_type") {
        return;
    }
    let packet = frame(74);
    // r0 = skb->len: socket filters see the packet without its Ethernet header.
    let skb_len = [ldx(SIZE_W, 0, 1, 0), exit()];
    let sf = ProgLoad::new(SOCKET_FILTER, &skb_len).load().unwrap();
    let out = run(
        &sf.fd,
        RunKind::SocketFilter,
        RunInput::Packet {
            frame: &packet,
            ctx: None,
        },
        1,
    )
    .unwrap();
    assert_eq!(out.retval, 74 - 14);
    // The kernel puts a zeroed Ethernet header back in front of the output.
    assert_eq!(out.data_out.len(), packet.len());
    assert_eq!(out.data_out[..14], [0u8; 14]);
    assert_eq!(out.data_out[14..], packet[14..]);
    let tc = ProgLoad::new(SCHED_CLS, &skb_len).load().unwrap();
    let out = run(
        &tc.fd,
        RunKind::SchedCls,
        RunInput::Packet {
            frame: &packet,
            ctx: None,
        },
        1,
    )
    .unwrap();
    assert_eq!(out.retval, 74);
    // Repeat: the kernel reports a mean duration.
    let out = run(
        &tc.fd,
        RunKind::SchedCls,
        RunInput::Packet {
            frame: &packet,
            ctx: None,
        },
        1000,
    )
    .unwrap();
    assert_eq!(out.retval, 74);

    // Raw tracepoint: r0 = args[1].
    let arg1 = [ldx(SIZE_DW, 0, 1, 8), exit()];
    let rt = ProgLoad::new(RAW_TRACEPOINT, &arg1).load().unwrap();
    let args: Vec<u8> = [5u64, 0x1234_5678]
        .iter()
        .flat_map(|a| a.to_le_bytes())
        .collect();
    let out = run(&rt.fd, RunKind::RawTracepoint, RunInput::Context(&args), 0).unwrap();
    assert_eq!(out.retval, 0x1234_5678);

    // Inputs the kernel would refuse are explained.
    let e = run(
        &sf.fd,
        RunKind::SocketFilter,
        RunInput::Packet {
            frame: &[0; 10],
            ctx: None,
        },
        1,
    )
    .unwrap_err();
    assert!(e.to_string().contains("at least a 14-byte"), "{e}");
    let e = run(&rt.fd, RunKind::RawTracepoint, RunInput::Context(&args), 5).unwrap_err();
    assert!(e.to_string().contains("only once"), "{e}");
}

/// A BTF blob with one type, `int` (4 bytes, signed).
fn int_btf(magic: u16) -> Vec<u8> {
    let strings = b"\0int\0";
    let mut types = Vec::new();
    types.extend(1u32.to_le_bytes()); // name_off "int"
    types.extend((1u32 << 24).to_le_bytes()); // kind INT, vlen 0
    types.extend(4u32.to_le_bytes()); // size
    types.extend(((1u32 << 24) | 32).to_le_bytes()); // signed, 32 bits
    let mut b = magic.to_le_bytes().to_vec();
    b.extend([1, 0]); // version, flags
    b.extend(24u32.to_le_bytes());
    b.extend(0u32.to_le_bytes());
    b.extend((types.len() as u32).to_le_bytes());
    b.extend((types.len() as u32).to_le_bytes());
    b.extend((strings.len() as u32).to_le_bytes());
    b.extend(types);
    b.extend(strings);
    b
}

#[test]
fn btf_load() {
    if !common::kernel_tests_enabled("btf_load") {
        return;
    }
    let btf = load_btf(&int_btf(0xeb9f)).expect("valid BTF loads");
    drop(btf);
    let err = load_btf(&int_btf(0x1234)).unwrap_err();
    assert!(err.errno().is_some(), "{err}");
    assert!(load_btf(&[]).is_err());
}
