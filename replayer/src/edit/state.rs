//! The map state a replay carries from one invocation to the next, as
//! trace snapshots: what a slice must start with so its first invocation
//! sees what it saw in the original.

use bpfrr_trace::catalog::MapType;
use bpfrr_trace::trace::{MapEntry, MapSnapshot, SnapshotTime, Trace};

use crate::env::ModelEnv;
use crate::maps::Model;
use crate::replay::setup::initial_models;

/// Per trace map: the snapshot of its model, or None where the model
/// cannot stand for the map (not modelled, a program array whose values are
/// kernel file descriptors, ring buffers and perf arrays that hold no state
/// a replay reads).
pub type MapState = Vec<Option<MapSnapshot>>;

/// Which maps of `trace` the replay models (the others are stand-ins).
pub fn modelled_maps(trace: &Trace) -> Vec<bool> {
    initial_models(trace)
        .1
        .unmodelled
        .iter()
        .map(|u| !u)
        .collect()
}

/// The models' contents as start snapshots (`modelled`: see [`modelled_maps`]).
pub fn map_state(model: &ModelEnv, modelled: &[bool]) -> MapState {
    model
        .maps()
        .iter()
        .enumerate()
        .map(|(i, m)| {
            if !modelled.get(i).copied().unwrap_or(false) {
                return None;
            }
            match m.model() {
                Model::Hash(_) | Model::Array(_) | Model::LpmTrie(_) | Model::QueueStack(_) => {}
                Model::ProgArray(_) | Model::RingBuf(_) | Model::PerfEventArray(_) => return None,
            }
            let per_cpu = m.def().map_type.is_per_cpu();
            Some(MapSnapshot {
                when: SnapshotTime::Start,
                n_cpus: if per_cpu { m.n_cpus() } else { 1 },
                entries: m
                    .entries()
                    .into_iter()
                    .map(|(key, values)| MapEntry {
                        key,
                        value: values.concat(),
                    })
                    .collect(),
            })
        })
        .collect()
}

/// The names of the maps whose state differs between `a` and `b`, both
/// indexed by the map ids of `trace` (maps without a state in either are
/// not compared). Entry order does not matter, nor, for arrays, whether a
/// zero element is listed.
pub fn differing_maps(trace: &Trace, a: &MapState, b: &MapState) -> Vec<String> {
    fn canonical<'s>(trace: &Trace, i: usize, s: &'s MapSnapshot) -> Vec<(&'s [u8], &'s [u8])> {
        let array = trace
            .maps()
            .get(i)
            .and_then(|m| MapType::from_number(m.map_type))
            .is_some_and(|t| matches!(t, MapType::Array | MapType::PercpuArray));
        let mut e: Vec<(&[u8], &[u8])> = s
            .entries
            .iter()
            .filter(|e| !array || e.value.iter().any(|&b| b != 0))
            .map(|e| (&e.key[..], &e.value[..]))
            .collect();
        e.sort();
        e
    }
    a.iter()
        .zip(b)
        .enumerate()
        .filter_map(|(i, pair)| match pair {
            (Some(x), Some(y)) if canonical(trace, i, x) != canonical(trace, i, y) => Some(
                trace
                    .maps()
                    .get(i)
                    .map_or_else(|| format!("map {i}"), |m| m.name.clone()),
            ),
            _ => None,
        })
        .collect()
}
