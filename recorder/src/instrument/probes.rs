//! The code of each probe: the entry block, the spills before a helper call,
//! the block after it, the tail-call blocks and the block before an exit.
//!
//! Register discipline (why the probes are correct for any program):
//! - Probes use only r0-r5 and r10. r6-r9 are never touched, so a probe
//!   after a helper call (where only r0 among r0-r5 is live) or before an
//!   exit (only r0 live) cannot disturb the program; the entry block keeps
//!   r1 (the context) in a scratch slot and restores it.
//! - Everything kept across the probe's own helper calls (the state value,
//!   the ring buffer record, r0, spilled arguments) lives in the frame's
//!   scratch slots, just below the frame's own stack depth. Spills and fills
//!   of 8 bytes keep the verifier's register types (pointer or bounded
//!   scalar), so filled pointers are as good as the originals.
//! - A failed `bpf_ringbuf_reserve` bumps the per-CPU `lost` counter and
//!   skips the record: the program's behaviour never depends on recording.
//!
//! Record layouts are in `crate::wire`.

use crate::wire::*;

use super::asm::{Block, Label, Sz};
use super::sites::{BtfLoadSite, LogSites};

/// Helper ids the probes call.
pub const HELPER_MAP_LOOKUP_ELEM: i32 = 1;
pub const HELPER_KTIME_GET_NS: i32 = 5;
pub const HELPER_TAIL_CALL: i32 = 12;
pub const HELPER_SKB_LOAD_BYTES: i32 = 26;
pub const HELPER_PROBE_READ_KERNEL: i32 = 113;
pub const HELPER_RINGBUF_RESERVE: i32 = 131;
pub const HELPER_RINGBUF_SUBMIT: i32 = 132;

/// Bytes of scratch stack each frame gets below its own depth.
pub const SCRATCH_BYTES: u32 = 80;

/// The scratch slots of one frame (offsets from r10).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The frame's own depth, rounded to 8 (slots start below it).
    pub depth: i64,
}

impl Frame {
    pub fn new(depth: u32) -> Frame {
        Frame {
            depth: ((depth as i64) + 7) & !7,
        }
    }
    pub fn r0(self) -> i64 {
        -self.depth - 8
    }
    pub fn state(self) -> i64 {
        -self.depth - 16
    }
    pub fn rec(self) -> i64 {
        -self.depth - 24
    }
    pub fn key(self) -> i64 {
        -self.depth - 32
    }
    /// Spill slot of argument register `r(arg + 1)` (arg 0..5).
    pub fn arg(self, arg: u8) -> i64 {
        -self.depth - 40 - 8 * arg as i64
    }
    /// The context pointer (main frame).
    pub fn ctx(self) -> i64 {
        -self.depth - 80
    }
    /// The lowest offset the probes use.
    pub fn lowest(self) -> i64 {
        -self.depth - SCRATCH_BYTES as i64
    }
}

/// How the entry block records the context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CtxCapture {
    /// Explicit loads of these fields through the context pointer, into an
    /// image of `image_len` bytes (zero elsewhere). For context types the
    /// kernel converts (`xdp_md`, `__sk_buff`), where a raw copy is wrong.
    Fields {
        image_len: u32,
        fields: Vec<CtxField>,
    },
    /// `bpf_probe_read_kernel` of this many bytes from the context pointer
    /// (raw tracepoint arguments, tracepoint records, pt_regs).
    Bytes(u32),
}

impl CtxCapture {
    pub fn image_len(&self) -> u32 {
        match self {
            CtxCapture::Fields { image_len, .. } => *image_len,
            CtxCapture::Bytes(n) => *n,
        }
    }
}

/// One context field the program type lets a program read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CtxField {
    pub off: u16,
    /// 1, 2, 4 or 8.
    pub size: u8,
}

/// How the packet is read at entry and exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PacketAccess {
    /// No packet (tracing programs).
    None,
    /// `xdp_md`: data, data_end, data_meta loaded from the context, bytes
    /// copied with `bpf_probe_read_kernel`.
    Xdp,
    /// `__sk_buff`: `len` from the context, bytes with `bpf_skb_load_bytes`
    /// from the program's view of the packet (works for socket filters,
    /// which have no direct packet access).
    Skb,
}

/// What the probes need to know besides the program.
#[derive(Clone, Debug)]
pub struct ProbeConfig {
    /// The program's id in the trace (written into each record).
    pub prog_id: u32,
    /// fd of the `bpfrr_rb` ring buffer.
    pub ringbuf_fd: i32,
    /// fd of the `bpfrr_state` per-CPU array.
    pub state_fd: i32,
    pub ctx: CtxCapture,
    pub packet: PacketAccess,
    /// Bytes of packet captured at entry and exit (the snap length).
    pub packet_cap: u32,
    /// Bytes of XDP metadata captured.
    pub meta_cap: u32,
    /// Bytes captured of a helper output whose size is not a known constant.
    pub output_cap: u32,
    /// What the original's verifier log says about loads through BTF
    /// pointers and kfunc calls (empty: nothing known, none probed).
    pub sites: LogSites,
}

/// Where a helper output's size comes from, resolved for one call site.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SizeSource {
    /// Known when instrumenting.
    Const(u32),
    /// The value of argument register `r(n + 1)` at the call (spilled).
    Arg(u8),
}

/// Where a helper output's bytes are, for one call site.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputPlan {
    /// Register number 1-5 of the pointer argument, or
    /// [`OUT_ARG_RETURNED`] for the memory r0 points to.
    pub arg: u8,
    pub size: SizeSource,
    /// Capacity in the record.
    pub cap: u32,
}

impl OutputPlan {
    fn record_bytes(&self) -> usize {
        OUT_HEADER_LEN + pad8(self.cap as usize)
    }
}

/// Emits the common start of a record-writing probe: look up the per-CPU
/// state (then run `with_state`, r0 = state value), reserve `size` bytes,
/// write the header. Returns the probe's end label; on return r0 is the
/// record. The caller writes its payload and calls [`submit`].
fn begin(
    b: &mut Block,
    cfg: &ProbeConfig,
    fr: Frame,
    kind: RecordKind,
    insn: u32,
    size: usize,
    with_state: &dyn Fn(&mut Block),
) -> Label {
    let end = b.new_label();
    b.st(Sz::W, 10, fr.key(), 0);
    b.mov(2, 10);
    b.add_imm(2, fr.key() as i32);
    b.ld_map_fd(1, cfg.state_fd);
    b.call(HELPER_MAP_LOOKUP_ELEM);
    b.jeq(0, 0, end);
    b.stx(Sz::DW, 10, fr.state(), 0);
    with_state(b);
    b.ld_map_fd(1, cfg.ringbuf_fd);
    b.mov_imm(2, size as i32);
    b.mov_imm(3, 0);
    b.call(HELPER_RINGBUF_RESERVE);
    let reserved = b.new_label();
    b.jne(0, 0, reserved);
    // The ring buffer is full: count the lost record, skip it.
    b.ldx(Sz::DW, 1, 10, fr.state());
    b.ldx(Sz::DW, 2, 1, STATE_LOST as i64);
    b.add_imm(2, 1);
    b.stx(Sz::DW, 1, STATE_LOST as i64, 2);
    b.ja(end);
    b.bind(reserved);
    b.stx(Sz::DW, 10, fr.rec(), 0);
    b.st(Sz::H, 0, HDR_KIND as i64, kind as i32);
    b.st(Sz::H, 0, HDR_FLAGS as i64, 0);
    b.st(Sz::W, 0, HDR_INSN as i64, insn as i32);
    b.st(Sz::W, 0, HDR_PROG as i64, cfg.prog_id as i32);
    b.ldx(Sz::DW, 1, 10, fr.state());
    b.ldx(Sz::W, 2, 1, STATE_CPU as i64);
    b.stx(Sz::W, 0, HDR_CPU as i64, 2);
    b.ldx(Sz::DW, 2, 1, STATE_CPU_SEQ as i64);
    b.stx(Sz::DW, 0, HDR_CPU_SEQ as i64, 2);
    b.ldx(Sz::DW, 2, 1, STATE_LOST as i64);
    b.stx(Sz::DW, 0, HDR_LOST as i64, 2);
    end
}

/// Submits the record and places the probe's end label.
fn submit(b: &mut Block, fr: Frame, end: Label) {
    b.ldx(Sz::DW, 1, 10, fr.rec());
    b.mov_imm(2, 0);
    b.call(HELPER_RINGBUF_SUBMIT);
    b.bind(end);
}

/// Copies the packet (or the XDP metadata when `meta`) into the record:
/// writes the real length at `len_off` and up to `cap` bytes at `data_off`.
fn capture_packet(
    b: &mut Block,
    fr: Frame,
    access: PacketAccess,
    meta: bool,
    len_off: i64,
    data_off: i64,
    cap: u32,
) {
    match access {
        PacketAccess::None => {
            b.ldx(Sz::DW, 1, 10, fr.rec());
            b.st(Sz::W, 1, len_off, NO_PACKET as i32);
        }
        PacketAccess::Xdp => {
            // xdp_md: data 0, data_end 4, data_meta 8.
            let (from, to) = if meta { (8, 0) } else { (0, 4) };
            b.ldx(Sz::DW, 3, 10, fr.ctx());
            b.ldx(Sz::W, 4, 3, from);
            b.ldx(Sz::W, 5, 3, to);
            b.sub(5, 4);
            b.ldx(Sz::DW, 1, 10, fr.rec());
            b.stx(Sz::W, 1, len_off, 5);
            if cap > 0 {
                b.mov(2, 5);
                b.clamp(2, cap);
                b.add_imm(1, data_off as i32);
                b.mov(3, 4);
                b.call(HELPER_PROBE_READ_KERNEL);
            }
        }
        PacketAccess::Skb => {
            let skip = b.new_label();
            b.ldx(Sz::DW, 1, 10, fr.ctx());
            b.ldx(Sz::W, 4, 1, 0); // __sk_buff.len
            b.ldx(Sz::DW, 2, 10, fr.rec());
            b.stx(Sz::W, 2, len_off, 4);
            if cap > 0 {
                b.jeq(4, 0, skip);
                b.clamp(4, cap);
                b.mov(3, 2);
                b.add_imm(3, data_off as i32);
                b.mov_imm(2, 0);
                b.call(HELPER_SKB_LOAD_BYTES);
            }
            b.bind(skip);
        }
    }
}

/// Size of an entry record.
pub fn entry_size(cfg: &ProbeConfig) -> usize {
    let (pkt, meta) = packet_caps(cfg);
    ENTRY_CTX + pad8(cfg.ctx.image_len() as usize) + pad8(pkt as usize) + pad8(meta as usize)
}

fn packet_caps(cfg: &ProbeConfig) -> (u32, u32) {
    match cfg.packet {
        PacketAccess::None => (0, 0),
        PacketAccess::Xdp => (cfg.packet_cap, cfg.meta_cap),
        PacketAccess::Skb => (cfg.packet_cap, 0),
    }
}

/// The entry block: bump the CPU's sequence number (or, when entered by a
/// tail call, keep it and clear the pending flag), save the context
/// pointer, record the context and the packet. r1 is restored at the end.
pub fn entry(cfg: &ProbeConfig, fr: Frame) -> Block {
    let mut b = Block::new();
    b.stx(Sz::DW, 10, fr.ctx(), 1);
    let arg0 = fr.arg(0);
    let end = begin(
        &mut b,
        cfg,
        fr,
        RecordKind::Entry,
        0,
        entry_size(cfg),
        &move |b: &mut Block| {
            let tail = b.new_label();
            let done = b.new_label();
            b.ldx(Sz::DW, 2, 0, STATE_TAIL_PENDING as i64);
            b.stx(Sz::DW, 10, arg0, 2);
            b.jne(2, 0, tail);
            b.ldx(Sz::DW, 2, 0, STATE_CPU_SEQ as i64);
            b.add_imm(2, 1);
            b.stx(Sz::DW, 0, STATE_CPU_SEQ as i64, 2);
            b.ja(done);
            b.bind(tail);
            b.st(Sz::DW, 0, STATE_TAIL_PENDING as i64, 0);
            b.bind(done);
        },
    );
    // Flags: the pending flag's value is FLAG_TAIL_ENTRY (1) or 0.
    b.ldx(Sz::DW, 2, 10, fr.arg(0));
    b.stx(Sz::H, 0, HDR_FLAGS as i64, 2);
    b.call(HELPER_KTIME_GET_NS);
    b.ldx(Sz::DW, 1, 10, fr.rec());
    b.stx(Sz::DW, 1, ENTRY_TIME as i64, 0);
    let ctx_len = cfg.ctx.image_len();
    let (pkt_cap, meta_cap) = packet_caps(cfg);
    b.st(Sz::W, 1, ENTRY_CTX_LEN as i64, ctx_len as i32);
    b.st(Sz::W, 1, ENTRY_PKT_CAP as i64, pkt_cap as i32);
    b.st(Sz::W, 1, ENTRY_META_CAP as i64, meta_cap as i32);
    b.st(Sz::W, 1, ENTRY_META_LEN as i64, NO_PACKET as i32);
    match &cfg.ctx {
        CtxCapture::Fields { image_len, fields } => {
            // Reserved memory is not zeroed: clear the image first.
            for off in (0..pad8(*image_len as usize)).step_by(8) {
                b.st(Sz::DW, 1, (ENTRY_CTX + off) as i64, 0);
            }
            b.ldx(Sz::DW, 3, 10, fr.ctx());
            for f in fields {
                let sz = Sz::from_bytes(f.size as u32).unwrap_or(Sz::W);
                b.ldx(sz, 2, 3, f.off as i64);
                b.stx(sz, 1, (ENTRY_CTX + f.off as usize) as i64, 2);
            }
        }
        CtxCapture::Bytes(n) => {
            if *n > 0 {
                b.add_imm(1, ENTRY_CTX as i32);
                b.mov_imm(2, *n as i32);
                b.ldx(Sz::DW, 3, 10, fr.ctx());
                b.call(HELPER_PROBE_READ_KERNEL);
            }
        }
    }
    let pkt_off = ENTRY_CTX + pad8(ctx_len as usize);
    capture_packet(
        &mut b,
        fr,
        cfg.packet,
        false,
        ENTRY_PKT_LEN as i64,
        pkt_off as i64,
        pkt_cap,
    );
    if cfg.packet == PacketAccess::Xdp {
        capture_packet(
            &mut b,
            fr,
            cfg.packet,
            true,
            ENTRY_META_LEN as i64,
            (pkt_off + pad8(pkt_cap as usize)) as i64,
            meta_cap,
        );
    }
    submit(&mut b, fr, end);
    b.ldx(Sz::DW, 1, 10, fr.ctx());
    b
}

/// Size of an exit record.
pub fn exit_size(cfg: &ProbeConfig) -> usize {
    EXIT_PKT + pad8(packet_caps(cfg).0 as usize)
}

/// Before an exit of the main function: record r0 and the final packet.
pub fn exit(cfg: &ProbeConfig, fr: Frame, insn: u32) -> Block {
    let mut b = Block::new();
    b.stx(Sz::DW, 10, fr.r0(), 0);
    let end = begin(
        &mut b,
        cfg,
        fr,
        RecordKind::Exit,
        insn,
        exit_size(cfg),
        &|_| {},
    );
    b.ldx(Sz::DW, 2, 10, fr.r0());
    b.stx(Sz::DW, 0, EXIT_R0 as i64, 2);
    b.st(Sz::W, 0, EXIT_PKT_CAP as i64, packet_caps(cfg).0 as i32);
    capture_packet(
        &mut b,
        fr,
        cfg.packet,
        false,
        EXIT_PKT_LEN as i64,
        EXIT_PKT as i64,
        packet_caps(cfg).0,
    );
    submit(&mut b, fr, end);
    b.ldx(Sz::DW, 0, 10, fr.r0());
    b
}

/// Before a helper call: spill the argument registers the probe after the
/// call needs (output pointers and their sizes).
pub fn before_helper(fr: Frame, outputs: &[OutputPlan]) -> Block {
    let mut b = Block::new();
    let mut spilled = [false; 5];
    for o in outputs {
        let mut spill = |arg1: u8| {
            let i = (arg1 - 1) as usize;
            if !spilled[i] {
                spilled[i] = true;
                b.stx(Sz::DW, 10, fr.arg(arg1 - 1), arg1);
            }
        };
        if o.arg != OUT_ARG_RETURNED {
            spill(o.arg);
        }
        if let SizeSource::Arg(n) = o.size {
            spill(n + 1);
        }
    }
    b
}

/// Size of a helper record with these outputs.
pub fn helper_size(outputs: &[OutputPlan]) -> usize {
    HELPER_OUTPUTS + outputs.iter().map(OutputPlan::record_bytes).sum::<usize>()
}

/// After a helper call: record r0 (unless the helper returns nothing) and
/// the bytes it wrote; r0 is restored at the end.
pub fn after_helper(
    cfg: &ProbeConfig,
    fr: Frame,
    insn: u32,
    helper_id: u32,
    returns_value: bool,
    outputs: &[OutputPlan],
) -> Block {
    after_call(
        cfg,
        fr,
        insn,
        CallKind::Helper,
        helper_id,
        returns_value,
        outputs,
    )
}

/// After a kfunc call: record r0 (unless the kfunc is void) under the
/// kfunc's BTF id; r0 is restored at the end. Only r0 is live among r0-r5
/// after the call, as after a helper.
pub fn after_kfunc(
    cfg: &ProbeConfig,
    fr: Frame,
    insn: u32,
    btf_id: u32,
    returns_value: bool,
) -> Block {
    after_call(cfg, fr, insn, CallKind::Kfunc, btf_id, returns_value, &[])
}

fn after_call(
    cfg: &ProbeConfig,
    fr: Frame,
    insn: u32,
    kind: CallKind,
    helper_id: u32,
    returns_value: bool,
    outputs: &[OutputPlan],
) -> Block {
    let mut b = Block::new();
    if returns_value {
        b.stx(Sz::DW, 10, fr.r0(), 0);
    }
    let end = begin(
        &mut b,
        cfg,
        fr,
        RecordKind::Helper,
        insn,
        helper_size(outputs),
        &|_| {},
    );
    b.st(Sz::W, 0, HELPER_ID as i64, helper_id as i32);
    let kind_byte = match kind {
        CallKind::Helper => 0,
        CallKind::Kfunc => 1,
    };
    b.st(Sz::B, 0, HELPER_CALL_KIND as i64, kind_byte);
    b.st(Sz::B, 0, HELPER_N_OUT as i64, outputs.len() as i32);
    if returns_value {
        b.ldx(Sz::DW, 2, 10, fr.r0());
        b.stx(Sz::DW, 0, HELPER_R0 as i64, 2);
    } else {
        b.st(Sz::DW, 0, HELPER_R0 as i64, 0);
    }
    let mut off = HELPER_OUTPUTS as i64;
    for o in outputs {
        b.ldx(Sz::DW, 1, 10, fr.rec());
        b.st(Sz::B, 1, off + OUT_ARG as i64, o.arg as i32);
        b.st(Sz::W, 1, off + OUT_CAP as i64, o.cap as i32);
        match o.size {
            SizeSource::Const(n) => b.mov_imm(2, n as i32),
            SizeSource::Arg(n) => b.ldx(Sz::DW, 2, 10, fr.arg(n)),
        }
        b.stx(Sz::DW, 1, off + OUT_LEN as i64, 2);
        b.clamp(2, o.cap);
        b.add_imm(1, (off as usize + OUT_HEADER_LEN) as i32);
        if o.arg == OUT_ARG_RETURNED {
            b.ldx(Sz::DW, 3, 10, fr.r0());
        } else {
            b.ldx(Sz::DW, 3, 10, fr.arg(o.arg - 1));
        }
        b.call(HELPER_PROBE_READ_KERNEL);
        off += o.record_bytes() as i64;
    }
    submit(&mut b, fr, end);
    if returns_value {
        b.ldx(Sz::DW, 0, 10, fr.r0());
    }
    b
}

/// Before `bpf_tail_call`: record the index and the program array, and
/// mark a tail call pending (the target's entry block clears it and keeps
/// the sequence number). r1-r3 are restored for the call.
pub fn before_tail_call(cfg: &ProbeConfig, fr: Frame, insn: u32, map: Option<u32>) -> Block {
    let mut b = Block::new();
    for r in 1..=3u8 {
        b.stx(Sz::DW, 10, fr.arg(r - 1), r);
    }
    let end = begin(
        &mut b,
        cfg,
        fr,
        RecordKind::TailCall,
        insn,
        TAIL_LEN,
        &|b: &mut Block| {
            b.st(Sz::DW, 0, STATE_TAIL_PENDING as i64, FLAG_TAIL_ENTRY as i32);
        },
    );
    b.ldx(Sz::DW, 2, 10, fr.arg(2));
    b.stx(Sz::W, 0, TAIL_INDEX as i64, 2);
    b.st(Sz::W, 0, TAIL_MAP as i64, map.unwrap_or(u32::MAX) as i32);
    submit(&mut b, fr, end);
    for r in 1..=3u8 {
        b.ldx(Sz::DW, r, 10, fr.arg(r - 1));
    }
    b
}

/// After `bpf_tail_call` (reached only when it failed): clear the pending flag.
pub fn after_tail_call(cfg: &ProbeConfig, fr: Frame) -> Block {
    let mut b = Block::new();
    let end = b.new_label();
    b.st(Sz::W, 10, fr.key(), 0);
    b.mov(2, 10);
    b.add_imm(2, fr.key() as i32);
    b.ld_map_fd(1, cfg.state_fd);
    b.call(HELPER_MAP_LOOKUP_ELEM);
    b.jeq(0, 0, end);
    b.st(Sz::DW, 0, STATE_TAIL_PENDING as i64, 0);
    b.bind(end);
    b
}

/// The scratch slot that keeps caller-saved register `r` (0-5) around a
/// probe in the middle of straight-line code.
fn kept_slot(fr: Frame, r: u8) -> i64 {
    if r == 0 { fr.r0() } else { fr.arg(r - 1) }
}

/// After a load through a BTF pointer: record the loaded value (the
/// destination register). Any register may be live here, so the
/// caller-saved registers in `site.keep` (the live ones, and the
/// destination when it is one of them) are saved before the probe's helper
/// calls and restored after; r6-r9 are never touched.
pub fn after_btf_load(cfg: &ProbeConfig, fr: Frame, site: &BtfLoadSite) -> Block {
    let mut b = Block::new();
    let kept: Vec<u8> = (0..=5u8).filter(|r| site.keep & (1 << r) != 0).collect();
    for &r in &kept {
        b.stx(Sz::DW, 10, kept_slot(fr, r), r);
    }
    let end = begin(
        &mut b,
        cfg,
        fr,
        RecordKind::BtfLoad,
        site.insn as u32,
        BTF_LOAD_LEN,
        &|_| {},
    );
    if site.dst <= 5 {
        b.ldx(Sz::DW, 2, 10, kept_slot(fr, site.dst));
        b.stx(Sz::DW, 0, BTF_LOAD_VALUE as i64, 2);
    } else {
        b.stx(Sz::DW, 0, BTF_LOAD_VALUE as i64, site.dst);
    }
    submit(&mut b, fr, end);
    for &r in &kept {
        b.ldx(Sz::DW, r, 10, kept_slot(fr, r));
    }
    b
}
