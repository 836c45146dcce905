//! Errors of map operations, and the kernel errno numbers they become when
//! a helper returns them to a BPF program.

/// Linux errno numbers (asm-generic/errno-base.h, errno.h) used by helpers.
pub mod errno {
    pub const EPERM: i32 = 1;
    pub const ENOENT: i32 = 2;
    pub const E2BIG: i32 = 7;
    pub const EAGAIN: i32 = 11;
    pub const EBUSY: i32 = 16;
    pub const EFAULT: i32 = 14;
    pub const EEXIST: i32 = 17;
    pub const EINVAL: i32 = 22;
    pub const ENOSPC: i32 = 28;
    pub const ERANGE: i32 = 34;
    pub const EOPNOTSUPP: i32 = 95;
    pub const ENOTSUPP: i32 = 524;

    /// The value a helper leaves in r0 for `-errno`.
    pub fn ret(errno: i32) -> u64 {
        (-(errno as i64)) as u64
    }
}

/// Why a map operation failed. Each kernel error maps to the errno the
/// kernel returns; `Unsupported` is an operation the map type does not have
/// at all (the verifier would have rejected the program).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MapError {
    #[error("the key already exists (BPF_NOEXIST)")]
    Exists,
    #[error("no such key")]
    NotFound,
    #[error("the map is full (max_entries reached) or the index is out of range")]
    TooBig,
    #[error("invalid argument: {0}")]
    Invalid(&'static str),
    #[error("no space left in the map")]
    NoSpace,
    #[error("the ring buffer has no room for the record")]
    Again,
    #[error("{map_type} maps do not support {op}")]
    Unsupported {
        map_type: &'static str,
        op: &'static str,
    },
    #[error("a map of type {0} cannot be modelled; use a recorded trace instead")]
    UnsupportedType(u32),
    #[error("bad map definition: {0}")]
    BadDefinition(String),
}

impl MapError {
    /// The positive errno the kernel reports for this error.
    pub fn errno(&self) -> i32 {
        use errno::*;
        match self {
            MapError::Exists => EEXIST,
            MapError::NotFound => ENOENT,
            MapError::TooBig => E2BIG,
            MapError::Invalid(_) => EINVAL,
            MapError::NoSpace => ENOSPC,
            MapError::Again => EAGAIN,
            MapError::Unsupported { .. } => EOPNOTSUPP,
            MapError::UnsupportedType(_) | MapError::BadDefinition(_) => EINVAL,
        }
    }

    /// The value a helper returns in r0 for this error (`-errno`).
    pub fn ret(&self) -> u64 {
        errno::ret(self.errno())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_become_negative_errno() {
        assert_eq!(MapError::Exists.ret() as i64, -17);
        assert_eq!(MapError::NotFound.ret() as i64, -2);
        assert_eq!(MapError::TooBig.ret() as i64, -7);
        assert_eq!(MapError::Invalid("x").ret() as i64, -22);
        assert_eq!(MapError::NoSpace.ret() as i64, -28);
    }
}
