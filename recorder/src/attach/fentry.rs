//! `--fentry FUNC`: an fentry, fexit or fmod_ret program on a kernel
//! function. The function is found by name in the kernel's BTF
//! (/sys/kernel/btf/vmlinux); the program must be LOADED for that BTF id
//! ([`FentryTarget::prepare`] sets it), then a tracing link
//! (BPF_LINK_CREATE with the program's attach type) attaches it.
//!
//! Some kernels refuse these programs with EPERM even to root (lockdown,
//! or a kernel built without the BPF trampoline): that is reported as
//! such, with the alternatives.

use std::fmt;

use bpfrr_trace::btf::{Btf, BtfKind};
use bpfrr_trace::catalog::{AttachType, ProgType};
use bpfrr_trace::object::LinkedProgram;

use super::{
    AttachError, AttachProgram, Link, attach_type_name, expect_prog_type, kernel_error,
    prog_type_name,
};
use crate::load::{VMLINUX_BTF, vmlinux_btf_path};
use crate::sys::{LinkCreate, SysError, raw_tracepoint_open};

/// The attach types of programs on a kernel function.
const FUNCTION_ATTACH_TYPES: [AttachType; 3] = [
    AttachType::TraceFentry,
    AttachType::TraceFexit,
    AttachType::ModifyReturn,
];

/// A kernel function to trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FentryTarget {
    pub func: String,
}

/// What attaching a tracing program needs: its attach type and the BTF id
/// of its target in the kernel's BTF.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TracingParams {
    pub attach_type: u32,
    pub btf_id: u32,
}

impl FentryTarget {
    /// Parses a kernel function name.
    pub fn parse(text: &str) -> Result<FentryTarget, AttachError> {
        if !is_identifier(text) {
            return Err(AttachError::BadTarget(format!(
                "--fentry {text:?} is not a kernel function name (e.g. do_unlinkat)"
            )));
        }
        Ok(FentryTarget {
            func: text.to_string(),
        })
    }

    /// Tracing programs of the fentry family only; makes the program load
    /// against this function (an fentry program when the section said
    /// nothing more).
    pub fn prepare(&self, program: &mut LinkedProgram) -> Result<(), AttachError> {
        expect_prog_type(&program.name, program.prog_type, &[ProgType::Tracing], self)?;
        let attach_type = *program
            .expected_attach_type
            .get_or_insert(AttachType::TraceFentry.number());
        function_attach_type(&program.name, attach_type, self)?;
        program.attach_point = self.func.clone();
        Ok(())
    }

    /// The attach parameters for a program of this type and attach type,
    /// with the function looked up in `btf` (the kernel's).
    pub fn params(
        &self,
        program: &str,
        prog_type: u32,
        expected_attach_type: Option<u32>,
        btf: &Btf,
    ) -> Result<TracingParams, AttachError> {
        expect_prog_type(program, prog_type, &[ProgType::Tracing], self)?;
        let attach_type = expected_attach_type.unwrap_or(AttachType::TraceFentry.number());
        function_attach_type(program, attach_type, self)?;
        let btf_id = btf.find_by_name(BtfKind::Func, &self.func).ok_or_else(|| {
            AttachError::NotFound(format!(
                "the kernel's BTF has no function {:?} (it may be inlined or static; see `bpftool btf dump file {VMLINUX_BTF} | grep \"FUNC '{}'\"`)",
                self.func, self.func
            ))
        })?;
        Ok(TracingParams {
            attach_type,
            btf_id,
        })
    }

    /// Attaches a program loaded for this function.
    pub fn attach(&self, program: AttachProgram<'_>) -> Result<Link, AttachError> {
        let btf = kernel_btf()?;
        let params = self.params(
            program.name,
            program.prog_type,
            program.expected_attach_type,
            &btf,
        )?;
        check_loaded_target(&program, params.btf_id, self)?;
        let link = tracing_link(&program, params.attach_type).map_err(|e| match e.errno() {
            Some(libc::EPERM) => restricted(),
            _ => kernel_error(self)(e),
        })?;
        Link::new(link, None, self.to_string())
    }

    /// The error to show when loading a program for this target failed:
    /// EPERM as root means the kernel forbids fentry programs.
    pub fn explain_load_error(err: &SysError) -> Option<AttachError> {
        (err.errno() == Some(libc::EPERM)).then(restricted)
    }
}

fn restricted() -> AttachError {
    AttachError::Restricted(
        "this kernel refuses fentry/fexit programs (EPERM even as root: lockdown, or a kernel without the BPF trampoline); record the function through a tracepoint or raw tracepoint near it, or replay the program with a test-run driver"
            .to_string(),
    )
}

/// Checks the attach type is one of a function's (fentry, fexit, fmod_ret).
fn function_attach_type(
    program: &str,
    attach_type: u32,
    target: &FentryTarget,
) -> Result<(), AttachError> {
    if FUNCTION_ATTACH_TYPES
        .iter()
        .any(|t| t.number() == attach_type)
    {
        return Ok(());
    }
    Err(AttachError::WrongProgramType {
        program: program.to_string(),
        actual: format!(
            "{} ({})",
            prog_type_name(ProgType::Tracing.number()),
            attach_type_name(attach_type)
        ),
        target: target.to_string(),
        expected: "fentry, fexit or fmod_ret".to_string(),
    })
}

/// A program loaded for another BTF target cannot be re-aimed: say so.
pub(crate) fn check_loaded_target(
    program: &AttachProgram<'_>,
    btf_id: u32,
    target: &dyn fmt::Display,
) -> Result<(), AttachError> {
    if program.attach_btf_id == 0 || program.attach_btf_id == btf_id {
        return Ok(());
    }
    Err(AttachError::BadTarget(format!(
        "program {:?} was loaded for kernel BTF id {}, but {target} is BTF id {btf_id}: load it for that target (AttachSpec::prepare before loading)",
        program.name, program.attach_btf_id
    )))
}

/// Creates a tracing link for a program whose target was fixed at load
/// time; kernels without BPF_LINK_CREATE for it take
/// BPF_RAW_TRACEPOINT_OPEN with no name.
pub(crate) fn tracing_link(
    program: &AttachProgram<'_>,
    attach_type: u32,
) -> Result<std::os::fd::OwnedFd, SysError> {
    let created = LinkCreate {
        prog: program.fd,
        target: 0,
        attach_type,
        flags: 0,
    }
    .create();
    match created {
        Err(e) if e.errno() == Some(libc::EINVAL) => raw_tracepoint_open(program.fd, None),
        other => other,
    }
}

/// The running kernel's BTF.
pub(crate) fn kernel_btf() -> Result<Btf, AttachError> {
    let path = vmlinux_btf_path();
    let bytes = std::fs::read(&path).map_err(|e| {
        AttachError::NotFound(format!(
            "cannot read the kernel's BTF {} ({e}): BTF attach targets need a kernel built with CONFIG_DEBUG_INFO_BTF=y (it provides {VMLINUX_BTF})",
            path.display()
        ))
    })?;
    Btf::parse(&bytes)
        .map_err(|e| AttachError::NotFound(format!("cannot parse {}: {e}", path.display())))
}

pub(crate) fn is_identifier(text: &str) -> bool {
    !text.is_empty()
        && !text.starts_with(|c: char| c.is_ascii_digit())
        && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl fmt::Display for FentryTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "kernel function {}", self.func)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::attach::test_program;

    /// A minimal BTF blob: `int`, a function prototype, the functions and
    /// typedefs named (typedefs of the prototype).
    pub(crate) fn tiny_btf(funcs: &[&str], typedefs: &[&str]) -> Btf {
        let mut strings = vec![0u8];
        let mut add = |s: &str| {
            let off = strings.len() as u32;
            strings.extend(s.as_bytes());
            strings.push(0);
            off
        };
        let int_name = add("int");
        let func_names: Vec<u32> = funcs.iter().map(|f| add(f)).collect();
        let typedef_names: Vec<u32> = typedefs.iter().map(|f| add(f)).collect();
        let mut types = Vec::new();
        let ty = |types: &mut Vec<u8>, name: u32, kind: u32, vlen: u32, size_or_type: u32| {
            types.extend(name.to_le_bytes());
            types.extend(((kind << 24) | vlen).to_le_bytes());
            types.extend(size_or_type.to_le_bytes());
        };
        ty(&mut types, int_name, 1, 0, 4); // [1] int
        types.extend((32u32 | (1 << 24)).to_le_bytes()); // signed, 32 bits
        ty(&mut types, 0, 13, 0, 1); // [2] int (void)
        for n in &func_names {
            ty(&mut types, *n, 12, 1, 2); // global FUNC
        }
        for n in &typedef_names {
            ty(&mut types, *n, 8, 0, 2);
        }
        let mut blob = vec![0x9f, 0xeb, 1, 0];
        blob.extend(24u32.to_le_bytes());
        blob.extend(0u32.to_le_bytes());
        blob.extend((types.len() as u32).to_le_bytes());
        blob.extend((types.len() as u32).to_le_bytes());
        blob.extend((strings.len() as u32).to_le_bytes());
        blob.extend(&types);
        blob.extend(&strings);
        Btf::parse(&blob).unwrap()
    }

    #[test]
    fn params_find_the_function_and_keep_the_attach_type() {
        let btf = tiny_btf(&["vfs_read", "do_unlinkat"], &[]);
        let t = FentryTarget::parse("do_unlinkat").unwrap();
        let tracing = ProgType::Tracing.number();
        let p = t.params("p", tracing, None, &btf).unwrap();
        assert_eq!(
            p,
            TracingParams {
                attach_type: AttachType::TraceFentry.number(),
                btf_id: 4
            }
        );
        let fexit = Some(AttachType::TraceFexit.number());
        assert_eq!(t.params("p", tracing, fexit, &btf).unwrap().attach_type, 25);
        let p = FentryTarget::parse("vfs_read")
            .unwrap()
            .params("p", tracing, None, &btf)
            .unwrap();
        assert_eq!(p.btf_id, 3);
    }

    #[test]
    fn params_reject_what_cannot_attach_to_a_function() {
        let btf = tiny_btf(&["vfs_read"], &["btf_trace_sys_enter"]);
        let t = FentryTarget::parse("vfs_write").unwrap();
        let e = t
            .params("p", ProgType::Tracing.number(), None, &btf)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no function \"vfs_write\""), "{e}");
        // A typedef of that name is not a function.
        let t = FentryTarget::parse("btf_trace_sys_enter").unwrap();
        assert!(t.params("p", 26, None, &btf).is_err());
        let t = FentryTarget::parse("vfs_read").unwrap();
        let e = t
            .params("p", ProgType::Tracing.number(), Some(23), &btf)
            .unwrap_err()
            .to_string();
        assert!(e.contains("tracing (trace_raw_tp)"), "{e}");
        assert!(e.contains("fentry, fexit or fmod_ret"), "{e}");
        assert!(matches!(
            t.params("p", ProgType::Kprobe.number(), None, &btf),
            Err(AttachError::WrongProgramType { .. })
        ));
    }

    #[test]
    fn prepare_aims_the_program_at_the_function() {
        let t = FentryTarget::parse("do_unlinkat").unwrap();
        let mut p = test_program(ProgType::Tracing.number(), None);
        t.prepare(&mut p).unwrap();
        assert_eq!(p.attach_point, "do_unlinkat");
        assert_eq!(p.expected_attach_type, Some(24));
        let mut p = test_program(ProgType::Tracing.number(), Some(25));
        t.prepare(&mut p).unwrap();
        assert_eq!(p.expected_attach_type, Some(25));
        let mut p = test_program(ProgType::Tracing.number(), Some(23));
        assert!(t.prepare(&mut p).is_err());
    }

    #[test]
    fn parse_and_eperm_messages() {
        assert!(FentryTarget::parse("do_unlinkat").is_ok());
        for bad in ["", "1abc", "a-b", "a b"] {
            assert!(FentryTarget::parse(bad).is_err(), "{bad}");
        }
        let eperm = SysError::KernelRestricted {
            call: "BPF_PROG_LOAD",
        };
        let e = FentryTarget::explain_load_error(&eperm)
            .unwrap()
            .to_string();
        assert!(e.contains("refuses fentry/fexit programs"), "{e}");
        let other = SysError::InvalidArgument("x".into());
        assert!(FentryTarget::explain_load_error(&other).is_none());
    }
}
