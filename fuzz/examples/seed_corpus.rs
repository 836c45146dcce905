//! Writes the seed corpora of the fuzz targets into `fuzz/corpus/<target>/`
//! (gitignored; nothing here is committed):
//!
//! - trace_reader: small valid traces made with `TraceWriter`;
//! - trace_replay: the same and the kernel recordings of `samples/traces`;
//! - object_loader: `samples/*.bpf.o` and their `.BTF` sections;
//! - core_linker: CO-RE objects built now with clang-19 (when installed)
//!   and the samples, each paired with a small kernel-like BTF and with
//!   its own BTF;
//! - expr: expressions of the kinds the debugger's `print` documents;
//! - verifier_log: the verifier-log fixtures of replayer/tests (up to 64 KiB);
//! - command: every command's usage line and aliases, and concrete lines;
//! - vm: every program of the conformance manifests in
//!   `../shared/conformance/manifests` (read now, never copied into the repo).
//!
//! Run from the repository root:
//! `cargo run --manifest-path fuzz/Cargo.toml --example seed_corpus`

use std::path::{Path, PathBuf};

use bpfrr_trace::object::ObjectFile;
use bpfrr_trace::trace::*;

fn main() {
    let fuzz_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let repo = fuzz_dir.parent().expect("fuzz/ lies in the repository");
    let corpus = fuzz_dir.join("corpus");
    let n_traces = write_traces(&corpus.join("trace_reader"));
    let n_replay = write_traces(&corpus.join("trace_replay"))
        + copy_recordings(&repo.join("samples/traces"), &corpus.join("trace_replay"));
    let n_objects = copy_objects(&repo.join("samples"), &corpus.join("object_loader"));
    let n_core = write_core_inputs(&repo.join("samples"), &corpus.join("core_linker"));
    let conformance = repo.join("../shared/conformance/manifests");
    let n_programs = write_vm_inputs(&conformance, &corpus.join("vm"));
    let n_exprs = write_expressions(&corpus.join("expr"));
    let fixtures = repo.join("replayer/tests/fixtures/verifier");
    let n_logs = copy_logs(&fixtures, &corpus.join("verifier_log"));
    let n_commands = write_commands(&corpus.join("command"));
    println!(
        "wrote {n_traces} traces, {n_replay} traces to replay, {n_objects} objects and BTF blobs, {n_core} CO-RE inputs, {n_programs} VM programs, {n_exprs} expressions, {n_logs} verifier logs, {n_commands} command lines under {}",
        corpus.display()
    );
}

fn fresh_dir(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
}

// ---- traces -------------------------------------------------------------------

fn write_traces(dir: &Path) -> usize {
    fresh_dir(dir);
    write_trace(&dir.join("empty.bpfrr"), 0, 1, false);
    write_trace(&dir.join("one.bpfrr"), 1, 1, false);
    write_trace(&dir.join("three_in_two_blocks.bpfrr"), 3, 2, false);
    write_trace(&dir.join("ten_with_maps_and_lost.bpfrr"), 10, 4, true);
    4
}

fn write_trace(path: &Path, n: u64, per_block: usize, extras: bool) {
    let _ = std::fs::remove_file(path);
    let mut w = TraceWriter::create_with(
        path,
        meta(),
        programs(),
        maps(),
        WriterOptions {
            block_bytes: 1 << 20,
            block_invocations: per_block,
        },
    )
    .expect("valid definitions");
    for i in 0..n {
        w.push(invocation(i)).expect("valid invocation");
    }
    if extras {
        w.add_lost(0, 2);
        w.add_lost(1, 5);
        w.set_end_snapshots([(
            0,
            MapSnapshot {
                when: SnapshotTime::End,
                n_cpus: 1,
                entries: vec![MapEntry {
                    key: vec![10, 0, 0, 2],
                    value: 3u64.to_le_bytes().to_vec(),
                }],
            },
        )])
        .expect("map 0 exists");
    }
    w.finish().expect("trace written");
}

fn meta() -> TraceMeta {
    TraceMeta {
        bpfrr_version: "0.1.0".into(),
        kernel_release: "6.18.0".into(),
        arch: "x86_64".into(),
        hostname: Some("seed".into()),
        command: vec!["bpfrr".into(), "record".into()],
        start_time_ns: 1_700_000_000_000_000_000,
        n_cpus: 2,
        notes: "fuzz seed".into(),
        ..TraceMeta::default()
    }
}

/// `mov r0, 2; call 1; r0 = *(u32 *)(r1 + 0); exit` and padding.
fn insns() -> Vec<[u8; 8]> {
    vec![
        [0xb7, 0x00, 0, 0, 2, 0, 0, 0],
        [0x85, 0x00, 0, 0, 1, 0, 0, 0],
        [0x61, 0x10, 0, 0, 0, 0, 0, 0],
        [0xb7, 0x00, 0, 0, 2, 0, 0, 0],
        [0x95, 0, 0, 0, 0, 0, 0, 0],
    ]
}

// `..Default::default()` keeps the seeds building while the model gains fields.
#[allow(clippy::needless_update)]
fn programs() -> Vec<Program> {
    vec![
        Program {
            id: 0,
            name: "xdp_prog".into(),
            section: "xdp".into(),
            prog_type: 6,
            expected_attach_type: 37,
            attach_point: "test_run".into(),
            license: "GPL".into(),
            insns: insns(),
            used_maps: vec![0, 1],
            btf: Some(vec![0x9f, 0xeb, 1, 0, 24, 0, 0, 0]),
            func_info: vec![FuncInfo {
                insn: 0,
                type_id: 2,
                name: "xdp_prog".into(),
            }],
            line_info: vec![LineInfo {
                insn: 1,
                file: "x.bpf.c".into(),
                line: 7,
                col: 2,
                text: "return bpf_map_lookup_elem(&m, &k) ? XDP_PASS : XDP_DROP;".into(),
            }],
            kfuncs: vec![KfuncName {
                btf_id: 100,
                name: "bpf_kfunc".into(),
            }],
            verifier: Some(VerifierInfo {
                log: "0: R1=ctx() R10=fp0\n0: (b7) r0 = 2\nprocessed 5 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0\n".into(),
                log_level: 2,
                accepted: true,
                stats: VerifierStats {
                    insns_processed: 5,
                    ..VerifierStats::default()
                },
                stack_depths: vec![8],
                verification_time_usec: 10,
            }),
            jit: Some(JitInfo {
                arch: "x86_64".into(),
                image: vec![0x55, 0x48, 0x89, 0xe5, 0xc3],
                insn_offsets: vec![0, 1, 2, 3, 4],
                xlated: insns(),
                ..JitInfo::default()
            }),
            tail_call_targets: vec![TailCallTarget {
                map: 1,
                slot: 0,
                program: 1,
            }],
        },
        Program {
            id: 1,
            name: "tail".into(),
            section: "xdp".into(),
            prog_type: 6,
            insns: insns(),
            ..Program::default()
        },
    ]
}

fn maps() -> Vec<Map> {
    vec![
        Map {
            id: 0,
            name: "m".into(),
            map_type: 1,
            key_size: 4,
            value_size: 8,
            max_entries: 16,
            snapshots: vec![MapSnapshot {
                when: SnapshotTime::Start,
                n_cpus: 1,
                entries: vec![MapEntry {
                    key: vec![10, 0, 0, 1],
                    value: 1u64.to_le_bytes().to_vec(),
                }],
            }],
            ..Map::default()
        },
        Map {
            id: 1,
            name: "jmp".into(),
            map_type: 3,
            key_size: 4,
            value_size: 4,
            max_entries: 1,
            initial_data: Some(vec![0; 4]),
            inner: Some(InnerMap::default()),
            frozen: true,
            ..Map::default()
        },
    ]
}

fn invocation(i: u64) -> Invocation {
    let packet: Vec<u8> = (0..(14 + i as u8 % 50)).collect();
    Invocation {
        seq: i,
        cpu: (i % 2) as u32,
        cpu_seq: i / 2,
        time_ns: 1000 * i,
        program: (i % 3 == 2) as u32,
        ctx: vec![0; 24],
        packet: Some(packet.clone()),
        packet_meta: i.is_multiple_of(2).then(|| vec![1, 2, 3, 4]),
        packet_truncated_from: (i == 5).then_some(1500),
        events: vec![HelperEvent {
            insn: 1,
            kind: if i % 4 == 3 {
                EventKind::TailCall
            } else {
                EventKind::Helper
            },
            id: 1,
            ret: 0x1000 + i,
            outputs: vec![HelperOutput {
                arg: 2,
                bytes: i.to_le_bytes().to_vec(),
            }],
        }],
        btf_loads: vec![BtfLoad { insn: 2, value: i }],
        retval: 2 - (i % 2),
        final_packet: Some(packet),
        partial: i == 7,
    }
}

// ---- objects -------------------------------------------------------------------

fn copy_objects(samples: &Path, dir: &Path) -> usize {
    fresh_dir(dir);
    let mut n = 0;
    let entries = std::fs::read_dir(samples)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", samples.display()));
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".bpf.o") {
            continue;
        }
        let bytes = std::fs::read(&path).expect("readable sample");
        std::fs::write(dir.join(&name), &bytes).expect("corpus written");
        n += 1;
        // The BTF section alone seeds the raw-BTF half of the target.
        if let Some(btf) = ObjectFile::parse(&bytes)
            .ok()
            .and_then(|o| o.btf_bytes().map(<[u8]>::to_vec))
        {
            std::fs::write(dir.join(format!("{name}.btf")), btf).expect("corpus written");
            n += 1;
        }
    }
    n
}

/// The kernel recordings of `samples/traces`.
fn copy_recordings(traces: &Path, dir: &Path) -> usize {
    let mut n = 0;
    for entry in std::fs::read_dir(traces)
        .expect("samples/traces listed")
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".bpfrr") {
            std::fs::copy(entry.path(), dir.join(&name)).expect("corpus written");
            n += 1;
        }
    }
    n
}

// ---- CO-RE objects ---------------------------------------------------------------

/// A program with CO-RE relocations of every kind clang emits: field
/// offsets, sizes and existence, type ids, sizes and existence, enum values.
const CORE_PROGRAM: &str = r#"
struct task_struct { int pid; int tgid; struct { long flags; } sig; } __attribute__((preserve_access_index));
enum state { RUNNING = 1, STOPPED = 2 };
static long (*bpf_get_current_task)(void) = (void *)35;
__attribute__((section("tp_btf/sched_switch"), used))
int read_task(void *ctx)
{
    struct task_struct *t = (void *)bpf_get_current_task();
    long r = t->pid + t->sig.flags;
    r += __builtin_preserve_field_info(t->tgid, 0 /* byte offset */);
    r += __builtin_preserve_field_info(t->tgid, 1 /* byte size */);
    r += __builtin_preserve_field_info(t->tgid, 2 /* exists */);
    r += __builtin_btf_type_id(*t, 1 /* target id */);
    r += __builtin_preserve_type_info(*t, 0 /* exists */);
    r += __builtin_preserve_type_info(*t, 1 /* size */);
    r += __builtin_preserve_enum_value(*(enum state *)STOPPED, 1 /* value */);
    return r;
}
char LICENSE[] __attribute__((section("license"), used)) = "GPL";
"#;

/// The "kernel": the same types with other layouts, and filler types.
const CORE_KERNEL: &str = r#"
struct list_head { struct list_head *next, *prev; };
struct signal_struct { int nr_threads; long flags; };
struct task_struct { long state; struct list_head tasks; int tgid; int pid; struct signal_struct sig; };
enum state { STOPPED = 4, RUNNING = 8 };
struct task_struct kernel_task;
enum state kernel_state;
"#;

/// Compiles `source` with clang-19 for BPF; None without clang-19.
fn compile_bpf(source: &str, name: &str) -> Option<Vec<u8>> {
    let dir = std::env::temp_dir().join(format!("bpfrr-seed-{}", std::process::id()));
    fresh_dir(&dir);
    let src = dir.join(format!("{name}.c"));
    let obj = dir.join(format!("{name}.o"));
    std::fs::write(&src, source).expect("source written");
    let ok = std::process::Command::new("clang-19")
        .args(["-g", "-O2", "-target", "bpf", "-c"])
        .arg(&src)
        .arg("-o")
        .arg(&obj)
        .status()
        .is_ok_and(|s| s.success());
    let bytes = if ok { std::fs::read(&obj).ok() } else { None };
    let _ = std::fs::remove_dir_all(&dir);
    bytes
}

fn own_btf(object: &[u8]) -> Option<Vec<u8>> {
    ObjectFile::parse(object)
        .ok()
        .and_then(|o| o.btf_bytes().map(<[u8]>::to_vec))
}

fn write_core_inputs(samples: &Path, dir: &Path) -> usize {
    fresh_dir(dir);
    let mut objects = Vec::new();
    let kernel = compile_bpf(CORE_KERNEL, "kernel").and_then(|o| own_btf(&o));
    match compile_bpf(CORE_PROGRAM, "core") {
        Some(o) => objects.push(("core.bpf.o".to_string(), o)),
        None => eprintln!("clang-19 is not installed: no CO-RE seed objects"),
    }
    for entry in std::fs::read_dir(samples)
        .expect("samples listed")
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".bpf.o") {
            objects.push((name, std::fs::read(entry.path()).expect("readable sample")));
        }
    }
    let mut n = 0;
    for (name, object) in &objects {
        let mut write = |suffix: &str, btf: &[u8]| {
            let input = bpfrr_fuzz::join_core_input(object, btf);
            std::fs::write(dir.join(format!("{name}.{suffix}")), input).expect("corpus written");
            n += 1;
        };
        write("own", &[]);
        if let Some(k) = &kernel {
            write("kernel", k);
        }
    }
    n
}

// ---- VM programs ---------------------------------------------------------------

fn hex(s: &str) -> Option<Vec<u8>> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

fn write_vm_inputs(manifests: &Path, dir: &Path) -> usize {
    fresh_dir(dir);
    let mut n = 0;
    for manifest in ["bpf_conformance.jsonl", "ubpf.jsonl"] {
        let path = manifests.join(manifest);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line).expect("manifest line is JSON");
            let program = v["program"].as_str().or(v["raw_program"].as_str());
            let Some(prog) = program.and_then(hex) else {
                continue;
            };
            let mem = hex(v["mem"].as_str().unwrap_or("")).unwrap_or_default();
            let Some(input) = bpfrr_fuzz::join_vm_input(&mem, &prog) else {
                continue;
            };
            let name = v["name"].as_str().unwrap_or("vector").replace('/', "_");
            std::fs::write(dir.join(name), input).expect("corpus written");
            n += 1;
        }
    }
    n
}

// ---- expressions ---------------------------------------------------------------

fn write_expressions(dir: &Path) -> usize {
    fresh_dir(dir);
    const EXPRESSIONS: &[&str] = &[
        "r1",
        "/x r2",
        "/d w3 + 1",
        "r3 - r2",
        "*(u32 *)(r10 - 8)",
        "*(u64 *)r4",
        "*(__be16 *)(pkt + 12)",
        "((u16 *)pkt)[6]",
        "pkt[12:14]",
        "r2[0:4]",
        "pkt_end - pkt",
        "ctx->data_end",
        "*ctx",
        "*(struct iphdr *)(pkt + 14)",
        "((struct iphdr *)(pkt + 14))->saddr",
        "/ip4 *(u32 *)(pkt + 26)",
        "/mac pkt[0:6]",
        "/t 0b1010 ^ 0x0f | 0o7 & ~1",
        "(r1 + 8) * 3 / 2 % 5 << 1 >> 1",
        "r0 == 0 && r1 != 0 || !r2 < 3 <= 4 > 5 >= 6",
        "-1",
        "/c 65",
        "/u -r0",
        "/be r5",
    ];
    for (i, e) in EXPRESSIONS.iter().enumerate() {
        std::fs::write(dir.join(format!("expr{i:02}")), e).expect("corpus written");
    }
    EXPRESSIONS.len()
}

// ---- verifier logs ---------------------------------------------------------------

fn copy_logs(fixtures: &Path, dir: &Path) -> usize {
    fresh_dir(dir);
    let mut n = 0;
    let entries = std::fs::read_dir(fixtures)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", fixtures.display()));
    for entry in entries.flatten() {
        let path = entry.path();
        let small = entry.metadata().is_ok_and(|m| m.len() <= 64 * 1024);
        if path.extension().is_some_and(|e| e == "log") && small {
            std::fs::copy(&path, dir.join(entry.file_name())).expect("corpus written");
            n += 1;
        }
    }
    n
}

// ---- debugger command lines ------------------------------------------------------

fn write_commands(dir: &Path) -> usize {
    fresh_dir(dir);
    let mut lines: Vec<String> = Vec::new();
    for c in bpfrr_fuzz::commands::help::COMMANDS {
        lines.push(c.usage.to_string());
        lines.extend(c.aliases.iter().map(|a| format!("{a} 3")));
    }
    lines.extend(
        [
            "break xdp_prog+4",
            "b 12 if r0 == 2",
            "watch *(u32 *)(r10 - 8)",
            "x/8xb pkt",
            "print/x r1 + 0x10",
            "info registers",
            "goto 0",
            "delete 1",
        ]
        .map(String::from),
    );
    for (i, line) in lines.iter().enumerate() {
        std::fs::write(dir.join(format!("cmd{i:03}")), line).expect("corpus written");
    }
    lines.len()
}
