//! Map models: userspace stand-ins for the kernel's BPF maps, seeded from
//! snapshots (key and value bytes) and driven by helper calls.
//!
//! Each map type has its own module with the kernel's semantics for flags,
//! capacity and errors; [`Map`] puts a definition and a model together and
//! offers the operations helpers need. Values live in [`ValueCell`]s shared
//! with the VM, so a pointer returned by a lookup aliases the live value.

pub mod array;
pub mod def;
pub mod error;
pub mod hash;
pub mod lpm;
pub mod perf;
pub mod prog_array;
pub mod queue;
pub mod ringbuf;
pub mod value;

pub use array::ArrayModel;
pub use def::{BPF_ANY, BPF_EXIST, BPF_F_LOCK, BPF_NOEXIST, MapDef, MapType, is_modelled};
pub use error::{MapError, errno};
pub use hash::HashModel;
pub use lpm::LpmTrieModel;
pub use perf::{PerfEventArrayModel, PerfOutput};
pub use prog_array::ProgArrayModel;
pub use queue::QueueStackModel;
pub use ringbuf::RingBufModel;
pub use value::ValueCell;

/// The model behind a map, by kind.
#[derive(Clone, Debug)]
pub enum Model {
    /// hash, percpu_hash, lru_hash, lru_percpu_hash, devmap, devmap_hash, cpumap, xskmap.
    Hash(HashModel),
    /// array, percpu_array (and global data).
    Array(ArrayModel),
    LpmTrie(LpmTrieModel),
    RingBuf(RingBufModel),
    PerfEventArray(PerfEventArrayModel),
    ProgArray(ProgArrayModel),
    QueueStack(QueueStackModel),
}

/// One map's contents as listed for display and diffing: key bytes and its
/// value(s), one per CPU for per-CPU maps.
pub type MapEntries = Vec<(Vec<u8>, Vec<Vec<u8>>)>;

/// A map: its definition and its model.
#[derive(Clone, Debug)]
pub struct Map {
    def: MapDef,
    n_cpus: u32,
    model: Model,
}

impl Map {
    /// An empty map. `n_cpus` sizes per-CPU values (at least 1).
    pub fn new(def: MapDef, n_cpus: u32) -> Result<Map, MapError> {
        def.validate()?;
        let n_cpus = n_cpus.max(1);
        let d = &def;
        let model = match d.map_type {
            MapType::Hash | MapType::PercpuHash | MapType::LruHash | MapType::LruPercpuHash => {
                Model::Hash(HashModel::new(
                    d.key_size,
                    d.value_size,
                    d.max_entries,
                    d.map_type.is_per_cpu(),
                    matches!(d.map_type, MapType::LruHash | MapType::LruPercpuHash),
                    n_cpus,
                ))
            }
            MapType::Devmap | MapType::DevmapHash | MapType::Cpumap | MapType::Xskmap => {
                Model::Hash(HashModel::new(
                    d.key_size,
                    d.value_size.max(1),
                    d.max_entries,
                    false,
                    false,
                    1,
                ))
            }
            MapType::Array | MapType::PercpuArray => Model::Array(ArrayModel::new(
                d.value_size,
                d.max_entries,
                d.map_type.is_per_cpu(),
                n_cpus,
            )),
            MapType::LpmTrie => {
                Model::LpmTrie(LpmTrieModel::new(d.key_size, d.value_size, d.max_entries))
            }
            MapType::Ringbuf => Model::RingBuf(RingBufModel::new(d.max_entries)),
            MapType::PerfEventArray => {
                Model::PerfEventArray(PerfEventArrayModel::new(d.max_entries))
            }
            MapType::ProgArray => Model::ProgArray(ProgArrayModel::new(d.max_entries)),
            MapType::Queue | MapType::Stack => Model::QueueStack(QueueStackModel::new(
                d.value_size,
                d.max_entries,
                d.map_type == MapType::Stack,
            )),
            other => return Err(MapError::UnsupportedType(other.number())),
        };
        Ok(Map { def, n_cpus, model })
    }

    pub fn def(&self) -> &MapDef {
        &self.def
    }

    pub fn n_cpus(&self) -> u32 {
        self.n_cpus
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    pub fn model_mut(&mut self) -> &mut Model {
        &mut self.model
    }

    fn unsupported(&self, op: &'static str) -> MapError {
        MapError::Unsupported {
            map_type: self.def.map_type.name(),
            op,
        }
    }

    /// `bpf_map_lookup_elem` from a program on `cpu`: the live value, or
    /// None when the key is absent.
    pub fn lookup(&mut self, key: &[u8], cpu: u32) -> Result<Option<ValueCell>, MapError> {
        match &mut self.model {
            Model::Hash(h) => Ok(h.lookup(key, cpu)),
            Model::Array(a) => Ok(a.lookup(key, cpu)),
            Model::LpmTrie(t) => Ok(t.lookup(key)),
            _ => Err(self.unsupported("lookup")),
        }
    }

    /// `bpf_map_update_elem` from a program on `cpu`.
    pub fn update(
        &mut self,
        key: &[u8],
        value: &[u8],
        flags: u64,
        cpu: u32,
    ) -> Result<(), MapError> {
        match &mut self.model {
            Model::Hash(h) => h.update(key, value, flags, cpu),
            Model::Array(a) => a.update(key, value, flags, cpu),
            Model::LpmTrie(t) => t.update(key, value, flags),
            _ => Err(self.unsupported("update")),
        }
    }

    /// `bpf_map_delete_elem`.
    pub fn delete(&mut self, key: &[u8]) -> Result<(), MapError> {
        match &mut self.model {
            Model::Hash(h) => h.delete(key),
            Model::Array(a) => a.delete(key),
            Model::LpmTrie(t) => t.delete(key),
            _ => Err(self.unsupported("delete")),
        }
    }

    /// `bpf_map_push_elem`.
    pub fn push(&mut self, value: &[u8], flags: u64) -> Result<(), MapError> {
        match &mut self.model {
            Model::QueueStack(q) => q.push(value, flags),
            _ => Err(self.unsupported("push")),
        }
    }

    /// `bpf_map_pop_elem`.
    pub fn pop(&mut self) -> Result<Vec<u8>, MapError> {
        match &mut self.model {
            Model::QueueStack(q) => q.pop(),
            _ => Err(self.unsupported("pop")),
        }
    }

    /// `bpf_map_peek_elem`.
    pub fn peek(&self) -> Result<Vec<u8>, MapError> {
        match &self.model {
            Model::QueueStack(q) => q.peek(),
            _ => Err(self.unsupported("peek")),
        }
    }

    /// A userspace update (`BPF_MAP_UPDATE_ELEM` with `BPF_ANY`) with the
    /// value bytes as userspace passes them: for per-CPU maps, one value per
    /// CPU, each padded to 8 bytes; for a program array, a `u32` program
    /// number; for queue/stack maps the key is empty and the value is pushed.
    pub fn seed(&mut self, key: &[u8], value: &[u8]) -> Result<(), MapError> {
        let values = self.split_values(value);
        match &mut self.model {
            Model::Hash(h) => h.seed(key, &values),
            Model::Array(a) => a.seed(key, &values),
            Model::LpmTrie(t) => t.update(key, value, BPF_ANY),
            Model::ProgArray(p) => {
                let index = u32_of(key)
                    .ok_or(MapError::Invalid("program array keys are 4-byte indexes"))?;
                let prog = u32_of(value.get(..4).unwrap_or(value)).ok_or(MapError::Invalid(
                    "program array values are 4-byte program numbers",
                ))?;
                p.set(index, prog)
            }
            Model::QueueStack(q) => q.push(value, BPF_ANY),
            Model::RingBuf(_) | Model::PerfEventArray(_) => Err(self.unsupported("seeding")),
        }
    }

    /// Splits userspace per-CPU value bytes into one value per CPU.
    fn split_values(&self, value: &[u8]) -> Vec<Vec<u8>> {
        if !self.def.map_type.is_per_cpu() {
            return vec![value.to_vec()];
        }
        let stride = (self.def.value_size as usize).div_ceil(8) * 8;
        if value.len() < stride * 2 {
            return vec![value.to_vec()]; // one value: every CPU gets it
        }
        value
            .chunks(stride)
            .map(|c| c[..c.len().min(self.def.value_size as usize)].to_vec())
            .collect()
    }

    /// Bytes the model holds (keys, values once per CPU, records not yet
    /// consumed), for the memory budget of the models
    /// ([`crate::limits::MAX_MODEL_MEMORY`]). Constant time.
    pub fn footprint(&self) -> u64 {
        match &self.model {
            Model::Hash(h) => h.footprint(),
            Model::Array(a) => a.footprint(),
            Model::LpmTrie(t) => t.footprint(),
            Model::RingBuf(r) => r.footprint(),
            Model::PerfEventArray(p) => p.footprint(),
            Model::QueueStack(q) => q.footprint(),
            Model::ProgArray(_) => 0,
        }
    }

    /// The contents for display and diffing, in iteration order. Array
    /// elements never touched are zero and are not listed.
    pub fn entries(&self) -> MapEntries {
        match &self.model {
            Model::Hash(h) => h.entries(),
            Model::Array(a) => a.entries(),
            Model::LpmTrie(t) => t.entries(),
            Model::ProgArray(p) => p.entries(),
            Model::QueueStack(q) => q.entries(),
            Model::RingBuf(_) | Model::PerfEventArray(_) => Vec::new(),
        }
    }

    /// The live (key, value) pairs a program on `cpu` visits with
    /// `bpf_for_each_map_elem` (hash and array maps only).
    pub fn for_each_cells(&mut self, cpu: u32) -> Result<Vec<(Vec<u8>, ValueCell)>, MapError> {
        match &mut self.model {
            Model::Hash(h)
                if !matches!(
                    self.def.map_type,
                    MapType::Devmap | MapType::DevmapHash | MapType::Cpumap | MapType::Xskmap
                ) =>
            {
                Ok(h.cells(cpu))
            }
            Model::Array(a) => Ok(a.cells(cpu)),
            _ => Err(self.unsupported("bpf_for_each_map_elem")),
        }
    }
}

fn u32_of(b: &[u8]) -> Option<u32> {
    Some(u32::from_le_bytes(b.try_into().ok()?))
}

/// How one key changed between two listings of a map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryChange {
    pub key: Vec<u8>,
    /// None: the key was added.
    pub old: Option<Vec<Vec<u8>>>,
    /// None: the key was removed.
    pub new: Option<Vec<Vec<u8>>>,
}

fn find<'a>(list: &'a MapEntries, key: &[u8]) -> Option<&'a Vec<Vec<u8>>> {
    list.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// The keys whose values differ between `before` and `after`, in the order
/// of `after` then removed keys. With `absent_is_zero` (arrays), a missing
/// element equals an all-zero one.
pub fn diff_entries(
    before: &MapEntries,
    after: &MapEntries,
    absent_is_zero: bool,
) -> Vec<EntryChange> {
    let zero = |v: &Vec<Vec<u8>>| v.iter().all(|c| c.iter().all(|&b| b == 0));
    let norm = |v: Option<&Vec<Vec<u8>>>| match v {
        Some(v) if absent_is_zero && zero(v) => None,
        other => other.cloned(),
    };
    let mut changes = Vec::new();
    for (key, _) in after {
        let (old, new) = (norm(find(before, key)), norm(find(after, key)));
        if old != new {
            changes.push(EntryChange {
                key: key.clone(),
                old,
                new,
            });
        }
    }
    for (key, _) in before {
        if find(after, key).is_none() {
            let old = norm(find(before, key));
            if old.is_some() {
                changes.push(EntryChange {
                    key: key.clone(),
                    old,
                    new: None,
                });
            }
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_dispatch_and_unsupported_ops() {
        let mut m = Map::new(MapDef::new("q", MapType::Queue, 0, 4, 2), 1).unwrap();
        assert_eq!(
            m.lookup(&[], 0).unwrap_err().to_string(),
            "queue maps do not support lookup"
        );
        m.push(&[1, 2, 3, 4], BPF_ANY).unwrap();
        assert_eq!(m.peek(), Ok(vec![1, 2, 3, 4]));
        let mut h = Map::new(MapDef::new("h", MapType::Hash, 4, 4, 2), 1).unwrap();
        assert!(h.push(&[0; 4], 0).is_err());
        assert!(Map::new(MapDef::new("bad", MapType::Array, 4, 0, 1), 1).is_err());
    }

    #[test]
    fn seeding_per_cpu_values_from_userspace_layout() {
        let mut m = Map::new(MapDef::new("pc", MapType::PercpuArray, 4, 4, 1), 2).unwrap();
        // Two CPUs, each value padded to 8 bytes.
        m.seed(
            &0u32.to_le_bytes(),
            &[1, 0, 0, 0, 9, 9, 9, 9, 2, 0, 0, 0, 9, 9, 9, 9],
        )
        .unwrap();
        assert_eq!(
            m.entries(),
            vec![(vec![0, 0, 0, 0], vec![vec![1, 0, 0, 0], vec![2, 0, 0, 0]])]
        );
        assert_eq!(
            m.lookup(&0u32.to_le_bytes(), 1).unwrap().unwrap().to_vec(),
            vec![2, 0, 0, 0]
        );
        let mut p = Map::new(MapDef::new("jmp", MapType::ProgArray, 4, 4, 4), 1).unwrap();
        p.seed(&1u32.to_le_bytes(), &3u32.to_le_bytes()).unwrap();
        let Model::ProgArray(pa) = p.model() else {
            panic!("prog array model")
        };
        assert_eq!(pa.target(1), Some(3));
    }

    #[test]
    fn diff_reports_added_changed_removed() {
        let mut m = Map::new(MapDef::new("h", MapType::Hash, 1, 1, 4), 1).unwrap();
        m.seed(&[1], &[10]).unwrap();
        m.seed(&[2], &[20]).unwrap();
        let before = m.entries();
        m.update(&[3], &[30], BPF_ANY, 0).unwrap();
        m.lookup(&[1], 0).unwrap().unwrap().store(&[11]);
        m.delete(&[2]).unwrap();
        let changes = diff_entries(&before, &m.entries(), false);
        assert_eq!(
            changes,
            vec![
                EntryChange {
                    key: vec![1],
                    old: Some(vec![vec![10]]),
                    new: Some(vec![vec![11]])
                },
                EntryChange {
                    key: vec![3],
                    old: None,
                    new: Some(vec![vec![30]])
                },
                EntryChange {
                    key: vec![2],
                    old: Some(vec![vec![20]]),
                    new: None
                },
            ]
        );
    }

    #[test]
    fn array_diff_treats_untouched_as_zero() {
        let mut m = Map::new(MapDef::new("a", MapType::Array, 4, 4, 4), 1).unwrap();
        let before = m.entries();
        m.lookup(&0u32.to_le_bytes(), 0).unwrap(); // touched, still zero
        m.update(&1u32.to_le_bytes(), &[1, 0, 0, 0], BPF_ANY, 0)
            .unwrap();
        let changes = diff_entries(&before, &m.entries(), true);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].key, 1u32.to_le_bytes().to_vec());
        assert_eq!(changes[0].old, None);
    }
}
