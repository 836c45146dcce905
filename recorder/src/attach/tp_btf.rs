//! `--tp-btf NAME`: a BTF-enabled raw tracepoint (`SEC("tp_btf/NAME")`,
//! a tracing program with attach type BPF_TRACE_RAW_TP). Its arguments
//! are typed kernel pointers it may load through directly. The target is
//! the kernel BTF typedef `btf_trace_NAME`, fixed when the program is
//! loaded ([`TpBtfTarget::prepare`]); the link is a tracing link.

use std::fmt;

use bpfrr_trace::btf::{Btf, BtfKind};
use bpfrr_trace::catalog::{AttachType, ProgType};
use bpfrr_trace::object::LinkedProgram;

use super::fentry::{TracingParams, check_loaded_target, is_identifier, kernel_btf, tracing_link};
use super::{AttachError, AttachProgram, Link, attach_type_name, expect_prog_type, kernel_error};

/// A BTF tracepoint by name (`sys_enter`, `sched_switch`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TpBtfTarget {
    pub name: String,
}

impl TpBtfTarget {
    /// Parses a tracepoint name; a `CAT:` prefix is dropped.
    pub fn parse(text: &str) -> Result<TpBtfTarget, AttachError> {
        let name = text.rsplit_once(':').map_or(text, |(_, n)| n);
        if !is_identifier(name) {
            return Err(AttachError::BadTarget(format!(
                "--tp-btf {text:?} is not a tracepoint name (e.g. sys_enter or sched_switch)"
            )));
        }
        Ok(TpBtfTarget {
            name: name.to_string(),
        })
    }

    /// Tracing programs with attach type BPF_TRACE_RAW_TP; makes the
    /// program load against this tracepoint.
    pub fn prepare(&self, program: &mut LinkedProgram) -> Result<(), AttachError> {
        expect_prog_type(&program.name, program.prog_type, &[ProgType::Tracing], self)?;
        let attach_type = *program
            .expected_attach_type
            .get_or_insert(AttachType::TraceRawTp.number());
        check_attach_type(&program.name, attach_type, self)?;
        program.attach_point = self.name.clone();
        Ok(())
    }

    /// The attach parameters, with the tracepoint's typedef found in `btf`.
    pub fn params(
        &self,
        program: &str,
        prog_type: u32,
        expected_attach_type: Option<u32>,
        btf: &Btf,
    ) -> Result<TracingParams, AttachError> {
        expect_prog_type(program, prog_type, &[ProgType::Tracing], self)?;
        let attach_type = expected_attach_type.unwrap_or(AttachType::TraceRawTp.number());
        check_attach_type(program, attach_type, self)?;
        let typedef = format!("btf_trace_{}", self.name);
        let btf_id = btf
            .find_by_name(BtfKind::Typedef, &typedef)
            .ok_or_else(|| {
                AttachError::NotFound(format!(
                    "the kernel's BTF has no tracepoint {:?} (no typedef {typedef})",
                    self.name
                ))
            })?;
        Ok(TracingParams {
            attach_type,
            btf_id,
        })
    }

    /// Attaches a program loaded for this tracepoint.
    pub fn attach(&self, program: AttachProgram<'_>) -> Result<Link, AttachError> {
        let btf = kernel_btf()?;
        let params = self.params(
            program.name,
            program.prog_type,
            program.expected_attach_type,
            &btf,
        )?;
        check_loaded_target(&program, params.btf_id, self)?;
        let link = tracing_link(&program, params.attach_type).map_err(kernel_error(self))?;
        Link::new(link, None, self.to_string())
    }
}

fn check_attach_type(
    program: &str,
    attach_type: u32,
    target: &TpBtfTarget,
) -> Result<(), AttachError> {
    if attach_type == AttachType::TraceRawTp.number() {
        return Ok(());
    }
    Err(AttachError::WrongProgramType {
        program: program.to_string(),
        actual: format!("tracing ({})", attach_type_name(attach_type)),
        target: target.to_string(),
        expected: "tp_btf (trace_raw_tp)".to_string(),
    })
}

impl fmt::Display for TpBtfTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BTF tracepoint {}", self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attach::fentry::tests::tiny_btf;
    use crate::attach::test_program;

    #[test]
    fn params_find_the_typedef() {
        let btf = tiny_btf(
            &["sys_enter"],
            &["btf_trace_sched_switch", "btf_trace_sys_enter"],
        );
        let t = TpBtfTarget::parse("sys_enter").unwrap();
        let p = t.params("p", 26, None, &btf).unwrap();
        assert_eq!(
            p,
            TracingParams {
                attach_type: 23,
                btf_id: 5
            }
        );
        let e = TpBtfTarget::parse("sys_exit")
            .unwrap()
            .params("p", 26, None, &btf)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no typedef btf_trace_sys_exit"), "{e}");
        assert!(t.params("p", 26, Some(24), &btf).is_err());
        assert!(t.params("p", 17, None, &btf).is_err());
    }

    #[test]
    fn prepare_and_parse() {
        let t = TpBtfTarget::parse("raw_syscalls:sys_enter").unwrap();
        assert_eq!(t.name, "sys_enter");
        let mut p = test_program(26, None);
        t.prepare(&mut p).unwrap();
        assert_eq!(
            (p.attach_point.as_str(), p.expected_attach_type),
            ("sys_enter", Some(23))
        );
        assert!(TpBtfTarget::parse("a-b").is_err());
    }
}
