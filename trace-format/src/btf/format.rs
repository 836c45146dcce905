//! Printing types and values in C-like syntax.

use std::fmt::Write;

use super::{Btf, MAX_DEPTH, Member, TypeData};

/// Arrays longer than this print their first elements and a count.
const MAX_ARRAY_ELEMS: usize = 64;

pub(crate) fn type_name(btf: &Btf, id: u32, depth: usize) -> String {
    if id == 0 {
        return "void".into();
    }
    if depth > MAX_DEPTH {
        return "<too deep>".into();
    }
    let Some(t) = btf.type_by_id(id) else {
        return format!("<bad type {id}>");
    };
    let named = |keyword: &str| {
        if t.name.is_empty() {
            format!("{keyword} {{...}}")
        } else {
            format!("{keyword} {}", t.name)
        }
    };
    match &t.data {
        TypeData::Int { .. }
        | TypeData::Float { .. }
        | TypeData::Typedef { .. }
        | TypeData::Func { .. }
        | TypeData::Var { .. }
        | TypeData::DataSec { .. } => t.name.clone(),
        TypeData::Struct { .. } => named("struct"),
        TypeData::Union { .. } => named("union"),
        TypeData::Enum { .. } => named("enum"),
        TypeData::Fwd { is_union } => named(if *is_union { "union" } else { "struct" }),
        TypeData::Ptr { target } => {
            let inner = type_name(btf, *target, depth + 1);
            if inner.ends_with('*') {
                format!("{inner}*")
            } else {
                format!("{inner} *")
            }
        }
        TypeData::Array { elem, len, .. } => format!("{}[{len}]", type_name(btf, *elem, depth + 1)),
        TypeData::Const { target } => format!("const {}", type_name(btf, *target, depth + 1)),
        TypeData::Volatile { target } => format!("volatile {}", type_name(btf, *target, depth + 1)),
        TypeData::Restrict { target } | TypeData::TypeTag { target } => {
            type_name(btf, *target, depth + 1)
        }
        TypeData::DeclTag { target, .. } => type_name(btf, *target, depth + 1),
        TypeData::FuncProto { ret, params } => {
            let args: Vec<String> = params
                .iter()
                .map(|p| type_name(btf, p.type_id, depth + 1))
                .collect();
            format!(
                "{} (*)({})",
                type_name(btf, *ret, depth + 1),
                args.join(", ")
            )
        }
    }
}

pub(crate) fn format_value(btf: &Btf, id: u32, bytes: &[u8]) -> String {
    let mut out = String::new();
    value(btf, id, bytes, 0, &mut out);
    out
}

/// Whether the typedef chain from `id` names a byte-order or checksum type
/// (`__be32`, `__le16`, `__sum16`, `__wsum`): those read best in hex.
fn prefers_hex(btf: &Btf, id: u32) -> bool {
    let mut id = id;
    for _ in 0..MAX_DEPTH {
        let Some(t) = btf.type_by_id(id) else {
            return false;
        };
        if matches!(t.data, TypeData::Typedef { .. })
            && (t.name.starts_with("__be")
                || t.name.starts_with("__le")
                || t.name.starts_with("__sum")
                || t.name == "__wsum")
        {
            return true;
        }
        match t.modifier_target() {
            Some(next) => id = next,
            None => return false,
        }
    }
    false
}

fn read_le(bytes: &[u8]) -> u128 {
    bytes
        .iter()
        .take(16)
        .rev()
        .fold(0u128, |acc, &b| (acc << 8) | b as u128)
}

fn sign_extend(v: u128, bits: u32) -> i128 {
    if bits == 0 || bits >= 128 {
        return v as i128;
    }
    let shift = 128 - bits;
    ((v << shift) as i128) >> shift
}

fn truncated(out: &mut String, need: u64, have: usize) {
    let _ = write!(out, "<truncated: {need} bytes needed, {have} available>");
}

fn write_int(out: &mut String, raw: u128, bits: u32, signed: bool, hex: bool) {
    if signed && !hex {
        let _ = write!(out, "{}", sign_extend(raw, bits));
    } else if hex {
        let digits = bits.div_ceil(4).max(1) as usize;
        let _ = write!(out, "{raw:#0width$x}", width = digits + 2);
    } else {
        let _ = write!(out, "{raw}");
    }
}

fn value(btf: &Btf, id: u32, bytes: &[u8], depth: usize, out: &mut String) {
    if depth > MAX_DEPTH {
        out.push_str("<too deep>");
        return;
    }
    let hex = prefers_hex(btf, id);
    let rid = btf.resolve(id);
    let Some(t) = btf.type_by_id(rid) else {
        let _ = write!(out, "<{} bytes of void>", bytes.len());
        return;
    };
    match &t.data {
        TypeData::Int {
            size,
            signed,
            is_bool,
            bit_offset,
            bits,
            ..
        } => {
            let size = *size as usize;
            let Some(b) = bytes.get(..size) else {
                return truncated(out, size as u64, bytes.len());
            };
            let mut raw = read_le(b);
            let mut width = (size as u32).saturating_mul(8).min(128);
            if *bits != 0 && (*bits as u32) < width {
                raw = (raw >> (*bit_offset as u32).min(127)) & ((1u128 << *bits) - 1);
                width = *bits as u32;
            }
            if *is_bool {
                out.push_str(if raw != 0 { "true" } else { "false" });
            } else {
                write_int(out, raw, width, *signed, hex);
            }
        }
        TypeData::Enum {
            size,
            signed,
            values,
            ..
        } => {
            let size = *size as usize;
            let Some(b) = bytes.get(..size.min(8)) else {
                return truncated(out, size as u64, bytes.len());
            };
            let raw = read_le(b);
            let v = if *signed {
                // At most 8 bytes were read; a hostile size must not overflow.
                sign_extend(raw, (size.min(8) * 8) as u32) as i64
            } else {
                raw as i64
            };
            match values.iter().find(|e| e.value == v) {
                Some(e) => out.push_str(&e.name),
                None if *signed => {
                    let _ = write!(out, "{v}");
                }
                None => {
                    let _ = write!(out, "{raw}");
                }
            }
        }
        TypeData::Float { size } => match bytes.get(..*size as usize) {
            Some(b) if b.len() == 4 => {
                let _ = write!(out, "{}", f32::from_le_bytes([b[0], b[1], b[2], b[3]]));
            }
            Some(b) if b.len() == 8 => {
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                let _ = write!(out, "{}", f64::from_le_bytes(a));
            }
            Some(b) => {
                let _ = write!(out, "<float{} {:#x}>", b.len() * 8, read_le(b));
            }
            None => truncated(out, *size as u64, bytes.len()),
        },
        TypeData::Ptr { .. } => match bytes.get(..8) {
            Some(b) => {
                let _ = write!(out, "{:#x}", read_le(b));
            }
            None => truncated(out, 8, bytes.len()),
        },
        TypeData::Array { elem, len, .. } => array(btf, *elem, *len as usize, bytes, depth, out),
        TypeData::Struct { size, members } | TypeData::Union { size, members } => {
            if bytes.len() < *size as usize {
                return truncated(out, *size as u64, bytes.len());
            }
            aggregate(btf, members, bytes, depth, out)
        }
        TypeData::Var { type_id, .. } => value(btf, *type_id, bytes, depth + 1, out),
        TypeData::DataSec { vars, .. } => {
            out.push('{');
            for (i, v) in vars.iter().enumerate() {
                out.push_str(if i == 0 { " ." } else { ", ." });
                let name = btf
                    .type_by_id(v.type_id)
                    .map(|t| t.name.as_str())
                    .unwrap_or("?");
                let _ = write!(out, "{name} = ");
                let start = v.offset as usize;
                match start
                    .checked_add(v.size as usize)
                    .and_then(|end| bytes.get(start..end))
                {
                    Some(b) => value(btf, v.type_id, b, depth + 1, out),
                    None => truncated(out, v.offset as u64 + v.size as u64, bytes.len()),
                }
            }
            out.push_str(if vars.is_empty() { "}" } else { " }" });
        }
        _ => {
            let _ = write!(out, "<{}: {} bytes>", btf.type_name(rid), bytes.len());
        }
    }
}

fn is_char_type(btf: &Btf, id: u32) -> bool {
    matches!(
        btf.type_by_id(btf.resolve(id)).map(|t| &t.data),
        Some(TypeData::Int { size: 1, is_char, .. }) if *is_char
    ) || btf
        .type_by_id(btf.resolve(id))
        .is_some_and(|t| t.name == "char" && matches!(t.data, TypeData::Int { size: 1, .. }))
}

fn array(btf: &Btf, elem: u32, len: usize, bytes: &[u8], depth: usize, out: &mut String) {
    let Some(elem_size) = btf.size_of(elem).map(|s| s as usize) else {
        let _ = write!(out, "<array of unsized {}>", btf.type_name(elem));
        return;
    };
    if is_char_type(btf, elem) && elem_size == 1 {
        let b = &bytes[..len.min(bytes.len())];
        let text_len = b.iter().position(|&c| c == 0).unwrap_or(b.len());
        let text = &b[..text_len];
        if text.iter().all(|c| c.is_ascii_graphic() || *c == b' ') {
            out.push('"');
            out.push_str(&String::from_utf8_lossy(text));
            out.push('"');
            return;
        }
    }
    out.push('[');
    let shown = len.min(MAX_ARRAY_ELEMS);
    for i in 0..shown {
        if i > 0 {
            out.push_str(", ");
        }
        let start = i.saturating_mul(elem_size);
        match start
            .checked_add(elem_size)
            .and_then(|end| bytes.get(start..end))
        {
            Some(b) => value(btf, elem, b, depth + 1, out),
            None => {
                truncated(out, (start + elem_size) as u64, bytes.len());
                break;
            }
        }
    }
    if len > shown {
        let _ = write!(out, ", ... ({} more)", len - shown);
    }
    out.push(']');
}

fn aggregate(btf: &Btf, members: &[Member], bytes: &[u8], depth: usize, out: &mut String) {
    out.push('{');
    for (i, m) in members.iter().enumerate() {
        out.push_str(if i == 0 { " " } else { ", " });
        if !m.name.is_empty() {
            let _ = write!(out, ".{} = ", m.name);
        }
        if m.bitfield_size != 0 {
            bitfield(btf, m, bytes, out);
            continue;
        }
        let start = (m.bit_offset / 8) as usize;
        let size = btf.size_of(m.type_id).unwrap_or(0) as usize;
        match start
            .checked_add(size)
            .and_then(|end| bytes.get(start..end))
        {
            Some(b) => value(btf, m.type_id, b, depth + 1, out),
            None => truncated(out, start as u64 + size as u64, bytes.len()),
        }
    }
    out.push_str(if members.is_empty() { "}" } else { " }" });
}

fn bitfield(btf: &Btf, m: &Member, bytes: &[u8], out: &mut String) {
    let bits = m.bitfield_size as u32;
    let first = (m.bit_offset / 8) as usize;
    let shift = m.bit_offset % 8;
    let span = (shift + bits).div_ceil(8) as usize;
    let Some(b) = first
        .checked_add(span)
        .and_then(|end| bytes.get(first..end))
    else {
        return truncated(out, (first + span) as u64, bytes.len());
    };
    let raw = (read_le(b) >> shift) & ((1u128 << bits.min(127)) - 1);
    let rid = btf.resolve(m.type_id);
    let signed = match btf.type_by_id(rid).map(|t| &t.data) {
        Some(TypeData::Int { signed, .. }) | Some(TypeData::Enum { signed, .. }) => *signed,
        _ => false,
    };
    if let Some(TypeData::Enum { values, .. }) = btf.type_by_id(rid).map(|t| &t.data) {
        let v = if signed {
            sign_extend(raw, bits) as i64
        } else {
            raw as i64
        };
        if let Some(e) = values.iter().find(|e| e.value == v) {
            out.push_str(&e.name);
            return;
        }
    }
    write_int(out, raw, bits, signed, false);
}
