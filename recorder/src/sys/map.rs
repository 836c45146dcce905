//! BPF_MAP_CREATE and the element commands (lookup, update, delete,
//! get_next_key, freeze), with per-CPU values sized the kernel's way.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::OnceLock;

use aya_obj::generated::{bpf_cmd, bpf_map_info};

use super::{SysError, bpf_call, bpf_call_fd, fill_obj_name, ptr_u64, read_obj_name, zeroed_attr};

/// A map's (key, value) pairs.
pub type MapEntries = Vec<(Vec<u8>, Vec<u8>)>;

/// What BPF_MAP_CREATE takes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MapSpec {
    /// `enum bpf_map_type`.
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub map_flags: u32,
    pub name: String,
    pub map_extra: u64,
    /// BTF object and the key/value type ids in it, when known.
    pub btf: Option<(i32, u32, u32)>,
}

/// `map_flags` bit that makes a map read-only for BPF programs once frozen.
pub const BPF_F_RDONLY_PROG: u32 = 1 << 7;

/// Map types whose values are per CPU (one slot per possible CPU).
fn is_per_cpu(map_type: u32) -> bool {
    // BPF_MAP_TYPE_PERCPU_HASH, PERCPU_ARRAY, LRU_PERCPU_HASH, PERCPU_CGROUP_STORAGE.
    matches!(map_type, 5 | 6 | 10 | 21)
}

/// Number of possible CPUs (`/sys/devices/system/cpu/possible`), which
/// sizes per-CPU values. Falls back to 1 when the file cannot be read.
pub fn possible_cpus() -> usize {
    static CPUS: OnceLock<usize> = OnceLock::new();
    *CPUS.get_or_init(|| {
        std::fs::read_to_string("/sys/devices/system/cpu/possible")
            .ok()
            .and_then(|s| parse_cpu_list(&s))
            .unwrap_or(1)
    })
}

/// "0-3,5" → 6 (the highest CPU number plus one).
fn parse_cpu_list(s: &str) -> Option<usize> {
    let mut max = None;
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        let last = part.rsplit('-').next()?;
        let n: usize = last.trim().parse().ok()?;
        max = Some(max.map_or(n, |m: usize| m.max(n)));
    }
    max.map(|m| m + 1)
}

/// A map created by (or opened in) this process; closed on drop.
#[derive(Debug)]
pub struct BpfMap {
    pub fd: OwnedFd,
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub map_flags: u32,
    pub name: String,
}

impl BpfMap {
    /// Creates a map.
    pub fn create(spec: &MapSpec) -> Result<BpfMap, SysError> {
        let mut attr = zeroed_attr();
        // SAFETY: writing plain integers into the BPF_MAP_CREATE member.
        let a = unsafe { &mut attr.__bindgen_anon_1 };
        a.map_type = spec.map_type;
        a.key_size = spec.key_size;
        a.value_size = spec.value_size;
        a.max_entries = spec.max_entries;
        a.map_flags = spec.map_flags;
        a.map_extra = spec.map_extra;
        fill_obj_name(&mut a.map_name, &spec.name);
        if let Some((btf_fd, key_id, value_id)) = spec.btf {
            a.btf_fd = btf_fd as u32;
            a.btf_key_type_id = key_id;
            a.btf_value_type_id = value_id;
        }
        let fd = bpf_call_fd(bpf_cmd::BPF_MAP_CREATE, &mut attr).map_err(|e| {
            match SysError::from_errno("BPF_MAP_CREATE", e) {
                SysError::Os { source, .. } => SysError::InvalidArgument(format!(
                    "the kernel refused to create map {:?} (type {}, key {} bytes, value {} bytes, {} entries, flags {:#x}): {source}",
                    spec.name,
                    spec.map_type,
                    spec.key_size,
                    spec.value_size,
                    spec.max_entries,
                    spec.map_flags
                )),
                other => other,
            }
        })?;
        Ok(BpfMap {
            fd,
            map_type: spec.map_type,
            key_size: spec.key_size,
            value_size: spec.value_size,
            max_entries: spec.max_entries,
            map_flags: spec.map_flags,
            name: spec.name.clone(),
        })
    }

    /// Wraps an existing map fd, reading its shape from the kernel.
    pub fn from_fd(fd: OwnedFd) -> Result<BpfMap, SysError> {
        let info = map_info(&fd)?;
        Ok(BpfMap {
            fd,
            map_type: info.map_type,
            key_size: info.key_size,
            value_size: info.value_size,
            max_entries: info.max_entries,
            map_flags: info.map_flags,
            name: info.name,
        })
    }

    pub fn is_per_cpu(&self) -> bool {
        is_per_cpu(self.map_type)
    }

    /// Size of the buffer lookup and update use for one value: the value
    /// size, or for per-CPU maps `round_up(value_size, 8) * possible CPUs`.
    pub fn value_buffer_len(&self) -> usize {
        if self.is_per_cpu() {
            (self.value_size as usize).next_multiple_of(8) * possible_cpus()
        } else {
            self.value_size as usize
        }
    }

    fn check_key(&self, key: &[u8]) -> Result<(), SysError> {
        if key.len() != self.key_size as usize {
            return Err(SysError::InvalidArgument(format!(
                "map {:?} has {}-byte keys, not {}",
                self.name,
                self.key_size,
                key.len()
            )));
        }
        Ok(())
    }

    fn elem_call(
        &self,
        cmd: bpf_cmd,
        key: Option<&[u8]>,
        value: *mut u8,
        flags: u64,
    ) -> Result<(), i32> {
        let mut attr = zeroed_attr();
        // SAFETY: writing plain integers into the element-command member.
        let a = unsafe { &mut attr.__bindgen_anon_2 };
        a.map_fd = self.fd.as_raw_fd() as u32;
        if let Some(k) = key {
            a.key = ptr_u64(k.as_ptr());
        }
        a.__bindgen_anon_1.value = ptr_u64(value);
        a.flags = flags;
        bpf_call(cmd, &mut attr).map(|_| ())
    }

    /// The value stored under `key` (for per-CPU maps, all CPUs' values one
    /// after another, each padded to 8 bytes), or None when there is none.
    pub fn lookup(&self, key: &[u8]) -> Result<Option<Vec<u8>>, SysError> {
        self.check_key(key)?;
        let mut value = vec![0u8; self.value_buffer_len()];
        match self.elem_call(
            bpf_cmd::BPF_MAP_LOOKUP_ELEM,
            Some(key),
            value.as_mut_ptr(),
            0,
        ) {
            Ok(()) => Ok(Some(value)),
            Err(libc::ENOENT) => Ok(None),
            Err(e) => Err(SysError::from_errno("BPF_MAP_LOOKUP_ELEM", e)),
        }
    }

    /// A per-CPU map's value under `key`, one `value_size` vector per CPU.
    pub fn lookup_per_cpu(&self, key: &[u8]) -> Result<Option<Vec<Vec<u8>>>, SysError> {
        let stride = (self.value_size as usize).next_multiple_of(8);
        Ok(self.lookup(key)?.map(|buf| {
            buf.chunks(stride.max(1))
                .map(|c| c[..self.value_size as usize].to_vec())
                .collect()
        }))
    }

    /// Stores `value` under `key`. `value` must be [`Self::value_buffer_len`]
    /// bytes long. `flags`: 0 (any), 1 (BPF_NOEXIST), 2 (BPF_EXIST).
    pub fn update(&self, key: &[u8], value: &[u8], flags: u64) -> Result<(), SysError> {
        self.check_key(key)?;
        if value.len() != self.value_buffer_len() {
            return Err(SysError::InvalidArgument(format!(
                "map {:?} takes {}-byte values here, not {}",
                self.name,
                self.value_buffer_len(),
                value.len()
            )));
        }
        self.elem_call(
            bpf_cmd::BPF_MAP_UPDATE_ELEM,
            Some(key),
            value.as_ptr().cast_mut(),
            flags,
        )
        .map_err(|e| SysError::from_errno("BPF_MAP_UPDATE_ELEM", e))
    }

    /// Deletes `key`; returns false when it was not there.
    pub fn delete(&self, key: &[u8]) -> Result<bool, SysError> {
        self.check_key(key)?;
        match self.elem_call(
            bpf_cmd::BPF_MAP_DELETE_ELEM,
            Some(key),
            std::ptr::null_mut(),
            0,
        ) {
            Ok(()) => Ok(true),
            Err(libc::ENOENT) => Ok(false),
            Err(e) => Err(SysError::from_errno("BPF_MAP_DELETE_ELEM", e)),
        }
    }

    /// The key after `key` (the first key for None), or None at the end.
    pub fn next_key(&self, key: Option<&[u8]>) -> Result<Option<Vec<u8>>, SysError> {
        if let Some(k) = key {
            self.check_key(k)?;
        }
        let mut next = vec![0u8; self.key_size as usize];
        let mut attr = zeroed_attr();
        // SAFETY: writing plain integers into the element-command member.
        let a = unsafe { &mut attr.__bindgen_anon_2 };
        a.map_fd = self.fd.as_raw_fd() as u32;
        if let Some(k) = key {
            a.key = ptr_u64(k.as_ptr());
        }
        a.__bindgen_anon_1.next_key = ptr_u64(next.as_mut_ptr());
        match bpf_call(bpf_cmd::BPF_MAP_GET_NEXT_KEY, &mut attr) {
            Ok(_) => Ok(Some(next)),
            Err(libc::ENOENT) => Ok(None),
            Err(e) => Err(SysError::from_errno("BPF_MAP_GET_NEXT_KEY", e)),
        }
    }

    /// Every key, in the kernel's iteration order. A map changing while it
    /// is walked may give a key twice or miss one; bpfrr walks maps only
    /// while no program runs.
    pub fn keys(&self) -> Result<Vec<Vec<u8>>, SysError> {
        let mut keys = Vec::new();
        let mut cur: Option<Vec<u8>> = None;
        // A hash map can restart from the first bucket when the current key
        // was deleted; bound the walk so it always ends.
        let bound = self.max_entries as usize + 1;
        while let Some(next) = self.next_key(cur.as_deref())? {
            keys.push(next.clone());
            cur = Some(next);
            if keys.len() > bound {
                break;
            }
        }
        Ok(keys)
    }

    /// Every (key, value) pair whose lookup succeeds, in key iteration order.
    pub fn entries(&self) -> Result<MapEntries, SysError> {
        let mut out = Vec::new();
        for k in self.keys()? {
            if let Some(v) = self.lookup(&k)? {
                out.push((k, v));
            }
        }
        Ok(out)
    }

    /// Makes the map read-only for user space from now on (.rodata).
    pub fn freeze(&self) -> Result<(), SysError> {
        let mut attr = zeroed_attr();
        // The element-command member's first field is the map fd, as
        // BPF_MAP_FREEZE expects.
        attr.__bindgen_anon_2.map_fd = self.fd.as_raw_fd() as u32;
        bpf_call(bpf_cmd::BPF_MAP_FREEZE, &mut attr)
            .map(|_| ())
            .map_err(|e| SysError::from_errno("BPF_MAP_FREEZE", e))
    }

    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// What the kernel tells about a map (BPF_OBJ_GET_INFO_BY_FD).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MapInfo {
    pub map_type: u32,
    pub id: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub map_flags: u32,
    pub name: String,
    pub btf_id: u32,
    pub btf_key_type_id: u32,
    pub btf_value_type_id: u32,
    pub map_extra: u64,
}

/// Reads a map's info.
pub fn map_info(fd: impl AsFd) -> Result<MapInfo, SysError> {
    // SAFETY: bpf_map_info is a C struct of plain integers; zero is valid.
    let mut info: bpf_map_info = unsafe { std::mem::zeroed() };
    let mut attr = zeroed_attr();
    // SAFETY: writing plain integers into the BPF_OBJ_GET_INFO_BY_FD member.
    let a = unsafe { &mut attr.info };
    a.bpf_fd = fd.as_fd().as_raw_fd() as u32;
    a.info_len = std::mem::size_of::<bpf_map_info>() as u32;
    a.info = ptr_u64(&mut info as *mut bpf_map_info);
    bpf_call(bpf_cmd::BPF_OBJ_GET_INFO_BY_FD, &mut attr)
        .map_err(|e| SysError::from_errno("BPF_OBJ_GET_INFO_BY_FD", e))?;
    Ok(MapInfo {
        map_type: info.type_,
        id: info.id,
        key_size: info.key_size,
        value_size: info.value_size,
        max_entries: info.max_entries,
        map_flags: info.map_flags,
        name: read_obj_name(&info.name),
        btf_id: info.btf_id,
        btf_key_type_id: info.btf_key_type_id,
        btf_value_type_id: info.btf_value_type_id,
        map_extra: info.map_extra,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-1\n"), Some(2));
        assert_eq!(parse_cpu_list("0"), Some(1));
        assert_eq!(parse_cpu_list("0-3,5"), Some(6));
        assert_eq!(parse_cpu_list("0,2-7"), Some(8));
        assert_eq!(parse_cpu_list(""), None);
        assert_eq!(parse_cpu_list("x"), None);
        assert!(possible_cpus() >= 1);
    }
}
