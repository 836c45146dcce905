//! Parsing one command line into a [`Command`]. Names and abbreviations
//! follow gdb and rr (`s`, `n`, `c`, `rs`, `rc`, `b`, `p/x`, `x/16xb`,
//! `i r`); the table of names is [`super::help::COMMANDS`].
//!
//! Parsing never evaluates anything: expressions and breakpoint locations
//! are kept as text and checked by the session when the command runs.

use super::help::{self, COMMANDS};

/// One parsed command. Expressions and locations are kept as typed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `step [N]`: N instructions forward.
    Step(u64),
    /// `next [N]`: N instructions forward, stepping over calls.
    Next(u64),
    /// `finish`: until the current function returns.
    Finish,
    /// `continue`: until a breakpoint, a watchpoint or the end.
    Continue,
    ReverseStep(u64),
    ReverseNext(u64),
    ReverseFinish,
    ReverseContinue,
    /// `goto STEP`: to a position in time (0 = before the first instruction).
    Goto(u64),
    /// `until INSN` / `goto-insn INSN`: the next time instruction INSN is about to run.
    Until(usize),
    /// `back-to INSN`: the previous time instruction INSN was about to run.
    BackTo(usize),
    /// `break [LOCATION] [if COND]`; no location = the current instruction.
    Break {
        location: BreakSpec,
        condition: Option<String>,
    },
    /// `ignore ID COUNT`.
    Ignore {
        id: u32,
        count: u64,
    },
    /// `condition ID [EXPR]` (no expression removes the condition).
    Condition {
        id: u32,
        condition: Option<String>,
    },
    /// `enable [ID...]` (none = all).
    Enable(Vec<u32>),
    Disable(Vec<u32>),
    Delete(Vec<u32>),
    /// `watch EXPR`.
    Watch(String),
    /// `print[/FMT] EXPR`; `format` is the text after `/` (`x`, `ip4`, ...).
    Print {
        format: Option<String>,
        expr: String,
    },
    /// `x[/NUF] EXPR`: a hex dump of memory at an address.
    Examine(Examine),
    /// `origin EXPR`.
    Origin(String),
    Info(InfoTopic),
    /// `invocation N`: switch to another invocation of the trace.
    Invocation(u64),
    /// `where` / `bt`.
    Backtrace,
    /// `list [LINE]`: source lines around the current one (or LINE).
    List(Option<u32>),
    /// `disas [INSN]`: instructions around the current one (or INSN).
    Disas(Option<usize>),
    /// `help [COMMAND]`.
    Help(Option<String>),
}

/// Where a breakpoint goes, as typed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BreakSpec {
    /// No location: the current instruction.
    Here,
    /// `42`, `*42`, `file.c:42` or a function name: the session resolves it.
    Text(String),
    /// `helper NAME`: before every call of this helper.
    Helper(String),
}

/// What `info` shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InfoTopic {
    Breakpoints,
    Watchpoints,
    Registers,
    Frame,
    Invocations,
    Maps,
    /// Every register and every byte of live memory (for scripts and tests).
    State,
    /// The current position: step, instruction, source line.
    Line,
}

/// Unit of an `x` dump.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DumpFormat {
    Hex,
    Signed,
    Unsigned,
}

/// `x/NUF EXPR`: `count` units of `unit` bytes (1, 2, 4, 8) printed in `format`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Examine {
    pub count: u32,
    pub unit: u8,
    pub format: DumpFormat,
    pub expr: String,
}

/// Largest count of units `x` dumps.
pub const MAX_EXAMINE_BYTES: u32 = 4096;

/// Why a line is not a command: one sentence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError(pub String);

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseError {}

fn error<T>(m: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError(m.into()))
}

/// Splits `word/FMT rest` into the command word, the format suffix and the rest.
fn split_head(line: &str) -> (&str, Option<&str>, &str) {
    let line = line.trim();
    let end = line
        .find(|c: char| c.is_whitespace() || c == '/')
        .unwrap_or(line.len());
    let (word, rest) = line.split_at(end);
    if let Some(after) = rest.strip_prefix('/') {
        let fend = after.find(char::is_whitespace).unwrap_or(after.len());
        let (fmt, rest) = after.split_at(fend);
        (word, Some(fmt), rest.trim())
    } else {
        (word, None, rest.trim())
    }
}

/// Parses one command line. An empty line is an error (the caller decides
/// whether it repeats the last command, as gdb does).
pub fn parse(line: &str) -> Result<Command, ParseError> {
    let (word, fmt, rest) = split_head(line);
    if word.is_empty() {
        return error("the line is empty; type `help` for the list of commands");
    }
    let Some(spec) = help::find(word) else {
        return error(format!(
            "`{word}` is not a command; type `help` for the list of commands"
        ));
    };
    let name = spec.name;
    if fmt.is_some() && !matches!(name, "print" | "x") {
        return error(format!("`{name}` takes no /FORMAT; only print and x do"));
    }
    let no_args = |c: Command| {
        if rest.is_empty() {
            Ok(c)
        } else {
            error(format!("`{name}` takes no arguments (got `{rest}`)"))
        }
    };
    match name {
        "step" => count(name, rest).map(Command::Step),
        "next" => count(name, rest).map(Command::Next),
        "reverse-step" => count(name, rest).map(Command::ReverseStep),
        "reverse-next" => count(name, rest).map(Command::ReverseNext),
        "finish" => no_args(Command::Finish),
        "continue" => no_args(Command::Continue),
        "reverse-finish" => no_args(Command::ReverseFinish),
        "reverse-continue" => no_args(Command::ReverseContinue),
        "goto" => number(name, "a step number", rest).map(Command::Goto),
        "until" => insn(name, rest).map(Command::Until),
        "back-to" => insn(name, rest).map(Command::BackTo),
        "break" => parse_break(rest),
        "ignore" => {
            let (id, n) = two_numbers(name, rest, "ignore ID COUNT")?;
            Ok(Command::Ignore {
                id: point_id(id)?,
                count: n,
            })
        }
        "condition" => {
            let (id, expr) = match rest.split_once(char::is_whitespace) {
                Some((id, e)) => (id, Some(e.trim().to_string())),
                None => (rest, None),
            };
            if id.is_empty() {
                return error("`condition` needs a breakpoint number: condition ID [EXPR]");
            }
            Ok(Command::Condition {
                id: point_id(number(name, "a breakpoint number", id)?)?,
                condition: expr.filter(|e| !e.is_empty()),
            })
        }
        "enable" => ids(name, rest).map(Command::Enable),
        "disable" => ids(name, rest).map(Command::Disable),
        "delete" => ids(name, rest).map(Command::Delete),
        "watch" => expr(name, rest).map(Command::Watch),
        "print" => Ok(Command::Print {
            format: fmt.filter(|f| !f.is_empty()).map(str::to_string),
            expr: expr(name, rest)?,
        }),
        "x" => parse_examine(fmt.unwrap_or(""), rest).map(Command::Examine),
        "origin" => expr(name, rest).map(Command::Origin),
        "info" => parse_info(rest).map(Command::Info),
        "invocation" => number(name, "an invocation index", rest).map(Command::Invocation),
        "where" => no_args(Command::Backtrace),
        "list" => {
            if rest.is_empty() {
                Ok(Command::List(None))
            } else {
                let n = number(name, "a line number", rest)?;
                match u32::try_from(n) {
                    Ok(n) => Ok(Command::List(Some(n))),
                    Err(_) => error(format!("line {n} is too large")),
                }
            }
        }
        "disas" => {
            if rest.is_empty() {
                Ok(Command::Disas(None))
            } else {
                insn(name, rest).map(|i| Command::Disas(Some(i)))
            }
        }
        "help" => Ok(Command::Help((!rest.is_empty()).then(|| rest.to_string()))),
        // Every name in COMMANDS is handled above; this is a table mistake.
        other => error(format!("`{other}` is known but not implemented")),
    }
}

fn parse_number(s: &str) -> Option<u64> {
    let s = s.trim();
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()
    } else {
        s.parse().ok()
    }
}

fn number(cmd: &str, what: &str, s: &str) -> Result<u64, ParseError> {
    if s.is_empty() {
        return error(format!("`{cmd}` needs {what}"));
    }
    parse_number(s).ok_or_else(|| {
        ParseError(format!(
            "`{s}` is not a number; `{cmd}` needs {what} (decimal or 0x hex)"
        ))
    })
}

fn count(cmd: &str, s: &str) -> Result<u64, ParseError> {
    if s.is_empty() {
        return Ok(1);
    }
    let n = number(cmd, "a count", s)?;
    if n == 0 {
        return error(format!(
            "`{cmd} 0` does nothing; give a count of at least 1"
        ));
    }
    Ok(n)
}

fn insn(cmd: &str, s: &str) -> Result<usize, ParseError> {
    let s = s.strip_prefix('*').unwrap_or(s);
    let n = number(cmd, "an instruction index", s)?;
    usize::try_from(n).or_else(|_| error(format!("instruction {n} is too large")))
}

fn point_id(n: u64) -> Result<u32, ParseError> {
    u32::try_from(n).or_else(|_| error(format!("there is no breakpoint or watchpoint {n}")))
}

fn two_numbers(cmd: &str, s: &str, usage: &str) -> Result<(u64, u64), ParseError> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    if parts.len() != 2 {
        return error(format!("`{cmd}` needs two numbers: {usage}"));
    }
    Ok((
        number(cmd, "a number", parts[0])?,
        number(cmd, "a number", parts[1])?,
    ))
}

fn ids(cmd: &str, s: &str) -> Result<Vec<u32>, ParseError> {
    s.split_whitespace()
        .map(|w| point_id(number(cmd, "breakpoint numbers", w)?))
        .collect()
}

fn expr(cmd: &str, s: &str) -> Result<String, ParseError> {
    if s.is_empty() {
        return error(format!(
            "`{cmd}` needs an expression, e.g. r3, *(u32 *)(r10 - 8) or pkt[12:14]"
        ));
    }
    Ok(s.to_string())
}

fn parse_break(rest: &str) -> Result<Command, ParseError> {
    // `if` may start the line (`break if r2 > 64`: here, conditionally).
    let (loc, cond) = if let Some(c) = rest.strip_prefix("if ") {
        ("", Some(c))
    } else {
        match rest.split_once(" if ") {
            Some((l, c)) => (l.trim(), Some(c)),
            None => (rest, None),
        }
    };
    let condition = match cond.map(str::trim) {
        Some("") => return error("`break ... if` needs a condition, e.g. break 42 if r2 > 64"),
        c => c.map(str::to_string),
    };
    let location = if loc.is_empty() {
        BreakSpec::Here
    } else if let Some(h) = loc.strip_prefix("helper") {
        let h = h.trim();
        if h.is_empty() && loc == "helper" {
            return error(
                "`break helper` needs a helper name, e.g. break helper bpf_map_lookup_elem",
            );
        }
        if loc.starts_with("helper ") || loc.starts_with("helper\t") {
            BreakSpec::Helper(h.to_string())
        } else {
            // A function that merely starts with "helper".
            BreakSpec::Text(loc.to_string())
        }
    } else if loc.contains(char::is_whitespace) {
        return error(format!(
            "`{loc}` is not one location; use an instruction index, *INSN, file.c:LINE, a function or helper NAME"
        ));
    } else {
        BreakSpec::Text(loc.to_string())
    };
    Ok(Command::Break {
        location,
        condition,
    })
}

fn parse_examine(fmt: &str, rest: &str) -> Result<Examine, ParseError> {
    let digits: String = fmt.chars().take_while(char::is_ascii_digit).collect();
    let mut ex = Examine {
        count: 16,
        unit: 1,
        format: DumpFormat::Hex,
        expr: expr("x", rest)?,
    };
    let mut count_given = false;
    if !digits.is_empty() {
        ex.count = match digits.parse::<u32>() {
            Ok(0) | Err(_) => return error(format!("`x/{fmt}`: the count must be 1 or more")),
            Ok(n) => n,
        };
        count_given = true;
    }
    for c in fmt[digits.len()..].chars() {
        match c {
            'b' => ex.unit = 1,
            'h' => ex.unit = 2,
            'w' => ex.unit = 4,
            'g' => ex.unit = 8,
            'x' => ex.format = DumpFormat::Hex,
            'd' => ex.format = DumpFormat::Signed,
            'u' => ex.format = DumpFormat::Unsigned,
            other => {
                return error(format!(
                    "`x/{fmt}`: `{other}` is not a unit (b h w g) or format (x d u)"
                ));
            }
        }
    }
    if !count_given {
        // 16 bytes by default, whatever the unit.
        ex.count = (16 / ex.unit as u32).max(1);
    }
    if ex.count.saturating_mul(ex.unit as u32) > MAX_EXAMINE_BYTES {
        return error(format!(
            "`x/{fmt}` asks for more than {MAX_EXAMINE_BYTES} bytes; ask for fewer"
        ));
    }
    Ok(ex)
}

fn parse_info(rest: &str) -> Result<InfoTopic, ParseError> {
    let word = rest.split_whitespace().next().unwrap_or("");
    if rest.split_whitespace().count() > 1 {
        return error(format!("`info {rest}`: info takes one topic"));
    }
    // Unique prefixes, as in gdb (`i r`, `info b`).
    const TOPICS: &[(&str, InfoTopic)] = &[
        ("breakpoints", InfoTopic::Breakpoints),
        ("watchpoints", InfoTopic::Watchpoints),
        ("registers", InfoTopic::Registers),
        ("frame", InfoTopic::Frame),
        ("invocations", InfoTopic::Invocations),
        ("maps", InfoTopic::Maps),
        ("state", InfoTopic::State),
        ("line", InfoTopic::Line),
    ];
    let names = || TOPICS.iter().map(|t| t.0).collect::<Vec<_>>().join(", ");
    if word.is_empty() {
        return error(format!("`info` needs a topic: {}", names()));
    }
    let found: Vec<_> = TOPICS.iter().filter(|t| t.0.starts_with(word)).collect();
    match found.as_slice() {
        [one] => Ok(one.1),
        [] => error(format!(
            "`info {word}` is not a topic; use one of {}",
            names()
        )),
        _ => {
            // `info b` means breakpoints in gdb even though it is ambiguous.
            if word == "b" {
                Ok(InfoTopic::Breakpoints)
            } else {
                error(format!(
                    "`info {word}` is ambiguous; use one of {}",
                    names()
                ))
            }
        }
    }
}

/// Every command name with its abbreviations, for completion.
pub fn command_names() -> impl Iterator<Item = &'static str> {
    COMMANDS
        .iter()
        .flat_map(|c| std::iter::once(c.name).chain(c.aliases.iter().copied()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn movement_commands_and_their_abbreviations() {
        assert_eq!(parse("s").unwrap(), Command::Step(1));
        assert_eq!(parse("step 5").unwrap(), Command::Step(5));
        assert_eq!(parse("n").unwrap(), Command::Next(1));
        assert_eq!(parse("fin").unwrap(), Command::Finish);
        assert_eq!(parse("c").unwrap(), Command::Continue);
        assert_eq!(parse("rs 3").unwrap(), Command::ReverseStep(3));
        assert_eq!(parse("rn").unwrap(), Command::ReverseNext(1));
        assert_eq!(parse("rf").unwrap(), Command::ReverseFinish);
        assert_eq!(parse("rc").unwrap(), Command::ReverseContinue);
        assert_eq!(parse("reverse-continue").unwrap(), Command::ReverseContinue);
        assert_eq!(parse("goto 0x10").unwrap(), Command::Goto(16));
        assert_eq!(parse("until *42").unwrap(), Command::Until(42));
        assert_eq!(parse("goto-insn 42").unwrap(), Command::Until(42));
        assert_eq!(parse("back-to 7").unwrap(), Command::BackTo(7));
    }

    #[test]
    fn breakpoints_in_every_form() {
        let b = |l: &str, c: Option<&str>| Command::Break {
            location: BreakSpec::Text(l.into()),
            condition: c.map(Into::into),
        };
        assert_eq!(parse("b 42").unwrap(), b("42", None));
        assert_eq!(parse("break *42").unwrap(), b("*42", None));
        assert_eq!(
            parse("b xdp_fw.bpf.c:88").unwrap(),
            b("xdp_fw.bpf.c:88", None)
        );
        assert_eq!(
            parse("break 42 if r2 > 64").unwrap(),
            b("42", Some("r2 > 64"))
        );
        assert_eq!(
            parse("b helper bpf_map_lookup_elem").unwrap(),
            Command::Break {
                location: BreakSpec::Helper("bpf_map_lookup_elem".into()),
                condition: None
            }
        );
        assert_eq!(
            parse("b").unwrap(),
            Command::Break {
                location: BreakSpec::Here,
                condition: None
            }
        );
        assert_eq!(
            parse("ignore 1 3").unwrap(),
            Command::Ignore { id: 1, count: 3 }
        );
        assert_eq!(parse("delete").unwrap(), Command::Delete(vec![]));
        assert_eq!(parse("d 1 2").unwrap(), Command::Delete(vec![1, 2]));
        assert_eq!(parse("disable 2").unwrap(), Command::Disable(vec![2]));
    }

    #[test]
    fn print_examine_and_info() {
        assert_eq!(
            parse("p/x r3").unwrap(),
            Command::Print {
                format: Some("x".into()),
                expr: "r3".into()
            }
        );
        assert_eq!(
            parse("print *(u32 *)(r10 - 8)").unwrap(),
            Command::Print {
                format: None,
                expr: "*(u32 *)(r10 - 8)".into()
            }
        );
        assert_eq!(
            parse("x/8xb pkt").unwrap(),
            Command::Examine(Examine {
                count: 8,
                unit: 1,
                format: DumpFormat::Hex,
                expr: "pkt".into()
            })
        );
        assert_eq!(
            parse("x/2g r10 - 16").unwrap(),
            Command::Examine(Examine {
                count: 2,
                unit: 8,
                format: DumpFormat::Hex,
                expr: "r10 - 16".into()
            })
        );
        assert_eq!(parse("i r").unwrap(), Command::Info(InfoTopic::Registers));
        assert_eq!(
            parse("info b").unwrap(),
            Command::Info(InfoTopic::Breakpoints)
        );
        assert_eq!(
            parse("info state").unwrap(),
            Command::Info(InfoTopic::State)
        );
        assert_eq!(parse("bt").unwrap(), Command::Backtrace);
        assert_eq!(
            parse("help break").unwrap(),
            Command::Help(Some("break".into()))
        );
    }

    #[test]
    fn errors_are_one_sentence() {
        for bad in [
            "",
            "frobnicate",
            "step x",
            "step 0",
            "goto",
            "break 1 2",
            "print",
            "x/0x pkt",
            "x/q pkt",
            "info",
            "info zzz",
            "ignore 1",
            "c 5",
            "s/x 1",
            "break 42 if ",
        ] {
            let e = parse(bad).unwrap_err().0;
            assert!(!e.is_empty() && !e.contains('\n'), "{bad:?}: {e}");
        }
    }

    proptest::proptest! {
        #[test]
        fn random_lines_never_panic(line in "\\PC{0,40}") {
            let _ = parse(&line);
        }

        #[test]
        fn random_command_like_lines_never_panic(
            word in proptest::sample::select(command_names().collect::<Vec<_>>()),
            fmt in "(/[0-9a-z]{0,4})?",
            rest in "[ -~]{0,30}",
        ) {
            let _ = parse(&format!("{word}{fmt} {rest}"));
        }
    }
}
