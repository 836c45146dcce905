//! The table of commands: names, abbreviations, usage, one line of help.
//! The parser resolves names through it and `help` prints it, so the two
//! cannot disagree. The UI's help overlay can list it too.

/// One command of the language.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommandHelp {
    pub name: &'static str,
    /// Other names and abbreviations (gdb and rr style).
    pub aliases: &'static [&'static str],
    pub usage: &'static str,
    pub summary: &'static str,
}

const fn cmd(
    name: &'static str,
    aliases: &'static [&'static str],
    usage: &'static str,
    summary: &'static str,
) -> CommandHelp {
    CommandHelp {
        name,
        aliases,
        usage,
        summary,
    }
}

/// Every command, in the order `help` lists them.
pub const COMMANDS: &[CommandHelp] = &[
    cmd(
        "step",
        &["s", "si", "stepi"],
        "step [N]",
        "run N instructions (default 1)",
    ),
    cmd(
        "next",
        &["n", "ni", "nexti"],
        "next [N]",
        "run N instructions, stepping over bpf-to-bpf calls and callbacks",
    ),
    cmd(
        "finish",
        &["fin"],
        "finish",
        "run until the current function returns",
    ),
    cmd(
        "continue",
        &["c", "cont"],
        "continue",
        "run until a breakpoint, a watchpoint or the end",
    ),
    cmd(
        "reverse-step",
        &["rs", "rsi", "reverse-stepi"],
        "reverse-step [N]",
        "undo N instructions",
    ),
    cmd(
        "reverse-next",
        &["rn", "rni", "reverse-nexti"],
        "reverse-next [N]",
        "undo N instructions, stepping back over calls",
    ),
    cmd(
        "reverse-finish",
        &["rf"],
        "reverse-finish",
        "go back to the call that entered the current function",
    ),
    cmd(
        "reverse-continue",
        &["rc"],
        "reverse-continue",
        "run backwards until a breakpoint, a watchpoint (who last wrote it) or the start",
    ),
    cmd(
        "goto",
        &["g"],
        "goto STEP",
        "go to a step number (0 = before the first instruction), ignoring breakpoints",
    ),
    cmd(
        "until",
        &["u", "goto-insn"],
        "until INSN",
        "go forward to the next time instruction INSN runs",
    ),
    cmd(
        "back-to",
        &["goto-insn-back"],
        "back-to INSN",
        "go back to the previous time instruction INSN ran",
    ),
    cmd(
        "break",
        &["b", "br"],
        "break [LOCATION] [if COND]",
        "stop before LOCATION: INSN, *INSN, file.c:LINE, FUNCTION or helper NAME (no location: here)",
    ),
    cmd(
        "ignore",
        &[],
        "ignore ID COUNT",
        "do not stop at breakpoint ID the next COUNT times",
    ),
    cmd(
        "condition",
        &["cond"],
        "condition ID [EXPR]",
        "stop at breakpoint ID only when EXPR is true (no EXPR: always)",
    ),
    cmd(
        "enable",
        &["en"],
        "enable [ID...]",
        "enable breakpoints/watchpoints (none given: all)",
    ),
    cmd(
        "disable",
        &["dis"],
        "disable [ID...]",
        "disable breakpoints/watchpoints (none given: all)",
    ),
    cmd(
        "delete",
        &["d", "del"],
        "delete [ID...]",
        "delete breakpoints/watchpoints (none given: all)",
    ),
    cmd(
        "watch",
        &["w", "wa"],
        "watch EXPR",
        "stop when a register or memory changes, forward or backward: r3, *(u64 *)(r10 - 8), pkt[12:14], ctx->mark, *(u32 *)r0",
    ),
    cmd(
        "print",
        &["p", "inspect"],
        "print[/FMT] EXPR",
        "evaluate an expression; FMT: x d u t c ip4 mac be",
    ),
    cmd(
        "x",
        &["examine"],
        "x[/NUF] ADDR-EXPR",
        "hex dump of memory: N units, U = b h w g (1 2 4 8 bytes), F = x d u; default 16 bytes",
    ),
    cmd(
        "origin",
        &["o"],
        "origin EXPR",
        "where the value of a register or memory came from (step, instruction, source line)",
    ),
    cmd(
        "info",
        &["i"],
        "info TOPIC",
        "breakpoints, watchpoints, registers, frame, invocations, maps, state, line",
    ),
    cmd(
        "invocation",
        &["inv"],
        "invocation N",
        "switch to invocation N of the trace (breakpoints are kept)",
    ),
    cmd(
        "where",
        &["bt", "backtrace"],
        "where",
        "the call frames, innermost first",
    ),
    cmd(
        "list",
        &["l"],
        "list [LINE]",
        "source lines around the current line (or LINE)",
    ),
    cmd(
        "disas",
        &["disassemble"],
        "disas [INSN]",
        "instructions around the current one (or INSN)",
    ),
    cmd(
        "help",
        &["h", "?"],
        "help [COMMAND]",
        "this list, or one command's usage",
    ),
];

/// The command called `word` (its name or an alias).
pub fn find(word: &str) -> Option<&'static CommandHelp> {
    COMMANDS
        .iter()
        .find(|c| c.name == word || c.aliases.contains(&word))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_aliases_are_unique() {
        let mut all: Vec<&str> = COMMANDS
            .iter()
            .flat_map(|c| std::iter::once(c.name).chain(c.aliases.iter().copied()))
            .collect();
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n);
    }

    #[test]
    fn every_command_in_the_table_parses() {
        for c in COMMANDS {
            let line = match c.name {
                "goto" | "until" | "back-to" | "invocation" => format!("{} 1", c.name),
                "ignore" => "ignore 1 1".into(),
                "condition" => "condition 1".into(),
                "watch" | "print" | "x" | "origin" => format!("{} r1", c.name),
                "info" => "info registers".into(),
                _ => c.name.to_string(),
            };
            assert!(super::super::parse(&line).is_ok(), "{line}");
        }
    }
}
