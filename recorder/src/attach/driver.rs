//! The live driver: plugs an [`AttachSpec`] into the recording pipeline
//! (`record::Driver`). `start` attaches the instrumented program, `step`
//! waits while the kernel runs it on real events (the pipeline drains the
//! ring buffer between steps), `stop` drops the link, which detaches it.

use std::path::Path;
use std::time::Duration;

use bpfrr_trace::btf::{Btf, BtfKind, TypeData};

use super::fentry::kernel_btf;
use super::tracepoint::tracing_root;
use super::{AttachProgram, AttachSpec, Link};
use crate::record::driver::{CaptureHints, Driver, DriverError, DriverTarget, Step};
use crate::sys::prog_info;

/// The longest a step waits: keeps the ring buffer drained and the stop
/// conditions checked about 40 times a second.
const MAX_WAIT: Duration = Duration::from_millis(25);

/// Records a program attached live.
#[derive(Debug)]
pub struct LiveDriver {
    spec: AttachSpec,
    link: Option<Link>,
    notes: Vec<String>,
}

impl LiveDriver {
    pub fn new(spec: AttachSpec) -> LiveDriver {
        LiveDriver {
            spec,
            link: None,
            notes: Vec::new(),
        }
    }

    pub fn spec(&self) -> &AttachSpec {
        &self.spec
    }

    /// The live link, between `start` and `stop`.
    pub fn link(&self) -> Option<&Link> {
        self.link.as_ref()
    }

    /// What attaching did that the user should hear of (tracefs mounted).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }
}

impl Driver for LiveDriver {
    fn attach_point(&self) -> String {
        self.spec.describe()
    }

    fn capture_hints(&self) -> CaptureHints {
        CaptureHints {
            max_packet: None,
            ctx_size: context_size(&self.spec),
            pinned_cpu: None,
        }
    }

    fn retarget(&self) -> Option<AttachSpec> {
        // Tracing programs are loaded for the target named on the command
        // line, whatever their section says.
        match &self.spec {
            AttachSpec::Fentry(_) | AttachSpec::TpBtf(_) => Some(self.spec.clone()),
            _ => None,
        }
    }

    fn start(&mut self, target: &DriverTarget<'_>) -> Result<(), DriverError> {
        // The BTF target the program was loaded for (tracing programs).
        let attach_btf_id = prog_info(target.prog_fd)
            .map_err(|e| DriverError::new(format!("reading the loaded program's info: {e}")))?
            .attach_btf_id;
        let link = self
            .spec
            .attach(AttachProgram {
                fd: target.prog_fd,
                name: target.name,
                prog_type: target.prog_type,
                expected_attach_type: target.expected_attach_type,
                attach_btf_id,
            })
            .map_err(|e| DriverError::new(e.to_string()))?;
        self.notes.extend(link.notes().iter().cloned());
        self.link = Some(link);
        Ok(())
    }

    fn step(&mut self, budget: Duration) -> Result<Step, DriverError> {
        let Some(link) = &self.link else {
            return Err(DriverError::new(
                "the live driver was asked to run before it attached (a bpfrr bug)",
            ));
        };
        if !link.is_attached() {
            // The interface went away: the kernel detached the program.
            self.notes.push(format!(
                "the recording ended because {} disappeared (its interface was removed)",
                link.description()
            ));
            return Ok(Step::Finished);
        }
        std::thread::sleep(budget.min(MAX_WAIT));
        Ok(Step::Idle)
    }

    fn stop(&mut self) -> Result<(), DriverError> {
        // Dropping the link closes its fd: the kernel detaches the program.
        self.link = None;
        Ok(())
    }
}

/// The size of the raw context of tracing attachments, when the kernel
/// says it: a tracepoint's record (its tracefs format), a raw or BTF
/// tracepoint's arguments (8 bytes each, from the kernel's BTF), an fentry
/// program's arguments. None: the recorder's default for the program type.
pub fn context_size(spec: &AttachSpec) -> Option<u32> {
    match spec {
        AttachSpec::Tracepoint(t) => {
            let root = tracing_root(&mut Vec::new()).ok()?;
            let format = root
                .join("events")
                .join(&t.category)
                .join(&t.name)
                .join("format");
            tracepoint_record_size(&format)
        }
        AttachSpec::RawTracepoint(t) => {
            let btf = kernel_btf().ok()?;
            tracepoint_arg_count(&btf, &t.name).map(|n| n * 8)
        }
        AttachSpec::TpBtf(t) => {
            let btf = kernel_btf().ok()?;
            tracepoint_arg_count(&btf, &t.name).map(|n| n * 8)
        }
        AttachSpec::Fentry(t) => {
            let btf = kernel_btf().ok()?;
            let func = btf.find_by_name(BtfKind::Func, &t.func)?;
            let TypeData::Func { proto, .. } = btf.type_by_id(func)?.data else {
                return None;
            };
            proto_params(&btf, proto).map(|n| n * 8)
        }
        AttachSpec::Xdp(_) | AttachSpec::Tc(_) | AttachSpec::Uprobe(_) | AttachSpec::Cgroup(_) => {
            None
        }
    }
}

/// Bytes of a tracepoint's record: the end of its last field in the
/// tracefs `format` file (`field:...; offset:N; size:M; signed:S;`).
pub fn tracepoint_record_size(format: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(format).ok()?;
    parse_record_size(&text)
}

fn parse_record_size(format: &str) -> Option<u32> {
    let field = |line: &str, key: &str| -> Option<u32> {
        let at = line.find(key)? + key.len();
        line[at..].split(';').next()?.trim().parse().ok()
    };
    format
        .lines()
        .filter(|l| l.trim_start().starts_with("field:"))
        .filter_map(|l| Some(field(l, "offset:")? + field(l, "size:")?))
        .max()
}

/// The arguments of raw tracepoint `name` (the kernel's typedef
/// `btf_trace_NAME` is a pointer to a prototype whose first parameter is
/// the tracepoint's private data, not an argument).
fn tracepoint_arg_count(btf: &Btf, name: &str) -> Option<u32> {
    let typedef = btf.find_by_name(BtfKind::Typedef, &format!("btf_trace_{name}"))?;
    let TypeData::Typedef { target } = btf.type_by_id(typedef)?.data else {
        return None;
    };
    let TypeData::Ptr { target: proto } = btf.type_by_id(target)?.data else {
        return None;
    };
    proto_params(btf, proto).map(|n| n.saturating_sub(1))
}

fn proto_params(btf: &Btf, proto: u32) -> Option<u32> {
    match &btf.type_by_id(proto)?.data {
        TypeData::FuncProto { params, .. } => Some(params.len() as u32),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attach::{TracepointTarget, XdpTarget};

    #[test]
    fn record_size_is_the_end_of_the_last_field() {
        let format = "name: sys_enter_openat\nID: 700\nformat:\n\
            \tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
            \tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n\
            \tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;\n\
            \tfield:umode_t mode;\toffset:40;\tsize:8;\tsigned:0;\n\
            \tfield:const char * filename;\toffset:24;\tsize:8;\tsigned:0;\n\n\
            print fmt: \"dfd: 0x%08lx\", ((unsigned long)(REC->dfd))\n";
        assert_eq!(parse_record_size(format), Some(48));
        assert_eq!(parse_record_size("no fields"), None);
    }

    #[test]
    fn hints_for_the_running_kernel() {
        // The openat tracepoint record ends with `mode` at 40..48.
        let tp =
            AttachSpec::Tracepoint(TracepointTarget::parse("syscalls:sys_enter_openat").unwrap());
        if Path::new("/sys/kernel/tracing/events/syscalls").is_dir() {
            assert_eq!(context_size(&tp), Some(48));
        }
        // sys_enter(regs, id): two arguments.
        if Path::new(crate::load::VMLINUX_BTF).exists() {
            let raw = AttachSpec::RawTracepoint(
                crate::attach::RawTracepointTarget::parse("sys_enter").unwrap(),
            );
            assert_eq!(context_size(&raw), Some(16));
        }
        let xdp = AttachSpec::Xdp(XdpTarget::parse("lo").unwrap());
        assert_eq!(context_size(&xdp), None);
        let d = LiveDriver::new(xdp);
        assert_eq!(d.attach_point(), "XDP on lo");
        assert_eq!(d.capture_hints(), CaptureHints::default());
    }

    #[test]
    fn stepping_before_start_is_an_error_and_stop_is_always_fine() {
        let mut d = LiveDriver::new(AttachSpec::Xdp(XdpTarget::parse("lo").unwrap()));
        assert!(d.step(Duration::from_millis(1)).is_err());
        assert!(d.stop().is_ok());
        assert!(d.link().is_none());
    }
}
