//! Map snapshots: every entry of every map (per-CPU values per CPU).

use bpfrr_trace::catalog::MapType;
use bpfrr_trace::trace::{MapEntry, MapSnapshot, SnapshotTime};

use crate::sys::{BpfMap, SysError, possible_cpus};

/// Whether userspace can read a map's entries as bytes.
pub fn snapshottable(map_type: u32) -> bool {
    !matches!(
        MapType::from_number(map_type),
        Some(
            MapType::Ringbuf
                | MapType::UserRingbuf
                | MapType::PerfEventArray
                | MapType::ProgArray
                | MapType::ArrayOfMaps
                | MapType::HashOfMaps
                | MapType::Queue
                | MapType::Stack
                | MapType::StackTrace
                | MapType::BloomFilter
                | MapType::CgroupArray
                | MapType::Sockmap
                | MapType::Sockhash
                | MapType::Devmap
                | MapType::DevmapHash
                | MapType::Cpumap
                | MapType::Xskmap
        ) | None
    )
}

/// All entries of `map` now. Per-CPU values are `n_cpus` values of
/// `value_size` bytes, concatenated in CPU order.
pub fn snapshot(map: &BpfMap, when: SnapshotTime) -> Result<MapSnapshot, SysError> {
    let mut entries = Vec::new();
    let per_cpu = map.is_per_cpu();
    if snapshottable(map.map_type) {
        for key in map.keys()? {
            let value = if per_cpu {
                map.lookup_per_cpu(&key)?.map(|v| v.concat())
            } else {
                map.lookup(&key)?
            };
            if let Some(value) = value {
                entries.push(MapEntry { key, value });
            }
        }
    }
    Ok(MapSnapshot {
        when,
        n_cpus: if per_cpu { possible_cpus() as u32 } else { 1 },
        entries,
    })
}
