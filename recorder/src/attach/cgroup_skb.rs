//! `--cgroup PATH[:ingress|egress]`: a cgroup_skb program on a cgroup v2
//! directory, through a cgroup link (BPF_LINK_CREATE with the cgroup's
//! fd). The direction is the program's (`SEC("cgroup_skb/egress")`)
//! unless the target names one. Cgroup links are multi-attach: they run
//! beside other programs on the cgroup without replacing them.

use std::fmt;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use bpfrr_trace::catalog::{AttachType, ProgType};
use bpfrr_trace::object::LinkedProgram;

use super::{AttachError, AttachProgram, Link, expect_prog_type, kernel_error};
use crate::sys::LinkCreate;

/// Which packets of the cgroup's sockets the program sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CgroupDirection {
    Ingress,
    Egress,
}

impl CgroupDirection {
    pub fn attach_type(self) -> AttachType {
        match self {
            CgroupDirection::Ingress => AttachType::CgroupInetIngress,
            CgroupDirection::Egress => AttachType::CgroupInetEgress,
        }
    }

    fn from_attach_type(n: u32) -> Option<CgroupDirection> {
        match AttachType::from_number(n)? {
            AttachType::CgroupInetIngress => Some(CgroupDirection::Ingress),
            AttachType::CgroupInetEgress => Some(CgroupDirection::Egress),
            _ => None,
        }
    }
}

impl fmt::Display for CgroupDirection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CgroupDirection::Ingress => "ingress",
            CgroupDirection::Egress => "egress",
        })
    }
}

/// A cgroup v2 directory and, optionally, the direction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CgroupTarget {
    pub path: PathBuf,
    /// None: the program's own direction (ingress when it has none).
    pub direction: Option<CgroupDirection>,
}

impl CgroupTarget {
    /// Parses `PATH`, `PATH:ingress` or `PATH:egress`.
    pub fn parse(text: &str) -> Result<CgroupTarget, AttachError> {
        let (path, direction) = if let Some(p) = text.strip_suffix(":ingress") {
            (p, Some(CgroupDirection::Ingress))
        } else if let Some(p) = text.strip_suffix(":egress") {
            (p, Some(CgroupDirection::Egress))
        } else {
            (text, None)
        };
        if path.is_empty() {
            return Err(AttachError::BadTarget(format!(
                "--cgroup {text:?} names no cgroup directory (e.g. /sys/fs/cgroup/my.slice)"
            )));
        }
        Ok(CgroupTarget {
            path: PathBuf::from(path),
            direction,
        })
    }

    /// The direction a program gets: the target's, else the program's,
    /// else ingress.
    pub fn direction_for(&self, expected_attach_type: Option<u32>) -> CgroupDirection {
        self.direction
            .or_else(|| expected_attach_type.and_then(CgroupDirection::from_attach_type))
            .unwrap_or(CgroupDirection::Ingress)
    }

    /// cgroup_skb programs only; fixes the direction at load time (the
    /// kernel checks a cgroup program against its expected attach type).
    pub fn prepare(&self, program: &mut LinkedProgram) -> Result<(), AttachError> {
        expect_prog_type(
            &program.name,
            program.prog_type,
            &[ProgType::CgroupSkb],
            self,
        )?;
        let dir = self.direction_for(program.expected_attach_type);
        program.expected_attach_type = Some(dir.attach_type().number());
        Ok(())
    }

    /// Attaches through a cgroup link.
    pub fn attach(&self, program: AttachProgram<'_>) -> Result<Link, AttachError> {
        expect_prog_type(
            program.name,
            program.prog_type,
            &[ProgType::CgroupSkb],
            self,
        )?;
        let direction = self.direction_for(program.expected_attach_type);
        let dir = self.open_cgroup()?;
        let link = LinkCreate {
            prog: program.fd,
            target: dir.as_raw_fd() as u32,
            attach_type: direction.attach_type().number(),
            flags: 0,
        }
        .create()
        .map_err(|e| match e.errno() {
            Some(libc::EBADF) => self.not_a_cgroup(),
            _ => kernel_error(self)(e),
        })?;
        let description = format!("cgroup_skb {direction} on {}", self.path.display());
        Link::new(link, None, description)
    }

    /// Opens the cgroup directory (the link keeps its own reference).
    fn open_cgroup(&self) -> Result<std::fs::File, AttachError> {
        if !self.path.is_dir() {
            return Err(AttachError::NotFound(format!(
                "--cgroup: {} is not a directory (create the cgroup first: mkdir {})",
                self.path.display(),
                self.path.display()
            )));
        }
        if !cgroup2_mounts().iter().any(|m| self.path.starts_with(m)) {
            return Err(self.not_a_cgroup());
        }
        std::fs::File::open(&self.path).map_err(|e| {
            AttachError::NotFound(format!(
                "--cgroup: cannot open {}: {e}",
                self.path.display()
            ))
        })
    }

    fn not_a_cgroup(&self) -> AttachError {
        let mounts = cgroup2_mounts();
        let hint = match mounts.first() {
            Some(m) => format!("cgroup v2 is mounted at {}", m.display()),
            None => "no cgroup v2 is mounted: `mount -t cgroup2 none /sys/fs/cgroup`".to_string(),
        };
        AttachError::NotFound(format!(
            "--cgroup: {} is not a cgroup v2 directory ({hint})",
            self.path.display()
        ))
    }
}

/// Where cgroup v2 is mounted (`/sys/fs/cgroup`, or `/sys/fs/cgroup/unified`
/// on hybrid systems), from /proc/self/mounts.
pub fn cgroup2_mounts() -> Vec<PathBuf> {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") else {
        return Vec::new();
    };
    mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_dev, dir, fstype) = (f.next()?, f.next()?, f.next()?);
            (fstype == "cgroup2").then(|| PathBuf::from(unescape_mount_path(dir)))
        })
        .collect()
}

/// /proc/mounts writes spaces and a few others as octal escapes (`\040`).
fn unescape_mount_path(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl fmt::Display for CgroupTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.direction {
            Some(d) => write!(f, "cgroup_skb {d} on {}", self.path.display()),
            None => write!(f, "cgroup_skb on {}", self.path.display()),
        }
    }
}

impl AsRef<Path> for CgroupTarget {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attach::test_program;

    #[test]
    fn parses_path_and_direction() {
        let t = CgroupTarget::parse("/sys/fs/cgroup/test:egress").unwrap();
        assert_eq!(t.path, PathBuf::from("/sys/fs/cgroup/test"));
        assert_eq!(t.direction, Some(CgroupDirection::Egress));
        let t = CgroupTarget::parse("/sys/fs/cgroup/a:b").unwrap();
        assert_eq!(t.path, PathBuf::from("/sys/fs/cgroup/a:b"));
        assert_eq!(t.direction, None);
        assert!(CgroupTarget::parse(":ingress").is_err());
    }

    #[test]
    fn direction_comes_from_the_target_then_the_program() {
        let t = CgroupTarget::parse("/cg").unwrap();
        assert_eq!(t.direction_for(Some(1)), CgroupDirection::Egress);
        assert_eq!(t.direction_for(None), CgroupDirection::Ingress);
        let t = CgroupTarget::parse("/cg:ingress").unwrap();
        assert_eq!(t.direction_for(Some(1)), CgroupDirection::Ingress);

        let mut p = test_program(ProgType::CgroupSkb.number(), Some(1));
        CgroupTarget::parse("/cg").unwrap().prepare(&mut p).unwrap();
        assert_eq!(p.expected_attach_type, Some(1));
        let mut p = test_program(ProgType::CgroupSkb.number(), None);
        CgroupTarget::parse("/cg:egress")
            .unwrap()
            .prepare(&mut p)
            .unwrap();
        assert_eq!(p.expected_attach_type, Some(1));
        let mut p = test_program(ProgType::Xdp.number(), None);
        assert!(CgroupTarget::parse("/cg").unwrap().prepare(&mut p).is_err());
    }

    #[test]
    fn mount_paths_are_unescaped() {
        assert_eq!(unescape_mount_path("/a\\040b"), "/a b");
        assert_eq!(unescape_mount_path("/plain"), "/plain");
        assert_eq!(unescape_mount_path("/end\\04"), "/end\\04");
    }

    #[test]
    fn a_plain_directory_is_not_a_cgroup() {
        let t = CgroupTarget::parse("/tmp").unwrap();
        let e = t.open_cgroup().unwrap_err().to_string();
        assert!(e.contains("/tmp is not a cgroup v2 directory"), "{e}");
        let t = CgroupTarget::parse("/nonexistent/bpfrr").unwrap();
        let e = t.open_cgroup().unwrap_err().to_string();
        assert!(e.contains("is not a directory"), "{e}");
    }
}
