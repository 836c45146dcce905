//! Kernel tests of the instrumenter: the instrumented copy of EVERY program
//! of every sample object loads (the verifier accepts it), and on each
//! packet sample's documented inputs it returns the same value and leaves
//! the same packet as the original, while its ring buffer records decode
//! into one complete invocation per run that agrees with the kernel.

mod common;

use std::path::{Path, PathBuf};

use bpfrr_recorder::record::assemble::Assembler;
use bpfrr_recorder::record::prepare::{BpfrrMaps, PrepareOptions, Prepared, prepare};
use bpfrr_recorder::record::ringbuf::RingReader;
use bpfrr_recorder::record::testrun_driver::parse_hex;
use bpfrr_recorder::testrun::{RunInput, RunKind, run};
use bpfrr_recorder::wire;
use bpfrr_trace::trace::{EventKind, Invocation};

fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples")
}

fn objects() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(samples())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".bpf.o"))
        .collect();
    v.sort();
    v
}

fn opts(program: &str) -> PrepareOptions {
    PrepareOptions {
        program: Some(program.to_string()),
        ..PrepareOptions::default()
    }
}

#[test]
fn every_instrumented_sample_program_loads() {
    if !common::kernel_tests_enabled("every_instrumented_sample_program_loads") {
        return;
    }
    let mut loaded = 0;
    for obj in objects() {
        let names = bpfrr_recorder::load::LoadedObject::open(&obj)
            .unwrap()
            .program_names();
        for name in names {
            let p = prepare(&obj, &opts(&name))
                .unwrap_or_else(|e| panic!("{}: {name}: {e}", obj.display()));
            for prog in &p.programs {
                assert!(prog.instrumented_info.id > 0);
                assert!(
                    prog.instrumented.program.insns.len() > prog.original.linked.insns.len(),
                    "{name}: instrumentation added code"
                );
            }
            loaded += 1;
        }
    }
    assert!(loaded >= 8, "only {loaded} programs");
}

/// The hex inputs of a sample, sorted.
fn inputs(sample: &str) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(samples().join("inputs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().to_string();
            n.starts_with(&format!("{sample}-")) && n.ends_with(".hex")
        })
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (
                p.file_name().unwrap().to_string_lossy().to_string(),
                parse_hex(&text).unwrap(),
            )
        })
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no inputs for {sample}");
    v
}

/// Flushes the batched invocations of every CPU, then reads them.
fn drain(maps: &BpfrrMaps, ring: &mut RingReader, asm: &mut Assembler) -> Vec<Invocation> {
    maps.flush().expect("the flush program runs");
    let mut out = Vec::new();
    let mut recs = Vec::new();
    ring.drain(|b| recs.extend(wire::decode(b).expect("records decode")));
    for r in recs {
        out.extend(asm.push(r));
    }
    out
}

/// Runs the original (from one prepared copy) and the instrumented program
/// (from another, so map state evolves the same way) on every input.
fn compare(sample: &str, program: &str, expect_tail_call: bool) {
    let obj = samples().join(format!("{sample}.bpf.o"));
    let orig: Prepared = prepare(&obj, &opts(program)).unwrap();
    orig.fill_prog_arrays(false).unwrap();
    let inst: Prepared = prepare(&obj, &opts(program)).unwrap();
    let mut ring = RingReader::new(&inst.bpfrr.ringbuf).unwrap();
    let mut asm = Assembler::new();
    let prog_type = orig.programs[0].original.linked.prog_type;
    let kind = RunKind::from_prog_type(prog_type).unwrap();
    let strips_eth = matches!(kind, RunKind::SocketFilter | RunKind::CgroupSkb);
    let mut tail_calls = 0;
    for (name, frame) in inputs(sample) {
        let input = RunInput::Packet {
            frame: &frame,
            ctx: None,
        };
        let a = run(&orig.programs[0].original.fd, kind, input, 1).unwrap();
        let b = run(&inst.programs[0].fd, kind, input, 1).unwrap();
        assert_eq!(
            a.retval, b.retval,
            "{sample}/{program} {name}: return value"
        );
        assert_eq!(
            a.data_out, b.data_out,
            "{sample}/{program} {name}: output packet"
        );

        let invs = drain(&inst.bpfrr, &mut ring, &mut asm);
        assert_eq!(invs.len(), 1, "{name}: one invocation per run");
        let inv = &invs[0];
        assert!(!inv.partial, "{name}: complete");
        assert_eq!(inv.retval as u32, b.retval, "{name}: recorded r0");
        assert_eq!(inv.program, 0);
        let view = |p: &[u8]| -> Vec<u8> {
            if strips_eth {
                p[14..].to_vec()
            } else {
                p.to_vec()
            }
        };
        assert_eq!(
            inv.packet.as_deref(),
            Some(&view(&frame)[..]),
            "{name}: entry packet"
        );
        assert_eq!(
            inv.final_packet.as_deref(),
            Some(&view(&b.data_out)[..]),
            "{name}: final packet"
        );
        for e in &inv.events {
            assert!(
                (e.insn as usize) < orig.programs[0].original.linked.insns.len()
                    || e.kind == EventKind::Helper,
                "{name}: event insn in range"
            );
        }
        if let Some(t) = inv.events.iter().find(|e| e.kind == EventKind::TailCall)
            && t.id != u32::MAX
        {
            tail_calls += 1;
            assert_eq!(t.id, 1, "the tail call went to the target program");
        }
    }
    if expect_tail_call {
        assert!(tail_calls > 0, "{sample}: some input took the tail call");
    }
    assert_eq!(asm.orphans, 0);
    assert!(
        inst.bpfrr
            .lost_per_cpu()
            .unwrap()
            .iter()
            .all(|(_, n)| *n == 0)
    );
}

#[test]
fn xdp_fw_instrumented_behaves_like_the_original() {
    if common::kernel_tests_enabled("xdp_fw_instrumented_behaves_like_the_original") {
        compare("xdp_fw", "xdp_firewall", false);
    }
}

#[test]
fn tc_rewrite_instrumented_behaves_like_the_original_through_the_tail_call() {
    if common::kernel_tests_enabled("tc_rewrite_instrumented_behaves_like_the_original") {
        compare("tc_rewrite", "tc_mark_dscp", true);
    }
}

#[test]
fn sock_filter_instrumented_behaves_like_the_original() {
    if common::kernel_tests_enabled("sock_filter_instrumented_behaves_like_the_original") {
        compare("sock_filter", "udp_port_filter", false);
    }
}

#[test]
fn cgroup_skb_instrumented_behaves_like_the_original() {
    if common::kernel_tests_enabled("cgroup_skb_instrumented_behaves_like_the_original") {
        compare("cgroup_skb", "egress_accounting", false);
    }
}

/// The final packet is copied again only when a program of the recording
/// can change it (the analysis of the original's verifier log): tc_rewrite
/// rewrites its packets, the other packet samples only read theirs. The
/// `compare` tests above check, input by input, that the recorded final
/// packet is the kernel's either way.
#[test]
fn only_programs_that_can_change_the_packet_copy_it_at_exit() {
    if !common::kernel_tests_enabled("only_programs_that_can_change_the_packet_copy_it_at_exit") {
        return;
    }
    for (sample, program, unchanged) in [
        ("xdp_fw", "xdp_firewall", true),
        ("tc_rewrite", "tc_mark_dscp", false),
        ("sock_filter", "udp_port_filter", true),
        ("cgroup_skb", "egress_accounting", true),
    ] {
        let p = prepare(&samples().join(format!("{sample}.bpf.o")), &opts(program)).unwrap();
        for prog in &p.programs {
            assert_eq!(
                prog.probe_config.packet_unchanged, unchanged,
                "{sample}/{}",
                prog.original.linked.name
            );
        }
    }
}

/// An invocation whose records do not fit bpfrr's per-CPU scratch buffer:
/// the records past the end are counted as lost, the invocation reaches
/// userspace marked partial, and received + lost = produced, exactly.
#[test]
fn records_past_the_scratch_buffer_are_counted_and_the_invocation_is_partial() {
    use bpfrr_recorder::instrument::{CtxCapture, LogSites, PacketAccess, ProbeConfig, instrument};
    use bpfrr_recorder::record::prepare::BpfrrMaps;
    use bpfrr_recorder::sys::ProgLoad;
    use bpfrr_trace::isa::RawInsn;
    use bpfrr_trace::isa::opcode::*;
    use bpfrr_trace::object::LinkedProgram;
    use std::os::fd::AsRawFd;

    if !common::kernel_tests_enabled("records_past_the_scratch_buffer_are_counted") {
        return;
    }
    // XDP: 40 calls of bpf_get_prandom_u32, then return XDP_PASS.
    const CALLS: u64 = 40;
    let mut insns: Vec<RawInsn> = (0..CALLS)
        .map(|_| RawInsn::new(CLASS_JMP | JMP_CALL, 0, 0, 0, 7))
        .collect();
    insns.push(RawInsn::new(CLASS_ALU64 | ALU_MOV | SRC_K, 0, 0, 0, 2));
    insns.push(RawInsn::new(CLASS_JMP | JMP_EXIT, 0, 0, 0, 0));
    let linked = LinkedProgram {
        name: "many_calls".into(),
        section: "xdp".into(),
        prog_type: 6,
        insns,
        license: "GPL".into(),
        ..LinkedProgram::default()
    };
    // A 1 KiB scratch buffer: the entry and about twenty helper records.
    let scratch = 1024;
    let maps = BpfrrMaps::create(1 << 20, scratch).unwrap();
    let cfg = ProbeConfig {
        prog_id: 0,
        ringbuf_fd: maps.ringbuf.fd.as_raw_fd(),
        state_fd: maps.state.fd.as_raw_fd(),
        ctx: CtxCapture::Fields {
            image_len: 0,
            fields: Vec::new(),
        },
        packet: PacketAccess::Xdp,
        packet_cap: 64,
        meta_cap: 32,
        output_cap: 64,
        scratch,
        inline_copy_max: 64,
        reuse_state: true,
        packet_unchanged: false,
        batch_bytes: 0,
        entry_clock: true,
        sites: LogSites::default(),
    };
    let inst = instrument(&linked, &[0], &[], &cfg).unwrap();
    let mut load = ProgLoad::new(6, &inst.program.insns);
    load.name = "many_calls";
    load.license = "GPL";
    let prog = load.load().unwrap();

    let frame = vec![0xabu8; 64];
    let input = RunInput::Packet {
        frame: &frame,
        ctx: None,
    };
    let r = run(&prog.fd, RunKind::Xdp, input, 1).unwrap();
    assert_eq!(r.retval, 2, "the program's behaviour does not change");

    let mut ring = RingReader::new(&maps.ringbuf).unwrap();
    let mut asm = Assembler::new();
    let mut invs = drain(&maps, &mut ring, &mut asm);
    invs.extend(asm.finish());
    assert_eq!(invs.len(), 1);
    let inv = &invs[0];
    assert!(inv.partial, "records were lost: the invocation says so");
    assert_eq!(inv.packet.as_deref(), Some(&frame[..]));
    assert!(!inv.events.is_empty() && (inv.events.len() as u64) < CALLS);
    let lost: u64 = maps.lost_per_cpu().unwrap().iter().map(|(_, n)| n).sum();
    let received = 1 + inv.events.len() as u64 + u64::from(inv.final_packet.is_some());
    assert_eq!(received + lost, 1 + CALLS + 1, "entry, {CALLS} calls, exit");

    // The scratch buffer is free again: a second run loses the same.
    run(&prog.fd, RunKind::Xdp, input, 1).unwrap();
    let again = drain(&maps, &mut ring, &mut asm);
    let lost2: u64 = maps.lost_per_cpu().unwrap().iter().map(|(_, n)| n).sum();
    let mut all = again;
    all.extend(asm.finish());
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].events.len(), inv.events.len());
    assert_eq!(lost2, 2 * lost);
}

/// The largest snap length bpfrr accepts still fits the per-CPU scratch
/// buffer (an array value of at most 4 MiB), and the probes sized for it
/// load; a larger request is capped.
#[test]
fn the_largest_snap_length_loads() {
    use bpfrr_recorder::record::prepare::MAX_SNAPLEN;
    if !common::kernel_tests_enabled("the_largest_snap_length_loads") {
        return;
    }
    for snaplen in [MAX_SNAPLEN, u32::MAX] {
        for (sample, program) in [("xdp_fw", "xdp_firewall"), ("tc_rewrite", "tc_mark_dscp")] {
            let o = PrepareOptions {
                snaplen: Some(snaplen),
                ..opts(program)
            };
            let p = prepare(&samples().join(format!("{sample}.bpf.o")), &o)
                .unwrap_or_else(|e| panic!("{sample} --snaplen {snaplen}: {e}"));
            assert_eq!(p.programs[0].probe_config.packet_cap, MAX_SNAPLEN);
        }
    }
}

/// XDP probes copy short packets with direct packet loads (8 bytes at a
/// time, then 4, 2, 1) and longer ones with `bpf_xdp_load_bytes`: every
/// length around the direct-copy limit and every remainder modulo 8 is
/// recorded byte for byte, and a snap length below the limit cuts the
/// packet at its capture (the real length kept).
#[test]
fn xdp_packets_of_every_short_length_are_recorded_exactly() {
    use bpfrr_recorder::instrument::XDP_DIRECT_COPY_MAX;
    if !common::kernel_tests_enabled("xdp_packets_of_every_short_length_are_recorded_exactly") {
        return;
    }
    let obj = samples().join("xdp_fw.bpf.o");
    let limit = XDP_DIRECT_COPY_MAX as usize;
    for snaplen in [None, Some(61u32)] {
        let p = prepare(
            &obj,
            &PrepareOptions {
                snaplen,
                ..opts("xdp_firewall")
            },
        )
        .unwrap();
        let mut ring = RingReader::new(&p.bpfrr.ringbuf).unwrap();
        let mut asm = Assembler::new();
        for len in (14..=limit + 9).chain([1500]) {
            let frame: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let input = RunInput::Packet {
                frame: &frame,
                ctx: None,
            };
            run(&p.programs[0].fd, RunKind::Xdp, input, 1).unwrap();
            let invs = drain(&p.bpfrr, &mut ring, &mut asm);
            assert_eq!(invs.len(), 1, "{len}: one invocation");
            // The capture is the snap length rounded up to 8 bytes.
            let keep = snaplen.map_or(len, |s| len.min((s as usize).next_multiple_of(8)));
            assert_eq!(
                invs[0].packet.as_deref(),
                Some(&frame[..keep]),
                "{len} bytes, snap length {snaplen:?}"
            );
            let cut = (keep < len).then_some(len as u32);
            assert_eq!(invs[0].packet_truncated_from, cut, "{len}");
        }
    }
}

/// An invocation that starts while another is in flight on its CPU (an
/// interrupt running a program in the middle of another): its records go
/// after the outer invocation's, behind a nesting frame, leave as a blob
/// of their own, and its exit gives the scratch buffer back exactly as it
/// was (the outer invocation's records and bookkeeping untouched). The
/// outer invocation is simulated by writing its bookkeeping and records
/// into every CPU's state before the run.
#[test]
fn a_nested_invocation_leaves_the_outer_one_as_it_was() {
    use bpfrr_recorder::sys::possible_cpus;
    use wire::{STATE_BUF, STATE_DEPTH, STATE_NREC, STATE_OFF, STATE_START};
    if !common::kernel_tests_enabled("a_nested_invocation_leaves_the_outer_one_as_it_was") {
        return;
    }
    let p = prepare(&samples().join("xdp_fw.bpf.o"), &opts("xdp_firewall")).unwrap();
    let mut ring = RingReader::new(&p.bpfrr.ringbuf).unwrap();
    let mut asm = Assembler::new();
    // The outer invocation: its frame at 0, 184 bytes of records after it.
    let (start, off, nrec) = (16u64, 200u64, 3u64);
    let put = |v: &mut [u8], at: i16, x: u64| {
        v[at as usize..at as usize + 8].copy_from_slice(&x.to_le_bytes())
    };
    let outer = |v: &[u8]| v[STATE_BUF as usize + 16..STATE_BUF as usize + 200].to_vec();
    for cpu in 0..possible_cpus() as u32 {
        let key = cpu.to_le_bytes();
        let mut v = p.bpfrr.state.lookup(&key).unwrap().unwrap();
        put(&mut v, STATE_START, start);
        put(&mut v, STATE_OFF, off);
        put(&mut v, STATE_NREC, nrec);
        put(&mut v, STATE_DEPTH, 1);
        v[STATE_BUF as usize + 16..STATE_BUF as usize + 200].fill(0xab);
        p.bpfrr.state.update(&key, &v, 0).unwrap();
    }
    let frame: Vec<u8> = inputs("xdp_fw").remove(0).1;
    let input = RunInput::Packet {
        frame: &frame,
        ctx: None,
    };
    run(&p.programs[0].fd, RunKind::Xdp, input, 1).unwrap();
    let invs = drain(&p.bpfrr, &mut ring, &mut asm);
    assert_eq!(invs.len(), 1, "the nested invocation leaves on its own");
    assert!(!invs[0].partial);
    assert_eq!(invs[0].packet.as_deref(), Some(&frame[..]));
    let get =
        |v: &[u8], at: i16| u64::from_le_bytes(v[at as usize..at as usize + 8].try_into().unwrap());
    for cpu in 0..possible_cpus() as u32 {
        let v = p.bpfrr.state.lookup(&cpu.to_le_bytes()).unwrap().unwrap();
        assert_eq!(
            (
                get(&v, STATE_START),
                get(&v, STATE_OFF),
                get(&v, STATE_NREC)
            ),
            (start, off, nrec),
            "CPU {cpu}: the outer invocation's bookkeeping is back"
        );
        assert_eq!(get(&v, STATE_DEPTH), 1, "CPU {cpu}: the outer one is open");
        assert!(
            outer(&v).iter().all(|&b| b == 0xab),
            "CPU {cpu}: its records are untouched"
        );
    }
}

/// What a batched test run produced: invocations (in ring order), and the
/// number of ring buffer items they came in.
fn read_items(ring: &mut RingReader, asm: &mut Assembler) -> (Vec<Invocation>, usize) {
    let mut recs = Vec::new();
    let items = ring.drain(|b| recs.extend(wire::decode(b).expect("records decode")));
    let invs = recs.into_iter().flat_map(|r| asm.push(r)).collect();
    (invs, items)
}

/// xdp_fw prepared for the batch tests, with a reader on its ring buffer
/// and the sample's first input frame.
struct BatchedXdpFw {
    p: Prepared,
    ring: RingReader,
    asm: Assembler,
    frame: Vec<u8>,
}

impl BatchedXdpFw {
    fn prepare(o: &PrepareOptions) -> BatchedXdpFw {
        let p = prepare(&samples().join("xdp_fw.bpf.o"), o).unwrap();
        let ring = RingReader::new(&p.bpfrr.ringbuf).unwrap();
        let frame = inputs("xdp_fw").remove(0).1;
        BatchedXdpFw {
            p,
            ring,
            asm: Assembler::new(),
            frame,
        }
    }

    /// One test run repeating the program `n` times on the frame.
    fn run(&self, n: u32) {
        let input = RunInput::Packet {
            frame: &self.frame,
            ctx: None,
        };
        run(&self.p.programs[0].fd, RunKind::Xdp, input, n).unwrap();
    }

    /// What the ring buffer holds now (see [`read_items`]).
    fn read(&mut self) -> (Vec<Invocation>, usize) {
        read_items(&mut self.ring, &mut self.asm)
    }

    /// What the ring buffer holds now, with every invocation still open
    /// in the assembler.
    fn read_all(&mut self) -> (Vec<Invocation>, usize) {
        let (mut invs, items) = self.read();
        invs.extend(self.asm.finish());
        (invs, items)
    }
}

/// Per CPU, the sequence numbers of `invs` follow each other.
fn assert_contiguous_per_cpu(invs: &[Invocation]) {
    let mut per_cpu: std::collections::BTreeMap<u32, Vec<u64>> = Default::default();
    for i in invs {
        per_cpu.entry(i.cpu).or_default().push(i.cpu_seq);
    }
    for (cpu, seqs) in per_cpu {
        assert!(
            seqs.windows(2).all(|w| w[1] == w[0] + 1),
            "CPU {cpu}: sequence numbers {seqs:?} are not contiguous"
        );
    }
}

/// One test run repeating the program N times: the exits batch several
/// invocations per ring buffer item (so fewer items than runs, more than
/// one), and every invocation is assembled complete, with contiguous
/// sequence numbers.
#[test]
fn repeated_runs_leave_in_batches_of_several_invocations() {
    if !common::kernel_tests_enabled("repeated_runs_leave_in_batches") {
        return;
    }
    const N: u32 = 200;
    let mut b = BatchedXdpFw::prepare(&opts("xdp_firewall"));
    assert_eq!(
        b.p.programs[0].probe_config.batch_bytes,
        bpfrr_recorder::record::prepare::BATCH_BYTES
    );
    b.run(N);
    b.p.bpfrr.flush().unwrap();
    let (invs, items) = b.read_all();
    assert_eq!(invs.len(), N as usize, "every run is recorded");
    assert!(
        items > 1 && items < N as usize / 4,
        "{items} ring buffer items for {N} runs: batches of several invocations"
    );
    assert!(
        invs.iter()
            .all(|i| !i.partial && i.packet.as_deref() == Some(&b.frame[..]))
    );
    assert_contiguous_per_cpu(&invs);
    let lost: u64 =
        b.p.bpfrr
            .lost_per_cpu()
            .unwrap()
            .iter()
            .map(|(_, n)| n)
            .sum();
    assert_eq!(lost, 0);
}

/// A batch smaller than the batch size stays in the scratch buffer until
/// the flush program sends it, in one item; a second flush sends nothing.
#[test]
fn the_flush_delivers_a_partial_batch() {
    if !common::kernel_tests_enabled("the_flush_delivers_a_partial_batch") {
        return;
    }
    let mut b = BatchedXdpFw::prepare(&opts("xdp_firewall"));
    // Three runs: far below the batch size.
    b.run(3);
    let (before, items) = b.read();
    assert_eq!(
        (before.len(), items),
        (0, 0),
        "nothing sent before the flush"
    );
    b.p.bpfrr.flush().unwrap();
    let (invs, items) = b.read_all();
    assert_eq!(invs.len(), 3, "the flush sends the three invocations");
    assert!(
        (1..=2).contains(&items),
        "in one item per CPU the runs used, got {items}"
    );
    assert!(invs.iter().all(|i| !i.partial));
    assert_contiguous_per_cpu(&invs);
    b.p.bpfrr.flush().unwrap();
    assert_eq!(b.read().1, 0, "nothing left to flush");
}

/// A batch the ring buffer has no room for is lost whole: every record of
/// every invocation in it is counted, and the invocations that arrive
/// leave a gap in their CPU's sequence numbers. With a 4 KiB ring buffer
/// no full batch (at least 4 KiB) ever fits; only the last, partial one,
/// sent by the flush, arrives.
#[test]
fn a_batch_lost_to_a_full_ring_buffer_is_counted_whole() {
    if !common::kernel_tests_enabled("a_batch_lost_to_a_full_ring_buffer") {
        return;
    }
    const N: u64 = 100;
    let o = PrepareOptions {
        buffer_size: Some(4096),
        ..opts("xdp_firewall")
    };
    let mut b = BatchedXdpFw::prepare(&o);
    b.run(N as u32);
    b.p.bpfrr.flush().unwrap();
    let (invs, _) = b.read_all();
    assert!(
        !invs.is_empty() && (invs.len() as u64) < N,
        "only the last batch arrives, got {} invocations",
        invs.len()
    );
    assert!(invs.iter().all(|i| !i.partial));
    assert_contiguous_per_cpu(&invs);
    assert!(
        invs.iter().all(|i| i.cpu_seq > 1),
        "the lost batches leave a gap before the invocations that arrived"
    );
    // Every run takes the same path: entry, its helper calls, exit.
    let per_inv = 2 + invs[0].events.len() as u64;
    assert!(invs.iter().all(|i| 2 + i.events.len() as u64 == per_inv));
    let lost: u64 =
        b.p.bpfrr
            .lost_per_cpu()
            .unwrap()
            .iter()
            .map(|(_, n)| n)
            .sum();
    assert_eq!(
        lost,
        (N - invs.len() as u64) * per_inv,
        "every record of every lost invocation is counted"
    );
}
