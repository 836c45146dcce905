//! Replay: re-executing recorded invocations of a trace in the VM and
//! proving each one faithful to its recording.
//!
//! - [`setup`]: a trace's programs, map models and contexts in VM form.
//! - [`Replayer`] ([`replayer`]): runs invocations with a
//!   [`RecordedEnv`](crate::env::recorded::RecordedEnv), carrying map and
//!   global-data state forward in recording order, and judges each run.
//! - [`report`]: what a check found ([`FidelityReport`], [`Divergence`],
//!   [`Summary`]).
//! - [`checkpoint`]: copies of the world every few invocations, so that
//!   starting any invocation is quick.
//! - [`error`]: why an invocation could not be replayed at all.
//! - [`model_recording`]: traces recorded from model runs (no kernel), the
//!   fixtures of replay and trace-editing tests.

pub mod checkpoint;
pub mod error;
pub mod model_recording;
pub mod replayer;
pub mod report;
pub mod setup;

pub use error::ReplayError;
pub use model_recording::{ModelInput, record_model_run};
pub use replayer::{InvocationRun, Replayer, check_all, replay_invocation};
pub use report::{Divergence, DivergenceKind, FidelityReport, Location, MAX_KEPT, Summary};
