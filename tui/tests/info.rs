//! `bpfrr info` end to end, through the real binary, on traces written here.

use std::path::{Path, PathBuf};
use std::process::Command;

use bpfrr_trace::trace::*;

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("info-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn bpfrr(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_bpfrr"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// A trace with two programs, two maps, 30 invocations and lost records.
fn write_sample(path: &Path) {
    let meta = TraceMeta {
        bpfrr_version: "0.1.0".into(),
        kernel_release: "6.18.0-test".into(),
        arch: "x86_64".into(),
        hostname: Some("buildhost".into()),
        command: vec![
            "bpfrr".into(),
            "record".into(),
            "--iface".into(),
            "eth 0".into(),
        ],
        start_time_ns: 1_700_000_000_000_000_000,
        n_cpus: 4,
        ..TraceMeta::default()
    };
    let exit = [0x95, 0, 0, 0, 0, 0, 0, 0];
    let programs = vec![
        Program {
            id: 0,
            name: "xdp_fw".into(),
            section: "xdp".into(),
            prog_type: 6,
            attach_point: "eth0".into(),
            insns: vec![exit; 12],
            btf: Some(vec![0x9f, 0xeb]),
            verifier: Some(VerifierInfo {
                accepted: true,
                stats: VerifierStats {
                    insns_processed: 11,
                    ..VerifierStats::default()
                },
                ..VerifierInfo::default()
            }),
            jit: Some(JitInfo {
                image: vec![0xc3; 48],
                ..JitInfo::default()
            }),
            ..Program::default()
        },
        Program {
            id: 1,
            name: "count_sys".into(),
            section: "tracepoint/raw_syscalls/sys_enter".into(),
            prog_type: 5,
            attach_point: "raw_syscalls:sys_enter".into(),
            insns: vec![exit; 3],
            ..Program::default()
        },
    ];
    let maps = vec![
        Map {
            id: 0,
            name: "blocked".into(),
            map_type: 1,
            key_size: 4,
            value_size: 8,
            max_entries: 256,
            snapshots: vec![MapSnapshot {
                when: SnapshotTime::Start,
                n_cpus: 1,
                entries: vec![MapEntry::default(); 3],
            }],
            ..Map::default()
        },
        Map {
            id: 1,
            name: ".rodata".into(),
            map_type: 2,
            key_size: 4,
            value_size: 16,
            max_entries: 1,
            flags: 0x80,
            frozen: true,
            ..Map::default()
        },
    ];
    let mut w = TraceWriter::create(path, meta, programs, maps).unwrap();
    for i in 0..30u64 {
        w.push(Invocation {
            seq: i,
            program: (i % 3 == 2) as u32,
            retval: if i % 3 == 2 {
                (-22i64) as u64
            } else {
                2 - (i % 2)
            },
            ..Invocation::default()
        })
        .unwrap();
    }
    w.add_lost(3, 5);
    w.set_end_snapshots([(
        0,
        MapSnapshot {
            entries: vec![MapEntry::default(); 4],
            n_cpus: 1,
            ..MapSnapshot::default()
        },
    )])
    .unwrap();
    w.finish().unwrap();
}

#[test]
fn info_prints_the_summary_as_text() {
    let path = scratch("sample.bpfrr");
    write_sample(&path);
    let p = path.display().to_string();
    let size = std::fs::metadata(&path).unwrap().len();
    let (code, out, err) = bpfrr(&["info", &p]);
    assert_eq!(code, 0, "stderr: {err}");
    let lines: Vec<&str> = out.lines().collect();
    let expected_head = [
        format!("{p}: bpfrr trace  format {FORMAT_VERSION}  size {:.1} KiB ({size} bytes)", size as f64 / 1024.0),
        "\trecorded 2023-11-14 22:13:20 UTC  host buildhost  kernel 6.18.0-test  arch x86_64  cpus 4  bpfrr 0.1.0".to_string(),
        "\tcommand: bpfrr record --iface 'eth 0'".to_string(),
        "invocations 30  partial 0  blocks 1".to_string(),
        "\tretvals 1:10 2:10 -22:10".to_string(),
        "lost records 5".to_string(),
        "\tcpu 3: 5".to_string(),
        "programs 2".to_string(),
        "0: xdp  name xdp_fw  section xdp  attach eth0".to_string(),
        "\tinsns 12  btf  line_info 0  verifier accepted (11 insns processed)  jited 48B".to_string(),
        "\tinvocations 20  partial 0  retvals 1:10 2:10".to_string(),
        "1: tracepoint  name count_sys  section tracepoint/raw_syscalls/sys_enter  attach raw_syscalls:sys_enter".to_string(),
        "\tinsns 3".to_string(),
        "\tinvocations 10  partial 0  retvals -22:10".to_string(),
        "maps 2".to_string(),
        "0: hash  name blocked  flags 0x0".to_string(),
        "\tkey 4B  value 8B  max_entries 256  entries at start 3  at end 4".to_string(),
        "1: array  name .rodata  flags 0x80  frozen".to_string(),
        "\tkey 4B  value 16B  max_entries 1  entries at start -  at end -".to_string(),
    ];
    assert_eq!(lines, expected_head, "full output:\n{out}");
}

#[test]
fn info_json_is_the_summary() {
    let path = scratch("json.bpfrr");
    write_sample(&path);
    let p = path.display().to_string();
    let (code, out, err) = bpfrr(&["info", &p, "--json"]);
    assert_eq!(code, 0, "stderr: {err}");
    let s: TraceSummary = serde_json::from_str(&out).unwrap();
    assert_eq!(s, Trace::open(&path).unwrap().summary());
    assert_eq!(s.invocation_count, 30);
    assert_eq!(s.lost_total, 5);
    assert_eq!(s.programs[0].prog_type_name, "xdp");
    assert_eq!(s.maps[0].map_type_name, "hash");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["kernel_release"], "6.18.0-test");
    assert_eq!(v["retvals"][2]["value"], (-22i64) as u64);
}

#[test]
fn info_on_a_corrupt_file_prints_one_error_line_and_fails() {
    let path = scratch("corrupt.bpfrr");
    write_sample(&path);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 3;
    bytes[last] ^= 0x55; // inside the directory
    std::fs::write(&path, &bytes).unwrap();
    let p = path.display().to_string();
    let (code, out, err) = bpfrr(&["info", &p]);
    assert_ne!(code, 0);
    assert_eq!(out, "");
    assert_eq!(
        err,
        format!(
            "bpfrr: {p} is corrupted: the checksum of the directory does not match its contents\n"
        )
    );

    let text = scratch("notes.txt");
    std::fs::write(&text, "just some notes\n").unwrap();
    let t = text.display().to_string();
    let (code, _, err) = bpfrr(&["info", &t, "--json"]);
    assert_ne!(code, 0);
    assert_eq!(
        err,
        format!(
            "bpfrr: {t} is not a bpfrr trace (it does not start with the bytes \"BPFRRTRC\")\n"
        )
    );

    let (code, _, err) = bpfrr(&["info", "/nonexistent/trace.bpfrr"]);
    assert_ne!(code, 0);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("bpfrr: cannot read /nonexistent/trace.bpfrr: "),
        "{err}"
    );
}
