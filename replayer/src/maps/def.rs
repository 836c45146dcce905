//! What a map is: its type and sizes, as given to BPF_MAP_CREATE.

use super::MapError;

/// Update flags of `bpf_map_update_elem` (and `bpf_map_push_elem`).
pub const BPF_ANY: u64 = 0;
pub const BPF_NOEXIST: u64 = 1;
pub const BPF_EXIST: u64 = 2;
/// `BPF_F_LOCK`: update a value holding a `bpf_spin_lock` in place.
pub const BPF_F_LOCK: u64 = 4;

/// Map creation flag: the program may only read the map (`.rodata`).
pub const BPF_F_RDONLY_PROG: u32 = 1 << 7;

/// The map types the model knows, with the kernel's `enum bpf_map_type`
/// numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MapType {
    Hash,
    Array,
    ProgArray,
    PerfEventArray,
    PerCpuHash,
    PerCpuArray,
    LruHash,
    LruPerCpuHash,
    LpmTrie,
    DevMap,
    CpuMap,
    XskMap,
    Queue,
    Stack,
    DevMapHash,
    RingBuf,
}

impl MapType {
    /// The kernel's number for this type.
    pub fn number(self) -> u32 {
        match self {
            MapType::Hash => 1,
            MapType::Array => 2,
            MapType::ProgArray => 3,
            MapType::PerfEventArray => 4,
            MapType::PerCpuHash => 5,
            MapType::PerCpuArray => 6,
            MapType::LruHash => 9,
            MapType::LruPerCpuHash => 10,
            MapType::LpmTrie => 11,
            MapType::DevMap => 14,
            MapType::CpuMap => 16,
            MapType::XskMap => 17,
            MapType::Queue => 22,
            MapType::Stack => 23,
            MapType::DevMapHash => 25,
            MapType::RingBuf => 27,
        }
    }

    /// The model for a kernel map type number, or `UnsupportedType`.
    pub fn from_number(n: u32) -> Result<MapType, MapError> {
        const ALL: [MapType; 16] = [
            MapType::Hash,
            MapType::Array,
            MapType::ProgArray,
            MapType::PerfEventArray,
            MapType::PerCpuHash,
            MapType::PerCpuArray,
            MapType::LruHash,
            MapType::LruPerCpuHash,
            MapType::LpmTrie,
            MapType::DevMap,
            MapType::CpuMap,
            MapType::XskMap,
            MapType::Queue,
            MapType::Stack,
            MapType::DevMapHash,
            MapType::RingBuf,
        ];
        ALL.into_iter()
            .find(|t| t.number() == n)
            .ok_or(MapError::UnsupportedType(n))
    }

    /// bpftool's name for the type.
    pub fn name(self) -> &'static str {
        match self {
            MapType::Hash => "hash",
            MapType::Array => "array",
            MapType::ProgArray => "prog_array",
            MapType::PerfEventArray => "perf_event_array",
            MapType::PerCpuHash => "percpu_hash",
            MapType::PerCpuArray => "percpu_array",
            MapType::LruHash => "lru_hash",
            MapType::LruPerCpuHash => "lru_percpu_hash",
            MapType::LpmTrie => "lpm_trie",
            MapType::DevMap => "devmap",
            MapType::CpuMap => "cpumap",
            MapType::XskMap => "xskmap",
            MapType::Queue => "queue",
            MapType::Stack => "stack",
            MapType::DevMapHash => "devmap_hash",
            MapType::RingBuf => "ringbuf",
        }
    }

    /// True for types that hold one value per CPU.
    pub fn is_per_cpu(self) -> bool {
        matches!(
            self,
            MapType::PerCpuHash | MapType::PerCpuArray | MapType::LruPerCpuHash
        )
    }
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
            MapType::RingBuf => {
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
            | MapType::PerCpuArray
            | MapType::ProgArray
            | MapType::PerfEventArray
            | MapType::DevMap
            | MapType::CpuMap
            | MapType::XskMap => {
                if self.key_size != 4 {
                    return bad("key_size must be 4");
                }
                if self.max_entries == 0 {
                    return bad("max_entries must be non-zero");
                }
                if matches!(t, MapType::Array | MapType::PerCpuArray) && self.value_size == 0 {
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
            | MapType::PerCpuHash
            | MapType::LruHash
            | MapType::LruPerCpuHash
            | MapType::DevMapHash => {
                if self.key_size == 0 || self.value_size == 0 || self.max_entries == 0 {
                    return bad("key_size, value_size and max_entries must be non-zero");
                }
            }
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
    fn type_numbers_round_trip() {
        for n in 0..40 {
            if let Ok(t) = MapType::from_number(n) {
                assert_eq!(t.number(), n);
            }
        }
        assert_eq!(MapType::from_number(27), Ok(MapType::RingBuf));
        assert_eq!(MapType::from_number(7), Err(MapError::UnsupportedType(7)));
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
            MapDef::new("r", MapType::RingBuf, 0, 0, 4096)
                .validate()
                .is_ok()
        );
        assert!(
            MapDef::new("r", MapType::RingBuf, 0, 0, 5000)
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
