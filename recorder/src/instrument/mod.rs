//! The instrumenter: rewrites a linked program so that it records its own
//! run into a ring buffer, without changing what it computes.
//!
//! Pure instruction rewriting (no kernel): the input is a
//! [`LinkedProgram`] (original instructions with map fds resolved) and the
//! stack depth of each function from the original's verifier log; the
//! output is a new `LinkedProgram` whose instructions, functions, func_info
//! and line_info are consistent, plus the table from new to original
//! instruction indices.
//!
//! Layout of the new program: `[entry block]` then, for every original
//! instruction `i`: `[before block of i] [i] [after block of i]`. A jump to
//! original `i` lands on the start of its before block (so a spill before a
//! call runs however the call is reached); the entry block runs only when
//! the program starts. Every jump, local call, callback address (`ld_imm64`
//! pseudo func), func_info and line_info offset is moved accordingly.
//!
//! Probes (see [`probes`]): the entry block; a helper record after every
//! helper call (argument registers it needs are spilled before the call)
//! and after every kfunc call (r0, under the kfunc's BTF id); a tail-call
//! record before `bpf_tail_call` and a pending-flag reset after it; a
//! BTF-load record after every load through a BTF pointer (which loads
//! those are comes from the original's verifier log, see [`sites`]); an
//! exit record before every `exit` of the main function. Every subprogram
//! and callback is covered because probes are placed per instruction,
//! wherever it is.

pub mod asm;
pub mod dataflow;
pub mod liveness;
pub mod packet_writes;
pub mod probes;
pub mod sites;

use bpfrr_trace::catalog::{MapType, OutSize, RetKind, helper};
use bpfrr_trace::isa::{
    CallTarget, CheckError, Imm64Kind, Insn, RawInsn, branch_target, check, opcode::MAX_STACK,
};
use bpfrr_trace::object::{FuncInfo, LineInfo, LinkedFunction, LinkedProgram};

use dataflow::Val;
pub use probes::{
    CtxCapture, CtxField, OutputPlan, PacketAccess, ProbeConfig, SCRATCH_BYTES, SizeSource,
    XDP_DIRECT_COPY_MAX,
};
pub use sites::{BtfLoadSite, KfuncSite, LogSites, find_sites};

use probes::{Frame, HELPER_TAIL_CALL};

/// `bpf_spin_lock` / `bpf_spin_unlock`: no helper may be called while a
/// lock is held, so calls in and around locked regions are not probed.
const HELPER_SPIN_LOCK: i32 = 93;
const HELPER_SPIN_UNLOCK: i32 = 94;

/// A map the program refers to, by the fd its `ld_imm64` holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapShape {
    pub fd: i32,
    /// Index of the map in the object (the trace's map id).
    pub index: u32,
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
}

/// The result of instrumenting one program.
#[derive(Clone, Debug)]
pub struct Instrumented {
    /// The instrumented program (instructions, functions, func/line info).
    pub program: LinkedProgram,
    /// For each slot of the new program, the original instruction it
    /// belongs to (probe code maps to the instruction it instruments; the
    /// entry block to 0).
    pub new_to_orig: Vec<u32>,
    /// For each original slot, where that instruction itself now is.
    pub orig_to_new: Vec<u32>,
    /// Number of helper call sites that record an event.
    pub helper_probes: usize,
    /// Number of exits that record the return value.
    pub exit_probes: usize,
    /// Number of tail calls that record their target.
    pub tail_call_probes: usize,
    /// Number of kfunc calls that record their result.
    pub kfunc_probes: usize,
    /// Number of loads through BTF pointers that record their value.
    pub btf_load_probes: usize,
    /// Calls that are not recorded, with why (spin locks, kfuncs the
    /// verifier log does not show or that run under a lock).
    pub unprobed_calls: Vec<(u32, String)>,
}

impl Instrumented {
    /// The original instruction index for a new index (None past the end).
    pub fn orig_index(&self, new: usize) -> Option<u32> {
        self.new_to_orig.get(new).copied()
    }
}

/// Why a program cannot be instrumented.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstrumentError {
    #[error("the program does not pass the instruction checks: {0}")]
    Check(#[from] CheckError),
    #[error(
        "the verifier reported {got} stack depths but the program has {want} functions; load the original with log level 2 and statistics first"
    )]
    StackDepths { got: usize, want: usize },
    #[error(
        "recording needs {need} bytes of stack along the call chain {chain}, over the kernel's {MAX_STACK}-byte limit ({SCRATCH_BYTES} scratch bytes per frame); reduce the program's stack use"
    )]
    StackTooDeep { need: u32, chain: String },
    #[error(
        "instruction {insn}: after instrumentation a jump spans {distance} instructions, more than a 16-bit offset holds; the program is too large to record"
    )]
    JumpTooFar { insn: usize, distance: i64 },
}

/// Instruments `prog`. `stack_depths` has one entry per function in start
/// order (the verifier's `stack depth a+b+c`).
pub fn instrument(
    prog: &LinkedProgram,
    stack_depths: &[u32],
    maps: &[MapShape],
    cfg: &ProbeConfig,
) -> Result<Instrumented, InstrumentError> {
    let checked = check(&prog.insns)?;
    let n = prog.insns.len();

    let mut functions: Vec<&LinkedFunction> = prog.functions.iter().collect();
    functions.sort_by_key(|f| f.start);
    if functions.is_empty() || functions[0].start != 0 {
        // A program without function table: one function.
        functions.clear();
    }
    let starts: Vec<usize> = if functions.is_empty() {
        vec![0]
    } else {
        functions.iter().map(|f| f.start).collect()
    };
    if stack_depths.len() != starts.len() {
        return Err(InstrumentError::StackDepths {
            got: stack_depths.len(),
            want: starts.len(),
        });
    }
    let fn_of = |pc: usize| starts.partition_point(|&s| s <= pc) - 1;
    check_stack(&checked.insns, &starts, stack_depths, &fn_of, prog)?;
    let frames: Vec<Frame> = stack_depths
        .iter()
        .enumerate()
        .map(|(i, &d)| {
            if i == 0 {
                Frame::main(d)
            } else {
                Frame::new(d)
            }
        })
        .collect();
    let regs = dataflow::analyze(&checked, &starts);

    let mut out: Vec<RawInsn> = Vec::with_capacity(n * 2);
    let mut new_to_orig: Vec<u32> = Vec::with_capacity(n * 2);
    let mut jump_target = vec![0usize; n];
    let mut orig_pos = vec![0usize; n];
    let mut result_stats = (0usize, 0usize, 0usize);
    let (mut kfunc_probes, mut btf_load_probes) = (0usize, 0usize);
    let mut unprobed = Vec::new();

    let emit = |out: &mut Vec<RawInsn>, map: &mut Vec<u32>, insns: Vec<RawInsn>, orig: usize| {
        map.extend(std::iter::repeat_n(orig as u32, insns.len()));
        out.extend(insns);
    };

    emit(
        &mut out,
        &mut new_to_orig,
        probes::entry(cfg, frames[0]).finish(),
        0,
    );

    for pc in 0..n {
        let Some(insn) = checked.insns[pc] else {
            // Second slot of an ld_imm64: copied with the first.
            let first = orig_pos[pc.saturating_sub(1)] + 1;
            jump_target[pc] = first;
            orig_pos[pc] = first;
            continue;
        };
        let fr = frames[fn_of(pc)];
        let mut after: Option<asm::Block> = None;
        jump_target[pc] = out.len();
        match insn {
            Insn::Call(CallTarget::Helper(HELPER_TAIL_CALL)) => {
                let map = match regs[pc].map(|r| r[2]) {
                    Some(Val::Map(fd)) => maps.iter().find(|m| m.fd == fd).map(|m| m.index),
                    _ => None,
                };
                emit(
                    &mut out,
                    &mut new_to_orig,
                    probes::before_tail_call(cfg, fr, pc as u32, map).finish(),
                    pc,
                );
                after = Some(probes::after_tail_call(cfg, fr));
                result_stats.2 += 1;
            }
            Insn::Call(CallTarget::Helper(id @ (HELPER_SPIN_LOCK | HELPER_SPIN_UNLOCK))) => {
                unprobed.push((pc as u32, format!("helper {id} (spin lock)")));
            }
            Insn::Call(CallTarget::Helper(id)) => {
                let state = regs[pc].unwrap_or([Val::Unknown; 11]);
                let (outputs, returns_value) = plan_outputs(id, &state, maps, cfg);
                emit(
                    &mut out,
                    &mut new_to_orig,
                    probes::before_helper(fr, &outputs).finish(),
                    pc,
                );
                after = Some(probes::after_helper(
                    cfg,
                    fr,
                    pc as u32,
                    id as u32,
                    returns_value,
                    &outputs,
                ));
                result_stats.0 += 1;
            }
            Insn::Call(CallTarget::Kfunc { btf_id, .. }) => match kfunc_probe(cfg, pc) {
                Ok(returns_value) => {
                    after = Some(probes::after_kfunc(
                        cfg,
                        fr,
                        pc as u32,
                        btf_id as u32,
                        returns_value,
                    ));
                    kfunc_probes += 1;
                }
                Err(why) => unprobed.push((pc as u32, format!("kfunc btf id {btf_id}: {why}"))),
            },
            Insn::Load { .. } if let Some(site) = cfg.sites.btf_load_at(pc) => {
                after = Some(probes::after_btf_load(cfg, fr, site));
                btf_load_probes += 1;
            }
            Insn::Exit if fn_of(pc) == 0 => {
                emit(
                    &mut out,
                    &mut new_to_orig,
                    probes::exit(cfg, fr, pc as u32).finish(),
                    pc,
                );
                result_stats.1 += 1;
            }
            _ => {}
        }
        orig_pos[pc] = out.len();
        let slots = insn.slots();
        out.extend_from_slice(&prog.insns[pc..pc + slots]);
        new_to_orig.extend((pc..pc + slots).map(|i| i as u32));
        if let Some(block) = after {
            emit(&mut out, &mut new_to_orig, block.finish(), pc);
        }
    }

    // Move every branch to the new place of its target.
    for (pc, insn) in checked.insns.iter().enumerate() {
        let Some(insn) = *insn else {
            continue;
        };
        let Some(target) = branch_target(&insn, pc) else {
            continue;
        };
        let at = orig_pos[pc];
        let distance = jump_target[target as usize] as i64 - (at as i64 + 1);
        let too_far = || InstrumentError::JumpTooFar { insn: pc, distance };
        match insn {
            Insn::Ja { long: true, .. } => {
                out[at].imm = i32::try_from(distance).map_err(|_| too_far())?;
            }
            Insn::Ja { .. } | Insn::Jump { .. } | Insn::MayGoto { .. } => {
                out[at].off = i16::try_from(distance).map_err(|_| too_far())?;
            }
            Insn::Call(CallTarget::Local(_))
            | Insn::LoadImm64 {
                kind: Imm64Kind::Func,
                ..
            } => {
                out[at].imm = i32::try_from(distance).map_err(|_| too_far())?;
            }
            _ => {}
        }
    }

    // Where an original instruction's code starts (func/line info): its
    // before block, and for instruction 0 the entry block.
    let start_of = |i: usize| if i == 0 { 0 } else { jump_target[i] };
    let mut program = prog.clone();
    program.insns = out;
    program.functions = prog
        .functions
        .iter()
        .map(|f| {
            let end = f.start + f.len;
            let new_start = start_of(f.start);
            let new_end = if end >= n {
                program.insns.len()
            } else {
                start_of(end)
            };
            LinkedFunction {
                name: f.name.clone(),
                start: new_start,
                len: new_end - new_start,
            }
        })
        .collect();
    program.func_info = prog
        .func_info
        .iter()
        .map(|f| FuncInfo {
            insn: start_of(f.insn.min(n - 1)),
            ..f.clone()
        })
        .collect();
    program.line_info = prog
        .line_info
        .iter()
        .map(|l| LineInfo {
            insn: start_of(l.insn.min(n - 1)),
            ..l.clone()
        })
        .collect();
    Ok(Instrumented {
        program,
        new_to_orig,
        orig_to_new: orig_pos.iter().map(|&p| p as u32).collect(),
        helper_probes: result_stats.0,
        exit_probes: result_stats.1,
        tail_call_probes: result_stats.2,
        kfunc_probes,
        btf_load_probes,
        unprobed_calls: unprobed,
    })
}

/// Whether the kfunc call at `pc` can be probed, and if so whether it
/// leaves a value in r0 (from the verifier log: a void kfunc leaves r0
/// unset, and reading it would be rejected).
fn kfunc_probe(cfg: &ProbeConfig, pc: usize) -> Result<bool, &'static str> {
    let Some(site) = cfg.sites.kfunc_at(pc) else {
        return Err("the verifier log does not show it");
    };
    // These run with a bpf_spin_lock held (or take one): no helper call,
    // so no probe, may follow them.
    const UNDER_LOCK: [&str; 4] = ["bpf_rbtree_", "bpf_list_", "bpf_res_spin_", "bpf_spin_"];
    if site
        .name
        .as_deref()
        .is_some_and(|n| UNDER_LOCK.iter().any(|p| n.starts_with(p)))
    {
        return Err("it runs under a spin lock, where the probe's helper calls are not allowed");
    }
    Ok(site.returns_value)
}

/// The outputs to capture after a call of helper `id`, and whether it
/// leaves a value in r0.
fn plan_outputs(
    id: i32,
    regs: &[Val; 11],
    maps: &[MapShape],
    cfg: &ProbeConfig,
) -> (Vec<OutputPlan>, bool) {
    let Some(spec) = helper(id) else {
        // Unknown to the catalogue: record r0 only.
        return (Vec::new(), true);
    };
    let returns_value = spec.ret != RetKind::Void;
    // The map in r1, when the analysis knows it.
    let map = match regs[1] {
        Val::Map(fd) => maps.iter().find(|m| m.fd == fd),
        _ => None,
    };
    let plain_value_maps = || {
        maps.iter().filter(|m| {
            !matches!(
                MapType::from_number(m.map_type),
                Some(
                    MapType::ArrayOfMaps
                        | MapType::HashOfMaps
                        | MapType::ProgArray
                        | MapType::Ringbuf
                        | MapType::UserRingbuf
                        | MapType::PerfEventArray
                )
            )
        })
    };
    let map_size = |key: bool| -> Option<u32> {
        match map {
            Some(m) => Some(if key { m.key_size } else { m.value_size }),
            // Unknown map: the largest of the program's maps (the replayer
            // takes the first value_size bytes of the map it really used).
            None => plain_value_maps()
                .map(|m| if key { m.key_size } else { m.value_size })
                .max(),
        }
    };
    let mut outputs = Vec::new();
    let mut push = |arg: u8, size: Option<SizeSource>, exact: bool| {
        let Some(size) = size else { return };
        let cap = match size {
            SizeSource::Const(c) => c,
            SizeSource::Arg(_) => cfg.output_cap,
        };
        outputs.push(OutputPlan {
            arg,
            size,
            cap,
            exact,
        });
    };
    for o in spec.output_args() {
        let size = match o.size {
            OutSize::Fixed(n) => Some(SizeSource::Const(n)),
            OutSize::MapValue => map_size(false).map(SizeSource::Const),
            OutSize::MapKey => map_size(true).map(SizeSource::Const),
            OutSize::Arg(j) => match regs.get(j as usize + 1) {
                Some(Val::Const(c)) if (0..=u16::MAX as i64).contains(c) => {
                    Some(SizeSource::Const(*c as u32))
                }
                _ => Some(SizeSource::Arg(j)),
            },
        };
        push(o.arg + 1, size, false);
    }
    if spec.returned_memory() == Some(OutSize::MapValue) {
        let inner_map = map.is_some_and(|m| {
            matches!(
                MapType::from_number(m.map_type),
                Some(MapType::ArrayOfMaps | MapType::HashOfMaps)
            )
        });
        if !inner_map {
            push(
                crate::wire::OUT_ARG_RETURNED,
                map_size(false).map(SizeSource::Const),
                map.is_some(),
            );
        }
    }
    (outputs, returns_value)
}

/// Checks that the scratch slots fit: per frame, and along the deepest
/// chain of calls (the verifier rounds each frame to 32 bytes).
fn check_stack(
    insns: &[Option<Insn>],
    starts: &[usize],
    depths: &[u32],
    fn_of: &dyn Fn(usize) -> usize,
    prog: &LinkedProgram,
) -> Result<(), InstrumentError> {
    let nf = starts.len();
    let mut callees: Vec<Vec<usize>> = vec![Vec::new(); nf];
    for (pc, insn) in insns.iter().enumerate() {
        let Some(insn) = insn else { continue };
        let is_call = matches!(
            insn,
            Insn::Call(CallTarget::Local(_))
                | Insn::LoadImm64 {
                    kind: Imm64Kind::Func,
                    ..
                }
        );
        if is_call && let Some(t) = branch_target(insn, pc) {
            let callee = fn_of(t as usize);
            if !callees[fn_of(pc)].contains(&callee) {
                callees[fn_of(pc)].push(callee);
            }
        }
    }
    let frame_size =
        |f: usize| (Frame::new(depths[f]).depth as u32 + SCRATCH_BYTES).div_ceil(32) * 32;
    // Longest chain from each function (the call graph has no cycles in a
    // program the verifier accepted; a cycle just stops the walk).
    fn deepest(
        f: usize,
        callees: &[Vec<usize>],
        size: &dyn Fn(usize) -> u32,
        on_path: &mut Vec<usize>,
    ) -> (u32, Vec<usize>) {
        on_path.push(f);
        let mut best = (0u32, Vec::new());
        for &c in &callees[f] {
            if on_path.contains(&c) {
                continue;
            }
            let r = deepest(c, callees, size, on_path);
            if r.0 > best.0 {
                best = r;
            }
        }
        on_path.pop();
        let mut chain = vec![f];
        chain.extend(best.1);
        (size(f) + best.0, chain)
    }
    let (need, chain) = deepest(0, &callees, &frame_size, &mut Vec::new());
    if need as usize > MAX_STACK {
        let name = |f: usize| {
            prog.functions
                .iter()
                .find(|x| x.start == starts[f])
                .map_or_else(|| format!("function at {}", starts[f]), |x| x.name.clone())
        };
        return Err(InstrumentError::StackTooDeep {
            need,
            chain: chain.into_iter().map(name).collect::<Vec<_>>().join(" -> "),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
