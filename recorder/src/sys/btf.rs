//! BPF_BTF_LOAD: hands a BTF blob (a program's .BTF section) to the kernel.

use std::os::fd::OwnedFd;

use aya_obj::generated::bpf_cmd;

use super::{SysError, bpf_call_fd, ptr_u64, zeroed_attr};

/// BTF the kernel accepted, with the checker's log (empty when quiet).
#[derive(Debug)]
pub struct LoadedBtf {
    pub fd: OwnedFd,
    pub log: String,
}

/// Loads raw BTF bytes. On rejection the error carries the BTF checker's
/// log (the call is repeated with a log when the quiet attempt fails).
pub fn load_btf(bytes: &[u8]) -> Result<LoadedBtf, SysError> {
    if bytes.is_empty() {
        return Err(SysError::InvalidArgument(
            "the BTF data is empty".to_string(),
        ));
    }
    let attempt = |log: &mut [u8], level: u32| {
        let mut attr = zeroed_attr();
        // SAFETY: writing plain integers into the BPF_BTF_LOAD member.
        let a = unsafe { &mut attr.__bindgen_anon_7 };
        a.btf = ptr_u64(bytes.as_ptr());
        a.btf_size = bytes.len() as u32;
        if level > 0 {
            a.btf_log_buf = ptr_u64(log.as_mut_ptr());
            a.btf_log_size = log.len() as u32;
            a.btf_log_level = level;
        }
        bpf_call_fd(bpf_cmd::BPF_BTF_LOAD, &mut attr)
    };
    match attempt(&mut [], 0) {
        Ok(fd) => Ok(LoadedBtf {
            fd,
            log: String::new(),
        }),
        Err(errno)
            if errno == libc::EPERM && !(super::is_root() && super::has_bpf_capability()) =>
        {
            Err(SysError::from_errno("BPF_BTF_LOAD", errno))
        }
        Err(errno) => {
            let mut log = vec![0u8; 4 << 20];
            // A rotating log keeps the end (where the error is) if it overflows.
            let second = attempt(&mut log, 1);
            let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
            let text = String::from_utf8_lossy(&log[..end]).into_owned();
            match second {
                Ok(fd) => Ok(LoadedBtf { fd, log: text }),
                Err(_) if !text.trim().is_empty() => {
                    Err(SysError::BtfRejected { errno, log: text })
                }
                Err(_) => Err(SysError::from_errno("BPF_BTF_LOAD", errno)),
            }
        }
    }
}
