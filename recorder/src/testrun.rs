//! Running a loaded program once in the kernel with BPF_PROG_TEST_RUN, on a
//! packet (XDP, sched_cls, socket filter, cgroup_skb) or on raw tracepoint
//! arguments, with the checks the kernel would otherwise answer with a bare
//! EINVAL.
//!
//! Note the kernel's framing: for socket filters and cgroup_skb the program
//! sees the packet from the network header on (the 14-byte Ethernet header
//! is stripped before the run), and the output packet starts with 14 ZERO
//! bytes where the header was (the kernel memsets it when pushing it back);
//! XDP and sched_cls see, and give back, the whole frame.

use std::os::fd::AsFd;

use crate::sys::{SysError, TestRunAttr, test_run};

/// Program types BPF_PROG_TEST_RUN drives, as bpfrr uses them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunKind {
    Xdp,
    SchedCls,
    SocketFilter,
    CgroupSkb,
    RawTracepoint,
}

impl RunKind {
    /// The kind for an `enum bpf_prog_type` value, if test runs support it here.
    pub fn from_prog_type(prog_type: u32) -> Option<RunKind> {
        // BPF_PROG_TYPE_SOCKET_FILTER 1, SCHED_CLS 3, XDP 6, CGROUP_SKB 8,
        // RAW_TRACEPOINT 17.
        Some(match prog_type {
            1 => RunKind::SocketFilter,
            3 => RunKind::SchedCls,
            6 => RunKind::Xdp,
            8 => RunKind::CgroupSkb,
            17 => RunKind::RawTracepoint,
            _ => return None,
        })
    }

    pub fn takes_packet(self) -> bool {
        self != RunKind::RawTracepoint
    }
}

/// The input of one run.
#[derive(Clone, Copy, Debug)]
pub enum RunInput<'a> {
    /// A whole Ethernet frame, and optionally the context (`xdp_md` for XDP,
    /// `__sk_buff` for the others) with the fields the kernel lets a test set.
    Packet {
        frame: &'a [u8],
        ctx: Option<&'a [u8]>,
    },
    /// Raw tracepoint arguments (at most 12 u64 values, little-endian bytes).
    Context(&'a [u8]),
}

/// What one run gave back.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunResult {
    pub retval: u32,
    /// The packet after the run (empty for raw tracepoints).
    pub data_out: Vec<u8>,
    /// The context after the run, when one was passed in (packet types).
    pub ctx_out: Vec<u8>,
    /// Mean time per run in nanoseconds, measured by the kernel.
    pub duration_ns: u32,
}

/// Room beyond the input packet for programs that grow it (XDP adjust_tail,
/// skb change_tail).
const GROWTH_ROOM: usize = 4096;
const ETH_HLEN: usize = 14;
const MAX_RAW_TP_ARGS: usize = 12;

/// Runs the program once (`repeat` 0 or 1) or `repeat` times on `input`.
/// Raw tracepoints run exactly once (the kernel has no repeat for them).
pub fn run(
    prog: impl AsFd,
    kind: RunKind,
    input: RunInput<'_>,
    repeat: u32,
) -> Result<RunResult, SysError> {
    let attr = match (kind, input) {
        (RunKind::RawTracepoint, RunInput::Context(args)) => {
            if args.len() > MAX_RAW_TP_ARGS * 8 || !args.len().is_multiple_of(8) {
                return Err(SysError::InvalidArgument(format!(
                    "raw tracepoint arguments must be at most {MAX_RAW_TP_ARGS} 8-byte values, got {} bytes",
                    args.len()
                )));
            }
            if repeat > 1 {
                return Err(SysError::InvalidArgument(
                    "the kernel runs a raw tracepoint test only once: use repeat 0 or 1".into(),
                ));
            }
            TestRunAttr {
                ctx_in: (!args.is_empty()).then_some(args),
                ..TestRunAttr::default()
            }
        }
        (RunKind::RawTracepoint, RunInput::Packet { .. }) => {
            return Err(SysError::InvalidArgument(
                "a raw tracepoint program runs on arguments (a context), not a packet".into(),
            ));
        }
        (_, RunInput::Context(_)) => {
            return Err(SysError::InvalidArgument(format!(
                "a {kind:?} program runs on a packet, not on a bare context"
            )));
        }
        (_, RunInput::Packet { frame, ctx }) => {
            if frame.len() < ETH_HLEN {
                return Err(SysError::InvalidArgument(format!(
                    "the packet is {} bytes; the kernel needs at least a {ETH_HLEN}-byte Ethernet header",
                    frame.len()
                )));
            }
            TestRunAttr {
                data_in: Some(frame),
                data_out_len: frame.len() + GROWTH_ROOM,
                ctx_in: ctx,
                ctx_out_len: ctx.map_or(0, <[u8]>::len),
                repeat,
                ..TestRunAttr::default()
            }
        }
    };
    let out = test_run(prog, &attr)?;
    Ok(RunResult {
        retval: out.retval,
        data_out: if kind.takes_packet() {
            out.data_out
        } else {
            Vec::new()
        },
        ctx_out: out.ctx_out,
        duration_ns: out.duration_ns,
    })
}
