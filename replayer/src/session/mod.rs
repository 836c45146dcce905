//! A replay session over one invocation: time travel (step, next, finish,
//! continue and their reverse twins, goto), breakpoints and watchpoints,
//! expressions, origins of values, a per-step log, and comparing two
//! invocations. The engine returns values and prints nothing; the UI and
//! the batch printer are two views of it.
//!
//! How moving through time works:
//! - Forward, each step runs on the VM in recording mode and its changes
//!   go into a compact undo log ([`undo`]); stepping back pops the newest
//!   record and puts the old values back.
//! - Every [`CHECKPOINT_INTERVAL`] steps the whole machine state is kept.
//!   `goto N` restores the checkpoint at or before N and re-executes the
//!   rest (at most one interval); jumping far into new territory runs at
//!   full speed between checkpoints.
//! - The undo log covers the steps from the last restored checkpoint (its
//!   *base*) to the current position; stepping back past the base re-runs
//!   the previous interval from its checkpoint to rebuild its log.
//! - The environment is asked each question once; re-execution replays the
//!   remembered answers ([`memo`]), so environments never have to move
//!   backwards and any `Env` can be used.

mod core;
mod diff;
mod info;
mod inspect;
mod memo;
mod origin;
mod points;
mod replay;
mod undo;

pub use self::core::{
    CHECKPOINT_INTERVAL, End, EndKind, ExpectedExit, Session, SessionError, SessionStats, Stop,
    StopReason,
};
pub use diff::{DiffRegister, DiffReport, diff};
pub use info::{DebugInfo, FunctionSym, MapInfo, ValueDesc, describe_value};
pub use inspect::{LogIter, MemChange, RegChange, StepRecord};
pub use memo::{EnvMemo, SessionEnv};
pub use origin::{Origin, OriginEnd, OriginLink};
pub use points::{BreakLocation, Breakpoint, PointId, Watchpoint};
pub use replay::debug_info;
