//! Reading the `.BTF` blob: header, string section, type section.
//!
//! Every read is bounds-checked through `Reader`; a malformed blob is a
//! `BtfError`, never a panic or an unbounded allocation (counts are checked
//! against the bytes that remain before anything is reserved).

use super::BtfError;
use super::types::*;

pub(crate) const BTF_MAGIC: u16 = 0xeb9f;

/// A little-endian cursor over a byte slice that fails instead of panicking.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8], what: &'static str) -> Self {
        Reader {
            bytes,
            pos: 0,
            what,
        }
    }

    pub fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8], BtfError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        match end {
            Some(end) => {
                let s = &self.bytes[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(BtfError::Truncated {
                what: self.what,
                offset: self.pos,
            }),
        }
    }

    pub fn u8(&mut self) -> Result<u8, BtfError> {
        Ok(self.take(1)?[0])
    }

    pub fn u16(&mut self) -> Result<u16, BtfError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    pub fn u32(&mut self) -> Result<u32, BtfError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn i32(&mut self) -> Result<i32, BtfError> {
        Ok(self.u32()? as i32)
    }
}

/// Slices `bytes[off..off+len]`, or says which part is out of bounds.
pub(crate) fn sub_slice<'a>(
    bytes: &'a [u8],
    off: usize,
    len: usize,
    what: &'static str,
) -> Result<&'a [u8], BtfError> {
    off.checked_add(len)
        .and_then(|end| bytes.get(off..end))
        .ok_or(BtfError::Truncated { what, offset: off })
}

/// The NUL-terminated string at `off` in a string section.
pub(crate) fn string_at(strings: &[u8], off: u32) -> Option<&str> {
    let rest = strings.get(off as usize..)?;
    let end = rest.iter().position(|&b| b == 0)?;
    std::str::from_utf8(&rest[..end]).ok()
}

pub(crate) struct Parsed {
    pub strings: Vec<u8>,
    pub types: Vec<BtfType>,
    /// Byte offset of each type's record in the parsed blob.
    pub offsets: Vec<usize>,
}

pub(crate) fn parse(bytes: &[u8]) -> Result<Parsed, BtfError> {
    let mut r = Reader::new(bytes, "BTF header");
    let magic = r.u16()?;
    if magic != BTF_MAGIC {
        if magic == BTF_MAGIC.swap_bytes() {
            return Err(BtfError::BigEndian);
        }
        return Err(BtfError::BadMagic { found: magic });
    }
    let version = r.u8()?;
    if version != 1 {
        return Err(BtfError::UnsupportedVersion { version });
    }
    let _flags = r.u8()?;
    let hdr_len = r.u32()? as usize;
    let type_off = r.u32()? as usize;
    let type_len = r.u32()? as usize;
    let str_off = r.u32()? as usize;
    let str_len = r.u32()? as usize;
    if hdr_len < 24 {
        return Err(BtfError::Malformed(format!(
            "header length {hdr_len} is shorter than the 24-byte BTF header"
        )));
    }
    let body = bytes.get(hdr_len..).ok_or(BtfError::Truncated {
        what: "BTF header",
        offset: 0,
    })?;
    let type_bytes = sub_slice(body, type_off, type_len, "BTF type section")?;
    let strings = sub_slice(body, str_off, str_len, "BTF string section")?;
    if !strings.is_empty() && (strings[0] != 0 || strings[strings.len() - 1] != 0) {
        return Err(BtfError::Malformed(
            "the string section does not start and end with a NUL byte".into(),
        ));
    }

    let type_base = hdr_len + type_off;
    let mut types = Vec::new();
    let mut offsets = Vec::new();
    let mut r = Reader::new(type_bytes, "BTF type section");
    while !r.is_empty() {
        offsets.push(type_base + r.pos);
        types.push(parse_type(&mut r, strings)?);
    }
    Ok(Parsed {
        strings: strings.to_vec(),
        types,
        offsets,
    })
}

fn name(strings: &[u8], off: u32) -> Result<String, BtfError> {
    string_at(strings, off).map(str::to_string).ok_or_else(|| {
        BtfError::Malformed(format!("name offset {off} is outside the string section"))
    })
}

/// Checks that `count` records of `size` bytes can follow, before allocating.
fn check_count(r: &Reader, count: usize, size: usize) -> Result<(), BtfError> {
    if count.saturating_mul(size) > r.remaining() {
        return Err(BtfError::Truncated {
            what: "BTF type section",
            offset: r.pos,
        });
    }
    Ok(())
}

fn parse_type(r: &mut Reader, strings: &[u8]) -> Result<BtfType, BtfError> {
    let name_off = r.u32()?;
    let info = r.u32()?;
    let size_or_type = r.u32()?;
    let vlen = (info & 0xffff) as usize;
    let kind_number = (info >> 24) & 0x1f;
    let kind_flag = info >> 31 == 1;
    let kind = BtfKind::from_number(kind_number).ok_or_else(|| {
        BtfError::Malformed(format!(
            "unknown BTF kind {kind_number} at byte {}",
            r.pos - 12
        ))
    })?;
    let type_name = name(strings, name_off)?;
    let data = match kind {
        BtfKind::Int => {
            let enc = r.u32()?;
            let encoding = (enc >> 24) & 0x0f;
            TypeData::Int {
                size: size_or_type,
                signed: encoding & 1 != 0,
                is_char: encoding & 2 != 0,
                is_bool: encoding & 4 != 0,
                bit_offset: ((enc >> 16) & 0xff) as u8,
                bits: (enc & 0xff) as u8,
            }
        }
        BtfKind::Ptr => TypeData::Ptr {
            target: size_or_type,
        },
        BtfKind::Array => TypeData::Array {
            elem: r.u32()?,
            index: r.u32()?,
            len: r.u32()?,
        },
        BtfKind::Struct | BtfKind::Union => {
            check_count(r, vlen, 12)?;
            let mut members = Vec::with_capacity(vlen);
            for _ in 0..vlen {
                let member_name = name(strings, r.u32()?)?;
                let type_id = r.u32()?;
                let offset = r.u32()?;
                let (bit_offset, bitfield_size) = if kind_flag {
                    (offset & 0x00ff_ffff, (offset >> 24) as u8)
                } else {
                    (offset, 0)
                };
                members.push(Member {
                    name: member_name,
                    type_id,
                    bit_offset,
                    bitfield_size,
                });
            }
            if kind == BtfKind::Struct {
                TypeData::Struct {
                    size: size_or_type,
                    members,
                }
            } else {
                TypeData::Union {
                    size: size_or_type,
                    members,
                }
            }
        }
        BtfKind::Enum | BtfKind::Enum64 => {
            let wide = kind == BtfKind::Enum64;
            check_count(r, vlen, if wide { 12 } else { 8 })?;
            let mut values = Vec::with_capacity(vlen);
            for _ in 0..vlen {
                let value_name = name(strings, r.u32()?)?;
                let value = if wide {
                    let lo = r.u32()? as u64;
                    let hi = r.u32()? as u64;
                    (hi << 32 | lo) as i64
                } else if kind_flag {
                    r.i32()? as i64
                } else {
                    r.u32()? as i64
                };
                values.push(Enumerator {
                    name: value_name,
                    value,
                });
            }
            TypeData::Enum {
                size: size_or_type,
                signed: kind_flag,
                is_enum64: wide,
                values,
            }
        }
        BtfKind::Fwd => TypeData::Fwd {
            is_union: kind_flag,
        },
        BtfKind::Typedef => TypeData::Typedef {
            target: size_or_type,
        },
        BtfKind::Volatile => TypeData::Volatile {
            target: size_or_type,
        },
        BtfKind::Const => TypeData::Const {
            target: size_or_type,
        },
        BtfKind::Restrict => TypeData::Restrict {
            target: size_or_type,
        },
        BtfKind::TypeTag => TypeData::TypeTag {
            target: size_or_type,
        },
        BtfKind::Func => TypeData::Func {
            proto: size_or_type,
            linkage: vlen as u16,
        },
        BtfKind::FuncProto => {
            check_count(r, vlen, 8)?;
            let mut params = Vec::with_capacity(vlen);
            for _ in 0..vlen {
                let param_name = name(strings, r.u32()?)?;
                params.push(Param {
                    name: param_name,
                    type_id: r.u32()?,
                });
            }
            TypeData::FuncProto {
                ret: size_or_type,
                params,
            }
        }
        BtfKind::Var => TypeData::Var {
            type_id: size_or_type,
            linkage: r.u32()?,
        },
        BtfKind::DataSec => {
            check_count(r, vlen, 12)?;
            let mut vars = Vec::with_capacity(vlen);
            for _ in 0..vlen {
                vars.push(DataSecVar {
                    type_id: r.u32()?,
                    offset: r.u32()?,
                    size: r.u32()?,
                });
            }
            TypeData::DataSec {
                size: size_or_type,
                vars,
            }
        }
        BtfKind::Float => TypeData::Float { size: size_or_type },
        BtfKind::DeclTag => TypeData::DeclTag {
            target: size_or_type,
            component: r.i32()?,
        },
    };
    Ok(BtfType {
        name: type_name,
        data,
    })
}
