//! Live attachment of tracing programs on the real kernel: the tracepoint
//! sample on openat calls this test makes, the uprobe sample on
//! samples/uprobe_target (by symbol and by file offset), a raw tracepoint
//! and a tp_btf program that reads the syscall's registers through a BTF
//! pointer, and fentry (which this kernel may refuse: then the error must
//! say so plainly). Each test checks the program's own map, and that
//! dropping the link stops it.
#![cfg(target_os = "linux")]

mod common;
mod netns;

use std::os::fd::{AsFd, AsRawFd};
use std::path::PathBuf;
use std::process::Command;

use bpfrr_recorder::attach::uprobe::symbol_file_offset;
use bpfrr_recorder::attach::{
    AttachError, AttachProgram, AttachSpec, FentryTarget, RawTracepointTarget, TpBtfTarget,
    TracepointTarget, UprobeTarget,
};
use bpfrr_recorder::sys::{BpfMap, LogLevel, MapSpec, ProgLoad, SysError};
use bpfrr_trace::btf::{Btf, BtfKind};
use bpfrr_trace::catalog::{AttachType, ProgType};
use bpfrr_trace::isa::RawInsn;
use netns::samples::{attach_program, global_u64, load, map, open_sample, samples_dir};

#[test]
fn tracepoint_sample_counts_this_threads_openat_calls() {
    if !common::kernel_tests_enabled("tracepoint_sample_counts_this_threads_openat_calls") {
        return;
    }
    let mut obj = open_sample("tp_syscalls");
    let prog = load(&mut obj, "count_openat");
    let spec =
        AttachSpec::Tracepoint(TracepointTarget::parse("syscalls:sys_enter_openat").unwrap());
    let link = spec
        .attach(attach_program(&prog))
        .expect("attach tracepoint");
    assert_eq!(link.description(), "tracepoint syscalls:sys_enter_openat");

    // The planted bug keys the count by thread id: this thread's id.
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() } as u32;
    for _ in 0..5 {
        std::fs::File::open("/dev/null").unwrap();
    }
    let counts = map(&obj, "openat_per_process");
    let count = |m: &BpfMap| {
        m.lookup(&tid.to_le_bytes())
            .unwrap()
            .map_or(0, |v| u64::from_le_bytes(v[..8].try_into().unwrap()))
    };
    assert_eq!(count(counts), 5, "openat_per_process[{tid}]");
    assert!(global_u64(&obj, &prog, ".bss", "events_sent") >= 5);

    common::drop_and_wait_until_released(link.id(), link);
    std::fs::File::open("/dev/null").unwrap();
    assert_eq!(count(counts), 5, "counted after the link was dropped");
}

#[test]
fn tracepoint_errors_name_the_problem() {
    if !common::kernel_tests_enabled("tracepoint_errors_name_the_problem") {
        return;
    }
    let mut obj = open_sample("tp_syscalls");
    let prog = load(&mut obj, "count_openat");
    let spec =
        AttachSpec::Tracepoint(TracepointTarget::parse("syscalls:sys_enter_nosuch").unwrap());
    let e = spec.attach(attach_program(&prog)).unwrap_err();
    assert!(matches!(e, AttachError::NotFound(_)), "{e}");
    assert!(
        e.to_string()
            .contains("no tracepoint syscalls:sys_enter_nosuch"),
        "{e}"
    );
}

fn uprobe_target_binary() -> PathBuf {
    let bin = samples_dir().join("uprobe_target");
    if !bin.exists() {
        let out = Command::new("make")
            .args(["-C", samples_dir().to_str().unwrap(), "uprobe_target"])
            .output()
            .expect("running make");
        assert!(
            out.status.success(),
            "make -C samples uprobe_target: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    bin
}

fn run_orders(bin: &PathBuf, count: u32) {
    let out = Command::new(bin)
        .args([&count.to_string(), "gadget", "3", "1999", "42"])
        .output()
        .unwrap();
    assert!(out.status.success());
}

#[test]
fn uprobe_sample_sees_every_call_of_process_order() {
    if !common::kernel_tests_enabled("uprobe_sample_sees_every_call_of_process_order") {
        return;
    }
    let bin = uprobe_target_binary();
    let mut obj = open_sample("uprobe_args");
    let prog = load(&mut obj, "on_process_order");

    let orders = |obj: &bpfrr_recorder::load::LoadedObject| {
        let mut key = [0u8; 16];
        key[..6].copy_from_slice(b"gadget");
        map(obj, "order_stats").lookup(&key).unwrap().map(|v| {
            let f = |i: usize| u64::from_le_bytes(v[i * 8..i * 8 + 8].try_into().unwrap());
            (f(0), f(1))
        })
    };
    let per_customer = |obj: &bpfrr_recorder::load::LoadedObject| {
        map(obj, "orders_per_customer")
            .lookup(&42u32.to_le_bytes())
            .unwrap()
            .map(|v| u64::from_le_bytes(v[..8].try_into().unwrap()))
    };

    let by_symbol = AttachSpec::Uprobe(
        UprobeTarget::parse(&format!("{}:process_order", bin.display())).unwrap(),
    );
    let link = by_symbol
        .attach(attach_program(&prog))
        .expect("attach uprobe");
    run_orders(&bin, 7);
    assert_eq!(
        orders(&obj),
        Some((7, 21)),
        "order_stats[gadget] (orders, units)"
    );
    assert_eq!(per_customer(&obj), Some(7));
    common::drop_and_wait_until_released(link.id(), link);
    run_orders(&bin, 4);
    assert_eq!(
        orders(&obj),
        Some((7, 21)),
        "counted after the link was dropped"
    );

    // The same function by file offset.
    let offset = symbol_file_offset(&std::fs::read(&bin).unwrap(), "process_order").unwrap();
    let by_offset =
        AttachSpec::Uprobe(UprobeTarget::parse(&format!("{}:{offset:#x}", bin.display())).unwrap());
    let link = by_offset
        .attach(attach_program(&prog))
        .expect("attach by offset");
    assert!(
        link.description().contains(&format!("{offset:#x}")),
        "{link:?}"
    );
    run_orders(&bin, 2);
    assert_eq!(orders(&obj), Some((9, 27)));
}

#[test]
fn uprobe_on_a_missing_symbol_is_refused_clearly() {
    if !common::kernel_tests_enabled("uprobe_on_a_missing_symbol_is_refused_clearly") {
        return;
    }
    let bin = uprobe_target_binary();
    let mut obj = open_sample("uprobe_args");
    let prog = load(&mut obj, "on_process_order");
    let spec =
        AttachSpec::Uprobe(UprobeTarget::parse(&format!("{}:no_such_fn", bin.display())).unwrap());
    let e = spec.attach(attach_program(&prog)).unwrap_err().to_string();
    assert!(e.contains("no function named \"no_such_fn\""), "{e}");
}

// ---- hand-assembled programs on sys_enter ----

const GETPGID: i32 = libc::SYS_getpgid as i32;
const MAGIC: i64 = 0x5eed_1234;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> RawInsn {
    RawInsn::new(code, dst, src, off, imm)
}

/// `r1 = map fd` (ld_imm64, BPF_PSEUDO_MAP_FD).
fn ld_map(map: &BpfMap) -> [RawInsn; 2] {
    [insn(0x18, 1, 1, 0, map.fd.as_raw_fd()), insn(0, 0, 0, 0, 0)]
}

/// Stores the value at r10-8 into key 0 of `map`, returns 0.
fn store_and_exit(map: &BpfMap) -> Vec<RawInsn> {
    let mut v = vec![insn(0x62, 10, 0, -12, 0)]; // *(u32 *)(r10 - 12) = 0
    v.extend(ld_map(map));
    v.extend([
        insn(0xbf, 2, 10, 0, 0), // r2 = r10
        insn(0x07, 2, 0, 0, -12),
        insn(0xbf, 3, 10, 0, 0), // r3 = r10
        insn(0x07, 3, 0, 0, -8),
        insn(0xb7, 4, 0, 0, 0),
        insn(0x85, 0, 0, 0, 2), // bpf_map_update_elem
    ]);
    v
}

fn exit0() -> [RawInsn; 2] {
    [insn(0xb7, 0, 0, 0, 0), insn(0x95, 0, 0, 0, 0)]
}

fn kernel_btf() -> Btf {
    Btf::parse(&std::fs::read("/sys/kernel/btf/vmlinux").unwrap()).unwrap()
}

/// Byte offset of `struct pt_regs`'s first-argument register.
fn pt_regs_arg1_offset(btf: &Btf) -> i16 {
    let id = btf.find_by_name(BtfKind::Struct, "pt_regs").unwrap();
    (btf.member_by_name(id, "di")
        .expect("x86-64 pt_regs.di")
        .bit_offset
        / 8) as i16
}

fn result_map() -> BpfMap {
    BpfMap::create(&MapSpec {
        map_type: 2, // array
        key_size: 4,
        value_size: 8,
        max_entries: 1,
        name: "result".into(),
        ..MapSpec::default()
    })
    .unwrap()
}

fn read_result(map: &BpfMap) -> i64 {
    i64::from_le_bytes(
        map.lookup(&0u32.to_le_bytes()).unwrap().unwrap()[..8]
            .try_into()
            .unwrap(),
    )
}

/// Calls getpgid(MAGIC) until the program has seen it (other processes
/// may call getpgid too, with other arguments).
fn getpgid_until_seen(map: &BpfMap) -> bool {
    (0..50).any(|_| {
        // SAFETY: getpgid of a pid that does not exist fails with ESRCH.
        unsafe { libc::syscall(libc::SYS_getpgid, MAGIC) };
        read_result(map) == MAGIC
    })
}

#[test]
fn tp_btf_program_reads_registers_through_a_btf_pointer() {
    if !common::kernel_tests_enabled("tp_btf_program_reads_registers_through_a_btf_pointer") {
        return;
    }
    let btf = kernel_btf();
    let map = result_map();
    // ctx[0] is `struct pt_regs *` (a BTF pointer: loaded through
    // directly), ctx[1] the syscall number.
    let mut insns = vec![
        insn(0x79, 2, 1, 8, 0),                         // r2 = ctx[1]
        insn(0x55, 2, 0, 0, GETPGID),                   // if r2 != getpgid goto exit (patched)
        insn(0x79, 3, 1, 0, 0),                         // r3 = ctx[0]
        insn(0x79, 3, 3, pt_regs_arg1_offset(&btf), 0), // r3 = regs->di
        insn(0x7b, 10, 3, -8, 0),                       // *(u64 *)(r10 - 8) = r3
    ];
    insns.extend(store_and_exit(&map));
    let exit_at = insns.len();
    insns.extend(exit0());
    insns[1] = insn(0x55, 2, 0, (exit_at - 2) as i16, GETPGID);

    let target = TpBtfTarget::parse("sys_enter").unwrap();
    let params = target
        .params("bpfrr_tp_btf", ProgType::Tracing.number(), None, &btf)
        .unwrap();
    let mut load = ProgLoad::new(ProgType::Tracing.number(), &insns);
    load.name = "bpfrr_tp_btf";
    load.expected_attach_type = Some(params.attach_type);
    load.attach_btf_id = Some(params.btf_id);
    load.log_level = LogLevel::FULL;
    let loaded = load.load().unwrap_or_else(|e| panic!("tp_btf load: {e}"));
    // The verifier knows the load goes through a BTF pointer.
    assert!(
        loaded.log.contains("ptr_pt_regs") || loaded.log.contains("trusted_ptr_"),
        "{}",
        loaded.log
    );

    let spec = AttachSpec::TpBtf(target);
    let link = spec
        .attach(AttachProgram {
            fd: loaded.fd.as_fd(),
            name: "bpfrr_tp_btf",
            prog_type: ProgType::Tracing.number(),
            expected_attach_type: Some(AttachType::TraceRawTp.number()),
            attach_btf_id: params.btf_id,
        })
        .expect("attach tp_btf");
    assert_eq!(link.description(), "BTF tracepoint sys_enter");
    assert!(
        getpgid_until_seen(&map),
        "the tp_btf program never saw getpgid({MAGIC:#x})"
    );
    common::drop_and_wait_until_released(link.id(), link);
    map.update(&0u32.to_le_bytes(), &0u64.to_le_bytes(), 0)
        .unwrap();
    // SAFETY: as above.
    unsafe { libc::syscall(libc::SYS_getpgid, MAGIC) };
    assert_eq!(read_result(&map), 0, "ran after the link was dropped");
}

#[test]
fn raw_tracepoint_program_sees_this_threads_syscall() {
    if !common::kernel_tests_enabled("raw_tracepoint_program_sees_this_threads_syscall") {
        return;
    }
    let btf = kernel_btf();
    let map = result_map();
    // ctx is bpf_raw_tracepoint_args: args[0] = pt_regs (a plain number
    // here: read with bpf_probe_read_kernel), args[1] = the syscall number.
    let mut insns = vec![
        insn(0x79, 2, 1, 8, 0),
        insn(0x55, 2, 0, 0, GETPGID), // patched below
        insn(0x79, 3, 1, 0, 0),
        insn(0x07, 3, 0, 0, pt_regs_arg1_offset(&btf) as i32),
        insn(0xbf, 1, 10, 0, 0),
        insn(0x07, 1, 0, 0, -8),
        insn(0xb7, 2, 0, 0, 8),
        insn(0x85, 0, 0, 0, 113), // bpf_probe_read_kernel
    ];
    insns.extend(store_and_exit(&map));
    let exit_at = insns.len();
    insns.extend(exit0());
    insns[1] = insn(0x55, 2, 0, (exit_at - 2) as i16, GETPGID);
    let mut load = ProgLoad::new(ProgType::RawTracepoint.number(), &insns);
    load.name = "bpfrr_raw_tp";
    let loaded = load.load().unwrap_or_else(|e| panic!("raw_tp load: {e}"));

    let spec = AttachSpec::RawTracepoint(RawTracepointTarget::parse("sys_enter").unwrap());
    let program = AttachProgram {
        fd: loaded.fd.as_fd(),
        name: "bpfrr_raw_tp",
        prog_type: ProgType::RawTracepoint.number(),
        expected_attach_type: None,
        attach_btf_id: 0,
    };
    let link = spec.attach(program).expect("attach raw tracepoint");
    assert!(getpgid_until_seen(&map));
    common::drop_and_wait_until_released(link.id(), link);

    let missing = AttachSpec::RawTracepoint(RawTracepointTarget::parse("no_such_tp").unwrap());
    let e = missing.attach(program).unwrap_err();
    assert!(matches!(e, AttachError::NotFound(_)), "{e}");
}

/// fentry loads and attaches where the kernel allows it; where it refuses
/// with EPERM (as this project's reference machine does), the error says
/// that the kernel forbids fentry, not something vague.
#[test]
fn fentry_attaches_or_says_the_kernel_forbids_it() {
    if !common::kernel_tests_enabled("fentry_attaches_or_says_the_kernel_forbids_it") {
        return;
    }
    let btf = kernel_btf();
    let target = FentryTarget::parse("do_unlinkat").unwrap();
    let params = target
        .params("bpfrr_fentry", ProgType::Tracing.number(), None, &btf)
        .unwrap();
    let insns = exit0();
    let mut load = ProgLoad::new(ProgType::Tracing.number(), &insns);
    load.name = "bpfrr_fentry";
    load.expected_attach_type = Some(params.attach_type);
    load.attach_btf_id = Some(params.btf_id);
    match load.load() {
        Ok(loaded) => {
            let spec = AttachSpec::Fentry(target);
            let program = AttachProgram {
                fd: loaded.fd.as_fd(),
                name: "bpfrr_fentry",
                prog_type: ProgType::Tracing.number(),
                expected_attach_type: Some(params.attach_type),
                attach_btf_id: params.btf_id,
            };
            match spec.attach(program) {
                Ok(link) => {
                    eprintln!("fentry: loaded and attached (link {})", link.id());
                    assert!(link.id() > 0);
                }
                Err(e) => {
                    assert!(matches!(e, AttachError::Restricted(_)), "{e}");
                    assert!(e.to_string().contains("refuses fentry/fexit"), "{e}");
                }
            }
        }
        Err(e) => {
            eprintln!("fentry: the kernel refused the load: {e}");
            assert!(
                matches!(e, SysError::KernelRestricted { .. }),
                "an fentry load failing other than with EPERM: {e}"
            );
            let explained = FentryTarget::explain_load_error(&e).expect("EPERM is explained");
            let text = explained.to_string();
            assert!(
                text.contains("this kernel refuses fentry/fexit programs"),
                "{text}"
            );
            assert!(text.contains("tracepoint"), "{text}");
        }
    }
}
