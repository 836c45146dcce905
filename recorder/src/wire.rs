//! The records the instrumented program writes, and their decoder.
//!
//! This is the contract between the probe code the instrumenter emits
//! (`crate::instrument::probes`) and userspace: every offset used by either
//! side is a constant here. All integers are little-endian (BPF runs in the
//! host's byte order and bpfrr records on little-endian hosts).
//!
//! Transport: the probes append their records to a per-CPU scratch buffer
//! (the `bpfrr_state` array, one value per CPU: [`STATE_BUF`] bytes of
//! bookkeeping, then the buffer). An invocation's records, back to back,
//! are a *blob*; its first record is an Entry (which carries the CPU and
//! its sequence number for every record up to the next Entry that is not a
//! tail entry). A ring buffer item holds one or more whole blobs:
//! - Batches: the exit probe of an outermost invocation leaves its blob in
//!   the buffer, *committed* ([`STATE_COMMITTED`]: blobs back to back from
//!   offset 0), and sends everything committed with ONE
//!   `bpf_ringbuf_output` only once it reaches the batch size (a few KiB,
//!   `ProbeConfig::batch_bytes`), which saves the ring buffer's fixed cost
//!   per write. A small `raw_tracepoint` *flush program*
//!   (`crate::instrument::probes::flush`), run by the recorder with
//!   BPF_PROG_TEST_RUN on each CPU, sends a CPU's committed bytes when no
//!   invocation is open there ([`STATE_DEPTH`] 0): after every test run,
//!   on every live poll tick and before the last drain.
//! - Nested invocations on one CPU (an interrupt running the program in
//!   the middle of another) stack in the buffer and leave as blobs of their
//!   own at their exit: each nested invocation's records are preceded in
//!   the buffer by a [`NEST_FRAME_LEN`]-byte frame (where the enclosing
//!   invocation's records start, how many it has) that is not sent.
//!
//! A batch the ring buffer has no room for is lost whole: every record of
//! every invocation in it is counted in the CPU's lost counter, and their
//! sequence numbers leave a gap.
//!
//! Every record starts with a [`HEADER_LEN`]-byte header:
//!
//! | off | type | field |
//! |---|---|---|
//! | 0 | u8 | kind ([`RecordKind`]) |
//! | 1 | u8 | flags ([`FLAG_TAIL_ENTRY`], [`FLAG_PACKET_UNCHANGED`], [`FLAG_KFUNC`]) |
//! | 2 | u16 | size of the record in 8-byte units (header included) |
//! | 4 | u32 | instruction index in the ORIGINAL program |
//!
//! What is the same for many records is carried once: the CPU and its
//! sequence number by the blob's Entry, the program id by each Entry (a
//! tail-called program's too), and the CPU's lost counter by each Entry and
//! by the Exit (a lost record between them moves it: the invocation is
//! partial). The decoder gives every record all of them in [`Header`].
//!
//! The payloads are self-describing (capacities and lengths are in the
//! record), so decoding needs no table from the instrumenter. Helper
//! outputs have a fixed capacity (the record size is a constant per probe)
//! and a real length; `min(len, cap)` bytes are valid. Packets and XDP
//! metadata are stored at their real length, cut to their capacity (the
//! snap length), at the end of their record.
//!
//! A malformed or short record is an error ([`WireError`]), never a panic.

/// Size of the common header.
pub const HEADER_LEN: usize = 8;
pub const HDR_KIND: i16 = 0;
pub const HDR_FLAGS: i16 = 1;
/// u16: the record's size in 8-byte units.
pub const HDR_SIZE: i16 = 2;
pub const HDR_INSN: i16 = 4;
/// The largest record the header can describe.
pub const MAX_RECORD_LEN: usize = u16::MAX as usize * 8;

/// The first 4 bytes of a header (kind, flags, size), as the probes store
/// them with one 32-bit store of a constant.
pub const fn header_word(kind: RecordKind, flags: u8, size: usize) -> i32 {
    (kind as u32 | (flags as u32) << 8 | ((size / 8) as u32) << 16) as i32
}

/// Header flag of an Entry record: the program was entered by a tail call
/// (it continues the invocation; such an entry is [`TAIL_ENTRY_LEN`] bytes:
/// no time, context or packet).
pub const FLAG_TAIL_ENTRY: u8 = 1;
/// Header flag of an Exit record: no program of the recording can change
/// the packet, so the final packet is the entry packet (not copied again;
/// the record is [`EXIT_UNCHANGED_LEN`] bytes).
pub const FLAG_PACKET_UNCHANGED: u8 = 2;
/// Header flag of a Helper record: the call was a kfunc (id = BTF id).
pub const FLAG_KFUNC: u8 = 4;

/// Entry payload: the program, the CPU and its sequence number, the CPU's
/// lost counter (a tail entry ends here), then the time (0 from probes
/// that read no clock: the recorder stamps it), the sizes, the
/// context image, the packet and the packet metadata (`min(len, cap)`
/// bytes each), each padded to 8 bytes.
pub const ENTRY_PROG: i16 = 8;
pub const ENTRY_CPU: i16 = 12;
pub const ENTRY_CPU_SEQ: i16 = 16;
pub const ENTRY_LOST: i16 = 24;
pub const TAIL_ENTRY_LEN: usize = 32;
pub const ENTRY_TIME: i16 = 32;
pub const ENTRY_PKT_LEN: i16 = 40;
pub const ENTRY_PKT_CAP: i16 = 44;
pub const ENTRY_CTX_LEN: i16 = 48;
/// u16 each ([`NO_META`]: none captured).
pub const ENTRY_META_LEN: i16 = 52;
pub const ENTRY_META_CAP: i16 = 54;
pub const ENTRY_CTX: usize = 56;
/// `ENTRY_META_LEN` value meaning "no metadata captured".
pub const NO_META: u16 = u16::MAX;

/// Exit payload: r0, the CPU's lost counter, then (unless
/// [`FLAG_PACKET_UNCHANGED`]) the final packet's length and capacity and
/// its bytes.
pub const EXIT_R0: i16 = 8;
pub const EXIT_LOST: i16 = 16;
pub const EXIT_UNCHANGED_LEN: usize = 24;
pub const EXIT_PKT_LEN: i16 = 24;
pub const EXIT_PKT_CAP: i16 = 28;
pub const EXIT_PKT: usize = 32;

/// Helper payload: id (helper id, or BTF id with [`FLAG_KFUNC`]), number
/// of outputs, r0, then the outputs.
pub const HELPER_ID: i16 = 8;
pub const HELPER_N_OUT: i16 = 12;
pub const HELPER_R0: i16 = 16;
pub const HELPER_OUTPUTS: usize = 24;
/// Each output: an 8-byte header (real length u32; then a u32 holding the
/// capacity in its low 24 bits and the argument in its high 8), then `cap`
/// bytes padded to 8.
pub const OUT_LEN: usize = 0;
pub const OUT_CAP_ARG: usize = 4;
pub const OUT_HEADER_LEN: usize = 8;
/// Largest output capacity (24 bits; records are smaller anyway).
pub const OUT_CAP_MAX: u32 = (1 << 24) - 1;
/// `arg` value of an output that is the memory r0 points to after the call
/// (a map value returned by `bpf_map_lookup_elem`).
pub const OUT_ARG_RETURNED: u8 = 0;

/// The u32 at [`OUT_CAP_ARG`].
pub const fn out_cap_arg(cap: u32, arg: u8) -> i32 {
    ((cap & OUT_CAP_MAX) | (arg as u32) << 24) as i32
}

/// Tail-call payload: the index (r3) and the object map index of the
/// program array (`u32::MAX` when the instrumenter could not tell).
pub const TAIL_INDEX: i16 = 8;
pub const TAIL_MAP: i16 = 12;
pub const TAIL_LEN: usize = 16;

/// BTF-load payload: the value the load left in its destination register.
pub const BTF_LOAD_VALUE: i16 = 8;
pub const BTF_LOAD_LEN: usize = 16;

/// `len` value meaning "the program has no packet".
pub const NO_PACKET: u32 = u32::MAX;

/// Layout of a `bpfrr_state` value (one per CPU): the counters, the
/// scratch buffer's bookkeeping, then the buffer at [`STATE_BUF`].
pub const STATE_CPU_SEQ: i16 = 0;
pub const STATE_LOST: i16 = 8;
pub const STATE_TAIL_PENDING: i16 = 16;
pub const STATE_CPU: i16 = 24;
/// Next free byte of the scratch buffer (offset from [`STATE_BUF`]).
pub const STATE_OFF: i16 = 32;
/// Where the current invocation's records start (offset from [`STATE_BUF`]).
pub const STATE_START: i16 = 40;
/// Records the current invocation has in the buffer.
pub const STATE_NREC: i16 = 48;
/// Invocations entered on this CPU whose Entry did not fit (their records
/// are counted as lost until their exit).
pub const STATE_OVERFLOW: i16 = 56;
/// Invocations open on this CPU (with their Entry in the buffer), plus one
/// while the flush program runs. Only the code that raised it from 0 (the
/// outermost invocation's exit, or the flush) may send and reset the
/// committed bytes.
pub const STATE_DEPTH: i16 = 64;
/// End of the committed bytes: finished outermost invocations, back to
/// back from offset 0, waiting to leave in one ring buffer item.
pub const STATE_COMMITTED: i16 = 72;
/// Records in the committed bytes (all counted as lost if their item
/// finds no room in the ring buffer).
pub const STATE_COMMITTED_NREC: i16 = 80;
pub const STATE_BUF: i16 = 88;

/// The frame before an invocation's records in the scratch buffer: the
/// enclosing invocation's `STATE_START` and `STATE_NREC`, restored at exit.
pub const NEST_PREV_START: i16 = 0;
pub const NEST_PREV_NREC: i16 = 8;
pub const NEST_FRAME_LEN: usize = 16;

/// Size of a `bpfrr_state` value for a scratch buffer of `scratch` bytes:
/// twice the buffer, so that the verifier can prove that any blob
/// (start <= scratch, length <= scratch) lies inside the value.
pub const fn state_value_size(scratch: u32) -> u32 {
    STATE_BUF as u32 + 2 * scratch
}

/// Rounds up to the 8-byte alignment every buffer in a record keeps.
pub const fn pad8(n: usize) -> usize {
    (n + 7) & !7
}

/// What a record is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum RecordKind {
    Entry = 1,
    Helper = 2,
    TailCall = 3,
    Exit = 4,
    /// A load through a BTF pointer (kernel memory) and its value.
    BtfLoad = 5,
}

impl RecordKind {
    pub fn from_u16(v: u16) -> Option<RecordKind> {
        Some(match v {
            1 => RecordKind::Entry,
            2 => RecordKind::Helper,
            3 => RecordKind::TailCall,
            4 => RecordKind::Exit,
            5 => RecordKind::BtfLoad,
            _ => return None,
        })
    }
}

/// Whether a recorded call was a helper or a kfunc.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallKind {
    Helper,
    Kfunc,
}

/// The common header, decoded (CPU and sequence number come from the
/// blob's Entry record).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Header {
    pub flags: u8,
    /// Instruction index in the original program.
    pub insn: u32,
    pub cpu: u32,
    pub prog: u32,
    pub cpu_seq: u64,
    /// Records lost on this CPU before this one was written.
    pub lost: u64,
}

/// A captured buffer: the bytes that fit, and the real length.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Captured {
    pub bytes: Vec<u8>,
    /// The real length (larger than `bytes.len()` when cut to the capacity).
    pub len: u64,
}

impl Captured {
    pub fn truncated(&self) -> bool {
        self.len > self.bytes.len() as u64
    }
}

/// One helper output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    /// Argument number 1-5, or [`OUT_ARG_RETURNED`] for memory r0 points to.
    pub arg: u8,
    pub data: Captured,
}

/// One decoded record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    Entry {
        header: Header,
        time_ns: u64,
        ctx: Vec<u8>,
        packet: Option<Captured>,
        meta: Option<Captured>,
    },
    Helper {
        header: Header,
        id: u32,
        kind: CallKind,
        r0: u64,
        outputs: Vec<Output>,
    },
    TailCall {
        header: Header,
        index: u32,
        /// Object map index of the program array, if known.
        map: Option<u32>,
    },
    Exit {
        header: Header,
        r0: u64,
        /// The final packet, when copied.
        packet: Option<Captured>,
        /// The packet was not copied because it cannot have changed: the
        /// final packet is the entry packet ([`FLAG_PACKET_UNCHANGED`]).
        packet_unchanged: bool,
    },
    /// `header.insn` is the load instruction.
    BtfLoad { header: Header, value: u64 },
}

impl Record {
    pub fn header(&self) -> &Header {
        match self {
            Record::Entry { header, .. }
            | Record::Helper { header, .. }
            | Record::TailCall { header, .. }
            | Record::Exit { header, .. }
            | Record::BtfLoad { header, .. } => header,
        }
    }
}

/// Why a record could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error(
        "a ring buffer record of {len} bytes is shorter than {need} bytes (its {what}); the recorder and the instrumented program disagree on the record layout, please report this bpfrr bug"
    )]
    Short {
        len: usize,
        need: usize,
        what: &'static str,
    },
    #[error(
        "a ring buffer record has unknown kind {0}; the recorder and the instrumented program disagree on the record layout, please report this bpfrr bug"
    )]
    UnknownKind(u16),
    #[error(
        "a record says it is {size} bytes long with {left} bytes left in its invocation (a size must be at least {HEADER_LEN}); the record is corrupted, please report this bpfrr bug"
    )]
    BadSize { size: usize, left: usize },
    #[error(
        "an invocation's records start with a record of kind {0} instead of its entry; the recorder and the instrumented program disagree on the record layout, please report this bpfrr bug"
    )]
    NoEntry(u16),
}

struct Reader<'a> {
    b: &'a [u8],
}

impl Reader<'_> {
    fn bytes(&self, off: usize, n: usize, what: &'static str) -> Result<&[u8], WireError> {
        off.checked_add(n)
            .and_then(|end| self.b.get(off..end))
            .ok_or(WireError::Short {
                len: self.b.len(),
                need: off.saturating_add(n),
                what,
            })
    }
    fn u8(&self, off: usize, what: &'static str) -> Result<u8, WireError> {
        Ok(self.bytes(off, 1, what)?[0])
    }
    fn u16(&self, off: usize, what: &'static str) -> Result<u16, WireError> {
        let b = self.bytes(off, 2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&self, off: usize, what: &'static str) -> Result<u32, WireError> {
        let b = self.bytes(off, 4, what)?;
        Ok(u32::from_le_bytes(b.try_into().expect("4 bytes")))
    }
    fn u64(&self, off: usize, what: &'static str) -> Result<u64, WireError> {
        let b = self.bytes(off, 8, what)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }
    /// A buffer of capacity `cap` at `off` whose real length is `len`, of
    /// which `min(len, cap)` bytes are stored (all `cap` bytes present
    /// when `fixed`, as in helper outputs).
    fn captured(
        &self,
        off: usize,
        cap: usize,
        len: u64,
        fixed: bool,
        what: &'static str,
    ) -> Result<Captured, WireError> {
        let valid = (len.min(cap as u64)) as usize;
        let area = self.bytes(off, if fixed { cap } else { valid }, what)?;
        Ok(Captured {
            bytes: area[..valid].to_vec(),
            len,
        })
    }
}

fn o(off: i16) -> usize {
    off as usize
}

/// What the records of a blob share, carried by some of them: the CPU and
/// its sequence number (the Entry), the running program (each Entry) and
/// the CPU's lost counter (each Entry and the Exit).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlobContext {
    pub cpu: u32,
    pub cpu_seq: u64,
    pub prog: u32,
    pub lost: u64,
}

/// Decodes one ring buffer item: one or more invocations' records (each
/// starts with its Entry, which gives its records their CPU and sequence
/// number).
pub fn decode(blob: &[u8]) -> Result<Vec<Record>, WireError> {
    let mut out = Vec::new();
    let mut off = 0;
    let mut cx = BlobContext::default();
    loop {
        let rest = &blob[off..];
        let r = Reader { b: rest };
        r.bytes(0, HEADER_LEN, "header")?;
        let size = r.u16(o(HDR_SIZE), "header")? as usize * 8;
        if size < HEADER_LEN || size > rest.len() {
            return Err(WireError::BadSize {
                size,
                left: rest.len(),
            });
        }
        let kind = r.u8(o(HDR_KIND), "header")?;
        let flags = r.u8(o(HDR_FLAGS), "header")?;
        let starts_blob = kind == RecordKind::Entry as u8 && flags & FLAG_TAIL_ENTRY == 0;
        if off == 0 && !starts_blob {
            return Err(WireError::NoEntry(kind as u16));
        }
        if starts_blob {
            // The next invocation of a batch (or the item's first).
            cx.cpu = r.u32(o(ENTRY_CPU), "entry record")?;
            cx.cpu_seq = r.u64(o(ENTRY_CPU_SEQ), "entry record")?;
        }
        let record = decode_record(&rest[..size], &mut cx)?;
        out.push(record);
        off += size;
        if off == blob.len() {
            return Ok(out);
        }
    }
}

/// Decodes one record of a blob whose shared fields so far are `cx` (an
/// Entry or Exit updates them).
pub fn decode_record(bytes: &[u8], cx: &mut BlobContext) -> Result<Record, WireError> {
    let r = Reader { b: bytes };
    r.bytes(0, HEADER_LEN, "header")?;
    let kind_raw = r.u8(o(HDR_KIND), "header")?;
    let kind =
        RecordKind::from_u16(kind_raw as u16).ok_or(WireError::UnknownKind(kind_raw as u16))?;
    let flags = r.u8(o(HDR_FLAGS), "header")?;
    match kind {
        RecordKind::Entry => {
            cx.prog = r.u32(o(ENTRY_PROG), "entry record")?;
            cx.lost = r.u64(o(ENTRY_LOST), "entry record")?;
        }
        RecordKind::Exit => cx.lost = r.u64(o(EXIT_LOST), "exit record")?,
        _ => {}
    }
    let header = Header {
        flags,
        insn: r.u32(o(HDR_INSN), "header")?,
        cpu: cx.cpu,
        prog: cx.prog,
        cpu_seq: cx.cpu_seq,
        lost: cx.lost,
    };
    Ok(match kind {
        RecordKind::Entry if flags & FLAG_TAIL_ENTRY != 0 => Record::Entry {
            header,
            time_ns: 0,
            ctx: Vec::new(),
            packet: None,
            meta: None,
        },
        RecordKind::Entry => {
            let what = "entry record";
            let time_ns = r.u64(o(ENTRY_TIME), what)?;
            let ctx_len = r.u32(o(ENTRY_CTX_LEN), what)? as usize;
            let pkt_len = r.u32(o(ENTRY_PKT_LEN), what)?;
            let pkt_cap = r.u32(o(ENTRY_PKT_CAP), what)? as usize;
            let meta_len = r.u16(o(ENTRY_META_LEN), what)?;
            let meta_cap = r.u16(o(ENTRY_META_CAP), what)? as usize;
            let ctx = r.bytes(ENTRY_CTX, ctx_len, "entry context")?.to_vec();
            let pkt_off = ENTRY_CTX + pad8(ctx_len);
            let packet = if pkt_len == NO_PACKET {
                None
            } else {
                Some(r.captured(pkt_off, pkt_cap, pkt_len as u64, false, "entry packet")?)
            };
            let meta_off = pkt_off + packet.as_ref().map_or(0, |p| pad8(p.bytes.len()));
            let meta = if meta_len == NO_META {
                None
            } else {
                Some(r.captured(meta_off, meta_cap, meta_len as u64, false, "entry metadata")?)
            };
            Record::Entry {
                header,
                time_ns,
                ctx,
                packet,
                meta,
            }
        }
        RecordKind::Helper => {
            let what = "helper record";
            let id = r.u32(o(HELPER_ID), what)?;
            let kind = if flags & FLAG_KFUNC != 0 {
                CallKind::Kfunc
            } else {
                CallKind::Helper
            };
            let n_out = r.u8(o(HELPER_N_OUT), what)?;
            let r0 = r.u64(o(HELPER_R0), what)?;
            let mut outputs = Vec::with_capacity(n_out as usize);
            let mut off = HELPER_OUTPUTS;
            for _ in 0..n_out {
                let what = "helper output";
                let len = r.u32(off + OUT_LEN, what)?;
                let cap_arg = r.u32(off + OUT_CAP_ARG, what)?;
                let (cap, arg) = ((cap_arg & OUT_CAP_MAX) as usize, (cap_arg >> 24) as u8);
                let data = r.captured(off + OUT_HEADER_LEN, cap, len as u64, true, what)?;
                outputs.push(Output { arg, data });
                off += OUT_HEADER_LEN + pad8(cap);
            }
            Record::Helper {
                header,
                id,
                kind,
                r0,
                outputs,
            }
        }
        RecordKind::TailCall => {
            let what = "tail-call record";
            let index = r.u32(o(TAIL_INDEX), what)?;
            let map = r.u32(o(TAIL_MAP), what)?;
            Record::TailCall {
                header,
                index,
                map: (map != u32::MAX).then_some(map),
            }
        }
        RecordKind::Exit => {
            let what = "exit record";
            let r0 = r.u64(o(EXIT_R0), what)?;
            let packet_unchanged = flags & FLAG_PACKET_UNCHANGED != 0;
            let packet = if packet_unchanged {
                None
            } else {
                let pkt_len = r.u32(o(EXIT_PKT_LEN), what)?;
                let pkt_cap = r.u32(o(EXIT_PKT_CAP), what)? as usize;
                (pkt_len != NO_PACKET)
                    .then(|| r.captured(EXIT_PKT, pkt_cap, pkt_len as u64, false, "exit packet"))
                    .transpose()?
            };
            Record::Exit {
                header,
                r0,
                packet,
                packet_unchanged,
            }
        }
        RecordKind::BtfLoad => Record::BtfLoad {
            header,
            value: r.u64(o(BTF_LOAD_VALUE), "BTF-load record")?,
        },
    })
}

/// Encodes an invocation's records as the probes lay them out (one ring
/// buffer item), each buffer's capacity equal to its captured bytes; the
/// first record should be the invocation's Entry (its CPU and sequence
/// number are the blob's; each Entry's program and lost counter, and the
/// Exit's lost counter, are written, the other records' are implied). The
/// decoder's inverse; used by tests and by tools that synthesise records.
pub fn encode(records: &[Record]) -> Vec<u8> {
    let mut blob = Vec::new();
    for r in records {
        blob.extend(encode_record(r));
    }
    blob
}

fn encode_record(record: &Record) -> Vec<u8> {
    fn put(b: &mut Vec<u8>, off: usize, v: &[u8]) {
        if b.len() < off + v.len() {
            b.resize(off + v.len(), 0);
        }
        b[off..off + v.len()].copy_from_slice(v);
    }
    let mut b = vec![0u8; HEADER_LEN];
    let (kind, h) = match record {
        Record::Entry { header, .. } => (RecordKind::Entry, header),
        Record::Helper { header, .. } => (RecordKind::Helper, header),
        Record::TailCall { header, .. } => (RecordKind::TailCall, header),
        Record::Exit { header, .. } => (RecordKind::Exit, header),
        Record::BtfLoad { header, .. } => (RecordKind::BtfLoad, header),
    };
    let mut flags = h.flags;
    match record {
        Record::Exit {
            packet_unchanged, ..
        } => {
            flags &= !FLAG_PACKET_UNCHANGED;
            if *packet_unchanged {
                flags |= FLAG_PACKET_UNCHANGED;
            }
        }
        Record::Helper { kind, .. } => {
            flags &= !FLAG_KFUNC;
            if *kind == CallKind::Kfunc {
                flags |= FLAG_KFUNC;
            }
        }
        _ => {}
    }
    put(&mut b, o(HDR_KIND), &[kind as u8, flags]);
    put(&mut b, o(HDR_INSN), &h.insn.to_le_bytes());
    let cap_len = |c: &Option<Captured>| {
        c.as_ref().map_or((NO_PACKET, 0usize), |c| {
            (c.len.min(u32::MAX as u64 - 1) as u32, c.bytes.len())
        })
    };
    match record {
        Record::Entry {
            time_ns,
            ctx,
            packet,
            meta,
            ..
        } => {
            put(&mut b, o(ENTRY_PROG), &h.prog.to_le_bytes());
            put(&mut b, o(ENTRY_CPU), &h.cpu.to_le_bytes());
            put(&mut b, o(ENTRY_CPU_SEQ), &h.cpu_seq.to_le_bytes());
            put(&mut b, o(ENTRY_LOST), &h.lost.to_le_bytes());
            if flags & FLAG_TAIL_ENTRY == 0 {
                put(&mut b, o(ENTRY_TIME), &time_ns.to_le_bytes());
                put(&mut b, o(ENTRY_CTX_LEN), &(ctx.len() as u32).to_le_bytes());
                let (pl, pc) = cap_len(packet);
                put(&mut b, o(ENTRY_PKT_LEN), &pl.to_le_bytes());
                put(&mut b, o(ENTRY_PKT_CAP), &(pc as u32).to_le_bytes());
                let (ml, mc) = meta.as_ref().map_or((NO_META, 0usize), |m| {
                    (m.len.min(NO_META as u64 - 1) as u16, m.bytes.len())
                });
                put(&mut b, o(ENTRY_META_LEN), &ml.to_le_bytes());
                put(&mut b, o(ENTRY_META_CAP), &(mc as u16).to_le_bytes());
                b.resize(ENTRY_CTX, 0);
                put(&mut b, ENTRY_CTX, ctx);
                let pkt_off = ENTRY_CTX + pad8(ctx.len());
                b.resize(pkt_off, 0);
                if let Some(p) = packet {
                    put(&mut b, pkt_off, &p.bytes);
                }
                let meta_off = pkt_off + pad8(pc);
                b.resize(meta_off, 0);
                if let Some(m) = meta {
                    put(&mut b, meta_off, &m.bytes);
                }
                b.resize(meta_off + pad8(mc), 0);
            }
        }
        Record::Helper {
            id, r0, outputs, ..
        } => {
            put(&mut b, o(HELPER_ID), &id.to_le_bytes());
            put(&mut b, o(HELPER_N_OUT), &[outputs.len() as u8]);
            put(&mut b, o(HELPER_R0), &r0.to_le_bytes());
            let mut off = HELPER_OUTPUTS;
            b.resize(off, 0);
            for out in outputs {
                let cap = out.data.bytes.len() as u32;
                put(
                    &mut b,
                    off + OUT_LEN,
                    &(out.data.len.min(u32::MAX as u64) as u32).to_le_bytes(),
                );
                put(
                    &mut b,
                    off + OUT_CAP_ARG,
                    &out_cap_arg(cap, out.arg).to_le_bytes(),
                );
                put(&mut b, off + OUT_HEADER_LEN, &out.data.bytes);
                off += OUT_HEADER_LEN + pad8(out.data.bytes.len());
                b.resize(off, 0);
            }
        }
        Record::TailCall { index, map, .. } => {
            put(&mut b, o(TAIL_INDEX), &index.to_le_bytes());
            put(&mut b, o(TAIL_MAP), &map.unwrap_or(u32::MAX).to_le_bytes());
        }
        Record::Exit {
            r0,
            packet,
            packet_unchanged,
            ..
        } => {
            put(&mut b, o(EXIT_R0), &r0.to_le_bytes());
            put(&mut b, o(EXIT_LOST), &h.lost.to_le_bytes());
            if !packet_unchanged {
                let (pl, pc) = cap_len(packet);
                put(&mut b, o(EXIT_PKT_LEN), &pl.to_le_bytes());
                put(&mut b, o(EXIT_PKT_CAP), &(pc as u32).to_le_bytes());
                b.resize(EXIT_PKT, 0);
                if let Some(p) = packet {
                    put(&mut b, EXIT_PKT, &p.bytes);
                }
                b.resize(EXIT_PKT + pad8(pc), 0);
            }
        }
        Record::BtfLoad { value, .. } => {
            put(&mut b, o(BTF_LOAD_VALUE), &value.to_le_bytes());
        }
    }
    let size = pad8(b.len());
    b.resize(size, 0);
    put(&mut b, o(HDR_SIZE), &((size / 8) as u16).to_le_bytes());
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            flags: 0,
            insn: 17,
            cpu: 1,
            prog: 2,
            cpu_seq: 99,
            lost: 3,
        }
    }

    fn entry() -> Record {
        Record::Entry {
            header: Header {
                insn: 0,
                ..header()
            },
            time_ns: 123456789,
            ctx: vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
            packet: Some(Captured {
                bytes: vec![0xaa; 13],
                len: 13,
            }),
            meta: Some(Captured {
                bytes: vec![4; 4],
                len: 4,
            }),
        }
    }

    /// One invocation with every kind of record.
    fn blob() -> Vec<Record> {
        vec![
            entry(),
            Record::Helper {
                header: header(),
                id: 1,
                kind: CallKind::Helper,
                r0: 0xffff_8000_1234_5678,
                outputs: vec![
                    Output {
                        arg: OUT_ARG_RETURNED,
                        data: Captured {
                            bytes: vec![7; 9],
                            len: 9,
                        },
                    },
                    Output {
                        arg: 3,
                        data: Captured {
                            bytes: vec![1, 2],
                            len: 2,
                        },
                    },
                ],
            },
            Record::TailCall {
                header: header(),
                index: 4,
                map: Some(1),
            },
            Record::Entry {
                header: Header {
                    flags: FLAG_TAIL_ENTRY,
                    prog: 5,
                    ..header()
                },
                time_ns: 0,
                ctx: vec![],
                packet: None,
                meta: None,
            },
            // After the tail entry, the records are the tail-called program's.
            Record::TailCall {
                header: Header {
                    prog: 5,
                    ..header()
                },
                index: 4,
                map: None,
            },
            Record::BtfLoad {
                header: Header {
                    prog: 5,
                    ..header()
                },
                value: 0xffff_8881_0000_1234,
            },
            Record::Exit {
                header: Header {
                    prog: 5,
                    ..header()
                },
                r0: 2,
                packet: Some(Captured {
                    bytes: vec![5; 64],
                    len: 64,
                }),
                packet_unchanged: false,
            },
        ]
    }

    fn header_mut(r: &mut Record) -> &mut Header {
        match r {
            Record::Entry { header, .. }
            | Record::Helper { header, .. }
            | Record::TailCall { header, .. }
            | Record::Exit { header, .. }
            | Record::BtfLoad { header, .. } => header,
        }
    }

    #[test]
    fn encode_then_decode_is_identity() {
        let recs = blob();
        let bytes = encode(&recs);
        assert_eq!(bytes.len() % 8, 0);
        assert_eq!(decode(&bytes).unwrap(), recs);
        // Each record alone after an entry, and an entry alone.
        for r in &recs[1..] {
            let mut r = r.clone();
            if !matches!(r, Record::Entry { .. }) {
                // Without the tail entry before it, it is the entry's program's.
                header_mut(&mut r).prog = 2;
            }
            let two = vec![entry(), r];
            assert_eq!(decode(&encode(&two)).unwrap(), two);
        }
        assert_eq!(decode(&encode(&[entry()])).unwrap(), vec![entry()]);
    }

    #[test]
    fn packets_take_their_real_length_not_their_capacity() {
        let small = encode(&[entry()]);
        let mut big = entry();
        if let Record::Entry { packet, .. } = &mut big {
            *packet = Some(Captured {
                bytes: vec![1; 1500],
                len: 1500,
            });
        }
        assert_eq!(encode(&[big]).len(), small.len() - pad8(13) + pad8(1500));
    }

    #[test]
    fn an_unchanged_final_packet_has_no_bytes() {
        let recs = vec![
            entry(),
            Record::Exit {
                header: Header {
                    flags: FLAG_PACKET_UNCHANGED,
                    ..header()
                },
                r0: 1,
                packet: None,
                packet_unchanged: true,
            },
        ];
        let b = encode(&recs);
        assert_eq!(decode(&b).unwrap(), recs);
        assert_eq!(b.len(), encode(&[entry()]).len() + EXIT_UNCHANGED_LEN);
    }

    #[test]
    fn a_truncated_capture_keeps_the_real_length() {
        // An exit record whose packet was 100 bytes but cut to 16.
        let mut b = encode(&[
            entry(),
            Record::Exit {
                header: header(),
                r0: 1,
                packet: Some(Captured {
                    bytes: vec![9; 16],
                    len: 16,
                }),
                packet_unchanged: false,
            },
        ]);
        let exit_at = encode(&[entry()]).len();
        let at = exit_at + o(EXIT_PKT_LEN);
        b[at..at + 4].copy_from_slice(&100u32.to_le_bytes());
        let Record::Exit { packet, .. } = decode(&b).unwrap().pop().unwrap() else {
            panic!("not an exit")
        };
        let p = packet.unwrap();
        assert_eq!(p.bytes, vec![9; 16]);
        assert_eq!(p.len, 100);
        assert!(p.truncated());
    }

    #[test]
    fn every_record_gets_the_cpu_and_sequence_of_its_entry() {
        let mut recs = blob();
        // The encoder writes the CPU and sequence number only in the entry.
        if let Record::Helper { header, .. } = &mut recs[1] {
            header.cpu = 7;
            header.cpu_seq = 1000;
        }
        let got = decode(&encode(&recs)).unwrap();
        assert!(got.iter().all(|r| r.header().cpu == 1));
        assert!(got.iter().all(|r| r.header().cpu_seq == 99));
    }

    #[test]
    fn a_batch_of_blobs_gives_each_invocation_the_cpu_and_sequence_of_its_own_entry() {
        // Three invocations of CPU 1 back to back in one ring buffer item.
        let mut batch = Vec::new();
        let mut want = Vec::new();
        for seq in [99u64, 100, 101] {
            let mut recs = blob();
            for r in &mut recs {
                header_mut(r).cpu_seq = seq;
            }
            batch.extend(encode(&recs));
            want.extend(recs);
        }
        assert_eq!(decode(&batch).unwrap(), want);
        // A tail entry does not start a blob: its records keep the sequence
        // number of the entry before it.
        let got = decode(&encode(&[
            entry(),
            Record::Entry {
                header: Header {
                    flags: FLAG_TAIL_ENTRY,
                    cpu_seq: 5,
                    insn: 0,
                    ..header()
                },
                time_ns: 0,
                ctx: Vec::new(),
                packet: None,
                meta: None,
            },
        ]))
        .unwrap();
        assert!(got.iter().all(|r| r.header().cpu_seq == 99));
    }

    #[test]
    fn every_cut_of_a_blob_is_an_error_unless_at_a_record_boundary() {
        let recs = blob();
        let bytes = encode(&recs);
        let mut boundaries = vec![0];
        for r in &recs {
            boundaries.push(boundaries.last().unwrap() + encode(std::slice::from_ref(r)).len());
        }
        for n in 0..bytes.len() {
            match decode(&bytes[..n]) {
                Ok(got) => {
                    let k = boundaries.iter().position(|&b| b == n).expect("boundary");
                    assert_eq!(got, recs[..k].to_vec());
                }
                Err(e) => {
                    assert!(
                        matches!(e, WireError::Short { .. } | WireError::BadSize { .. }),
                        "{n}: {e}"
                    );
                    assert!(!boundaries[1..].contains(&n), "{n}");
                }
            }
        }
    }

    #[test]
    fn malformed_blobs_are_errors() {
        let mut b = encode(&blob());
        b[0] = 9;
        assert_eq!(decode(&b).unwrap_err(), WireError::NoEntry(9));
        // A helper first: not an invocation.
        let h = encode(&blob()[1..2]);
        assert_eq!(decode(&h).unwrap_err(), WireError::NoEntry(2));
        // An unknown kind after the entry.
        let mut b = encode(&blob());
        let second = encode(&[entry()]).len();
        b[second] = 9;
        assert_eq!(decode(&b).unwrap_err(), WireError::UnknownKind(9));
        // Sizes that would loop or run past the end.
        for size in [0u16, 1000, u16::MAX] {
            let mut b = encode(&blob());
            let at = second + o(HDR_SIZE);
            b[at..at + 2].copy_from_slice(&size.to_le_bytes());
            let e = decode(&b).unwrap_err();
            assert!(matches!(e, WireError::BadSize { .. }), "{size}: {e}");
            assert!(e.to_string().contains("bpfrr bug"));
        }
    }

    #[test]
    fn records_take_the_program_of_the_latest_entry_and_the_lost_count_of_entry_or_exit() {
        let tail_entry = |prog, lost| Record::Entry {
            header: Header {
                flags: FLAG_TAIL_ENTRY,
                prog,
                lost,
                ..header()
            },
            time_ns: 0,
            ctx: vec![],
            packet: None,
            meta: None,
        };
        let btf = |prog, lost| Record::BtfLoad {
            header: Header {
                prog,
                lost,
                ..header()
            },
            value: 1,
        };
        let exit = |prog, lost| Record::Exit {
            header: Header {
                flags: FLAG_PACKET_UNCHANGED,
                prog,
                lost,
                ..header()
            },
            r0: 0,
            packet: None,
            packet_unchanged: true,
        };
        // entry (prog 2, lost 3), a record, a tail entry (prog 8, lost 4),
        // a record, the exit (lost 6).
        let recs = vec![entry(), btf(2, 3), tail_entry(8, 4), btf(8, 4), exit(8, 6)];
        assert_eq!(decode(&encode(&recs)).unwrap(), recs);
        // Only entries and the exit carry them: a record's own header has
        // nothing but kind, flags, size and instruction.
        assert_eq!(encode(&[btf(9, 9)]).len(), BTF_LOAD_LEN);
        assert_eq!(encode(&[tail_entry(8, 4)]).len(), TAIL_ENTRY_LEN);
    }

    #[test]
    fn the_header_word_is_kind_flags_and_size_in_8_byte_units() {
        let w = header_word(RecordKind::Exit, FLAG_PACKET_UNCHANGED, EXIT_UNCHANGED_LEN) as u32;
        let b = w.to_le_bytes();
        assert_eq!(b[0], RecordKind::Exit as u8);
        assert_eq!(b[1], FLAG_PACKET_UNCHANGED);
        assert_eq!(
            u16::from_le_bytes([b[2], b[3]]) as usize * 8,
            EXIT_UNCHANGED_LEN
        );
        let big = header_word(RecordKind::Entry, 0, MAX_RECORD_LEN) as u32;
        assert_eq!(big >> 16, u16::MAX as u32);
        assert_eq!(out_cap_arg(OUT_CAP_MAX, 5) as u32, OUT_CAP_MAX | 5 << 24);
    }

    #[test]
    fn huge_lengths_and_capacities_do_not_panic() {
        let base = encode(&blob());
        // Overwrite every 4-byte field with huge values.
        for off in (0..base.len().saturating_sub(3)).step_by(4) {
            for v in [u32::MAX, u32::MAX - 1, 0x8000_0000, 0xffff] {
                let mut b = base.clone();
                b[off..off + 4].copy_from_slice(&v.to_le_bytes());
                let _ = decode(&b);
            }
        }
    }
}
