//! One register's abstract state as the verifier prints it, e.g.
//! `scalar(smin=smin32=0,smax=umax=smax32=umax32=255,var_off=(0x0; 0xff))`,
//! `pkt(off=14,r=14)`, `map_value_or_null(id=1,map=verdicts,ks=4,vs=8)`,
//! `fp[0]-24`, `P0xffffffff`, `trusted_ptr_task_struct()`.
//!
//! Kernel differences handled here: liveness suffixes (`R1_w=`, before
//! 6.12), `inv` for scalars (before 5.18), the old `umax_value=` style
//! names, decimal or hex numbers (hex above 16 bits since 6.8).

use std::fmt;

use serde::Serialize;

/// A tristate number: bits set in `mask` are unknown, the others equal
/// the bits of `value` (the kernel's `struct tnum`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Tnum {
    pub value: u64,
    pub mask: u64,
}

impl Tnum {
    /// Nothing known.
    pub const UNKNOWN: Tnum = Tnum {
        value: 0,
        mask: u64::MAX,
    };

    pub fn constant(value: u64) -> Tnum {
        Tnum { value, mask: 0 }
    }

    /// Whether `x` agrees with every known bit.
    pub fn contains(&self, x: u64) -> bool {
        x & !self.mask == self.value & !self.mask
    }

    pub fn is_const(&self) -> bool {
        self.mask == 0
    }
}

/// The numeric knowledge about a scalar (or the variable part of a
/// pointer's offset): 64-bit and 32-bit signed and unsigned ranges and the
/// known bits. Fields the kernel omitted from the log hold their
/// "unbounded" value, exactly as the kernel keeps them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ScalarBounds {
    pub smin: i64,
    pub smax: i64,
    pub umin: u64,
    pub umax: u64,
    pub smin32: i32,
    pub smax32: i32,
    pub umin32: u32,
    pub umax32: u32,
    pub var_off: Tnum,
}

impl Default for ScalarBounds {
    fn default() -> Self {
        ScalarBounds::UNKNOWN
    }
}

impl ScalarBounds {
    /// Nothing known (`scalar()`).
    pub const UNKNOWN: ScalarBounds = ScalarBounds {
        smin: i64::MIN,
        smax: i64::MAX,
        umin: 0,
        umax: u64::MAX,
        smin32: i32::MIN,
        smax32: i32::MAX,
        umin32: 0,
        umax32: u32::MAX,
        var_off: Tnum::UNKNOWN,
    };

    /// Exactly `v`.
    pub fn constant(v: u64) -> ScalarBounds {
        ScalarBounds {
            smin: v as i64,
            smax: v as i64,
            umin: v,
            umax: v,
            smin32: v as u32 as i32,
            smax32: v as u32 as i32,
            umin32: v as u32,
            umax32: v as u32,
            var_off: Tnum::constant(v),
        }
    }

    /// The value when only one is possible.
    pub fn as_const(&self) -> Option<u64> {
        if self.var_off.is_const() {
            Some(self.var_off.value)
        } else if self.umin == self.umax {
            Some(self.umin)
        } else {
            None
        }
    }

    pub fn is_unknown(&self) -> bool {
        *self == ScalarBounds::UNKNOWN
    }

    /// Whether the concrete 64-bit value `v` satisfies every bound.
    pub fn contains(&self, v: u64) -> bool {
        let s = v as i64;
        let w = v as u32;
        let sw = w as i32;
        self.var_off.contains(v)
            && (self.umin..=self.umax).contains(&v)
            && (self.smin..=self.smax).contains(&s)
            && (self.umin32..=self.umax32).contains(&w)
            && (self.smin32..=self.smax32).contains(&sw)
    }

    /// Sets one bound by its log name (`smin`, `umax32`, `var_off`...;
    /// also the pre-5.x names `umin_value`, `s32_max_value`...). `raw` is
    /// the number's 64 bits as printed. Returns false for unknown names.
    fn set(&mut self, name: &str, raw: u64) -> bool {
        match name {
            "smin" | "smin_value" => self.smin = raw as i64,
            "smax" | "smax_value" => self.smax = raw as i64,
            "umin" | "umin_value" => self.umin = raw,
            "umax" | "umax_value" => self.umax = raw,
            "smin32" | "s32_min_value" => self.smin32 = raw as u32 as i32,
            "smax32" | "s32_max_value" => self.smax32 = raw as u32 as i32,
            "umin32" | "u32_min_value" => self.umin32 = raw as u32,
            "umax32" | "u32_max_value" => self.umax32 = raw as u32,
            _ => return false,
        }
        true
    }
}

/// The base type of a register (the kernel's `enum bpf_reg_type` without
/// its flag bits).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum RegKind {
    /// Never written (`?`); the log omits such registers.
    NotInit,
    Scalar,
    Ctx,
    /// `map_ptr`: the map itself (`ld_imm64` of a map).
    MapPtr,
    MapValue,
    MapKey,
    /// `fp`: a pointer into a stack frame.
    Stack,
    /// `pkt`: `xdp_md->data` / `skb->data` plus an offset.
    Packet,
    PacketMeta,
    PacketEnd,
    FlowKeys,
    Socket,
    SockCommon,
    TcpSock,
    TpBuffer,
    XdpSock,
    /// `ptr_<type>`: a pointer to a kernel object with BTF type `<type>`.
    Btf(String),
    /// `mem`: memory a helper returned (ring buffer records, per-CPU ...).
    Mem,
    Arena,
    Buf,
    Func,
    DynptrPtr,
    /// A type this parser does not know (a newer kernel); its printed name.
    Other(String),
}

impl RegKind {
    fn from_base(name: &str) -> RegKind {
        match name {
            "?" => RegKind::NotInit,
            "scalar" | "inv" => RegKind::Scalar,
            "ctx" => RegKind::Ctx,
            "map_ptr" => RegKind::MapPtr,
            "map_value" => RegKind::MapValue,
            "map_key" => RegKind::MapKey,
            "fp" => RegKind::Stack,
            "pkt" => RegKind::Packet,
            "pkt_meta" => RegKind::PacketMeta,
            "pkt_end" => RegKind::PacketEnd,
            "flow_keys" => RegKind::FlowKeys,
            "sock" => RegKind::Socket,
            "sock_common" => RegKind::SockCommon,
            "tcp_sock" => RegKind::TcpSock,
            "tp_buffer" => RegKind::TpBuffer,
            "xdp_sock" => RegKind::XdpSock,
            "mem" => RegKind::Mem,
            "arena" => RegKind::Arena,
            "buf" => RegKind::Buf,
            "func" => RegKind::Func,
            "dynptr_ptr" => RegKind::DynptrPtr,
            other => RegKind::Other(other.to_string()),
        }
    }

    /// The base name as the kernel prints it (`ptr_task_struct` for BTF).
    pub fn name(&self) -> String {
        match self {
            RegKind::NotInit => "?".into(),
            RegKind::Scalar => "scalar".into(),
            RegKind::Ctx => "ctx".into(),
            RegKind::MapPtr => "map_ptr".into(),
            RegKind::MapValue => "map_value".into(),
            RegKind::MapKey => "map_key".into(),
            RegKind::Stack => "fp".into(),
            RegKind::Packet => "pkt".into(),
            RegKind::PacketMeta => "pkt_meta".into(),
            RegKind::PacketEnd => "pkt_end".into(),
            RegKind::FlowKeys => "flow_keys".into(),
            RegKind::Socket => "sock".into(),
            RegKind::SockCommon => "sock_common".into(),
            RegKind::TcpSock => "tcp_sock".into(),
            RegKind::TpBuffer => "tp_buffer".into(),
            RegKind::XdpSock => "xdp_sock".into(),
            RegKind::Btf(t) => format!("ptr_{t}"),
            RegKind::Mem => "mem".into(),
            RegKind::Arena => "arena".into(),
            RegKind::Buf => "buf".into(),
            RegKind::Func => "func".into(),
            RegKind::DynptrPtr => "dynptr_ptr".into(),
            RegKind::Other(s) => s.clone(),
        }
    }

    pub fn is_packet(&self) -> bool {
        matches!(
            self,
            RegKind::Packet | RegKind::PacketMeta | RegKind::PacketEnd
        )
    }
}

/// The flag bits printed as prefixes and a suffix of the type name
/// (`rdonly_`, `ringbuf_`, `user_`, `percpu_`, `rcu_`, `untrusted_`,
/// `trusted_`, `_or_null`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PtrFlags {
    pub or_null: bool,
    pub rdonly: bool,
    pub ringbuf: bool,
    pub user: bool,
    pub percpu: bool,
    pub rcu: bool,
    pub untrusted: bool,
    pub trusted: bool,
}

const PREFIXES: [&str; 7] = [
    "rdonly_",
    "ringbuf_",
    "user_",
    "percpu_",
    "rcu_",
    "untrusted_",
    "trusted_",
];

impl PtrFlags {
    fn set_prefix(&mut self, i: usize) {
        match i {
            0 => self.rdonly = true,
            1 => self.ringbuf = true,
            2 => self.user = true,
            3 => self.percpu = true,
            4 => self.rcu = true,
            5 => self.untrusted = true,
            _ => self.trusted = true,
        }
    }

    fn prefix_string(&self) -> String {
        let on = [
            self.rdonly,
            self.ringbuf,
            self.user,
            self.percpu,
            self.rcu,
            self.untrusted,
            self.trusted,
        ];
        PREFIXES
            .iter()
            .zip(on)
            .filter(|(_, on)| *on)
            .map(|(p, _)| *p)
            .collect()
    }
}

/// The map a `map_ptr` / `map_value` / `map_key` register refers to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MapRef {
    /// The map's name (since 6.8; `None` before, or for unnamed maps).
    pub name: Option<String>,
    pub key_size: u32,
    pub value_size: u32,
}

/// One register's abstract state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RegState {
    pub kind: RegKind,
    pub flags: PtrFlags,
    /// `P`: the verifier tracks this scalar's exact value (precision mark).
    pub precise: bool,
    /// `id=`: registers sharing an id were copied from each other (or are
    /// the same possibly-NULL pointer).
    pub id: Option<u32>,
    /// `id=N+K`: a scalar known to equal register id N plus the constant K.
    pub id_delta: Option<i64>,
    /// `ref_obj_id=`: the acquired reference this pointer holds.
    pub ref_obj_id: Option<u32>,
    /// `off=`: the pointer's fixed offset (for `fp-24`, -24).
    pub off: i64,
    /// `r=`: bytes known to be in the packet after this packet pointer.
    pub range: Option<u64>,
    pub map: Option<MapRef>,
    /// `sz=`: the size of the memory a `mem` pointer points to.
    pub mem_size: Option<u64>,
    /// `fp[N]`: the frame a stack pointer points into, when not the
    /// register's own frame.
    pub frameno: Option<u32>,
    pub non_own_ref: bool,
    /// `type=` of a `dynptr_ptr`.
    pub dynptr_type: Option<String>,
    /// The scalar's value, or the variable part of a pointer's offset.
    pub bounds: ScalarBounds,
    /// Attributes this parser did not recognise, as printed.
    pub unknown_attrs: Vec<String>,
}

impl RegState {
    /// A register with nothing known but its kind.
    pub fn of_kind(kind: RegKind) -> RegState {
        RegState {
            kind,
            flags: PtrFlags::default(),
            precise: false,
            id: None,
            id_delta: None,
            ref_obj_id: None,
            off: 0,
            range: None,
            map: None,
            mem_size: None,
            frameno: None,
            non_own_ref: false,
            dynptr_type: None,
            bounds: ScalarBounds::UNKNOWN,
            unknown_attrs: Vec::new(),
        }
    }

    /// A known scalar constant.
    pub fn scalar_const(v: u64) -> RegState {
        RegState {
            bounds: ScalarBounds::constant(v),
            ..RegState::of_kind(RegKind::Scalar)
        }
    }

    pub fn is_scalar(&self) -> bool {
        self.kind == RegKind::Scalar
    }

    /// The full type name as the kernel prints it: `map_value_or_null`,
    /// `trusted_ptr_or_null_task_struct`, `rdonly_mem`.
    pub fn type_name(&self) -> String {
        let prefix = self.flags.prefix_string();
        match (&self.kind, self.flags.or_null) {
            (RegKind::Btf(t), true) => format!("{prefix}ptr_or_null_{t}"),
            (k, true) => format!("{prefix}{}_or_null", k.name()),
            (k, false) => format!("{prefix}{}", k.name()),
        }
    }

    /// Parses the text after `R1=` (or a spilled slot's register part).
    /// Returns None when it is not a register state.
    pub fn parse(text: &str) -> Option<RegState> {
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        let (precise, rest) = match text.strip_prefix('P') {
            Some(r) => (true, r),
            None => (false, text),
        };
        // A bare number: a constant scalar (`0`, `-1`, `0xffffffff`).
        if let Some(v) = parse_number(rest) {
            let mut r = RegState::scalar_const(v);
            r.precise = precise;
            return Some(r);
        }
        // Old kernels: `invP0`, `invP`, `inv5`.
        if let Some(old) = rest.strip_prefix("inv")
            && !old.starts_with('(')
        {
            let (p2, num) = match old.strip_prefix('P') {
                Some(n) => (true, n),
                None => (false, old),
            };
            let mut r = match parse_number(num) {
                Some(v) => RegState::scalar_const(v),
                None if num.is_empty() => RegState::of_kind(RegKind::Scalar),
                None => return None,
            };
            r.precise = precise || p2;
            return Some(r);
        }
        // name [ "[" frame "]" ] ( number | "(" attrs ")" | nothing )
        let name_end = if rest.starts_with("fp")
            && rest[2..].starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '[')
        {
            2 // `fp0`, `fp-24`, `fp[0]-24`
        } else {
            rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len())
        };
        let name = &rest[..name_end];
        if name.is_empty() || !name.starts_with(|c: char| c.is_ascii_lowercase()) {
            return None;
        }
        let mut r = RegState::of_kind(RegKind::Scalar);
        r.precise = precise;
        parse_type_name(name, &mut r);
        let mut tail = &rest[name_end..];
        if let Some(t) = tail.strip_prefix('[') {
            let close = t.find(']')?;
            r.frameno = Some(t[..close].parse().ok()?);
            tail = &t[close + 1..];
        }
        if tail.is_empty() {
            if r.kind != RegKind::Scalar {
                // A pointer printed bare (old kernels: `pkt_end`) has no variable part.
                r.bounds = ScalarBounds::constant(0);
            }
            return Some(r);
        }
        if let Some(inner) = tail.strip_prefix('(') {
            let inner = inner.strip_suffix(')')?;
            parse_attrs(inner, &mut r);
            return Some(r);
        }
        // `fp-24`, `fp0`: a stack pointer with a constant offset.
        let v = parse_number(tail)?;
        if r.kind == RegKind::Scalar {
            r.bounds = ScalarBounds::constant(v);
        } else {
            r.off = v as i64;
            r.bounds = ScalarBounds::constant(0);
        }
        Some(r)
    }

    /// A short form for listings: `pkt(off=14,r=14)`, `scalar(0..255)`,
    /// `0x8100`, `fp-24`, `map_value_or_null(id=1,map=verdicts)`.
    pub fn compact(&self) -> String {
        let mut s = String::new();
        if self.precise {
            s.push('P');
        }
        if self.kind == RegKind::Scalar {
            if let Some(v) = self.bounds.as_const() {
                s.push_str(&format_snum(v as i64));
                return s;
            }
            s.push_str("scalar");
            let range = compact_range(&self.bounds);
            if !range.is_empty() {
                s.push('(');
                s.push_str(&range);
                s.push(')');
            }
            return s;
        }
        s.push_str(&self.type_name());
        if self.kind == RegKind::Stack {
            if let Some(f) = self.frameno {
                s.push_str(&format!("[{f}]"));
            }
            if self.bounds.as_const() == Some(0) || self.bounds.is_unknown() {
                s.push_str(&self.off.to_string());
                if self.bounds.is_unknown() {
                    s.push_str("+var");
                }
                return s;
            }
        }
        let mut attrs = Vec::new();
        if let Some(id) = self.id {
            attrs.push(format!("id={id}"));
        }
        if let Some(r) = self.ref_obj_id {
            attrs.push(format!("ref={r}"));
        }
        if let Some(m) = &self.map
            && let Some(n) = &m.name
        {
            attrs.push(format!("map={n}"));
        }
        if self.off != 0 || self.range.is_some() {
            attrs.push(format!("off={}", self.off));
        }
        if let Some(r) = self.range {
            attrs.push(format!("r={r}"));
        }
        if let Some(sz) = self.mem_size {
            attrs.push(format!("sz={sz}"));
        }
        if self.bounds.as_const() != Some(0) && !self.bounds.is_unknown() {
            let range = compact_range(&self.bounds);
            if !range.is_empty() {
                attrs.push(format!("var={range}"));
            }
        }
        if !attrs.is_empty() {
            s.push('(');
            s.push_str(&attrs.join(","));
            s.push(')');
        }
        s
    }
}

impl fmt::Display for RegState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.compact())
    }
}

/// `0..255`, `-5000..60535`, or "" when nothing is known.
fn compact_range(b: &ScalarBounds) -> String {
    if (b.umin != 0 || b.umax != u64::MAX) && (b.umax <= i64::MAX as u64 || b.smin == i64::MIN) {
        return format!("{}..{}", format_unum(b.umin), format_unum(b.umax));
    }
    if b.smin != i64::MIN || b.smax != i64::MAX {
        return format!("{}..{}", format_snum(b.smin), format_snum(b.smax));
    }
    if b.umin32 != 0 || b.umax32 != u32::MAX {
        return format!(
            "w:{}..{}",
            format_unum(b.umin32 as u64),
            format_unum(b.umax32 as u64)
        );
    }
    if b.var_off != Tnum::UNKNOWN {
        return format!("var_off=({:#x}; {:#x})", b.var_off.value, b.var_off.mask);
    }
    String::new()
}

/// Decimal up to 16 bits, hex above (as the kernel prints).
fn format_unum(v: u64) -> String {
    if v <= u16::MAX as u64 {
        v.to_string()
    } else {
        format!("{v:#x}")
    }
}

fn format_snum(v: i64) -> String {
    if (i16::MIN as i64..=i16::MAX as i64).contains(&v) {
        v.to_string()
    } else {
        format!("{:#x}", v as u64)
    }
}

/// A number as the kernel prints it: decimal (maybe negative) or `0x` hex.
/// Returns its 64 bits.
pub(crate) fn parse_number(s: &str) -> Option<u64> {
    let s = s.trim();
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        return u64::from_str_radix(h, 16).ok();
    }
    if let Some(neg) = s.strip_prefix('-') {
        if let Some(h) = neg.strip_prefix("0x") {
            return u64::from_str_radix(h, 16).ok().map(|v| v.wrapping_neg());
        }
        if neg.is_empty() || !neg.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        return neg.parse::<u64>().ok().map(|v| v.wrapping_neg());
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u64>().ok()
}

/// Splits `trusted_ptr_or_null_task_struct` / `map_value_or_null` /
/// `rdonly_mem` into kind and flags.
fn parse_type_name(name: &str, r: &mut RegState) {
    let mut rest = name;
    // Prefixes come in a fixed order; a type name never starts with one.
    for (i, p) in PREFIXES.iter().enumerate() {
        if let Some(after) = rest.strip_prefix(p) {
            r.flags.set_prefix(i);
            rest = after;
        }
    }
    if let Some(t) = rest.strip_prefix("ptr_") {
        let t = match t.strip_prefix("or_null_") {
            Some(t) => {
                r.flags.or_null = true;
                t
            }
            None => t,
        };
        r.kind = RegKind::Btf(t.to_string());
        return;
    }
    // Old kernels printed `ptr_to_...`-less names and `_or_null` suffixes the same way.
    let base = match rest.strip_suffix("_or_null") {
        Some(b) => {
            r.flags.or_null = true;
            b
        }
        None => rest,
    };
    r.kind = RegKind::from_base(base);
}

/// Splits at commas outside parentheses.
pub(crate) fn split_top_level(s: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            c if c == sep && depth <= 0 => {
                out.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// `id=1,map=verdicts,ks=4,vs=8,off=8,smin=smin32=0,var_off=(0x0; 0xff)`.
fn parse_attrs(inner: &str, r: &mut RegState) {
    let mut map = MapRef::default();
    let mut has_map = false;
    let mut imm = None;
    for attr in split_top_level(inner, ',') {
        let attr = attr.trim();
        if attr.is_empty() {
            continue;
        }
        if attr == "non_own_ref" {
            r.non_own_ref = true;
            continue;
        }
        // `a=b=c=value`: every name but the last part shares the value.
        let parts: Vec<&str> = attr.split('=').collect();
        if parts.len() < 2 {
            r.unknown_attrs.push(attr.to_string());
            continue;
        }
        let (names, value) = parts.split_at(parts.len() - 1);
        let value = value[0];
        // `var_off=(0x0; 0xff)` has '=' nowhere inside, so `value` is whole.
        if names.len() == 1 {
            let name = names[0];
            let known = match name {
                "id" => {
                    // `id=3+4` (BPF_ADD_CONST): id 3 plus the constant 4.
                    let (id, delta) = match value.find(['+', '-']) {
                        Some(i) if i > 0 => (&value[..i], parse_number(&value[i..])),
                        _ => (value, None),
                    };
                    r.id = id.parse().ok().filter(|&i| i != 0);
                    r.id_delta = delta.map(|d| d as i64);
                    true
                }
                "ref_obj_id" | "ref_id" => {
                    r.ref_obj_id = value.parse().ok().filter(|&i| i != 0);
                    true
                }
                "map" => {
                    map.name = Some(value.to_string());
                    has_map = true;
                    true
                }
                "ks" => {
                    map.key_size = value.parse().unwrap_or(0);
                    has_map = true;
                    true
                }
                "vs" => {
                    map.value_size = value.parse().unwrap_or(0);
                    has_map = true;
                    true
                }
                "off" => {
                    r.off = parse_number(value).map_or(0, |v| v as i64);
                    true
                }
                "r" => {
                    r.range = parse_number(value);
                    true
                }
                "sz" => {
                    r.mem_size = parse_number(value);
                    true
                }
                "type" => {
                    r.dynptr_type = Some(value.to_string());
                    true
                }
                "imm" => {
                    // Old kernels print `imm=` in hex without 0x.
                    imm = parse_number(value)
                        .or_else(|| u64::from_str_radix(value, 16).ok())
                        .map(|v| v as i64);
                    true
                }
                "var_off" => {
                    if let Some(t) = parse_tnum(value) {
                        r.bounds.var_off = t;
                    }
                    true
                }
                _ => false,
            };
            if known {
                continue;
            }
        }
        let Some(v) = parse_number(value) else {
            r.unknown_attrs.push(attr.to_string());
            continue;
        };
        for name in names {
            if !r.bounds.set(name, v) {
                r.unknown_attrs.push(attr.to_string());
                break;
            }
        }
    }
    if has_map {
        r.map = Some(map);
    }
    match imm {
        // A pointer whose whole offset is known but too big for `off`.
        Some(v) if r.kind != RegKind::Scalar => r.bounds = ScalarBounds::constant(v as u64),
        Some(v) => r.bounds = ScalarBounds::constant(v as u64),
        None if r.kind != RegKind::Scalar && r.bounds.is_unknown() && !has_var_bounds(inner) => {
            // A pointer printed without ranges has a constant variable part 0.
            r.bounds = ScalarBounds::constant(0);
        }
        None => {}
    }
}

fn has_var_bounds(inner: &str) -> bool {
    ["smin", "smax", "umin", "umax", "var_off"]
        .iter()
        .any(|k| inner.contains(k))
}

/// `(0x0; 0xff)` or a constant `0x10`.
fn parse_tnum(s: &str) -> Option<Tnum> {
    let s = s.trim();
    if let Some(inner) = s.strip_prefix('(').and_then(|s| s.strip_suffix(')')) {
        let (a, b) = inner.split_once(';')?;
        return Some(Tnum {
            value: parse_number(a)?,
            mask: parse_number(b)?,
        });
    }
    parse_number(s).map(Tnum::constant)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(parse_number("0"), Some(0));
        assert_eq!(parse_number("-1"), Some(u64::MAX));
        assert_eq!(parse_number("0xffffffff"), Some(0xffff_ffff));
        assert_eq!(parse_number("-5000"), Some((-5000i64) as u64));
        assert_eq!(parse_number("+4"), Some(4));
        assert_eq!(parse_number("x"), None);
        assert_eq!(parse_number(""), None);
        assert_eq!(parse_number("-"), None);
    }

    #[test]
    fn scalar_with_ranges() {
        let r = RegState::parse(
            "scalar(smin=0,smax=umax=0xffffffff,smin32=-5000,smax32=0xec77,var_off=(0x0; 0xffffffff))",
        )
        .unwrap();
        assert_eq!(r.kind, RegKind::Scalar);
        assert_eq!(r.bounds.smin, 0);
        assert_eq!(r.bounds.smax, 0xffff_ffff);
        assert_eq!(r.bounds.umax, 0xffff_ffff);
        assert_eq!(r.bounds.umin, 0);
        assert_eq!(r.bounds.smin32, -5000);
        assert_eq!(r.bounds.smax32, 0xec77);
        assert_eq!(
            r.bounds.var_off,
            Tnum {
                value: 0,
                mask: 0xffff_ffff
            }
        );
        assert!(r.unknown_attrs.is_empty());
        assert_eq!(r.compact(), "scalar(0..0xffffffff)");
    }

    #[test]
    fn constants_and_precision() {
        let r = RegState::parse("P0xffffffff").unwrap();
        assert!(r.precise && r.is_scalar());
        assert_eq!(r.bounds.as_const(), Some(0xffff_ffff));
        let r = RegState::parse("-1").unwrap();
        assert_eq!(r.bounds.smin, -1);
        assert_eq!(r.bounds.smax32, -1);
        assert_eq!(r.compact(), "-1");
        let r = RegState::parse(
            "Pscalar(smin=smin32=0,smax=umax=smax32=umax32=60,var_off=(0x0; 0x3c))",
        )
        .unwrap();
        assert!(r.precise);
        assert_eq!((r.bounds.umin, r.bounds.umax), (0, 60));
        assert_eq!(r.compact(), "Pscalar(0..60)");
    }

    #[test]
    fn pointers() {
        let r = RegState::parse("pkt(off=14,r=14)").unwrap();
        assert_eq!(r.kind, RegKind::Packet);
        assert_eq!((r.off, r.range), (14, Some(14)));
        assert_eq!(r.compact(), "pkt(off=14,r=14)");
        let r = RegState::parse("pkt_end()").unwrap();
        assert_eq!(r.kind, RegKind::PacketEnd);
        assert_eq!(r.compact(), "pkt_end");
        let r = RegState::parse("map_value_or_null(id=1,map=verdicts,ks=4,vs=8)").unwrap();
        assert_eq!(r.kind, RegKind::MapValue);
        assert!(r.flags.or_null);
        assert_eq!(r.id, Some(1));
        let m = r.map.as_ref().unwrap();
        assert_eq!(
            (m.name.as_deref(), m.key_size, m.value_size),
            (Some("verdicts"), 4, 8)
        );
        assert_eq!(r.type_name(), "map_value_or_null");
        let r = RegState::parse("fp[0]-24").unwrap();
        assert_eq!(
            (r.kind.clone(), r.frameno, r.off),
            (RegKind::Stack, Some(0), -24)
        );
        let r = RegState::parse("fp0").unwrap();
        assert_eq!((r.kind.clone(), r.off), (RegKind::Stack, 0));
        let r = RegState::parse("ringbuf_mem(ref_obj_id=4,off=32,sz=160)").unwrap();
        assert_eq!(r.kind, RegKind::Mem);
        assert!(r.flags.ringbuf);
        assert_eq!((r.ref_obj_id, r.off, r.mem_size), (Some(4), 32, Some(160)));
        let r = RegState::parse("trusted_ptr_or_null_task_struct(id=2)").unwrap();
        assert_eq!(r.kind, RegKind::Btf("task_struct".into()));
        assert!(r.flags.trusted && r.flags.or_null);
        assert_eq!(r.type_name(), "trusted_ptr_or_null_task_struct");
        let r = RegState::parse("map_value(map=tp_sysca.bss,ks=4,vs=16,off=8)").unwrap();
        assert_eq!(r.off, 8);
        assert_eq!(r.map.unwrap().name.as_deref(), Some("tp_sysca.bss"));
        let r = RegState::parse("scalar(id=3+4,smin=0)").unwrap();
        assert_eq!((r.id, r.id_delta), (Some(3), Some(4)));
    }

    #[test]
    fn old_kernel_forms() {
        let r = RegState::parse("inv(id=0,umax_value=255,var_off=(0x0; 0xff))").unwrap();
        assert_eq!(r.kind, RegKind::Scalar);
        assert_eq!(r.bounds.umax, 255);
        assert_eq!(r.id, None);
        let r = RegState::parse("invP0").unwrap();
        assert!(r.precise);
        assert_eq!(r.bounds.as_const(), Some(0));
        let r = RegState::parse("pkt(id=0,off=0,r=14,imm=0)").unwrap();
        assert_eq!(r.range, Some(14));
    }

    #[test]
    fn garbage_is_none_or_harmless() {
        for s in [
            "",
            "(",
            ")",
            "P",
            "[",
            "fp[",
            "fp[x]1",
            "Ab",
            "pkt(",
            "scalar(a=b=c",
        ] {
            let _ = RegState::parse(s);
        }
        assert_eq!(RegState::parse("pkt("), None);
        assert_eq!(RegState::parse(""), None);
    }
}
