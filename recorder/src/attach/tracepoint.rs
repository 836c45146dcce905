//! `--tracepoint CAT:NAME`: a tracepoint program on a tracefs tracepoint,
//! through a perf event (perf_event_open of the tracepoint's id) and a
//! perf link (BPF_LINK_CREATE, BPF_PERF_EVENT).
//!
//! The id comes from tracefs (`/sys/kernel/tracing/events/CAT/NAME/id`);
//! a fresh machine may not have tracefs mounted, so bpfrr mounts it there
//! and says so in the link's notes.

use std::fmt;
use std::path::{Path, PathBuf};

use bpfrr_trace::catalog::{AttachType, ProgType};
use bpfrr_trace::object::LinkedProgram;

use super::{AttachError, AttachProgram, Link, expect_prog_type, kernel_error};
use crate::sys::{
    LinkCreate, PerfEventKind, TRACEFS_PATH, ensure_tracefs, perf_event_enable, perf_event_open,
};

/// Where older systems mount tracefs (inside debugfs).
const DEBUGFS_TRACING: &str = "/sys/kernel/debug/tracing";

/// A tracepoint, `category:name` (e.g. `syscalls:sys_enter_openat`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TracepointTarget {
    pub category: String,
    pub name: String,
}

impl TracepointTarget {
    /// Parses `CAT:NAME` or `CAT/NAME`.
    pub fn parse(text: &str) -> Result<TracepointTarget, AttachError> {
        let bad = || {
            AttachError::BadTarget(format!(
                "--tracepoint {text:?} is not of the form CATEGORY:NAME (e.g. syscalls:sys_enter_openat; see `ls /sys/kernel/tracing/events`)"
            ))
        };
        let (category, name) = text
            .split_once(':')
            .or_else(|| text.split_once('/'))
            .ok_or_else(bad)?;
        let valid = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
        };
        if !valid(category) || !valid(name) {
            return Err(bad());
        }
        Ok(TracepointTarget {
            category: category.to_string(),
            name: name.to_string(),
        })
    }

    /// The tracepoint named by a program's section
    /// (`tracepoint/syscalls/sys_enter_openat` gives `syscalls/sys_enter_openat`).
    pub fn from_attach_point(attach_point: &str) -> Option<TracepointTarget> {
        TracepointTarget::parse(attach_point).ok()
    }

    /// Tracepoint programs only.
    pub fn prepare(&self, program: &mut LinkedProgram) -> Result<(), AttachError> {
        expect_prog_type(
            &program.name,
            program.prog_type,
            &[ProgType::Tracepoint],
            self,
        )
    }

    /// Opens the tracepoint's perf event and links the program to it.
    pub fn attach(&self, program: AttachProgram<'_>) -> Result<Link, AttachError> {
        expect_prog_type(
            program.name,
            program.prog_type,
            &[ProgType::Tracepoint],
            self,
        )?;
        let mut notes = Vec::new();
        let id = self.id(&mut notes)?;
        let event =
            perf_event_open(&PerfEventKind::Tracepoint { id }).map_err(kernel_error(self))?;
        let link = LinkCreate {
            prog: program.fd,
            target: std::os::fd::AsRawFd::as_raw_fd(&event) as u32,
            attach_type: AttachType::PerfEvent.number(),
            flags: 0,
        }
        .create()
        .map_err(kernel_error(self))?;
        perf_event_enable(std::os::fd::AsFd::as_fd(&event)).map_err(kernel_error(self))?;
        Ok(Link::new(link, Some(event), self.to_string())?.with_notes(notes))
    }

    /// The tracepoint's id from tracefs, mounting tracefs when no tracing
    /// directory is there.
    fn id(&self, notes: &mut Vec<String>) -> Result<u64, AttachError> {
        let root = tracing_root(notes)?;
        let path = root
            .join("events")
            .join(&self.category)
            .join(&self.name)
            .join("id");
        let text = std::fs::read_to_string(&path).map_err(|_| {
            AttachError::NotFound(format!(
                "the kernel has no tracepoint {}:{} ({} does not exist; see `ls {}/events/{}`)",
                self.category,
                self.name,
                path.display(),
                root.display(),
                self.category
            ))
        })?;
        text.trim().parse().map_err(|_| {
            AttachError::NotFound(format!(
                "{} holds {:?}, not a tracepoint id",
                path.display(),
                text.trim()
            ))
        })
    }
}

/// The mounted tracefs directory with an `events` directory: the standard
/// place, the debugfs one, or the standard place after mounting tracefs.
pub(crate) fn tracing_root(notes: &mut Vec<String>) -> Result<PathBuf, AttachError> {
    for dir in [TRACEFS_PATH, DEBUGFS_TRACING] {
        if Path::new(dir).join("events").is_dir() {
            return Ok(PathBuf::from(dir));
        }
    }
    ensure_tracefs().map_err(|e| AttachError::NotFound(e.to_string()))?;
    notes.push(format!(
        "tracefs was not mounted: bpfrr mounted it on {TRACEFS_PATH}"
    ));
    Ok(PathBuf::from(TRACEFS_PATH))
}

impl fmt::Display for TracepointTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tracepoint {}:{}", self.category, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_separators() {
        let t = TracepointTarget::parse("syscalls:sys_enter_openat").unwrap();
        assert_eq!(t.category, "syscalls");
        assert_eq!(t.name, "sys_enter_openat");
        assert_eq!(
            TracepointTarget::parse("sched/sched_switch").unwrap(),
            TracepointTarget {
                category: "sched".into(),
                name: "sched_switch".into()
            }
        );
        assert_eq!(
            TracepointTarget::from_attach_point("syscalls/sys_enter_openat")
                .unwrap()
                .to_string(),
            "tracepoint syscalls:sys_enter_openat"
        );
    }

    #[test]
    fn rejects_malformed_names() {
        for bad in ["", "openat", ":x", "x:", "../x:y", "a:b c", "a:b/c"] {
            let e = TracepointTarget::parse(bad).unwrap_err().to_string();
            assert!(e.contains("CATEGORY:NAME"), "{bad}: {e}");
        }
    }
}
