//! Slicing: a trace with only some invocations and only what they need.
//!
//! Kept: the invocations asked for (their `seq` numbers unchanged, so they
//! can be matched with the original), the programs they ran (entry
//! programs and the programs their tail calls reached), the maps those
//! programs use, the metadata (with a note naming the original and the
//! indices kept) and the lost counts (as information about the original
//! recording). Programs and maps are renumbered in their original order;
//! instructions need no change because map references index the program's
//! own `used_maps` list, which keeps its order.
//!
//! Replaying invocation `k` depends on the map state (global data above
//! all) left by the invocations before it. The caller passes that state in
//! a [`SliceState`]: the snapshots to store as the new start (the state just
//! before the first kept invocation; `bpfrr_replayer::edit` computes it by
//! replaying). Without it the original start snapshots stay, which is only
//! right when the slice starts at invocation 0.

use std::collections::BTreeSet;
use std::path::Path;

use super::EditError;
use crate::trace::{
    EventKind, Invocation, Map, MapSnapshot, Program, SnapshotTime, TailCallTarget, Trace,
    TraceSummary, TraceWriter,
};

/// Parses an invocation list such as `17,42,50-60` (0-based indices,
/// ranges inclusive) into sorted distinct indices.
pub fn parse_invocation_list(spec: &str) -> Result<Vec<u64>, EditError> {
    let bad = |part: &str, why: &str| {
        EditError::Invalid(format!(
            "`{part}` in the invocation list {spec:?} {why}; write indices and ranges like 17,42,50-60"
        ))
    };
    let mut set = BTreeSet::new();
    for part in spec.split(',').map(str::trim) {
        if part.is_empty() {
            return Err(bad(part, "is empty"));
        }
        let num = |s: &str| {
            s.trim()
                .parse::<u64>()
                .map_err(|_| bad(part, "is not an index"))
        };
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if a > b {
                    return Err(bad(part, "is a range that ends before it starts"));
                }
                if b - a >= 100_000_000 {
                    return Err(bad(part, "is too large a range"));
                }
                set.extend(a..=b);
            }
            None => {
                set.insert(num(part)?);
            }
        }
    }
    Ok(set.into_iter().collect())
}

/// Writes sorted indices compactly: `17, 42, 50-60`.
pub fn format_invocation_list(indices: &[u64]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < indices.len() {
        let start = indices[i];
        let mut j = i;
        while j + 1 < indices.len() && indices[j + 1] == indices[j] + 1 {
            j += 1;
        }
        parts.push(if j == i {
            start.to_string()
        } else {
            format!("{start}-{}", indices[j])
        });
        i = j + 1;
    }
    parts.join(", ")
}

/// What a slice keeps, as original indices and ids (a new id is the
/// position in these lists). Made by [`SlicePlan::new`], so it is
/// always consistent with its trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlicePlan {
    invocations: Vec<u64>,
    programs: Vec<u32>,
    maps: Vec<u32>,
}

impl SlicePlan {
    /// Works out the programs and maps that `invocations` need. Indices
    /// must exist in the trace; at least one is needed.
    pub fn new(trace: &Trace, invocations: &[u64]) -> Result<SlicePlan, EditError> {
        let count = trace.invocation_count();
        let mut kept: Vec<u64> = invocations.to_vec();
        kept.sort_unstable();
        kept.dedup();
        if kept.is_empty() {
            return Err(EditError::Invalid(
                "the slice would hold no invocation; name at least one with --invocations".into(),
            ));
        }
        if let Some(&bad) = kept.iter().find(|&&i| i >= count) {
            return Err(EditError::Invalid(format!(
                "{} has {count} invocations (0-{}), so there is no invocation {bad}",
                trace.name(),
                count.saturating_sub(1)
            )));
        }
        let mut programs = BTreeSet::new();
        for &i in &kept {
            let inv = trace.invocation(i)?;
            programs.insert(inv.program.to_native());
            for e in inv.events.iter() {
                let id = e.id.to_native();
                if e.kind.to_native() == EventKind::TailCall && id != u32::MAX {
                    programs.insert(id);
                }
            }
        }
        let mut maps = BTreeSet::new();
        for &p in &programs {
            let prog = &trace.programs()[p as usize];
            maps.extend(prog.used_maps.iter().copied());
            // Tail-call slots into kept programs stay; their prog arrays too.
            maps.extend(
                prog.tail_call_targets
                    .iter()
                    .filter(|t| programs.contains(&t.program))
                    .map(|t| t.map),
            );
        }
        Ok(SlicePlan {
            invocations: kept,
            programs: programs.into_iter().collect(),
            maps: maps.into_iter().collect(),
        })
    }

    /// Original invocation indices kept, ascending.
    pub fn invocations(&self) -> &[u64] {
        &self.invocations
    }

    /// Original ids of the programs kept, ascending (new id = position).
    pub fn programs(&self) -> &[u32] {
        &self.programs
    }

    /// Original ids of the maps kept, ascending (new id = position).
    pub fn maps(&self) -> &[u32] {
        &self.maps
    }

    /// The new id of original program `old`, if it is kept.
    pub fn program_id(&self, old: u32) -> Option<u32> {
        self.programs.binary_search(&old).ok().map(|i| i as u32)
    }

    /// The new id of original map `old`, if it is kept.
    pub fn map_id(&self, old: u32) -> Option<u32> {
        self.maps.binary_search(&old).ok().map(|i| i as u32)
    }

    /// Program `p` (an original) with the new ids.
    fn program(&self, p: &Program) -> Program {
        let mut p = p.clone();
        p.id = self
            .program_id(p.id)
            .expect("only kept programs are renumbered");
        p.used_maps = p
            .used_maps
            .iter()
            .map(|&m| self.map_id(m).expect("used maps are kept"))
            .collect();
        p.tail_call_targets = p
            .tail_call_targets
            .iter()
            .filter_map(|t| {
                Some(TailCallTarget {
                    map: self.map_id(t.map)?,
                    slot: t.slot,
                    program: self.program_id(t.program)?,
                })
            })
            .collect();
        p
    }

    /// Invocation `inv` (an original) with the new program ids.
    fn invocation(&self, mut inv: Invocation) -> Invocation {
        inv.program = self
            .program_id(inv.program)
            .expect("entry programs are kept");
        for e in &mut inv.events {
            if e.kind == EventKind::TailCall && e.id != u32::MAX {
                e.id = self.program_id(e.id).expect("tail-call targets are kept");
            }
        }
        inv
    }
}

/// The map state a slice starts (and ends) with, by original map id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SliceState {
    /// Snapshots replacing the `Start` snapshots of these maps (their
    /// `when` is set to `Start`).
    pub start: Vec<(u32, MapSnapshot)>,
    /// Snapshots replacing the `End` snapshots of these maps. When the slice
    /// does not end with the trace's last invocation, the original `End`
    /// snapshots no longer describe its end and are dropped unless given here.
    pub end: Vec<(u32, MapSnapshot)>,
    /// Lines added to the metadata notes (e.g. how the state was computed).
    pub notes: Vec<String>,
}

/// Writes the slice `plan` of `trace` to `out`.
pub fn write_slice(
    trace: &Trace,
    plan: &SlicePlan,
    state: &SliceState,
    out: &Path,
) -> Result<TraceSummary, EditError> {
    super::check_output_path(Path::new(trace.name()), out)?;
    if SlicePlan::new(trace, &plan.invocations)? != *plan {
        return Err(EditError::Invalid(format!(
            "the slice plan was made for another trace than {}",
            trace.name()
        )));
    }
    let count = trace.invocation_count();
    let ends_with_trace = plan.invocations.last().copied() == count.checked_sub(1);
    let programs: Vec<Program> = plan
        .programs
        .iter()
        .map(|&p| plan.program(&trace.programs()[p as usize]))
        .collect();
    let maps: Vec<Map> = plan
        .maps
        .iter()
        .map(|&old| {
            let mut m = trace.maps()[old as usize].clone();
            m.id = plan.map_id(old).expect("kept map");
            replace_snapshot(&mut m, old, SnapshotTime::Start, &state.start, true);
            replace_snapshot(&mut m, old, SnapshotTime::End, &state.end, ends_with_trace);
            m
        })
        .collect();
    let mut meta = trace.meta().clone();
    let mut notes: Vec<String> = Vec::new();
    if !meta.notes.is_empty() {
        notes.push(meta.notes.clone());
    }
    notes.push(format!(
        "sliced from {} ({count} invocations): kept invocations {} (original indices; seq numbers unchanged)",
        trace.name(),
        format_invocation_list(&plan.invocations)
    ));
    if !trace.lost().is_empty() {
        notes.push("lost counts are those of the original recording".into());
    }
    notes.extend(state.notes.iter().cloned());
    meta.notes = notes.join("\n");

    let mut w = TraceWriter::create(out, meta, programs, maps)?;
    for &i in &plan.invocations {
        w.push(plan.invocation(trace.invocation_owned(i)?))?;
    }
    for l in trace.lost() {
        w.add_lost(l.cpu, l.count);
    }
    Ok(w.finish()?)
}

/// Replaces map `m`'s snapshot taken at `when` by the one given for
/// original map `old`; without one, keeps the original if `keep_original`.
fn replace_snapshot(
    m: &mut Map,
    old: u32,
    when: SnapshotTime,
    given: &[(u32, MapSnapshot)],
    keep_original: bool,
) {
    if let Some((_, s)) = given.iter().find(|(id, _)| *id == old) {
        m.snapshots.retain(|x| x.when != when);
        let mut s = s.clone();
        s.when = when;
        m.snapshots.push(s);
    } else if !keep_original {
        m.snapshots.retain(|x| x.when != when);
    }
    // Start before End, as the recorder writes them.
    m.snapshots.sort_by_key(|s| s.when == SnapshotTime::End);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invocation_lists_parse_and_print() {
        assert_eq!(
            parse_invocation_list("42, 17,3-5,4").unwrap(),
            [3, 4, 5, 17, 42]
        );
        assert_eq!(format_invocation_list(&[3, 4, 5, 17, 42]), "3-5, 17, 42");
        assert_eq!(format_invocation_list(&[]), "");
        for bad in ["", "1,,2", "x", "5-3", "1-", "-1", "0-999999999999"] {
            let e = parse_invocation_list(bad).unwrap_err().to_string();
            assert!(e.contains("17,42,50-60"), "{bad}: {e}");
        }
    }
}
