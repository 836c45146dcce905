//! `--xdp IFACE[:generic|native]`: an XDP program on a network interface,
//! through a BPF link (BPF_LINK_CREATE, attach type BPF_XDP).
//!
//! The interface is looked up in the calling thread's network namespace
//! (run bpfrr with `ip netns exec NS` to attach inside a namespace).

use std::fmt;

use bpfrr_trace::catalog::{AttachType, ProgType};
use bpfrr_trace::object::LinkedProgram;

use super::{AttachError, AttachProgram, Link, expect_prog_type, kernel_error};
use crate::sys::{LinkCreate, SysError, interface_index};

/// `XDP_FLAGS_SKB_MODE`: generic XDP, in the network stack (any device).
const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
/// `XDP_FLAGS_DRV_MODE`: native XDP, in the driver.
const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;

/// Where in the receive path the program runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum XdpMode {
    /// Native when the driver supports it, generic otherwise (the kernel's
    /// choice).
    #[default]
    Auto,
    /// Generic (skb) mode: works on every device.
    Generic,
    /// Native (driver) mode: fails when the driver has no XDP support.
    Native,
}

impl XdpMode {
    /// Parses `generic`/`skb`, `native`/`drv` or `auto`.
    pub fn parse(text: &str) -> Result<XdpMode, AttachError> {
        match text {
            "auto" => Ok(XdpMode::Auto),
            "generic" | "skb" => Ok(XdpMode::Generic),
            "native" | "drv" => Ok(XdpMode::Native),
            _ => Err(AttachError::BadTarget(format!(
                "XDP mode {text:?} is none of generic, native, auto"
            ))),
        }
    }

    /// The `XDP_FLAGS_*` bits of the mode.
    pub fn flags(self) -> u32 {
        match self {
            XdpMode::Auto => 0,
            XdpMode::Generic => XDP_FLAGS_SKB_MODE,
            XdpMode::Native => XDP_FLAGS_DRV_MODE,
        }
    }
}

impl fmt::Display for XdpMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            XdpMode::Auto => "auto",
            XdpMode::Generic => "generic",
            XdpMode::Native => "native",
        })
    }
}

/// An interface to attach an XDP program to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XdpTarget {
    pub iface: String,
    pub mode: XdpMode,
}

impl XdpTarget {
    /// Parses `IFACE` or `IFACE:MODE` (MODE: generic, native, auto).
    pub fn parse(text: &str) -> Result<XdpTarget, AttachError> {
        let (iface, mode) = match text.split_once(':') {
            Some((iface, mode)) => (iface, XdpMode::parse(mode)?),
            None => (text, XdpMode::Auto),
        };
        check_iface_name(iface, "--xdp")?;
        Ok(XdpTarget {
            iface: iface.to_string(),
            mode,
        })
    }

    /// XDP programs only; the kernel wants `expected_attach_type` BPF_XDP
    /// (what libbpf sets for `SEC("xdp")`).
    pub fn prepare(&self, program: &mut LinkedProgram) -> Result<(), AttachError> {
        expect_prog_type(&program.name, program.prog_type, &[ProgType::Xdp], self)?;
        program
            .expected_attach_type
            .get_or_insert(AttachType::Xdp.number());
        Ok(())
    }

    /// Attaches through an XDP link.
    pub fn attach(&self, program: AttachProgram<'_>) -> Result<Link, AttachError> {
        expect_prog_type(program.name, program.prog_type, &[ProgType::Xdp], self)?;
        let ifindex = resolve_iface(&self.iface)?;
        let fd = LinkCreate {
            prog: program.fd,
            target: ifindex,
            attach_type: AttachType::Xdp.number(),
            flags: self.mode.flags(),
        }
        .create()
        .map_err(|e| self.explain(e))?;
        Link::new(fd, None, self.to_string())
    }

    fn explain(&self, e: SysError) -> AttachError {
        let iface = &self.iface;
        match e.errno() {
            Some(libc::EBUSY) | Some(libc::EEXIST) => AttachError::Restricted(format!(
                "{iface} already has an XDP program attached (or one in the other mode); bpfrr does not replace it: detach it first (`ip link set dev {iface} xdp off`) or record on another interface"
            )),
            Some(libc::EOPNOTSUPP) if self.mode == XdpMode::Native => {
                AttachError::Restricted(format!(
                    "the driver of {iface} does not support native XDP: use --xdp {iface}:generic"
                ))
            }
            _ => kernel_error(self)(e),
        }
    }
}

impl fmt::Display for XdpTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.mode {
            XdpMode::Auto => write!(f, "XDP on {}", self.iface),
            mode => write!(f, "XDP ({mode} mode) on {}", self.iface),
        }
    }
}

/// Rejects names the kernel cannot have (empty, too long, with `/` or
/// whitespace) before asking it.
pub(crate) fn check_iface_name(iface: &str, option: &str) -> Result<(), AttachError> {
    let ok = !iface.is_empty()
        && iface.len() < 16
        && !iface.contains(|c: char| c == '/' || c.is_whitespace() || c == '\0');
    if ok {
        Ok(())
    } else {
        Err(AttachError::BadTarget(format!(
            "{option}: {iface:?} is not a network interface name (1 to 15 characters, no '/' or spaces)"
        )))
    }
}

/// The interface's index in this thread's network namespace.
pub(crate) fn resolve_iface(iface: &str) -> Result<u32, AttachError> {
    interface_index(iface)
        .map_err(kernel_error(&format!("interface {iface}")))?
        .ok_or_else(|| {
            AttachError::NotFound(format!(
                "there is no network interface {iface:?} in this network namespace (see `ip link`; for one in a namespace run bpfrr under `ip netns exec NS`)"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attach::test_program as linked;

    #[test]
    fn parses_interface_and_mode() {
        assert_eq!(
            XdpTarget::parse("veth0").unwrap(),
            XdpTarget {
                iface: "veth0".into(),
                mode: XdpMode::Auto
            }
        );
        assert_eq!(
            XdpTarget::parse("eth1:generic").unwrap().mode,
            XdpMode::Generic
        );
        assert_eq!(XdpTarget::parse("eth1:drv").unwrap().mode, XdpMode::Native);
        let e = XdpTarget::parse("eth1:fast").unwrap_err().to_string();
        assert_eq!(e, "XDP mode \"fast\" is none of generic, native, auto");
        assert!(XdpTarget::parse("").is_err());
        assert!(XdpTarget::parse("a/b").is_err());
        assert!(XdpTarget::parse("averyveryverylongname").is_err());
    }

    #[test]
    fn mode_flags_are_the_kernel_bits() {
        assert_eq!(XdpMode::Auto.flags(), 0);
        assert_eq!(XdpMode::Generic.flags(), 2);
        assert_eq!(XdpMode::Native.flags(), 4);
    }

    #[test]
    fn prepare_checks_the_type_and_sets_bpf_xdp() {
        let mut p = linked(ProgType::Xdp.number(), None);
        XdpTarget::parse("lo").unwrap().prepare(&mut p).unwrap();
        assert_eq!(p.expected_attach_type, Some(AttachType::Xdp.number()));
        let mut p = linked(ProgType::SchedCls.number(), None);
        let e = XdpTarget::parse("lo").unwrap().prepare(&mut p).unwrap_err();
        assert!(matches!(e, AttachError::WrongProgramType { .. }), "{e}");
    }

    #[test]
    fn a_missing_interface_is_named() {
        let e = resolve_iface("bpfrr-none0").unwrap_err().to_string();
        assert!(e.contains("no network interface \"bpfrr-none0\""), "{e}");
    }
}
