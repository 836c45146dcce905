//! The command language of `bpfrr replay`: the same commands in batch mode
//! (`-x CMD`, `--commands FILE`) and on the UI's `:` command line.
//!
//! # API (stable; the UI calls it)
//!
//! ```text
//! parse(line: &str) -> Result<Command, ParseError>        // never panics; ParseError.0 is one sentence
//!
//! Debugger::new(trace: &'t Trace, invocation: u64) -> Result<Debugger<'t>, String>
//! Debugger::run_line(&mut self, line: &str) -> Output      // parse + execute; parse errors are Output::Error
//! Debugger::execute(&mut self, cmd: &Command) -> Output
//! Debugger::session(&self) -> &Session<RecordedEnv<'t>>    // for the panes
//! Debugger::session_mut(&mut self) -> &mut Session<RecordedEnv<'t>>
//! Debugger::invocation(&self) -> u64
//! Debugger::switch_invocation(&mut self, n: u64) -> Output
//! Debugger::prog_type(&self) -> Option<ProgType>
//! Debugger::place(&self) -> Place                          // where the session is
//! Debugger::trace(&self) -> &'t Trace
//!
//! execute_session<E: SessionEnv>(&mut Session<E>, &Command, Option<ProgType>) -> Output
//!     // any session (e.g. a model run); `invocation`, `info invocations|maps` answer Output::Error
//!
//! text::render(&Output) -> String            // gdb-like text, lines joined by '\n', no trailing newline
//! text::place_line(&Place) -> String         // "step 17, insn 23 (xdp_fw.bpf.c:88): if r1 > r2 goto +5"
//! json::render(command_line: &str, &Output) -> String   // one JSON object, one line
//! json::to_value(&Output) -> serde_json::Value           // {"kind": "...", ...}
//! help::COMMANDS: &[CommandHelp { name, aliases, usage, summary }]   // for a help overlay
//! ```
//!
//! `Output` is plain data ([`output`]): `Stopped { reason, place }` after
//! every movement, `Value`, `Memory`, `Origin`, `Registers`, `Frame`,
//! `Backtrace`, `Breakpoints`, `Watchpoints`, `BreakpointSet`,
//! `WatchpointSet`, `Invocations`, `Maps`, `Line`, `Source`,
//! `Disassembly`, `State`, `Switched`, `Help`, `Message`, `Error`.
//! A failed command changes nothing and returns `Output::Error` (one sentence).
//!
//! Long movements call the session's progress callback
//! (`session_mut().set_progress(..)`) and stop with `Reason::Interrupted`
//! when it returns false; `invocation N` makes a new session, so install
//! the callback again after an `Output::Switched`.
//!
//! # The commands
//!
//! See [`help::COMMANDS`] (also `help` at the prompt): step/s [N], next/n
//! [N], finish/fin, continue/c, reverse-step/rs [N], reverse-next/rn [N],
//! reverse-finish/rf, reverse-continue/rc, goto STEP, until/goto-insn INSN,
//! back-to INSN, break/b [LOCATION] [if COND] (INSN, *INSN, file.c:LINE,
//! FUNCTION, helper NAME), ignore ID N, condition ID [EXPR],
//! enable/disable/delete [ID...], watch EXPR, print/p[/FMT] EXPR,
//! x[/NUF] EXPR, origin EXPR, info breakpoints|watchpoints|registers|frame|
//! invocations|maps|state|line, invocation N, where/bt, list [LINE],
//! disas [INSN], help [CMD].

// The UI uses parts of the API that batch mode does not.
#![allow(dead_code, unused_imports)]

pub mod execute;
pub mod help;
pub mod json;
pub mod output;
pub mod parse;
pub mod text;
pub mod view;

pub use execute::{Debugger, MAX_LISTED_INVOCATIONS, execute_session};
pub use output::{Output, Place, Reason, Stopped};
pub use parse::{BreakSpec, Command, DumpFormat, Examine, InfoTopic, ParseError, parse};
