//! `--raw-tracepoint NAME`: a raw tracepoint program on a kernel
//! tracepoint by its name (`sys_enter`, `sched_switch`), through
//! BPF_RAW_TRACEPOINT_OPEN, which returns a raw_tp link.

use std::fmt;

use bpfrr_trace::catalog::ProgType;
use bpfrr_trace::object::LinkedProgram;

use super::{AttachError, AttachProgram, Link, expect_prog_type, kernel_error};
use crate::sys::raw_tracepoint_open;

const ACCEPTED: &[ProgType] = &[ProgType::RawTracepoint, ProgType::RawTracepointWritable];

/// A raw tracepoint name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawTracepointTarget {
    pub name: String,
}

impl RawTracepointTarget {
    /// Parses a tracepoint name (`sched_switch`; a `CAT:` prefix is dropped,
    /// raw tracepoints have none).
    pub fn parse(text: &str) -> Result<RawTracepointTarget, AttachError> {
        let name = text.rsplit_once(':').map_or(text, |(_, n)| n);
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(AttachError::BadTarget(format!(
                "--raw-tracepoint {text:?} is not a tracepoint name (e.g. sys_enter or sched_switch)"
            )));
        }
        Ok(RawTracepointTarget {
            name: name.to_string(),
        })
    }

    /// Raw tracepoint programs only.
    pub fn prepare(&self, program: &mut LinkedProgram) -> Result<(), AttachError> {
        expect_prog_type(&program.name, program.prog_type, ACCEPTED, self)
    }

    /// Opens the raw tracepoint with the program.
    pub fn attach(&self, program: AttachProgram<'_>) -> Result<Link, AttachError> {
        expect_prog_type(program.name, program.prog_type, ACCEPTED, self)?;
        let fd = raw_tracepoint_open(program.fd, Some(&self.name)).map_err(|e| {
            match e.errno() {
                Some(libc::ENOENT) => AttachError::NotFound(format!(
                    "the kernel has no raw tracepoint {:?} (the names are those under /sys/kernel/tracing/events/*/, without the category)",
                    self.name
                )),
                _ => kernel_error(self)(e),
            }
        })?;
        Link::new(fd, None, self.to_string())
    }
}

impl fmt::Display for RawTracepointTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "raw tracepoint {}", self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attach::test_program;

    #[test]
    fn parses_names() {
        assert_eq!(
            RawTracepointTarget::parse("sys_enter").unwrap().name,
            "sys_enter"
        );
        assert_eq!(
            RawTracepointTarget::parse("sched:sched_switch")
                .unwrap()
                .name,
            "sched_switch"
        );
        for bad in ["", "a b", "x/y", "sched:"] {
            assert!(RawTracepointTarget::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn prepare_accepts_raw_tracepoint_programs() {
        let t = RawTracepointTarget::parse("sys_enter").unwrap();
        t.prepare(&mut test_program(ProgType::RawTracepoint.number(), None))
            .unwrap();
        assert!(
            t.prepare(&mut test_program(ProgType::Tracepoint.number(), None))
                .is_err()
        );
    }
}
