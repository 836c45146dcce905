//! `bpfrr slice`, `bpfrr redact` and `bpfrr export-pcap` end to end,
//! through the real binary, on traces recorded from model runs of the
//! samples (`record_model_run`) and on the kernel recordings committed
//! under samples/traces/ when there are any.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use bpfrr_replayer::replay::model_recording::object_definitions;
use bpfrr_replayer::replay::{ModelInput, check_all, record_model_run};
use bpfrr_replayer::vm::{SkBuff, xdp_md};
use bpfrr_trace::isa::{AluOp, CallTarget, Imm64Kind, Insn, Operand, Size, Width, encode_all};
use bpfrr_trace::object::ObjectFile;
use bpfrr_trace::pcap::{self, LINKTYPE_ETHERNET, LINKTYPE_RAW};
use bpfrr_trace::trace::{Map, MapEntry, MapSnapshot, Program, SnapshotTime, Trace, TraceMeta};

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn scratch(name: &str) -> PathBuf {
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("bugreport-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    dir.join(format!("{n}-{name}"))
}

fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples")
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

fn ok(args: &[&str]) -> String {
    let (code, out, err) = bpfrr(args);
    assert_eq!(code, 0, "bpfrr {args:?} failed:\n{out}\n{err}");
    out
}

fn meta() -> TraceMeta {
    TraceMeta {
        bpfrr_version: "test".into(),
        hostname: Some("secret-host".into()),
        command: vec!["bpfrr".into(), "record".into(), "/home/alice/prog.o".into()],
        start_time_ns: 1_700_000_000_000_000_000,
        n_cpus: 2,
        ..TraceMeta::default()
    }
}

fn definitions(object: &str) -> (Vec<Program>, Vec<Map>) {
    let bytes = std::fs::read(samples().join(object)).unwrap();
    object_definitions(&ObjectFile::parse(&bytes).unwrap()).unwrap()
}

fn sample_frames(name: &str) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(samples().join("inputs").join(name)).unwrap();
    pcap::read_packets(&bytes).unwrap()
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

/// xdp_fw on every frame of its pcap, three times over (CPUs 0 and 1).
fn xdp_fw_trace() -> (PathBuf, Vec<Vec<u8>>) {
    xdp_fw_trace_padded(0)
}

/// The same with `pad` bytes of payload (0x5a) after each frame.
fn xdp_fw_trace_padded(pad: usize) -> (PathBuf, Vec<Vec<u8>>) {
    let (programs, maps) = definitions("xdp_fw.bpf.o");
    let mut md = vec![0; xdp_md::SIZE];
    md[12..16].copy_from_slice(&1u32.to_le_bytes());
    let one_round = sample_frames("xdp_fw.pcap");
    let frames: Vec<Vec<u8>> = (0..3)
        .flat_map(|_| one_round.iter().cloned())
        .map(|mut f| {
            f.resize(f.len() + pad, 0x5a);
            f
        })
        .collect();
    let inputs: Vec<ModelInput> = frames
        .iter()
        .enumerate()
        .map(|(i, f)| ModelInput {
            program: 0,
            cpu: (i % 2) as u32,
            ctx: md.clone(),
            packet: Some(f.clone()),
        })
        .collect();
    let path = scratch("xdp_fw.bpfrr");
    let t = record_model_run(&path, meta(), &programs, &maps, &inputs, |_| {}).unwrap();
    assert!(check_all(&t).all_identical());
    (path, frames)
}

fn open(path: &Path) -> Trace {
    let t = Trace::open(path).expect("the output opens");
    t.verify_all().expect("every block of the output is valid");
    t
}

#[test]
fn a_slice_of_a_sample_trace_replays_every_kept_invocation_identically() {
    let (path, _) = xdp_fw_trace();
    let orig = open(&path);
    let out = scratch("small.bpfrr");
    let text = ok(&[
        "slice",
        path.to_str().unwrap(),
        "--invocations",
        "17,3,20-22",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(text.contains("5 of "), "{text}");
    assert!(text.contains("(3, 17, 20-22)"), "{text}");
    assert!(
        text.contains("5/5 invocations still replay identically"),
        "{text}"
    );
    assert!(
        text.contains("the map state just before original invocation 3"),
        "{text}"
    );
    let s = open(&out);
    assert_eq!(s.invocation_count(), 5);
    let summary = check_all(&s);
    assert!(summary.all_identical(), "{summary}");
    for (new, old) in [3u64, 17, 20, 21, 22].into_iter().enumerate() {
        let a = s.invocation_owned(new as u64).unwrap();
        let b = orig.invocation_owned(old).unwrap();
        assert_eq!(a, b, "invocation {old} is kept as recorded");
    }
    assert!(s.meta().notes.contains("kept invocations 3, 17, 20-22"));

    // Errors are one sentence, and nothing is written.
    let bad = scratch("bad.bpfrr");
    let (code, _, err) = bpfrr(&[
        "slice",
        path.to_str().unwrap(),
        "--invocations",
        "1,999",
        "-o",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("so there is no invocation 999"), "{err}");
    assert!(!bad.exists());
    let (code, _, err) = bpfrr(&[
        "slice",
        path.to_str().unwrap(),
        "--invocations",
        "x",
        "-o",
        "y",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("is not an index"), "{err}");
}

/// A raw tracepoint program returning a .bss counter it increments.
fn bss_counter_trace() -> PathBuf {
    let insns = [
        Insn::LoadImm64 {
            kind: Imm64Kind::MapIdxValue,
            dst: 1,
            imm: 0,
        },
        Insn::Load {
            size: Size::DW,
            signed: false,
            dst: 0,
            src: 1,
            off: 0,
        },
        Insn::Alu {
            width: Width::W64,
            op: AluOp::Add,
            dst: 0,
            src: Operand::Imm(1),
        },
        Insn::Store {
            size: Size::DW,
            dst: 1,
            off: 0,
            src: Operand::Reg(0),
        },
        Insn::Exit,
    ];
    let program = Program {
        id: 0,
        name: "bss_counter".into(),
        prog_type: 17,
        insns: encode_all(&insns).iter().map(|r| r.to_bytes()).collect(),
        used_maps: vec![0],
        ..Program::default()
    };
    let bss = Map {
        id: 0,
        name: ".bss".into(),
        map_type: 2,
        key_size: 4,
        value_size: 8,
        max_entries: 1,
        initial_data: Some(vec![0; 8]),
        snapshots: vec![MapSnapshot {
            when: SnapshotTime::Start,
            n_cpus: 1,
            entries: vec![MapEntry {
                key: vec![0; 4],
                value: 5u64.to_le_bytes().to_vec(),
            }],
        }],
        ..Map::default()
    };
    let inputs = vec![
        ModelInput {
            ctx: vec![0; 16],
            ..ModelInput::default()
        };
        5
    ];
    let path = scratch("bss.bpfrr");
    let t = record_model_run(&path, meta(), &[program], &[bss], &inputs, |_| {}).unwrap();
    let retvals: Vec<u64> = (0..5)
        .map(|i| t.invocation_owned(i).unwrap().retval)
        .collect();
    assert_eq!(retvals, [6, 7, 8, 9, 10]);
    path
}

#[test]
fn a_slice_starts_from_the_state_before_its_first_invocation_and_reports_gaps() {
    let path = bss_counter_trace();
    let out = scratch("s.bpfrr");
    let text = ok(&[
        "slice",
        path.to_str().unwrap(),
        "--invocations",
        "2-3",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(
        text.contains("2/2 invocations still replay identically"),
        "{text}"
    );
    let s = open(&out);
    let start = &s.maps()[0].snapshots[0];
    assert_eq!(start.when, SnapshotTime::Start);
    assert_eq!(
        start.entries[0].value,
        7u64.to_le_bytes(),
        "after invocations 0 and 1"
    );
    let end = s.maps()[0]
        .snapshots
        .iter()
        .find(|x| x.when == SnapshotTime::End);
    assert_eq!(end.unwrap().entries[0].value, 9u64.to_le_bytes());
    let r = check_all(&s);
    assert!(r.all_identical(), "{r}");

    // Invocation 2 is dropped between 1 and 3: 3 reads the counter it changed.
    let out = scratch("gap.bpfrr");
    let text = ok(&[
        "slice",
        path.to_str().unwrap(),
        "--invocations",
        "1,3",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(
        text.contains("1/2 invocations still replay identically"),
        "{text}"
    );
    assert!(
        text.contains("invocation 1 (invocation 3 of the original)"),
        "{text}"
    );
    assert!(
        text.contains("returns 8 in the replay, 9 in the recording"),
        "{text}"
    );
    assert!(text.contains("differs from the original in .bss"), "{text}");
    assert!(
        text.contains("warning: 1 kept invocations no longer replay identically"),
        "{text}"
    );
    open(&out);
}

#[test]
fn redaction_beyond_what_the_program_reads_keeps_every_replay_identical() {
    // xdp_fw reads at most 74 bytes (Ethernet + IPv6 + TCP); every frame
    // gets 60 bytes of payload, so a snap length of 80 cuts each one.
    let (path, frames) = xdp_fw_trace_padded(60);
    let out = scratch("safe.bpfrr");
    let text = ok(&[
        "redact",
        path.to_str().unwrap(),
        "--snaplen",
        "80",
        "--zero-payload",
        "--drop-comm",
        "-o",
        out.to_str().unwrap(),
    ]);
    let n = frames.len();
    assert!(
        text.contains(&format!("{n}/{n} invocations still replay identically")),
        "{text}"
    );
    assert!(text.contains("zeroed the payload of"), "{text}");
    assert!(text.contains("dropped the host name"), "{text}");
    assert!(
        text.contains("dropped the recording command line"),
        "{text}"
    );
    let r = open(&out);
    assert_eq!(r.meta().hostname, None);
    assert!(r.meta().command.is_empty());
    assert!(check_all(&r).all_identical());
    assert!(frames.iter().all(|f| f.len() > 80));
    assert!(text.contains(&format!("cut {n} packets")), "{text}");
    let first = r.invocation_owned(0).unwrap();
    assert_eq!(first.packet.as_ref().unwrap().len(), 80);
    assert_eq!(first.packet_truncated_from, Some(frames[0].len() as u32));
}

#[test]
fn redaction_that_removes_read_bytes_reports_each_divergence() {
    let (path, frames) = xdp_fw_trace();
    let out = scratch("cut.bpfrr");
    let text = ok(&[
        "redact",
        path.to_str().unwrap(),
        "--snaplen",
        "20",
        "-o",
        out.to_str().unwrap(),
    ]);
    let n = frames.len();
    let first = text
        .lines()
        .find(|l| l.contains("invocations still replay identically"))
        .unwrap();
    let identical: usize = first.split('/').next().unwrap().parse().unwrap();
    assert!(identical < n, "{text}");
    assert!(
        first.ends_with(&format!("/{n} invocations still replay identically")),
        "{text}"
    );
    assert!(
        text.contains(&format!("{} no longer replay identically", n - identical)),
        "{text}"
    );
    let listed = text
        .lines()
        .filter(|l| l.contains(" diverges at instruction"))
        .count();
    assert_eq!(listed, n - identical, "every divergence is listed:\n{text}");
    assert!(
        text.contains("xdp_fw.bpf.c:"),
        "divergences name source lines:\n{text}"
    );
    open(&out);
}

/// A raw tracepoint program: `bpf_get_current_comm(buf, 16)` on the
/// stack, returns the first byte of the name.
fn comm_trace() -> PathBuf {
    let insns = [
        Insn::Alu {
            width: Width::W64,
            op: AluOp::Mov,
            dst: 1,
            src: Operand::Reg(10),
        },
        Insn::Alu {
            width: Width::W64,
            op: AluOp::Add,
            dst: 1,
            src: Operand::Imm(-16),
        },
        Insn::Alu {
            width: Width::W64,
            op: AluOp::Mov,
            dst: 2,
            src: Operand::Imm(16),
        },
        Insn::Call(CallTarget::Helper(16)),
        Insn::Load {
            size: Size::B,
            signed: false,
            dst: 0,
            src: 10,
            off: -16,
        },
        Insn::Exit,
    ];
    let program = Program {
        id: 0,
        name: "comm_first_byte".into(),
        prog_type: 17,
        insns: encode_all(&insns).iter().map(|r| r.to_bytes()).collect(),
        ..Program::default()
    };
    let inputs = vec![
        ModelInput {
            ctx: vec![0; 16],
            ..ModelInput::default()
        };
        2
    ];
    let path = scratch("comm.bpfrr");
    let t = record_model_run(&path, meta(), &[program], &[], &inputs, |model| {
        model.config_mut().task.comm = "secret-tool".into();
    })
    .unwrap();
    assert_eq!(t.invocation_owned(0).unwrap().retval, u64::from(b's'));
    path
}

#[test]
fn drop_comm_zeroes_comm_outputs_and_reports_the_runs_that_read_them() {
    let path = comm_trace();
    assert!(
        std::fs::read(&path)
            .unwrap()
            .windows(11)
            .any(|w| w == b"secret-tool")
    );
    let out = scratch("comm-safe.bpfrr");
    let text = ok(&[
        "redact",
        path.to_str().unwrap(),
        "--drop-comm",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(
        text.contains("zeroed 2 bpf_get_current_comm outputs"),
        "{text}"
    );
    assert!(
        text.contains("0/2 invocations still replay identically"),
        "{text}"
    );
    assert!(
        text.contains("the program returns 0 in the replay, 115 in the recording"),
        "the program returned a byte of the name:\n{text}"
    );
    open(&out);
    let bytes = std::fs::read(&out).unwrap();
    assert!(
        !bytes.windows(11).any(|w| w == b"secret-tool"),
        "the comm is gone"
    );
    assert!(
        !bytes.windows(11).any(|w| w == b"secret-host"),
        "the host name is gone"
    );
    assert!(
        !bytes.windows(10).any(|w| w == b"/home/alic"),
        "the command line is gone"
    );
}

#[test]
fn export_pcap_writes_the_recorded_packets_readable_back() {
    let (path, frames) = xdp_fw_trace();
    let out = scratch("packets.pcap");
    let text = ok(&[
        "export-pcap",
        path.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(
        text.contains(&format!(
            "{} recorded packets, link type Ethernet",
            frames.len()
        )),
        "{text}"
    );
    let f = pcap::read(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(f.linktype, LINKTYPE_ETHERNET);
    let data: Vec<Vec<u8>> = f.records.iter().map(|r| r.data.clone()).collect();
    assert_eq!(data, frames);
    assert!(f.records.windows(2).all(|w| w[0].ts_ns < w[1].ts_ns));
    assert_eq!(f.records[0].ts_ns, meta().start_time_ns);

    let fin = scratch("final.pcap");
    ok(&[
        "export-pcap",
        path.to_str().unwrap(),
        "--final",
        "-o",
        fin.to_str().unwrap(),
    ]);
    let f = pcap::read(&std::fs::read(&fin).unwrap()).unwrap();
    assert_eq!(
        f.records.len(),
        frames.len(),
        "xdp_fw leaves packets as they are"
    );

    // Socket filter packets start at the IP header: raw IP.
    let (programs, maps) = definitions("sock_filter.bpf.o");
    let frames = sample_frames("sock_filter.pcap");
    let inputs: Vec<ModelInput> = frames
        .iter()
        .map(|f| ModelInput {
            program: 0,
            cpu: 0,
            ctx: skb_ctx(f),
            packet: Some(f[14..].to_vec()),
        })
        .collect();
    let sock = scratch("sock.bpfrr");
    record_model_run(&sock, meta(), &programs, &maps, &inputs, |_| {}).unwrap();
    let out = scratch("sock.pcap");
    let text = ok(&[
        "export-pcap",
        sock.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(text.contains("link type raw IP"), "{text}");
    let f = pcap::read(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(f.linktype, LINKTYPE_RAW);
    assert_eq!(f.records[0].data, frames[0][14..]);
}

#[test]
fn committed_kernel_recordings_slice_redact_and_export() {
    let Ok(entries) = std::fs::read_dir(samples().join("traces")) else {
        eprintln!("no committed kernel recordings yet (samples/traces)");
        return;
    };
    let mut checked = 0;
    for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        if path.extension().is_none_or(|e| e != "bpfrr") {
            continue;
        }
        let p = path.to_str().unwrap();
        let t = open(&path);
        if t.invocation_count() == 0 {
            continue;
        }
        let last = t.invocation_count() - 1;
        let list = format!("0,{last}");
        let out = scratch("k-slice.bpfrr");
        let text = ok(&[
            "slice",
            p,
            "--invocations",
            &list,
            "-o",
            out.to_str().unwrap(),
        ]);
        open(&out);
        let kept = if last == 0 { 1 } else { 2 };
        assert!(
            text.contains(&format!(
                "{kept}/{kept} invocations still replay identically"
            )) || text.contains("differs from the original in"),
            "{}: {text}",
            path.display()
        );
        let out = scratch("k-safe.bpfrr");
        let text = ok(&[
            "redact",
            p,
            "--zero-payload",
            "--drop-comm",
            "-o",
            out.to_str().unwrap(),
        ]);
        assert!(
            text.contains("invocations still replay identically"),
            "{text}"
        );
        open(&out);
        let out = scratch("k.pcap");
        ok(&["export-pcap", p, "-o", out.to_str().unwrap()]);
        pcap::read(&std::fs::read(&out).unwrap()).expect("the export reads back");
        checked += 1;
    }
    eprintln!("{checked} committed kernel recordings sliced, redacted and exported");
}
