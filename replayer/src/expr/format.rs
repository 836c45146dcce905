//! Printing values. The syntax is gdb's: `print/FMT EXPR`, where FMT is one
//! of `x` (hex), `d` (signed decimal), `u` (unsigned decimal), `t`
//! (binary), `c` (character), `ip4` (dotted IPv4 address), `mac` (MAC
//! address), `be` (the bytes read as a big-endian, network-order number).
//! With no format, numbers print in decimal, pointers by region (`pkt+14`),
//! BTF-typed values with their field names, bytes in hex.

use super::ExprError;
use super::eval::{Scope, Value, ValueKind};
use crate::session::describe_value;

/// How to print a value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    #[default]
    Natural,
    Hex,
    Signed,
    Unsigned,
    Binary,
    Char,
    Ip4,
    Mac,
    BigEndian,
}

impl Format {
    /// The format called `name` (`x`, `d`, `u`, `t`, `c`, `ip4`, `mac`, `be`).
    pub fn from_name(name: &str) -> Result<Format, ExprError> {
        Ok(match name {
            "" => Format::Natural,
            "x" => Format::Hex,
            "d" => Format::Signed,
            "u" => Format::Unsigned,
            "t" => Format::Binary,
            "c" => Format::Char,
            "ip4" | "ip" => Format::Ip4,
            "mac" => Format::Mac,
            "be" => Format::BigEndian,
            other => {
                return Err(ExprError::new(
                    0,
                    format!("unknown format `/{other}`; use /x, /d, /u, /t, /c, /ip4, /mac or /be"),
                ));
            }
        })
    }
}

/// Splits `"/x r3"` into (`Format::Hex`, `"r3"`); text without a leading
/// `/` is `Format::Natural`.
pub fn split_format(text: &str) -> Result<(Format, &str), ExprError> {
    let t = text.trim_start();
    let Some(rest) = t.strip_prefix('/') else {
        return Ok((Format::Natural, t));
    };
    let end = rest.find(|c: char| c.is_whitespace()).unwrap_or(rest.len());
    let (name, expr) = rest.split_at(end);
    Ok((Format::from_name(name)?, expr.trim_start()))
}

fn hex_bytes(b: &[u8]) -> String {
    let parts: Vec<String> = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("[{}]", parts.join(" "))
}

fn ip4(b: &[u8]) -> String {
    b.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(".")
}

fn mac(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The bytes of a value as it sits in memory (little-endian for integers
/// of their size).
fn memory_bytes(v: &Value) -> Vec<u8> {
    match &v.kind {
        ValueKind::Int { value, ty } => {
            let n = ty.size.clamp(1, 8) as usize;
            let host = if ty.big_endian {
                // Integers of network-order types were swapped on load; swap back.
                match n {
                    2 => (*value as u16).swap_bytes() as u64,
                    4 => (*value as u32).swap_bytes() as u64,
                    8 => value.swap_bytes(),
                    _ => *value,
                }
            } else {
                *value
            };
            host.to_le_bytes()[..n].to_vec()
        }
        ValueKind::Pointer { addr, .. } => addr.to_le_bytes().to_vec(),
        ValueKind::Bytes(b) | ValueKind::Typed { bytes: b, .. } => b.clone(),
    }
}

/// Prints `value` in `format`.
pub fn render(value: &Value, format: Format, scope: &Scope<'_>) -> String {
    let bytes = memory_bytes(value);
    let size = bytes.len().clamp(1, 8);
    let as_int = value.as_u64();
    match format {
        Format::Natural => match &value.kind {
            ValueKind::Int { value: v, ty } => {
                if ty.size == 8
                    && let Some(t) = describe_value(*v, scope.memory, scope.frames, scope.info)
                        .text()
                        .map(str::to_string)
                {
                    return pointer_text(*v, scope, t);
                }
                if ty.signed {
                    format!("{}", *v as i64)
                } else if ty.size == 8 && (*v as i64) < 0 {
                    format!("{v} ({})", *v as i64)
                } else {
                    format!("{v}")
                }
            }
            ValueKind::Pointer { addr, .. } => {
                let t = describe_value(*addr, scope.memory, scope.frames, scope.info)
                    .text()
                    .map_or_else(|| format!("{addr:#x}"), str::to_string);
                pointer_text(*addr, scope, t)
            }
            ValueKind::Bytes(b) => hex_bytes(b),
            ValueKind::Typed { type_id, bytes } => match &scope.info.btf {
                Some(btf) => btf.format_value(*type_id, bytes),
                None => hex_bytes(bytes),
            },
        },
        Format::Hex => match (&value.kind, as_int) {
            (ValueKind::Bytes(_) | ValueKind::Typed { .. }, _) => hex_bytes(&bytes),
            (_, Some(v)) => format!("{v:#x}"),
            _ => hex_bytes(&bytes),
        },
        Format::Signed | Format::Unsigned | Format::Binary | Format::Char => {
            if bytes.len() > 8 {
                return hex_bytes(&bytes);
            }
            let v = as_int.unwrap_or(0);
            match format {
                Format::Signed => {
                    let shift = 64 - 8 * size as u32;
                    format!("{}", ((v << shift) as i64) >> shift)
                }
                Format::Unsigned => format!("{v}"),
                Format::Binary => format!("{v:#b}"),
                _ => {
                    let c = v as u8;
                    if c.is_ascii_graphic() || c == b' ' {
                        format!("{c} '{}'", c as char)
                    } else {
                        format!("{c} '\\x{c:02x}'")
                    }
                }
            }
        }
        Format::Ip4 => {
            if bytes.len() >= 4 {
                ip4(&bytes[..4])
            } else {
                format!("{} (an IPv4 address needs 4 bytes)", hex_bytes(&bytes))
            }
        }
        Format::Mac => {
            if bytes.len() >= 6 {
                mac(&bytes[..6])
            } else {
                format!("{} (a MAC address needs 6 bytes)", hex_bytes(&bytes))
            }
        }
        Format::BigEndian => {
            if bytes.len() > 8 {
                return hex_bytes(&bytes);
            }
            let v = bytes.iter().fold(0u64, |acc, &b| (acc << 8) | b as u64);
            format!("{v} ({v:#x})")
        }
    }
}

fn pointer_text(addr: u64, _scope: &Scope<'_>, text: String) -> String {
    format!("{text} ({addr:#x})")
}
