//! CO-RE: a program compiled against a one-field local `struct task_struct`
//! must, after `link_with_btf` against the running kernel's BTF, load `pid`
//! from the kernel's real offset — which our own BTF reader also reports.
//! Built at test time with clang-19 (never committed); skipped, saying so,
//! when clang-19 or the kernel BTF is missing.

use std::process::Command;

use bpfrr_trace::btf::{Btf, BtfKind};
use bpfrr_trace::object::{LinkedProgram, ObjectError, ObjectFile};

const SOURCE: &str = r#"
struct task_struct { int pid; } __attribute__((preserve_access_index));
static long (*bpf_get_current_task)(void) = (void *)35;
__attribute__((section("tp_btf/sched_switch"), used))
int read_pid(void *ctx)
{
    struct task_struct *t = (void *)bpf_get_current_task();
    return t->pid;
}
char LICENSE[] __attribute__((section("license"), used)) = "GPL";
"#;

#[test]
fn core_moves_field_offsets_to_the_target_kernels() {
    let Some((bytes, vmlinux)) = compile_with_kernel_btf("core", SOURCE) else {
        return;
    };

    let kernel = Btf::parse(&vmlinux).unwrap();
    let task = kernel.find_by_name(BtfKind::Struct, "task_struct").unwrap();
    let pid_offset = kernel.member_by_name(task, "pid").unwrap().bit_offset / 8;
    assert!(pid_offset > 0);

    let obj = ObjectFile::parse(&bytes).unwrap();
    let ldx_off = |insns: &[bpfrr_trace::isa::RawInsn]| {
        insns
            .iter()
            .find(|i| i.code == 0x61) // ldxw
            .map(|i| i.off as i64)
            .expect("a 32-bit load of pid")
    };
    let plain = obj.link("read_pid", &[]).unwrap();
    assert_eq!(
        ldx_off(&plain.insns),
        0,
        "without a target BTF, offsets stay as compiled"
    );
    let core = obj.link_with_btf("read_pid", &[], &vmlinux).unwrap();
    assert_eq!(ldx_off(&core.insns), pid_offset as i64);
    assert_eq!(
        core.prog_type,
        bpfrr_trace::catalog::ProgType::Tracing.number()
    );
    assert_eq!(core.attach_point, "sched_switch");
}

const KFUNC_SOURCE: &str = r#"
struct task_struct { int pid; } __attribute__((preserve_access_index));
extern struct task_struct *bpf_task_from_pid(int pid) __attribute__((section(".ksyms")));
extern void bpf_task_release(struct task_struct *p) __attribute__((section(".ksyms")));
__attribute__((section("tp_btf/sched_switch"), used))
int find(void *ctx)
{
    struct task_struct *t = bpf_task_from_pid(1);
    if (!t)
        return 0;
    bpf_task_release(t);
    return 1;
}
char LICENSE[] __attribute__((section("license"), used)) = "GPL";
"#;

#[test]
fn ksym_function_calls_link_as_kfunc_calls_by_kernel_btf_id() {
    let Some((bytes, vmlinux)) = compile_with_kernel_btf("kfunc", KFUNC_SOURCE) else {
        return;
    };

    let kernel = Btf::parse(&vmlinux).unwrap();
    let want = kernel_func_ids(&kernel, &["bpf_task_from_pid", "bpf_task_release"]);
    let obj = ObjectFile::parse(&bytes).unwrap();
    let linked = obj.link_with_btf("find", &[], &vmlinux).unwrap();
    assert_eq!(kfunc_call_ids(&linked), want);
    // Without the kernel's BTF the call cannot be resolved: one clear error
    // that names the program, the instruction and the kfunc (and does not
    // call the object malformed).
    let err = obj.link("find", &[]).unwrap_err();
    assert!(
        matches!(&err, ObjectError::KfuncNeedsKernelBtf { program, kfunc, .. }
            if program == "find" && kfunc == "bpf_task_from_pid"),
        "{err:?}"
    );
    let e = err.to_string();
    assert!(!e.contains("malformed"), "{e}");
    // A listing needs no kernel: the calls stay, named.
    let (_, named) = obj.link_for_listing("find", &[]).unwrap();
    let names: Vec<&str> = named.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(names, ["bpf_task_from_pid", "bpf_task_release"]);
    assert!(
        e.contains("bpf_task_from_pid") && e.contains("kernel's BTF"),
        "{e}"
    );
}

const KFUNC_CORE_SOURCE: &str = r#"
struct task_struct { int pid; } __attribute__((preserve_access_index));
extern struct task_struct *bpf_task_from_pid(int pid) __attribute__((section(".ksyms")));
extern void bpf_task_release(struct task_struct *p) __attribute__((section(".ksyms")));
__attribute__((section("tp_btf/sched_switch"), used))
int find_pid(void *ctx)
{
    struct task_struct *t = bpf_task_from_pid(1);
    if (!t)
        return 0;
    int pid = t->pid;
    bpf_task_release(t);
    return pid;
}
char LICENSE[] __attribute__((section("license"), used)) = "GPL";
"#;

#[test]
fn link_with_kfuncs_resolves_kfunc_calls_and_keeps_compiled_offsets() {
    let Some((bytes, vmlinux)) = compile_with_kernel_btf("kfunc_core", KFUNC_CORE_SOURCE) else {
        return;
    };
    let kernel = Btf::parse(&vmlinux).unwrap();
    let want = kernel_func_ids(&kernel, &["bpf_task_from_pid", "bpf_task_release"]);
    let obj = ObjectFile::parse(&bytes).unwrap();
    let linked = obj.link_with_kfuncs("find_pid", &[], &vmlinux).unwrap();
    assert_eq!(kfunc_call_ids(&linked), want);
    // No CO-RE: the load of pid keeps the offset clang compiled.
    let ldx = linked.insns.iter().find(|i| i.code == 0x61).unwrap();
    assert_eq!(ldx.off, 0);
    let core = obj.link_with_btf("find_pid", &[], &vmlinux).unwrap();
    assert_ne!(core.insns.iter().find(|i| i.code == 0x61).unwrap().off, 0);
}

/// Compiles `source` with clang-19 and reads the running kernel's BTF:
/// `(object bytes, vmlinux BTF)`, or None (saying why) when either is
/// missing.
/// The BTF ids of these kernel functions.
fn kernel_func_ids(kernel: &Btf, names: &[&str]) -> Vec<i32> {
    names
        .iter()
        .map(|n| kernel.find_by_name(BtfKind::Func, n).unwrap() as i32)
        .collect()
}

/// The BTF ids the program's kfunc calls were linked to, in order.
fn kfunc_call_ids(linked: &LinkedProgram) -> Vec<i32> {
    linked
        .insns
        .iter()
        .filter(|i| i.code == 0x85 && i.src == bpfrr_trace::isa::opcode::PSEUDO_CALL_KFUNC)
        .map(|i| i.imm)
        .collect()
}

/// Says why a test has nothing to check here; in CI (CI=true), where the
/// kernel's BTF and clang-19 are installed, that is a failure.
fn nothing_to_check(why: &str) {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{why}, which CI must have"
    );
    eprintln!("{why}; nothing to check");
}

fn compile_with_kernel_btf(name: &str, source: &str) -> Option<(Vec<u8>, Vec<u8>)> {
    let Ok(vmlinux) = std::fs::read("/sys/kernel/btf/vmlinux") else {
        nothing_to_check("no /sys/kernel/btf/vmlinux");
        return None;
    };
    let dir = std::env::temp_dir().join(format!("bpfrr-object-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join(format!("{name}.bpf.c"));
    let obj_path = dir.join(format!("{name}.bpf.o"));
    std::fs::write(&src, source).unwrap();
    let status = Command::new("clang-19")
        .args(["-g", "-O2", "-target", "bpf", "-c"])
        .arg(&src)
        .arg("-o")
        .arg(&obj_path)
        .status();
    let Ok(status) = status else {
        nothing_to_check("clang-19 is not installed");
        return None;
    };
    assert!(status.success(), "clang-19 failed on the test program");
    let bytes = std::fs::read(&obj_path).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    Some((bytes, vmlinux))
}
