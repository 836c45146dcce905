//! A hand-written recursive-descent parser with C precedence. It never
//! panics: nesting is bounded, every token access is checked, and every
//! failure is an [`ExprError`] with the position where it went wrong.

use super::ExprError;
use super::ast::{BinOp, Expr, TypeName, UnOp};
use super::lexer::{Tok, Token, lex};

/// Deepest nesting of parentheses and unary operators accepted.
const MAX_DEPTH: usize = 64;

/// Parses one expression (`r1 + 4`, `*(u32 *)(r10 - 8)`, `pkt[12:14]`,
/// `ctx->data_end`, `*(struct iphdr *)(pkt + 14)`).
pub fn parse(input: &str) -> Result<Expr, ExprError> {
    let tokens = lex(input)?;
    if tokens.is_empty() {
        return Err(ExprError::new(0, "the expression is empty"));
    }
    let mut p = Parser {
        tokens,
        pos: 0,
        depth: 0,
        end: input.len(),
    };
    let e = p.expr()?;
    if let Some(t) = p.peek_token() {
        return Err(ExprError::new(
            t.at,
            format!("unexpected {} after the expression", describe(&t.tok)),
        ));
    }
    Ok(e)
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Num(n) => format!("number {n}"),
        Tok::Ident(s) => format!("`{s}`"),
        Tok::Op(o) => format!("`{o}`"),
    }
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
    end: usize,
}

/// Binary operators by precedence level, loosest first.
const LEVELS: &[&[(&str, BinOp)]] = &[
    &[("||", BinOp::LogOr)],
    &[("&&", BinOp::LogAnd)],
    &[("|", BinOp::Or)],
    &[("^", BinOp::Xor)],
    &[("&", BinOp::And)],
    &[("==", BinOp::Eq), ("!=", BinOp::Ne)],
    &[
        ("<=", BinOp::Le),
        (">=", BinOp::Ge),
        ("<", BinOp::Lt),
        (">", BinOp::Gt),
    ],
    &[("<<", BinOp::Shl), (">>", BinOp::Shr)],
    &[("+", BinOp::Add), ("-", BinOp::Sub)],
    &[("*", BinOp::Mul), ("/", BinOp::Div), ("%", BinOp::Rem)],
];

impl Parser {
    fn peek_token(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.pos).map(|t| &t.tok)
    }
    fn peek_at(&self, n: usize) -> Option<&Tok> {
        self.tokens.get(self.pos + n).map(|t| &t.tok)
    }
    fn here(&self) -> usize {
        self.peek_token().map_or(self.end, |t| t.at)
    }
    fn is_op(&self, op: &str) -> bool {
        matches!(self.peek(), Some(Tok::Op(o)) if *o == op)
    }
    fn eat_op(&mut self, op: &str) -> bool {
        if self.is_op(op) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn expect_op(&mut self, op: &str, what: &str) -> Result<(), ExprError> {
        if self.eat_op(op) {
            return Ok(());
        }
        let found = match self.peek() {
            Some(t) => describe(t),
            None => "the end of the expression".into(),
        };
        Err(ExprError::new(
            self.here(),
            format!("expected `{op}` {what}, found {found}"),
        ))
    }
    fn ident(&mut self, what: &str) -> Result<String, ExprError> {
        match self.peek().cloned() {
            Some(Tok::Ident(s)) => {
                self.pos += 1;
                Ok(s)
            }
            other => Err(ExprError::new(
                self.here(),
                format!(
                    "expected {what}, found {}",
                    other.map_or("the end of the expression".into(), |t| describe(&t))
                ),
            )),
        }
    }

    fn enter(&mut self) -> Result<(), ExprError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ExprError::new(
                self.here(),
                format!("the expression nests deeper than {MAX_DEPTH} levels"),
            ));
        }
        Ok(())
    }

    fn expr(&mut self) -> Result<Expr, ExprError> {
        self.enter()?;
        let e = self.binary(0);
        self.depth -= 1;
        e
    }

    fn binary(&mut self, level: usize) -> Result<Expr, ExprError> {
        let Some(ops) = LEVELS.get(level) else {
            return self.unary();
        };
        let mut left = self.binary(level + 1)?;
        loop {
            let found = ops.iter().find(|(s, _)| self.is_op(s)).map(|(_, op)| *op);
            let Some(op) = found else { break };
            self.pos += 1;
            let right = self.binary(level + 1)?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    /// Whether the tokens at `pos+1..` spell a type name followed by `)` or `*`.
    fn cast_ahead(&self) -> bool {
        match self.peek_at(1) {
            Some(Tok::Ident(s)) if s == "struct" || s == "union" || s == "enum" => true,
            Some(Tok::Ident(s)) if TypeName::scalar(s).is_some() => {
                matches!(self.peek_at(2), Some(Tok::Op(")")) | Some(Tok::Op("*")))
            }
            _ => false,
        }
    }

    fn type_name(&mut self) -> Result<TypeName, ExprError> {
        let at = self.here();
        let first = self.ident("a type name")?;
        if first == "struct" || first == "union" || first == "enum" {
            let name = self.ident(&format!("a {first} name"))?;
            return Ok(TypeName::Aggregate {
                keyword: first,
                name,
            });
        }
        TypeName::scalar(&first).ok_or_else(|| {
            ExprError::new(
                at,
                format!(
                    "`{first}` is not a type; use u8..u64, s8..s64, __be16, __be32 or struct NAME"
                ),
            )
        })
    }

    fn unary(&mut self) -> Result<Expr, ExprError> {
        self.enter()?;
        let e = self.unary_inner();
        self.depth -= 1;
        e
    }

    fn unary_inner(&mut self) -> Result<Expr, ExprError> {
        for (op, un) in [
            ("-", UnOp::Neg),
            ("!", UnOp::Not),
            ("~", UnOp::BitNot),
            ("*", UnOp::Deref),
        ] {
            if self.eat_op(op) {
                let inner = self.unary()?;
                return Ok(Expr::Unary(un, Box::new(inner)));
            }
        }
        if self.is_op("(") && self.cast_ahead() {
            self.pos += 1;
            let ty = self.type_name()?;
            let pointer = self.eat_op("*");
            self.expect_op(")", "to close the cast")?;
            let inner = self.unary()?;
            return Ok(Expr::Cast {
                ty,
                pointer,
                expr: Box::new(inner),
            });
        }
        self.postfix()
    }

    fn postfix(&mut self) -> Result<Expr, ExprError> {
        let mut e = self.primary()?;
        loop {
            if self.eat_op("[") {
                let lo = self.expr()?;
                if self.eat_op(":") {
                    let hi = self.expr()?;
                    self.expect_op("]", "to close the slice")?;
                    e = Expr::Slice(Box::new(e), Box::new(lo), Box::new(hi));
                } else {
                    self.expect_op("]", "to close the index")?;
                    e = Expr::Index(Box::new(e), Box::new(lo));
                }
            } else if self.eat_op("->") {
                let f = self.ident("a field name after `->`")?;
                e = Expr::Arrow(Box::new(e), f);
            } else if self.eat_op(".") {
                let f = self.ident("a field name after `.`")?;
                e = Expr::Field(Box::new(e), f);
            } else {
                return Ok(e);
            }
        }
    }

    fn primary(&mut self) -> Result<Expr, ExprError> {
        let at = self.here();
        match self.peek().cloned() {
            Some(Tok::Num(n)) => {
                self.pos += 1;
                Ok(Expr::Num(n))
            }
            Some(Tok::Ident(name)) => {
                self.pos += 1;
                if let Some(r) = register(&name, 'r') {
                    return Ok(Expr::Reg(r));
                }
                if let Some(r) = register(&name, 'w') {
                    return Ok(Expr::Reg32(r));
                }
                match name.as_str() {
                    "pkt" | "data" => Ok(Expr::Packet),
                    "pkt_end" | "data_end" => Ok(Expr::PacketEnd),
                    "ctx" => Ok(Expr::Ctx),
                    "fp" => Ok(Expr::Reg(10)),
                    _ => Err(ExprError::new(
                        at,
                        format!(
                            "unknown name `{name}`; expressions use r0-r10, w0-w10, pkt, pkt_end, ctx and numbers"
                        ),
                    )),
                }
            }
            Some(Tok::Op("(")) => {
                self.pos += 1;
                let e = self.expr()?;
                self.expect_op(")", "to close the parenthesis")?;
                Ok(e)
            }
            Some(t) => Err(ExprError::new(
                at,
                format!("expected a value, found {}", describe(&t)),
            )),
            None => Err(ExprError::new(
                at,
                "the expression ends where a value was expected",
            )),
        }
    }
}

/// `r0`..`r10` (or `w0`..`w10`).
fn register(name: &str, prefix: char) -> Option<u8> {
    let digits = name.strip_prefix(prefix)?;
    if digits.is_empty() || digits.len() > 2 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u8 = digits.parse().ok()?;
    (n <= 10).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_follows_c() {
        let e = parse("r1 + 2 * 3 == 7 && r2").unwrap();
        let Expr::Binary(BinOp::LogAnd, l, _) = e else {
            panic!("{e:?}")
        };
        let Expr::Binary(BinOp::Eq, l, _) = *l else {
            panic!()
        };
        assert!(matches!(*l, Expr::Binary(BinOp::Add, _, _)));
    }

    #[test]
    fn casts_derefs_slices_and_fields() {
        let e = parse("*(u32 *)(r10 - 8)").unwrap();
        let Expr::Unary(UnOp::Deref, inner) = e else {
            panic!()
        };
        assert!(matches!(*inner, Expr::Cast { pointer: true, .. }));
        assert!(matches!(parse("pkt[12:14]").unwrap(), Expr::Slice(..)));
        assert!(matches!(parse("ctx->data_end").unwrap(), Expr::Arrow(..)));
        let e = parse("(*(struct iphdr *)(pkt + 14)).saddr").unwrap();
        assert!(matches!(e, Expr::Field(..)));
        // A parenthesised register is not a cast.
        assert!(matches!(parse("(r1) + 1").unwrap(), Expr::Binary(..)));
        assert!(matches!(parse("w3").unwrap(), Expr::Reg32(3)));
    }

    #[test]
    fn errors_name_the_problem() {
        assert!(parse("").unwrap_err().message.contains("empty"));
        assert!(parse("r11").unwrap_err().message.contains("r11"));
        assert!(parse("*(u32 *)(r10 - 8").unwrap_err().message.contains(")"));
        assert!(parse("r1 +").unwrap_err().message.contains("ends"));
        assert!(parse("r1 r2").unwrap_err().message.contains("after"));
        assert!(parse("(struct 5 *)r1").is_err());
        let deep = "(".repeat(1000) + "1" + &")".repeat(1000);
        assert!(parse(&deep).unwrap_err().message.contains("nests"));
        let minus = "-".repeat(1000) + "1";
        assert!(parse(&minus).is_err());
    }
}
