//! Live attachment: one module per attach kind, each parsing its command
//! line target and attaching a loaded program to it.
//!
//! Every attachment returns a [`Link`] that owns the kernel link through a
//! file descriptor and is never pinned: the kernel detaches it when the fd
//! is closed, which happens when the `Link` is dropped, when bpfrr exits,
//! panics or is killed (SIGKILL included). Nothing bpfrr attaches can
//! outlive it.
//!
//! The flow for a recording:
//! 1. parse the target (`AttachSpec::parse_*` or each kind's `parse`);
//! 2. [`AttachSpec::prepare`] the linked program before loading it (it
//!    checks the program type fits and sets what the kernel needs at load
//!    time: the fentry/tp_btf target, the cgroup direction);
//! 3. load it, then [`AttachSpec::attach`] it.

pub mod cgroup_skb;
pub mod driver;
pub mod fentry;
pub mod raw_tracepoint;
pub mod tc;
pub mod tp_btf;
pub mod tracepoint;
pub mod uprobe;
pub mod xdp;

use std::fmt;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use bpfrr_trace::catalog::{AttachType, ProgType};
use bpfrr_trace::object::LinkedProgram;

use crate::sys::{SysError, link_info};

pub use cgroup_skb::{CgroupDirection, CgroupTarget};
pub use driver::LiveDriver;
pub use fentry::FentryTarget;
pub use raw_tracepoint::RawTracepointTarget;
pub use tc::{TcDirection, TcTarget};
pub use tp_btf::TpBtfTarget;
pub use tracepoint::TracepointTarget;
pub use uprobe::UprobeTarget;
pub use xdp::{XdpMode, XdpTarget};

/// Why a program could not be attached, as one sentence saying what to do.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    /// The command-line target is malformed.
    #[error("{0}")]
    BadTarget(String),
    /// The program's type cannot attach there.
    #[error(
        "program {program:?} is a {actual} program, but {target} needs a {expected} program; pick the matching program with --prog or another attach option"
    )]
    WrongProgramType {
        program: String,
        actual: String,
        target: String,
        expected: String,
    },
    /// The target does not exist on this machine.
    #[error("{0}")]
    NotFound(String),
    /// The kernel refused the attachment.
    #[error("attaching to {target} failed: {source}")]
    Kernel {
        target: String,
        #[source]
        source: SysError,
    },
    /// The kernel forbids this kind of attachment outright.
    #[error("{0}")]
    Restricted(String),
}

/// The program to attach: its fd and what it was loaded as.
#[derive(Clone, Copy, Debug)]
pub struct AttachProgram<'a> {
    pub fd: BorrowedFd<'a>,
    pub name: &'a str,
    /// `enum bpf_prog_type`.
    pub prog_type: u32,
    /// `expected_attach_type` it was loaded with, if any.
    pub expected_attach_type: Option<u32>,
    /// The kernel BTF id it was loaded against (tracing programs), or 0.
    pub attach_btf_id: u32,
}

/// A live attachment owned by this process. Dropping it detaches the
/// program (the kernel releases a link when its last fd closes).
pub struct Link {
    /// The BPF link. Declared first: dropped (detached) before the perf
    /// event it may be attached through.
    link: OwnedFd,
    /// The perf event a tracepoint or uprobe link is attached through.
    _perf_event: Option<OwnedFd>,
    id: u32,
    description: String,
    notes: Vec<String>,
}

impl Link {
    /// Wraps a link fd the kernel returned; `description` says where it is
    /// attached ("XDP (generic mode) on veth1").
    pub(crate) fn new(
        link: OwnedFd,
        perf_event: Option<OwnedFd>,
        description: String,
    ) -> Result<Link, AttachError> {
        let id = link_info(&link)
            .map_err(|source| AttachError::Kernel {
                target: description.clone(),
                source,
            })?
            .id;
        Ok(Link {
            link,
            _perf_event: perf_event,
            id,
            description,
            notes: Vec::new(),
        })
    }

    pub(crate) fn with_notes(mut self, notes: Vec<String>) -> Link {
        self.notes = notes;
        self
    }

    /// The kernel's id of the link (`bpftool link show id N`).
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Where the program is attached, for messages.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Things bpfrr did to make the attachment possible that the user
    /// should know of (e.g. mounting tracefs).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// False once the kernel has detached the link on its own: an XDP or
    /// tcx link whose interface was removed.
    pub fn is_attached(&self) -> bool {
        link_info(&self.link).map_or(true, |i| i.ifindex != Some(0))
    }

    /// Detaches now (the same as dropping the link).
    pub fn detach(self) {
        drop(self);
    }
}

impl AsFd for Link {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.link.as_fd()
    }
}

impl fmt::Debug for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Link")
            .field("id", &self.id)
            .field("description", &self.description)
            .finish()
    }
}

/// Where to attach, as the live-driver options give it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttachSpec {
    /// `--xdp IFACE`
    Xdp(XdpTarget),
    /// `--tc IFACE:ingress|egress`
    Tc(TcTarget),
    /// `--tracepoint CAT:NAME`
    Tracepoint(TracepointTarget),
    /// `--raw-tracepoint NAME`
    RawTracepoint(RawTracepointTarget),
    /// `--uprobe PATH:SYMBOL`
    Uprobe(UprobeTarget),
    /// `--fentry FUNC` (fentry, fexit and fmod_ret programs)
    Fentry(FentryTarget),
    /// `--tp-btf NAME`
    TpBtf(TpBtfTarget),
    /// `--cgroup PATH`
    Cgroup(CgroupTarget),
}

impl AttachSpec {
    /// Checks that a linked program can attach here, and sets what the
    /// kernel needs to know at load time (the BTF target of fentry and
    /// tp_btf programs, the direction of a cgroup skb program). Call before
    /// loading the original and the instrumented program.
    pub fn prepare(&self, program: &mut LinkedProgram) -> Result<(), AttachError> {
        match self {
            AttachSpec::Xdp(t) => t.prepare(program),
            AttachSpec::Tc(t) => t.prepare(program),
            AttachSpec::Tracepoint(t) => t.prepare(program),
            AttachSpec::RawTracepoint(t) => t.prepare(program),
            AttachSpec::Uprobe(t) => t.prepare(program),
            AttachSpec::Fentry(t) => t.prepare(program),
            AttachSpec::TpBtf(t) => t.prepare(program),
            AttachSpec::Cgroup(t) => t.prepare(program),
        }
    }

    /// Attaches a loaded program; the returned link detaches on drop.
    pub fn attach(&self, program: AttachProgram<'_>) -> Result<Link, AttachError> {
        match self {
            AttachSpec::Xdp(t) => t.attach(program),
            AttachSpec::Tc(t) => t.attach(program),
            AttachSpec::Tracepoint(t) => t.attach(program),
            AttachSpec::RawTracepoint(t) => t.attach(program),
            AttachSpec::Uprobe(t) => t.attach(program),
            AttachSpec::Fentry(t) => t.attach(program),
            AttachSpec::TpBtf(t) => t.attach(program),
            AttachSpec::Cgroup(t) => t.attach(program),
        }
    }

    /// Where this attaches, for messages ("XDP on veth1").
    pub fn describe(&self) -> String {
        match self {
            AttachSpec::Xdp(t) => t.to_string(),
            AttachSpec::Tc(t) => t.to_string(),
            AttachSpec::Tracepoint(t) => t.to_string(),
            AttachSpec::RawTracepoint(t) => t.to_string(),
            AttachSpec::Uprobe(t) => t.to_string(),
            AttachSpec::Fentry(t) => t.to_string(),
            AttachSpec::TpBtf(t) => t.to_string(),
            AttachSpec::Cgroup(t) => t.to_string(),
        }
    }
}

impl fmt::Display for AttachSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

/// The name of a program type for messages ("xdp", or the number).
pub(crate) fn prog_type_name(prog_type: u32) -> String {
    ProgType::from_number(prog_type)
        .map(|t| t.name().to_string())
        .unwrap_or_else(|| format!("type {prog_type}"))
}

/// The name of an attach type for messages.
pub(crate) fn attach_type_name(attach_type: u32) -> String {
    AttachType::from_number(attach_type)
        .map(|t| t.name().to_string())
        .unwrap_or_else(|| format!("attach type {attach_type}"))
}

/// Checks a program's type against the types a target accepts.
pub(crate) fn expect_prog_type(
    program: &str,
    prog_type: u32,
    accepted: &[ProgType],
    target: &dyn fmt::Display,
) -> Result<(), AttachError> {
    if accepted.iter().any(|t| t.number() == prog_type) {
        return Ok(());
    }
    Err(AttachError::WrongProgramType {
        program: program.to_string(),
        actual: prog_type_name(prog_type),
        target: target.to_string(),
        expected: accepted
            .iter()
            .map(|t| t.name())
            .collect::<Vec<_>>()
            .join(" or "),
    })
}

/// Maps a failed attach call to an [`AttachError`], naming the target.
pub(crate) fn kernel_error(target: &dyn fmt::Display) -> impl FnOnce(SysError) -> AttachError {
    let target = target.to_string();
    move |source| AttachError::Kernel { target, source }
}

/// Splits `A:B` at the last colon; an error names the expected form.
pub(crate) fn split_target<'a>(
    text: &'a str,
    option: &str,
    form: &str,
) -> Result<(&'a str, &'a str), AttachError> {
    match text.rsplit_once(':') {
        Some((a, b)) if !a.is_empty() && !b.is_empty() => Ok((a, b)),
        _ => Err(AttachError::BadTarget(format!(
            "{option} {text:?} is not of the form {form}"
        ))),
    }
}

/// A linked program with no instructions, for the attach-parameter tests.
#[cfg(test)]
pub(crate) fn test_program(prog_type: u32, expected_attach_type: Option<u32>) -> LinkedProgram {
    LinkedProgram {
        name: "prog".into(),
        prog_type,
        expected_attach_type,
        license: "GPL".into(),
        ..LinkedProgram::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_target_uses_the_last_colon() {
        assert_eq!(
            split_target("/a:b/c:sym", "--uprobe", "PATH:SYMBOL").unwrap(),
            ("/a:b/c", "sym")
        );
        let e = split_target("veth0", "--tc", "IFACE:ingress|egress").unwrap_err();
        assert_eq!(
            e.to_string(),
            "--tc \"veth0\" is not of the form IFACE:ingress|egress"
        );
        assert!(split_target(":x", "--tc", "F").is_err());
        assert!(split_target("x:", "--tc", "F").is_err());
    }

    #[test]
    fn wrong_program_type_names_both_types() {
        let e = expect_prog_type(
            "count_openat",
            ProgType::Tracepoint.number(),
            &[ProgType::Xdp],
            &"XDP on veth0",
        )
        .unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("\"count_openat\" is a tracepoint program"),
            "{text}"
        );
        assert!(text.contains("XDP on veth0 needs a xdp program"), "{text}");
        assert!(expect_prog_type("p", 6, &[ProgType::Xdp], &"x").is_ok());
    }
}
