//! `--tc IFACE:ingress|egress`: a sched_cls program on an interface's
//! ingress or egress through a tcx link (BPF_LINK_CREATE with
//! BPF_TCX_INGRESS/EGRESS, Linux 6.6+). tcx needs no qdisc, and its links
//! sit beside other users' tc filters without replacing them.

use std::fmt;

use bpfrr_trace::catalog::{AttachType, ProgType};
use bpfrr_trace::object::LinkedProgram;

use super::xdp::{check_iface_name, resolve_iface};
use super::{AttachError, AttachProgram, Link, expect_prog_type, kernel_error, split_target};
use crate::sys::LinkCreate;

/// Which way the packets go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcDirection {
    Ingress,
    Egress,
}

impl TcDirection {
    fn attach_type(self) -> AttachType {
        match self {
            TcDirection::Ingress => AttachType::TcxIngress,
            TcDirection::Egress => AttachType::TcxEgress,
        }
    }
}

impl fmt::Display for TcDirection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TcDirection::Ingress => "ingress",
            TcDirection::Egress => "egress",
        })
    }
}

/// An interface and direction to attach a TC program to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcTarget {
    pub iface: String,
    pub direction: TcDirection,
}

impl TcTarget {
    /// Parses `IFACE:ingress` or `IFACE:egress`.
    pub fn parse(text: &str) -> Result<TcTarget, AttachError> {
        let (iface, dir) = split_target(text, "--tc", "IFACE:ingress|egress")?;
        let direction = match dir {
            "ingress" => TcDirection::Ingress,
            "egress" => TcDirection::Egress,
            _ => {
                return Err(AttachError::BadTarget(format!(
                    "--tc {text:?}: the direction must be ingress or egress, not {dir:?}"
                )));
            }
        };
        check_iface_name(iface, "--tc")?;
        Ok(TcTarget {
            iface: iface.to_string(),
            direction,
        })
    }

    /// sched_cls (and sched_act) programs only.
    pub fn prepare(&self, program: &mut LinkedProgram) -> Result<(), AttachError> {
        expect_prog_type(
            &program.name,
            program.prog_type,
            &[ProgType::SchedCls, ProgType::SchedAct],
            self,
        )
    }

    /// Attaches through a tcx link, after the programs already there.
    pub fn attach(&self, program: AttachProgram<'_>) -> Result<Link, AttachError> {
        expect_prog_type(
            program.name,
            program.prog_type,
            &[ProgType::SchedCls, ProgType::SchedAct],
            self,
        )?;
        let ifindex = resolve_iface(&self.iface)?;
        let fd = LinkCreate {
            prog: program.fd,
            target: ifindex,
            attach_type: self.direction.attach_type().number(),
            flags: 0,
        }
        .create()
        .map_err(|e| match e.errno() {
            Some(libc::EINVAL) => AttachError::Restricted(format!(
                "the kernel refused a tcx link on {} (EINVAL): tcx needs Linux 6.6 or newer and a sched_cls program",
                self.iface
            )),
            _ => kernel_error(self)(e),
        })?;
        Link::new(fd, None, self.to_string())
    }
}

impl fmt::Display for TcTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TC {} on {}", self.direction, self.iface)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attach::test_program;

    #[test]
    fn parses_interface_and_direction() {
        assert_eq!(
            TcTarget::parse("veth1:egress").unwrap(),
            TcTarget {
                iface: "veth1".into(),
                direction: TcDirection::Egress
            }
        );
        assert_eq!(
            TcTarget::parse("eth0:ingress").unwrap().direction,
            TcDirection::Ingress
        );
        let e = TcTarget::parse("eth0:both").unwrap_err().to_string();
        assert_eq!(
            e,
            "--tc \"eth0:both\": the direction must be ingress or egress, not \"both\""
        );
        assert!(TcTarget::parse("eth0").is_err());
    }

    #[test]
    fn directions_are_tcx_attach_types() {
        assert_eq!(TcDirection::Ingress.attach_type().number(), 46);
        assert_eq!(TcDirection::Egress.attach_type().number(), 47);
    }

    #[test]
    fn prepare_accepts_sched_cls_only() {
        let t = TcTarget::parse("lo:ingress").unwrap();
        t.prepare(&mut test_program(ProgType::SchedCls.number(), None))
            .unwrap();
        assert!(
            t.prepare(&mut test_program(ProgType::Xdp.number(), None))
                .is_err()
        );
    }
}
