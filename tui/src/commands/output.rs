//! What a command returns: plain data, no formatting. The text printer
//! ([`super::text`]) and the JSON printer ([`super::json`]) are two views
//! of it; the UI can read the fields directly.
//!
//! In JSON every [`Output`] is an object with a `"kind"` field naming the
//! variant (`"stopped"`, `"value"`, ...) next to the variant's fields.
//! Byte strings are lowercase hex without separators (`"0a000001"`),
//! 64-bit values are numbers.

use serde::Serialize;

use super::parse::DumpFormat;

/// A place in the run: where the session is (or a step it talks about).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Place {
    /// Position in time (steps executed before it).
    pub step: u64,
    /// Trace program index and name.
    pub program: usize,
    pub program_name: String,
    /// Instruction index in that program.
    pub insn: usize,
    /// The function (subprogram) containing it.
    pub function: Option<String>,
    pub file: Option<String>,
    pub line: Option<u32>,
    /// The source text of the line, when the line info has it.
    pub source: Option<String>,
    /// The instruction, llvm-objdump syntax, helper names.
    pub text: String,
    /// True after the program returned (the instruction is the exit that ran).
    pub ended: bool,
}

/// Why a movement stopped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Reason {
    /// The command did what it asked (N steps, a finished next, a goto).
    Done,
    Breakpoint {
        id: u32,
    },
    /// A watched value changed in the step before this place (in execution
    /// order, also when moving backward).
    Watchpoint {
        id: u32,
        expr: String,
        old: Option<String>,
        new: Option<String>,
    },
    /// The program returned r0 (`name`: `XDP_PASS`, ... when known).
    Exited {
        r0: u64,
        name: Option<String>,
    },
    Fault {
        message: String,
    },
    /// The replay contradicts the recording here.
    Divergence {
        message: String,
    },
    /// Moving backward reached the first step.
    Start,
    /// Stopped by the user (Ctrl-C / the progress callback).
    Interrupted,
}

/// After every movement: why it stopped, and where.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Stopped {
    #[serde(flatten)]
    pub reason: Reason,
    pub place: Place,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BreakpointInfo {
    pub id: u32,
    /// The location as the session understood it (`insn 42`, `xdp_fw.bpf.c:88`, `parse_packet`, `helper bpf_map_lookup_elem`).
    pub location: String,
    /// (program, instruction) of every place it stops.
    pub sites: Vec<(usize, usize)>,
    pub condition: Option<String>,
    pub ignore: u64,
    pub hits: u64,
    pub enabled: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WatchpointInfo {
    pub id: u32,
    pub expr: String,
    /// What is watched: `r3`, `4 bytes at fp-8`.
    pub watching: String,
    /// Its bytes now (hex), when readable.
    pub value: Option<String>,
    pub hits: u64,
    pub enabled: bool,
}

/// `print`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ValueOut {
    pub expr: String,
    pub format: Option<String>,
    /// The value printed in the format.
    pub text: String,
    /// As a 64-bit number, when it is one.
    pub value: Option<u64>,
    /// Where it lives (`r3`, `fp-8`, `pkt+12`), for registers and memory.
    pub location: Option<String>,
}

/// `x`: bytes of memory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MemoryDump {
    pub expr: String,
    /// Tagged address of the first byte, and its description (`pkt+14`).
    pub addr: u64,
    pub place: String,
    pub unit: u8,
    pub format: DumpFormat,
    /// The bytes read (hex); fewer than asked when the region ends.
    pub bytes: String,
    /// Bytes asked for.
    pub requested: u32,
    /// Units, in the format (`0x0800`, `-1`, `17`).
    pub units: Vec<String>,
}

/// One link of an `origin` chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OriginStep {
    pub place: Place,
    /// What that step did to the value (`spilled r2 to fp-8`).
    pub what: String,
    /// The location it wrote (`r2`, `8 bytes at fp-8`).
    pub wrote: String,
}

/// `origin`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OriginOut {
    pub expr: String,
    pub location: String,
    /// Newest first.
    pub chain: Vec<OriginStep>,
    /// Where the chain ends, in words (`read from the packet`, `returned by bpf_map_lookup_elem`).
    pub end: String,
}

/// One register.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RegisterOut {
    pub name: String,
    pub value: u64,
    /// What it points to (`pkt+14`, `fp-8`), if it is a pointer.
    pub points_to: Option<String>,
}

/// One call frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FrameOut {
    /// 0 = innermost.
    pub level: usize,
    pub place: Place,
    pub stack_size: u32,
    /// For `info frame`: the frame's stack bytes (hex, lowest address first).
    pub stack: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InvocationOut {
    pub index: u64,
    pub program: String,
    pub cpu: u32,
    pub time_ns: u64,
    pub retval: u64,
    pub retval_name: Option<String>,
    pub packet_len: Option<usize>,
    pub partial: bool,
    pub current: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MapOut {
    pub index: usize,
    pub name: String,
    pub map_type: String,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    /// Entries in the start snapshot (None: no snapshot).
    pub entries_at_start: Option<usize>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SourceLineOut {
    pub line: u32,
    pub text: String,
    pub current: bool,
    /// A breakpoint stops on this line.
    pub breakpoint: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SourceOut {
    pub file: String,
    /// Only lines the line info knows the text of.
    pub lines: Vec<SourceLineOut>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DisasLineOut {
    pub insn: usize,
    /// A function starts here.
    pub function: Option<String>,
    pub text: String,
    pub current: bool,
    pub breakpoint: bool,
}

/// One live memory region, for `info state`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RegionOut {
    pub id: u32,
    /// `stack frame 0`, `packet`, `context`, `map value of blocked_src`, ...
    pub kind: String,
    pub bytes: String,
}

/// `info state`: every register and every byte of live memory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StateOut {
    pub step: u64,
    pub program: usize,
    pub insn: usize,
    /// r0..r10.
    pub registers: Vec<u64>,
    /// Frame depth (1 = no call).
    pub frames: usize,
    pub regions: Vec<RegionOut>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HelpOut {
    pub name: String,
    pub aliases: Vec<String>,
    pub usage: String,
    pub summary: String,
}

/// The result of one command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Output {
    /// After step, next, finish, continue, their reverse twins, goto, until, back-to.
    Stopped(Stopped),
    BreakpointSet(BreakpointInfo),
    WatchpointSet(WatchpointInfo),
    /// `info breakpoints` and `info watchpoints`.
    Breakpoints {
        breakpoints: Vec<BreakpointInfo>,
    },
    Watchpoints {
        watchpoints: Vec<WatchpointInfo>,
    },
    /// An acknowledgement (`deleted breakpoint 2`).
    Message {
        message: String,
    },
    Value(ValueOut),
    Memory(MemoryDump),
    Origin(OriginOut),
    Registers {
        registers: Vec<RegisterOut>,
    },
    /// `info frame`: the current frame, with its stack bytes.
    Frame(FrameOut),
    /// `where`: innermost first.
    Backtrace {
        frames: Vec<FrameOut>,
    },
    Invocations {
        current: u64,
        total: u64,
        /// At most [`super::MAX_LISTED_INVOCATIONS`], around the current one.
        invocations: Vec<InvocationOut>,
    },
    Maps {
        maps: Vec<MapOut>,
    },
    /// `info line`: where the session is.
    Line(Place),
    Source(SourceOut),
    Disassembly {
        program: String,
        lines: Vec<DisasLineOut>,
    },
    State(StateOut),
    /// `invocation N`: the new invocation and where its session starts.
    Switched {
        invocation: u64,
        place: Place,
        /// Breakpoints carried over and watchpoints dropped, in words.
        notes: Vec<String>,
    },
    Help {
        commands: Vec<HelpOut>,
    },
    /// The command failed; nothing changed. One sentence.
    Error {
        message: String,
    },
}

impl Output {
    pub fn error(message: impl Into<String>) -> Output {
        Output::Error {
            message: message.into(),
        }
    }

    pub fn is_error(&self) -> bool {
        matches!(self, Output::Error { .. })
    }
}

/// Bytes as lowercase hex without separators.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}
