//! Classifies one line of a verifier log (log level 2). Everything that
//! depends on how a kernel version words a line stays in this file and in
//! `reg.rs` / `state.rs`.

/// One line, recognised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Line<'a> {
    Blank,
    /// `func#1 @115`
    Func {
        index: usize,
        start: usize,
    },
    /// `Live regs before insn:` (6.15+)
    LiveRegsHeader,
    /// `      0: .1........ (bf) r6 = r1` (6.15+): registers live before
    /// each instruction, with its disassembly.
    LiveRegs {
        insn: usize,
        mask: u16,
        opcode: Option<u8>,
        text: &'a str,
    },
    /// `; if (n) @ sock_filter.bpf.c:72`
    Source {
        text: &'a str,
        file: Option<&'a str>,
        line: Option<u32>,
    },
    /// `35: (15) if r0 == 0x0 goto pc+51      ; R0=map_value(...)`
    Insn {
        insn: usize,
        opcode: Option<u8>,
        text: &'a str,
        state: Option<&'a str>,
    },
    /// `10: R0=scalar() fp-8=????mmmm`
    State {
        insn: usize,
        state: &'a str,
    },
    /// `50: safe`
    Safe {
        insn: usize,
    },
    /// `from 35 to 87: R0=0 ...` / `from 3 to 50: safe` /
    /// `from 5 to 9 (speculative execution): ...`
    From {
        from: usize,
        to: usize,
        speculative: bool,
        safe: bool,
        state: &'a str,
    },
    /// `frame 0: propagating r1,r4,fp-8` (older: `propagating r6`)
    Propagating {
        what: &'a str,
    },
    /// `caller:`, `callee:`, `returning from callee:`, `to caller at 10:`
    CallBlock(CallBlock),
    /// A state line inside a call block (starts with a space).
    IndentedState {
        state: &'a str,
    },
    /// `verification time ...`, `stack depth ...`, `processed ...`
    Stats,
    /// Lines that explain the verifier's own bookkeeping and carry no
    /// state: `mark_precise: ...`, `(0) frame 0 insn 34 +live -8`,
    /// `Validating f() func#1...`, `Func#1 (...) is global and assumed valid.`,
    /// `SCC enter (64,1)` (6.18 loop bookkeeping)
    Bookkeeping,
    /// Anything else (error messages, unknown lines).
    Other(&'a str),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CallBlock {
    Caller,
    Callee,
    Returning,
    ToCaller { insn: usize },
}

/// `123:` at the start: the number and the rest after ": ".
fn insn_prefix(s: &str) -> Option<(usize, &str)> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || digits > 9 {
        return None;
    }
    let rest = s[digits..].strip_prefix(':')?;
    Some((s[..digits].parse().ok()?, rest))
}

/// `(bf) r6 = r1` → (Some(0xbf), "r6 = r1").
fn opcode_and_text(s: &str) -> Option<(Option<u8>, &str)> {
    let rest = s.strip_prefix('(')?;
    let close = rest.find(')')?;
    let op = u8::from_str_radix(&rest[..close], 16).ok();
    if close != 2 {
        return None;
    }
    Some((op, rest[close + 1..].trim_start()))
}

pub(crate) fn classify(raw: &str) -> Line<'_> {
    let line = raw.trim_end();
    if line.trim().is_empty() {
        return Line::Blank;
    }
    // Indented lines: the live-regs table and call-block states.
    if line.starts_with(' ') {
        let t = line.trim_start();
        // 6.18 prefixes instructions inside loops with a loop number: `  1 178: ...`.
        let numbered = t
            .split_once(' ')
            .filter(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|(_, rest)| insn_prefix(rest.trim_start()));
        if let Some((insn, rest)) = insn_prefix(t).or(numbered) {
            let rest = rest.trim_start();
            if let Some((mask_text, after)) = rest.split_once(' ')
                && mask_text.len() == 10
                && mask_text.chars().all(|c| c == '.' || c.is_ascii_digit())
                && let Some((opcode, text)) = opcode_and_text(after.trim_start())
            {
                let mask = mask_text
                    .chars()
                    .enumerate()
                    .filter(|(_, c)| *c != '.')
                    .fold(0u16, |m, (i, _)| m | (1 << i));
                return Line::LiveRegs {
                    insn,
                    mask,
                    opcode,
                    text,
                };
            }
        }
        if t.starts_with('R') || t.starts_with("frame") || t.starts_with("fp") {
            return Line::IndentedState { state: t };
        }
    }
    let t = line.trim_start();
    if let Some(src) = t.strip_prefix(';') {
        let src = src.trim();
        // `text @ file:line` (5.x+); older logs have only the text.
        if let Some((text, loc)) = src.rsplit_once(" @ ")
            && let Some((file, n)) = loc.rsplit_once(':')
            && let Ok(n) = n.trim().parse()
        {
            return Line::Source {
                text: text.trim_end(),
                file: Some(file),
                line: Some(n),
            };
        }
        return Line::Source {
            text: src,
            file: None,
            line: None,
        };
    }
    if let Some((insn, rest)) = insn_prefix(t) {
        let rest_trim = rest.trim_start();
        if rest_trim == "safe" {
            return Line::Safe { insn };
        }
        if rest_trim.starts_with('(')
            && let Some((opcode, after)) = opcode_and_text(rest_trim)
        {
            let (text, state) = match after.find(';') {
                Some(i) => (after[..i].trim_end(), Some(after[i + 1..].trim())),
                None => (after.trim_end(), None),
            };
            return Line::Insn {
                insn,
                opcode,
                text,
                state,
            };
        }
        if rest_trim.is_empty()
            || rest_trim.starts_with('R')
            || rest_trim.starts_with("frame")
            || rest_trim.starts_with("fp")
            || rest_trim.starts_with("refs")
        {
            return Line::State {
                insn,
                state: rest_trim,
            };
        }
        return Line::Other(line);
    }
    if let Some(rest) = t.strip_prefix("from ")
        && let Some((from, rest)) = rest.split_once(" to ")
        && let Ok(from) = from.trim().parse()
    {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if let Ok(to) = rest[..digits].parse() {
            let mut after = &rest[digits..];
            let speculative = after.starts_with(" (speculative execution)");
            if speculative {
                after = &after[" (speculative execution)".len()..];
            }
            if let Some(state) = after.strip_prefix(':') {
                let state = state.trim();
                return Line::From {
                    from,
                    to,
                    speculative,
                    safe: state == "safe",
                    state,
                };
            }
        }
    }
    if let Some(rest) = t.strip_prefix("func#")
        && let Some((index, start)) = rest.split_once(" @")
        && let (Ok(index), Ok(start)) = (index.parse(), start.trim().parse())
    {
        return Line::Func { index, start };
    }
    match t {
        "Live regs before insn:" => return Line::LiveRegsHeader,
        "caller:" => return Line::CallBlock(CallBlock::Caller),
        "callee:" => return Line::CallBlock(CallBlock::Callee),
        "returning from callee:" => return Line::CallBlock(CallBlock::Returning),
        _ => {}
    }
    if let Some(rest) = t.strip_prefix("to caller at ")
        && let Some(n) = rest.strip_suffix(':')
        && let Ok(insn) = n.trim().parse()
    {
        return Line::CallBlock(CallBlock::ToCaller { insn });
    }
    if let Some(i) = t.find("propagating ")
        && (i == 0 || t.starts_with("frame "))
    {
        return Line::Propagating {
            what: t[i + "propagating ".len()..].trim(),
        };
    }
    if t.starts_with("verification time ")
        || t.starts_with("stack depth ")
        || (t.starts_with("processed ") && t.contains(" insns"))
    {
        return Line::Stats;
    }
    if t.starts_with("mark_precise:")
        || t.starts_with("Validating ")
        || (t.starts_with("Func#") && t.contains("assumed valid"))
        || t.starts_with("last_idx ")
        || t.starts_with("regs=")
        || t.starts_with("parent ")
        || t.starts_with("SCC ")
        || is_live_stack_line(t)
    {
        return Line::Bookkeeping;
    }
    Line::Other(line)
}

/// 6.17+: `(0) frame 0 insn 34 +live -8`, `(9,115) live stack update done in 2 iterations`.
fn is_live_stack_line(t: &str) -> bool {
    let Some(rest) = t.strip_prefix('(') else {
        return false;
    };
    let Some((inside, after)) = rest.split_once(')') else {
        return false;
    };
    inside.chars().all(|c| c.is_ascii_digit() || c == ',')
        && (after.trim_start().starts_with("frame ") || after.contains("live stack"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_of_lines() {
        assert_eq!(
            classify("func#1 @115"),
            Line::Func {
                index: 1,
                start: 115
            }
        );
        assert!(matches!(
            classify("  1 178: 012....... (e5) may_goto pc+5"),
            Line::LiveRegs {
                insn: 178,
                opcode: Some(0xe5),
                text: "may_goto pc+5",
                ..
            }
        ));
        assert!(matches!(
            classify("      2: .1....6... (16) if w1 == 0xdd86 goto pc+34"),
            Line::LiveRegs { insn: 2, mask, opcode: Some(0x16), text: "if w1 == 0xdd86 goto pc+34" } if mask == 0b100_0010
        ));
        assert_eq!(
            classify("; if (n) @ sock_filter.bpf.c:72"),
            Line::Source {
                text: "if (n)",
                file: Some("sock_filter.bpf.c"),
                line: Some(72)
            }
        );
        assert_eq!(
            classify(
                "35: (15) if r0 == 0x0 goto pc+51      ; R0=map_value(map=verdicts,ks=4,vs=8)"
            ),
            Line::Insn {
                insn: 35,
                opcode: Some(0x15),
                text: "if r0 == 0x0 goto pc+51",
                state: Some("R0=map_value(map=verdicts,ks=4,vs=8)")
            }
        );
        assert_eq!(
            classify("9: (85) call pc+105"),
            Line::Insn {
                insn: 9,
                opcode: Some(0x85),
                text: "call pc+105",
                state: None
            }
        );
        assert_eq!(
            classify("75: (85) call bpf_ringbuf_submit#132          ;"),
            Line::Insn {
                insn: 75,
                opcode: Some(0x85),
                text: "call bpf_ringbuf_submit#132",
                state: Some("")
            }
        );
        assert_eq!(
            classify("10: R0=scalar() fp-8=????mmmm"),
            Line::State {
                insn: 10,
                state: "R0=scalar() fp-8=????mmmm"
            }
        );
        assert_eq!(classify("50: safe"), Line::Safe { insn: 50 });
        assert!(matches!(
            classify("from 3 to 50: safe"),
            Line::From {
                from: 3,
                to: 50,
                safe: true,
                ..
            }
        ));
        assert!(matches!(
            classify("from 70 to 82: frame1: R1=scalar() cb"),
            Line::From {
                from: 70,
                to: 82,
                safe: false,
                state: "frame1: R1=scalar() cb",
                ..
            }
        ));
        assert!(matches!(
            classify("from 5 to 9 (speculative execution): R1=0"),
            Line::From {
                speculative: true,
                ..
            }
        ));
        assert_eq!(
            classify("to caller at 10:"),
            Line::CallBlock(CallBlock::ToCaller { insn: 10 })
        );
        assert_eq!(
            classify(" frame1: R1=ctx() R10=fp0"),
            Line::IndentedState {
                state: "frame1: R1=ctx() R10=fp0"
            }
        );
        assert_eq!(
            classify("frame 0: propagating r1,r4,fp-8"),
            Line::Propagating { what: "r1,r4,fp-8" }
        );
        assert_eq!(
            classify("(9,115) frame 0 insn 131 +live -24 "),
            Line::Bookkeeping
        );
        assert_eq!(
            classify("(0) live stack update done in 2 iterations"),
            Line::Bookkeeping
        );
        assert_eq!(
            classify("mark_precise: frame0: regs=r2 stack= before 19: (54) w2 &= 60"),
            Line::Bookkeeping
        );
        assert_eq!(classify("R0 !read_ok"), Line::Other("R0 !read_ok"));
        assert_eq!(
            classify("processed 12 insns (limit 1000000) max_states_per_insn 0"),
            Line::Stats
        );
    }
}
