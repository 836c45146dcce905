//! What a map is: its type and sizes, as given to BPF_MAP_CREATE.

use super::MapError;
use crate::limits::{
    MAX_HASH_KEY_SIZE, MAX_MAP_VALUE_SIZE, MAX_MODELLED_RINGBUF, MAX_PERCPU_VALUE_SIZE,
};

/// Update flags of `bpf_map_update_elem` (and `bpf_map_push_elem`).
pub const BPF_ANY: u64 = 0;
pub const BPF_NOEXIST: u64 = 1;
pub const BPF_EXIST: u64 = 2;
/// `BPF_F_LOCK`: update a value holding a `bpf_spin_lock` in place.
pub const BPF_F_LOCK: u64 = 4;

/// Map creation flag: the program may only read the map (`.rodata`).
pub const BPF_F_RDONLY_PROG: u32 = 1 << 7;

/// Map types are the catalogue's (the kernel's `enum bpf_map_type`).
pub use bpfrr_trace::catalog::MapType;

/// True for the map types this module models.
pub fn is_modelled(t: MapType) -> bool {
    matches!(
        t,
        MapType::Hash
            | MapType::Array
            | MapType::ProgArray
            | MapType::PerfEventArray
            | MapType::PercpuHash
            | MapType::PercpuArray
            | MapType::LruHash
            | MapType::LruPercpuHash
            | MapType::LpmTrie
            | MapType::Devmap
            | MapType::Cpumap
            | MapType::Xskmap
            | MapType::Queue
            | MapType::Stack
            | MapType::DevmapHash
            | MapType::Ringbuf
    )
}

/// A map's definition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapDef {
    pub name: String,
    pub map_type: MapType,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub flags: u32,
}

impl MapDef {
    pub fn new(
        name: &str,
        map_type: MapType,
        key_size: u32,
        value_size: u32,
        max_entries: u32,
    ) -> Self {
        MapDef {
            name: name.to_string(),
            map_type,
            key_size,
            value_size,
            max_entries,
            flags: 0,
        }
    }

    /// True when programs may only read the map (`BPF_F_RDONLY_PROG`, `.rodata`).
    pub fn read_only_for_program(&self) -> bool {
        self.flags & BPF_F_RDONLY_PROG != 0
    }

    /// Checks the sizes the way BPF_MAP_CREATE does for this type, so a
    /// model never holds a map the kernel would refuse.
    pub fn validate(&self) -> Result<(), MapError> {
        let bad = |why: &str| {
            Err(MapError::BadDefinition(format!(
                "map `{}` ({}): {why}",
                self.name,
                self.map_type.name()
            )))
        };
        let t = self.map_type;
        match t {
            MapType::Ringbuf => {
                if self.key_size != 0 || self.value_size != 0 {
                    return bad("key_size and value_size must be 0");
                }
                if !self.max_entries.is_power_of_two() || self.max_entries < 4096 {
                    return bad("max_entries must be a power of two of at least 4096 bytes");
                }
            }
            MapType::Queue | MapType::Stack => {
                if self.key_size != 0 {
                    return bad("key_size must be 0");
                }
                if self.value_size == 0 || self.max_entries == 0 {
                    return bad("value_size and max_entries must be non-zero");
                }
            }
            MapType::Array
            | MapType::PercpuArray
            | MapType::ProgArray
            | MapType::PerfEventArray
            | MapType::Devmap
            | MapType::Cpumap
            | MapType::Xskmap => {
                if self.key_size != 4 {
                    return bad("key_size must be 4");
                }
                if self.max_entries == 0 {
                    return bad("max_entries must be non-zero");
                }
                if matches!(t, MapType::Array | MapType::PercpuArray) && self.value_size == 0 {
                    return bad("value_size must be non-zero");
                }
            }
            MapType::LpmTrie => {
                if self.key_size < 5 || self.key_size > 4 + 256 {
                    return bad("key_size must be 4 (prefixlen) + 1..=256 data bytes");
                }
                if self.value_size == 0 || self.max_entries == 0 {
                    return bad("value_size and max_entries must be non-zero");
                }
            }
            MapType::Hash
            | MapType::PercpuHash
            | MapType::LruHash
            | MapType::LruPercpuHash
            | MapType::DevmapHash => {
                if self.key_size == 0 || self.value_size == 0 || self.max_entries == 0 {
                    return bad("key_size, value_size and max_entries must be non-zero");
                }
            }
            other => return Err(MapError::UnsupportedType(other.number())),
        }
        self.validate_sizes()
    }

    /// The kernel's `-E2BIG` limits on key and value sizes (and bpfrr's
    /// bound on a modelled ring buffer), checked before a model allocates
    /// anything of these sizes.
    fn validate_sizes(&self) -> Result<(), MapError> {
        let too_big = |why: String| {
            Err(MapError::BadDefinition(format!(
                "map `{}` ({}): {why}",
                self.name,
                self.map_type.name()
            )))
        };
        let t = self.map_type;
        if t == MapType::Ringbuf && self.max_entries > MAX_MODELLED_RINGBUF {
            return too_big(format!(
                "a ring buffer of {} bytes is larger than the {MAX_MODELLED_RINGBUF} bytes bpfrr models",
                self.max_entries
            ));
        }
        if self.value_size > MAX_MAP_VALUE_SIZE {
            return too_big(format!(
                "value_size {} is larger than the kernel's {MAX_MAP_VALUE_SIZE} (KMALLOC_MAX_SIZE)",
                self.value_size
            ));
        }
        if t.is_per_cpu() && self.value_size.div_ceil(8) * 8 > MAX_PERCPU_VALUE_SIZE {
            return too_big(format!(
                "per-CPU value_size {} is larger than the kernel's {MAX_PERCPU_VALUE_SIZE} (PCPU_MIN_UNIT_SIZE)",
                self.value_size
            ));
        }
        let hashed = matches!(
            t,
            MapType::Hash | MapType::PercpuHash | MapType::LruHash | MapType::LruPercpuHash
        );
        if hashed && self.key_size > MAX_HASH_KEY_SIZE {
            return too_big(format!(
                "key_size {} is larger than the kernel's {MAX_HASH_KEY_SIZE} (MAX_BPF_STACK)",
                self.key_size
            ));
        }
        Ok(())
    }
}

/// The checks of `check_flags` in kernel/bpf/hashtab.c shared by every
/// keyed map: unknown bits are `-EINVAL`.
pub(crate) fn check_update_flags(flags: u64) -> Result<(), MapError> {
    if flags & !BPF_F_LOCK > BPF_EXIST {
        return Err(MapError::Invalid("unknown update flags"));
    }
    Ok(())
}

/// `BPF_NOEXIST` on an existing element, `BPF_EXIST` on a missing one.
pub(crate) fn check_existence(flags: u64, exists: bool) -> Result<(), MapError> {
    let mode = flags & !BPF_F_LOCK;
    if exists && mode == BPF_NOEXIST {
        return Err(MapError::Exists);
    }
    if !exists && mode == BPF_EXIST {
        return Err(MapError::NotFound);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modelled_types() {
        assert!(is_modelled(MapType::Ringbuf));
        assert!(!is_modelled(MapType::StackTrace));
        let err = MapDef::new("s", MapType::StackTrace, 4, 8, 1)
            .validate()
            .unwrap_err();
        assert_eq!(err, MapError::UnsupportedType(7));
    }

    #[test]
    fn definitions_are_checked() {
        assert!(MapDef::new("a", MapType::Array, 4, 8, 1).validate().is_ok());
        assert!(
            MapDef::new("a", MapType::Array, 8, 8, 1)
                .validate()
                .is_err()
        );
        assert!(
            MapDef::new("r", MapType::Ringbuf, 0, 0, 4096)
                .validate()
                .is_ok()
        );
        assert!(
            MapDef::new("r", MapType::Ringbuf, 0, 0, 5000)
                .validate()
                .is_err()
        );
        assert!(
            MapDef::new("l", MapType::LpmTrie, 4, 8, 1)
                .validate()
                .is_err()
        );
        let err = MapDef::new("h", MapType::Hash, 0, 8, 1)
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("map `h` (hash)"));
    }

    #[test]
    fn sizes_beyond_the_kernels_limits_are_refused() {
        let ok = |t, k, v, n| MapDef::new("m", t, k, v, n).validate().is_ok();
        assert!(ok(MapType::Array, 4, MAX_MAP_VALUE_SIZE, 1));
        assert!(!ok(MapType::Array, 4, MAX_MAP_VALUE_SIZE + 1, 1));
        assert!(!ok(MapType::Queue, 0, u32::MAX, 1));
        assert!(ok(MapType::PercpuArray, 4, MAX_PERCPU_VALUE_SIZE, 1));
        assert!(!ok(MapType::PercpuArray, 4, MAX_PERCPU_VALUE_SIZE + 1, 1));
        assert!(!ok(MapType::LruPercpuHash, 8, 40 << 10, 1));
        assert!(ok(MapType::Hash, MAX_HASH_KEY_SIZE, 8, 1));
        assert!(!ok(MapType::Hash, MAX_HASH_KEY_SIZE + 1, 8, 1));
        assert!(ok(MapType::Ringbuf, 0, 0, MAX_MODELLED_RINGBUF));
        assert!(!ok(MapType::Ringbuf, 0, 0, 1 << 31));
        let err = MapDef::new("big", MapType::Hash, 4, u32::MAX, 1)
            .validate()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "bad map definition: map `big` (hash): value_size 4294967295 is larger than the kernel's 4194304 (KMALLOC_MAX_SIZE)"
        );
    }

    #[test]
    fn flags_follow_the_kernel() {
        assert!(check_update_flags(BPF_ANY).is_ok());
        assert!(check_update_flags(BPF_EXIST | BPF_F_LOCK).is_ok());
        assert_eq!(
            check_update_flags(3),
            Err(MapError::Invalid("unknown update flags"))
        );
        assert_eq!(check_existence(BPF_NOEXIST, true), Err(MapError::Exists));
        assert_eq!(check_existence(BPF_EXIST, false), Err(MapError::NotFound));
        assert!(check_existence(BPF_ANY, true).is_ok());
        assert!(check_existence(BPF_ANY, false).is_ok());
    }
}
