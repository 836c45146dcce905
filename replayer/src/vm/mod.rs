//! The userspace BPF machine.
//!
//! - [`Program`]: a checked program pre-decoded once (jump targets resolved,
//!   immediates extended, subprograms found).
//! - [`Machine`]: registers, frames and [`Memory`]; `step` (one instruction,
//!   [`StepEffects`] with old values for exact undo) and `run` (full speed).
//! - [`Memory`]: typed regions behind tagged 64-bit addresses, every access
//!   checked; failures are [`Fault`] values, never panics.
//! - [`Context`]: what the program is called with, per program type, with
//!   the kernel's context-field conversion.
//! - [`Env`]: whatever answers helper and kfunc calls (a recording, or models).

mod context;
mod effects;
mod env;
mod fault;
mod interp;
mod machine;
mod memory;
mod program;
mod simple;
mod ubpf_helpers;

pub use context::{
    Context, ContextLayout, PT_REGS_SIZE, RawContext, SKB_HEADROOM, SkBuff, SkbProgram, XDP_FRAME,
    XDP_HEADROOM, XdpMd, sk_buff, xdp_md,
};
pub use effects::{CallRecord, Effect, EffectList, StepEffects, StepLog, StepOutcome};
pub use env::{Callee, Env, HelperCall, HelperOutcome, NoHelpers};
pub use fault::{Fault, FaultKind, SourceLine};
pub use machine::{
    Config, Frame, MAY_GOTO_BUDGET, Machine, MachineState, PendingCall, RunStop, Status,
    code_address, decode_code_address,
};
pub use memory::{
    Memory, OFFSET_BITS, PacketPointers, Region, RegionId, RegionKind, SmallWrite, address, ids,
    split_address,
};
pub use program::{Limits, LoadError, Program, Subprogram};
pub use ubpf_helpers::UbpfHelpers;
