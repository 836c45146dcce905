//! The system calls that attach programs: BPF_LINK_CREATE,
//! BPF_RAW_TRACEPOINT_OPEN, perf_event_open (tracepoint and uprobe events)
//! and the ioctl that enables an event; and the kernel-wide id lists
//! (BPF_PROG_GET_NEXT_ID, BPF_LINK_GET_NEXT_ID) with link info, which tests
//! use to prove nothing of bpfrr's stays attached.
//!
//! Every attachment returns an `OwnedFd`: the kernel detaches a link when
//! its last fd is closed, so a link owned by the process disappears with it
//! (normal exit, panic or SIGKILL alike). Nothing here pins.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use aya_obj::generated::{
    PERF_EVENT_IOC_ENABLE, PERF_FLAG_FD_CLOEXEC, bpf_cmd, bpf_link_info, bpf_link_type,
    perf_event_attr, perf_type_id,
};

use super::{SysError, bpf_call, bpf_call_fd, ptr_u64, zeroed_attr};

/// Everything BPF_LINK_CREATE takes for the attach kinds bpfrr uses.
#[derive(Clone, Copy, Debug)]
pub struct LinkCreate<'a> {
    pub prog: BorrowedFd<'a>,
    /// The target: an interface index (XDP, tcx), a cgroup fd, a perf
    /// event fd, or 0 (tracing programs, whose target is in the program).
    pub target: u32,
    /// `enum bpf_attach_type`.
    pub attach_type: u32,
    /// Attach-kind flags (XDP mode bits; 0 for the others).
    pub flags: u32,
}

impl LinkCreate<'_> {
    /// Creates the link; the returned fd owns it.
    pub fn create(&self) -> Result<OwnedFd, SysError> {
        let mut attr = zeroed_attr();
        // SAFETY: writing plain integers into the BPF_LINK_CREATE member;
        // the other members of its unions stay zero (no relative program,
        // no cookie, no expected revision).
        let a = unsafe { &mut attr.link_create };
        a.__bindgen_anon_1.prog_fd = self.prog.as_raw_fd() as u32;
        a.__bindgen_anon_2.target_fd = self.target;
        a.attach_type = self.attach_type;
        a.flags = self.flags;
        bpf_call_fd(bpf_cmd::BPF_LINK_CREATE, &mut attr)
            .map_err(|e| SysError::from_errno("BPF_LINK_CREATE", e))
    }
}

/// BPF_RAW_TRACEPOINT_OPEN: attaches a raw tracepoint program to the
/// tracepoint `name`, or (with `None`) a tracing program to the target it
/// was loaded for. Returns the link's fd.
pub fn raw_tracepoint_open(prog: BorrowedFd<'_>, name: Option<&str>) -> Result<OwnedFd, SysError> {
    let name = name
        .map(|n| {
            CString::new(n).map_err(|_| {
                SysError::InvalidArgument(format!("tracepoint name {n:?} contains a NUL byte"))
            })
        })
        .transpose()?;
    let mut attr = zeroed_attr();
    // SAFETY: writing plain integers into the BPF_RAW_TRACEPOINT_OPEN member.
    let a = unsafe { &mut attr.raw_tracepoint };
    a.prog_fd = prog.as_raw_fd() as u32;
    if let Some(n) = &name {
        a.name = ptr_u64(n.as_ptr());
    }
    bpf_call_fd(bpf_cmd::BPF_RAW_TRACEPOINT_OPEN, &mut attr)
        .map_err(|e| SysError::from_errno("BPF_RAW_TRACEPOINT_OPEN", e))
}

/// What a perf event is opened on.
#[derive(Clone, Debug)]
pub enum PerfEventKind<'a> {
    /// A tracefs tracepoint, by its id (`events/CAT/NAME/id`).
    Tracepoint { id: u64 },
    /// A uprobe through the dynamic `uprobe` PMU: the binary's path and the
    /// probed instruction's file offset. `retprobe_bit` is the config bit
    /// the PMU names `retprobe` (None: an entry probe).
    Uprobe {
        pmu_type: u32,
        path: &'a CStr,
        offset: u64,
        retprobe_bit: Option<u32>,
    },
}

/// perf_event_open for a BPF attachment: every process (pid -1), reported
/// on CPU 0 (a BPF program on a tracepoint or probe runs on every CPU
/// whatever the event's CPU), close-on-exec.
pub fn perf_event_open(kind: &PerfEventKind<'_>) -> Result<OwnedFd, SysError> {
    // SAFETY: perf_event_attr is a C struct of plain integers; zero is valid.
    let mut attr: perf_event_attr = unsafe { std::mem::zeroed() };
    attr.size = std::mem::size_of::<perf_event_attr>() as u32;
    match kind {
        PerfEventKind::Tracepoint { id } => {
            attr.type_ = perf_type_id::PERF_TYPE_TRACEPOINT as u32;
            attr.config = *id;
        }
        PerfEventKind::Uprobe {
            pmu_type,
            path,
            offset,
            retprobe_bit,
        } => {
            attr.type_ = *pmu_type;
            attr.config = retprobe_bit.map_or(0, |b| 1u64 << b);
            attr.__bindgen_anon_3.uprobe_path = ptr_u64(path.as_ptr());
            attr.__bindgen_anon_4.probe_offset = *offset;
        }
    }
    attr.__bindgen_anon_1.sample_period = 1;
    attr.__bindgen_anon_2.wakeup_events = 1;
    // SAFETY: `attr` is a valid perf_event_attr with its size set; the path
    // pointer (uprobes) borrows a CStr that outlives the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            &attr as *const perf_event_attr,
            -1 as libc::pid_t,
            0 as libc::c_int,
            -1 as libc::c_int,
            PERF_FLAG_FD_CLOEXEC as libc::c_ulong,
        )
    };
    if fd < 0 {
        let errno = io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO);
        return Err(SysError::from_errno("perf_event_open", errno));
    }
    // SAFETY: perf_event_open returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Enables a perf event (PERF_EVENT_IOC_ENABLE).
pub fn perf_event_enable(fd: BorrowedFd<'_>) -> Result<(), SysError> {
    // SAFETY: `fd` is a live perf event fd; this ioctl takes no argument.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), PERF_EVENT_IOC_ENABLE as _, 0) };
    if rc < 0 {
        let errno = io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO);
        return Err(SysError::from_errno("ioctl(PERF_EVENT_IOC_ENABLE)", errno));
    }
    Ok(())
}

/// What the kernel says about a link (BPF_OBJ_GET_INFO_BY_FD).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkInfo {
    pub id: u32,
    /// `enum bpf_link_type`.
    pub link_type: u32,
    pub prog_id: u32,
    /// For XDP and tcx links: the interface, 0 once it was removed (the
    /// link then no longer runs anything).
    pub ifindex: Option<u32>,
}

/// Reads a link's id, type and program.
pub fn link_info(fd: impl AsFd) -> Result<LinkInfo, SysError> {
    // SAFETY: bpf_link_info is a C struct of plain integers; zero is valid.
    let mut info: bpf_link_info = unsafe { std::mem::zeroed() };
    let mut attr = zeroed_attr();
    // SAFETY: writing plain integers into the BPF_OBJ_GET_INFO_BY_FD member.
    let a = unsafe { &mut attr.info };
    a.bpf_fd = fd.as_fd().as_raw_fd() as u32;
    a.info_len = std::mem::size_of::<bpf_link_info>() as u32;
    a.info = ptr_u64(&mut info as *mut bpf_link_info);
    bpf_call(bpf_cmd::BPF_OBJ_GET_INFO_BY_FD, &mut attr)
        .map_err(|e| SysError::from_errno("BPF_OBJ_GET_INFO_BY_FD", e))?;
    // SAFETY: the union member read is the one the kernel fills for the
    // link type it reported (both are plain integers).
    let ifindex = unsafe {
        match info.type_ {
            t if t == bpf_link_type::BPF_LINK_TYPE_XDP as u32 => {
                Some(info.__bindgen_anon_1.xdp.ifindex)
            }
            t if t == bpf_link_type::BPF_LINK_TYPE_TCX as u32 => {
                Some(info.__bindgen_anon_1.tcx.ifindex)
            }
            _ => None,
        }
    };
    Ok(LinkInfo {
        id: info.id,
        link_type: info.type_,
        prog_id: info.prog_id,
        ifindex,
    })
}

fn next_ids(cmd: bpf_cmd, call: &'static str) -> Result<Vec<u32>, SysError> {
    let mut ids = Vec::new();
    let mut start = 0u32;
    loop {
        let mut attr = zeroed_attr();
        attr.__bindgen_anon_6.__bindgen_anon_1.start_id = start;
        match bpf_call(cmd, &mut attr) {
            Ok(_) => {
                // SAFETY: reading back the plain integer the kernel wrote.
                start = unsafe { attr.__bindgen_anon_6.next_id };
                ids.push(start);
            }
            Err(libc::ENOENT) => return Ok(ids),
            Err(e) => return Err(SysError::from_errno(call, e)),
        }
    }
}

/// The ids of every BPF program loaded in the kernel.
pub fn prog_ids() -> Result<Vec<u32>, SysError> {
    next_ids(bpf_cmd::BPF_PROG_GET_NEXT_ID, "BPF_PROG_GET_NEXT_ID")
}

/// The ids of every BPF link in the kernel.
pub fn link_ids() -> Result<Vec<u32>, SysError> {
    next_ids(bpf_cmd::BPF_LINK_GET_NEXT_ID, "BPF_LINK_GET_NEXT_ID")
}

fn fd_by_id(cmd: bpf_cmd, call: &'static str, id: u32) -> Result<Option<OwnedFd>, SysError> {
    let mut attr = zeroed_attr();
    attr.__bindgen_anon_6.__bindgen_anon_1.prog_id = id;
    match bpf_call_fd(cmd, &mut attr) {
        Ok(fd) => Ok(Some(fd)),
        Err(libc::ENOENT) => Ok(None),
        Err(e) => Err(SysError::from_errno(call, e)),
    }
}

/// An fd for the program with this id, or None when no such program exists.
pub fn prog_fd_by_id(id: u32) -> Result<Option<OwnedFd>, SysError> {
    fd_by_id(bpf_cmd::BPF_PROG_GET_FD_BY_ID, "BPF_PROG_GET_FD_BY_ID", id)
}

/// An fd for the link with this id, or None when no such link exists.
pub fn link_fd_by_id(id: u32) -> Result<Option<OwnedFd>, SysError> {
    fd_by_id(bpf_cmd::BPF_LINK_GET_FD_BY_ID, "BPF_LINK_GET_FD_BY_ID", id)
}

/// The index of a network interface in the calling thread's network
/// namespace, or None when it has no interface of that name.
pub fn interface_index(name: &str) -> Result<Option<u32>, SysError> {
    let c = CString::new(name).map_err(|_| {
        SysError::InvalidArgument(format!("interface name {name:?} contains a NUL byte"))
    })?;
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call.
    let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if index == 0 {
        let err = io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(libc::ENODEV) | Some(libc::ENXIO) | Some(libc::EINVAL) => Ok(None),
            _ => Err(SysError::Os {
                call: "if_nametoindex",
                source: err,
            }),
        };
    }
    Ok(Some(index))
}
