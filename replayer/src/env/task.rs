//! The task a program runs "in" for `bpf_get_current_*` helpers.

/// `TASK_COMM_LEN`.
pub const TASK_COMM_LEN: usize = 16;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Task {
    /// Thread id (the kernel's `pid`).
    pub pid: u32,
    /// Process id (the kernel's `tgid`).
    pub tgid: u32,
    pub uid: u32,
    pub gid: u32,
    /// Command name, at most 15 bytes (longer names are cut as the kernel does).
    pub comm: String,
}

impl Default for Task {
    fn default() -> Self {
        Task {
            pid: 4242,
            tgid: 4242,
            uid: 0,
            gid: 0,
            comm: "bpfrr".into(),
        }
    }
}

impl Task {
    /// `bpf_get_current_pid_tgid`: tgid in the high 32 bits, pid in the low.
    pub fn pid_tgid(&self) -> u64 {
        ((self.tgid as u64) << 32) | self.pid as u64
    }

    /// `bpf_get_current_uid_gid`: gid high, uid low.
    pub fn uid_gid(&self) -> u64 {
        ((self.gid as u64) << 32) | self.uid as u64
    }

    /// `bpf_get_current_comm(buf, size)`: the name, NUL-terminated and
    /// zero-padded to `size` bytes (strscpy_pad).
    pub fn comm_bytes(&self, size: usize) -> Vec<u8> {
        let mut out = vec![0u8; size];
        let name = self.comm.as_bytes();
        let n = name
            .len()
            .min(TASK_COMM_LEN - 1)
            .min(size.saturating_sub(1));
        out[..n].copy_from_slice(&name[..n]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_comm() {
        let t = Task {
            pid: 2,
            tgid: 1,
            uid: 1000,
            gid: 100,
            comm: "a-very-long-command-name".into(),
        };
        assert_eq!(t.pid_tgid(), (1 << 32) | 2);
        assert_eq!(t.uid_gid(), (100 << 32) | 1000);
        assert_eq!(t.comm_bytes(16), b"a-very-long-com\0".to_vec());
        assert_eq!(t.comm_bytes(4), b"a-v\0".to_vec());
        assert_eq!(Task::default().comm_bytes(8), b"bpfrr\0\0\0".to_vec());
    }
}
