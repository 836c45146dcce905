//! The syntax tree of an expression.

/// A parsed expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expr {
    Num(u64),
    /// `r0`..`r10` (`fp` is r10).
    Reg(u8),
    /// `w0`..`w10`: the low 32 bits.
    Reg32(u8),
    /// `pkt` (or `data`): the address of the packet's first data byte.
    Packet,
    /// `pkt_end` (or `data_end`).
    PacketEnd,
    /// `ctx`: the address of the context.
    Ctx,
    Unary(UnOp, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// `(TYPE)e` or `(TYPE *)e`.
    Cast {
        ty: TypeName,
        pointer: bool,
        expr: Box<Expr>,
    },
    /// `e[lo:hi]`: bytes `lo..hi` from the address `e`.
    Slice(Box<Expr>, Box<Expr>, Box<Expr>),
    /// `e[i]`: element `i` of a typed pointer (a byte when untyped).
    Index(Box<Expr>, Box<Expr>),
    /// `e->field` (the context, or a pointer cast to a struct).
    Arrow(Box<Expr>, String),
    /// `e.field` of a struct value.
    Field(Box<Expr>, String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnOp {
    Neg,
    Not,
    BitNot,
    Deref,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    And,
    Or,
    Xor,
    Shl,
    Shr,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    LogAnd,
    LogOr,
}

/// A scalar C type: its size, signedness and byte order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scalar {
    pub size: u8,
    pub signed: bool,
    /// `__be16`/`__be32`/`__be64`: stored in network byte order.
    pub big_endian: bool,
}

/// A type in a cast.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TypeName {
    Scalar(Scalar),
    /// `struct NAME`, `union NAME`, `enum NAME`: looked up in BTF.
    Aggregate {
        keyword: String,
        name: String,
    },
}

impl TypeName {
    /// The built-in scalar type names.
    pub fn scalar(name: &str) -> Option<TypeName> {
        let s = |size, signed, big_endian| {
            Some(TypeName::Scalar(Scalar {
                size,
                signed,
                big_endian,
            }))
        };
        match name {
            "u8" | "__u8" | "char" | "uint8_t" => s(1, false, false),
            "u16" | "__u16" | "uint16_t" => s(2, false, false),
            "u32" | "__u32" | "uint32_t" | "unsigned" => s(4, false, false),
            "u64" | "__u64" | "uint64_t" => s(8, false, false),
            "s8" | "__s8" | "int8_t" => s(1, true, false),
            "s16" | "__s16" | "int16_t" | "short" => s(2, true, false),
            "s32" | "__s32" | "int32_t" | "int" => s(4, true, false),
            "s64" | "__s64" | "int64_t" | "long" => s(8, true, false),
            "__be16" | "be16" => s(2, false, true),
            "__be32" | "be32" => s(4, false, true),
            "__be64" | "be64" => s(8, false, true),
            _ => None,
        }
    }
}
