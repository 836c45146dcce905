//! Evaluation of a parsed expression against a machine's registers and
//! memory. Memory is only read, through checked accesses: a bad address is
//! an error saying which, never a panic.

use bpfrr_trace::btf::{Btf, TypeData};

use super::ExprError;
use super::ast::{BinOp, Expr, Scalar, TypeName, UnOp};
use crate::session::DebugInfo;
use crate::vm::{
    ContextLayout, Frame, Memory, RegionKind, address, ids, sk_buff, split_address, xdp_md,
};

/// Largest byte range one expression reads (`pkt[0:N]`, a struct).
pub const MAX_READ: u64 = 4096;

/// What an expression is evaluated against.
#[derive(Clone, Copy)]
pub struct Scope<'a> {
    /// r0-r10.
    pub regs: &'a [u64],
    /// The call frames (to name stack slots `fp-8`).
    pub frames: &'a [Frame],
    pub memory: &'a Memory,
    pub info: &'a DebugInfo,
}

/// Where a value lives, when it is an lvalue (what watchpoints watch and
/// `origin` follows).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Location {
    /// A register; `width` 4 for `wN`.
    Reg { reg: u8, width: u8 },
    /// `len` bytes at a tagged address.
    Mem { addr: u64, len: u32 },
}

/// What a pointer cast says the pointee is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pointee {
    Scalar(Scalar),
    Btf(u32),
}

/// A value and its type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValueKind {
    /// An integer of `ty.size` bytes (registers are unsigned 8-byte).
    Int { value: u64, ty: Scalar },
    /// A typed pointer (the result of a pointer cast).
    Pointer { addr: u64, to: Pointee },
    /// Raw bytes (a slice of memory).
    Bytes(Vec<u8>),
    /// A value of a BTF aggregate type (struct, union, array).
    Typed { type_id: u32, bytes: Vec<u8> },
}

/// The result of an evaluation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Value {
    pub kind: ValueKind,
    /// Set for lvalues (registers, memory).
    pub location: Option<Location>,
}

const U64: Scalar = Scalar {
    size: 8,
    signed: false,
    big_endian: false,
};

fn int(value: u64) -> Value {
    Value {
        kind: ValueKind::Int { value, ty: U64 },
        location: None,
    }
}

fn err<T>(message: impl Into<String>) -> Result<T, ExprError> {
    Err(ExprError::new(0, message))
}

impl Value {
    /// The value as a 64-bit integer (pointers as their address, short byte
    /// strings little-endian), if it is one.
    pub fn as_u64(&self) -> Option<u64> {
        match &self.kind {
            ValueKind::Int { value, .. } => Some(*value),
            ValueKind::Pointer { addr, .. } => Some(*addr),
            ValueKind::Bytes(b) | ValueKind::Typed { bytes: b, .. } if b.len() <= 8 => Some(le(b)),
            _ => None,
        }
    }

    /// Whether the value counts as true in a condition (non-zero).
    pub fn truthy(&self) -> bool {
        match &self.kind {
            ValueKind::Bytes(b) | ValueKind::Typed { bytes: b, .. } => b.iter().any(|&x| x != 0),
            _ => self.as_u64().is_some_and(|v| v != 0),
        }
    }
}

fn le(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    let n = b.len().min(8);
    a[..n].copy_from_slice(&b[..n]);
    u64::from_le_bytes(a)
}

/// Truncates (and sign-extends when signed) to the scalar's size.
fn fit(v: u64, ty: Scalar) -> u64 {
    match (ty.size, ty.signed) {
        (1, false) => v as u8 as u64,
        (2, false) => v as u16 as u64,
        (4, false) => v as u32 as u64,
        (1, true) => v as u8 as i8 as i64 as u64,
        (2, true) => v as u16 as i16 as i64 as u64,
        (4, true) => v as u32 as i32 as i64 as u64,
        _ => v,
    }
}

/// Evaluates `expr` in `scope`.
pub fn eval(expr: &Expr, scope: &Scope<'_>) -> Result<Value, ExprError> {
    Evaluator { s: scope }.eval(expr)
}

struct Evaluator<'a, 'b> {
    s: &'b Scope<'a>,
}

impl Evaluator<'_, '_> {
    fn btf(&self) -> Result<&Btf, ExprError> {
        self.s.info.btf.as_deref().ok_or_else(|| {
            ExprError::new(
                0,
                "this session has no BTF, so struct types are unknown; cast to u8..u64 instead",
            )
        })
    }

    fn reg(&self, r: u8) -> Result<u64, ExprError> {
        match self.s.regs.get(r as usize) {
            Some(v) => Ok(*v),
            None => err(format!("register r{r} does not exist")),
        }
    }

    fn u64_of(&self, v: &Value, what: &str) -> Result<u64, ExprError> {
        v.as_u64()
            .ok_or_else(|| ExprError::new(0, format!("{what} is not a number")))
    }

    fn read(&self, addr: u64, len: u64) -> Result<Vec<u8>, ExprError> {
        if len > MAX_READ {
            return err(format!(
                "{len} bytes is more than the {MAX_READ} one expression may read"
            ));
        }
        match self.s.memory.read(addr, len as usize) {
            Ok(b) => Ok(b.to_vec()),
            Err(k) => err(format!("cannot read {len} bytes at {addr:#x}: {k}")),
        }
    }

    /// Loads a scalar, converting context fields as the program would see them.
    fn load(&self, addr: u64, ty: Scalar) -> Result<Value, ExprError> {
        let raw = match ty.size {
            1 | 2 | 4 | 8 => match self.s.memory.load(addr, ty.size as usize) {
                Ok(v) => v,
                Err(_) => le(&self.read(addr, ty.size as u64)?),
            },
            n => return err(format!("cannot load a {n}-byte scalar")),
        };
        // A context field the kernel converts to a pointer (`data`,
        // `data_end`) is a 64-bit address whatever its declared size.
        if split_address(addr).0 == ids::CONTEXT && raw > u32::MAX as u64 {
            return Ok(Value {
                kind: ValueKind::Int {
                    value: raw,
                    ty: U64,
                },
                location: Some(Location::Mem {
                    addr,
                    len: ty.size as u32,
                }),
            });
        }
        let v = if ty.big_endian {
            match ty.size {
                2 => (raw as u16).swap_bytes() as u64,
                4 => (raw as u32).swap_bytes() as u64,
                8 => raw.swap_bytes(),
                _ => raw,
            }
        } else {
            raw
        };
        Ok(Value {
            kind: ValueKind::Int {
                value: fit(v, ty),
                ty,
            },
            location: Some(Location::Mem {
                addr,
                len: ty.size as u32,
            }),
        })
    }

    /// A value of BTF type `id` at `addr`: scalars as integers, aggregates as bytes.
    fn load_btf(&self, addr: u64, id: u32) -> Result<Value, ExprError> {
        let btf = self.btf()?;
        let Some(size) = btf.size_of(id) else {
            return err(format!("type `{}` has no known size", btf.type_name(id)));
        };
        if let Some(ty) = btf_scalar(btf, id) {
            return self.load(addr, ty);
        }
        let bytes = self.read(addr, size)?;
        Ok(Value {
            kind: ValueKind::Typed { type_id: id, bytes },
            location: Some(Location::Mem {
                addr,
                len: size as u32,
            }),
        })
    }

    fn eval(&self, e: &Expr) -> Result<Value, ExprError> {
        match e {
            Expr::Num(n) => Ok(int(*n)),
            Expr::Reg(r) => Ok(Value {
                kind: ValueKind::Int {
                    value: self.reg(*r)?,
                    ty: U64,
                },
                location: Some(Location::Reg { reg: *r, width: 8 }),
            }),
            Expr::Reg32(r) => Ok(Value {
                kind: ValueKind::Int {
                    value: self.reg(*r)? as u32 as u64,
                    ty: Scalar {
                        size: 4,
                        signed: false,
                        big_endian: false,
                    },
                },
                location: Some(Location::Reg { reg: *r, width: 4 }),
            }),
            Expr::Packet | Expr::PacketEnd => match self.s.memory.packet() {
                Some(p) => Ok(int(if matches!(e, Expr::Packet) {
                    p.data
                } else {
                    p.end
                })),
                None => err("this run has no packet"),
            },
            Expr::Ctx => match self.s.memory.region(ids::CONTEXT) {
                Some(r) if r.live() => Ok(int(address(ids::CONTEXT, 0))),
                _ => err("this run has no context"),
            },
            Expr::Unary(op, inner) => self.unary(*op, inner),
            Expr::Binary(op, l, r) => self.binary(*op, l, r),
            Expr::Cast { ty, pointer, expr } => self.cast(ty, *pointer, expr),
            Expr::Slice(base, lo, hi) => {
                let b = self.eval(base)?;
                let b = self.u64_of(&b, "the base of the slice")?;
                let lo = self.eval(lo)?;
                let lo = self.u64_of(&lo, "the start of the slice")?;
                let hi = self.eval(hi)?;
                let hi = self.u64_of(&hi, "the end of the slice")?;
                if hi <= lo {
                    return err(format!(
                        "the slice [{lo}:{hi}] is empty; the end must be greater than the start"
                    ));
                }
                let addr = b.wrapping_add(lo);
                let bytes = self.read(addr, hi - lo)?;
                Ok(Value {
                    location: Some(Location::Mem {
                        addr,
                        len: (hi - lo) as u32,
                    }),
                    kind: ValueKind::Bytes(bytes),
                })
            }
            Expr::Index(base, index) => {
                let b = self.eval(base)?;
                let i = self.eval(index)?;
                let i = self.u64_of(&i, "the index")?;
                match b.kind {
                    ValueKind::Pointer { addr, to } => {
                        let size = self.pointee_size(to)?;
                        let a = addr.wrapping_add(i.wrapping_mul(size));
                        self.deref_pointer(a, to)
                    }
                    _ => {
                        let a = self.u64_of(&b, "the indexed value")?.wrapping_add(i);
                        self.load(
                            a,
                            Scalar {
                                size: 1,
                                signed: false,
                                big_endian: false,
                            },
                        )
                    }
                }
            }
            Expr::Arrow(base, field) => {
                let b = self.eval(base)?;
                match b.kind {
                    ValueKind::Pointer {
                        addr,
                        to: Pointee::Btf(id),
                    } => self.member(addr, id, field),
                    _ => {
                        let addr = self.u64_of(&b, "the left side of `->`")?;
                        self.context_field(addr, field)
                    }
                }
            }
            Expr::Field(base, field) => {
                let b = self.eval(base)?;
                match (&b.kind, b.location) {
                    (ValueKind::Typed { type_id, .. }, Some(Location::Mem { addr, .. })) => {
                        self.member(addr, *type_id, field)
                    }
                    _ => err(format!(
                        "`.{field}` needs a struct value, e.g. (*(struct iphdr *)(pkt + 14)).{field}"
                    )),
                }
            }
        }
    }

    fn pointee_size(&self, to: Pointee) -> Result<u64, ExprError> {
        match to {
            Pointee::Scalar(s) => Ok(s.size as u64),
            Pointee::Btf(id) => {
                let btf = self.btf()?;
                btf.size_of(id).ok_or_else(|| {
                    ExprError::new(0, format!("type `{}` has no known size", btf.type_name(id)))
                })
            }
        }
    }

    fn deref_pointer(&self, addr: u64, to: Pointee) -> Result<Value, ExprError> {
        match to {
            Pointee::Scalar(s) => self.load(addr, s),
            Pointee::Btf(id) => self.load_btf(addr, id),
        }
    }

    fn unary(&self, op: UnOp, inner: &Expr) -> Result<Value, ExprError> {
        let v = self.eval(inner)?;
        match op {
            UnOp::Deref => match v.kind {
                ValueKind::Pointer { addr, to } => self.deref_pointer(addr, to),
                _ => {
                    let addr = self.u64_of(&v, "the dereferenced value")?;
                    self.deref_untyped(addr)
                }
            },
            UnOp::Neg | UnOp::Not | UnOp::BitNot => {
                let x = self.u64_of(&v, "the operand")?;
                Ok(int(match op {
                    UnOp::Neg => x.wrapping_neg(),
                    UnOp::Not => (x == 0) as u64,
                    _ => !x,
                }))
            }
        }
    }

    /// `*addr` without a cast: map values and the context by their BTF
    /// types (or as bytes); anything else needs a cast.
    fn deref_untyped(&self, addr: u64) -> Result<Value, ExprError> {
        let (id, off) = split_address(addr);
        let region = self.s.memory.region(id).filter(|r| r.live());
        let Some(region) = region else {
            return err(format!(
                "{addr:#x} does not point into live memory; cast it to read, e.g. *(u64 *)(r10 - 8)"
            ));
        };
        let typed = matches!(
            region.kind(),
            RegionKind::MapValue { .. } | RegionKind::GlobalData { .. } | RegionKind::Context
        );
        if !typed || off != 0 {
            return err(format!(
                "cannot tell what type {addr:#x} points to ({}); cast it, e.g. *(u32 *)(...)",
                region.kind()
            ));
        }
        if let Some(t) = self.s.info.region_type(region.kind())
            && self.s.info.btf.is_some()
        {
            return self.load_btf(addr, t);
        }
        let len = region.window().len() as u64;
        let bytes = self.read(addr, len)?;
        Ok(Value {
            kind: ValueKind::Bytes(bytes),
            location: Some(Location::Mem {
                addr,
                len: len as u32,
            }),
        })
    }

    fn cast(&self, ty: &TypeName, pointer: bool, inner: &Expr) -> Result<Value, ExprError> {
        let v = self.eval(inner)?;
        let x = self.u64_of(&v, "the value being cast")?;
        let to = match ty {
            TypeName::Scalar(s) => Pointee::Scalar(*s),
            TypeName::Aggregate { keyword, name } => {
                let btf = self.btf()?;
                let kind = match keyword.as_str() {
                    "union" => bpfrr_trace::btf::BtfKind::Union,
                    "enum" => bpfrr_trace::btf::BtfKind::Enum,
                    _ => bpfrr_trace::btf::BtfKind::Struct,
                };
                match btf.find_by_name(kind, name) {
                    Some(id) => Pointee::Btf(id),
                    None => {
                        return err(format!("the program's BTF has no `{keyword} {name}`"));
                    }
                }
            }
        };
        if pointer {
            return Ok(Value {
                kind: ValueKind::Pointer { addr: x, to },
                location: None,
            });
        }
        match to {
            Pointee::Scalar(s) => Ok(Value {
                kind: ValueKind::Int {
                    value: fit(x, s),
                    ty: s,
                },
                location: None,
            }),
            Pointee::Btf(_) => err("a struct can only be cast to as a pointer: (struct NAME *)"),
        }
    }

    fn binary(&self, op: BinOp, l: &Expr, r: &Expr) -> Result<Value, ExprError> {
        let lv = self.eval(l)?;
        if matches!(op, BinOp::LogAnd | BinOp::LogOr) {
            let lt = lv.truthy();
            if (op == BinOp::LogAnd && !lt) || (op == BinOp::LogOr && lt) {
                return Ok(int(lt as u64));
            }
            return Ok(int(self.eval(r)?.truthy() as u64));
        }
        let rv = self.eval(r)?;
        // Typed pointer arithmetic scales by the pointee size, as in C.
        if let (ValueKind::Pointer { addr, to }, BinOp::Add | BinOp::Sub) = (&lv.kind, op)
            && !matches!(rv.kind, ValueKind::Pointer { .. })
        {
            let n = self.u64_of(&rv, "the right operand")?;
            let d = n.wrapping_mul(self.pointee_size(*to)?);
            let addr = if op == BinOp::Add {
                addr.wrapping_add(d)
            } else {
                addr.wrapping_sub(d)
            };
            return Ok(Value {
                kind: ValueKind::Pointer { addr, to: *to },
                location: None,
            });
        }
        let a = self.u64_of(&lv, "the left operand")?;
        let b = self.u64_of(&rv, "the right operand")?;
        let signed = |v: &Value| matches!(v.kind, ValueKind::Int { ty, .. } if ty.signed);
        let s = signed(&lv) || signed(&rv);
        let cmp = |o: std::cmp::Ordering| -> bool {
            match op {
                BinOp::Lt => o.is_lt(),
                BinOp::Le => o.is_le(),
                BinOp::Gt => o.is_gt(),
                _ => o.is_ge(),
            }
        };
        let v = match op {
            BinOp::Add => a.wrapping_add(b),
            BinOp::Sub => a.wrapping_sub(b),
            BinOp::Mul => a.wrapping_mul(b),
            BinOp::Div | BinOp::Rem => {
                if b == 0 {
                    return err("division by zero");
                }
                match (op, s) {
                    (BinOp::Div, false) => a / b,
                    (BinOp::Div, true) => (a as i64).wrapping_div(b as i64) as u64,
                    (_, false) => a % b,
                    (_, true) => (a as i64).wrapping_rem(b as i64) as u64,
                }
            }
            BinOp::And => a & b,
            BinOp::Or => a | b,
            BinOp::Xor => a ^ b,
            BinOp::Shl => a.wrapping_shl(b as u32 & 63),
            BinOp::Shr => {
                if s {
                    ((a as i64) >> (b & 63)) as u64
                } else {
                    a >> (b & 63)
                }
            }
            BinOp::Eq => (a == b) as u64,
            BinOp::Ne => (a != b) as u64,
            BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                let o = if s {
                    (a as i64).cmp(&(b as i64))
                } else {
                    a.cmp(&b)
                };
                cmp(o) as u64
            }
            BinOp::LogAnd | BinOp::LogOr => unreachable!("handled above"),
        };
        Ok(int(v))
    }

    /// `ptr->field` for a struct at `addr`.
    fn member(&self, addr: u64, id: u32, field: &str) -> Result<Value, ExprError> {
        let btf = self.btf()?;
        let Some(m) = btf.member_by_name(id, field) else {
            return err(format!("`{}` has no field `{field}`", btf.type_name(id)));
        };
        let at = addr.wrapping_add((m.bit_offset / 8) as u64);
        if m.bitfield_size > 0 {
            let first = m.bit_offset / 8;
            let shift = m.bit_offset % 8;
            let nbytes = (shift + m.bitfield_size as u32).div_ceil(8) as u64;
            let raw = le(&self.read(addr.wrapping_add(first as u64), nbytes)?);
            let v = (raw >> shift) & ((1u64 << m.bitfield_size.min(63)) - 1);
            return Ok(int(v));
        }
        self.load_btf(at, m.type_id)
    }

    /// `ctx->field`: by the context's BTF type when known, else by the
    /// kernel's layout of `xdp_md` / `__sk_buff`.
    fn context_field(&self, addr: u64, field: &str) -> Result<Value, ExprError> {
        let (id, _) = split_address(addr);
        if id != ids::CONTEXT {
            return err(format!(
                "`->{field}` needs the context (ctx) or a pointer cast to a struct, e.g. ((struct iphdr *)(pkt + 14))->{field}"
            ));
        }
        if let (Some(t), Some(_)) = (self.s.info.context_type, &self.s.info.btf) {
            return self.member(addr, t, field);
        }
        let Some(layout) = self.s.memory.context_layout() else {
            return err(
                "this run's context has no known fields; cast instead, e.g. *(u64 *)(ctx + 8)",
            );
        };
        let Some((off, size)) = builtin_field(*layout, field) else {
            return err(format!("the context has no field `{field}`"));
        };
        let a = addr.wrapping_add(off as u64);
        if size > 8 {
            let bytes = self.read(a, size as u64)?;
            return Ok(Value {
                kind: ValueKind::Bytes(bytes),
                location: Some(Location::Mem { addr: a, len: size }),
            });
        }
        self.load(
            a,
            Scalar {
                size: size as u8,
                signed: false,
                big_endian: false,
            },
        )
    }
}

/// A BTF type that is a scalar (int, enum, pointer), with its byte order
/// (`__be16`/`__be32`/`__be64` typedefs are network order).
fn btf_scalar(btf: &Btf, id: u32) -> Option<Scalar> {
    let mut big_endian = false;
    let mut cur = id;
    for _ in 0..32 {
        let t = btf.type_by_id(cur)?;
        if t.name.starts_with("__be") {
            big_endian = true;
        }
        match &t.data {
            TypeData::Int { size, signed, .. } => {
                return matches!(size, 1 | 2 | 4 | 8).then_some(Scalar {
                    size: *size as u8,
                    signed: *signed,
                    big_endian,
                });
            }
            TypeData::Enum { size, signed, .. } => {
                return matches!(size, 1 | 2 | 4 | 8).then_some(Scalar {
                    size: *size as u8,
                    signed: *signed,
                    big_endian: false,
                });
            }
            TypeData::Ptr { .. } => return Some(U64),
            _ => cur = t.modifier_target()?,
        }
    }
    None
}

/// Field offsets and sizes of the kernel's context structures.
fn builtin_field(layout: ContextLayout, name: &str) -> Option<(i64, u32)> {
    match layout {
        ContextLayout::Xdp => {
            let off = match name {
                "data" => xdp_md::DATA,
                "data_end" => xdp_md::DATA_END,
                "data_meta" => xdp_md::DATA_META,
                "ingress_ifindex" => xdp_md::INGRESS_IFINDEX,
                "rx_queue_index" => xdp_md::RX_QUEUE_INDEX,
                "egress_ifindex" => xdp_md::EGRESS_IFINDEX,
                _ => return None,
            };
            Some((off, 4))
        }
        ContextLayout::SkBuff(_) => {
            use sk_buff::*;
            Some(match name {
                "len" => (LEN, 4),
                "pkt_type" => (PKT_TYPE, 4),
                "mark" => (MARK, 4),
                "queue_mapping" => (QUEUE_MAPPING, 4),
                "protocol" => (PROTOCOL, 4),
                "vlan_present" => (VLAN_PRESENT, 4),
                "vlan_tci" => (VLAN_TCI, 4),
                "vlan_proto" => (VLAN_PROTO, 4),
                "priority" => (PRIORITY, 4),
                "ingress_ifindex" => (INGRESS_IFINDEX, 4),
                "ifindex" => (IFINDEX, 4),
                "tc_index" => (TC_INDEX, 4),
                "cb" => (CB, 20),
                "hash" => (HASH, 4),
                "tc_classid" => (TC_CLASSID, 4),
                "data" => (DATA, 4),
                "data_end" => (DATA_END, 4),
                "napi_id" => (NAPI_ID, 4),
                "family" => (FAMILY, 4),
                "remote_ip4" => (REMOTE_IP4, 4),
                "local_ip4" => (LOCAL_IP4, 4),
                "remote_ip6" => (REMOTE_IP6, 16),
                "local_ip6" => (LOCAL_IP6, 16),
                "remote_port" => (REMOTE_PORT, 4),
                "local_port" => (LOCAL_PORT, 4),
                "data_meta" => (DATA_META, 4),
                "tstamp" => (TSTAMP, 8),
                "wire_len" => (WIRE_LEN, 4),
                "gso_segs" => (GSO_SEGS, 4),
                "gso_size" => (GSO_SIZE, 4),
                "hwtstamp" => (HWTSTAMP, 8),
                _ => return None,
            })
        }
        ContextLayout::Raw(_) => None,
    }
}
