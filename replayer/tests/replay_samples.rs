//! Fidelity on the real samples: each object is linked as the recorder
//! links it (map references as fd_array indices, used_maps = every map),
//! run on its documented inputs with the models logging calls as the
//! recorder would, and every invocation must replay identically. Then the
//! traces committed under samples/traces/ (real kernel recordings) must
//! replay identically too.

mod replay_support;

use std::path::{Path, PathBuf};

use bpfrr_replayer::env::MemoryImage;
use bpfrr_replayer::replay::model_recording::object_definitions;
use bpfrr_replayer::replay::{DivergenceKind, Replayer, check_all};
use bpfrr_replayer::vm::{SkBuff, xdp_md};
use bpfrr_trace::object::ObjectFile;
use bpfrr_trace::trace::{Map, Program, TailCallTarget, Trace};
use replay_support::*;

fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples")
}

/// The object's programs (in object order) and maps as a trace holds them.
fn trace_defs(object: &str) -> (Vec<Program>, Vec<Map>) {
    let bytes = std::fs::read(samples().join(object)).expect("sample object");
    let obj = ObjectFile::parse(&bytes).expect("sample parses");
    object_definitions(&obj).expect("sample links")
}

/// The hex input frames of a sample.
fn frames(prefix: &str) -> Vec<Vec<u8>> {
    let mut names: Vec<_> = std::fs::read_dir(samples().join("inputs"))
        .expect("inputs")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().to_string();
            n.starts_with(prefix) && n.ends_with(".hex")
        })
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no inputs for {prefix}");
    names
        .iter()
        .map(|p| hex(&std::fs::read_to_string(p).expect("hex input")))
        .collect()
}

fn skb_ctx(frame: &[u8]) -> Vec<u8> {
    SkBuff {
        ifindex: 1,
        protocol: u16::from_be_bytes([frame[12], frame[13]]).to_be() as u32,
        wire_len: frame.len() as u32,
        gso_segs: 1,
        ..SkBuff::default()
    }
    .to_bytes()
}

fn assert_identical(trace: &Trace) {
    let summary = check_all(trace);
    assert!(summary.all_identical(), "{summary}");
    assert_eq!(summary.total, trace.invocation_count());
    assert_eq!(summary.notes, 0, "models and recording agree: {summary}");
    let calls: usize = (0..trace.invocation_count())
        .map(|i| trace.invocation_owned(i).unwrap().events.len())
        .sum();
    assert!(calls > 0, "the recording exercises helper calls");
}

#[test]
fn xdp_fw_replays_identically_and_a_changed_verdict_names_its_source_line() {
    let (programs, maps) = trace_defs("xdp_fw.bpf.o");
    let mut md = vec![0; xdp_md::SIZE];
    md[12..16].copy_from_slice(&1u32.to_le_bytes());
    let inputs: Vec<Input> = frames("xdp_fw-")
        .into_iter()
        .enumerate()
        .map(|(i, f)| Input {
            program: 0,
            cpu: (i % 2) as u32,
            ctx: md.clone(),
            packet: Some(f),
        })
        .collect();
    let trace = record(&programs, &maps, &inputs, |_| {});
    assert_identical(&trace);

    let mut invs = invocations(&trace);
    invs[0].retval ^= 1;
    let doctored = with_invocations(&trace, invs);
    let r = Replayer::new(&doctored).replay(0).expect("replays");
    let d = r.divergence.as_ref().expect("a divergence");
    assert!(matches!(d.kind, DivergenceKind::ReturnValue { .. }), "{d}");
    let line = d.related.as_ref().and_then(|l| l.line.as_ref());
    assert!(
        line.is_some_and(|l| l.file.contains("xdp_fw")),
        "the instruction that set r0 has a source line: {d}"
    );
}

#[test]
fn tc_rewrite_replays_identically_through_its_tail_call() {
    let (mut programs, maps) = trace_defs("tc_rewrite.bpf.o");
    let table = maps.iter().position(|m| m.name == "jump_table").unwrap();
    let target = programs
        .iter()
        .position(|p| p.name == "tc_redirect_port")
        .unwrap();
    let entry = programs
        .iter()
        .position(|p| p.name == "tc_mark_dscp")
        .unwrap();
    programs[entry].tail_call_targets = vec![TailCallTarget {
        map: table as u32,
        slot: 0,
        program: target as u32,
    }];
    let inputs: Vec<Input> = frames("tc_rewrite-")
        .into_iter()
        .map(|f| Input {
            program: entry as u32,
            cpu: 0,
            ctx: skb_ctx(&f),
            packet: Some(f),
        })
        .collect();
    let trace = record(&programs, &maps, &inputs, |_| {});
    let tail_calls = (0..trace.invocation_count())
        .flat_map(|i| trace.invocation_owned(i).unwrap().events)
        .filter(|e| e.kind == bpfrr_trace::trace::EventKind::TailCall && e.id == target as u32)
        .count();
    assert!(tail_calls > 0, "some input takes the tail call");
    assert_identical(&trace);
}

#[test]
fn socket_filter_and_cgroup_skb_replay_identically() {
    for (object, prefix) in [
        ("sock_filter.bpf.o", "sock_filter-"),
        ("cgroup_skb.bpf.o", "cgroup_skb-"),
    ] {
        let (programs, maps) = trace_defs(object);
        let inputs: Vec<Input> = frames(prefix)
            .into_iter()
            .map(|f| Input {
                program: 0,
                cpu: 1,
                ctx: skb_ctx(&f),
                // These program types see the packet from the network header.
                packet: Some(f[14..].to_vec()),
            })
            .collect();
        let trace = record(&programs, &maps, &inputs, |_| {});
        assert_identical(&trace);
    }
}

#[test]
fn tp_syscalls_replays_its_ring_buffer_and_bpf_loop_identically() {
    let (programs, maps) = trace_defs("tp_syscalls.bpf.o");
    const PATH_ADDR: u64 = 0x7fff_0000_1000;
    let mut ctx = vec![0u8; 48];
    ctx[8..12].copy_from_slice(&257u32.to_le_bytes()); // syscall_nr
    ctx[24..32].copy_from_slice(&PATH_ADDR.to_le_bytes()); // filename
    ctx[32..40].copy_from_slice(&0o100u64.to_le_bytes()); // flags
    let inputs = vec![
        Input {
            program: 0,
            cpu: 0,
            ctx,
            packet: None,
        };
        3
    ];
    let trace = record(&programs, &maps, &inputs, |model| {
        model.config_mut().user_memory =
            MemoryImage::new().with(PATH_ADDR, b"/etc/ssl/certs/ca.pem\0".to_vec());
    });
    let inv = trace.invocation_owned(1).unwrap();
    let loop_id = helper_id("loop");
    assert!(
        inv.events.iter().any(|e| e.id == loop_id && e.ret > 1),
        "the bpf_loop callback ran: {:?}",
        inv.events
    );
    assert_identical(&trace);
}

#[test]
fn committed_kernel_recordings_replay_identically() {
    let dir = samples().join("traces");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        // No recordings committed yet (they need root to make).
        return;
    };
    let mut checked = 0;
    for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        if path.extension().is_none_or(|e| e != "bpfrr") {
            continue;
        }
        let trace = Trace::open(&path).expect("committed trace opens");
        let summary = check_all(&trace);
        assert!(summary.all_identical(), "{}: {summary}", path.display());
        checked += 1;
    }
    eprintln!("{checked} committed traces replayed identically");
}
