//! The kernel file systems the recorder needs: bpffs (pinning, bpftool)
//! and tracefs (tracepoint ids). A fresh machine may have neither mounted.

use std::ffi::CString;
use std::io;

use super::SysError;

pub const BPFFS_PATH: &str = "/sys/fs/bpf";
pub const TRACEFS_PATH: &str = "/sys/kernel/tracing";

const BPF_FS_MAGIC: i64 = 0xcafe_4a11;
const TRACEFS_MAGIC: i64 = 0x7472_6163;

fn fs_magic(path: &str) -> Option<i64> {
    let c = CString::new(path).ok()?;
    // SAFETY: statfs is plain old data, zero is a valid value.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a valid out-buffer.
    let rc = unsafe { libc::statfs(c.as_ptr(), &mut st) };
    (rc == 0).then_some(st.f_type as i64)
}

fn ensure(path: &str, fstype: &str, magic: i64) -> Result<(), SysError> {
    if fs_magic(path) == Some(magic) {
        return Ok(());
    }
    let c_path = CString::new(path).expect("constant path");
    let c_type = CString::new(fstype).expect("constant type");
    // SAFETY: all three strings are valid and NUL-terminated; no data argument.
    let rc = unsafe {
        libc::mount(
            c_type.as_ptr(),
            c_path.as_ptr(),
            c_type.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        let err = io::Error::last_os_error();
        return Err(SysError::InvalidArgument(format!(
            "{fstype} is not mounted on {path} and mounting it failed ({err}): run `mount -t {fstype} {fstype} {path}` as root"
        )));
    }
    Ok(())
}

/// Mounts bpffs on /sys/fs/bpf unless it is there already.
pub fn ensure_bpffs() -> Result<(), SysError> {
    ensure(BPFFS_PATH, "bpf", BPF_FS_MAGIC)
}

/// Mounts tracefs on /sys/kernel/tracing unless it is there already.
pub fn ensure_tracefs() -> Result<(), SysError> {
    ensure(TRACEFS_PATH, "tracefs", TRACEFS_MAGIC)
}
