//! Traces for the edit_* tests: written with TraceWriter, opened from disk.
#![allow(dead_code)] // each test file uses a different part

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use bpfrr_trace::trace::*;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh path in the test's temp directory.
pub fn scratch(tag: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("edit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    dir.join(format!("{tag}-{n}.bpfrr"))
}

pub fn meta() -> TraceMeta {
    TraceMeta {
        bpfrr_version: "0.1.0".into(),
        kernel_release: "6.18.0-test".into(),
        arch: "x86_64".into(),
        hostname: Some("secret-host".into()),
        command: vec![
            "bpfrr".into(),
            "record".into(),
            "--iface".into(),
            "eth0".into(),
        ],
        start_time_ns: 1_700_000_000_000_000_000,
        n_cpus: 2,
        notes: "recorded by the tests".into(),
        ..TraceMeta::default()
    }
}

/// `n` instructions: `call` (helper 1) at every index in `calls`, `exit` last, movs elsewhere.
pub fn insns(n: usize, calls: &[usize]) -> Vec<[u8; 8]> {
    (0..n)
        .map(|i| {
            if i + 1 == n {
                [0x95, 0, 0, 0, 0, 0, 0, 0]
            } else if calls.contains(&i) {
                [0x85, 0, 0, 0, 1, 0, 0, 0]
            } else {
                [0xb7, 0, 0, 0, i as u8, 0, 0, 0]
            }
        })
        .collect()
}

pub fn program(id: u32, name: &str, prog_type: u32, used_maps: Vec<u32>) -> Program {
    Program {
        id,
        name: name.into(),
        section: "xdp".into(),
        prog_type,
        insns: insns(10, &[2, 5]),
        used_maps,
        ..Program::default()
    }
}

pub fn map(id: u32, name: &str, map_type: u32, start_value: u8) -> Map {
    Map {
        id,
        name: name.into(),
        map_type,
        key_size: 4,
        value_size: 8,
        max_entries: 4,
        snapshots: vec![
            MapSnapshot {
                when: SnapshotTime::Start,
                n_cpus: 1,
                entries: vec![MapEntry {
                    key: vec![0; 4],
                    value: vec![start_value; 8],
                }],
            },
            MapSnapshot {
                when: SnapshotTime::End,
                n_cpus: 1,
                entries: vec![MapEntry {
                    key: vec![0; 4],
                    value: vec![start_value + 100; 8],
                }],
            },
        ],
        ..Map::default()
    }
}

pub fn helper(insn: u32, id: u32, outputs: Vec<(u8, Vec<u8>)>) -> HelperEvent {
    HelperEvent {
        insn,
        kind: EventKind::Helper,
        id,
        ret: 0,
        outputs: outputs
            .into_iter()
            .map(|(arg, bytes)| HelperOutput { arg, bytes })
            .collect(),
    }
}

pub fn tail_call(insn: u32, to: u32) -> HelperEvent {
    HelperEvent {
        insn,
        kind: EventKind::TailCall,
        id: to,
        ..HelperEvent::default()
    }
}

/// Writes a trace and opens it from disk.
pub fn write(
    path: &Path,
    meta: TraceMeta,
    programs: Vec<Program>,
    maps: Vec<Map>,
    invocations: Vec<Invocation>,
    lost: &[(u32, u64)],
) -> Trace {
    let mut w = TraceWriter::create(path, meta, programs, maps).expect("valid definitions");
    for inv in invocations {
        w.push(inv).expect("valid invocation");
    }
    for &(cpu, n) in lost {
        w.add_lost(cpu, n);
    }
    w.finish().expect("written");
    let t = Trace::open(path).expect("opens");
    t.verify_all().expect("valid");
    t
}

/// Opens a trace an edit wrote and checks every block.
pub fn reopen(path: &Path) -> Trace {
    let t = Trace::open(path).expect("the edited trace opens");
    t.verify_all()
        .expect("every block of the edited trace is valid");
    t
}

pub fn all_invocations(t: &Trace) -> Vec<Invocation> {
    (0..t.invocation_count())
        .map(|i| t.invocation_owned(i).unwrap())
        .collect()
}

/// An Ethernet + IPv4 + UDP frame with `payload`.
pub fn udp_frame(payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0xaa; 6];
    p.extend([0xbb; 6]);
    p.extend(0x0800u16.to_be_bytes());
    let total = (20 + 8 + payload.len()) as u16;
    let mut ip = vec![
        0x45, 0, 0, 0, 0, 1, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ];
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    p.extend(ip);
    p.extend(5353u16.to_be_bytes());
    p.extend(53u16.to_be_bytes());
    p.extend(((8 + payload.len()) as u16).to_be_bytes());
    p.extend([0, 0]);
    p.extend(payload);
    p
}
