//! BPF_PROG_TEST_RUN: runs a loaded program once (or `repeat` times) on
//! given input in the kernel.

use std::os::fd::{AsFd, AsRawFd};

use aya_obj::generated::bpf_cmd;

use super::{SysError, bpf_call, ptr_u64, zeroed_attr};

/// The inputs of one BPF_PROG_TEST_RUN call. Which fields a program type
/// accepts is the kernel's business (`testrun::run` knows the usual ones).
#[derive(Clone, Debug, Default)]
pub struct TestRunAttr<'a> {
    /// The packet (or other data) the program sees.
    pub data_in: Option<&'a [u8]>,
    /// Room for the output data; 0 asks for none.
    pub data_out_len: usize,
    /// The context (`xdp_md`, `__sk_buff`, raw tracepoint arguments...).
    pub ctx_in: Option<&'a [u8]>,
    /// Room for the output context; 0 asks for none.
    pub ctx_out_len: usize,
    /// 0 or 1 runs once; more runs it that many times (duration is the mean).
    pub repeat: u32,
    /// `BPF_F_TEST_RUN_ON_CPU` (1), `BPF_F_TEST_XDP_LIVE_FRAMES` (2), ...
    pub flags: u32,
    pub cpu: u32,
    pub batch_size: u32,
}

/// What BPF_PROG_TEST_RUN gave back.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TestRunOutput {
    /// The program's return value (the low 32 bits of r0).
    pub retval: u32,
    /// Mean run time in nanoseconds.
    pub duration_ns: u32,
    pub data_out: Vec<u8>,
    /// The full size of the output data; larger than `data_out` when the
    /// buffer was too small (the kernel then copies only what fits).
    pub data_size_out: usize,
    pub ctx_out: Vec<u8>,
}

impl TestRunOutput {
    pub fn data_out_truncated(&self) -> bool {
        self.data_size_out > self.data_out.len()
    }
}

/// Runs the program. The kernel's ENOSPC (output larger than the buffer)
/// is not an error: the program ran, the output is truncated.
pub fn test_run(prog: impl AsFd, input: &TestRunAttr<'_>) -> Result<TestRunOutput, SysError> {
    let mut data_out = vec![0u8; input.data_out_len];
    let mut ctx_out = vec![0u8; input.ctx_out_len];
    let mut attr = zeroed_attr();
    // SAFETY: writing plain integers into the BPF_PROG_TEST_RUN member.
    let t = unsafe { &mut attr.test };
    t.prog_fd = prog.as_fd().as_raw_fd() as u32;
    if let Some(d) = input.data_in {
        t.data_in = ptr_u64(d.as_ptr());
        t.data_size_in = d.len() as u32;
    }
    if !data_out.is_empty() {
        t.data_out = ptr_u64(data_out.as_mut_ptr());
        t.data_size_out = data_out.len() as u32;
    }
    if let Some(c) = input.ctx_in {
        t.ctx_in = ptr_u64(c.as_ptr());
        t.ctx_size_in = c.len() as u32;
    }
    if !ctx_out.is_empty() {
        t.ctx_out = ptr_u64(ctx_out.as_mut_ptr());
        t.ctx_size_out = ctx_out.len() as u32;
    }
    t.repeat = input.repeat;
    t.flags = input.flags;
    t.cpu = input.cpu;
    t.batch_size = input.batch_size;
    match bpf_call(bpf_cmd::BPF_PROG_TEST_RUN, &mut attr) {
        Ok(_) | Err(libc::ENOSPC) => {}
        Err(e) => return Err(SysError::from_errno("BPF_PROG_TEST_RUN", e)),
    }
    // SAFETY: reading back plain integers of the member we wrote.
    let t = unsafe { attr.test };
    let data_size_out = t.data_size_out as usize;
    data_out.truncate(data_size_out);
    ctx_out.truncate(t.ctx_size_out as usize);
    Ok(TestRunOutput {
        retval: t.retval,
        duration_ns: t.duration,
        data_out,
        data_size_out,
        ctx_out,
    })
}
