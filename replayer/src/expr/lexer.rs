//! Tokens of the expression language. The lexer never panics: anything it
//! does not know becomes an error naming the character and its position.

use super::ExprError;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Tok {
    Num(u64),
    Ident(String),
    /// Punctuation and operators, longest match first (`<<`, `<=`, `->`, ...).
    Op(&'static str),
}

/// A token and the byte offset where it starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub at: usize,
}

const OPS: &[&str] = &[
    "<<", ">>", "<=", ">=", "==", "!=", "&&", "||", "->", "+", "-", "*", "/", "%", "&", "|", "^",
    "~", "!", "<", ">", "(", ")", "[", "]", ":", ".",
];

/// Longest input accepted (a command line, not a program).
pub(crate) const MAX_INPUT: usize = 4096;

pub(crate) fn lex(input: &str) -> Result<Vec<Token>, ExprError> {
    if input.len() > MAX_INPUT {
        return Err(ExprError::new(
            0,
            format!(
                "the expression is {} bytes long; the limit is {MAX_INPUT}",
                input.len()
            ),
        ));
    }
    let bytes = input.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c.is_ascii_digit() {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            let text = &input[start..i];
            out.push(Token {
                tok: Tok::Num(parse_number(text, start)?),
                at: start,
            });
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            out.push(Token {
                tok: Tok::Ident(input[start..i].to_string()),
                at: start,
            });
            continue;
        }
        let rest = &input[i..];
        match OPS.iter().find(|op| rest.starts_with(**op)) {
            Some(op) => {
                out.push(Token {
                    tok: Tok::Op(op),
                    at: i,
                });
                i += op.len();
            }
            None => {
                let ch = rest.chars().next().unwrap_or('?');
                return Err(ExprError::new(
                    i,
                    format!("unexpected character `{ch}` in the expression"),
                ));
            }
        }
    }
    Ok(out)
}

/// Decimal, `0x` hex, `0b` binary or `0o` octal, with optional `_` separators.
fn parse_number(text: &str, at: usize) -> Result<u64, ExprError> {
    let clean: String = text.chars().filter(|&c| c != '_').collect();
    let lower = clean.to_ascii_lowercase();
    let (digits, radix) = if let Some(h) = lower.strip_prefix("0x") {
        (h, 16)
    } else if let Some(b) = lower.strip_prefix("0b") {
        (b, 2)
    } else if let Some(o) = lower.strip_prefix("0o") {
        (o, 8)
    } else {
        (lower.as_str(), 10)
    };
    if digits.is_empty() {
        return Err(ExprError::new(at, format!("`{text}` is not a number")));
    }
    u64::from_str_radix(digits, radix)
        .map_err(|_| ExprError::new(at, format!("`{text}` is not a number that fits in 64 bits")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_operators() {
        let t = lex("*(u32 *)(r10 - 0x8) >= 1_000").unwrap();
        let toks: Vec<_> = t.into_iter().map(|t| t.tok).collect();
        assert_eq!(toks[0], Tok::Op("*"));
        assert_eq!(toks[2], Tok::Ident("u32".into()));
        assert!(toks.contains(&Tok::Num(8)));
        assert!(toks.contains(&Tok::Op(">=")));
        assert_eq!(*toks.last().unwrap(), Tok::Num(1000));
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(lex("r1 @ 2").unwrap_err().message.contains('@'));
        assert!(lex("0x").is_err());
        assert!(lex("99999999999999999999999").is_err());
        assert!(lex("0xzz").is_err());
    }
}
