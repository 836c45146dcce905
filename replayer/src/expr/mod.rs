//! Expressions over a paused machine, as typed at a debugger prompt.
//!
//! - Registers `r0`-`r10` (`fp` = r10), their low halves `w0`-`w10`,
//!   integer literals (decimal, `0x`, `0b`, `0o`).
//! - C operators with C precedence: `+ - * / % & | ^ << >> ~ ! == != < <= > >= && ||`.
//! - Memory through C casts: `*(u32 *)(r10 - 8)`, `*(u8 *)(pkt + 23)`,
//!   `*(__be16 *)(pkt + 12)` (network byte order), `((u16 *)pkt)[6]`.
//! - Packet and slices: `pkt`, `pkt_end`, `pkt[12:14]` (bytes 12..14 of the
//!   packet data), any `ADDR[lo:hi]`.
//! - The context: `ctx`, `ctx->data_end` (by the context's BTF type, or the
//!   kernel's `xdp_md`/`__sk_buff` layout), `*ctx` (the whole structure).
//! - BTF types: `*(struct iphdr *)(pkt + 14)` prints named fields,
//!   `((struct iphdr *)(pkt + 14))->saddr` one of them; `*r0` on a map value
//!   prints it as the map's value type.
//! - Formats, gdb style, for `print/FMT`: see [`format`].
//!
//! Parsing and evaluation never panic; errors say what is wrong.

pub mod ast;
pub mod eval;
pub mod format;
mod lexer;
mod parser;

pub use ast::{BinOp, Expr, Scalar, TypeName, UnOp};
pub use eval::{Location, MAX_READ, Pointee, Scope, Value, ValueKind, eval};
pub use format::{Format, render, split_format};
pub use parser::parse;

/// A parse or evaluation error: one sentence, and the byte offset in the
/// input where parsing failed (0 for evaluation errors).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ExprError {
    pub at: usize,
    pub message: String,
}

impl ExprError {
    pub fn new(at: usize, message: impl Into<String>) -> ExprError {
        ExprError {
            at,
            message: message.into(),
        }
    }
}

/// Parses and evaluates `text` in `scope`.
pub fn evaluate(text: &str, scope: &Scope<'_>) -> Result<Value, ExprError> {
    eval(&parse(text)?, scope)
}

/// Parses `"/FMT EXPR"` (or just `EXPR`), evaluates it and prints it.
pub fn print(text: &str, scope: &Scope<'_>) -> Result<String, ExprError> {
    let (fmt, expr) = split_format(text)?;
    let v = evaluate(expr, scope)?;
    Ok(render(&v, fmt, scope))
}
