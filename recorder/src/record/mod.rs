//! Recording: load, instrument, drive, drain, assemble, write, check.
//!
//! - [`driver`]: the `Driver` trait test-run and live drivers implement;
//! - [`prepare`]: load the original (verifier log), instrument, load the copy;
//! - [`ctx_fields`]: which context fields a program type may read (asked of the kernel);
//! - [`ringbuf`], [`assemble`]: records out of the ring buffer into invocations;
//! - [`flush`]: the flush program that sends a CPU's batched invocations;
//! - [`snapshot`]: map contents at the start and the end;
//! - [`testrun_driver`]: BPF_PROG_TEST_RUN on pcap/hex/context inputs;
//! - [`pipeline`]: the whole recording, writing the trace;
//! - [`fidelity`]: replaying every invocation of the trace to prove it faithful.

pub mod assemble;
pub mod ctx_fields;
pub mod driver;
pub mod fidelity;
pub mod flush;
pub mod jit_probe;
pub mod pipeline;
pub mod prepare;
pub mod ringbuf;
pub mod snapshot;
pub mod testrun_driver;

pub use driver::{CaptureHints, Driver, DriverError, DriverTarget, Step};
pub use pipeline::{RecordError, RecordOptions, RecordReport, record};
pub use prepare::{PrepareError, PrepareOptions, Prepared, prepare};
pub use testrun_driver::{TestInput, TestRunDriver};
