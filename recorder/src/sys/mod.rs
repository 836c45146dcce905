//! Thin, safe wrappers over the `bpf(2)` system call.
//!
//! This module is the only place in bpfrr that talks to the kernel through
//! raw system calls, and the only place with `unsafe`: every block says why
//! it is sound. Everything above it works with `OwnedFd`s (closed on drop),
//! byte vectors and [`SysError`]s.
//!
//! The attribute layouts come from aya-obj's generated kernel bindings
//! (`aya_obj::generated`), so no structure offset is spelled out here.

mod attach;
mod btf;
mod cpu;
mod map;
mod mount;
mod prog;
mod testrun;

pub use attach::{
    LinkCreate, LinkInfo, PerfEventKind, interface_index, link_fd_by_id, link_ids, link_info,
    perf_event_enable, perf_event_open, prog_fd_by_id, prog_ids, raw_tracepoint_open,
};
pub use btf::{LoadedBtf, load_btf};
pub use cpu::{Pinned, current_cpu, monotonic_ns};
pub use map::{BPF_F_RDONLY_PROG, BpfMap, MapEntries, MapInfo, MapSpec, map_info, possible_cpus};
pub use mount::{BPFFS_PATH, TRACEFS_PATH, ensure_bpffs, ensure_tracefs};
pub use prog::{LoadedProgram, LogLevel, ProgInfo, ProgLoad, RecordTable, prog_flags, prog_info};
pub use testrun::{TestRunAttr, TestRunOutput, test_run};

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

use aya_obj::generated::{bpf_attr, bpf_cmd};

/// Why a `bpf(2)` call failed.
#[derive(Debug, thiserror::Error)]
pub enum SysError {
    /// EPERM/EACCES without a verifier log, as a user without the capabilities.
    #[error(
        "loading BPF programs needs root or CAP_BPF+CAP_PERFMON+CAP_NET_ADMIN: run bpfrr with sudo"
    )]
    NeedsPrivilege { call: &'static str, errno: i32 },
    /// EPERM as root: the kernel forbids this (lockdown, a restricted program type).
    #[error(
        "the kernel refused {call} with EPERM although bpfrr runs as root: this kernel restricts it (lockdown or a disabled program type)"
    )]
    KernelRestricted { call: &'static str },
    /// The verifier rejected the program; `log` is its whole log.
    #[error("the kernel rejected the program ({}):\n{}", errno_name(*errno), log_tail(log, 20))]
    Rejected { errno: i32, log: String },
    /// The kernel rejected BTF data; `log` is the BTF checker's log.
    #[error("the kernel rejected the BTF data ({}):\n{}", errno_name(*errno), log_tail(log, 20))]
    BtfRejected { errno: i32, log: String },
    /// Any other failure of a call.
    #[error("{call} failed: {source}")]
    Os {
        call: &'static str,
        #[source]
        source: io::Error,
    },
    /// An argument that cannot be passed to the kernel as given.
    #[error("{0}")]
    InvalidArgument(String),
}

impl SysError {
    /// The errno behind this error, when there is one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            SysError::NeedsPrivilege { errno, .. } => Some(*errno),
            SysError::KernelRestricted { .. } => Some(libc::EPERM),
            SysError::Rejected { errno, .. } | SysError::BtfRejected { errno, .. } => Some(*errno),
            SysError::Os { source, .. } => source.raw_os_error(),
            SysError::InvalidArgument(_) => None,
        }
    }

    /// The verifier (or BTF) log carried by a rejection, if any.
    pub fn log(&self) -> Option<&str> {
        match self {
            SysError::Rejected { log, .. } | SysError::BtfRejected { log, .. } => Some(log),
            _ => None,
        }
    }

    /// Builds the error for a failed call from its errno, turning permission
    /// errors into the message that tells the user what to do.
    pub(crate) fn from_errno(call: &'static str, errno: i32) -> SysError {
        if errno == libc::EPERM || errno == libc::EACCES {
            // Root without CAP_BPF/CAP_SYS_ADMIN (a container, capabilities
            // dropped) lacks privileges too; only a capable root's EPERM is
            // the kernel's own restriction.
            let capable = has_bpf_capability();
            if is_root() && capable && errno == libc::EPERM {
                return SysError::KernelRestricted { call };
            }
            if !is_root() || !capable {
                return SysError::NeedsPrivilege { call, errno };
            }
        }
        SysError::Os {
            call,
            source: io::Error::from_raw_os_error(errno),
        }
    }
}

/// True when the process runs with effective uid 0.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// True when the process has CAP_BPF or CAP_SYS_ADMIN in its effective
/// capability set (read from /proc/self/status; when that cannot be read,
/// being root is taken to mean it has them).
pub fn has_bpf_capability() -> bool {
    const CAP_SYS_ADMIN: u32 = 21;
    const CAP_BPF: u32 = 39;
    let Some(eff) = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| effective_capabilities(&s))
    else {
        return is_root();
    };
    eff & (1 << CAP_BPF | 1 << CAP_SYS_ADMIN) != 0
}

/// The `CapEff:` mask of a /proc/PID/status text.
fn effective_capabilities(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("CapEff:"))?;
    u64::from_str_radix(line["CapEff:".len()..].trim(), 16).ok()
}

/// The last `n` non-empty lines of a log, for error messages.
pub fn log_tail(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(n);
    if lines.is_empty() {
        return "(the kernel gave no log)".to_string();
    }
    lines[start..].join("\n")
}

/// The symbolic name of an errno value (`EACCES`), or its number.
pub fn errno_name(errno: i32) -> String {
    let name = match errno {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::E2BIG => "E2BIG",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::EINVAL => "EINVAL",
        libc::ENOSPC => "ENOSPC",
        libc::ERANGE => "ERANGE",
        libc::ENOTSUP => "ENOTSUP",
        524 => "ENOTSUPP",
        _ => return format!("errno {errno}"),
    };
    name.to_string()
}

/// A zeroed `bpf_attr`: the kernel requires every unused byte to be zero.
fn zeroed_attr() -> bpf_attr {
    // SAFETY: bpf_attr is a C union of plain integer fields; all-zero bytes
    // is a valid value for every one of its members.
    unsafe { std::mem::zeroed() }
}

/// Calls `bpf(cmd, attr, sizeof attr)`; returns the non-negative result or
/// the errno.
fn bpf_call(cmd: bpf_cmd, attr: &mut bpf_attr) -> Result<i64, i32> {
    loop {
        // SAFETY: `attr` is a valid, initialised bpf_attr that lives for the
        // whole call; every pointer stored in it was set by the caller from a
        // live buffer of the length stored beside it, and those buffers
        // outlive this call (they are borrowed by the caller's frame).
        let ret = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                cmd as libc::c_int,
                attr as *mut bpf_attr,
                std::mem::size_of::<bpf_attr>() as libc::c_uint,
            )
        };
        if ret >= 0 {
            return Ok(ret);
        }
        let errno = io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO);
        // The kernel may be interrupted by a signal while verifying a big
        // program; the call is safe to repeat.
        if errno != libc::EINTR {
            return Err(errno);
        }
    }
}

/// Calls a `bpf(2)` command that returns a new file descriptor.
fn bpf_call_fd(cmd: bpf_cmd, attr: &mut bpf_attr) -> Result<OwnedFd, i32> {
    let fd = bpf_call(cmd, attr)?;
    // SAFETY: on success these commands return a new file descriptor that
    // nothing else owns; wrapping it transfers ownership to the OwnedFd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// A user-space pointer as the kernel's `__aligned_u64`.
fn ptr_u64<T>(p: *const T) -> u64 {
    p as usize as u64
}

/// Copies a name into a fixed, NUL-terminated kernel name field, keeping
/// only the characters the kernel accepts (`[A-Za-z0-9_.]`, 15 at most).
fn fill_obj_name(dst: &mut [libc::c_char; 16], name: &str) {
    let clean = name
        .bytes()
        .filter(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'.')
        .take(15);
    for (d, b) in dst.iter_mut().zip(clean) {
        *d = b as libc::c_char;
    }
}

/// Reads a NUL-terminated kernel name field.
fn read_obj_name(src: &[libc::c_char]) -> String {
    let bytes: Vec<u8> = src
        .iter()
        .take_while(|c| **c != 0)
        .map(|c| *c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_tail_keeps_the_last_non_empty_lines() {
        let log = "a\n\nb\nc\n\nd\n";
        assert_eq!(log_tail(log, 2), "c\nd");
        assert_eq!(log_tail(log, 10), "a\nb\nc\nd");
        assert_eq!(log_tail("", 3), "(the kernel gave no log)");
    }

    #[test]
    fn object_names_are_cleaned_and_truncated() {
        let mut name = [0 as libc::c_char; 16];
        fill_obj_name(&mut name, "xdp-firewall/main_program_long");
        assert_eq!(read_obj_name(&name), "xdpfirewallmain");
    }

    #[test]
    fn effective_capabilities_are_read_from_status() {
        let status = "Name:\tx\nCapPrm:\t0\nCapEff:\t000001ffffffffff\nCapBnd:\t0\n";
        assert_eq!(effective_capabilities(status), Some(0x1ff_ffff_ffff));
        assert_eq!(effective_capabilities("CapEff:\tzz\n"), None);
        assert_eq!(effective_capabilities("Name: x\n"), None);
    }

    #[test]
    fn errno_names() {
        assert_eq!(errno_name(libc::EACCES), "EACCES");
        assert_eq!(errno_name(9999), "errno 9999");
    }

    #[test]
    fn rejected_error_shows_the_log_tail() {
        let e = SysError::Rejected {
            errno: libc::EACCES,
            log: "0: (b7) r0 = 0\nR1 invalid mem access 'scalar'\n".into(),
        };
        let text = e.to_string();
        assert!(text.contains("EACCES"), "{text}");
        assert!(text.contains("R1 invalid mem access"), "{text}");
        assert_eq!(e.errno(), Some(libc::EACCES));
        assert!(e.log().unwrap().contains("r0 = 0"));
    }
}
