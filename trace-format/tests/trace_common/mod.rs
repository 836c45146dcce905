//! A small but complete trace used by the trace_* tests: two programs with
//! every optional part filled in, three maps, invocations with packets,
//! helper events and BTF loads.
#![allow(dead_code)] // each test file uses a different part

use bpfrr_trace::trace::*;

pub fn meta() -> TraceMeta {
    TraceMeta {
        format_version: 0, // the writer sets it
        bpfrr_version: "0.1.0".into(),
        kernel_release: "6.18.0-test".into(),
        arch: "x86_64".into(),
        hostname: Some("testhost".into()),
        command: vec![
            "bpfrr".into(),
            "record".into(),
            "--count".into(),
            "10".into(),
        ],
        start_time_ns: 1_700_000_000_123_456_789,
        n_cpus: 2,
        notes: "made by the tests".into(),
    }
}

fn insns(n: usize) -> Vec<[u8; 8]> {
    // mov64 r0, i ; ... ; exit
    let mut v: Vec<[u8; 8]> = (0..n - 1)
        .map(|i| [0xb7, 0x00, 0, 0, i as u8, 0, 0, 0])
        .collect();
    v.push([0x95, 0, 0, 0, 0, 0, 0, 0]);
    v
}

pub fn programs() -> Vec<Program> {
    vec![
        Program {
            id: 0,
            name: "xdp_firewall".into(),
            section: "xdp".into(),
            prog_type: 6,
            expected_attach_type: 37,
            attach_point: "eth0".into(),
            license: "GPL".into(),
            insns: insns(40),
            used_maps: vec![0, 1, 2],
            btf: Some(vec![0x9f, 0xeb, 1, 0, 24, 0, 0, 0]),
            func_info: vec![FuncInfo {
                insn: 0,
                type_id: 3,
                name: "xdp_firewall".into(),
            }],
            line_info: vec![
                LineInfo {
                    insn: 0,
                    file: "fw.bpf.c".into(),
                    line: 10,
                    col: 5,
                    text: "int xdp_firewall(struct xdp_md *ctx) {".into(),
                },
                LineInfo {
                    insn: 7,
                    file: "fw.bpf.c".into(),
                    line: 12,
                    col: 9,
                    text: "    void *data = (void *)(long)ctx->data;".into(),
                },
            ],
            kfuncs: vec![KfuncName {
                btf_id: 70000,
                name: "bpf_xdp_metadata_rx_hash".into(),
            }],
            verifier: Some(VerifierInfo {
                log: "processed 39 insns (limit 1000000) max_states_per_insn 0 total_states 3 peak_states 3 mark_read 1\n".into(),
                log_level: 2,
                accepted: true,
                stats: VerifierStats {
                    insns_processed: 39,
                    max_states_per_insn: 0,
                    total_states: 3,
                    peak_states: 3,
                    mark_read: 1,
                },
                stack_depths: vec![16],
                verification_time_usec: 120,
            }),
            jit: Some(JitInfo {
                arch: "x86_64".into(),
                image: vec![0x0f, 0x1f, 0x44, 0x00, 0x00, 0x55, 0x48, 0x89, 0xe5, 0xc3],
                insn_offsets: (0..40).map(|i| i * 2).collect(),
                xlated: insns(40),
                orig_to_xlated: Vec::new(),
            }),
            tail_call_targets: vec![TailCallTarget {
                map: 2,
                slot: 0,
                program: 1,
            }],
        },
        Program {
            id: 1,
            name: "tail".into(),
            section: "xdp/tail".into(),
            prog_type: 6,
            attach_point: "tail_call".into(),
            license: "GPL".into(),
            insns: insns(8),
            ..Program::default()
        },
    ]
}

pub fn maps() -> Vec<Map> {
    vec![
        Map {
            id: 0,
            name: "blocked".into(),
            map_type: 1,
            key_size: 4,
            value_size: 8,
            max_entries: 1024,
            btf_key_type_id: 5,
            btf_value_type_id: 6,
            snapshots: vec![MapSnapshot {
                when: SnapshotTime::Start,
                n_cpus: 1,
                entries: vec![MapEntry {
                    key: vec![10, 0, 0, 1],
                    value: 7u64.to_le_bytes().to_vec(),
                }],
            }],
            ..Map::default()
        },
        Map {
            id: 1,
            name: "counters".into(),
            map_type: 6,
            key_size: 4,
            value_size: 8,
            max_entries: 4,
            snapshots: vec![MapSnapshot {
                when: SnapshotTime::Start,
                n_cpus: 2,
                entries: vec![MapEntry {
                    key: vec![0; 4],
                    value: vec![0; 16],
                }],
            }],
            ..Map::default()
        },
        Map {
            id: 2,
            name: "jmp_table".into(),
            map_type: 3,
            key_size: 4,
            value_size: 4,
            max_entries: 2,
            frozen: true,
            initial_data: Some(vec![1, 2, 3]),
            inner: Some(InnerMap {
                map_type: 2,
                key_size: 4,
                value_size: 4,
                max_entries: 1,
                flags: 0,
            }),
            ..Map::default()
        },
    ]
}

pub fn invocation(i: u64) -> Invocation {
    let packet: Vec<u8> = (0..(60 + i % 40))
        .map(|b| (b as u8).wrapping_mul(i as u8))
        .collect();
    let mut final_packet = packet.clone();
    final_packet[0] ^= 0xff;
    Invocation {
        seq: i,
        cpu: (i % 2) as u32,
        cpu_seq: i / 2,
        time_ns: 1_000_000 + i * 1000,
        program: (i % 5 == 4) as u32,
        ctx: (0..24).map(|b| (b as u8).wrapping_add(i as u8)).collect(),
        packet: Some(packet),
        packet_meta: if i.is_multiple_of(3) {
            Some(vec![1, 2, 3, 4])
        } else {
            None
        },
        packet_truncated_from: if i.is_multiple_of(7) {
            Some(9000)
        } else {
            None
        },
        events: vec![
            HelperEvent {
                insn: 3,
                kind: EventKind::Helper,
                id: 1,
                ret: 0xffff_8880_0000_0000 + i,
                outputs: vec![],
            },
            HelperEvent {
                insn: 5,
                kind: if i.is_multiple_of(2) {
                    EventKind::Kfunc
                } else {
                    EventKind::TailCall
                },
                // A kfunc's BTF id, or for a tail call the program that ran next.
                id: if i.is_multiple_of(2) { 70000 } else { 1 },
                ret: 0,
                outputs: vec![HelperOutput {
                    arg: 2,
                    bytes: i.to_le_bytes().to_vec(),
                }],
            },
        ],
        btf_loads: vec![BtfLoad {
            insn: 6,
            value: i * 3,
        }],
        retval: if i.is_multiple_of(10) { 1 } else { 2 },
        final_packet: Some(final_packet),
        partial: i == 13,
    }
}

/// Writes a trace of `n` invocations to `path` with `per_block` invocations per block.
pub fn write_trace(path: &std::path::Path, n: u64, per_block: usize) -> TraceSummary {
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
    .unwrap();
    for i in 0..n {
        w.push(invocation(i)).unwrap();
    }
    w.add_lost(1, 3);
    w.add_lost(0, 2);
    w.add_lost(1, 4);
    w.set_end_snapshots([(
        0,
        MapSnapshot {
            when: SnapshotTime::Start, // the writer marks it End
            n_cpus: 1,
            entries: vec![
                MapEntry {
                    key: vec![10, 0, 0, 1],
                    value: 9u64.to_le_bytes().to_vec(),
                },
                MapEntry {
                    key: vec![10, 0, 0, 2],
                    value: 1u64.to_le_bytes().to_vec(),
                },
            ],
        },
    )])
    .unwrap();
    w.finish().unwrap()
}

/// The bytes of a trace of `n` invocations, `per_block` per block.
pub fn trace_bytes(n: u64, per_block: usize) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.bpfrr");
    write_trace(&path, n, per_block);
    std::fs::read(&path).unwrap()
}

/// Recomputes the header checksum of a file after its header fields changed.
pub fn fix_header_checksum(file: &mut [u8]) {
    let sum = bpfrr_trace::trace::header::checksum(&file[0..56]);
    file[56..64].copy_from_slice(&sum.to_le_bytes());
}

/// Recomputes the directory checksum (and the header's) after the
/// directory bytes changed in place.
pub fn fix_directory_checksum(file: &mut [u8]) {
    let off = u64::from_le_bytes(file[24..32].try_into().unwrap()) as usize;
    let len = u64::from_le_bytes(file[32..40].try_into().unwrap()) as usize;
    let sum = bpfrr_trace::trace::header::checksum(&file[off..off + len]);
    file[40..48].copy_from_slice(&sum.to_le_bytes());
    fix_header_checksum(file);
}

/// Recomputes block checksums in the directory after block bytes changed,
/// then the directory and header checksums: the result passes every
/// checksum, so only bytecheck and the consistency rules stand guard.
pub fn fix_block_checksums(file: &mut [u8]) {
    let off = u64::from_le_bytes(file[24..32].try_into().unwrap()) as usize;
    let len = u64::from_le_bytes(file[32..40].try_into().unwrap()) as usize;
    let mut aligned = rkyv::util::AlignedVec::<16>::new();
    aligned.extend_from_slice(&file[off..off + len]);
    let mut dir = TraceDirectory::from_archive_bytes(&aligned).unwrap();
    for b in &mut dir.blocks {
        let (s, l) = (b.offset as usize, b.len as usize);
        b.checksum = bpfrr_trace::trace::header::checksum(&file[s..s + l]);
    }
    let new = dir.to_archive_bytes().unwrap();
    assert_eq!(new.len(), len, "same directory shape, same length");
    file[off..off + len].copy_from_slice(&new);
    fix_directory_checksum(file);
}

/// Reads everything a consumer could read from an opened trace, so that
/// any inconsistency the checks missed would show up as a panic.
pub fn exercise(trace: &Trace) {
    let summary = trace.summary();
    assert_eq!(summary.invocation_count, trace.invocation_count());
    let _ = serde_json::to_string(&summary).unwrap();
    for p in trace.programs() {
        for e in &p.func_info {
            let _ = p.insns[e.insn as usize];
        }
    }
    let n = trace.invocation_count().min(10_000);
    for i in 0..n {
        if let Ok(inv) = trace.invocation(i) {
            let owned = inv.to_owned_invocation();
            let program = &trace.programs()[owned.program as usize];
            for e in &owned.events {
                let _ = program.insns[e.insn as usize];
            }
            let _ = inv.packet.as_ref().map(|p| p.len());
        }
    }
    let mut seen = 0u64;
    for r in trace.iter_invocations() {
        match r {
            Ok(_) => seen += 1,
            Err(_) => break,
        }
    }
    if trace.verify_all().is_ok() {
        assert_eq!(seen, trace.invocation_count());
    }
}
