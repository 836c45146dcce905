//! The recording pipeline: prepare (load, instrument, load), snapshot the
//! maps, drive while draining the ring buffer and assembling invocations
//! into the trace writer, snapshot again, store lost counts, finish (the
//! writer renames its temporary file only at the very end).

use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bpfrr_trace::object::LinkedProgram;
use bpfrr_trace::trace::{
    FuncInfo, JitInfo, KfuncName, LineInfo, LostCount, Map, MapSnapshot, Program, SnapshotTime,
    TailCallTarget, TraceError, TraceMeta, TraceSummary, TraceWriter, VerifierInfo,
    VerifierStats as TraceVerifierStats,
};

use crate::instrument::KfuncSite;
use crate::load::LoadedProgram;
use crate::stop::{InterruptHandle, Progress, StatusLine, StopConditions, StopReason, Stopper};
use crate::sys::{ProgInfo, SysError, monotonic_ns, possible_cpus};
use crate::wire::{self, Record};

use super::assemble::Assembler;
use super::driver::{Driver, DriverError, DriverTarget, Step};
use super::prepare::{PrepareError, PrepareOptions, Prepared, prepare, trace_insns};
use super::ringbuf::RingReader;
use super::snapshot::snapshot;

/// What to record.
#[derive(Clone, Debug)]
pub struct RecordOptions {
    pub object: PathBuf,
    pub output: PathBuf,
    pub prepare: PrepareOptions,
    pub stop: StopConditions,
    /// The command line, stored in the trace.
    pub command_line: Vec<String>,
    /// Print the live status line (stderr, when it is a terminal).
    pub status_line: bool,
}

/// What a recording produced.
#[derive(Debug)]
pub struct RecordReport {
    pub trace: PathBuf,
    pub summary: TraceSummary,
    pub invocations: u64,
    pub lost: Vec<LostCount>,
    pub stop: StopReason,
    /// Records whose invocation's entry was lost.
    pub orphans: u64,
    /// Invocations without their exit record.
    pub incomplete: u64,
    pub notes: Vec<String>,
}

/// Why a recording failed.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Prepare(#[from] PrepareError),
    #[error(transparent)]
    Driver(#[from] DriverError),
    #[error(transparent)]
    Sys(#[from] SysError),
    #[error(transparent)]
    Trace(#[from] TraceError),
    #[error("{0}")]
    Ring(String),
    #[error(
        "bpfrr bug: a ring buffer record could not be decoded ({0}); please report it with the object file"
    )]
    Wire(#[from] wire::WireError),
}

/// Records: the whole pipeline with `driver`, until the driver finishes or
/// a stop condition holds.
pub fn record(
    opts: &RecordOptions,
    driver: &mut dyn Driver,
    interrupt: InterruptHandle,
) -> Result<RecordReport, RecordError> {
    let start_time_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut prep_opts = opts.prepare.clone();
    // Pinned before the hints are read: they say whether it worked.
    driver.pin_to_cpu();
    prep_opts.hints = driver.capture_hints();
    let pinned_cpu = prep_opts.hints.pinned_cpu;
    prep_opts.retarget = driver.retarget();
    let prepared = match prepare(&opts.object, &prep_opts) {
        Ok(p) => p,
        Err(e) => {
            // Give a pinned thread its CPUs back; the error is the news.
            let _ = driver.stop();
            return Err(e.into());
        }
    };
    // A pinned test run's probes read no clock: each invocation gets the
    // time its test-run call started, and only that CPU needs flushing.
    let mut step_started = None;

    let attach_point = driver.attach_point();
    let programs = trace_programs(&prepared, &attach_point);
    let maps = trace_maps(&prepared, SnapshotTime::Start)?;
    let meta = TraceMeta {
        format_version: 0,
        bpfrr_version: env!("CARGO_PKG_VERSION").to_string(),
        kernel_release: read_trimmed("/proc/sys/kernel/osrelease"),
        arch: std::env::consts::ARCH.to_string(),
        hostname: Some(read_trimmed("/proc/sys/kernel/hostname")).filter(|h| !h.is_empty()),
        command: opts.command_line.clone(),
        start_time_ns,
        n_cpus: possible_cpus() as u32,
        // What the recording leaves out (calls, loads not recorded), for `bpfrr info`.
        notes: prepared.notes.join("\n"),
    };
    let mut writer = TraceWriter::create(&opts.output, meta, programs, maps)?;
    let mut ring = RingReader::new(&prepared.bpfrr.ringbuf).map_err(RecordError::Ring)?;
    let mut assembler = Assembler::new();
    let mut stopper = Stopper::new(opts.stop, interrupt);
    let mut status = StatusLine::stderr();
    let enabled_status = opts.status_line;

    let main = &prepared.programs[0];
    let linked = &main.original.linked;
    let target = DriverTarget {
        prog_fd: main.fd.as_fd(),
        prog_type: linked.prog_type,
        expected_attach_type: linked.expected_attach_type,
        name: &linked.name,
        section: &linked.section,
        section_attach_point: &linked.attach_point,
    };

    // Invocations written (TraceWriter counts only whole blocks).
    let mut written = 0u64;
    let mut drive = || -> Result<(), RecordError> {
        driver.start(&target)?;
        loop {
            if stopper.poll().is_some() {
                break;
            }
            let budget = stopper.step_budget(Duration::from_millis(100));
            step_started = pinned_cpu.map(|_| monotonic_ns());
            let step = driver.step(budget)?;
            // The invocations the probes batched (every CPU unless pinned:
            // a live CPU may have gone quiet).
            prepared.bpfrr.flush_after_step(pinned_cpu)?;
            let stop = drain(
                &mut ring,
                &mut assembler,
                &mut writer,
                &mut stopper,
                &mut written,
                step_started,
            )?;
            if enabled_status {
                // One per-CPU map read per status refresh (at most every 100 ms).
                let lost = prepared
                    .bpfrr
                    .lost_per_cpu()
                    .map_or(0, |per_cpu| per_cpu.iter().map(|(_, n)| n).sum());
                status.update(&Progress {
                    invocations: written,
                    bytes: ring.bytes,
                    lost,
                    elapsed: stopper.elapsed(),
                });
            }
            if stop || step == Step::Finished {
                break;
            }
        }
        Ok(())
    };
    let driven = drive();
    // Whatever happened, detach before anything else.
    let stopped = driver.stop();
    if enabled_status {
        status.clear();
    }
    driven?;
    stopped?;
    // What the kernel produced before the driver stopped (every CPU: a
    // pinned thread may have been moved off its CPU).
    prepared.bpfrr.flush()?;
    drain(
        &mut ring,
        &mut assembler,
        &mut writer,
        &mut stopper,
        &mut written,
        step_started,
    )?;
    if stopper.reason().is_none() {
        for inv in assembler.finish() {
            writer.push(inv)?;
            written += 1;
        }
    }
    let stop = stopper.finish();

    let end: Vec<(u32, MapSnapshot)> = prepared
        .object
        .maps
        .iter()
        .enumerate()
        .map(|(i, m)| Ok((i as u32, snapshot(&m.map, SnapshotTime::End)?)))
        .collect::<Result<_, SysError>>()?;
    writer.set_end_snapshots(end)?;
    let lost: Vec<LostCount> = prepared
        .bpfrr
        .lost_per_cpu()?
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(cpu, count)| LostCount { cpu, count })
        .collect();
    for l in &lost {
        writer.add_lost(l.cpu, l.count);
    }
    let invocations = written;
    let summary = writer.finish()?;
    Ok(RecordReport {
        trace: opts.output.clone(),
        summary,
        invocations,
        lost,
        stop,
        orphans: assembler.orphans,
        incomplete: assembler.incomplete,
        notes: prepared.notes.clone(),
    })
}

/// Reads every available record; returns true when a stop condition holds
/// (invocations past it are not written). `stamp`: the time of a pinned
/// test run's call, given to every invocation that started in it (its
/// probes read no clock).
fn drain(
    ring: &mut RingReader,
    assembler: &mut Assembler,
    writer: &mut TraceWriter,
    stopper: &mut Stopper,
    written: &mut u64,
    stamp: Option<u64>,
) -> Result<bool, RecordError> {
    let mut records = Vec::new();
    let mut bad = None;
    ring.drain(|bytes| match wire::decode(bytes) {
        Ok(r) => records.extend(r),
        Err(e) => bad = Some(e),
    });
    if let Some(e) = bad {
        return Err(e.into());
    }
    if let Some(t) = stamp {
        for r in &mut records {
            if let Record::Entry { time_ns, .. } = r {
                *time_ns = t;
            }
        }
    }
    for r in super::assemble::in_time_order(records) {
        for inv in assembler.push(r) {
            if stopper.reason().is_some() {
                continue;
            }
            let (seq, retval) = (inv.seq, inv.retval);
            writer.push(inv)?;
            *written += 1;
            stopper.on_invocation(seq, retval);
        }
    }
    Ok(stopper.reason().is_some())
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The trace's program list: the ORIGINAL relocated instructions (map
/// references as indices), verifier info, JIT image.
pub fn trace_programs(prepared: &Prepared, attach_point: &str) -> Vec<Program> {
    let fds = prepared.object.map_fds();
    let used_maps: Vec<u32> = (0..fds.len() as u32).collect();
    prepared
        .programs
        .iter()
        .map(|p| {
            let l: &LinkedProgram = &p.original.linked;
            Program {
                id: p.id,
                name: l.name.clone(),
                section: l.section.clone(),
                prog_type: l.prog_type,
                expected_attach_type: l.expected_attach_type.unwrap_or(0),
                attach_point: if p.id == 0 {
                    attach_point.to_string()
                } else {
                    "tail call".to_string()
                },
                license: l.license.clone(),
                insns: trace_insns(&l.insns, &fds),
                used_maps: used_maps.clone(),
                btf: l.btf.clone(),
                func_info: l
                    .func_info
                    .iter()
                    .map(|f| FuncInfo {
                        insn: f.insn as u32,
                        type_id: f.type_id,
                        name: f.name.clone(),
                    })
                    .collect(),
                line_info: l
                    .line_info
                    .iter()
                    .map(|x| LineInfo {
                        insn: x.insn as u32,
                        file: x.file.clone(),
                        line: x.line,
                        col: x.col,
                        text: x.text.clone(),
                    })
                    .collect(),
                kfuncs: kfunc_names(l, &p.probe_config.sites.kfuncs),
                verifier: Some(verifier_info(&p.original)),
                jit: super::jit_probe::jit_info(&prepared.object, &p.original),
                tail_call_targets: prepared
                    .tail_slots
                    .iter()
                    .filter(|_| p.id == 0)
                    .map(|s| TailCallTarget {
                        map: s.map,
                        slot: s.slot,
                        program: s.program,
                    })
                    .collect(),
            }
        })
        .collect()
}

/// The names of the kfuncs a program calls, by BTF id (from the verifier
/// log's disassembly: `call bpf_task_from_pid#12345`).
fn kfunc_names(l: &LinkedProgram, sites: &[KfuncSite]) -> Vec<KfuncName> {
    let mut out: Vec<KfuncName> = Vec::new();
    for site in sites {
        let (Some(name), Some(insn)) = (&site.name, l.insns.get(site.insn)) else {
            continue;
        };
        let btf_id = insn.imm as u32;
        if !out.iter().any(|k| k.btf_id == btf_id) {
            out.push(KfuncName {
                btf_id,
                name: name.clone(),
            });
        }
    }
    out
}

fn verifier_info(p: &LoadedProgram) -> VerifierInfo {
    let stats = p.stats.clone().unwrap_or_default();
    VerifierInfo {
        log: p.log.clone(),
        log_level: 2,
        accepted: true,
        stats: TraceVerifierStats {
            insns_processed: stats.insns_processed,
            max_states_per_insn: stats.max_states_per_insn.unwrap_or(0),
            total_states: stats.total_states.unwrap_or(0),
            peak_states: stats.peak_states.unwrap_or(0),
            mark_read: stats.mark_read.unwrap_or(0),
        },
        stack_depths: stats.stack_depths.clone(),
        verification_time_usec: stats.verification_time_usec.unwrap_or(0),
    }
}

/// The JIT image and, per xlated instruction, its native offset (from the
/// kernel's jited line table: each instruction gets the offset of the last
/// line record at or before it). None when the kernel withholds the image.
pub fn jit_info(info: &ProgInfo) -> Option<JitInfo> {
    if info.jited.is_empty() {
        return None;
    }
    let rec = info.line_info_rec_size.max(16) as usize;
    let n_lines = info.line_info.len() / rec;
    let mut insn_offsets = Vec::new();
    if n_lines > 0 && info.jited_line_info.len() >= n_lines && !info.jited_ksyms.is_empty() {
        // Function start offsets in the concatenated image.
        let mut func_base = Vec::with_capacity(info.jited_ksyms.len());
        let mut acc = 0u64;
        for (i, _) in info.jited_ksyms.iter().enumerate() {
            func_base.push(acc);
            acc += *info.jited_func_lens.get(i).unwrap_or(&0) as u64;
        }
        let native_offset = |addr: u64| -> u32 {
            // The function whose code holds `addr`.
            let f = info
                .jited_ksyms
                .iter()
                .enumerate()
                .filter(|(i, start)| {
                    let len = *info.jited_func_lens.get(*i).unwrap_or(&0) as u64;
                    addr >= **start && addr < **start + len.max(1)
                })
                .map(|(i, _)| i)
                .next()
                .unwrap_or(0);
            (func_base[f] + addr.saturating_sub(info.jited_ksyms[f])) as u32
        };
        let lines: Vec<(usize, u32)> = (0..n_lines)
            .map(|k| {
                let b = &info.line_info[k * rec..k * rec + 4];
                let insn = u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize;
                (insn, native_offset(info.jited_line_info[k]))
            })
            .collect();
        let mut cur = 0u32;
        let mut li = 0;
        for i in 0..info.xlated.len() {
            while li < lines.len() && lines[li].0 <= i {
                cur = lines[li].1;
                li += 1;
            }
            insn_offsets.push(cur);
        }
    }
    Some(JitInfo {
        arch: std::env::consts::ARCH.to_string(),
        image: info.jited.clone(),
        insn_offsets,
        xlated: info.xlated.iter().map(|i| i.to_bytes()).collect(),
        orig_to_xlated: Vec::new(),
    })
}

/// The trace's map list with one snapshot taken now.
pub fn trace_maps(prepared: &Prepared, when: SnapshotTime) -> Result<Vec<Map>, SysError> {
    prepared
        .object
        .maps
        .iter()
        .enumerate()
        .map(|(i, m)| {
            Ok(Map {
                id: i as u32,
                name: m.def.name.clone(),
                map_type: m.def.map_type,
                key_size: m.def.key_size,
                value_size: m.def.value_size,
                max_entries: m.map.max_entries,
                flags: m.def.flags,
                btf_key_type_id: m.def.btf_key_type_id,
                btf_value_type_id: m.def.btf_value_type_id,
                inner: None,
                initial_data: m.def.initial_data.clone(),
                snapshots: vec![snapshot(&m.map, when)?],
                frozen: m.def.read_only,
            })
        })
        .collect()
}
