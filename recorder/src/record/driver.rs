//! The driver abstraction: what makes the instrumented program run.
//!
//! The recording pipeline (`record::Recorder`) loads and instruments the
//! program, then hands it to a driver: BPF_PROG_TEST_RUN on given inputs
//! (`record::testrun_driver`), or a live attachment (`crate::attach`). The
//! pipeline calls `start` once, then `step` repeatedly (draining the ring
//! buffer between steps and checking its stop conditions), then `stop`
//! exactly once, whatever happened. A driver owns everything it attaches
//! (links held by the process, never pinned), so nothing stays attached
//! when it is dropped or the process dies.

use std::os::fd::BorrowedFd;

use crate::attach::AttachSpec;
use std::time::Duration;

/// The program a driver runs or attaches: the instrumented copy of the
/// program the user named (tail-call targets are already in their program
/// arrays).
#[derive(Clone, Copy, Debug)]
pub struct DriverTarget<'a> {
    /// The instrumented program's fd.
    pub prog_fd: BorrowedFd<'a>,
    /// `enum bpf_prog_type`.
    pub prog_type: u32,
    /// `enum bpf_attach_type` the program was loaded with, if any.
    pub expected_attach_type: Option<u32>,
    /// The program's name in the object.
    pub name: &'a str,
    /// Its ELF section ("xdp", "tracepoint/syscalls/sys_enter_openat").
    pub section: &'a str,
    /// The attach point the section names (may be empty: "uprobe").
    pub section_attach_point: &'a str,
}

/// What the instrumentation needs to know from the driver before loading.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CaptureHints {
    /// The largest packet the program can see, in bytes (test runs know
    /// their inputs); `None`: unknown (live), the recorder picks a default.
    pub max_packet: Option<u32>,
    /// Size in bytes of the context for programs whose context is raw
    /// memory (raw tracepoint arguments, a tracepoint's record, pt_regs);
    /// `None`: the recorder's default for the program type.
    pub ctx_size: Option<u32>,
    /// Every invocation runs on this CPU, started by the driver's own
    /// calls one at a time (a test-run driver pinned to it): the order of
    /// invocations is that CPU's sequence, so the probes read no clock and
    /// the recorder stamps each invocation with the time its call started.
    /// `None`: invocations come from anywhere (live), each entry reads
    /// `bpf_ktime_get_ns`.
    pub pinned_cpu: Option<u32>,
}

/// What one `step` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// The program ran (or may have run) this many more times.
    Ran(u64),
    /// Nothing happened within the budget (live drivers waiting for events).
    Idle,
    /// The driver has nothing more to do (test runs: inputs exhausted).
    Finished,
}

/// Why a driver failed: one sentence saying what went wrong and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DriverError(pub String);

impl DriverError {
    pub fn new(message: impl Into<String>) -> Self {
        DriverError(message.into())
    }
}

/// Something that makes the instrumented program run.
pub trait Driver {
    /// What the trace stores as the program's attach point ("test_run",
    /// "eth0 (xdp generic)", "syscalls:sys_enter_openat", ...).
    fn attach_point(&self) -> String;

    /// Hints for the instrumentation (packet and context sizes). Called
    /// before the program is loaded.
    fn capture_hints(&self) -> CaptureHints {
        CaptureHints::default()
    }

    /// Pins the recording thread to the CPU it runs on, for a driver whose
    /// every invocation comes from its own calls on this thread (test
    /// runs), and returns that CPU (see [`CaptureHints::pinned_cpu`]);
    /// `None`: not pinned. Called before the program is loaded; `stop`
    /// gives the thread its CPUs back.
    fn pin_to_cpu(&mut self) -> Option<u32> {
        None
    }

    /// The attach target tracing programs must be loaded for, when the
    /// driver decides it rather than the program's section (`--fentry
    /// FUNC`, `--tp-btf NAME`: the kernel fixes the target at load time).
    fn retarget(&self) -> Option<AttachSpec> {
        None
    }

    /// Prepares or attaches. Anything attached is owned by the driver and
    /// released by `stop` (and by drop).
    fn start(&mut self, target: &DriverTarget<'_>) -> Result<(), DriverError>;

    /// Makes progress for at most about `budget`: runs the next input, or
    /// waits for events. The pipeline drains the ring buffer after each step.
    fn step(&mut self, budget: Duration) -> Result<Step, DriverError>;

    /// Detaches and releases everything. Called exactly once by the
    /// pipeline, also after errors; must not fail because `start` failed.
    fn stop(&mut self) -> Result<(), DriverError>;
}
