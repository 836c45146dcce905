//! The code of each probe: the entry block, the spills before a helper call,
//! the block after it, the tail-call blocks and the block before an exit.
//!
//! Register discipline (why the probes are correct for any program):
//! - Probes use only r0-r5 and r10. r6-r9 are never touched, so a probe
//!   after a helper call (where only r0 among r0-r5 is live) or before an
//!   exit (only r0 live) cannot disturb the program; the entry block keeps
//!   r1 (the context) in a scratch slot and restores it. A probe after a
//!   load through a BTF pointer (any register may be live there) keeps the
//!   live caller-saved registers in the frame's r0 and argument slots,
//!   apart from the state/record/context slots, and restores them.
//! - Everything kept across the probe's own helper calls (the state value,
//!   the ring buffer record, r0, spilled arguments) lives in the frame's
//!   scratch slots, just below the frame's own stack depth. Spills and fills
//!   of 8 bytes keep the verifier's register types (pointer or bounded
//!   scalar), so filled pointers are as good as the originals.
//! - Records are appended to this CPU's scratch buffer (the `bpfrr_state`
//!   value of the CPU: map lookups of an array are inlined by the verifier,
//!   so appending costs no helper call); the exit probe of an outermost
//!   invocation commits its records and sends the committed invocations
//!   with one `bpf_ringbuf_output` once they make a batch, a nested
//!   invocation's exit sends its own records at once, and the [`flush`]
//!   program sends a quiet CPU's partial batch (see `crate::wire`).
//! - A record that does not fit in the scratch buffer, and an invocation
//!   the ring buffer has no room for, bump the per-CPU `lost` counter (by
//!   the number of records): the program's behaviour never depends on
//!   recording, and nothing is lost silently.
//!
//! Adding a record kind: give it a [`RecordKind`] and payload offsets in
//! `crate::wire` (and a decode arm), then build it like [`after_helper`]:
//! `let end = begin(&mut b, cfg, fr, kind, insn, size, &|_| {})` (r0 = the
//! record, also in the `fr.rec()` slot; `size` bytes, a constant, header
//! included), store the payload at offsets from [`HEADER_LEN`] (copies with
//! `bpf_probe_read_kernel` into the record, as [`after_helper`] does), then
//! `submit(&mut b, fr, end)`.
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
pub const HELPER_XDP_LOAD_BYTES: i32 = 189;
pub const HELPER_GET_SMP_PROCESSOR_ID: i32 = 8;
pub const HELPER_RINGBUF_OUTPUT: i32 = 130;

/// `bpf_ringbuf_output` flag: do not wake the reader up.
const BPF_RB_NO_WAKEUP: i32 = 1;

/// Bytes of scratch stack each frame gets below its own depth.
pub const SCRATCH_BYTES: u32 = 80;

/// The scratch slots of one frame (offsets from r10).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The frame's own depth, rounded to 8 (slots start below it).
    pub depth: i64,
    /// The main function's frame (frame 0), whose entry block looks the
    /// state up once for all its probes (see [`ProbeConfig::reuse_state`]).
    pub main: bool,
}

impl Frame {
    pub fn new(depth: u32) -> Frame {
        Frame {
            depth: ((depth as i64) + 7) & !7,
            main: false,
        }
    }

    /// The main function's frame.
    pub fn main(depth: u32) -> Frame {
        Frame {
            main: true,
            ..Frame::new(depth)
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
    /// Bytes of each CPU's scratch buffer (the `bpfrr_state` value holds
    /// twice this after its header, see [`state_value_size`]).
    pub scratch: u32,
    /// Largest map value (returned by a lookup) copied with plain loads
    /// rather than `bpf_probe_read_kernel`; 0: never. The kernel refuses
    /// plain loads of special fields (`bpf_spin_lock`, timers, kptrs), so
    /// a rejected program is instrumented again with 0.
    pub inline_copy_max: u32,
    /// The main function's probes use the state value the entry block
    /// looked up (kept in a stack slot) instead of looking it up again.
    /// The verifier then walks the program twice (state found or not), so
    /// prepare turns it off for programs that are already costly to verify.
    pub reuse_state: bool,
    /// No program of the recording can change the packet: the exit record
    /// says so ([`FLAG_PACKET_UNCHANGED`]) instead of copying it again.
    pub packet_unchanged: bool,
    /// An outermost invocation's exit sends the committed invocations once
    /// they reach this many bytes (0: every invocation on its own); the
    /// scratch buffer keeps this much room beyond what one invocation
    /// needs (see `crate::wire`, batches).
    pub batch_bytes: u32,
    /// The entry stamps its time with `bpf_ktime_get_ns` (the order of
    /// invocations across CPUs, live). Off when every invocation runs on
    /// one CPU at the recorder's call (a pinned test run): the clock is
    /// then a quarter of the probes' cost for nothing, and the entry's
    /// time stays 0 for the recorder to fill in.
    pub entry_clock: bool,
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
    /// The memory is a value of a map the instrumenter knows, exactly
    /// `cap` bytes (r0 of a lookup): it may be copied with plain loads.
    pub exact: bool,
}

impl OutputPlan {
    fn record_bytes(&self) -> usize {
        OUT_HEADER_LEN + pad8(self.cap as usize)
    }
}

/// Looks up this CPU's `bpfrr_state` value: r0 = the value, also spilled to
/// `fr.state()`; jumps to `end` when there is none.
fn load_state(b: &mut Block, cfg: &ProbeConfig, fr: Frame, end: Label) {
    if fr.main && cfg.reuse_state {
        // Looked up by the entry block (NULL if that failed).
        b.ldx(Sz::DW, 0, 10, fr.state());
        b.jeq(0, 0, end);
        return;
    }
    lookup_state(b, cfg, fr);
    b.jeq(0, 0, end);
    b.stx(Sz::DW, 10, fr.state(), 0);
}

/// The entry block's [`load_state`]: the value (or NULL) stays in the
/// frame's state slot for the other probes of the main function.
fn load_state_at_entry(b: &mut Block, cfg: &ProbeConfig, fr: Frame, end: Label) {
    if !(fr.main && cfg.reuse_state) {
        return load_state(b, cfg, fr, end);
    }
    lookup_state(b, cfg, fr);
    b.stx(Sz::DW, 10, fr.state(), 0);
    b.jeq(0, 0, end);
}

/// r0 = this CPU's `bpfrr_state` value, or NULL.
fn lookup_state(b: &mut Block, cfg: &ProbeConfig, fr: Frame) {
    b.call(HELPER_GET_SMP_PROCESSOR_ID);
    b.stx(Sz::W, 10, fr.key(), 0);
    b.mov(2, 10);
    b.add_imm(2, fr.key() as i32);
    b.ld_map_fd(1, cfg.state_fd);
    b.call(HELPER_MAP_LOOKUP_ELEM);
}

/// `state.field += imm` (state from its slot; uses r1, r3).
fn bump(b: &mut Block, fr: Frame, field: i16, imm: i32) {
    b.ldx(Sz::DW, 1, 10, fr.state());
    b.ldx(Sz::DW, 3, 1, field as i64);
    b.add_imm(3, imm);
    b.stx(Sz::DW, 1, field as i64, 3);
}

/// With r0 = the state value: the record of at most `max_size` bytes at
/// the scratch buffer's next free byte, when it fits (else jump to
/// `no_room`). Leaves r2 = the record (also in `fr.rec()`), r1 = the
/// offset of the free byte in the buffer, r0 unchanged; writes the header
/// (size `max_size`, to be corrected by variable-size records before
/// [`commit`]).
fn reserve(
    b: &mut Block,
    cfg: &ProbeConfig,
    fr: Frame,
    (kind, flags, insn): (RecordKind, u8, u32),
    max_size: usize,
    no_room: Label,
) {
    if max_size > MAX_RECORD_LEN {
        // The header cannot describe it: it never fits.
        b.ja(no_room);
        return;
    }
    check_room(b, cfg, max_size, no_room);
    b.mov(2, 0);
    b.add(2, 1);
    b.add_imm(2, STATE_BUF as i32);
    place_header(b, fr, (kind, flags, insn), max_size);
}

/// With r0 = the state value: r1 = the scratch buffer's next free byte,
/// when `size` bytes fit from there (else jump to `no_room`).
fn check_room(b: &mut Block, cfg: &ProbeConfig, size: usize, no_room: Label) {
    b.ldx(Sz::DW, 1, 0, STATE_OFF as i64);
    b.jgt(1, cfg.scratch.saturating_sub(size as u32) as i32, no_room);
}

/// With r2 = where a record goes: keeps r2 in `fr.rec()` and writes the
/// record's header (size `max_size`).
fn place_header(
    b: &mut Block,
    fr: Frame,
    (kind, flags, insn): (RecordKind, u8, u32),
    max_size: usize,
) {
    b.stx(Sz::DW, 10, fr.rec(), 2);
    b.st(
        Sz::W,
        2,
        HDR_KIND as i64,
        header_word(kind, flags, max_size),
    );
    b.st(Sz::W, 2, HDR_INSN as i64, insn as i32);
}

/// Keeps the record written at `fr.rec()`: the buffer's next free byte
/// moves past it (by the size in its header), the invocation has one more
/// record.
fn commit(b: &mut Block, fr: Frame) {
    b.ldx(Sz::DW, 1, 10, fr.state());
    b.ldx(Sz::DW, 2, 10, fr.rec());
    b.ldx(Sz::H, 2, 2, HDR_SIZE as i64);
    b.lsh_imm(2, 3);
    b.ldx(Sz::DW, 3, 1, STATE_OFF as i64);
    b.add(3, 2);
    b.stx(Sz::DW, 1, STATE_OFF as i64, 3);
    b.ldx(Sz::DW, 3, 1, STATE_NREC as i64);
    b.add_imm(3, 1);
    b.stx(Sz::DW, 1, STATE_NREC as i64, 3);
}

/// Emits the common start of a probe that appends a record of constant
/// size `size` to the invocation: look up this CPU's state (then run
/// `with_state`, r0 = state value), check that the record fits, write the
/// header. Returns the probe's end label; on return r0 is the record. The
/// caller writes its payload and calls [`submit`]. A record that does not
/// fit (or whose invocation's entry did not) is counted as lost.
pub fn begin(
    b: &mut Block,
    cfg: &ProbeConfig,
    fr: Frame,
    (kind, flags): (RecordKind, u8),
    insn: u32,
    size: usize,
    with_state: &dyn Fn(&mut Block),
) -> Label {
    let end = b.new_label();
    let lost = b.new_label();
    let body = b.new_label();
    load_state(b, cfg, fr, end);
    with_state(b);
    b.ldx(Sz::DW, 0, 10, fr.state());
    b.ldx(Sz::DW, 1, 0, STATE_OVERFLOW as i64);
    b.jne(1, 0, lost);
    reserve(b, cfg, fr, (kind, flags, insn), size, lost);
    b.mov(0, 2);
    b.ja(body);
    b.bind(lost);
    bump(b, fr, STATE_LOST, 1);
    b.ja(end);
    b.bind(body);
    end
}

/// Keeps the record [`begin`] started and places the probe's end label.
pub fn submit(b: &mut Block, fr: Frame, end: Label) {
    commit(b, fr);
    b.bind(end);
}

/// `r(dst) = pad8(min(r(dst), cap)) + base`, bounded for the verifier.
fn stored_size(b: &mut Block, dst: u8, cap: u32, base: usize) {
    b.clamp(dst, cap);
    b.add_imm(dst, 7);
    b.and_imm(dst, -8);
    b.add_imm(dst, base as i32);
}

/// Copies the packet (or the XDP metadata when `meta`) into the record at
/// `fr.rec()`: writes the real length at `len_off` and `min(len, cap)`
/// bytes at `data_off`.
fn capture_packet(
    b: &mut Block,
    fr: Frame,
    access: PacketAccess,
    meta: bool,
    len_off: i64,
    data_off: i64,
    cap: u32,
) {
    let skip = b.new_label();
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
            if cap > 0 && meta {
                b.mov(2, 5);
                b.clamp(2, cap);
                b.jeq(2, 0, skip);
                b.add_imm(1, data_off as i32);
                b.mov(3, 4);
                b.call(HELPER_PROBE_READ_KERNEL);
            } else if cap > 0 {
                let slow = b.new_label();
                copy_short_packet(b, data_off, cap, skip, slow);
                b.bind(slow);
                // bpf_xdp_load_bytes(ctx, 0, dst, len): a plain memcpy,
                // faster than probe_read's fault-checked copy.
                b.ldx(Sz::DW, 1, 10, fr.rec());
                b.ldx(Sz::W, 5, 1, len_off);
                b.mov(4, 5);
                b.clamp(4, cap);
                b.jeq(4, 0, skip);
                b.mov(2, 1);
                b.add_imm(2, data_off as i32);
                b.mov(1, 3);
                b.mov(3, 2);
                b.mov_imm(2, 0);
                b.call(HELPER_XDP_LOAD_BYTES);
            }
        }
        PacketAccess::Skb => {
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
        }
    }
    b.bind(skip);
}

/// Packets up to this length are copied by XDP probes with direct packet
/// loads instead of `bpf_xdp_load_bytes` (whose call and `rep movsb`
/// cost more than the copy itself for short packets).
pub const XDP_DIRECT_COPY_MAX: u32 = 128;

/// The XDP fast path of [`capture_packet`]: with r3 = the context, r4 =
/// `data`, r5 = the packet's length and r1 = the record, a packet of at
/// most `min(cap, XDP_DIRECT_COPY_MAX)` bytes is copied to `data_off` with
/// unrolled loads and stores (8 bytes at a time, then 4, 2, 1), each
/// bounded by `data_end` for the verifier; then jump to `done`. Longer
/// packets jump to `slow`. No loop: the verifier walks each chunk once,
/// and the tail once per chunk count.
fn copy_short_packet(b: &mut Block, data_off: i64, cap: u32, done: Label, slow: Label) {
    let fast = cap.min(XDP_DIRECT_COPY_MAX);
    b.jgt(5, fast as i32, slow);
    b.ldx(Sz::W, 5, 3, 4); // data_end
    b.add_imm(1, data_off as i32);
    let tail = b.new_label();
    for _ in 0..fast / 8 {
        b.mov(2, 4);
        b.add_imm(2, 8);
        b.jgt_reg(2, 5, tail);
        b.ldx(Sz::DW, 0, 4, 0);
        b.stx(Sz::DW, 1, 0, 0);
        b.add_imm(4, 8);
        b.add_imm(1, 8);
    }
    b.bind(tail);
    for (size, width) in [(Sz::W, 4), (Sz::H, 2), (Sz::B, 1)] {
        let next = b.new_label();
        b.mov(2, 4);
        b.add_imm(2, width);
        b.jgt_reg(2, 5, next);
        b.ldx(size, 0, 4, 0);
        b.stx(size, 1, 0, 0);
        b.add_imm(4, width);
        b.add_imm(1, width);
        b.bind(next);
    }
    b.ja(done);
}

/// Writes the size of a record that ends with a packet of capacity `cap`
/// at `data_off` (length at `len_off`) into its header.
fn size_with_packet(
    b: &mut Block,
    fr: Frame,
    access: PacketAccess,
    len_off: i64,
    data_off: usize,
    cap: u32,
) {
    b.ldx(Sz::DW, 1, 10, fr.rec());
    if access == PacketAccess::None || cap == 0 {
        b.st(Sz::H, 1, HDR_SIZE as i64, (data_off / 8) as i32);
        return;
    }
    b.ldx(Sz::W, 2, 1, len_off);
    stored_size(b, 2, cap, data_off);
    b.rsh_imm(2, 3);
    b.stx(Sz::H, 1, HDR_SIZE as i64, 2);
}

/// Largest size of an entry record.
pub fn entry_size(cfg: &ProbeConfig) -> usize {
    entry_packet_off(cfg) + pad8(packet_caps(cfg).0 as usize)
}

/// Where the packet starts in an entry record (after the context).
fn entry_packet_off(cfg: &ProbeConfig) -> usize {
    ENTRY_CTX + pad8(cfg.ctx.image_len() as usize)
}

/// Appends the XDP metadata (`data_meta` to `data`, at most `cap` bytes)
/// at the end of the entry record at `fr.rec()` (whose header's size is at
/// most `max_end`), and grows the record by it.
fn capture_meta(b: &mut Block, fr: Frame, max_end: usize, cap: u32) {
    let done = b.new_label();
    b.ldx(Sz::DW, 3, 10, fr.ctx());
    b.ldx(Sz::W, 4, 3, 8); // data_meta
    b.ldx(Sz::W, 5, 3, 0); // data
    b.sub(5, 4);
    b.ldx(Sz::DW, 1, 10, fr.rec());
    b.stx(Sz::H, 1, ENTRY_META_LEN as i64, 5);
    b.mov(2, 5);
    b.clamp(2, cap);
    b.jeq(2, 0, done);
    b.ldx(Sz::H, 5, 1, HDR_SIZE as i64);
    b.lsh_imm(5, 3);
    b.jgt(5, max_end as i32, done);
    b.add(1, 5);
    b.mov(3, 4);
    b.call(HELPER_PROBE_READ_KERNEL);
    b.ldx(Sz::DW, 1, 10, fr.rec());
    b.ldx(Sz::H, 2, 1, ENTRY_META_LEN as i64);
    stored_size(b, 2, cap, 0);
    b.rsh_imm(2, 3);
    b.ldx(Sz::H, 3, 1, HDR_SIZE as i64);
    b.add(3, 2);
    b.stx(Sz::H, 1, HDR_SIZE as i64, 3);
    b.bind(done);
}

fn packet_caps(cfg: &ProbeConfig) -> (u32, u32) {
    match cfg.packet {
        PacketAccess::None => (0, 0),
        PacketAccess::Xdp => (cfg.packet_cap, cfg.meta_cap),
        PacketAccess::Skb => (cfg.packet_cap, 0),
    }
}

/// The entry block: save the context pointer; then either start the
/// invocation's records (bump the CPU's sequence number, note where the
/// enclosing invocation's records are, record the context and the packet),
/// or, when entered by a tail call, clear the pending flag and append a
/// short tail entry to the running invocation. r1 is restored at the end.
pub fn entry(cfg: &ProbeConfig, fr: Frame) -> Block {
    let mut b = Block::new();
    let end = b.new_label();
    let tail = b.new_label();
    let no_room = b.new_label();
    let tail_lost = b.new_label();
    let unopen = b.new_label();
    b.stx(Sz::DW, 10, fr.ctx(), 1);
    load_state_at_entry(&mut b, cfg, fr, end);
    b.ldx(Sz::DW, 1, 0, STATE_TAIL_PENDING as i64);
    b.jne(1, 0, tail);
    b.ldx(Sz::DW, 1, 0, STATE_OVERFLOW as i64);
    b.jne(1, 0, no_room);
    // Open the invocation before reading where the free bytes start: from
    // here the flush program (which may interrupt us) leaves them alone.
    b.ldx(Sz::DW, 1, 0, STATE_DEPTH as i64);
    b.add_imm(1, 1);
    b.stx(Sz::DW, 0, STATE_DEPTH as i64, 1);
    if entry_size(cfg) > MAX_RECORD_LEN {
        // The header cannot describe it: it never fits.
        b.ja(unopen);
    }
    check_room(&mut b, cfg, NEST_FRAME_LEN + entry_size(cfg), unopen);
    // r0 = state, r1 = the free byte. An outermost invocation (depth 1)
    // needs no nesting frame: its records go right after the committed
    // ones, so that a batch is invocations back to back.
    let framed = b.new_label();
    let placed = b.new_label();
    b.mov(2, 0);
    b.add(2, 1);
    b.ldx(Sz::DW, 3, 0, STATE_DEPTH as i64);
    b.jgt(3, 1, framed);
    b.add_imm(2, STATE_BUF as i32);
    // r1 + NEST_FRAME_LEN is where the records start (below).
    b.add_imm(1, -(NEST_FRAME_LEN as i32));
    b.ja(placed);
    b.bind(framed);
    // The nesting frame keeps the enclosing invocation's bookkeeping.
    b.add_imm(2, STATE_BUF as i32 + NEST_FRAME_LEN as i32);
    let frame = -(NEST_FRAME_LEN as i64);
    b.ldx(Sz::DW, 3, 0, STATE_START as i64);
    b.stx(Sz::DW, 2, frame + NEST_PREV_START as i64, 3);
    b.ldx(Sz::DW, 3, 0, STATE_NREC as i64);
    b.stx(Sz::DW, 2, frame + NEST_PREV_NREC as i64, 3);
    b.bind(placed);
    place_header(&mut b, fr, (RecordKind::Entry, 0, 0), entry_size(cfg));
    b.st(Sz::W, 2, ENTRY_PROG as i64, cfg.prog_id as i32);
    b.ldx(Sz::DW, 3, 0, STATE_CPU_SEQ as i64);
    b.add_imm(3, 1);
    b.stx(Sz::DW, 0, STATE_CPU_SEQ as i64, 3);
    b.stx(Sz::DW, 2, ENTRY_CPU_SEQ as i64, 3);
    b.ldx(Sz::W, 3, 0, STATE_CPU as i64);
    b.stx(Sz::W, 2, ENTRY_CPU as i64, 3);
    b.ldx(Sz::DW, 3, 0, STATE_LOST as i64);
    b.stx(Sz::DW, 2, ENTRY_LOST as i64, 3);
    // The records start after the frame, if any ([`commit`] adds the
    // entry's size).
    b.add_imm(1, NEST_FRAME_LEN as i32);
    b.stx(Sz::DW, 0, STATE_START as i64, 1);
    b.stx(Sz::DW, 0, STATE_OFF as i64, 1);
    b.st(Sz::DW, 0, STATE_NREC as i64, 0);
    let ctx_len = cfg.ctx.image_len();
    let (pkt_cap, meta_cap) = packet_caps(cfg);
    b.st(Sz::W, 2, ENTRY_CTX_LEN as i64, ctx_len as i32);
    b.st(Sz::W, 2, ENTRY_PKT_CAP as i64, pkt_cap as i32);
    // Metadata length (none yet) and capacity, u16 each.
    b.st(
        Sz::W,
        2,
        ENTRY_META_LEN as i64,
        (NO_META as u32 | meta_cap << 16) as i32,
    );
    if cfg.entry_clock {
        b.call(HELPER_KTIME_GET_NS);
        b.ldx(Sz::DW, 1, 10, fr.rec());
        b.stx(Sz::DW, 1, ENTRY_TIME as i64, 0);
    } else {
        // r2 is the record (the scratch buffer holds old bytes: clear it).
        b.st(Sz::DW, 2, ENTRY_TIME as i64, 0);
        b.mov(1, 2);
    }
    match &cfg.ctx {
        CtxCapture::Fields { image_len, fields } => {
            // The scratch buffer holds old records: clear the image first.
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
    let pkt_off = entry_packet_off(cfg);
    capture_packet(
        &mut b,
        fr,
        cfg.packet,
        false,
        ENTRY_PKT_LEN as i64,
        pkt_off as i64,
        pkt_cap,
    );
    size_with_packet(
        &mut b,
        fr,
        cfg.packet,
        ENTRY_PKT_LEN as i64,
        pkt_off,
        pkt_cap,
    );
    if cfg.packet == PacketAccess::Xdp && meta_cap > 0 {
        capture_meta(&mut b, fr, pkt_off + pad8(pkt_cap as usize), meta_cap);
    }
    commit(&mut b, fr);
    b.ja(end);

    // Entered by a tail call: the invocation goes on.
    b.bind(tail);
    b.st(Sz::DW, 0, STATE_TAIL_PENDING as i64, 0);
    b.ldx(Sz::DW, 1, 0, STATE_OVERFLOW as i64);
    b.jne(1, 0, tail_lost);
    reserve(
        &mut b,
        cfg,
        fr,
        (RecordKind::Entry, FLAG_TAIL_ENTRY, 0),
        TAIL_ENTRY_LEN,
        tail_lost,
    );
    b.st(Sz::W, 2, ENTRY_PROG as i64, cfg.prog_id as i32);
    b.st(Sz::W, 2, ENTRY_CPU as i64, 0);
    b.st(Sz::DW, 2, ENTRY_CPU_SEQ as i64, 0);
    b.ldx(Sz::DW, 3, 0, STATE_LOST as i64);
    b.stx(Sz::DW, 2, ENTRY_LOST as i64, 3);
    commit(&mut b, fr);
    b.ja(end);
    b.bind(tail_lost);
    bump(&mut b, fr, STATE_LOST, 1);
    b.ja(end);

    // No room for the entry (or nested in an invocation that had none):
    // this invocation's records are lost until its exit.
    b.bind(unopen);
    bump(&mut b, fr, STATE_DEPTH, -1);
    b.bind(no_room);
    bump(&mut b, fr, STATE_OVERFLOW, 1);
    bump(&mut b, fr, STATE_LOST, 1);
    b.bind(end);
    b.ldx(Sz::DW, 1, 10, fr.ctx());
    b
}

/// Largest size of an exit record.
pub fn exit_size(cfg: &ProbeConfig) -> usize {
    if cfg.packet_unchanged {
        EXIT_UNCHANGED_LEN
    } else {
        EXIT_PKT + pad8(packet_caps(cfg).0 as usize)
    }
}

/// Before an exit of the main function: record r0 and the final packet.
/// An outermost invocation then commits its records, and sends all the
/// committed ones to the ring buffer in one piece once they reach the
/// batch size; a nested one sends its records in one piece and gives the
/// scratch buffer back to the enclosing invocation.
pub fn exit(cfg: &ProbeConfig, fr: Frame, insn: u32) -> Block {
    let mut b = Block::new();
    let end = b.new_label();
    let overflowed = b.new_label();
    let no_room = b.new_label();
    let emit = b.new_label();
    let reset = b.new_label();
    b.stx(Sz::DW, 10, fr.r0(), 0);
    load_state(&mut b, cfg, fr, end);
    b.ldx(Sz::DW, 1, 0, STATE_OVERFLOW as i64);
    b.jne(1, 0, overflowed);
    let flags = if cfg.packet_unchanged {
        FLAG_PACKET_UNCHANGED
    } else {
        0
    };
    reserve(
        &mut b,
        cfg,
        fr,
        (RecordKind::Exit, flags, insn),
        exit_size(cfg),
        no_room,
    );
    b.ldx(Sz::DW, 3, 10, fr.r0());
    b.stx(Sz::DW, 2, EXIT_R0 as i64, 3);
    b.ldx(Sz::DW, 3, 0, STATE_LOST as i64);
    b.stx(Sz::DW, 2, EXIT_LOST as i64, 3);
    let cap = packet_caps(cfg).0;
    if !cfg.packet_unchanged {
        b.st(Sz::W, 2, EXIT_PKT_CAP as i64, cap as i32);
        capture_packet(
            &mut b,
            fr,
            cfg.packet,
            false,
            EXIT_PKT_LEN as i64,
            EXIT_PKT as i64,
            cap,
        );
        size_with_packet(&mut b, fr, cfg.packet, EXIT_PKT_LEN as i64, EXIT_PKT, cap);
    }
    commit(&mut b, fr);
    b.ja(emit);
    b.bind(no_room);
    bump(&mut b, fr, STATE_LOST, 1);

    b.bind(emit);
    let nested = b.new_label();
    let sent = b.new_label();
    let closed = b.new_label();
    b.ldx(Sz::DW, 1, 10, fr.state());
    b.ldx(Sz::DW, 2, 1, STATE_DEPTH as i64);
    b.jgt(2, 1, nested);

    // The outermost invocation: commit its blob (before closing it, so
    // that a flush cannot run in between and see neither), and send the
    // committed blobs in one piece once they reach the batch size.
    b.ldx(Sz::DW, 3, 1, STATE_OFF as i64);
    b.stx(Sz::DW, 1, STATE_COMMITTED as i64, 3);
    b.ldx(Sz::DW, 2, 1, STATE_NREC as i64);
    b.ldx(Sz::DW, 4, 1, STATE_COMMITTED_NREC as i64);
    b.add(4, 2);
    b.stx(Sz::DW, 1, STATE_COMMITTED_NREC as i64, 4);
    b.jlt(3, cfg.batch_bytes as i32, closed);
    send_committed(
        &mut b,
        (cfg.ringbuf_fd, cfg.scratch),
        &|b: &mut Block| b.ldx(Sz::DW, 1, 10, fr.state()),
        reset,
    );
    b.ldx(Sz::DW, 1, 10, fr.state());
    empty_buffer(&mut b, 1);
    b.bind(closed);
    b.ldx(Sz::DW, 1, 10, fr.state());
    b.st(Sz::DW, 1, STATE_DEPTH as i64, 0);
    b.ja(end);

    // A nested invocation: send [start, off) of the scratch buffer now.
    b.bind(nested);
    b.ldx(Sz::DW, 2, 1, STATE_START as i64);
    b.ldx(Sz::DW, 3, 1, STATE_OFF as i64);
    b.sub(3, 2);
    b.jgt(2, cfg.scratch as i32, reset);
    b.jgt(3, cfg.scratch as i32, reset);
    b.add(2, 1);
    b.add_imm(2, STATE_BUF as i32);
    b.ld_map_fd(1, cfg.ringbuf_fd);
    b.mov_imm(4, BPF_RB_NO_WAKEUP);
    b.call(HELPER_RINGBUF_OUTPUT);
    b.jeq(0, 0, sent);
    // The ring buffer is full: every record of the invocation is lost.
    b.ldx(Sz::DW, 1, 10, fr.state());
    b.ldx(Sz::DW, 2, 1, STATE_NREC as i64);
    b.ldx(Sz::DW, 3, 1, STATE_LOST as i64);
    b.add(3, 2);
    b.stx(Sz::DW, 1, STATE_LOST as i64, 3);

    // The enclosing invocation's records end at this one's nesting frame,
    // which says where they start and how many they are.
    b.bind(sent);
    b.ldx(Sz::DW, 1, 10, fr.state());
    b.ldx(Sz::DW, 2, 1, STATE_START as i64);
    b.jgt(2, cfg.scratch as i32, reset);
    b.jlt(2, NEST_FRAME_LEN as i32, reset);
    b.mov(4, 2);
    b.add_imm(4, -(NEST_FRAME_LEN as i32));
    b.stx(Sz::DW, 1, STATE_OFF as i64, 4);
    b.mov(3, 1);
    b.add(3, 2);
    let frame = STATE_BUF as i64 - NEST_FRAME_LEN as i64;
    b.ldx(Sz::DW, 4, 3, frame + NEST_PREV_START as i64);
    b.stx(Sz::DW, 1, STATE_START as i64, 4);
    b.ldx(Sz::DW, 4, 3, frame + NEST_PREV_NREC as i64);
    b.stx(Sz::DW, 1, STATE_NREC as i64, 4);
    bump(&mut b, fr, STATE_DEPTH, -1);
    b.ja(end);
    // Bookkeeping out of bounds (cannot happen): start afresh.
    b.bind(reset);
    b.ldx(Sz::DW, 1, 10, fr.state());
    empty_buffer(&mut b, 1);
    b.st(Sz::DW, 1, STATE_DEPTH as i64, 0);
    b.ja(end);

    // The invocation's entry did not fit: its exit is lost too.
    b.bind(overflowed);
    bump(&mut b, fr, STATE_OVERFLOW, -1);
    bump(&mut b, fr, STATE_LOST, 1);
    b.bind(end);
    b.ldx(Sz::DW, 0, 10, fr.r0());
    b
}
/// Sends the committed bytes `[0, committed)` with one
/// `bpf_ringbuf_output` (nothing when there are none); if the ring buffer
/// has no room, counts all their records as lost. `state` puts the state
/// value in r1 (after a helper call too). Jumps to `bad` when the
/// bookkeeping is out of bounds. Clobbers r0-r5; the caller then empties
/// the buffer with [`empty_buffer`].
fn send_committed(
    b: &mut Block,
    (ringbuf_fd, scratch): (i32, u32),
    state: &dyn Fn(&mut Block),
    bad: Label,
) {
    let done = b.new_label();
    state(b);
    b.ldx(Sz::DW, 3, 1, STATE_COMMITTED as i64);
    b.jeq(3, 0, done);
    b.jgt(3, scratch as i32, bad);
    b.mov(2, 1);
    b.add_imm(2, STATE_BUF as i32);
    b.ld_map_fd(1, ringbuf_fd);
    // The reader polls; a wakeup would only cost an irq_work.
    b.mov_imm(4, BPF_RB_NO_WAKEUP);
    b.call(HELPER_RINGBUF_OUTPUT);
    b.jeq(0, 0, done);
    // The ring buffer is full: every record of the batch is lost.
    state(b);
    b.ldx(Sz::DW, 2, 1, STATE_COMMITTED_NREC as i64);
    b.ldx(Sz::DW, 3, 1, STATE_LOST as i64);
    b.add(3, 2);
    b.stx(Sz::DW, 1, STATE_LOST as i64, 3);
    b.bind(done);
}

/// Empties the scratch buffer of the state value in r(`state`): no
/// committed bytes, no records.
fn empty_buffer(b: &mut Block, state: u8) {
    for field in [
        STATE_OFF,
        STATE_START,
        STATE_NREC,
        STATE_COMMITTED,
        STATE_COMMITTED_NREC,
    ] {
        b.st(Sz::DW, state, field as i64, 0);
    }
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

/// `n` bytes from `src` to `dst` with plain loads and stores (uses r4).
fn copy_inline(b: &mut Block, dst: u8, src: u8, n: u32) {
    let mut k = 0u32;
    for (size, width) in [(Sz::DW, 8), (Sz::W, 4), (Sz::H, 2), (Sz::B, 1)] {
        while n - k >= width {
            b.ldx(size, 4, src, k as i64);
            b.stx(size, dst, k as i64, 4);
            k += width;
        }
    }
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
    let flags = match kind {
        CallKind::Helper => 0,
        CallKind::Kfunc => FLAG_KFUNC,
    };
    let end = begin(
        &mut b,
        cfg,
        fr,
        (RecordKind::Helper, flags),
        insn,
        helper_size(outputs),
        &|_| {},
    );
    b.st(Sz::W, 0, HELPER_ID as i64, helper_id as i32);
    b.st(Sz::W, 0, HELPER_N_OUT as i64, outputs.len() as i32);
    if returns_value {
        b.ldx(Sz::DW, 2, 10, fr.r0());
        b.stx(Sz::DW, 0, HELPER_R0 as i64, 2);
    } else {
        b.st(Sz::DW, 0, HELPER_R0 as i64, 0);
    }
    let done = b.new_label();
    if returns_value && outputs.len() == 1 && outputs[0].arg == OUT_ARG_RETURNED {
        // A failed lookup: no memory, a record without outputs.
        let found = b.new_label();
        b.jne(2, 0, found);
        b.st(Sz::B, 0, HELPER_N_OUT as i64, 0);
        b.st(Sz::H, 0, HDR_SIZE as i64, (HELPER_OUTPUTS / 8) as i32);
        b.ja(done);
        b.bind(found);
    }
    let mut off = HELPER_OUTPUTS as i64;
    for o in outputs {
        b.ldx(Sz::DW, 1, 10, fr.rec());
        b.st(
            Sz::W,
            1,
            off + OUT_CAP_ARG as i64,
            out_cap_arg(o.cap, o.arg),
        );
        match o.size {
            SizeSource::Const(n) => b.mov_imm(2, n as i32),
            SizeSource::Arg(n) => b.ldx(Sz::DW, 2, 10, fr.arg(n)),
        }
        b.stx(Sz::W, 1, off + OUT_LEN as i64, 2);
        b.clamp(2, o.cap);
        b.add_imm(1, (off as usize + OUT_HEADER_LEN) as i32);
        let skip = b.new_label();
        if o.arg == OUT_ARG_RETURNED {
            // NULL (a failed lookup): no memory, nothing to copy (the
            // assembler drops this output).
            b.ldx(Sz::DW, 3, 10, fr.r0());
            b.jeq(3, 0, skip);
        } else {
            b.ldx(Sz::DW, 3, 10, fr.arg(o.arg - 1));
        }
        match o.size {
            SizeSource::Const(n)
                if o.exact
                    && o.arg == OUT_ARG_RETURNED
                    && n == o.cap
                    && n <= cfg.inline_copy_max =>
            {
                copy_inline(&mut b, 1, 3, n);
            }
            _ => b.call(HELPER_PROBE_READ_KERNEL),
        }
        b.bind(skip);
        off += o.record_bytes() as i64;
    }
    b.bind(done);
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
        (RecordKind::TailCall, 0),
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
    load_state(&mut b, cfg, fr, end);
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
        (RecordKind::BtfLoad, 0),
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

/// The flush program (type `raw_tracepoint`, never attached: the recorder
/// runs it with BPF_PROG_TEST_RUN on a chosen CPU): sends that CPU's
/// committed invocations and empties its scratch buffer, but only when no
/// invocation is open there. It runs in an interrupt (or with preemption
/// off) and may come between any two instructions of an instrumented
/// program, so it opens a level of depth itself while it works: an
/// invocation that interrupts it nests, and leaves as a blob of its own.
/// `ringbuf_fd`, `state_fd` and `scratch` are those of the probes.
pub fn flush(ringbuf_fd: i32, state_fd: i32, scratch: u32) -> Block {
    let mut b = Block::new();
    let out = b.new_label();
    let leave = b.new_label();
    let empty = b.new_label();
    b.call(HELPER_GET_SMP_PROCESSOR_ID);
    b.stx(Sz::W, 10, -8, 0);
    b.mov(2, 10);
    b.add_imm(2, -8);
    b.ld_map_fd(1, state_fd);
    b.call(HELPER_MAP_LOOKUP_ELEM);
    b.jeq(0, 0, out);
    b.mov(6, 0);
    b.ldx(Sz::DW, 1, 6, STATE_DEPTH as i64);
    b.add_imm(1, 1);
    b.stx(Sz::DW, 6, STATE_DEPTH as i64, 1);
    b.jne(1, 1, leave);
    send_committed(
        &mut b,
        (ringbuf_fd, scratch),
        &|b: &mut Block| b.mov(1, 6),
        empty,
    );
    b.bind(empty);
    empty_buffer(&mut b, 6);
    b.bind(leave);
    b.ldx(Sz::DW, 1, 6, STATE_DEPTH as i64);
    b.add_imm(1, -1);
    b.stx(Sz::DW, 6, STATE_DEPTH as i64, 1);
    b.bind(out);
    b.mov_imm(0, 0);
    b.exit();
    b
}
