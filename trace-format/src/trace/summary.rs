//! What `bpfrr info` shows about a trace, computed from the directory alone
//! (no invocation block is read), so it is instant for any trace size.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::catalog::{MapType, ProgType};

use super::directory::{RetvalCount, TraceDirectory};
use super::model::{LostCount, SnapshotTime};

/// Summary of one trace file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceSummary {
    /// The path (or "in-memory trace").
    pub file: String,
    pub size_bytes: u64,
    pub format_version: u32,
    pub bpfrr_version: String,
    pub kernel_release: String,
    pub arch: String,
    pub hostname: Option<String>,
    /// The recording command line.
    pub command: Vec<String>,
    /// Nanoseconds since the Unix epoch.
    pub start_time_ns: u64,
    pub n_cpus: u32,
    pub notes: String,
    pub invocation_count: u64,
    /// Invocations whose record is incomplete.
    pub partial_invocations: u64,
    pub block_count: u64,
    /// Return values over all programs, by value.
    pub retvals: Vec<RetvalCount>,
    /// Invocations whose return value was not counted individually
    /// (more distinct values than the histogram keeps).
    pub other_retvals: u64,
    pub programs: Vec<ProgramSummary>,
    pub maps: Vec<MapSummary>,
    /// Records lost per CPU (only CPUs that lost any).
    pub lost: Vec<LostCount>,
    pub lost_total: u64,
}

/// One program of a trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgramSummary {
    pub id: u32,
    pub name: String,
    pub section: String,
    /// The kernel's `enum bpf_prog_type`.
    pub prog_type: u32,
    /// bpftool's name of the type ("xdp"), or "type N" if unknown.
    pub prog_type_name: String,
    pub attach_point: String,
    pub insn_count: u64,
    pub has_btf: bool,
    pub line_info_count: u64,
    /// `None` when no verifier information was recorded.
    pub verifier_accepted: Option<bool>,
    pub verifier_insns_processed: Option<u64>,
    /// Size of the JIT image, when recorded.
    pub jit_bytes: Option<u64>,
    pub invocations: u64,
    pub partial_invocations: u64,
    pub retvals: Vec<RetvalCount>,
    pub other_retvals: u64,
}

/// One map of a trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapSummary {
    pub id: u32,
    pub name: String,
    /// The kernel's `enum bpf_map_type`.
    pub map_type: u32,
    /// bpftool's name of the type ("hash"), or "type N" if unknown.
    pub map_type_name: String,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub flags: u32,
    pub frozen: bool,
    /// Entries in the snapshot taken at the start, if any.
    pub entries_at_start: Option<u64>,
    /// Entries in the snapshot taken at the end, if any.
    pub entries_at_end: Option<u64>,
}

impl TraceSummary {
    /// Builds the summary of a trace from its directory and file size.
    pub fn from_directory(file: &str, dir: &TraceDirectory, size_bytes: u64) -> TraceSummary {
        let programs: Vec<ProgramSummary> = dir
            .programs
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let stats = dir.stats.programs.get(i).cloned().unwrap_or_default();
                ProgramSummary {
                    id: p.id,
                    name: p.name.clone(),
                    section: p.section.clone(),
                    prog_type: p.prog_type,
                    prog_type_name: ProgType::from_number(p.prog_type)
                        .map_or_else(|| format!("type {}", p.prog_type), |t| t.name().to_string()),
                    attach_point: p.attach_point.clone(),
                    insn_count: p.insns.len() as u64,
                    has_btf: p.btf.is_some(),
                    line_info_count: p.line_info.len() as u64,
                    verifier_accepted: p.verifier.as_ref().map(|v| v.accepted),
                    verifier_insns_processed: p.verifier.as_ref().map(|v| v.stats.insns_processed),
                    jit_bytes: p.jit.as_ref().map(|j| j.image.len() as u64),
                    invocations: stats.invocations,
                    partial_invocations: stats.partial,
                    retvals: stats.retvals,
                    other_retvals: stats.other_retvals,
                }
            })
            .collect();
        let mut all_retvals: BTreeMap<u64, u64> = BTreeMap::new();
        for p in &programs {
            for r in &p.retvals {
                let c = all_retvals.entry(r.value).or_default();
                *c = c.saturating_add(r.count);
            }
        }
        let snapshot_len = |m: &super::model::Map, when: SnapshotTime| {
            m.snapshots
                .iter()
                .find(|s| s.when == when)
                .map(|s| s.entries.len() as u64)
        };
        let meta = &dir.meta;
        TraceSummary {
            file: file.to_string(),
            size_bytes,
            format_version: meta.format_version,
            bpfrr_version: meta.bpfrr_version.clone(),
            kernel_release: meta.kernel_release.clone(),
            arch: meta.arch.clone(),
            hostname: meta.hostname.clone(),
            command: meta.command.clone(),
            start_time_ns: meta.start_time_ns,
            n_cpus: meta.n_cpus,
            notes: meta.notes.clone(),
            invocation_count: dir.invocation_count(),
            partial_invocations: saturating_sum(programs.iter().map(|p| p.partial_invocations)),
            block_count: dir.blocks.len() as u64,
            retvals: all_retvals
                .into_iter()
                .map(|(value, count)| RetvalCount { value, count })
                .collect(),
            other_retvals: saturating_sum(programs.iter().map(|p| p.other_retvals)),
            maps: dir
                .maps
                .iter()
                .map(|m| MapSummary {
                    id: m.id,
                    name: m.name.clone(),
                    map_type: m.map_type,
                    map_type_name: MapType::from_number(m.map_type)
                        .map_or_else(|| format!("type {}", m.map_type), |t| t.name().to_string()),
                    key_size: m.key_size,
                    value_size: m.value_size,
                    max_entries: m.max_entries,
                    flags: m.flags,
                    frozen: m.frozen,
                    entries_at_start: snapshot_len(m, SnapshotTime::Start),
                    entries_at_end: snapshot_len(m, SnapshotTime::End),
                })
                .collect(),
            programs,
            lost: dir.lost.clone(),
            lost_total: saturating_sum(dir.lost.iter().map(|l| l.count)),
        }
    }
}

/// Counts read from a file can be anything: a sum that does not fit says
/// u64::MAX rather than overflowing.
fn saturating_sum(counts: impl Iterator<Item = u64>) -> u64 {
    counts.fold(0, u64::saturating_add)
}
