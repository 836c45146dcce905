//! The context a program is called with, per program type, and the kernel's
//! context conversion: which fields a program may read or write, and what a
//! load of `xdp_md->data` or `__sk_buff->data_end` really yields (a pointer
//! into the packet region, not the 32-bit field).
//!
//! Layouts follow `/usr/include/linux/bpf.h` (`struct xdp_md`,
//! `struct __sk_buff`) and the kernel's `*_is_valid_access` functions in
//! `net/core/filter.c` and `kernel/trace/bpf_trace.c`.

use super::fault::FaultKind;
use super::memory::PacketPointers;

/// Which kernel program family reads an `__sk_buff`: they differ in the
/// fields they may read and write and in whether the packet is writable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SkbProgram {
    /// `BPF_PROG_TYPE_SOCKET_FILTER`: no direct packet access, writes only `cb`.
    SocketFilter,
    /// `BPF_PROG_TYPE_SCHED_CLS` / `SCHED_ACT` (TC): packet writable.
    Tc,
    /// `BPF_PROG_TYPE_CGROUP_SKB`: packet read-only.
    CgroupSkb,
}

/// What kind of raw, read-only context a tracing program gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RawContext {
    /// A tracepoint's raw record (`BPF_PROG_TYPE_TRACEPOINT`).
    Tracepoint,
    /// `struct pt_regs` (x86-64) for kprobes and uprobes.
    PtRegs,
    /// `u64 args[]` of a raw tracepoint.
    RawTracepoint,
    /// Any other bytes, read-only.
    Bytes,
}

/// How the context region's fields are accessed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ContextLayout {
    Xdp,
    SkBuff(SkbProgram),
    Raw(RawContext),
}

/// `struct xdp_md` offsets.
pub mod xdp_md {
    pub const DATA: i64 = 0;
    pub const DATA_END: i64 = 4;
    pub const DATA_META: i64 = 8;
    pub const INGRESS_IFINDEX: i64 = 12;
    pub const RX_QUEUE_INDEX: i64 = 16;
    pub const EGRESS_IFINDEX: i64 = 20;
    pub const SIZE: usize = 24;
}

/// `struct __sk_buff` offsets.
pub mod sk_buff {
    pub const LEN: i64 = 0;
    pub const PKT_TYPE: i64 = 4;
    pub const MARK: i64 = 8;
    pub const QUEUE_MAPPING: i64 = 12;
    pub const PROTOCOL: i64 = 16;
    pub const VLAN_PRESENT: i64 = 20;
    pub const VLAN_TCI: i64 = 24;
    pub const VLAN_PROTO: i64 = 28;
    pub const PRIORITY: i64 = 32;
    pub const INGRESS_IFINDEX: i64 = 36;
    pub const IFINDEX: i64 = 40;
    pub const TC_INDEX: i64 = 44;
    pub const CB: i64 = 48;
    pub const HASH: i64 = 68;
    pub const TC_CLASSID: i64 = 72;
    pub const DATA: i64 = 76;
    pub const DATA_END: i64 = 80;
    pub const NAPI_ID: i64 = 84;
    pub const FAMILY: i64 = 88;
    pub const REMOTE_IP4: i64 = 92;
    pub const LOCAL_IP4: i64 = 96;
    pub const REMOTE_IP6: i64 = 100;
    pub const LOCAL_IP6: i64 = 116;
    pub const REMOTE_PORT: i64 = 132;
    pub const LOCAL_PORT: i64 = 136;
    pub const DATA_META: i64 = 140;
    pub const FLOW_KEYS: i64 = 144;
    pub const TSTAMP: i64 = 152;
    pub const WIRE_LEN: i64 = 160;
    pub const GSO_SEGS: i64 = 164;
    pub const SK: i64 = 168;
    pub const GSO_SIZE: i64 = 176;
    pub const TSTAMP_TYPE: i64 = 180;
    pub const HWTSTAMP: i64 = 184;
    pub const SIZE: usize = 192;
}

/// Size of x86-64 `struct pt_regs` (21 registers).
pub const PT_REGS_SIZE: usize = 21 * 8;

fn bad(offset: i64, size: usize, write: bool, why: &'static str) -> FaultKind {
    FaultKind::BadContextAccess {
        offset,
        size,
        write,
        why,
    }
}

/// One `__sk_buff` field as the kernel's access check sees it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SkbField {
    /// A 32-bit value; narrow reads allowed.
    U32,
    /// `cb[0..5]`: any aligned size inside the array.
    Cb,
    /// A 64-bit value (tstamp, hwtstamp).
    U64,
    /// Loads as a packet pointer; exactly 4-byte loads.
    Data,
    DataEnd,
    DataMeta,
    /// `len`: the current packet length.
    Len,
    /// A kernel pointer bpfrr does not model (`flow_keys`, `sk`).
    Unmodeled,
    /// Padding.
    Hole,
}

/// Field at `off` of `__sk_buff`: (start, size, kind).
fn skb_field(off: i64) -> (i64, i64, SkbField) {
    use sk_buff::*;
    match off {
        LEN..4 => (LEN, 4, SkbField::Len),
        CB..HASH => (CB, 20, SkbField::Cb),
        DATA..DATA_END => (DATA, 4, SkbField::Data),
        DATA_END..NAPI_ID => (DATA_END, 4, SkbField::DataEnd),
        DATA_META..FLOW_KEYS => (DATA_META, 4, SkbField::DataMeta),
        FLOW_KEYS..TSTAMP => (FLOW_KEYS, 8, SkbField::Unmodeled),
        TSTAMP..WIRE_LEN => (TSTAMP, 8, SkbField::U64),
        SK..GSO_SIZE => (SK, 8, SkbField::Unmodeled),
        TSTAMP_TYPE..181 => (TSTAMP_TYPE, 1, SkbField::U32),
        181..HWTSTAMP => (181, 3, SkbField::Hole),
        HWTSTAMP..192 => (HWTSTAMP, 8, SkbField::U64),
        o if (4..sk_buff::SIZE as i64).contains(&o) => (o & !3, 4, SkbField::U32),
        _ => (off, 0, SkbField::Hole),
    }
}

fn skb_readable(prog: SkbProgram, field_start: i64) -> bool {
    use sk_buff::*;
    match prog {
        SkbProgram::SocketFilter => {
            !matches!(
                field_start,
                TC_CLASSID | DATA | DATA_END | DATA_META | TSTAMP | WIRE_LEN | HWTSTAMP
            ) && !(FAMILY..=LOCAL_PORT).contains(&field_start)
        }
        SkbProgram::Tc => !(FAMILY..=LOCAL_PORT).contains(&field_start),
        SkbProgram::CgroupSkb => !matches!(field_start, TC_CLASSID | DATA_META | WIRE_LEN),
    }
}

fn skb_writable(prog: SkbProgram, field_start: i64) -> bool {
    use sk_buff::*;
    match prog {
        SkbProgram::SocketFilter => field_start == CB,
        SkbProgram::Tc => matches!(
            field_start,
            MARK | TC_INDEX | PRIORITY | CB | TC_CLASSID | TSTAMP | QUEUE_MAPPING
        ),
        SkbProgram::CgroupSkb => matches!(field_start, MARK | PRIORITY | CB | TSTAMP),
    }
}

impl ContextLayout {
    /// Size of the context structure.
    pub fn size(&self) -> Option<usize> {
        match self {
            ContextLayout::Xdp => Some(xdp_md::SIZE),
            ContextLayout::SkBuff(_) => Some(sk_buff::SIZE),
            ContextLayout::Raw(_) => None,
        }
    }

    fn check_basic(offset: i64, size: usize, len: usize, write: bool) -> Result<(), FaultKind> {
        if offset < 0 || offset + size as i64 > len as i64 {
            return Err(bad(
                offset,
                size,
                write,
                "it lies outside the context structure",
            ));
        }
        if offset % size as i64 != 0 {
            return Err(bad(offset, size, write, "it is not aligned to its size"));
        }
        Ok(())
    }

    /// A load from the context (`bytes`), converted as the kernel does;
    /// `packet` is the run's packet, if it has one.
    pub(crate) fn load(
        &self,
        packet: Option<PacketPointers>,
        bytes: &[u8],
        offset: i64,
        size: usize,
    ) -> Result<u64, FaultKind> {
        Self::check_basic(offset, size, bytes.len(), false)?;
        let raw = || {
            let mut a = [0u8; 8];
            a[..size].copy_from_slice(&bytes[offset as usize..offset as usize + size]);
            u64::from_le_bytes(a)
        };
        let packet = || packet.ok_or_else(|| bad(offset, size, false, "this run has no packet"));
        match *self {
            ContextLayout::Raw(_) => Ok(raw()),
            ContextLayout::Xdp => {
                if size != 4 {
                    return Err(bad(
                        offset,
                        size,
                        false,
                        "xdp_md fields are read with 4-byte loads",
                    ));
                }
                match offset {
                    xdp_md::DATA => Ok(packet()?.data),
                    xdp_md::DATA_END => Ok(packet()?.end),
                    xdp_md::DATA_META => Ok(packet()?.meta),
                    _ => Ok(raw()),
                }
            }
            ContextLayout::SkBuff(prog) => {
                let (start, fsize, kind) = skb_field(offset);
                if !skb_readable(prog, start) {
                    return Err(bad(
                        offset,
                        size,
                        false,
                        "this program type may not read that __sk_buff field",
                    ));
                }
                let whole = offset == start && size as i64 == fsize;
                match kind {
                    SkbField::Hole => Err(bad(
                        offset,
                        size,
                        false,
                        "there is no __sk_buff field there",
                    )),
                    SkbField::Unmodeled => Err(bad(
                        offset,
                        size,
                        false,
                        "bpfrr does not model this kernel pointer field",
                    )),
                    SkbField::Data | SkbField::DataEnd | SkbField::DataMeta if size != 4 => {
                        Err(bad(
                            offset,
                            size,
                            false,
                            "packet pointers are read with 4-byte loads",
                        ))
                    }
                    SkbField::Data => Ok(packet()?.data),
                    SkbField::DataEnd => Ok(packet()?.end),
                    SkbField::DataMeta => Ok(packet()?.meta),
                    SkbField::U64 if !whole => Err(bad(
                        offset,
                        size,
                        false,
                        "this field is read with 8-byte loads",
                    )),
                    SkbField::Len => {
                        let p = packet()?;
                        let len = p.end.wrapping_sub(p.data);
                        Ok((len >> (8 * offset as u64)) & mask(size))
                    }
                    SkbField::Cb | SkbField::U32 | SkbField::U64 => {
                        if kind == SkbField::U32 && offset + size as i64 > start + fsize {
                            return Err(bad(offset, size, false, "the load spans two fields"));
                        }
                        Ok(raw())
                    }
                }
            }
        }
    }

    /// Whether a store of `size` bytes at `offset` is allowed.
    pub(crate) fn check_store(&self, offset: i64, size: usize) -> Result<(), FaultKind> {
        let len = self.size().unwrap_or(0);
        Self::check_basic(offset, size, len.max(offset.max(0) as usize + size), true)?;
        match *self {
            ContextLayout::Raw(_) => Err(bad(offset, size, true, "this context is read-only")),
            ContextLayout::Xdp => Err(bad(offset, size, true, "xdp_md is read-only")),
            ContextLayout::SkBuff(prog) => {
                if offset + size as i64 > sk_buff::SIZE as i64 {
                    return Err(bad(
                        offset,
                        size,
                        true,
                        "it lies outside the context structure",
                    ));
                }
                let (start, fsize, kind) = skb_field(offset);
                if !skb_writable(prog, start) {
                    return Err(bad(
                        offset,
                        size,
                        true,
                        "this program type may not write that __sk_buff field",
                    ));
                }
                match kind {
                    SkbField::Cb if offset + size as i64 <= start + fsize => Ok(()),
                    SkbField::U32 if offset == start && size == 4 => Ok(()),
                    SkbField::U64 if offset == start && size == 8 => Ok(()),
                    _ => Err(bad(offset, size, true, "writes must cover the whole field")),
                }
            }
        }
    }
}

fn mask(size: usize) -> u64 {
    if size >= 8 {
        u64::MAX
    } else {
        (1u64 << (8 * size)) - 1
    }
}

/// Extra `xdp_md` fields.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XdpMd {
    pub ingress_ifindex: u32,
    pub rx_queue_index: u32,
    pub egress_ifindex: u32,
}

/// The `__sk_buff` fields that are plain values (the packet pointers and
/// `len` come from the packet).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SkBuff {
    pub pkt_type: u32,
    pub mark: u32,
    pub queue_mapping: u32,
    /// `skb->protocol` in network byte order, as the field holds it.
    pub protocol: u32,
    pub vlan_present: u32,
    pub vlan_tci: u32,
    pub vlan_proto: u32,
    pub priority: u32,
    pub ingress_ifindex: u32,
    pub ifindex: u32,
    pub tc_index: u32,
    pub cb: [u32; 5],
    pub hash: u32,
    pub tc_classid: u32,
    pub napi_id: u32,
    pub family: u32,
    pub remote_ip4: u32,
    pub local_ip4: u32,
    pub remote_ip6: [u32; 4],
    pub local_ip6: [u32; 4],
    pub remote_port: u32,
    pub local_port: u32,
    pub tstamp: u64,
    pub wire_len: u32,
    pub gso_segs: u32,
    pub gso_size: u32,
    pub tstamp_type: u8,
    pub hwtstamp: u64,
}

impl SkBuff {
    /// The struct's bytes (pointer fields zero; they are computed on load).
    pub fn to_bytes(&self) -> Vec<u8> {
        use sk_buff::*;
        let mut b = vec![0u8; SIZE];
        let mut put =
            |off: i64, v: u32| b[off as usize..off as usize + 4].copy_from_slice(&v.to_le_bytes());
        put(PKT_TYPE, self.pkt_type);
        put(MARK, self.mark);
        put(QUEUE_MAPPING, self.queue_mapping);
        put(PROTOCOL, self.protocol);
        put(VLAN_PRESENT, self.vlan_present);
        put(VLAN_TCI, self.vlan_tci);
        put(VLAN_PROTO, self.vlan_proto);
        put(PRIORITY, self.priority);
        put(INGRESS_IFINDEX, self.ingress_ifindex);
        put(IFINDEX, self.ifindex);
        put(TC_INDEX, self.tc_index);
        for (i, v) in self.cb.iter().enumerate() {
            put(CB + 4 * i as i64, *v);
        }
        put(HASH, self.hash);
        put(TC_CLASSID, self.tc_classid);
        put(NAPI_ID, self.napi_id);
        put(FAMILY, self.family);
        put(REMOTE_IP4, self.remote_ip4);
        put(LOCAL_IP4, self.local_ip4);
        for i in 0..4 {
            put(REMOTE_IP6 + 4 * i as i64, self.remote_ip6[i]);
            put(LOCAL_IP6 + 4 * i as i64, self.local_ip6[i]);
        }
        put(REMOTE_PORT, self.remote_port);
        put(LOCAL_PORT, self.local_port);
        put(WIRE_LEN, self.wire_len);
        put(GSO_SEGS, self.gso_segs);
        put(GSO_SIZE, self.gso_size);
        b[TSTAMP as usize..TSTAMP as usize + 8].copy_from_slice(&self.tstamp.to_le_bytes());
        b[HWTSTAMP as usize..HWTSTAMP as usize + 8].copy_from_slice(&self.hwtstamp.to_le_bytes());
        b[TSTAMP_TYPE as usize] = self.tstamp_type;
        b
    }
}

/// The packet buffer of a run: headroom, metadata, data, tailroom.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PacketSetup {
    pub buffer: Vec<u8>,
    pub meta: u32,
    pub data: u32,
    pub end: u32,
    pub writable: bool,
}

/// XDP headroom the kernel reserves in front of the packet (`XDP_PACKET_HEADROOM`).
pub const XDP_HEADROOM: usize = 256;
/// Room after an XDP packet for `xdp_adjust_tail`, as in `BPF_PROG_TEST_RUN`
/// (a 4096-byte frame minus headroom and `skb_shared_info`).
pub const XDP_FRAME: usize = 4096;
const SKB_SHARED_INFO: usize = 320;
/// Headroom of an skb built by `BPF_PROG_TEST_RUN` (`NET_SKB_PAD`).
pub const SKB_HEADROOM: usize = 64;

/// What a program is called with: the context structure and, for packet
/// programs, the packet. Built once per invocation; the machine copies it
/// into its memory regions when the run starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Context {
    pub(crate) layout: Option<ContextLayout>,
    pub(crate) bytes: Vec<u8>,
    pub(crate) packet: Option<PacketSetup>,
    /// Conformance input memory: r1 = its address, r2 = its length.
    pub(crate) input: Option<Vec<u8>>,
}

fn packet_buffer(
    headroom: usize,
    meta: &[u8],
    data: &[u8],
    tailroom: usize,
    writable: bool,
) -> PacketSetup {
    let headroom = headroom.max(meta.len());
    let mut buffer = vec![0u8; headroom + data.len() + tailroom];
    let d = headroom;
    buffer[d - meta.len()..d].copy_from_slice(meta);
    buffer[d..d + data.len()].copy_from_slice(data);
    PacketSetup {
        buffer,
        meta: (d - meta.len()) as u32,
        data: d as u32,
        end: (d + data.len()) as u32,
        writable,
    }
}

impl Context {
    /// No context at all: r1 = 0.
    pub fn none() -> Context {
        Context {
            layout: None,
            bytes: Vec::new(),
            packet: None,
            input: None,
        }
    }

    /// The conformance suites' convention: r1 = address of a writable copy
    /// of `mem`, r2 = its length (both 0 when `mem` is empty).
    pub fn memory(mem: Vec<u8>) -> Context {
        Context {
            input: (!mem.is_empty()).then_some(mem),
            ..Context::none()
        }
    }

    /// An XDP context (`struct xdp_md`) over `packet`, with `meta` in front
    /// of it (data_meta), 256 bytes of headroom and room to grow to a 4 KiB frame.
    pub fn xdp(packet: &[u8], meta: &[u8], md: XdpMd) -> Context {
        let tailroom = XDP_FRAME.saturating_sub(XDP_HEADROOM + SKB_SHARED_INFO + packet.len());
        let mut bytes = vec![0u8; xdp_md::SIZE];
        for (off, v) in [
            (xdp_md::INGRESS_IFINDEX, md.ingress_ifindex),
            (xdp_md::RX_QUEUE_INDEX, md.rx_queue_index),
            (xdp_md::EGRESS_IFINDEX, md.egress_ifindex),
        ] {
            bytes[off as usize..off as usize + 4].copy_from_slice(&v.to_le_bytes());
        }
        Context {
            layout: Some(ContextLayout::Xdp),
            bytes,
            packet: Some(packet_buffer(XDP_HEADROOM, meta, packet, tailroom, true)),
            input: None,
        }
    }

    /// An `__sk_buff` context over `packet` (skb->data points at its first byte).
    pub fn skb(program: SkbProgram, packet: &[u8], fields: SkBuff) -> Context {
        let writable = program == SkbProgram::Tc;
        Context {
            layout: Some(ContextLayout::SkBuff(program)),
            bytes: fields.to_bytes(),
            packet: Some(packet_buffer(SKB_HEADROOM, &[], packet, 0, writable)),
            input: None,
        }
    }

    /// The `__sk_buff` `BPF_PROG_TEST_RUN` builds from an Ethernet frame:
    /// the device is loopback (ifindex 1), `protocol` is the frame's
    /// EtherType, `pkt_type` follows the destination MAC, and for socket
    /// filters (not layer 2) skb->data starts after the 14-byte Ethernet header.
    pub fn skb_test_run(program: SkbProgram, frame: &[u8]) -> Context {
        const ETH_HLEN: usize = 14;
        let mut f = SkBuff {
            ifindex: 1,
            wire_len: frame.len() as u32,
            gso_segs: 1,
            ..SkBuff::default()
        };
        if frame.len() >= ETH_HLEN {
            f.protocol = u16::from_be_bytes([frame[12], frame[13]]).to_be() as u32;
            let dst = &frame[0..6];
            f.pkt_type = if dst.iter().all(|&b| b == 0xff) {
                1 // PACKET_BROADCAST
            } else if dst[0] & 1 == 1 {
                2 // PACKET_MULTICAST
            } else if dst.iter().all(|&b| b == 0) {
                0 // PACKET_HOST: loopback's address is all zeros
            } else {
                3 // PACKET_OTHERHOST
            };
        }
        let data = if program == SkbProgram::Tc || frame.len() < ETH_HLEN {
            frame
        } else {
            &frame[ETH_HLEN..]
        };
        let mut ctx = Context::skb(program, data, f);
        if program != SkbProgram::Tc
            && frame.len() >= ETH_HLEN
            && let Some(p) = &mut ctx.packet
        {
            // The Ethernet header is still in the buffer, just before data.
            p.buffer[p.data as usize - ETH_HLEN..p.data as usize]
                .copy_from_slice(&frame[..ETH_HLEN]);
            p.meta = p.data;
        }
        ctx
    }

    /// A tracepoint's raw record.
    pub fn tracepoint(record: Vec<u8>) -> Context {
        Context::raw_kind(RawContext::Tracepoint, record)
    }

    /// x86-64 `struct pt_regs` (21 u64 registers: r15, r14, r13, r12, rbp,
    /// rbx, r11, r10, r9, r8, rax, rcx, rdx, rsi, rdi, orig_rax, rip, cs,
    /// eflags, rsp, ss) for kprobes and uprobes.
    pub fn pt_regs(regs: &[u64; 21]) -> Context {
        Context::raw_kind(
            RawContext::PtRegs,
            regs.iter().flat_map(|r| r.to_le_bytes()).collect(),
        )
    }

    /// A raw tracepoint's `u64 args[]`.
    pub fn raw_tracepoint(args: &[u64]) -> Context {
        Context::raw_kind(
            RawContext::RawTracepoint,
            args.iter().flat_map(|r| r.to_le_bytes()).collect(),
        )
    }

    /// Any bytes, read-only, loaded as they are.
    pub fn raw(bytes: Vec<u8>) -> Context {
        Context::raw_kind(RawContext::Bytes, bytes)
    }

    fn raw_kind(kind: RawContext, bytes: Vec<u8>) -> Context {
        Context {
            layout: Some(ContextLayout::Raw(kind)),
            bytes,
            packet: None,
            input: None,
        }
    }

    /// The context layout (None for `none` and `memory`).
    pub fn layout(&self) -> Option<ContextLayout> {
        self.layout
    }
}
