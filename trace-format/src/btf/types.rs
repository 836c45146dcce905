//! The BTF type records (`struct btf_type` and what follows each kind), as
//! owned Rust values.

/// The kind of a BTF type (`BTF_KIND_*`, the number in `info` bits 24-28).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BtfKind {
    Int,
    Ptr,
    Array,
    Struct,
    Union,
    Enum,
    Fwd,
    Typedef,
    Volatile,
    Const,
    Restrict,
    Func,
    FuncProto,
    Var,
    DataSec,
    Float,
    DeclTag,
    TypeTag,
    Enum64,
}

impl BtfKind {
    pub fn from_number(n: u32) -> Option<BtfKind> {
        use BtfKind::*;
        Some(match n {
            1 => Int,
            2 => Ptr,
            3 => Array,
            4 => Struct,
            5 => Union,
            6 => Enum,
            7 => Fwd,
            8 => Typedef,
            9 => Volatile,
            10 => Const,
            11 => Restrict,
            12 => Func,
            13 => FuncProto,
            14 => Var,
            15 => DataSec,
            16 => Float,
            17 => DeclTag,
            18 => TypeTag,
            19 => Enum64,
            _ => return None,
        })
    }

    /// The C keyword or a short word for the kind, as used in messages.
    pub fn name(self) -> &'static str {
        use BtfKind::*;
        match self {
            Int => "int",
            Ptr => "ptr",
            Array => "array",
            Struct => "struct",
            Union => "union",
            Enum | Enum64 => "enum",
            Fwd => "fwd",
            Typedef => "typedef",
            Volatile => "volatile",
            Const => "const",
            Restrict => "restrict",
            Func => "func",
            FuncProto => "func_proto",
            Var => "var",
            DataSec => "datasec",
            Float => "float",
            DeclTag => "decl_tag",
            TypeTag => "type_tag",
        }
    }
}

/// A struct or union member. `bit_offset` is from the start of the
/// aggregate; `bitfield_size` is 0 for a normal (non-bitfield) member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    pub type_id: u32,
    pub bit_offset: u32,
    pub bitfield_size: u8,
}

/// An enumerator (`BTF_KIND_ENUM` values are widened to i64).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Enumerator {
    pub name: String,
    pub value: i64,
}

/// A function parameter (`BTF_KIND_FUNC_PROTO`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Param {
    pub name: String,
    pub type_id: u32,
}

/// A variable placed in a data section (`BTF_KIND_DATASEC`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataSecVar {
    pub type_id: u32,
    pub offset: u32,
    pub size: u32,
}

/// What a type is, with the data that follows its `struct btf_type`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TypeData {
    Int {
        size: u32,
        signed: bool,
        is_char: bool,
        is_bool: bool,
        bit_offset: u8,
        bits: u8,
    },
    Ptr {
        target: u32,
    },
    Array {
        elem: u32,
        index: u32,
        len: u32,
    },
    Struct {
        size: u32,
        members: Vec<Member>,
    },
    Union {
        size: u32,
        members: Vec<Member>,
    },
    /// `BTF_KIND_ENUM` or, when `is_enum64`, `BTF_KIND_ENUM64`.
    Enum {
        size: u32,
        signed: bool,
        is_enum64: bool,
        values: Vec<Enumerator>,
    },
    Fwd {
        is_union: bool,
    },
    Typedef {
        target: u32,
    },
    Volatile {
        target: u32,
    },
    Const {
        target: u32,
    },
    Restrict {
        target: u32,
    },
    Func {
        proto: u32,
        linkage: u16,
    },
    FuncProto {
        ret: u32,
        params: Vec<Param>,
    },
    Var {
        type_id: u32,
        linkage: u32,
    },
    DataSec {
        size: u32,
        vars: Vec<DataSecVar>,
    },
    Float {
        size: u32,
    },
    DeclTag {
        target: u32,
        component: i32,
    },
    TypeTag {
        target: u32,
    },
}

/// One BTF type: its name (empty when anonymous) and what it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BtfType {
    pub name: String,
    pub data: TypeData,
}

impl BtfType {
    pub fn kind(&self) -> BtfKind {
        match &self.data {
            TypeData::Int { .. } => BtfKind::Int,
            TypeData::Ptr { .. } => BtfKind::Ptr,
            TypeData::Array { .. } => BtfKind::Array,
            TypeData::Struct { .. } => BtfKind::Struct,
            TypeData::Union { .. } => BtfKind::Union,
            TypeData::Enum {
                is_enum64: true, ..
            } => BtfKind::Enum64,
            TypeData::Enum { .. } => BtfKind::Enum,
            TypeData::Fwd { .. } => BtfKind::Fwd,
            TypeData::Typedef { .. } => BtfKind::Typedef,
            TypeData::Volatile { .. } => BtfKind::Volatile,
            TypeData::Const { .. } => BtfKind::Const,
            TypeData::Restrict { .. } => BtfKind::Restrict,
            TypeData::Func { .. } => BtfKind::Func,
            TypeData::FuncProto { .. } => BtfKind::FuncProto,
            TypeData::Var { .. } => BtfKind::Var,
            TypeData::DataSec { .. } => BtfKind::DataSec,
            TypeData::Float { .. } => BtfKind::Float,
            TypeData::DeclTag { .. } => BtfKind::DeclTag,
            TypeData::TypeTag { .. } => BtfKind::TypeTag,
        }
    }

    /// The type this one refers to without changing its value's layout
    /// (typedef, const, volatile, restrict, type_tag), if any.
    pub fn modifier_target(&self) -> Option<u32> {
        match self.data {
            TypeData::Typedef { target }
            | TypeData::Volatile { target }
            | TypeData::Const { target }
            | TypeData::Restrict { target }
            | TypeData::TypeTag { target } => Some(target),
            _ => None,
        }
    }
}
