//! Checkpoints of the replay world: copies of the map models' contents
//! taken every [`CHECKPOINT_EVERY`] invocations as the replayer goes
//! forward, so that starting any invocation replays at most
//! `CHECKPOINT_EVERY - 1` invocations before it.
//!
//! A map's values live in cells shared with the VM ([`ValueCell`](crate::maps::ValueCell)),
//! so `Map::clone` would alias them. A checkpoint instead rebuilds arrays,
//! hashes, LPM tries and program arrays from their listed entries; copies
//! LRU hashes whole with cells of their own (the recency order is state);
//! clones queues/stacks and perf arrays (plain bytes); and keeps a ring
//! buffer's positions only (every invocation starts by draining it). A map
//! that cannot be copied faithfully means no checkpoint is taken.
//!
//! Cost: `invocations / CHECKPOINT_EVERY` checkpoints (plus one for the
//! furthest world reached), each holding every map's live entries: key and
//! value bytes plus about 120 bytes of vectors and cells per entry. For the
//! samples (a few counters and a .bss) that is well under a kilobyte each;
//! the 100k-invocation bench (a 64-entry hash and a .bss) keeps 1563
//! checkpoints of roughly 10 KB, about 15 MB.

use std::collections::BTreeMap;

use bpfrr_trace::catalog::MapType;

use crate::env::ModelEnv;
use crate::maps::{Map, Model};

/// Invocations between two checkpoints.
pub const CHECKPOINT_EVERY: u64 = 64;

/// The map models as they were before some invocations.
#[derive(Default)]
pub struct Checkpoints {
    /// Invocation index -> the maps just before it.
    at: BTreeMap<u64, Vec<Map>>,
    /// The one checkpoint kept off the grid: the furthest world reached.
    furthest: Option<u64>,
}

impl Checkpoints {
    /// True when a checkpoint is wanted before invocation `index` and none
    /// is kept yet.
    pub fn wants(&self, index: u64) -> bool {
        index > 0 && index.is_multiple_of(CHECKPOINT_EVERY) && !self.at.contains_key(&index)
    }

    /// Keeps a copy of `world`'s maps as the state before `index` (nothing
    /// when the maps cannot be copied faithfully).
    pub fn save(&mut self, index: u64, world: &ModelEnv) {
        if index == 0 || self.at.contains_key(&index) {
            return;
        }
        if let Some(maps) = copy_maps(world.maps()) {
            self.at.insert(index, maps);
        }
    }

    /// Keeps `world` as the furthest world reached (before `index`), when
    /// it is further than every checkpoint; the previous furthest one goes
    /// unless it is on the `CHECKPOINT_EVERY` grid, so at most one
    /// off-grid checkpoint is ever kept.
    pub fn save_furthest(&mut self, index: u64, world: &ModelEnv) {
        if self
            .at
            .keys()
            .next_back()
            .is_some_and(|&last| index <= last)
        {
            return;
        }
        if let Some(old) = self.furthest.take() {
            self.at.remove(&old);
        }
        if !index.is_multiple_of(CHECKPOINT_EVERY) {
            self.furthest = Some(index);
        }
        self.save(index, world);
    }

    /// The index of the nearest checkpoint at or before `index`.
    pub fn nearest(&self, index: u64) -> Option<u64> {
        self.at.range(..=index).next_back().map(|(&i, _)| i)
    }

    /// Overwrites `world`'s maps with a copy of the checkpoint before
    /// `index` (which must be one [`nearest`](Self::nearest) returned).
    pub fn restore(&self, index: u64, world: &mut ModelEnv) -> bool {
        let Some(saved) = self.at.get(&index) else {
            return false;
        };
        let Some(copy) = copy_maps(saved) else {
            return false;
        };
        for (slot, map) in world.maps_mut().iter_mut().zip(copy) {
            *slot = map;
        }
        true
    }

    /// How many checkpoints are kept.
    pub fn len(&self) -> usize {
        self.at.len()
    }

    pub fn is_empty(&self) -> bool {
        self.at.is_empty()
    }
}

/// Independent copies of `maps` (no value cell shared with the originals),
/// or None when some map's state is more than its entries.
fn copy_maps(maps: &[Map]) -> Option<Vec<Map>> {
    maps.iter().map(copy_map).collect()
}

fn copy_map(map: &Map) -> Option<Map> {
    let def = map.def();
    match (def.map_type, map.model()) {
        // Every invocation starts by draining the ring buffers
        // (`RecordedEnv::new`), so the copy may start drained: then it is
        // the ring's positions alone, and the records whose value cells the
        // clone shared with the original are gone.
        (MapType::Ringbuf, Model::RingBuf(rb)) => {
            let mut rb = rb.clone();
            rb.drain();
            if rb.pending().next().is_some() {
                return None; // a record reserved and never submitted
            }
            return with_model(map, Model::RingBuf(rb));
        }
        // Perf outputs are plain bytes: a clone is independent.
        (MapType::PerfEventArray, Model::PerfEventArray(pe)) => {
            return with_model(map, Model::PerfEventArray(pe.clone()));
        }
        // Queued values are plain bytes: a clone is independent.
        (MapType::Queue | MapType::Stack, Model::QueueStack(q)) => {
            return with_model(map, Model::QueueStack(q.clone()));
        }
        // The recency order is part of an LRU map's state: copy the whole
        // model, with value cells of its own.
        (MapType::LruHash | MapType::LruPercpuHash, Model::Hash(h)) => {
            return with_model(map, Model::Hash(h.deep_clone()));
        }
        (
            MapType::LruHash
            | MapType::LruPercpuHash
            | MapType::Queue
            | MapType::Stack
            | MapType::Ringbuf
            | MapType::PerfEventArray,
            _,
        ) => return None,
        _ => {}
    }
    let mut copy = Map::new(def.clone(), map.n_cpus()).ok()?;
    let stride = (def.value_size as usize).div_ceil(8) * 8;
    for (key, values) in map.entries() {
        // `seed` takes values as userspace passes them: per-CPU ones one
        // after the other, each padded to 8 bytes.
        let bytes = if def.map_type.is_per_cpu() && values.len() > 1 {
            let mut b = vec![0u8; stride * values.len()];
            for (i, v) in values.iter().enumerate() {
                b[i * stride..i * stride + v.len()].copy_from_slice(v);
            }
            b
        } else {
            values.first()?.clone()
        };
        copy.seed(&key, &bytes).ok()?;
    }
    // A listing that does not round-trip is not a faithful copy.
    (copy.entries() == map.entries()).then_some(copy)
}

/// A new map with `map`'s definition and the given model state.
fn with_model(map: &Map, model: Model) -> Option<Map> {
    let mut copy = Map::new(map.def().clone(), map.n_cpus()).ok()?;
    *copy.model_mut() = model;
    Some(copy)
}
